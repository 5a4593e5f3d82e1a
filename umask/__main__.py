import signal
import sys

# Ctrl-C while torch is still importing: one line, not a traceback from inside
# torch. The handler also notes the press: some import steps swallow
# KeyboardInterrupt (the run would start anyway) or turn it into an ImportError.
_pressed = []
_print_unraisable = sys.unraisablehook


def _interrupt(signum, frame):
    _pressed.append(signum)
    raise KeyboardInterrupt


def _quiet_unraisable(unraisable):
    # A press can land in a callback Python cannot raise from (importlib's
    # module-lock cleanup); Python would print it as "Exception ignored" with a
    # traceback. It is noted in _pressed, so the line below says it instead.
    if not (_pressed and unraisable.exc_type is KeyboardInterrupt):
        _print_unraisable(unraisable)


# Not where SIGINT arrives ignored (a job a script started with &): it stays ignored.
_listening = signal.getsignal(signal.SIGINT) is signal.default_int_handler
if _listening:
    signal.signal(signal.SIGINT, _interrupt)
    sys.unraisablehook = _quiet_unraisable
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
    sys.unraisablehook = _print_unraisable
if _pressed:
    sys.stderr.write("umask: interrupted\n")
    sys.exit(130)

sys.exit(main())
