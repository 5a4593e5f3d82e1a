"""The one exception type users see.

Every mistake a user can make (a bad argument, a missing weight file, a corrupt
result folder) is raised as :class:`UmaskError` with one sentence that says what
was wrong and what is allowed. The CLI and the dashboard show that sentence and
nothing else; any other exception is a bug in umask.
"""


class UmaskError(Exception):
    """A user-facing error whose message is one complete sentence."""


def out_of_memory(err: BaseException) -> bool:
    """Whether ``err`` is an allocation that failed: Python's, torch's on a
    GPU (``torch.OutOfMemoryError``, matched by name: this module loads no
    torch) or torch's CPU allocator's. Not a user's mistake as such: the
    memory check before a run is an estimate, and a step can outgrow it."""
    return isinstance(err, MemoryError) or type(err).__name__ == "OutOfMemoryError" or "can't allocate memory" in str(err)


#: The CLI's line for a Ctrl-C outside a command's own work (importing torch,
#: loading a model): every file is written whole or not at all.
INTERRUPTED = "umask: interrupted; no file was left half-written\n"


#: What to do about it, in the CLI's and the dashboard's sentence alike.
OUT_OF_MEMORY_FIX = "use a smaller image or fewer masks (or another device)"


def os_error_sentence(err: OSError) -> str:
    """The file system's own refusal that no check foresaw (a full disk, a
    name too long), in its words on one line."""
    where = f"'{err.filename}': " if err.filename else ""
    return f"{where}{err.strerror or err}."


def user_sentence(err: BaseException) -> str | None:
    """The one sentence a user sees for ``err``: a UmaskError's own, memory
    that ran out, or the file system's refusal; ``None`` for anything else,
    which is a bug in umask and is raised as it is."""
    if isinstance(err, UmaskError):
        return str(err)
    if out_of_memory(err):
        return f"This ran out of memory; {OUT_OF_MEMORY_FIX}."
    if isinstance(err, OSError):
        return os_error_sentence(err)
    return None


def run_failure(err: Exception) -> str:
    """The one sentence a run that stopped on ``err`` (not a UmaskError) shows."""
    if out_of_memory(err):
        return f"The optimisation ran out of memory; {OUT_OF_MEMORY_FIX}."
    return f"The optimisation failed: {type(err).__name__}: {err}"
