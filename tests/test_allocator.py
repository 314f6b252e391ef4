"""keep_freed_memory: after it, a training step's pattern of large tensors allocated and freed
faults in (almost) no new pages; ``ARCHSEARCH_MALLOC_TUNING=0`` leaves malloc alone."""

from __future__ import annotations

import platform
import resource

import pytest
import torch

from archsearch import allocator

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt only")


def faults_of_a_step_pattern() -> int:
    """Minor page faults of allocating, touching and freeing tensors of growing and shrinking
    sizes (0.5-24 MiB: a supernet step's activations and gradients), after a first round."""
    sizes = [1 << 17, 1 << 19, 1 << 21, 3 << 21, 1 << 20, 1 << 18]  # floats: 0.5-24 MiB

    def one_round() -> None:
        held = [torch.ones(n) for n in sizes]  # the forward pass keeps its activations
        del held  # ... and the backward frees them

    one_round()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        one_round()
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


@glibc
def test_freed_memory_is_reused_without_page_faults() -> None:
    assert allocator.keep_freed_memory()
    # untuned, glibc maps (and the kernel zeroes) each round's largest blocks afresh:
    # thousands of faults a round
    assert faults_of_a_step_pattern() < 200


def test_off_by_environment(monkeypatch) -> None:
    monkeypatch.setenv("ARCHSEARCH_MALLOC_TUNING", "0")
    assert allocator.keep_freed_memory.__wrapped__() is False
