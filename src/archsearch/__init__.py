"""archsearch: neural architecture search as search space x strategy x estimator."""

from archsearch.errors import ArchitectureError, UserError
from archsearch.registry import ESTIMATORS, SPACES, STRATEGIES, Spec
from archsearch.types import Budget, Decision, Result, TrialRecord, TrialState

__version__ = "0.1.0"

__all__ = [
    "ESTIMATORS",
    "SPACES",
    "STRATEGIES",
    "ArchitectureError",
    "Budget",
    "Decision",
    "Result",
    "Spec",
    "TrialRecord",
    "TrialState",
    "UserError",
    "__version__",
]
