"""A run folder: its files, and the lock that lets one process at a time work in it.

The lock is an OS-level ``flock`` on ``RUN/lock``: it dies with its process, so a killed run
is never locked forever; while it is held, a second search, resume or retraining of the same
folder is refused with a message naming the holder (its PID, host, start time and command,
which the holder writes into the lock file).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import IO

from archsearch.errors import UserError

DB_NAME = "trials.db"
CONFIG_NAME = "config.toml"
LOCK_NAME = "lock"


def checked_folder(path: str | Path, must_exist: bool) -> Path:
    """The run folder ``path``, refusing what cannot be one, before anything is written."""
    folder = Path(path)
    if len(folder.name.encode()) > 255:
        raise UserError(f"run folder name is {len(folder.name.encode())} bytes long; the file "
                        "system allows 255")
    if folder.exists() and not folder.is_dir():
        raise UserError(f"--run {str(path)!r} is a file, not a folder: choose a folder path")
    if must_exist and not (folder / DB_NAME).is_file():
        raise UserError(f"nothing to resume: no run at {str(path)!r} (no {DB_NAME} there)")
    return folder


class FolderLock:
    """Exclusive ownership of a run folder for the life of this object (or the process)."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / LOCK_NAME
        self.file: IO[str] | None = None

    def acquire(self) -> FolderLock:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(self.path, "a+")  # noqa: SIM115 (held open for the lock's lifetime)
        except OSError as exc:
            raise UserError(f"cannot use run folder {str(self.path.parent)!r}: "
                            f"{exc.strerror or exc}") from None
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = self.holder(handle)
            handle.close()
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise UserError(f"run folder {str(self.path.parent)!r} is in use by {holder}; "
                                "wait for it to finish or stop it, then try again") from None
            raise
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                                 "command": " ".join(sys.argv)[:300]}))
        handle.flush()
        self.file = handle
        return self

    @staticmethod
    def holder(handle: IO[str], patience: float = 2.0) -> str:
        """Who holds the lock, as its holder wrote it; the holder writes just after locking,
        so an empty or half-written file is read again for up to ``patience`` seconds."""
        deadline = time.monotonic() + patience
        while True:
            try:
                handle.seek(0)
                info = json.loads(handle.read() or "{}")
            except (OSError, ValueError):
                info = {}
            if info or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        if not info:
            return "another process"
        return (f"process {info.get('pid')} on {info.get('host')} (started "
                f"{info.get('started')}: {info.get('command', '')[:120]})")

    def release(self) -> None:
        if self.file is not None:
            fcntl.flock(self.file.fileno(), fcntl.LOCK_UN)
            self.file.close()
            self.file = None
