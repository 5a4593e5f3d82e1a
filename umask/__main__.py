import signal
import sys

# Ctrl-C while torch is still importing: one line, not a traceback from inside
# torch. The handler also notes the press: some import steps swallow
# KeyboardInterrupt (the run would start anyway) or turn it into an ImportError.
_pressed = []


def _interrupt(signum, frame):
    _pressed.append(signum)
    raise KeyboardInterrupt


# Not where SIGINT arrives ignored (a job a script started with &): it stays ignored.
_listening = signal.getsignal(signal.SIGINT) is signal.default_int_handler
if _listening:
    signal.signal(signal.SIGINT, _interrupt)
try:
    from .cli import command_module, main, named_command

    _command = named_command(sys.argv[1:])
    if _command:  # its module loads torch: the slow import this guards
        command_module(_command)
except BaseException:
    if not _pressed:
        raise
if _listening:
    signal.signal(signal.SIGINT, signal.default_int_handler)
if _pressed:
    sys.stderr.write("umask: interrupted\n")
    sys.exit(130)

sys.exit(main())
