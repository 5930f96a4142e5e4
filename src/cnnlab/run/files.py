"""Writing files so that nothing is lost: atomic writes, and file-system errors as one line
(`layout.check_output` says what a command may write at all).

Every write goes to a temporary file in the target's own folder (same file system, so the final
rename is atomic), is fsynced, renamed over the target, and the folder is fsynced. A failed write
removes its temporary file; a kill leaves at most a hidden `.NAME.*.tmp*` file and never a
half-written target.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from cnnlab.errors import CnnlabError

_UMASK = os.umask(0)
os.umask(_UMASK)  # read once: temporary files get the permissions a plain open() would give

_REASONS = {
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "it is a folder",
    errno.ENAMETOOLONG: "the name is too long",
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EROFS: "the file system is read-only",
    errno.ENOENT: "no such file or folder",
    errno.EEXIST: "it already exists",
}


def os_error(error: OSError, path: str | os.PathLike | None = None, doing: str = "write") -> CnnlabError:
    """A file-system error as a one-line user error naming the path and the reason."""
    where = error.filename or path
    code = error.errno
    if code == errno.EEXIST and where is not None and not Path(where).is_dir():
        code = errno.ENOTDIR  # mkdir(parents=True) met a file where a folder should be
    reason = _REASONS.get(code, error.strerror or type(error).__name__)
    return CnnlabError(f"cannot {doing} {where}: {reason}")


def fsync(path: Path) -> None:
    """A file's data, or a folder's entries, onto the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: str | os.PathLike, data: bytes | str | Callable[[Path], object]) -> Path:
    """Write `data` (bytes, text, or a function that writes the file at the path it is given) to
    `path` atomically. The temporary name keeps the suffix, for writers that go by it (np.savez,
    matplotlib)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:100]}.", suffix=f".tmp{path.suffix}")
    except OSError as error:
        raise os_error(error, path) from None
    tmp = Path(name)
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)
        if callable(data):
            os.close(fd)
            data(tmp)
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(data.encode("utf-8") if isinstance(data, str) else data)
        fsync(tmp)
        os.replace(tmp, path)
        fsync(path.parent)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        raise os_error(error, path) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_json_atomic(path: str | os.PathLike, payload) -> Path:
    return write_atomic(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")
