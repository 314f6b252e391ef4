"""The LSTM controller of NAS-RL and ENAS: a policy over a space's decisions, in order.

At each step the LSTM reads an input (a learned start token, the embedding of the previous
choice, or an earlier node's anchor), and a head turns its output into logits, squashed as in
ENAS::

    logits = tanh_constant * tanh(logits / temperature)      (each part optional)

Every controller here is batched: ``sample(n)`` draws n architectures in one pass of the LSTM
(so a controller step costs about the same for 1 or 100 samples), and ``log_prob(choices)``
re-scores given choices with gradients (teacher forcing), so REINFORCE never holds autograd
graphs across asynchronous trials. ``LSTMController`` is the generic policy over any list of
decisions; the ENAS spaces have their own (``enas_controllers.py``) with attention over earlier
nodes, chosen by :func:`make_controller`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from archsearch.types import Decision


class PolicyOutput(NamedTuple):
    log_prob: torch.Tensor  # (n,)
    entropy: torch.Tensor  # (n,)
    penalty: torch.Tensor  # (n,) extra loss term (e.g. ENAS's skip-density KL); zeros if none


class ControllerBase(nn.Module):
    """A stacked LSTM stepped one decision at a time, with ENAS's logit squashing."""

    def __init__(self, hidden: int = 100, layers: int = 1, tanh_constant: float | None = None,
                 temperature: float | None = None) -> None:
        super().__init__()
        self.hidden = hidden
        self.tanh_constant = tanh_constant
        self.temperature = temperature
        self.g_emb = nn.Parameter(torch.zeros(1, hidden))  # the start token
        self.cells = nn.ModuleList(nn.LSTMCell(hidden, hidden) for _ in range(layers))

    def reset_parameters(self, generator: torch.Generator | None, init_range: float = 0.1) -> None:
        """Uniform(-r, r) for every weight, as ENAS, drawn from the caller's generator."""
        with torch.no_grad():
            for p in self.parameters():
                p.uniform_(-init_range, init_range, generator=generator)

    def init_state(self, n: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        zeros = self.g_emb.new_zeros(n, self.hidden)
        return [(zeros, zeros) for _ in self.cells]

    def step(self, x: torch.Tensor, state: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        """One LSTM step (state updated in place); returns the top layer's output (n, hidden)."""
        for i, cell in enumerate(self.cells):
            state[i] = cell(x, state[i])
            x = state[i][0]
        return x

    def squash(self, logits: torch.Tensor, tanh_constant: float | None = None) -> torch.Tensor:
        if self.temperature is not None:
            logits = logits / self.temperature
        c = self.tanh_constant if tanh_constant is None else tanh_constant
        if c is not None:
            logits = c * torch.tanh(logits)
        return logits

    @staticmethod
    def pick(logits: torch.Tensor, given: torch.Tensor | None,
             generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sample (or take ``given``) one option per row: (choice, log_prob, entropy), each (n,)."""
        log_p = F.log_softmax(logits, dim=-1)
        if given is None:
            given = torch.multinomial(log_p.exp(), 1, generator=generator).squeeze(1)
        chosen = log_p.gather(1, given[:, None]).squeeze(1)
        entropy = -(log_p.exp() * log_p).sum(-1)
        return given, chosen, entropy

    @staticmethod
    def pick_bits(logits: torch.Tensor, given: torch.Tensor | None,
                  generator: torch.Generator | None
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Independent yes/no choices from (n, k, 2) logits (or take ``given`` (n, k)):
        (bits (n, k), summed log_prob (n,), summed entropy (n,))."""
        n, k, _ = logits.shape
        log_p = F.log_softmax(logits, -1)
        if given is None:
            given = torch.multinomial(log_p.exp().reshape(n * k, 2), 1,
                                      generator=generator).reshape(n, k)
        log_prob = log_p.gather(2, given[..., None]).squeeze(-1).sum(1)
        entropy = -(log_p.exp() * log_p).sum((1, 2))
        return given, log_prob, entropy

    def run(self, n: int, choices: torch.Tensor | None,
            generator: torch.Generator | None) -> tuple[torch.Tensor, PolicyOutput]:
        raise NotImplementedError

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n architectures as choice vectors, (n, n_decisions) int64."""
        return self.run(n, None, generator)[0]

    def log_prob(self, choices: torch.Tensor) -> PolicyOutput:
        """Log-probability, entropy and penalty of given choices (n, n_decisions), with grads."""
        return self.run(choices.shape[0], choices, None)[1]


class LSTMController(ControllerBase):
    """Generic policy: one step per decision, a linear head and an embedding per decision."""

    def __init__(self, decisions: Sequence[Decision], hidden: int = 100, layers: int = 1,
                 tanh_constant: float | None = None, temperature: float | None = None,
                 init_range: float = 0.1, generator: torch.Generator | None = None) -> None:
        super().__init__(hidden, layers, tanh_constant, temperature)
        self.decisions = tuple(decisions)
        self.embeddings = nn.ModuleList(nn.Embedding(d.n_options, hidden) for d in decisions)
        self.heads = nn.ModuleList(nn.Linear(hidden, d.n_options) for d in decisions)
        self.reset_parameters(generator, init_range)

    def run(self, n: int, choices: torch.Tensor | None,
            generator: torch.Generator | None) -> tuple[torch.Tensor, PolicyOutput]:
        state = self.init_state(n)
        x = self.g_emb.expand(n, self.hidden)
        picked, log_prob, entropy = [], 0.0, 0.0
        for k in range(len(self.decisions)):
            logits = self.squash(self.heads[k](self.step(x, state)))  # (n, n_options_k)
            given = None if choices is None else choices[:, k]
            a, lp, ent = self.pick(logits, given, generator)
            picked.append(a)
            log_prob, entropy = log_prob + lp, entropy + ent
            x = self.embeddings[k](a)
        zeros = self.g_emb.new_zeros(n)
        return torch.stack(picked, 1), PolicyOutput(log_prob + zeros, entropy + zeros, zeros)


def make_controller(space: Any, generator: torch.Generator | None = None,
                    **options: Any) -> ControllerBase:
    """The controller suited to ``space``: ENAS's for the ENAS spaces, NAS-RL's anchor-point
    controller for ``nasrl-cnn``, the generic one else."""
    from archsearch.strategies import enas_controllers
    from archsearch.strategies.nasrl_controller import AnchorController

    factories = {**enas_controllers.CONTROLLERS, "nasrl-cnn": AnchorController}
    factory = factories.get(space.name)
    if factory is not None:
        return factory(space, generator=generator, **options)
    generic = {k: v for k, v in options.items()
               if k in ("hidden", "layers", "tanh_constant", "temperature", "init_range")}
    return LSTMController(space.decisions(), generator=generator, **generic)
