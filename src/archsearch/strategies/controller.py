"""The LSTM controller of NAS-RL and ENAS: a policy over a space's decisions, in order.

At each decision the LSTM reads the embedding of the previous choice (a learned start token
for the first), a per-decision linear head turns its hidden state into logits, and

    logits = tanh_constant * tanh(logits / temperature)

(each part optional) keeps the policy from saturating early, as in ENAS. Sampling is batched:
``sample(n)`` draws n architectures in one pass of ``len(decisions)`` LSTM steps, so the
controller costs the same for 1 or 100 samples. ``log_prob`` re-scores given choices (teacher
forcing) with gradients, so REINFORCE never keeps autograd graphs across asynchronous trials.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from archsearch.types import Decision


class LSTMController(nn.Module):
    def __init__(
        self, decisions: Sequence[Decision], hidden: int = 100, layers: int = 1,
        tanh_constant: float | None = None, temperature: float | None = None,
        init_range: float = 0.1, generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.decisions = tuple(decisions)
        self.tanh_constant = tanh_constant
        self.temperature = temperature
        self.start = nn.Parameter(torch.zeros(1, hidden))
        self.cells = nn.ModuleList(nn.LSTMCell(hidden, hidden) for _ in range(layers))
        self.embeddings = nn.ModuleList(nn.Embedding(d.n_options, hidden) for d in decisions)
        self.heads = nn.ModuleList(nn.Linear(hidden, d.n_options) for d in decisions)
        with torch.no_grad():  # uniform(-r, r) init as ENAS, from the caller's generator
            for p in self.parameters():
                p.uniform_(-init_range, init_range, generator=generator)

    def _step(
        self, x: torch.Tensor, state: list[tuple[torch.Tensor, torch.Tensor]]
    ) -> torch.Tensor:
        for i, cell in enumerate(self.cells):
            state[i] = cell(x, state[i])
            x = state[i][0]
        return x  # (n, hidden): the top layer's output

    def _logits(self, k: int, h: torch.Tensor) -> torch.Tensor:
        logits = self.heads[k](h)  # (n, n_options_k)
        if self.temperature is not None:
            logits = logits / self.temperature
        if self.tanh_constant is not None:
            logits = self.tanh_constant * torch.tanh(logits)
        return logits

    def _run(
        self, n: int, choices: torch.Tensor | None, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        hidden = self.start.shape[1]
        zeros = self.start.new_zeros(n, hidden)
        state = [(zeros, zeros) for _ in self.cells]
        x = self.start.expand(n, hidden)
        picked, log_prob, entropy = [], zeros.new_zeros(n), zeros.new_zeros(n)
        for k in range(len(self.decisions)):
            logits = self._logits(k, self._step(x, state))
            log_p = F.log_softmax(logits, dim=-1)  # (n, n_options_k)
            if choices is None:
                a = torch.multinomial(log_p.exp(), 1, generator=generator).squeeze(1)
            else:
                a = choices[:, k]
            log_prob = log_prob + log_p.gather(1, a[:, None]).squeeze(1)
            entropy = entropy - (log_p.exp() * log_p).sum(-1)
            picked.append(a)
            x = self.embeddings[k](a)
        return torch.stack(picked, dim=1), log_prob, entropy

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n architectures as choices, (n, len(decisions)) int64."""
        return self._run(n, None, generator)[0]

    def log_prob(self, choices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probability and entropy (each (n,)) of given choices, with gradients."""
        _, log_prob, entropy = self._run(choices.shape[0], choices, None)
        return log_prob, entropy
