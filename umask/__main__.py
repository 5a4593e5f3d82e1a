import os
import signal
import sys

from .errors import INTERRUPTED  # no torch in it: the handler below is up at once

# Ctrl-C while torch is still importing ends the process at once with one
# line. Nothing is written before the command runs, so there is nothing to
# clean up; and a KeyboardInterrupt raised there does not reliably stop it:
# some of torch's import steps swallow it (the run would start anyway), turn it
# into an ImportError, drop it in a callback Python cannot raise from
# ("Exception ignored" and a traceback), or, raised inside a call from C++,
# abort the process ("terminate called after throwing ... pybind11").
def _interrupt(signum, frame):
    try:
        os.write(2, INTERRUPTED.encode())
    except OSError:  # stderr closed, or a pipe whose reader has gone: exit all the same
        pass
    finally:
        os._exit(130)


# Not where SIGINT arrives ignored (a job a script started with &): it stays ignored.
_listening = signal.getsignal(signal.SIGINT) is signal.default_int_handler
if _listening:
    signal.signal(signal.SIGINT, _interrupt)
from .cli import command_module, main, named_command  # noqa: E402

_command = named_command(sys.argv[1:])
if _command:  # its module loads torch: the slow import this guards
    command_module(_command)
if _listening:
    signal.signal(signal.SIGINT, signal.default_int_handler)

sys.exit(main())
