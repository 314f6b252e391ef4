"""Issue 6: NAS-RL against random search on digits, same trials and estimator, several seeds.

Each trial trains a ``nasrl-cnn`` child (depth <= 6) from scratch on a subset of digits for 5
epochs; both strategies see the same estimator, and the curve is the best-so-far of the
NAS-RL reward's metric (max validation accuracy over the last 5 epochs). Runs are SQLite
stores under --out, so an interrupted benchmark resumes where it stopped (and a finished one
only recomputes the summary from its stores).

Equal compute: each trial's training CPU time (the estimator's ``train_cpu_seconds``: the
worker process's CPU seconds, which load from other processes does not inflate as it does the
wall-clock ``train_seconds``; each worker runs torch on one thread) is summed in trial order;
per seed, NAS-RL's best-so-far after the last of its trials that fit in the training CPU
seconds random search spent on all its trials is set beside random's final best, with the
number of those trials and the mean parameter count of each strategy's children (JSON key
``equal_compute``). Wall-clock training seconds are kept too (``train_seconds``).

    python benchmarks/nasrl_digits.py --trials 200 --seeds 0 1 2 --workers 2
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from archsearch.experiment import Experiment, ProcessPoolTrialExecutor, SQLiteStorage
from archsearch.experiment.executor import InlineExecutor
from archsearch.experiment.trial import build_space
from archsearch.registry import STRATEGIES, Spec

METRIC = "val_acc_max_last"


def run(strategy: str, seed: int, args: argparse.Namespace) -> dict[str, list[float]]:
    """One search: its best-so-far curve and, per trial, the training seconds and the child's
    parameters (millions; 0 for a failed trial)."""
    space = Spec("nasrl-cnn", {"depth": args.depth})
    estimator = Spec("full-training", {"data": "digits", "epochs": 5, "max_of_last": 5,
                                       "train_subset": args.subset, "batch_size": 64,
                                       "seed": seed})
    options = {"curriculum": args.curriculum} if strategy == "nas-rl" and args.curriculum else {}
    s = STRATEGIES.create(strategy, space=build_space(space), seed=seed, **options)
    executor = ProcessPoolTrialExecutor(args.workers) if args.workers > 1 else InlineExecutor()
    storage = SQLiteStorage(Path(args.out) / f"{strategy}-seed{seed}.db")
    exp = Experiment(space, estimator, s, storage, executor)
    start = time.perf_counter()
    records = exp.run(n_trials=args.trials)
    exp.close()
    values = [r.metrics.get(METRIC, 0.0) if r.objective is not None else 0.0 for r in records]
    seconds = [float(r.metrics.get("train_seconds", 0.0)) for r in records]
    cpu = [float(r.metrics.get("train_cpu_seconds", 0.0)) for r in records]
    params = [float(r.metrics.get("params_m", 0.0)) for r in records]
    print(f"{strategy:7s} seed {seed}: best {max(values):.4f} after {len(values)} trials, "
          f"{sum(seconds):.0f} s of training, {sum(cpu):.0f} CPU s "
          f"({time.perf_counter() - start:.0f} s this session)",
          flush=True)
    return {"curve": [float(v) for v in np.maximum.accumulate(values)],
            "train_seconds": seconds, "train_cpu_seconds": cpu, "params_m": params}


def equal_compute(nasrl: dict[str, list[float]], rand: dict[str, list[float]]) -> dict:
    """NAS-RL within the training CPU seconds random search spent on all its trials."""
    budget = sum(rand["train_cpu_seconds"])
    spent = np.cumsum(nasrl["train_cpu_seconds"])
    n = int(np.searchsorted(spent, budget, side="right"))  # trials that fit in the budget
    return {"random_train_cpu_seconds": budget, "random_trials": len(rand["curve"]),
            "random_best": rand["curve"][-1],
            "nasrl_trials_within": n, "nasrl_best_within": nasrl["curve"][n - 1] if n else None,
            "nasrl_train_cpu_seconds_all": float(spent[-1]),
            "nasrl_mean_params_m": float(np.mean(nasrl["params_m"])),
            "random_mean_params_m": float(np.mean(rand["params_m"]))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=200)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--depth", type=int, default=6)
    p.add_argument("--subset", type=int, default=300, help="training images per child")
    p.add_argument("--curriculum", type=int, nargs=3, metavar=("START", "STEP", "EVERY"))
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--out", default="runs/bench-nasrl-digits")
    p.add_argument("--json", default="benchmarks/results/nasrl_digits.json")
    p.add_argument("--plot", default="benchmarks/results/nasrl_digits.png")
    args = p.parse_args()
    Path(args.out).mkdir(parents=True, exist_ok=True)
    searches = {name: [run(name, seed, args) for seed in args.seeds]
                for name in ("nas-rl", "random")}
    curves = {name: [s["curve"] for s in runs] for name, runs in searches.items()}
    summary = {}
    for name, runs in curves.items():
        arr = np.array(runs)
        summary[name] = {f"best_at_{q}": [float(arr[:, q - 1].mean()), float(arr[:, q - 1].std())]
                         for q in (25, 50, 100, 150, args.trials) if q <= args.trials}
    for q in summary["random"]:
        (m1, s1), (m2, s2) = summary["nas-rl"][q], summary["random"][q]
        print(f"{q:12s}: nas-rl {m1:.4f} +- {s1:.4f}   random {m2:.4f} +- {s2:.4f}")
    fair = [equal_compute(a, b) for a, b in zip(searches["nas-rl"], searches["random"])]
    for seed, e in zip(args.seeds, fair):
        print(f"seed {seed}, equal training compute ({e['random_train_cpu_seconds']:.0f} CPU s, "
              f"random's "
              f"{e['random_trials']} trials): NAS-RL {e['nasrl_best_within'] or 0.0:.4f} after "
              f"{e['nasrl_trials_within']} trials, random {e['random_best']:.4f}; mean child "
              f"parameters {e['nasrl_mean_params_m']:.2f}M vs {e['random_mean_params_m']:.2f}M")
    Path(args.json).write_text(json.dumps({
        "config": vars(args), "summary": summary, "curves": curves,
        "equal_compute": dict(zip(map(str, args.seeds), fair)),
        "train_seconds": {n: [s["train_seconds"] for s in r] for n, r in searches.items()},
        "train_cpu_seconds": {n: [s["train_cpu_seconds"] for s in r]
                              for n, r in searches.items()},
        "params_m": {n: [s["params_m"] for s in r] for n, r in searches.items()}}, indent=1))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, runs in curves.items():
        arr = np.array(runs)
        x = np.arange(1, arr.shape[1] + 1)
        ax.plot(x, arr.mean(0), label=f"{name} (mean of {len(runs)} seeds)")
        ax.fill_between(x, arr.min(0), arr.max(0), alpha=0.2)
    ax.set_xlabel("trials")
    ax.set_ylabel("best max-of-last-5 validation accuracy")
    ax.set_title("NAS-RL vs random search, nasrl-cnn on digits")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(args.plot, dpi=110)


if __name__ == "__main__":
    main()
