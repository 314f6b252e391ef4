"""The run folder's lock: one holder at a time, named to whoever is refused."""

from __future__ import annotations

import fcntl
import json
import threading
import time
from pathlib import Path

import pytest

from archsearch.errors import UserError
from archsearch.run.folder import LOCK_NAME, FolderLock


def test_a_second_lock_is_refused_naming_the_holder(tmp_path: Path) -> None:
    first = FolderLock(tmp_path).acquire()
    with pytest.raises(UserError, match=r"is in use by process \d+ on "):
        FolderLock(tmp_path).acquire()
    first.release()
    FolderLock(tmp_path).acquire().release()  # free again once released


def test_a_holder_that_writes_late_is_still_named(tmp_path: Path) -> None:
    # the holder locks, then writes who it is: a refusal in between waits for the name
    handle = open(tmp_path / LOCK_NAME, "a+")  # noqa: SIM115
    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)

    def write_late() -> None:
        time.sleep(0.3)
        handle.write(json.dumps({"pid": 4242, "host": "h", "started": "s", "command": "c"}))
        handle.flush()

    writer = threading.Thread(target=write_late)
    writer.start()
    try:
        with pytest.raises(UserError, match="in use by process 4242 on h"):
            FolderLock(tmp_path).acquire()
    finally:
        writer.join()
        handle.close()


def test_a_holder_that_never_names_itself_is_another_process(tmp_path: Path) -> None:
    with open(tmp_path / LOCK_NAME, "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        start = time.monotonic()
        with pytest.raises(UserError, match="in use by another process"):
            FolderLock(tmp_path).acquire()
        assert time.monotonic() - start < 5
