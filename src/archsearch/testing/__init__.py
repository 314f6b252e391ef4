"""Test kit for plug-in authors: a toy space and objective, and strategy conformance checks."""

from archsearch.testing.toy import ToyArch, ToyEstimator, ToySpace

__all__ = ["ToyArch", "ToyEstimator", "ToySpace"]
