"""``archsearch train`` and ``archsearch export``: retrain a found architecture from scratch
(beside K random ones of its space, same protocol) and write it out for use elsewhere."""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path
from typing import Any

import torch

from archsearch.cli.common import DB_NAME, open_run, parse_options
from archsearch.cli.search import NETWORKS, print_final, run_final
from archsearch.errors import UserError
from archsearch.experiment.trial import build_space
from archsearch.registry import SPACES, Spec


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="retrain an architecture from scratch (beside random ones)",
                       description="archsearch train RUN|ARCH_JSON [--epochs N] "
                       "[--baseline-random K]")
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
                   "build={'channels': 36, 'cells_per_stage': 5, 'auxiliary': True}")
    p.add_argument("--json", metavar="OUT", help="write the results as JSON")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(run_command=train)

    e = sub.add_parser("export", help="write a run's architecture (JSON), model (TorchScript) "
                       "and drawing (PNG)")
    e.add_argument("run", help="run folder")
    e.add_argument("--out", help="output folder (default RUN/export)")
    e.set_defaults(run_command=export)


def load_target(target: str) -> tuple[dict[str, Any], str, Path | None]:
    """(run-like config, architecture string, run folder or None)."""
    path = Path(target)
    if path.is_dir() or (path.exists() and path.name == DB_NAME):
        storage = open_run(target)
        config, best = storage.get_meta("config"), storage.get_meta("best_arch")
        storage.close()
        if best is None:
            raise UserError(f"run {target!r} has no architecture yet (its search did not finish)")
        return config, best, path if path.is_dir() else path.parent
    text = path.read_text() if path.is_file() else target
    if not text.lstrip().startswith("{"):
        raise UserError(f"{target!r} is neither a run folder nor architecture JSON "
                        '({"space": ..., "arch": ...})')
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"architecture JSON does not parse: {exc}") from None
    if not isinstance(data, dict) or "space" not in data or "arch" not in data:
        raise UserError('architecture JSON needs "space" and "arch"')
    space = SPACES.create(data["space"])
    arch = space.parse(str(data["arch"]))
    build = NETWORKS.get(data["space"], ({}, {}))[1]
    config = {"flags": {"seed": 0, "data": "digits"}, "space": {"name": data["space"], "config": {}},
              "final": Spec("full-training", {"data": "digits", "epochs": 20.0, "seed": 0,
                                              "device": "auto", "build": dict(build)}).to_json()}
    return config, arch.to_str(), None


def train(args: argparse.Namespace) -> int:
    config, arch, run_dir = load_target(args.target)
    final = Spec.from_json(config["final"])
    if final.name not in ("full-training", "lm-training"):
        raise UserError("this run's estimator is a table lookup; nothing to train")
    options = dict(final.config)
    for flag in ("epochs", "data", "seed", "device"):
        if getattr(args, flag) is not None:
            options[flag] = getattr(args, flag)
    options.update(parse_options(args.final_opt, "--final-opt"))
    config = {**config, "flags": {**config["flags"], "seed": options["seed"]}}
    spec = Spec(final.name, options)
    save = run_dir / "best_model.pt" if run_dir is not None else None
    rows = run_final(config, arch, args.baseline_random, spec, not args.no_progress, save)
    print_final(rows, spec, args.baseline_random)
    if args.json:
        Path(args.json).write_text(json.dumps({"protocol": spec.to_json(), **rows}, indent=2))
        print(f"wrote {args.json}")
    return 0


def export(args: argparse.Namespace) -> int:
    from archsearch.data import load_image_data
    from archsearch.report.draw import draw

    config, arch_text, run_dir = load_target(args.run)
    if run_dir is None:
        raise UserError("export takes a run folder")
    out = Path(args.out) if args.out else run_dir / "export"
    out.mkdir(parents=True, exist_ok=True)
    space = build_space(Spec.from_json(config["space"]))
    arch = space.parse(arch_text)
    (out / "arch.json").write_text(json.dumps(arch.to_json(), indent=2) + "\n")
    draw(arch, out / "cells.png")
    print(f"wrote {out / 'arch.json'}\nwrote {out / 'cells.png'}")
    final = Spec.from_json(config["final"])
    if final.name != "full-training":
        print("(no TorchScript model for this kind of run: retrain with `archsearch train`)")
        return 0
    data = load_image_data(final.config.get("data", "digits"))
    model = space.build(arch, num_classes=data.num_classes, in_channels=data.shape[0],
                        **final.config.get("build", {}))
    weights = run_dir / "best_model.pt"
    trained = weights.exists()
    if trained:
        model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
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
