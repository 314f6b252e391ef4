"""Issue 6: trials per minute with 1 and 2 local workers, process pool and Ray, side by side.

Every trial is the same fixed amount of single-threaded CPU work (``--work`` 256x256 matrix
products in the toy estimator), so the speed-up with 2 workers is what the executor gives on
this machine. A second pass with no work measures each executor's overhead per trial. Run it
on an otherwise idle machine:

    python benchmarks/executor_throughput.py --trials 40 --work 1500

One thread everywhere: the driver (which runs the inline executor's trials) sets
``OMP_NUM_THREADS=MKL_NUM_THREADS=1`` before torch is first imported and
``torch.set_num_threads(1)``, and stops unless ``torch.get_num_threads()`` then says 1; the
process pool's workers set one thread each (``threads_per_worker=1``) and the script asks a worker
what it has; Ray's tasks set the threads their trial reserved (``cpus_per_trial=1``). The thread
counts go into the output and the JSON. (Before this, the variable was set after torch had been
imported, so the inline row ran on torch's default of one thread per core: 2 here.)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

THREADS = 1


def worker_threads() -> int:
    """Run in a worker: its torch thread count."""
    import torch

    return torch.get_num_threads()


def one_thread() -> int:
    """Make this process use one thread, before torch is imported when it has not been yet;
    returns what torch then reports."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(THREADS)  # read by torch's thread pools when torch is imported
    import torch

    torch.set_num_threads(THREADS)
    return torch.get_num_threads()


def timed(kind: str, workers: int, trials: int, work: int) -> tuple[float, int | None]:
    """Seconds for ``trials`` trials, after one warm-up batch (worker start-up not counted),
    and the thread count of a process-pool worker (None for the other executors)."""
    from archsearch.experiment import Experiment, MemoryStorage
    from archsearch.experiment.executor import make_executor
    from archsearch.experiment.trial import build_space
    from archsearch.registry import STRATEGIES, Spec

    space = Spec("toy", {"n_decisions": 6, "n_options": 6})
    executor: Any = make_executor(kind, workers)
    estimator = Spec("toy", {"work": work})
    strategy = STRATEGIES.create("random", space=build_space(space), seed=0)
    exp = Experiment(space, estimator, strategy, MemoryStorage(), executor)
    exp.run(n_trials=2 * workers)  # start the workers and build their estimators
    threads = executor.pool.submit(worker_threads).result() if kind == "process" else None
    start = time.perf_counter()
    exp.run(n_trials=2 * workers + trials)
    seconds = time.perf_counter() - start
    exp.close()
    return seconds, threads


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=40)
    p.add_argument("--work", type=int, default=1500, help="matrix products per trial")
    p.add_argument("--json", default="benchmarks/results/executor_throughput.json")
    args = p.parse_args()
    already = "torch" in sys.modules
    driver_threads = one_thread()
    print(f"driver: torch.get_num_threads() = {driver_threads}"
          + (" (torch was imported before the script set it)" if already else ""), flush=True)
    if driver_threads != THREADS:
        raise SystemExit(f"the driver runs {driver_threads} threads, not {THREADS}: stopping")
    rows: dict[str, Any] = {"driver_threads": driver_threads}
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
            busy, threads = timed(kind, workers, args.trials, args.work)
            idle, _ = timed(kind, workers, args.trials, 0)
            threads = {"inline": driver_threads, "process": threads}.get(kind)
            rows[f"{kind}-{workers}"] = {
                "trials_per_minute": 60 * args.trials / busy,
                "overhead_ms_per_trial": 1000 * idle / args.trials,
                "seconds": busy,
                "threads_per_trial": threads,  # None: Ray, set by its task (cpus_per_trial=1)
            }
            print(f"{kind:8s} x{workers}: {rows[f'{kind}-{workers}']['trials_per_minute']:7.1f} "
                  f"trials/min ({busy:.1f} s for {args.trials}), empty-trial overhead "
                  f"{rows[f'{kind}-{workers}']['overhead_ms_per_trial']:.1f} ms, threads per "
                  f"trial {threads if threads is not None else 'set by the Ray task (1)'}",
                  flush=True)
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
