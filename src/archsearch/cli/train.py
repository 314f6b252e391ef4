"""``archsearch train`` and ``archsearch export``: retrain a found architecture from scratch
(beside K random ones of its space, same protocol) and write it out for use elsewhere."""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path
from typing import Any

import torch

from archsearch.checkpoint_io import read_checkpoint
from archsearch.cli.common import check_output, parse_options
from archsearch.cli.progress import Bars
from archsearch.cli.report import print_final
from archsearch.errors import UserError
from archsearch.experiment.storage import SQLiteStorage
from archsearch.run import Run, RunConfig, resolve
from archsearch.run.build import space_spec, spec
from archsearch.run.config import _checked_estimator
from archsearch.run.folder import DB_NAME


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="retrain an architecture from scratch (beside random ones)",
                       description="archsearch train RUN|ARCH_JSON [--epochs N] "
                       "[--baseline-random K] [--final-opt KEY=VALUE ...]")
    p.add_argument("target", help="a run folder, or architecture JSON (a file, or the text "
                   '{"space": ..., "arch": ...})')
    p.add_argument("--epochs", type=float, help="training epochs (default: the run's final "
                   "protocol, else 20)")
    p.add_argument("--baseline-random", type=int, default=0, metavar="K",
                   help="also train K random architectures of the space, same protocol")
    p.add_argument("--data", help="data (default: the run's, else digits)")
    p.add_argument("--seed", type=int, help="seed (default: the run's, else 0)")
    p.add_argument("--device", help="auto, cpu or cuda")
    p.add_argument("--final-opt", action="append", metavar="KEY=VALUE",
                   help="training option, e.g. cutout=16, drop_path=0.2, "
                   "build={'channels': 36, 'cells_per_stage': 5, 'auxiliary': True}; for a run, "
                   "these correct its final protocol")
    p.add_argument("--json", metavar="OUT", help="write the results as JSON")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(run_command=train)

    e = sub.add_parser("export", help="write a run's architecture (JSON), model (TorchScript) "
                       "and drawing (PNG)")
    e.add_argument("run", help="run folder")
    e.add_argument("--out", help="output folder (default RUN/export)")
    e.set_defaults(run_command=export)


def is_run(target: str) -> bool:
    path = Path(target)
    return path.is_dir() or (path.is_file() and path.name == DB_NAME)


def final_section(base: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """A final protocol with this command's corrections, checked before any training."""
    options = {k: v for k, v in base.items() if k != "name"}
    for flag in ("epochs", "data", "seed", "device"):
        if getattr(args, flag) is not None:
            options[flag] = getattr(args, flag)
    if args.epochs is not None and args.epochs <= 0:
        raise UserError(f"--epochs must be positive, not {args.epochs:g}")
    options.update(parse_options(args.final_opt, "--final-opt"))
    if base["name"] == "tabular":
        raise UserError("this run's estimator is a table lookup; nothing to train")
    return {"name": base["name"], **_checked_estimator(base["name"], options)}


def train(args: argparse.Namespace) -> int:
    if args.baseline_random < 0:
        raise UserError(f"--baseline-random must be at least 0, not {args.baseline_random}")
    if args.seed is not None and args.seed < 0:
        raise UserError(f"--seed must be at least 0, not {args.seed}")
    check_output(args.json)
    if is_run(args.target):
        folder = Path(args.target)
        run = Run.resume(folder if folder.is_dir() else folder.parent)
        try:
            final = final_section(run.resolved["final"], args)
            rows = run.final(Bars(not args.no_progress), final, args.baseline_random)
        finally:
            run.close()
    else:
        space_name, arch = parse_arch_json(args.target)
        resolved = resolve(RunConfig(method="random", space=space_name))
        final = final_section(resolved["final"], args)
        rows = standalone_rows(resolved, arch, args, final)
    print_final(rows, final, args.baseline_random)
    if args.json:
        Path(args.json).write_text(json.dumps({"protocol": final, **rows}, indent=2))
        print(f"wrote {args.json}")
    return 0


def parse_arch_json(target: str) -> tuple[str, str]:
    from archsearch.registry import SPACES

    path = Path(target)
    text = path.read_text() if path.is_file() else target
    if not text.lstrip().startswith("{"):
        raise UserError(f"{target[:80]!r} is neither a run folder nor architecture JSON "
                        '({"space": ..., "arch": ...})')
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"architecture JSON does not parse: {exc}") from None
    if not isinstance(data, dict) or "space" not in data or "arch" not in data:
        raise UserError('architecture JSON needs "space" and "arch"')
    space = SPACES.create(str(data["space"]))
    return space.name, space.parse(str(data["arch"])).to_str()


def standalone_rows(resolved: dict[str, Any], arch: str, args: argparse.Namespace,
                    final: dict[str, Any]) -> dict[str, Any]:
    from archsearch.experiment.final import final_evaluation
    from archsearch.experiment.trial import build_space

    space = build_space(space_spec(resolved))
    return final_evaluation(space, spec(final), space.parse(arch), args.baseline_random,
                            final.get("seed", 0))


def export(args: argparse.Namespace) -> int:
    from archsearch.data import load_image_data
    from archsearch.experiment.trial import build_space
    from archsearch.report.draw import draw

    folder = Path(args.run)
    if not is_run(args.run):
        raise UserError(f"no run at {args.run!r} (export takes a run folder)")
    storage = SQLiteStorage(folder / DB_NAME, readonly=True)
    resolved, best = storage.get_meta("config"), storage.get_meta("best_arch")
    storage.close()
    if not isinstance(resolved, dict) or "run" not in resolved:
        raise UserError(f"{folder / DB_NAME} holds no run configuration this version reads")
    if best is None:
        raise UserError(f"run {args.run!r} has no architecture yet (its search did not finish)")
    out = Path(args.out) if args.out else folder / "export"
    out.mkdir(parents=True, exist_ok=True)
    space = build_space(space_spec(resolved))
    arch = space.parse(best)
    (out / "arch.json").write_text(json.dumps(arch.to_json(), indent=2) + "\n")
    draw(space, arch, out / "cells.png")
    print(f"wrote {out / 'arch.json'}\nwrote {out / 'cells.png'}")
    final = resolved["final"]
    if final["name"] != "full-training":
        print("(no TorchScript model for this kind of run: retrain with `archsearch train`)")
        return 0
    data = load_image_data(final.get("data", "digits"))
    model = space.build(arch, num_classes=data.num_classes, in_channels=data.shape[0],
                        **(final.get("build") or {}))
    weights = folder / "best_model.pt"
    trained = weights.exists()
    if trained:
        model.load_state_dict(read_checkpoint(weights, str(weights),
                                              "retrain it with `archsearch train`"))
    model.eval()
    example = data.test.x[:2]
    note = "trained weights" if trained else "untrained: run `archsearch train` first for weights"
    with warnings.catch_warnings():  # TorchScript is deprecated in recent torch; still asked for
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.trace(model, example).save(str(out / "model.pt"))
    print(f"wrote {out / 'model.pt'} (TorchScript, input {tuple(example.shape[1:])}, {note})")
    try:  # the successor format, where the network exports cleanly
        torch.export.save(torch.export.export(model, (example,)), str(out / "model.pt2"))
        print(f"wrote {out / 'model.pt2'} (torch.export program)")
    except Exception as exc:
        print(f"(no torch.export program: {type(exc).__name__}: {str(exc)[:120]})")
    return 0
