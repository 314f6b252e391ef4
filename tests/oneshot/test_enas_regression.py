"""ENAS regression pin: short seeded searches on every ENAS space give the recorded results.

``enas_regression.json`` was written by the ENAS loop of the first wave (commit b3d263d, before
the one-shot base of the issue "One contract for every method"); a refactor of the loop, the
supernets or the controllers must reproduce it: the same derived architecture after every
epoch and the same per-epoch numbers (losses, rewards, baseline, entropy, scores) within
float tolerance. Regenerate only for a deliberate change of results, saying why in the commit:

    ARCHSEARCH_REGEN_PINS=1 python -m pytest tests/oneshot/test_enas_regression.py

Each search runs in a child process under portable CPU kernels (:data:`PORTABLE`): PyTorch's
scalar kernels, MKL's conditional numerical reproducibility, no oneDNN, one thread. Float
rounding differs between vectorised kernels (AVX2, AVX-512, the vendor's MKL paths), and a
search is chaotic: a last-bit difference in a loss flips an accuracy reward or a derive pick
within an epoch, so pins recorded with a machine's fastest kernels hold only on CPUs of its
kind (the first pins, recorded on the first wave's machine, failed on an AMD EPYC with
AVX-512). The pins were re-recorded under :data:`PORTABLE` on 2026-12-02 by the code that had
reproduced the first-wave pins there (commit 86e3da5, CI passed).
"""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from archsearch.estimators.language_model import SharedRNNEstimator
from archsearch.estimators.shared_weights import SharedWeightsEstimator
from archsearch.oneshot.enas import ENAS, ENASConfig, enas_controller
from archsearch.registry import SPACES

PINS = Path(__file__).with_name("enas_regression.json")
ROOT = Path(__file__).resolve().parents[2]
# kernels whose rounding is the same on every x86-64 CPU (see the module docstring)
PORTABLE = {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE", "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1"}
REGEN = os.environ.get("ARCHSEARCH_REGEN_PINS") == "1"

# name -> (space, space options, supernet options, estimator options, loop options)
CASES: dict[str, dict[str, Any]] = {
    "enas-micro": {"space": {"n_nodes": 3}, "supernet": {"channels": 4, "cells_per_stage": 1},
                   "estimator": {}, "loop": {"warmup_epochs": 1}},
    "enas-macro": {"space": {"n_layers": 4}, "supernet": {"channels": 4}, "estimator": {},
                   "loop": {}},
    "nb201": {"space": {}, "supernet": {"channels": 4, "cells_per_stage": 1},
              "estimator": {"reward": "neg_loss", "val_batch_size": 24},
              "loop": {"shared_sampling": "uniform-iso", "derive_window": 2,
                       "derive_batches": 2}},
    "enas-rnn": {"space": {"n_nodes": 4}, "estimator": {}, "loop": {}},
}


def images(folder: Path) -> str:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 96)
    x = rng.integers(0, 60, (96, 8, 8, 3)).astype(np.uint8)
    x[np.arange(96), :, :, y] += 150  # the label is the brightest channel: learnable
    path = folder / "tiny.npz"
    np.savez(path, x=x, y=y)
    return str(path)


def corpus(folder: Path) -> str:
    rng = random.Random(0)
    for split, n in (("train", 200), ("valid", 40), ("test", 40)):
        lines = [" ".join(["the", rng.choice(["cat", "dog"]), rng.choice(["sat", "ran"]),
                           "on", "a", rng.choice(["mat", "rug"])]) for _ in range(n)]
        (folder / f"ptb.{split}.txt").write_text("\n".join(lines) + "\n")
    return str(folder)


def make(name: str, folder: Path) -> ENAS:
    case = CASES[name]
    space = SPACES.create(name, **case["space"])
    if name == "enas-rnn":
        estimator: Any = SharedRNNEstimator(space, corpus(folder), hidden=16, batch_size=4,
                                            bptt=8, device="cpu", max_steps=6, epochs=3)
    else:
        estimator = SharedWeightsEstimator(space, data=images(folder), supernet=case["supernet"],
                                           batch_size=16, epochs=3, device="cpu",
                                           test_fraction=0.0, seed=5, **case["estimator"])
    controller = enas_controller(space, seed=7, aggregate=2, hidden=16)
    return ENAS(estimator, controller, ENASConfig(epochs=3, controller_steps=2, aggregate=2,
                                                  derive_samples=4, **case["loop"]))


def pinned(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The per-epoch record without timings (and NaNs as None, for JSON)."""
    def clean(v: Any) -> Any:
        return None if isinstance(v, float) and math.isnan(v) else v

    return [{k: clean(v) for k, v in r.items() if not k.endswith("seconds")} for r in history]


def search_portably(name: str, folder: Path) -> None:
    """The child process: case ``name``'s search, its pinned records written to ``folder``."""
    threads, mkldnn = torch.get_num_threads(), torch.backends.mkldnn.enabled
    torch.set_num_threads(1)  # one reduction order, whatever the machine's core count
    torch.backends.mkldnn.enabled = False  # oneDNN's blocking depends on the CPU's caches
    try:
        history = pinned(make(name, folder).run())
    finally:
        torch.set_num_threads(threads)
        torch.backends.mkldnn.enabled = mkldnn
    (folder / "history.json").write_text(json.dumps(history))


def portable_already() -> bool:
    """This process runs under :data:`PORTABLE` (set before torch loaded: the mutation
    benchmark does), so the searches may run in it."""
    return all(os.environ.get(k) == v for k, v in PORTABLE.items())


@pytest.mark.parametrize("name", list(CASES))
def test_enas_reproduces_the_pinned_search(name: str, tmp_path: Path) -> None:
    code = ("import sys; from pathlib import Path; "
            "from tests.oneshot.test_enas_regression import search_portably; "
            "search_portably(sys.argv[1], Path(sys.argv[2]))")
    env = {**os.environ, **PORTABLE,
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    if portable_already():
        search_portably(name, tmp_path)
    else:
        subprocess.run([sys.executable, "-c", code, name, str(tmp_path)], check=True, env=env,
                       cwd=ROOT, timeout=600)
    history = json.loads((tmp_path / "history.json").read_text())
    pins = json.loads(PINS.read_text()) if PINS.exists() else {}
    if REGEN:
        pins[name] = history
        PINS.write_text(json.dumps(pins, indent=1, sort_keys=True) + "\n")
    expected = pins[name]
    assert [r["derived"] for r in history] == [r["derived"] for r in expected]
    assert len(history) == len(expected)
    for got, want in zip(history, expected):
        # records may gain fields (the BN setup since the one-shot base); none may go
        assert set(want) <= set(got), f"epoch {want['epoch']}: record fields lost"
        for key, value in want.items():
            if isinstance(value, float):
                assert got[key] == pytest.approx(value, rel=1e-4, abs=1e-6), (
                    f"epoch {want['epoch']}, {key}")
            else:
                assert got[key] == value, f"epoch {want['epoch']}, {key}"
