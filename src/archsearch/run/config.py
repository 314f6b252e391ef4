"""A run's configuration: what the user gives (:class:`RunConfig`), and the fully resolved form
every run folder keeps (``RUN/config.toml``) and a resume compares against.

Resolution (:func:`resolve`) fills each section from, in increasing precedence: the space's
and method's presets, the section's own options (``--method-opt``, ``[method]`` in TOML...),
then the run-level values linked to them (``data``, ``seed``, ``device``, ``epochs``,
``final_epochs``). Every option is checked (unknown keys name the valid ones; types; ranges)
before anything is built, computed or written. The resolved form lists every option of every
component, defaults included, so that a run can be repeated from its folder alone::

    [run]        method, space, data, seed, device, epochs, final_epochs, baseline_random, ...
    [space]      name and options
    [method]     every option of the method (a strategy's, or a one-shot method's config)
    [estimator]  name and every option of the estimator
    [final]      name and every option of the final retraining's estimator
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archsearch import methods
from archsearch.config import NONE_TEXT, Config, option, signature_options
from archsearch.errors import UserError
from archsearch.registry import ESTIMATORS, SPACES, STRATEGIES

# estimators a trials method may use, and those only a one-shot method trains
SUPERNET_ESTIMATORS = ("shared-weights", "shared-rnn")
RUNTIME = ("trials", "time", "retries")  # may change when a run is resumed


@dataclass(frozen=True)
class RunConfig(Config):
    """What a run is asked to do (``None``: the method's or space's default)."""

    method: str = option("enas", "the search method (archsearch methods lists them)")
    space: str | None = option(None, "the search space (default: the method's)")
    data: str | None = option(None, "digits (default), a cifar-10-batches-py folder, an .npz, "
                              "or a Penn Treebank folder for enas-rnn")
    seed: int | None = option(None, "seed of the search and the training (default 0)", minimum=0)
    device: str | None = option(None, "auto (default), cpu or cuda")
    epochs: float | None = option(None, "one-shot: search epochs; trials: training epochs per "
                                  "trial (positive)")
    final_epochs: float | None = option(None, "epochs of the final retraining (default 20; "
                                        "positive)")
    baseline_random: int = option(3, "random architectures retrained beside the best",
                                  minimum=0)
    trials: int | None = option(None, "trials methods: trials in all (default 40 unless time "
                                "is given)", minimum=1)
    time: float | None = option(None, "trials methods: stop proposing after this many "
                                "seconds (positive)")
    retries: int = option(1, "times a failed trial is retried", minimum=0)
    estimator: str | None = option(None, "trials methods: full-training (default), tabular, "
                                   "zero-cost:PROXY, supernet-checkpoint, ...")
    benchmark: str | None = option(None, "tabular: the CSV table")
    metric: str | None = option(None, "tabular: the metric column")
    final_estimator: str | None = option(None, "the final retraining's estimator (default: "
                                         "full-training, lm-training on text, or the table)")
    space_options: dict = option({}, "options of the space")
    method_options: dict = option({}, "options of the method")
    estimator_options: dict = option({}, "options of the estimator")
    final_options: dict = option({}, "options of the final retraining's estimator")

    def __post_init__(self) -> None:
        for name in ("epochs", "final_epochs", "time"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise UserError(f"{name} must be positive, not {value:g}")


# ---- resolution ---------------------------------------------------------------------------

def resolve(cfg: RunConfig) -> dict[str, Any]:
    """The fully resolved configuration (sections of plain values); see the module docstring."""
    method = methods.get(cfg.method)
    space_name = cfg.space or method.default_space
    space_cls = SPACES.get(space_name)
    space_options = signature_options(space_cls, cfg.space_options, f"space {space_name}")
    preset = method.preset(space_name)
    loop = method.kind == "loop"
    text = getattr(space_cls, "data", "images") == "text"
    section = cfg.method_options if loop else cfg.estimator_options  # where epochs go
    run = {
        "method": method.name, "space": space_name,
        "data": _pick(cfg.data, preset.get("run", {}).get("data"), "digits"),
        "seed": _pick(cfg.seed, 0), "device": _pick(cfg.device, "auto"),
        "epochs": _pick(cfg.epochs, section.get("epochs"), preset.get("run", {}).get("epochs"),
                        30 if loop else 4.0),
        "final_epochs": _pick(cfg.final_epochs, cfg.final_options.get("epochs"), 20.0),
        "baseline_random": cfg.baseline_random, "trials": cfg.trials, "time": cfg.time,
        "retries": cfg.retries,
    }
    if text and run["data"] == "digits":
        raise UserError(f"{space_name} is searched on text: give --data PATH_TO_PTB_FOLDER (a "
                        "folder with ptb.train.txt, ptb.valid.txt and ptb.test.txt)")
    if loop and not float(run["epochs"]).is_integer():
        raise UserError(f"a one-shot search runs whole epochs: --epochs {run['epochs']:g} is "
                        "not one")
    if loop and (cfg.trials is not None or cfg.time is not None):
        raise UserError(f"{method.name} runs for --epochs; --trials and --time are for trials "
                        "methods (random, evolution, ...)")
    from archsearch.estimators.full_training import resolve_device

    resolve_device(run["device"])  # an unknown device, or CUDA without one: refused now
    linked = {"data": run["data"], "seed": run["seed"], "device": run["device"]}
    method_options = _method_options(method, preset, cfg, run)
    if method.name == "hyperband" and _estimator_name(cfg)[0] == "full-training":
        # promotions continue the lower rung's network; the schedule spans the largest budget
        preset = {**preset, "estimator": {"continue_dir": "{run}/rungs",
                                          "horizon": method_options["max_budget"],
                                          **preset.get("estimator", {})}}
    estimator = _estimator(method, space_cls, cfg, preset, run, linked, text)
    final = _final(cfg, space_cls, preset, run, linked, text, estimator)
    for section in (estimator, final):
        for key, builder in (("build", "build"), ("supernet", "supernet")):
            if isinstance(section.get(key), dict):
                check_network(space_cls, builder, section[key], f"{section['name']} {key}")
    return {"run": run, "space": {"name": space_name, **space_options},
            "method": method_options, "estimator": estimator, "final": final}


def _pick(*values: Any) -> Any:
    return next(v for v in values if v is not None)


def _method_options(method: methods.Method, preset: dict, cfg: RunConfig,
                    run: dict) -> dict[str, Any]:
    given = {**preset.get("method", {}), **cfg.method_options}
    where = f"method {method.name}"
    if method.config is not None:  # a one-shot method's typed config; epochs from the run
        given["epochs"] = int(run["epochs"])
        return method.config.from_options(given, where).to_dict()
    extras = {}
    if method.extras is not None:
        names = {n for n, *_ in method.extras.field_specs()}
        extras = method.extras.from_options({k: v for k, v in given.items() if k in names},
                                            where).to_dict()
        given = {k: v for k, v in given.items() if k not in names}
    options = signature_options(STRATEGIES.get(method.name), {**given, "seed": run["seed"]},
                                where)
    options.pop("seed")
    return {**options, **extras}


def _estimator(method: methods.Method, space_cls: Any, cfg: RunConfig, preset: dict,
               run: dict, linked: dict, text: bool) -> dict[str, Any]:
    if method.kind == "loop":
        if cfg.estimator not in (None, *SUPERNET_ESTIMATORS):
            raise UserError(f"{method.name} trains shared weights: drop --estimator "
                            f"{cfg.estimator} (it uses {method.estimator})")
        if not hasattr(space_cls, "supernet"):
            raise UserError(f"space {space_cls.name!r} has no supernet, so {method.name} (a "
                            "one-shot method) cannot search it; use a trials method (random, "
                            "evolution, reinforce, nas-rl, hyperband) or a space with one "
                            "(darts, enas-micro, enas-macro, enas-rnn, nb201)")
        missing = [a for a in method.requires if not hasattr(space_cls, a)]
        if missing:
            able = [n for n in SPACES.names() if all(hasattr(SPACES.get(n), a)
                                                     for a in ("supernet", *method.requires))]
            raise UserError(f"{method.name} needs a space with {' and '.join(missing)}; "
                            f"space {space_cls.name!r} has none (spaces that have: "
                            f"{', '.join(able)})")
        name = "shared-rnn" if text else "shared-weights"
        if text and method.name != "enas":
            raise UserError(f"{method.name} searches image spaces; on text use enas")
        net = space_cls.presets.get("search", {})
        defaults = {**linked, "epochs": int(run["epochs"]),
                    **(net if text else {"supernet": dict(net)})}
    else:
        name, arg = _estimator_name(cfg)
        if name in SUPERNET_ESTIMATORS:
            raise UserError(f"{name} is a supernet that only a one-shot method trains (enas, "
                            f"spos): with --method {method.name} it would rank architectures "
                            "with untrained weights. Use --method spos to search a trained "
                            "supernet, or another estimator")
        defaults = _trial_defaults(name, arg, cfg, space_cls, run, linked)
    options = {**defaults, **preset.get("estimator", {}), **cfg.estimator_options}
    _link(options, cfg, linked)
    if "epochs" in options:  # the run's epochs (from --epochs, the section or the preset)
        options["epochs"] = int(run["epochs"]) if method.kind == "loop" else run["epochs"]
    return {"name": name, **_checked_estimator(name, options)}


def _link(options: dict[str, Any], cfg: RunConfig, linked: dict[str, Any]) -> None:
    """Run-level data, seed and device given explicitly override a section's own."""
    options.update({k: v for k, v in linked.items()
                    if k in options and getattr(cfg, k) is not None})


def _estimator_name(cfg: RunConfig) -> tuple[str, str]:
    name = cfg.estimator or ("tabular" if cfg.benchmark else "full-training")
    base, _, arg = name.partition(":")  # zero-cost:naswot
    ESTIMATORS.get(base)
    return base, arg


def _trial_defaults(name: str, arg: str, cfg: RunConfig, space_cls: Any, run: dict,
                    linked: dict) -> dict[str, Any]:
    if name == "tabular":
        if not cfg.benchmark or not cfg.metric:
            if "benchmark" not in cfg.estimator_options or "metric" not in cfg.estimator_options:
                raise UserError("the tabular estimator needs --benchmark CSV and --metric COLUMN")
            return {}
        return {"benchmark": cfg.benchmark, "metric": cfg.metric}
    if name == "zero-cost":  # the proxies score the space's full network, untrained
        return {"proxy": arg or "naswot", "data": linked["data"], "seed": linked["seed"]}
    if name == "full-training":
        return {**linked, "epochs": run["epochs"],
                "build": dict(space_cls.presets.get("search", {}))}
    if name == "lm-training":
        return {**linked, "epochs": run["epochs"], **space_cls.presets.get("search", {})}
    return {}


def _checked_estimator(name: str, options: dict[str, Any]) -> dict[str, Any]:
    resolved = signature_options(ESTIMATORS.get(name), options, f"estimator {name}")
    return {k: v for k, v in resolved.items() if k != "space"}


def _final(cfg: RunConfig, space_cls: Any, preset: dict, run: dict, linked: dict, text: bool,
           estimator: dict[str, Any]) -> dict[str, Any]:
    if estimator["name"] == "tabular":
        name = "tabular"
        defaults = {k: v for k, v in estimator.items() if k != "name"}
    else:
        name = cfg.final_estimator or ("lm-training" if text else "full-training")
        net = space_cls.presets.get("final", {})
        if estimator["name"] == "full-training":
            net = estimator.get("build") or net  # retrain what the trials trained
        defaults = {**linked, "epochs": run["final_epochs"],
                    **(net if name == "lm-training" else {"build": dict(net)})}
    options = {**defaults, **preset.get("final", {}), **cfg.final_options}
    if "epochs" in options:
        options["epochs"] = run["final_epochs"]
    _link(options, cfg, linked)
    return {"name": name, **_checked_estimator(name, options)}


# ---- TOML ---------------------------------------------------------------------------------

SECTIONS = ("run", "space", "method", "estimator", "final")


def from_toml(path: str | Path) -> RunConfig:
    """A RunConfig from a TOML file (a user's, or a run folder's resolved config.toml)."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UserError(f"config file {str(path)!r} does not exist") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not valid TOML ({exc})") from None
    return from_sections(data, str(path))


def from_sections(data: dict[str, Any], where: str) -> RunConfig:
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        raise UserError(f"{where}: unknown section {', '.join(unknown)}; valid: "
                        f"{', '.join(SECTIONS)}")
    run = {k: v for k, v in dict(data.get("run", {})).items() if v != NONE_TEXT}
    space, estimator, final = (dict(data.get(k, {})) for k in ("space", "estimator", "final"))
    for section, key, target in ((space, "name", "space"), (estimator, "name", "estimator"),
                                 (final, "name", "final_estimator")):
        name = section.pop(key, None)
        if name is not None:
            if run.get(target) not in (None, name):
                raise UserError(f"{where}: [{target}] says {name!r} but [run] says "
                                f"{run[target]!r}")
            run[target] = name
    return RunConfig.from_options({**run, "space_options": space,
                                   "method_options": dict(data.get("method", {})),
                                   "estimator_options": estimator, "final_options": final},
                                  f"{where} [run]")


def to_toml(resolved: dict[str, Any]) -> str:
    import tomli_w

    def plain(value: Any) -> Any:
        if value is None:
            return NONE_TEXT
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return value

    header = ("# archsearch run configuration, fully resolved: every option of every part.\n"
              "# Repeat this run with: archsearch search --config THIS_FILE --run NEW_FOLDER\n")
    return header + tomli_w.dumps({k: plain(resolved[k]) for k in SECTIONS if k in resolved})


def differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """``section.key: run has X, now Y`` for every resolved option that differs (runtime
    options excepted: they may change on resume)."""
    def flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in d.items():
            if isinstance(v, dict) and prefix.count(".") < 1:
                out.update(flat(v, f"{prefix}{k}."))
            else:
                out[f"{prefix}{k}"] = v
        return out

    a, b = flat(old), flat(new)
    skip = {f"run.{k}" for k in RUNTIME}
    return [f"  {k}: run has {a.get(k, '(unset)')!r}, now {b.get(k, '(unset)')!r}"
            for k in sorted(set(a) | set(b)) if k not in skip and _norm(a.get(k)) != _norm(b.get(k))]


def _norm(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_norm(v) for v in value]
    if isinstance(value, list):
        return [_norm(v) for v in value]
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in value.items()}
    return value


def check_network(space_cls: Any, builder: str, options: dict[str, Any], where: str) -> None:
    """A network's options (``build={...}``, ``supernet={...}``) against the space's
    ``build`` / ``supernet`` keyword arguments: an unknown one is refused, naming the valid
    ones (a misspelt ``chanels`` would otherwise build the default network)."""
    import inspect

    function = getattr(space_cls, builder, None)
    if function is None:
        return
    params = inspect.signature(function).parameters
    if any(p.kind is p.VAR_KEYWORD and name != "_" for name, p in params.items()):
        return  # passed on to a model that checks them (enas-rnn's language model)
    fixed = ("self", "arch", "num_classes", "in_channels", "vocab_size")
    valid = [n for n, p in params.items() if n not in fixed and p.kind is not p.VAR_KEYWORD]
    unknown = sorted(set(options) - set(valid) - set(fixed))
    if unknown:
        raise UserError(f"{where}: unknown option {', '.join(map(repr, unknown))} for space "
                        f"{space_cls.name!r}; valid: {', '.join(valid)}")
