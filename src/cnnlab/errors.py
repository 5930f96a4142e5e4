"""One exception type for everything a user can get wrong.

The CLI prints a `CnnlabError` as one line and exits with code 2; any other exception is a bug
in cnnlab and keeps its traceback.
"""


class CnnlabError(Exception):
    """A user error: bad name, bad input, missing file. Its message says what and how to fix it."""
