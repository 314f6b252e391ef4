"""``archsearch show``: a run's best architectures and trial table, or one architecture's size."""

from __future__ import annotations

import argparse
import json
from typing import Any

from archsearch.cli.common import fmt, jsonable, open_run, table
from archsearch.errors import UserError
from archsearch.experiment.experiment import best_trial
from archsearch.registry import SPACES
from archsearch.types import TrialState


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("show", help="show a run, or an architecture's parameters and FLOPs",
                       description="archsearch show RUN [--json] | "
                       "archsearch show --space nb201 --arch STRING [--json]")
    p.add_argument("run", nargs="?", help="run folder")
    p.add_argument("--space", help="with --arch: the architecture's space")
    p.add_argument("--arch", help="an architecture string (or JSON) of --space")
    p.add_argument("--top", type=int, default=5, help="best architectures to list (default 5)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(run_command=run)


def run(args: argparse.Namespace) -> int:
    if args.arch is not None or args.space is not None:
        if args.run:
            raise UserError("give either a RUN folder or --space and --arch, not both")
        if args.arch is None or args.space is None:
            raise UserError("show an architecture with both --space NAME and --arch STRING")
        return show_arch(args.space, args.arch, args.json)
    if not args.run:
        raise UserError("give a RUN folder, or --space and --arch")
    return show_run(args.run, args.top, args.json)


def arch_summary(space_name: str, text: str) -> dict[str, Any]:
    from archsearch.nn.ops import count_params_m
    from archsearch.nn.profile import count_flops_m

    space = SPACES.create(space_name)
    arch = space.from_json(text) if text.lstrip().startswith("{") else space.parse(text)
    language = getattr(space, "data", "images") == "text"  # a language model: no image FLOPs
    # the space's default network (NB201: CIFAR-10, C=16, N=5), on RGB images
    model = space.build(arch) if language else space.build(arch, in_channels=3)
    return {
        "space": space_name, "arch": arch.to_str(), "iso_key": space.iso_key(arch),
        "params_m": round(count_params_m(model), 6),
        "flops_m": None if language else round(count_flops_m(model, (1, 3, 32, 32)), 6),
        "input": None if language else [3, 32, 32],
    }


def show_arch(space_name: str, text: str, as_json: bool) -> int:
    info = arch_summary(space_name, text)
    if as_json:
        print(json.dumps(info, indent=2))
    else:
        for k, v in info.items():
            print(f"{k:>9}: {v}")
        if info["flops_m"] is not None:
            print("(FLOPs: multiply-accumulates of the convolutions and the classifier for one "
                  "3x32x32 image)")
    return 0


def describe(config: dict[str, Any]) -> str:
    """``space x method x estimator`` of a run's stored configuration (either version)."""
    if "run" in config:  # the resolved form
        return (f"{config['run']['space']} x {config['run']['method']} x "
                f"{config['estimator']['name']}")
    return (f"{config['space']['name']} x {config['strategy']['name']} x "
            f"{config['estimator']['name']}")


def show_run(run_dir: str, top: int, as_json: bool) -> int:
    if top < 0:
        raise UserError(f"--top must be at least 0, not {top}")
    storage = open_run(run_dir)
    records = storage.trials()
    config = storage.get_meta("config") or {}
    final = storage.get_meta("final")
    epochs = storage.get_meta("epochs") or []
    stated = storage.get_meta("best_arch")  # the search's answer (ENAS: the derived one)
    storage.close()
    best = best_trial(records)
    if stated is not None:
        best = next((r for r in reversed(records) if r.arch == stated), best)
    counts = {s.value: sum(r.state is s for r in records) for s in TrialState}
    ranked = sorted((r for r in records if r.objective is not None),
                    key=lambda r: r.objective, reverse=True)  # type: ignore[arg-type, return-value]
    if as_json:
        print(json.dumps(jsonable({
            "run": run_dir, "config": config, "n_trials": counts,
            "best_arch": stated if stated is not None else (best.arch if best else None),
            "best_objective": best.objective if best else None,
            "best_metrics": dict(best.metrics) if best else None,
            "final": final["rows"] if final else None, "epochs": epochs,
            "trials": [{"number": r.number, "arch": r.arch, "state": r.state.value,
                        "objective": r.objective, "metrics": dict(r.metrics), "error": r.error,
                        "seconds": r.seconds, "attempts": r.attempts,
                        "budget": None if r.budget is None else r.budget.to_json(),
                        "cost_seconds": r.cost_seconds} for r in records],
        }), indent=2, default=str, allow_nan=False))
        return 0
    print(f"run {run_dir}: " + ", ".join(f"{v} {k}" for k, v in counts.items() if v))
    if config:
        print(f"  {describe(config)}")
    if epochs:
        show_epochs(epochs, stated)
    if ranked:
        print(f"\nbest {min(top, len(ranked))}:")
        print(table([[str(r.number), fmt(r.objective), r.arch] for r in ranked[:top]],
                    ["trial", "objective", "architecture"]))
    if records:
        show_trials(records)
    return 0


def show_epochs(epochs: list[dict[str, Any]], stated: str | None) -> None:
    keys = [k for k in ("stage", "cells", "skip_dropout", "shared_loss", "shared_acc",
                        "reward", "entropy", "alpha_entropy", "skip_connects", "derived_score")
            if any(k in r for r in epochs)]
    print("\nepochs:")
    print(table([[str(r["epoch"])] + [fmt(r.get(k)) for k in keys] + [fmt(r.get("seconds"), 1),
                 r["derived"][:80]] for r in epochs], ["epoch", *keys, "seconds", "derived"]))
    stops = [r for r in epochs if "stopped_by" in r]
    if stops:
        print(f"stopped early after epoch {stops[-1]['epoch']} by the "
              f"{stops[-1]['stopped_by']} rule")
    if stated is not None:
        print(f"answer: {stated}")


def show_trials(records: list[Any]) -> None:
    metric_keys = sorted({k for r in records for k in r.metrics})[:5]
    budgets = any(r.budget is not None for r in records)
    print("\ntrials:")
    retried = any(r.attempts > 1 for r in records)
    print(table(
        [[str(r.number), r.state.value, fmt(r.objective)]
         + ([r.budget.key() if r.budget else "-"] if budgets else [])
         + [fmt(r.metrics.get(k)) for k in metric_keys]
         + [fmt(r.seconds, 1)] + ([str(r.attempts)] if retried else [])
         + [(r.error if r.state.value == "failed" else r.arch)[:80]] for r in records],
        ["trial", "state", "objective"] + (["budget"] if budgets else []) + metric_keys
        + ["seconds"] + (["attempts"] if retried else []) + ["architecture / error"],
    ))
    for r in records:  # retried trials that finished: what their failed attempts said
        if r.attempts > 1 and r.state.value == "complete" and r.error:
            print(f"  trial {r.number}: {r.error[:160]}")
