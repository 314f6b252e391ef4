"""Runs: a search in a folder, driven from Python or the CLI alike (:class:`Run`)."""

from archsearch.run.config import RunConfig, from_toml, resolve, to_toml
from archsearch.run.run import Run

__all__ = ["Run", "RunConfig", "from_toml", "resolve", "to_toml"]
