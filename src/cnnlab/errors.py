"""One exception type for everything a user can get wrong, and one way to warn.

The CLI prints a `CnnlabError` as one line and exits with code 2; any other exception is a bug
in cnnlab and keeps its traceback. `warn` prints one line on stderr for what a user should know
but need not fix now (a torn metrics line that a resume repairs, a poorer report).
"""

import sys


class CnnlabError(Exception):
    """A user error: bad name, bad input, missing file. Its message says what and how to fix it."""


def warn(message: str) -> None:
    """One line on stderr, prefixed like the CLI's errors."""
    print(f"cnnlab: warning: {message}", file=sys.stderr, flush=True)
