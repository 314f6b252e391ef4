"""``archsearch search``: run (or resume) a search, then retrain the best beside random ones.

With no arguments it runs the main job on the embedded default data (scikit-learn's digits):
ENAS over the micro (cell) space, then the derived cell and three random cells retrained from
scratch under one protocol, side by side. Black-box strategies (random, evolution, reinforce)
run trials through an estimator (full-training by default, or a tabular benchmark).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from archsearch.cli.common import DB_NAME, config_diff, fmt, parse_options, table
from archsearch.errors import UserError
from archsearch.experiment.executor import EXECUTORS
from archsearch.experiment.final import final_evaluation
from archsearch.experiment.storage import SQLiteStorage
from archsearch.experiment.trial import build_space
from archsearch.registry import ESTIMATORS, SPACES, STRATEGIES, Spec

ONESHOT = ("enas",)
DEFAULTS: dict[str, Any] = {"strategy": "enas", "data": "digits", "seed": 0,
                            "final_epochs": 20.0, "baseline_random": 3}
# per kind of search: the space, estimator and epochs it starts from
ONESHOT_DEFAULTS = {"space": "enas-micro", "estimator": "shared-weights", "epochs": 30.0}
# CPU-sized ENAS defaults of the command (ENASConfig keeps the paper's 30 x 10 controller samples
# per epoch and no warm-up): on small data an epoch has few minibatches, so fewer controller
# steps keep the shared weights and the controller trained in about the proportion ENAS had on
# CIFAR-10; and 5 warm-up epochs keep the controller from locking onto what a barely trained
# supernet favours (measured in BENCHMARKS.md).
ONESHOT_OPTS = {"strategy_opt": {"controller_steps": 10, "warmup_epochs": 5},
                "estimator_opt": {"batch_size": 32}}
BLACKBOX_DEFAULTS = {"space": "nb201", "estimator": "full-training", "epochs": 4.0, "trials": 40}
# CPU-sized networks per space: (network trained per trial / supernet, final network)
NETWORKS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "nb201": ({"channels": 16, "cells_per_stage": 1}, {"channels": 16, "cells_per_stage": 1}),
    "enas-micro": ({"channels": 16, "cells_per_stage": 1}, {"channels": 16, "cells_per_stage": 2}),
    "enas-macro": ({"channels": 16}, {"channels": 24}),
    "enas-rnn": ({"hidden": 200}, {"hidden": 200}),
    "nasnet": ({"channels": 8, "cells_per_stage": 1}, {"channels": 16, "cells_per_stage": 2}),
}
TEXT_SPACES = ("enas-rnn",)  # searched on text: shared-rnn / lm-training estimators
CONFIG_FLAGS = ("space", "strategy", "estimator", "data", "seed", "epochs", "final_epochs",
                "baseline_random", "benchmark", "metric", "device")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help="search for an architecture (the main job)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--space", help="search space (default enas-micro for ENAS, else nb201)")
    p.add_argument("--strategy", help="search strategy (default enas)")
    p.add_argument("--estimator", help="estimator of black-box strategies (default full-training;"
                   " zero-cost:PROXY for training-free search, e.g. zero-cost:naswot)")
    p.add_argument("--data", help="'digits' (default), a cifar-10-batches-py folder or an .npz")
    p.add_argument("--benchmark", help="tabular estimator: the CSV table")
    p.add_argument("--metric", help="tabular estimator: the metric column")
    p.add_argument("--trials", type=int, help="black-box: number of trials (default 40 unless "
                   "--time is given); on --resume, the new total")
    p.add_argument("--time", type=float, metavar="SECONDS", help="stop proposing after this long")
    p.add_argument("--seed", type=int, help="seed of the search and the training (default 0)")
    p.add_argument("--epochs", type=float,
                   help="ENAS: search epochs (default 30); black-box: training epochs per trial "
                   "(default 4)")
    p.add_argument("--final-epochs", type=float,
                   help="epochs of the final retraining of the best and random ones (default 20)")
    p.add_argument("--baseline-random", type=int, metavar="K",
                   help="random architectures retrained beside the best (default 3; 0: none)")
    p.add_argument("--device", help="auto (default), cpu or cuda")
    p.add_argument("--workers", type=int, default=1,
                   help="black-box: trials run at once (default 1; with --executor ray, 1 "
                   "means as many as the cluster's CPUs allow)")
    p.add_argument("--executor", choices=EXECUTORS,
                   help="black-box: where trials run: inline (default for 1 worker), process "
                   "(a local process pool; default for --workers > 1) or ray")
    p.add_argument("--ray-address", metavar="HOST:PORT",
                   help="--executor ray: the cluster to join ('auto' or HOST:PORT of `ray start "
                   "--head`); default: start a local Ray instance for the run")
    p.add_argument("--cpus-per-trial", type=float, default=1.0,
                   help="--executor ray: CPUs each trial reserves (default 1)")
    p.add_argument("--gpus-per-trial", type=float, default=0.0,
                   help="--executor ray: GPUs each trial reserves (default 0; fractions share)")
    p.add_argument("--retries", type=int, default=1,
                   help="black-box: times a failed trial (raised, or its worker died) is "
                   "retried before it counts as failed (default 1)")
    p.add_argument("--strategy-opt", action="append", metavar="KEY=VALUE",
                   help="strategy option, e.g. population_size=10, or for ENAS "
                   "controller_steps=30, aggregate=10, lr=0.0035 (repeatable)")
    p.add_argument("--estimator-opt", action="append", metavar="KEY=VALUE",
                   help="estimator option, e.g. batch_size=128, build={'channels': 8} or for "
                   "ENAS supernet={'channels': 20, 'cells_per_stage': 2}")
    p.add_argument("--final-opt", action="append", metavar="KEY=VALUE",
                   help="option of the final retraining, e.g. cutout=16, drop_path=0.2, "
                   "build={'channels': 36, 'cells_per_stage': 5, 'auxiliary': True}")
    p.add_argument("--run", help="run folder (default runs/<time>-<space>-<strategy>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --run")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(run_command=run)


# ---- configuration -------------------------------------------------------------------------

def resolve_config(args: argparse.Namespace, stored: dict[str, Any] | None) -> dict[str, Any]:
    """The run's configuration: stored (on resume) or defaults, overlaid with the given flags."""
    given = {k: getattr(args, k) for k in CONFIG_FLAGS if getattr(args, k) is not None}
    opts = {name: parse_options(getattr(args, name), "--" + name.replace("_", "-"))
            for name in ("strategy_opt", "estimator_opt", "final_opt")}
    if stored is not None:
        rebuilt = make_config({**stored["flags"], **given},
                              *({**stored["opts"][k], **opts[k]} for k in opts))
        diff = config_diff(stored, rebuilt)
        if diff:
            raise UserError("--resume with a different configuration; the differences:\n"
                            + "\n".join(diff)
                            + "\nresume without these options, or start a new --run")
        return stored
    strategy = given.get("strategy", DEFAULTS["strategy"])
    kind = ONESHOT_DEFAULTS if strategy in ONESHOT else BLACKBOX_DEFAULTS
    flags = dict.fromkeys(CONFIG_FLAGS)
    flags.update({**DEFAULTS, **{k: v for k, v in kind.items() if k != "trials"}, **given})
    return make_config(flags, *opts.values())


def make_config(flags: dict[str, Any], strategy_opts: dict[str, Any],
                estimator_opts: dict[str, Any], final_opts: dict[str, Any]) -> dict[str, Any]:
    space = flags["space"]
    SPACES.get(space)
    oneshot = flags["strategy"] in ONESHOT
    if flags["strategy"] not in ONESHOT and flags["strategy"] not in STRATEGIES.names():
        raise UserError(f"unknown strategy {flags['strategy']!r}; valid strategy names: "
                        f"{', '.join(sorted(STRATEGIES.names() + list(ONESHOT)))}")
    estimator_name, _, estimator_arg = flags["estimator"].partition(":")  # zero-cost:naswot
    ESTIMATORS.get(estimator_name)
    search_net, final_net = NETWORKS.get(space, ({}, {}))
    device = flags.get("device") or "auto"
    strategy_config = dict(strategy_opts)
    text = space in TEXT_SPACES
    if text and flags["data"] in (None, "digits"):
        raise UserError(f"{space} is searched on text: give --data PATH_TO_PTB_FOLDER (a folder "
                        "with ptb.train.txt, ptb.valid.txt and ptb.test.txt)")
    if oneshot:
        if flags["estimator"] not in ("shared-weights", "shared-rnn"):
            raise UserError(f"{flags['strategy']} trains shared weights: drop --estimator "
                            f"{flags['estimator']} (it uses shared-weights)")
        estimator_name = "shared-rnn" if text else "shared-weights"
        if text:
            estimator = {"data": flags["data"], "epochs": int(flags["epochs"]),
                         "seed": flags["seed"], "device": device, **search_net,
                         **estimator_opts}
        else:
            estimator = {"data": flags["data"], "epochs": int(flags["epochs"]),
                         "seed": flags["seed"], "device": device, "supernet": dict(search_net),
                         **ONESHOT_OPTS["estimator_opt"], **estimator_opts}
        strategy_config = {**ONESHOT_OPTS["strategy_opt"], **strategy_opts}
    elif flags["estimator"] == "tabular":
        if not flags.get("benchmark") or not flags.get("metric"):
            raise UserError("the tabular estimator needs --benchmark CSV and --metric COLUMN")
        estimator = {"benchmark": flags["benchmark"], "metric": flags["metric"], **estimator_opts}
    elif estimator_name == "zero-cost":
        # the proxies score the space's full network (what benchmarks measured), untrained
        estimator = {"proxy": estimator_arg or "naswot", "data": flags["data"],
                     "seed": flags["seed"], **estimator_opts}
    elif flags["estimator"] == "full-training":
        estimator = {"data": flags["data"], "epochs": flags["epochs"], "seed": flags["seed"],
                     "device": device, "build": dict(search_net), **estimator_opts}
        if flags["strategy"] == "nas-rl":  # its reward: the best of the last 5 epochs
            estimator.setdefault("max_of_last", 5)
    else:
        estimator = dict(estimator_opts)
    if flags["estimator"] == "tabular":
        final = Spec("tabular", {**estimator, **final_opts})
    elif text:
        final = Spec("lm-training", {"data": flags["data"], "epochs": flags["final_epochs"],
                                     "seed": flags["seed"], "device": device, **final_net,
                                     **final_opts})
    else:
        build = final_net if oneshot else estimator.get("build", search_net)
        final = Spec("full-training", {
            "data": flags["data"], "epochs": flags["final_epochs"], "seed": flags["seed"],
            "device": device, "build": dict(build), **final_opts})
    return {
        "flags": flags,
        "opts": {"strategy_opt": strategy_opts, "estimator_opt": estimator_opts,
                 "final_opt": final_opts},
        "space": {"name": space, "config": {}},
        "strategy": {"name": flags["strategy"],
                     "config": {"seed": flags["seed"], **strategy_config}},
        "estimator": {"name": estimator_name, "config": estimator},
        "final": final.to_json(),
    }


def default_run_dir(config: dict[str, Any]) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{stamp}-{config['space']['name']}-{config['strategy']['name']}"


# ---- the command ---------------------------------------------------------------------------

def run(args: argparse.Namespace) -> int:
    if args.resume and not args.run:
        raise UserError("--resume needs --run DIR (the run folder to continue)")
    if args.trials is not None and args.trials < 1:
        raise UserError("--trials must be at least 1")
    if args.retries < 0 or args.workers < 1:
        raise UserError("--retries must be at least 0 and --workers at least 1")
    run_dir = Path(args.run) if args.run else None
    stored = None
    if run_dir is not None and (run_dir / DB_NAME).exists():
        if not args.resume:
            raise UserError(f"run folder {str(run_dir)!r} already holds a run; pass --resume to "
                            "continue it, or choose another --run")
        stored = SQLiteStorage(run_dir / DB_NAME).get_meta("config")
    elif args.resume:
        raise UserError(f"nothing to resume: no run at {str(run_dir)!r}")
    config = resolve_config(args, stored)
    oneshot = config["strategy"]["name"] in ONESHOT
    if oneshot and (args.trials is not None or args.time is not None):
        raise UserError("ENAS runs for --epochs; --trials and --time are for black-box "
                        "strategies")
    run_dir = run_dir or default_run_dir(config)
    # build what loads data or tables first: bad input fails before a run folder exists
    if oneshot:
        from archsearch.cli.search_enas import make_enas, search_enas

        enas = make_enas(config)
    else:
        from archsearch.cli.search_blackbox import search_blackbox
        from archsearch.experiment.trial import build_estimator

        build_estimator(Spec.from_json(config["space"]), Spec.from_json(config["estimator"]))
        if args.executor != "ray" and (args.ray_address or args.gpus_per_trial):
            raise UserError("--ray-address and --gpus-per-trial are for --executor ray")
        if args.executor == "ray":  # Ray missing or unreachable: say so before a run exists
            from archsearch.experiment.ray_executor import check_reachable, import_ray

            import_ray()
            if args.ray_address not in (None, "auto"):
                check_reachable(args.ray_address)
    storage = SQLiteStorage(run_dir / DB_NAME)
    storage.set_meta("config", config)
    progress = not args.no_progress
    print(f"run: {run_dir}  ({config['space']['name']} x {config['strategy']['name']} x "
          f"{config['estimator']['name']}{', resumed' if stored else ''})")
    try:
        if oneshot:
            best = search_enas(enas, run_dir, storage, progress)
        else:
            best = search_blackbox(config, run_dir, storage, args, stored is not None, progress)
        if best is None:
            print(f"no architecture found; see `archsearch show {run_dir}` for the errors")
            return 1
        report_final(config, storage, best, progress)
        print(f"\ndetails: archsearch show {run_dir}   retrain: archsearch train {run_dir}   "
              f"export: archsearch export {run_dir}")
        return 0
    except KeyboardInterrupt:
        print(f"\ninterrupted: finished work is saved; continue with\n  archsearch search "
              f"--run {run_dir} --resume", file=sys.stderr)
        return 130
    finally:
        storage.close()


def report_final(config: dict[str, Any], storage: SQLiteStorage, best: str,
                 progress: bool) -> None:
    """Retrain ``best`` and K random architectures under the final protocol (once per best)."""
    flags = config["flags"]
    k = int(flags.get("baseline_random") or 0)
    final_spec = Spec.from_json(config["final"])
    key = {"best": best, "k": k, "final": config["final"]}
    final = storage.get_meta("final")
    if final is None or final.get("key") != key:
        rows = run_final(config, best, k, final_spec, progress,
                         save_best=Path(storage.path).parent / "best_model.pt")
        final = {"key": key, "rows": rows}
        storage.set_meta("final", final)
    print_final(final["rows"], final_spec, k)


def run_final(config: dict[str, Any], best: str, k: int, final_spec: Spec, progress: bool,
              save_best: Path | None = None) -> dict[str, Any]:
    from tqdm import tqdm

    space = build_space(Spec.from_json(config["space"]))
    total = 1 + k + (1 if final_spec.name == "lm-training" else 0)  # + the LSTM baseline
    bar = tqdm(total=total, desc="final", unit="model", disable=not progress, dynamic_ncols=True)

    def done(role: str, arch: Any, row: dict[str, Any], estimator: Any = None) -> None:
        bar.update(1)

    rows = final_evaluation(space, final_spec, space.parse(best), k, config["flags"]["seed"],
                            on_result=done, save_best=save_best)
    bar.close()
    return rows


def print_final(rows: dict[str, Any], final_spec: Spec, k: int) -> None:
    if final_spec.name in ("full-training", "lm-training"):
        protocol = f"retrained from scratch for {final_spec.config['epochs']:g} epochs"
    else:
        protocol = "the same lookup"
    metric_keys = [m for m in ("val_acc", "test_acc", "valid_ppl", "test_ppl", "params_m")
                   if m in rows["best"]["metrics"]]
    metric_keys = metric_keys or list(rows["best"]["metrics"])
    print(f"\nfinal protocol ({protocol}), best found vs {k} random architecture(s):")
    body = [["best"] + [fmt(rows["best"]["metrics"].get(m)) for m in metric_keys]]
    for i, r in enumerate(rows["random"], 1):
        body.append([f"random {i}"] + [fmt(r["metrics"].get(m)) for m in metric_keys])
    if rows["random"]:
        body.append(["random mean"] + [
            f"{fmt(rows['random_mean'].get(m))} ± {fmt(rows['random_std'].get(m))}"
            for m in metric_keys])
    for b in rows.get("baselines", []):
        body.append([b["name"]] + [fmt(b["metrics"].get(m)) for m in metric_keys])
    print(table(body, [""] + metric_keys))
    print(f"  best:     {rows['best']['arch']}")
    for i, r in enumerate(rows["random"], 1):
        print(f"  random {i}: {r['arch']}")
