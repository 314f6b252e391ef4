"""The one-shot loop itself (``OneShotSearch``), over a toy method and a toy estimator: epoch
counting, the per-epoch record, what reaches the storage and ``on_epoch``, the atomic
checkpoint and its exact resume, and the messages for what cannot run.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from archsearch.errors import UserError
from archsearch.experiment.storage import MemoryStorage
from archsearch.oneshot.base import OneShotSearch
from archsearch.spaces.base import Architecture
from archsearch.spaces.nb201 import NB201Space

SPACE = NB201Space()


class Counter:
    """A stand-in estimator: its state is a step count and a generator."""

    space = SPACE
    steps_per_epoch = 3

    def __init__(self) -> None:
        self.steps = 0
        self.generator = torch.Generator().manual_seed(1)

    def state_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps = state["steps"]
        self.generator.set_state(state["generator"])


class Toy(OneShotSearch):
    """Each epoch: three steps, then the architecture drawn by the method's own RNG."""

    def __init__(self, epochs: int, seed: int = 0) -> None:
        super().__init__(Counter(), epochs)
        self.rng = np.random.default_rng(seed)
        self.trained: list[int] = []

    def train_epoch(self) -> dict[str, Any]:
        self.estimator.steps += self.estimator.steps_per_epoch
        self.trained.append(self.epoch)
        noise = float(torch.rand((), generator=self.estimator.generator))
        time.sleep(0.01)
        return {"steps": self.estimator.steps, "noise": noise}

    def derive(self) -> tuple[Architecture, float, dict[str, Any]]:
        arch = self.space.sample(self.rng)
        return arch, float(self.rng.random()), {"extra": self.epoch}

    def method_state(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state}

    def load_method_state(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]


def strip(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in history]


def test_a_search_needs_an_epoch() -> None:
    with pytest.raises(UserError, match="at least 1 epoch, not 0"):
        Toy(0)
    assert Toy(1).epochs == 1 and Toy(1).epoch == 0 and Toy(1).history == []


def test_each_epoch_makes_one_record_of_statistics_derive_and_time() -> None:
    search = Toy(3)
    start = time.perf_counter()
    history = search.run()
    wall = time.perf_counter() - start
    assert [r["epoch"] for r in history] == [1, 2, 3] and search.epoch == 3
    assert search.trained == [0, 1, 2]
    first = history[0]
    assert set(first) == {"epoch", "steps", "noise", "extra", "derived", "derived_score",
                          "seconds"}
    assert first["steps"] == 3 and history[2]["steps"] == 9 and first["extra"] == 0
    assert SPACE.parse(first["derived"]).to_str() == first["derived"]
    assert all(0.01 <= r["seconds"] <= wall for r in history)
    assert search.derived == SPACE.parse(history[-1]["derived"])
    assert Toy(2).derived is None  # nothing derived before the first epoch


def test_every_epoch_reaches_the_storage_and_the_callback(tmp_path: Path) -> None:
    storage = MemoryStorage()
    heard: list[tuple[int, int]] = []
    search = Toy(3)
    search.run(on_epoch=lambda r: heard.append((r["epoch"],
                                                len(storage.get_meta("epochs")))),
               storage=storage, checkpoint=tmp_path / "toy.pt")
    assert heard == [(1, 1), (2, 2), (3, 3)]  # written before the callback hears of it
    assert storage.get_meta("epochs") == search.history
    assert not list(tmp_path.glob("*.tmp"))  # the temporary file was renamed


def test_a_search_resumed_from_its_checkpoint_continues_as_if_never_stopped(
        tmp_path: Path) -> None:
    whole = Toy(4)
    whole.run()
    first = Toy(4)
    checkpoints: list[int] = []
    path = tmp_path / "toy.pt"

    def stop_after_two(record: dict[str, Any]) -> None:
        checkpoints.append(torch.load(path, weights_only=False)["epoch"])
        if record["epoch"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        first.run(on_epoch=stop_after_two, checkpoint=path)
    assert checkpoints == [1, 2]  # saved after every epoch, before the callback
    resumed = Toy(4, seed=99)  # other RNG state: restored from the checkpoint
    resumed.load(path)
    assert resumed.epoch == 2 and len(resumed.history) == 2 and resumed.estimator.steps == 6
    resumed.run()
    assert resumed.trained == [2, 3]  # only the epochs left
    assert strip(resumed.history) == strip(whole.history)


def test_the_checkpoint_holds_the_loop_the_estimator_and_the_method() -> None:
    search = Toy(2)
    search.run_epoch()
    state = search.state_dict()
    assert state["epoch"] == 1 and state["history"] == search.history
    assert state["estimator"]["steps"] == 3 and "rng" in state
    other = Toy(2, seed=5)
    other.load_state_dict(state)
    assert other.epoch == 1 and other.history == search.history
    assert other.history is not search.history  # a copy, not the saved list
    assert other.rng.bit_generator.state == search.rng.bit_generator.state


def test_a_damaged_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "toy.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match=r"the search checkpoint is damaged .*delete it to "
                       r"restart the search from epoch 0") as err:
        Toy(2).load(path)
    assert str(path) in str(err.value)
    with pytest.raises(UserError, match="damaged"):
        Toy(2).load(tmp_path / "absent.pt")


def test_each_epoch_is_logged_as_one_readable_line(caplog) -> None:
    search = Toy(1)
    with caplog.at_level(logging.INFO, logger="archsearch.oneshot.base"):
        record = search.run()[0]
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith("epoch 1: steps 3, noise ")
    assert f", derived {record['derived']}, derived_score {record['derived_score']:.4g}, " in line
    assert line.endswith(f"seconds {record['seconds']:.4g}")


def test_the_refusals_say_exactly_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(UserError) as err:
        Toy(0)
    assert str(err.value) == "a one-shot search needs at least 1 epoch, not 0"
    path = tmp_path / "toy.pt"
    path.write_bytes(b"garbage")
    with pytest.raises(UserError) as err:
        Toy(1).load(path)
    assert str(err.value).startswith(f"{path}: the search checkpoint is damaged (")
    assert str(err.value).endswith("); delete it to restart the search from epoch 0")
