"""The one exception type users see.

Every mistake a user can make (a bad argument, a missing weight file, a corrupt
result folder) is raised as :class:`UmaskError` with one sentence that says what
was wrong and what is allowed. The CLI and the dashboard show that sentence and
nothing else; any other exception is a bug in umask.
"""


class UmaskError(Exception):
    """A user-facing error whose message is one complete sentence."""
