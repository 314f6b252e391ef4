"""Estimators for recurrent cells on text: train a stand-alone language model from scratch
(``lm-training``), or share one supernet's weights among all cells (``shared-rnn``, ENAS).

SGD at lr 10 with gradient clipping 0.25 (lr 20, usual for LSTMs, diverged on ENAS cells that
chain ReLU/identity nodes even with the hidden-norm cap). Objectives are maximised: ``lm-training`` returns minus the validation perplexity;
``shared-rnn`` rewards ``c / perplexity`` on a validation segment (ENAS's reward, c = 80).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import torch

from archsearch.data.text import Corpus, batchify, load_corpus
from archsearch.estimators.base import Estimator, check_training_options, require
from archsearch.estimators.full_training import arch_seed, build_seeded, resolve_device
from archsearch.nn.language_model import LSTMLanguageModel, lstm_matching
from archsearch.nn.ops import count_params_m
from archsearch.registry import ESTIMATORS
from archsearch.spaces.base import Architecture, SearchSpace
from archsearch.train.lm import LMConfig, lm_loss, perplexity, segments, train_epoch
from archsearch.train.loop import Diverged
from archsearch.types import Budget, Result

EVAL_BATCH = 10


class _Text:
    def __init__(self, data: str, batch_size: int, device: torch.device) -> None:
        corpus: Corpus = load_corpus(data)
        self.vocab_size = corpus.vocab_size
        self.train = batchify(corpus.train, batch_size).to(device)  # (T, B)
        self.valid = batchify(corpus.valid, EVAL_BATCH).to(device)
        self.test = batchify(corpus.test, EVAL_BATCH).to(device)


@ESTIMATORS.register("lm-training")
class LMTrainingEstimator(Estimator):
    """Train the cell's language model for ``epochs``; report validation and test perplexity."""

    def __init__(self, space: SearchSpace, data: str, hidden: int = 256, epochs: float = 1,
                 batch_size: int = 32, bptt: int = 35, lr: float = 10.0,
                 grad_clip: float = 0.25, seed: int = 0, device: str = "auto",
                 dropout: dict[str, float] | None = None, max_steps: int | None = None) -> None:
        check_training_options("lm-training", epochs=epochs, batch_size=batch_size, lr=lr)
        require(hidden >= 1 and bptt >= 1, "lm-training: hidden and bptt must be at least 1")
        self.space, self.hidden, self.seed = space, hidden, seed
        self.device = resolve_device(device)
        self.text = _Text(data, batch_size, self.device)
        self.config = LMConfig(epochs=epochs, batch_size=batch_size, bptt=bptt, lr=lr,
                               grad_clip=grad_clip)
        self.dropout = dict(dropout or {})
        self.max_steps = max_steps  # per epoch: a cap for quick runs and tests
        self.last_model: torch.nn.Module | None = None

    def _protocol(self, budget: Budget | None) -> tuple[LMConfig, torch.Tensor]:
        """The training configuration and tokens of one trial at ``budget``: ``epochs``,
        ``steps`` (segments in all) or ``fraction`` (of the training tokens)."""
        config, train = self.config, self.text.train
        if budget is not None and budget.fraction is not None:
            train = train[: max(self.config.bptt + 1, round(budget.fraction * len(train)))]
        per_epoch = len(segments(train, config.bptt))
        if self.max_steps is not None:
            per_epoch = min(per_epoch, self.max_steps)
        if budget is not None and budget.epochs is not None:
            config = replace(config, epochs=budget.epochs)
        if budget is not None and budget.steps is not None:
            config = replace(config, epochs=budget.steps / per_epoch)
        return config, train

    def _fit(self, model: torch.nn.Module, seed: int,
             budget: Budget | None = None) -> dict[str, Any]:
        start = time.perf_counter()
        config, train = self._protocol(budget)
        model = model.to(self.device)
        optimizer = torch.optim.SGD(model.parameters(), lr=config.lr,
                                    weight_decay=config.weight_decay)
        stats: dict[str, float] = {}
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            torch.manual_seed(seed)  # dropout masks
            for epoch in range(math.ceil(config.epochs)):
                if epoch >= config.decay_start:
                    for g in optimizer.param_groups:
                        g["lr"] *= config.lr_decay
                part = config.epochs - epoch
                steps = None if part >= 1 else max(1, int(part * len(segments(
                    train, config.bptt))))
                if self.max_steps is not None:
                    steps = min(steps or self.max_steps, self.max_steps)
                stats = train_epoch(model, train, config, optimizer, max_steps=steps)
        self.last_model = model
        valid = perplexity(model, self.text.valid, self.config.bptt)
        test = perplexity(model, self.text.test, self.config.bptt)
        metrics = {"valid_ppl": valid, "test_ppl": test, "train_ppl": stats.get("train_ppl"),
                   "params_m": count_params_m(model), "train_seconds": time.perf_counter() - start,
                   "epochs": config.epochs}
        return metrics

    def evaluate(self, arch: Architecture, budget: Budget | None = None) -> Result:
        seed = arch_seed(self.seed, arch)
        model = build_seeded(lambda: self.space.build(
            arch, vocab_size=self.text.vocab_size, hidden=self.hidden, **self.dropout), seed)
        metrics = self._fit(model, seed, budget)
        return Result(-metrics["valid_ppl"], metrics, metrics["train_seconds"])

    def baselines(self, best: Architecture) -> list[tuple[str, Result]]:
        """An LSTM language model with the parameter count of ``best``'s (within 5%), trained
        under the same protocol."""
        cell_model = self.space.build(best, vocab_size=self.text.vocab_size, hidden=self.hidden)
        target = sum(p.numel() for p in cell_model.parameters())
        hidden = lstm_matching(target, self.text.vocab_size)
        model = build_seeded(lambda: LSTMLanguageModel(self.text.vocab_size, hidden,
                                                       **self.dropout), self.seed)
        metrics = self._fit(model, self.seed)
        metrics["lstm_hidden"] = hidden
        return [(f"LSTM ({hidden} units)", Result(-metrics["valid_ppl"], metrics))]


@ESTIMATORS.register("shared-rnn")
class SharedRNNEstimator(Estimator):
    """ENAS's shared weights for recurrent cells: one segment per sampled cell."""

    def __init__(self, space: SearchSpace, data: str, hidden: int = 256, batch_size: int = 32,
                 bptt: int = 35, lr: float = 10.0, grad_clip: float = 0.25, seed: int = 0,
                 device: str = "auto", reward_constant: float = 80.0, epochs: int = 10,
                 dropout: dict[str, float] | None = None, max_steps: int | None = None) -> None:
        check_training_options("shared-rnn", epochs=epochs, batch_size=batch_size, lr=lr)
        require(hidden >= 1 and bptt >= 1, "shared-rnn: hidden and bptt must be at least 1")
        self.space = space
        self.device = resolve_device(device)
        self.text = _Text(data, batch_size, self.device)
        self.model = build_seeded(lambda: space.supernet(  # type: ignore[attr-defined]
            vocab_size=self.text.vocab_size, hidden=hidden, **(dropout or {})), seed).to(self.device)
        self.config = LMConfig(batch_size=batch_size, bptt=bptt, lr=lr, grad_clip=grad_clip)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=lr,
                                         weight_decay=self.config.weight_decay)
        self.generator = torch.Generator().manual_seed(seed)
        self.reward_constant = reward_constant
        self.segments = segments(self.text.train, bptt)
        self.steps_per_epoch = len(self.segments) if max_steps is None else min(
            max_steps, len(self.segments))
        self.valid_segments = segments(self.text.valid, bptt)
        self.seed = seed
        self.epoch = 0
        self.position = 0  # segments of this epoch trained so far
        self.h = self.model.init_hidden(self.text.train.shape[1], self.device)
        self.rng_state = self._get_rng()
        self.loss_sum, self.tokens, self.seconds = torch.zeros((), device=self.device), 0, 0.0

    # ---- step-level training (the one-shot loop's protocol) --------------------------------

    def train_step(self, path: Any, batch: Any = None) -> None:
        """One SGD step on the next training segment through ``path``, the hidden state
        carried from the previous segment (truncated back-propagation through time)."""
        if batch is not None:
            raise NotImplementedError("shared-rnn trains on its own segments in order")
        if self.position == 0:  # a new epoch: fresh hidden state and dropout stream
            if not self.model.training:  # a mode switch walks every module
                self.model.train()
            self.h = self.model.init_hidden(self.text.train.shape[1], self.device)
            with torch.random.fork_rng(devices=self._rng_devices()):
                torch.manual_seed(self.seed * 7919 + self.epoch)
                self.rng_state = self._get_rng()
        start = time.perf_counter()
        x, y = self.segments[self.position]
        with torch.random.fork_rng(devices=self._rng_devices()):
            self._set_rng(self.rng_state)  # the dropout masks continue this epoch's stream
            if not self.model.training:  # a mode switch walks every module
                self.model.train()
            h = self.h.detach()  # truncate back-propagation at the segment boundary
            loss, self.h = lm_loss(self.model, x, y, h, path)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
            self.optimizer.step()
            self.rng_state = self._get_rng()
        self.loss_sum += loss.detach() * y.numel()
        self.tokens += y.numel()
        self.seconds += time.perf_counter() - start
        self.position += 1
        if self.position == self.steps_per_epoch:
            self.position, self.epoch = 0, self.epoch + 1

    def _rng_devices(self) -> list[torch.device]:
        return [self.device] if self.device.type == "cuda" else []

    def _get_rng(self) -> list[torch.Tensor]:
        states = [torch.get_rng_state()]
        if self.device.type == "cuda":
            states.append(torch.cuda.get_rng_state(self.device))
        return states

    def _set_rng(self, states: list[torch.Tensor]) -> None:
        torch.set_rng_state(states[0])
        if self.device.type == "cuda":
            torch.cuda.set_rng_state(states[1], self.device)

    def batch(self, split: str = "train") -> Any:
        raise NotImplementedError("shared-rnn has no minibatch interface for gradient-based "
                                  "methods yet (its segments carry a hidden state)")

    def loss(self, path: Any, batch: Any) -> torch.Tensor:
        raise NotImplementedError("shared-rnn has no minibatch interface for gradient-based "
                                  "methods yet (its segments carry a hidden state)")

    def epoch_stats(self) -> dict[str, float]:
        loss = self.loss_sum.item() / max(self.tokens, 1)
        if not math.isfinite(loss):
            raise Diverged(f"the supernet's training diverged: its loss is {loss} (lower the "
                           "estimator's lr)")
        stats = {"shared_loss": loss, "shared_acc": float("nan"),
                 "shared_ppl": math.exp(min(loss, 50)), "shared_seconds": self.seconds}
        self.loss_sum, self.tokens, self.seconds = torch.zeros((), device=self.device), 0, 0.0
        return stats

    def train_epoch(self, archs: Sequence[Architecture]) -> dict[str, float]:
        """One epoch, segment i through ``archs[i % len(archs)]``."""
        for i in range(self.steps_per_epoch - self.position):
            self.train_step(archs[i % len(archs)])
        return self.epoch_stats()

    @torch.no_grad()
    def _reward(self, arch: Architecture, segment: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        if self.model.training:  # only when needed
            self.model.eval()
        x, y = segment
        loss, _ = lm_loss(self.model, x, y, self.model.init_hidden(x.shape[1], self.device), arch)
        return self.reward_constant / torch.exp(loss)

    def _random_segment(self) -> tuple[torch.Tensor, torch.Tensor]:
        i = int(torch.randint(len(self.valid_segments), (1,), generator=self.generator))
        return self.valid_segments[i]

    def score(self, paths: Sequence[Any], batches: int = 1, shared: bool = True) -> torch.Tensor:
        """ENAS's reward c / perplexity of each cell on random validation segments: the same
        ones for all (``shared``) or fresh ones for each."""
        if shared:
            data = [self._random_segment() for _ in range(batches)]
            return torch.stack([torch.stack([self._reward(a, s) for s in data]).mean()
                                for a in paths])
        return torch.stack([torch.stack([self._reward(a, self._random_segment())
                                         for _ in range(batches)]).mean() for a in paths])

    def rewards(self, archs: Sequence[Architecture]) -> torch.Tensor:
        return self.score(archs, 1, shared=False)

    def score_many(self, archs: Sequence[Architecture], batches: int = 1) -> list[float]:
        return self.score(archs, batches, shared=True).tolist()

    def evaluate(self, arch: Architecture, budget: Budget | None = None) -> Result:
        ppl = perplexity(self.model, self.text.valid, self.config.bptt, arch)
        return Result(self.reward_constant / ppl, {"valid_ppl": ppl})

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "generator": self.generator.get_state(), "epoch": self.epoch,
                "position": self.position, "h": self.h, "rng_state": self.rng_state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"].cpu())
        self.epoch = state["epoch"]
        self.position = state.get("position", 0)  # absent from first-wave checkpoints
        if "h" in state:
            self.h = state["h"].to(self.device)
            self.rng_state = list(state["rng_state"])
