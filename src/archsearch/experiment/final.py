"""The honest last step of a search: retrain the best architecture under a final protocol and
put K random architectures of the same space through exactly the same protocol beside it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from archsearch.registry import ESTIMATORS, Spec
from archsearch.spaces.base import Architecture, SearchSpace

log = logging.getLogger(__name__)


def random_architectures(space: SearchSpace, k: int, seed: int,
                         exclude: set[str] = frozenset()) -> list[Architecture]:  # type: ignore[assignment]
    """k distinct random architectures (not in ``exclude``), from their own seeded stream."""
    rng = np.random.default_rng([seed, 0x5EED])
    picked: dict[str, Architecture] = {}
    for _ in range(100 * max(k, 1)):
        if len(picked) >= k:
            break
        arch = space.sample(rng)
        if arch.to_str() not in exclude:
            picked.setdefault(arch.to_str(), arch)
    return list(picked.values())


def final_evaluation(
    space: SearchSpace, estimator: Spec, best: Architecture, n_random: int, seed: int,
    on_result: Callable[[str, Architecture, dict[str, Any]], None] | None = None,
    save_best: Path | None = None,
) -> dict[str, Any]:
    """Evaluate ``best`` and ``n_random`` random architectures with one final estimator.

    Returns ``{"best": row, "random": [rows], "random_mean": {...}, "random_std": {...}}``
    where a row is ``{"arch": str, "objective": float, "metrics": {...}}``. With
    ``save_best``, the trained weights of the best (when the estimator trains) are saved there.
    """
    final = ESTIMATORS.create(estimator.name, space=space, **estimator.config)
    rows: dict[str, Any] = {"random": []}
    candidates = [("best", best)] + [
        ("random", a) for a in random_architectures(space, n_random, seed, {best.to_str()})
    ]
    for role, arch in candidates:
        result = final.evaluate(arch)
        row = {"arch": arch.to_str(), "objective": result.objective if result.ok else None,
               "metrics": dict(result.metrics), "error": result.error}
        if role == "best":
            rows["best"] = row
            model = getattr(final, "last_model", None)
            if save_best is not None and model is not None:
                torch.save(model.state_dict(), save_best)
        else:
            rows["random"].append(row)
        log.info("final %s %s: %s", role, arch, result.metrics)
        if on_result is not None:
            on_result(role, arch, row)
    rows["baselines"] = []
    if hasattr(final, "baselines"):  # e.g. an LSTM with the best cell's parameter count
        for name, result in final.baselines(best):
            rows["baselines"].append({"name": name, "objective": result.objective,
                                      "metrics": dict(result.metrics)})
            if on_result is not None:
                on_result("baseline", best, rows["baselines"][-1])
    ok = [r for r in rows["random"] if r["objective"] is not None]
    keys = sorted({k for r in ok for k in r["metrics"]})
    rows["random_mean"] = {
        k: float(np.mean([r["metrics"][k] for r in ok if k in r["metrics"]])) for k in keys
    }
    rows["random_std"] = {
        k: float(np.std([r["metrics"][k] for r in ok if k in r["metrics"]])) for k in keys
    }
    return rows
