"""NAS with reinforcement learning (Zoph & Le, 2017), with PPO as an option (NASNet's choice).

The controller (a two-layer LSTM of 35 units; anchor points for ``nasrl-cnn``, the generic
controller for other spaces) emits architectures; each child is trained from scratch by the
estimator. The reward is the maximum validation accuracy of the child's last 5 epochs (the
metric ``reward_metric``, which ``full-training`` reports with ``max_of_last=5``; the objective
when it is absent), raised to ``reward_power`` (the paper's text says cubed, its slides
squared; default 3). REINFORCE with an exponential-moving-average baseline updates the
controller once ``batch_size`` (m) results have arrived, in whatever order trials finish:
asynchronous updates, as the paper's parameter servers did.

``curriculum=(start, step, every)`` (nasrl-cnn) grows the depth: ``start`` layers for the
first ``every`` proposals, then ``step`` more per ``every`` proposals, up to the space's depth
(the paper added 2 layers per 1,600 samples).

``ppo=True`` replaces the REINFORCE step by ``ppo_epochs`` clipped-surrogate steps (clip
``ppo_clip``) on each batch, with the log-probabilities the policy had when it proposed each
architecture.

Paper scale vs defaults here: the paper used Adam at lr 0.0006 over 12,800 children; for the
hundreds of trials a CPU affords, the default lr is 0.01 with normalised advantages
(``normalize=True``); ``lr=0.0006, normalize=False`` restores the paper's setting.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from archsearch.registry import STRATEGIES
from archsearch.spaces.base import Architecture, SearchSpace
from archsearch.strategies.base import Proposal
from archsearch.strategies.reinforce import Reinforce
from archsearch.types import Result


@STRATEGIES.register("nas-rl")
class NASRL(Reinforce):
    def __init__(
        self, space: SearchSpace, seed: int = 0, hidden: int = 35, layers: int = 2,
        lr: float = 0.01, baseline_decay: float = 0.95, entropy_weight: float = 1e-4,
        batch_size: int = 8, reward_power: float = 3.0, reward_metric: str = "val_acc_max_last",
        curriculum: Sequence[int] | None = None, ppo: bool = False, ppo_epochs: int = 4,
        ppo_clip: float = 0.2, normalize: bool = True, tanh_constant: float | None = None,
        **options: Any,
    ) -> None:
        super().__init__(space, seed=seed, hidden=hidden, layers=layers, lr=lr,
                         baseline_decay=baseline_decay, entropy_weight=entropy_weight,
                         batch_size=batch_size, tanh_constant=tanh_constant,
                         normalize=normalize, **options)
        self.reward_power, self.reward_metric = reward_power, reward_metric
        if curriculum is not None and not hasattr(space, "depth_of"):
            raise ValueError(f"curriculum needs a space with a depth (nasrl-cnn), not {space.name}")
        self.curriculum = tuple(curriculum) if curriculum is not None else None
        self.ppo, self.ppo_epochs, self.ppo_clip = ppo, ppo_epochs, ppo_clip
        self.n_asked = 0
        # PPO: log p(arch) when it was proposed, per pending proposal of it (oldest first)
        self.old_log_prob: dict[str, list[float]] = {}
        self.batch: list[tuple[list[int], float, float]] = []  # (choices, advantage, old log p)

    # ---- proposing ---------------------------------------------------------------------------

    def current_depth(self) -> int | None:
        if self.curriculum is None:
            return None
        start, step, every = self.curriculum
        return min(self.space.depth, start + step * (self.n_asked // every))  # type: ignore[attr-defined]

    def suggest(self) -> Architecture | None:
        depth = self.current_depth()
        if depth is not None and depth != self.controller.depth:  # type: ignore[attr-defined]
            self.controller.depth = depth  # type: ignore[attr-defined]
            self.candidates.clear()
        arch = super().suggest()
        if arch is not None:
            self.n_asked += 1
            if self.ppo:
                with torch.no_grad():
                    choices = torch.tensor([self.space.encode(arch)])
                    self.old_log_prob.setdefault(arch.to_str(), []).append(float(
                        self.controller.log_prob(choices).log_prob[0]))
        return arch

    # ---- learning ----------------------------------------------------------------------------

    def reward(self, result: Result) -> float:
        value = result.metrics.get(self.reward_metric, result.objective)
        return float(value) ** self.reward_power

    def observe(self, proposal: Proposal, result: Result) -> None:
        arch = proposal.arch
        pending = self.old_log_prob.get(arch.to_str(), [])
        old = pending.pop(0) if pending else math.nan
        if not pending:
            self.old_log_prob.pop(arch.to_str(), None)
        if not result.ok:
            return
        reward = self.reward(result)
        if self.baseline is None:
            self.baseline = reward
        advantage = reward - self.baseline
        self.baseline = self.baseline_decay * self.baseline + (1 - self.baseline_decay) * reward
        if self.normalize:
            self.adv_var = (self.baseline_decay * self.adv_var
                            + (1 - self.baseline_decay) * advantage**2)
            advantage /= math.sqrt(self.adv_var) + 1e-8
        self.batch.append((list(self.space.encode(arch)), advantage, old))
        if len(self.batch) >= self.batch_size:
            self.update()

    def _objective(self, rows: list[tuple[list[int], float, float]]) -> torch.Tensor:
        """The loss over ``rows`` (choices of one depth), summed."""
        choices = torch.tensor([c for c, _, _ in rows], dtype=torch.long)
        advantage = torch.tensor([a for _, a, _ in rows])
        out = self.controller.log_prob(choices)
        if self.ppo:
            ratio = torch.exp(out.log_prob - torch.tensor([o for _, _, o in rows]))
            clipped = ratio.clamp(1 - self.ppo_clip, 1 + self.ppo_clip)
            gain = torch.minimum(ratio * advantage, clipped * advantage)
        else:
            gain = advantage * out.log_prob
        return -(gain + self.entropy_weight * out.entropy - self.penalty_weight * out.penalty).sum()

    def update(self) -> None:
        by_width: dict[int, list[tuple[list[int], float, float]]] = {}
        for row in self.batch:  # with a curriculum, one batch may hold several depths
            by_width.setdefault(len(row[0]), []).append(row)
        for _ in range(self.ppo_epochs if self.ppo else 1):
            loss = sum(self._objective(rows) for rows in by_width.values()) / len(self.batch)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[union-attr]
            self.optimizer.step()
        self.batch.clear()
        self.candidates.clear()  # they were drawn from the old policy

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "n_asked": self.n_asked,
                "old_log_prob": {k: list(v) for k, v in self.old_log_prob.items()},
                "batch": [[c, a, o] for c, a, o in self.batch],
                "depth": getattr(self.controller, "depth", None)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.n_asked = state["n_asked"]
        self.old_log_prob = {k: [v] if isinstance(v, float) else list(v)  # first wave: floats
                             for k, v in state["old_log_prob"].items()}
        self.batch = [(list(c), float(a), float(o)) for c, a, o in state["batch"]]
        if state["depth"] is not None:
            self.controller.depth = state["depth"]  # type: ignore[attr-defined]
