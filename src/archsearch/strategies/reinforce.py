"""REINFORCE (Williams, 1992) with the LSTM controller: the strategy of NAS-RL and of ENAS.

For each result, the policy-gradient loss is ``-(reward - baseline) * log p(arch)`` minus an
entropy bonus, with a moving-average baseline ``b <- decay * b + (1 - decay) * reward``. The
advantage is taken against the baseline *before* this reward enters it. Gradients are
aggregated over ``batch_size`` results per Adam step (ENAS aggregates 10; the default 5 with
lr 0.03 was as good as per-result steps on NB201 and half the controller cost).

``normalize`` divides the advantage by a moving estimate of its standard deviation, so one
learning rate works whether the objective is an accuracy in [0, 1] or a percentage; the
original papers use raw rewards (set ``normalize=False`` for that, as the ENAS loop does).

The controller is the one suited to the space (:func:`make_controller`): ENAS's attention
controllers for the ENAS spaces, the generic LSTM otherwise; ``controller`` passes it extra
options (``op_tanh_reduce``, ``skip_target``...). A controller's penalty (ENAS macro's
skip-density KL) enters the loss with weight ``penalty_weight``.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from archsearch.registry import STRATEGIES
from archsearch.spaces.base import Architecture, SearchSpace
from archsearch.strategies.base import Proposal, Strategy
from archsearch.strategies.controller import make_controller
from archsearch.types import Result


@STRATEGIES.register("reinforce")
class Reinforce(Strategy):
    def __init__(
        self, space: SearchSpace, seed: int = 0, hidden: int = 100, layers: int = 1,
        lr: float = 0.03, baseline_decay: float = 0.9, entropy_weight: float = 1e-4,
        batch_size: int = 5, tanh_constant: float | None = 1.5,
        temperature: float | None = None, normalize: bool = True, dedup: bool = True,
        max_resample: int = 100, penalty_weight: float = 0.8,
        controller: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(space, seed, dedup)
        self.generator = torch.Generator().manual_seed(seed)
        self.controller = make_controller(
            space, generator=self.generator, hidden=hidden, layers=layers,
            tanh_constant=tanh_constant, temperature=temperature, **(controller or {}),
        )
        self.penalty_weight = penalty_weight
        self.optimizer = torch.optim.Adam(self.controller.parameters(), lr=lr, foreach=True)
        self.baseline_decay = baseline_decay
        self.entropy_weight = entropy_weight
        self.batch_size = batch_size
        self.normalize = normalize
        self.max_resample = max_resample
        self.baseline: float | None = None
        self.adv_var = 1.0  # moving estimate of the advantage's second moment
        self.buffer: list[tuple[list[int], float]] = []  # (choices, advantage) awaiting a step
        self.candidates: list[list[int]] = []  # drawn from the current policy, not yet proposed

    def suggest(self) -> Architecture | None:
        if self.exhausted():
            return None
        # Candidates are i.i.d. draws from the current policy, drawn 16 at a time in one batched
        # pass and kept until the policy changes (``update`` clears them): the same as drawing
        # them one at a time, at a fraction of the controller's cost.
        for _ in range(self.max_resample):
            if not self.candidates:
                self.candidates = self.controller.sample(16, self.generator).tolist()
            arch = self.space.decode(self.candidates.pop(0))
            if self.propose(arch):
                return arch
        return self.random_unseen()  # the policy has collapsed onto seen architectures

    def sample_architectures(self, n: int) -> list[Architecture]:
        """n architectures from the current policy, not proposed (no dedup, no history)."""
        return [self.space.decode(c) for c in self.controller.sample(n, self.generator).tolist()]

    def observe(self, proposal: Proposal, result: Result) -> None:
        if not result.ok:
            return
        reward = float(result.objective)
        if self.baseline is None:
            self.baseline = reward
        advantage = reward - self.baseline
        self.baseline = self.baseline_decay * self.baseline + (1 - self.baseline_decay) * reward
        if self.normalize:
            self.adv_var = self.baseline_decay * self.adv_var + (1 - self.baseline_decay) * advantage**2
            advantage /= math.sqrt(self.adv_var) + 1e-8
        self.buffer.append((list(self.space.encode(proposal.arch)), advantage))
        if len(self.buffer) >= self.batch_size:
            self.update()

    def update(self) -> None:
        """One Adam step on the buffered results."""
        choices = torch.tensor([c for c, _ in self.buffer], dtype=torch.long)
        advantage = torch.tensor([a for _, a in self.buffer])
        out = self.controller.log_prob(choices)
        loss = -(advantage * out.log_prob + self.entropy_weight * out.entropy
                 - self.penalty_weight * out.penalty).sum() / len(self.buffer)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.buffer.clear()
        self.candidates.clear()  # they were drawn from the old policy

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "controller": self.controller.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "baseline": self.baseline,
            "adv_var": self.adv_var,
            "buffer": [[c, a] for c, a in self.buffer],
            "candidates": [list(c) for c in self.candidates],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.controller.load_state_dict(state["controller"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.baseline = state["baseline"]
        self.adv_var = state["adv_var"]
        self.buffer = [(list(c), float(a)) for c, a in state["buffer"]]
        self.candidates = [list(c) for c in state["candidates"]]
