"""Typed, frozen configurations that reject unknown keys and name the valid ones.

A method's or a run's configuration is a frozen dataclass deriving from :class:`Config`; its
fields carry their documentation (and the paper's value where it differs) in ``option()``::

    @dataclass(frozen=True)
    class ENASConfig(Config):
        controller_steps: int = option(30, "controller Adam steps per epoch", minimum=0)

``Config.from_options(mapping)`` checks every key and value before anything runs: an unknown
key is refused with the list of valid ones, a value of the wrong type or out of range with
what is expected. Components that take keyword arguments (strategies, estimators) get the same
checks from their signature: :func:`signature_options`.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar

from archsearch.errors import UserError

C = TypeVar("C", bound="Config")
NONE_TEXT = "none"  # how TOML (which has no null) writes an option set to None
UNIONS = (typing.Union, types.UnionType)


def option(default: Any, help: str, paper: Any = dataclasses.MISSING, *,
           minimum: float | None = None, maximum: float | None = None,
           choices: tuple[Any, ...] | None = None) -> Any:
    """A documented config field: its default, one line of help, the paper's value (when the
    default differs from it) and the checks its values must pass."""
    meta = {"help": help, "minimum": minimum, "maximum": maximum, "choices": choices}
    if paper is not dataclasses.MISSING:
        meta["paper"] = paper
    if isinstance(default, (dict, list)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _type_name(hint: Any) -> str:
    if hint is type(None):
        return "None"
    if typing.get_origin(hint) in UNIONS:
        return " | ".join(_type_name(a) for a in typing.get_args(hint))
    origin = typing.get_origin(hint)
    return getattr(origin or hint, "__name__", str(hint))


def check_value(where: str, key: str, value: Any, hint: Any) -> Any:
    """``value`` as the type ``hint`` asks for (ints accepted as floats, lists as tuples,
    ``"none"`` as None where None is allowed), or a UserError saying what was expected."""
    args = typing.get_args(hint)
    origin = typing.get_origin(hint)
    if origin in UNIONS:
        if type(None) in args and (value is None or value == NONE_TEXT):
            return None
        for arm in (a for a in args if a is not type(None)):
            try:
                return check_value(where, key, value, arm)
            except UserError:
                continue
        raise UserError(f"{where}: {key} must be {_type_name(hint)}, not {value!r}")
    if hint is Any or hint is object:
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif hint is str:
        if isinstance(value, str):
            return value
    elif origin in (dict, Mapping) or hint in (dict, Mapping):
        if isinstance(value, Mapping):
            return dict(value)
    elif origin in (list, tuple) or hint in (list, tuple):
        if isinstance(value, (list, tuple)):
            item = args[0] if args else Any
            items = [check_value(where, f"{key}[{i}]", v, item) for i, v in enumerate(value)]
            return tuple(items) if (origin or hint) is tuple else items
    else:
        return value  # a type this module does not check
    raise UserError(f"{where}: {key} must be {_type_name(hint)}, not {value!r}")


def _check_meta(where: str, key: str, value: Any, meta: Mapping[str, Any]) -> None:
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        raise UserError(f"{where}: {key} must be one of {', '.join(map(str, choices))}, "
                        f"not {value!r}")
    if isinstance(value, str):
        return
    if not math.isfinite(value):
        raise UserError(f"{where}: {key} must be a finite number, not {value}")
    low, high = meta.get("minimum"), meta.get("maximum")
    if low is not None and value < low:
        raise UserError(f"{where}: {key} must be at least {low:g}, not {value:g}")
    if high is not None and value > high:
        raise UserError(f"{where}: {key} must be at most {high:g}, not {value:g}")


class Config:
    """Base of the frozen config dataclasses (see the module docstring)."""

    kind: ClassVar[str] = "option"

    @classmethod
    def field_specs(cls) -> list[tuple[str, Any, Any, Mapping[str, Any]]]:
        """(name, type, default, metadata) per field, in order."""
        hints = typing.get_type_hints(cls)
        out = []
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            default = (f.default_factory() if f.default_factory is not dataclasses.MISSING
                       else f.default)
            out.append((f.name, hints[f.name], default, f.metadata))
        return out

    @classmethod
    def from_options(cls: type[C], options: Mapping[str, Any] | None, where: str = "") -> C:
        where = where or cls.__name__
        options = dict(options or {})
        specs = {name: (hint, meta) for name, hint, _, meta in cls.field_specs()}
        unknown = sorted(set(options) - set(specs))
        if unknown:
            raise UserError(f"{where}: unknown {cls.kind} {', '.join(map(repr, unknown))}; "
                            f"valid: {', '.join(specs) or '(none)'}")
        values = {}
        for key, value in options.items():
            hint, meta = specs[key]
            values[key] = check_value(where, key, value, hint)
            _check_meta(where, key, values[key], meta)
        try:
            return cls(**values)
        except (TypeError, ValueError) as exc:
            raise UserError(f"{where}: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    def replace(self: C, **changes: Any) -> C:
        return type(self).from_options({**self.to_dict(), **changes})


def signature_options(factory: Callable[..., Any], options: Mapping[str, Any], where: str,
                      skip: tuple[str, ...] = ("self", "space")) -> dict[str, Any]:
    """``options`` checked against ``factory``'s keyword parameters (their names, annotated
    types and defaults): unknown keys are refused naming the valid ones; the result holds
    every parameter, defaults filled in (the fully resolved configuration)."""
    target = factory.__init__ if inspect.isclass(factory) else factory  # type: ignore[misc]
    signature = inspect.signature(target)
    try:
        hints = typing.get_type_hints(target)
    except Exception:
        hints = {}
    params = {n: p for n, p in signature.parameters.items()
              if n not in skip and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    takes_more = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    unknown = sorted(set(options) - set(params))
    if unknown and not takes_more:
        raise UserError(f"{where}: unknown option {', '.join(map(repr, unknown))}; "
                        f"valid: {', '.join(params)}")
    resolved: dict[str, Any] = {}
    for name, param in params.items():
        if name in options:
            resolved[name] = check_value(where, name, options[name], hints.get(name, Any))
        elif param.default is not inspect.Parameter.empty:
            resolved[name] = param.default
    missing = [n for n, p in params.items() if n not in resolved]
    if missing:
        raise UserError(f"{where}: needs {', '.join(missing)}")
    resolved.update({k: v for k, v in options.items() if k not in params})  # passed on as is
    return resolved
