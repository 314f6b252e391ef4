"""Name -> factory registries for search spaces, strategies, estimators and predictors.

A component registers itself with a decorator where it is defined::

    @SPACES.register("nb201")
    class NB201Space(SearchSpace): ...

and is created by name with plain keyword arguments, which is what crosses to other processes::

    space = SPACES.create("nb201")
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from archsearch.errors import UnknownNameError, UserError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, modules: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self._factories: dict[str, Callable[..., T]] = {}
        self._modules = modules  # imported on first lookup, so that registration has happened
        self._loaded = False

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def decorate(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._factories and self._factories[name] is not factory:
                raise KeyError(f"duplicate {self.kind} name {name!r}")
            self._factories[name] = factory
            return factory

        return decorate

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            for module in self._modules:
                importlib.import_module(module)

    def names(self) -> list[str]:
        self._load()
        return sorted(self._factories)

    def get(self, name: str) -> Callable[..., T]:
        self._load()
        try:
            return self._factories[name]
        except KeyError:
            raise UnknownNameError(self.kind, name, self._factories) from None

    def create(self, name: str, **config: Any) -> T:
        factory = self.get(name)
        try:
            return factory(**config)
        except TypeError as exc:
            if "unexpected keyword argument" in str(exc):
                raise UserError(f"{self.kind} {name!r}: {exc}") from None
            raise


@dataclass(frozen=True)
class Spec:
    """A component by name and plain configuration: what a worker needs to rebuild it."""

    name: str
    config: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "config": dict(self.config)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Spec:
        return cls(data["name"], dict(data.get("config", {})))


SPACES: Registry[Any] = Registry("search space", ("archsearch.spaces", "archsearch.testing.toy"))
STRATEGIES: Registry[Any] = Registry("strategy", ("archsearch.strategies",))
ESTIMATORS: Registry[Any] = Registry(
    "estimator", ("archsearch.estimators", "archsearch.testing.toy")
)
PREDICTORS: Registry[Any] = Registry("predictor", ("archsearch.predictors",))
