"""keep_freed_memory: glibc's malloc then serves blocks up to 32 MiB from its heap and keeps
the memory freed at the heap's top, read back with ``mallinfo2``; ``ARCHSEARCH_MALLOC_TUNING=0``
leaves malloc alone.

Each check runs in a fresh Python process (no torch in it): in the test process, earlier tests
have already moved glibc's dynamic thresholds and fragmented the heap. The page faults this
saves in a search step are measured in BENCHMARKS.md (``benchmarks/darts_speed.py`` reports
them per step)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

from archsearch import allocator

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt only")

MALLOC_PROBE = """
import ctypes, json
from archsearch import allocator

class MallInfo2(ctypes.Structure):  # glibc >= 2.33, malloc.h
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
libc.mallinfo2.restype = MallInfo2
tuned = allocator.keep_freed_memory()
before = libc.mallinfo2().hblkhd
big = libc.malloc(16 << 20)  # a large activation: mmapped above the (default) threshold?
mmapped = libc.mallinfo2().hblkhd - before
libc.free(big)
blocks = [libc.malloc(4 << 20) for _ in range(16)]  # a step's 64 MiB of activations ...
for block in blocks:  # ... freed by its backward: kept, or returned to the kernel?
    libc.free(block)
print(json.dumps({"tuned": tuned, "mmapped": mmapped, "heap": libc.mallinfo2().arena}))
"""


def malloc_after_a_step(tuning: str) -> dict:
    env = {**os.environ, "ARCHSEARCH_MALLOC_TUNING": tuning}
    done = subprocess.run([sys.executable, "-c", MALLOC_PROBE], capture_output=True, text=True,
                          timeout=60, check=True, env=env)
    return json.loads(done.stdout.splitlines()[-1])


@glibc
def test_large_blocks_come_from_the_heap_and_freed_memory_is_kept() -> None:
    tuned = malloc_after_a_step("1")
    assert tuned["tuned"] is True
    assert tuned["mmapped"] == 0  # 16 MiB < 32 MiB: from the heap, not a fresh mapping
    assert tuned["heap"] >= 64 << 20  # the freed 64 MiB stay for the next step
    # glibc's defaults, for contrast: the 16 MiB block is mapped afresh, and after its free
    # the dynamic trim threshold (32 MiB) hands the freed 64 MiB back to the kernel, whose
    # pages the next step faults in (and has zeroed) again
    untuned = malloc_after_a_step("0")
    assert untuned["tuned"] is False
    assert untuned["mmapped"] >= 16 << 20
    assert untuned["heap"] < 64 << 20


def test_off_by_environment(monkeypatch) -> None:
    monkeypatch.setenv("ARCHSEARCH_MALLOC_TUNING", "0")
    assert allocator.keep_freed_memory.__wrapped__() is False
