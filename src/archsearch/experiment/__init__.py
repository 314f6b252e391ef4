"""Running a search: the experiment loop, its storage and its executors."""

from archsearch.experiment.executor import InlineExecutor, ProcessPoolTrialExecutor
from archsearch.experiment.experiment import Experiment, best_trial
from archsearch.experiment.storage import MemoryStorage, SQLiteStorage
from archsearch.experiment.trial import TrialTask, run_trial

__all__ = [
    "Experiment", "InlineExecutor", "MemoryStorage", "ProcessPoolTrialExecutor",
    "SQLiteStorage", "TrialTask", "best_trial", "run_trial",
]
