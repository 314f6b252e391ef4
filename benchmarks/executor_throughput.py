"""Issue 6: trials per minute with 1 and 2 local workers, process pool and Ray, side by side.

Every trial is the same fixed amount of single-threaded CPU work (``--work`` 256x256 matrix
products in the toy estimator), so the speed-up with 2 workers is what the executor gives on
this machine. A second pass with no work measures each executor's overhead per trial. Run it
on an otherwise idle machine:

    python benchmarks/executor_throughput.py --trials 40 --work 1500
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from archsearch.experiment import Experiment, MemoryStorage
from archsearch.experiment.executor import make_executor
from archsearch.experiment.trial import build_space
from archsearch.registry import STRATEGIES, Spec

SPACE = Spec("toy", {"n_decisions": 6, "n_options": 6})


def timed(kind: str, workers: int, trials: int, work: int) -> float:
    """Seconds for ``trials`` trials, after one warm-up batch (worker start-up not counted)."""
    executor = make_executor(kind, workers)
    estimator = Spec("toy", {"work": work})
    strategy = STRATEGIES.create("random", space=build_space(SPACE), seed=0)
    exp = Experiment(SPACE, estimator, strategy, MemoryStorage(), executor)
    exp.run(n_trials=2 * workers)  # start the workers and build their estimators
    start = time.perf_counter()
    exp.run(n_trials=2 * workers + trials)
    seconds = time.perf_counter() - start
    exp.close()
    return seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=40)
    p.add_argument("--work", type=int, default=1500, help="matrix products per trial")
    p.add_argument("--json", default="benchmarks/results/executor_throughput.json")
    args = p.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    rows = {}
    kinds = ["inline", "process"]
    try:
        import ray

        kinds.append("ray")
        # one local Ray instance (2 CPUs) for both Ray passes: its start-up is not a trial's cost
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    except ImportError:
        print("Ray is not installed: pip install 'archsearch[ray]' to include it")
    for kind in kinds:
        for workers in ([1] if kind == "inline" else [1, 2]):
            busy = timed(kind, workers, args.trials, args.work)
            idle = timed(kind, workers, args.trials, 0)
            rows[f"{kind}-{workers}"] = {
                "trials_per_minute": 60 * args.trials / busy,
                "overhead_ms_per_trial": 1000 * idle / args.trials,
                "seconds": busy,
            }
            print(f"{kind:8s} x{workers}: {rows[f'{kind}-{workers}']['trials_per_minute']:7.1f} "
                  f"trials/min ({busy:.1f} s for {args.trials}), empty-trial overhead "
                  f"{rows[f'{kind}-{workers}']['overhead_ms_per_trial']:.1f} ms", flush=True)
    for kind in kinds[1:]:
        speedup = rows[f"{kind}-2"]["trials_per_minute"] / rows[f"{kind}-1"]["trials_per_minute"]
        rows[f"{kind}-speedup"] = speedup
        print(f"{kind}: 2 workers / 1 worker = {speedup:.2f}x (target >= 1.7x)")
    if "ray" in kinds:
        extra = (rows["ray-1"]["seconds"] - rows["process-1"]["seconds"]) / args.trials
        rows["ray_extra_seconds_per_trial"] = extra
        print(f"ray vs process pool, 1 worker: {extra:+.3f} s per trial; empty trials: ray "
              f"{rows['ray-1']['overhead_ms_per_trial']:.1f} ms vs process "
              f"{rows['process-1']['overhead_ms_per_trial']:.1f} ms")
    Path(args.json).write_text(json.dumps({"config": vars(args), "results": rows}, indent=1))
    if "ray" in kinds:
        ray.shutdown()


if __name__ == "__main__":
    main()
