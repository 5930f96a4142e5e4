"""One writer per run: a lock file that the training process holds while it writes the run.

`RUN/.lock` is locked with `fcntl.flock`, which the kernel releases when the process ends however
it ends (SIGKILL included), and holds the holder's PID and host. A second trainer finds the lock
held and stops with one line naming the PID; a lock left by a dead process is simply taken over
(its PID is named in a note). POSIX only, like the rest of the run-directory guarantees.
"""

from __future__ import annotations

import fcntl
import os
import socket
from pathlib import Path

from cnnlab.errors import CnnlabError, warn
from cnnlab.run.files import os_error
from cnnlab.run.layout import LOCK


class RunLock:
    """Held from `acquire()` until `release()` (or the end of the process)."""

    def __init__(self, run: str | os.PathLike):
        self.path = Path(run) / LOCK
        self.fd: int | None = None

    def acquire(self) -> RunLock:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise os_error(error, self.path) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").split()
            os.close(fd)
            pid = holder[0] if holder else "unknown"
            host = f" on {holder[1]}" if len(holder) > 1 else ""
            raise CnnlabError(f"{self.path.parent} is being written by process {pid}{host} (it holds {self.path}): "
                              "wait for it to finish or stop it first") from None
        previous = os.pread(fd, 200, 0).decode(errors="replace").split()
        if previous:
            warn(f"taking over the lock of process {previous[0]}, which is no longer running ({self.path})")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)
        os.fsync(fd)
        self.fd = fd
        return self

    def release(self) -> None:
        """Empty the file and unlock it; the empty file tells the next holder nobody died holding it."""
        if self.fd is None:
            return
        os.ftruncate(self.fd, 0)
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
