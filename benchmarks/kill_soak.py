"""Kill soak: searches SIGKILLed at random moments and resumed end where uninterrupted ones do.

Three soaks, each against an uninterrupted reference run of the same command and seed:

- ``tabular``: regularized evolution over the NB201 table, 20 SIGKILLs;
- ``enas``: a tiny ENAS search on the embedded digits, 5 SIGKILLs;
- ``workers``: random search over the toy space with 2 worker processes (the toy estimator
  records each worker's PID), 5 SIGKILLs of the driver.

After each kill the command is resumed (``--resume``) and killed again at a random moment,
until the kills are spent; then it runs to the end. Checked: the final trial table (number,
architecture, state, objective, budget) or ENAS's per-epoch records (timings aside) and its
answer equal the reference's, and no process of a killed search (its workers) is alive a few
seconds after the kill.

    python benchmarks/kill_soak.py [--kills 20 5 5] [--soaks tabular enas workers] [--seed 0]
        [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
TINY_ENAS = ["--epochs", "6", "--final-epochs", "0.2", "--baseline-random", "0",
             "--method-opt", "controller_steps=2", "--method-opt", "warmup_epochs=1",
             "--estimator-opt", "supernet={'channels': 4, 'cells_per_stage': 1}",
             "--final-opt", "build={'channels': 4, 'cells_per_stage': 1}", "--device", "cpu"]


def commands(pid_dir: str) -> dict[str, tuple[list[str], tuple[float, float]]]:
    """Each soak's search arguments and the window (seconds after start) a kill falls in."""
    return {
        "tabular": (["--method", "evolution", "--space", "nb201", "--estimator", "tabular",
                     "--benchmark", str(DATA / "nb201_cifar10.csv"), "--metric",
                     "cifar10_test_acc_200ep", "--trials", "8000", "--baseline-random", "0"],
                    (2.0, 4.5)),
        "enas": (TINY_ENAS, (4.0, 14.0)),
        "workers": (["--method", "random", "--space", "toy", "--estimator", "toy",
                     "--estimator-opt", "delay=0.05", "--estimator-opt", f"pid_dir='{pid_dir}'",
                     "--workers", "2", "--trials", "400", "--baseline-random", "0"],
                    (4.0, 9.0)),
    }


def search(args: list[str], folder: Path, resume: bool) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "archsearch", "search", *args, "--run", str(folder),
           "--seed", "0", "--no-progress"]
    if resume:
        cmd = [sys.executable, "-m", "archsearch", "search", "--run", str(folder), "--resume",
               "--no-progress"]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def outcome(folder: Path) -> dict:
    shown = json.loads(subprocess.run(
        [sys.executable, "-m", "archsearch", "show", str(folder), "--json"],
        capture_output=True, text=True, check=True).stdout)
    trials = [(t["number"], t["arch"], t["state"], t["objective"], t["budget"])
              for t in shown["trials"]]
    epochs = [{k: v for k, v in r.items() if not k.endswith("seconds")}
              for r in shown["epochs"]]
    return {"trials": trials, "epochs": epochs, "best": shown["best_arch"]}


def alive(pids: list[int]) -> list[int]:
    out = []
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        out.append(pid)
    return out


def soak(name: str, kills: int, rng: np.random.Generator, root: Path) -> dict:
    pid_dir = root / f"{name}-pids"
    pid_dir.mkdir()
    args, (low, high) = commands(str(pid_dir))[name]
    reference = root / f"{name}-reference"
    if search(args, reference, False).wait() != 0:
        raise SystemExit(f"{name}: the reference run failed")
    folder, done, orphans = root / f"{name}-killed", 0, 0
    while done < kills:
        process = search(args, folder, (folder / "trials.db").exists())
        try:
            process.wait(timeout=float(rng.uniform(low, high)))
            break  # finished before the kill fell: the soak ends early
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            process.wait()
            done += 1
        time.sleep(3.0)  # workers get SIGTERM from the kernel when their driver dies
        workers = [int(p.name) for p in pid_dir.iterdir()]
        orphans += len(alive(workers))
        for pid in alive(workers):
            os.kill(pid, signal.SIGKILL)
        for p in pid_dir.iterdir():
            p.unlink()
    final = search(args, folder, (folder / "trials.db").exists())
    if final.wait() != 0:
        raise SystemExit(f"{name}: the last resume failed: {final.stderr.read()[-500:]}")
    same = outcome(folder) == outcome(reference)
    return {"soak": name, "kills": done, "identical": same, "orphaned_workers": orphans,
            "trials": len(outcome(folder)["trials"]), "epochs": len(outcome(folder)["epochs"])}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kills", type=int, nargs=3, default=[20, 5, 5],
                   metavar=("TABULAR", "ENAS", "WORKERS"))
    p.add_argument("--soaks", nargs="+", default=["tabular", "enas", "workers"],
                   choices=["tabular", "enas", "workers"], help="which soaks to run")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json")
    args = p.parse_args()
    rng = np.random.default_rng(args.seed)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, kills in zip(("tabular", "enas", "workers"), args.kills):
            if name not in args.soaks:
                continue
            rows.append(soak(name, kills, rng, Path(tmp)))
            print(json.dumps(rows[-1]), flush=True)
    print("all identical to uninterrupted runs, no orphaned worker:",
          all(r["identical"] and r["orphaned_workers"] == 0 for r in rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
