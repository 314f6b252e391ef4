"""Damaged torch files are clear errors: what the file is, why it cannot be read, what to do."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch

from archsearch.checkpoint_io import read_checkpoint
from archsearch.errors import UserError
from archsearch.experiment import Experiment, MemoryStorage
from archsearch.experiment.trial import build_space
from archsearch.registry import STRATEGIES, Spec


def saved(tmp_path: Path) -> Path:
    path = tmp_path / "state.pt"
    torch.save({"w": torch.arange(4.0), "step": 3}, path)
    return path


def test_a_readable_file_is_read(tmp_path: Path) -> None:
    state = read_checkpoint(saved(tmp_path), "the state", "start over")
    assert state["step"] == 3 and torch.equal(state["w"], torch.arange(4.0))


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "a pickle of code"])
def test_a_damaged_file_names_itself_the_reason_and_the_fix(tmp_path: Path, damage: str) -> None:
    path = saved(tmp_path)
    data = path.read_bytes()
    path.write_bytes({"truncated": data[: len(data) // 2], "garbage": b"not a checkpoint",
                      "empty": b"",
                      "a pickle of code": b"cos\nsystem\n(S'true'\ntR."}[damage])
    with pytest.raises(UserError) as err:
        read_checkpoint(path, f"{path}: the state", "delete it to start over")
    message = str(err.value)
    assert message.startswith(f"{path}: the state is damaged (")
    assert message.endswith("); delete it to start over") and "\n" not in message


def test_a_damaged_strategy_checkpoint_stops_the_experiment_with_the_fix() -> None:
    class Damaged(MemoryStorage):
        def load_checkpoint(self) -> tuple[int, bytes]:
            return 3, b"\x80\x04garbage"

    storage = Damaged()
    space = Spec("toy", {"n_decisions": 3, "n_options": 3})
    with pytest.raises(UserError, match=r"the run's strategy checkpoint is damaged .*restore the "
                       r"run's trials.db from a copy"):
        Experiment(space, Spec("toy", {}), STRATEGIES.create(
            "random", space=build_space(space), seed=0), storage)


def test_in_memory_buffers_are_read_too() -> None:
    buffer = io.BytesIO()
    torch.save([1, 2], buffer)
    buffer.seek(0)
    assert read_checkpoint(buffer, "a buffer", "-") == [1, 2]
