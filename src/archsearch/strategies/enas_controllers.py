"""ENAS's controllers (Pham et al., 2018): LSTMs that attend over the nodes they have built.

Both keep, for every node already decided, an *anchor* (the LSTM output after that node) and
its projection ``W1 @ anchor``. Choosing among earlier nodes is content-based attention:

    score_j = v . tanh(W1 anchor_j + W2 h)

* ``MicroController`` (cells): two steps open the two input nodes (their anchors are zeros);
  then per node, two *input* steps (attention over nodes 0..i-1; the next LSTM input is the
  chosen node's anchor), two *op* steps (one shared softmax and embedding for all nodes, with
  the tanh constant divided by ``op_tanh_reduce``) and one step whose output is the node's
  anchor. The reduction cell follows the normal cell with the LSTM state carried over.
  The official code adds a fixed +10 to the normal cell's two separable-conv logits (it makes
  the normal cell nearly always use convolutions); the paper does not: ``normal_conv_bias=10``
  reproduces the code, the default (0) follows the paper.
* ``MacroController`` (layers): per layer an *op* step, then a step whose output attends over
  the earlier layers' anchors to give one independent skip bit per earlier layer
  (``p(skip j) = sigmoid(score_j)``, as logits ``[-score, score]``); the next input is the mean
  of the chosen anchors. ``penalty`` is the KL divergence of the skip probabilities from a
  target density (``skip_target``, default 0.4), averaged over layers; the strategy adds
  ``skip_weight`` times it to the loss (default 0.8).

* ``RNNController`` (recurrent cells): node 0's activation, then per node an *input* step
  (attention over the earlier nodes' anchors; the next LSTM input is the chosen anchor) and an
  *activation* step; a last step per node gives its anchor.

The choice vectors they read and write are the spaces' own encodings (see the spaces).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from archsearch.strategies.controller import ControllerBase, PolicyOutput


class Attention(nn.Module):
    """score_j = v . tanh(W1 anchor_j + W2 h); W1 anchor_j is precomputed once per node."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.w1 = nn.Linear(hidden, hidden, bias=False)
        self.w2 = nn.Linear(hidden, hidden, bias=False)
        self.v = nn.Linear(hidden, 1, bias=False)

    def forward(self, keys: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        # keys: (n, k, hidden) projected anchors; h: (n, hidden) -> scores (n, k)
        return self.v(torch.tanh(keys + self.w2(h)[:, None, :])).squeeze(-1)


class MicroController(ControllerBase):
    def __init__(self, space: Any, hidden: int = 100, layers: int = 1,
                 tanh_constant: float | None = 1.10, temperature: float | None = None,
                 op_tanh_reduce: float = 2.5, normal_conv_bias: float = 0.0,
                 init_range: float = 0.1, generator: torch.Generator | None = None,
                 **_: Any) -> None:
        super().__init__(hidden, layers, tanh_constant, temperature)
        self.n_nodes = space.n_nodes
        self.n_ops = len(space.ops)
        self.op_tanh_reduce = op_tanh_reduce
        self.w_emb = nn.Embedding(self.n_ops, hidden)
        self.w_soft = nn.Linear(hidden, self.n_ops)
        self.attention = Attention(hidden)
        self.reset_parameters(generator, init_range)
        bias = torch.zeros(self.n_ops)
        bias[[space.ops.index(o) for o in space.ops if o.startswith("sep_conv")]] = normal_conv_bias
        self.register_buffer("normal_bias", bias, persistent=False)

    def run(self, n: int, choices: torch.Tensor | None,
            generator: torch.Generator | None) -> tuple[torch.Tensor, PolicyOutput]:
        state = self.init_state(n)
        x = self.g_emb.expand(n, self.hidden)
        rows = torch.arange(n, device=x.device)
        out = torch.zeros(n, 8 * self.n_nodes, dtype=torch.long, device=x.device)
        log_prob = entropy = x.new_zeros(n)
        op_tanh = None if self.tanh_constant is None else self.tanh_constant / self.op_tanh_reduce
        for cell in range(2):  # normal, then reduction
            anchors, keys = [], []
            for _ in range(2):  # the two input nodes
                h = self.step(x, state)
                anchors.append(torch.zeros_like(h))
                keys.append(self.attention.w1(h))
            for b in range(self.n_nodes):
                base = cell * 4 * self.n_nodes + 4 * b
                for i in range(2):  # the two inputs of node b: attention over nodes 0..b+1
                    h = self.step(x, state)
                    logits = self.squash(self.attention(torch.stack(keys, 1), h))  # (n, b+2)
                    given = None if choices is None else choices[:, base + 2 * i]
                    a, lp, ent = self.pick(logits, given, generator)
                    out[:, base + 2 * i] = a
                    log_prob, entropy = log_prob + lp, entropy + ent
                    x = torch.stack(anchors, 1)[rows, a]  # (n, hidden)
                for i in range(2):  # the two ops
                    h = self.step(x, state)
                    logits = self.squash(self.w_soft(h), op_tanh)  # (n, n_ops)
                    if cell == 0:
                        logits = logits + self.normal_bias
                    given = None if choices is None else choices[:, base + 2 * i + 1]
                    a, lp, ent = self.pick(logits, given, generator)
                    out[:, base + 2 * i + 1] = a
                    log_prob, entropy = log_prob + lp, entropy + ent
                    x = self.w_emb(a)
                h = self.step(x, state)  # the node's anchor
                anchors.append(h)
                keys.append(self.attention.w1(h))
                x = self.g_emb.expand(n, self.hidden)
        return out, PolicyOutput(log_prob, entropy, log_prob.new_zeros(n))


class MacroController(ControllerBase):
    def __init__(self, space: Any, hidden: int = 100, layers: int = 1,
                 tanh_constant: float | None = 1.5, temperature: float | None = None,
                 skip_target: float = 0.4, init_range: float = 0.1,
                 generator: torch.Generator | None = None, **_: Any) -> None:
        super().__init__(hidden, layers, tanh_constant, temperature)
        self.n_layers = space.n_layers
        self.n_ops = len(space.ops)
        self.skip_target = skip_target
        self.w_emb = nn.Embedding(self.n_ops, hidden)
        self.w_soft = nn.Linear(hidden, self.n_ops, bias=False)
        self.attention = Attention(hidden)
        self.reset_parameters(generator, init_range)

    def run(self, n: int, choices: torch.Tensor | None,
            generator: torch.Generator | None) -> tuple[torch.Tensor, PolicyOutput]:
        state = self.init_state(n)
        x = self.g_emb.expand(n, self.hidden)
        width = self.n_layers + self.n_layers * (self.n_layers - 1) // 2
        out = torch.zeros(n, width, dtype=torch.long, device=x.device)
        log_prob = entropy = penalty = x.new_zeros(n)
        target = torch.tensor([1 - self.skip_target, self.skip_target], device=x.device)
        anchors, keys, pos = [], [], 0
        for k in range(self.n_layers):
            h = self.step(x, state)
            logits = self.squash(self.w_soft(h))  # (n, n_ops)
            a, lp, ent = self.pick(logits, None if choices is None else choices[:, pos], generator)
            out[:, pos] = a
            log_prob, entropy, pos = log_prob + lp, entropy + ent, pos + 1
            h = self.step(self.w_emb(a), state)
            if k > 0:
                score = self.attention(torch.stack(keys, 1), h)  # (n, k)
                logits = self.squash(torch.stack([-score, score], -1))  # (n, k, 2)
                bits, lp, ent = self.pick_bits(
                    logits, None if choices is None else choices[:, pos:pos + k], generator)
                out[:, pos:pos + k] = bits
                log_prob, entropy = log_prob + lp, entropy + ent
                p = torch.sigmoid(logits)  # ENAS: sigmoid of each of [-s, s]; they sum to one
                penalty = penalty + (p * torch.log(p / target)).sum((1, 2)) / (self.n_layers - 1)
                chosen = bits.to(h.dtype)[..., None]  # (n, k, 1)
                x = (chosen * torch.stack(anchors, 1)).sum(1) / (1 + chosen.sum(1))
                pos += k
            else:
                x = self.g_emb.expand(n, self.hidden)
            anchors.append(h)
            keys.append(self.attention.w1(h))
        return out, PolicyOutput(log_prob, entropy, penalty)


class RNNController(ControllerBase):
    def __init__(self, space: Any, hidden: int = 100, layers: int = 1,
                 tanh_constant: float | None = 2.5, temperature: float | None = 5.0,
                 init_range: float = 0.1, generator: torch.Generator | None = None,
                 **_: Any) -> None:
        super().__init__(hidden, layers, tanh_constant, temperature)
        self.n_nodes = space.n_nodes
        self.n_acts = len(space.ops)
        self.w_emb = nn.Embedding(self.n_acts, hidden)
        self.w_soft = nn.Linear(hidden, self.n_acts, bias=False)
        self.attention = Attention(hidden)
        self.reset_parameters(generator, init_range)

    def run(self, n: int, choices: torch.Tensor | None,
            generator: torch.Generator | None) -> tuple[torch.Tensor, PolicyOutput]:
        state = self.init_state(n)
        x = self.g_emb.expand(n, self.hidden)
        rows = torch.arange(n, device=x.device)
        out = torch.zeros(n, 2 * self.n_nodes - 1, dtype=torch.long, device=x.device)
        log_prob = entropy = x.new_zeros(n)
        anchors, keys = [], []
        for i in range(self.n_nodes):
            if i > 0:  # which earlier node this one reads
                h = self.step(x, state)
                logits = self.squash(self.attention(torch.stack(keys, 1), h))  # (n, i)
                given = None if choices is None else choices[:, 2 * i - 1]
                a, lp, ent = self.pick(logits, given, generator)
                out[:, 2 * i - 1] = a
                log_prob, entropy = log_prob + lp, entropy + ent
                x = torch.stack(anchors, 1)[rows, a]
            h = self.step(x, state)  # its activation
            col = 0 if i == 0 else 2 * i
            given = None if choices is None else choices[:, col]
            a, lp, ent = self.pick(self.squash(self.w_soft(h)), given, generator)
            out[:, col] = a
            log_prob, entropy = log_prob + lp, entropy + ent
            h = self.step(self.w_emb(a), state)  # the node's anchor
            anchors.append(h)
            keys.append(self.attention.w1(h))
            x = self.g_emb.expand(n, self.hidden)
        return out, PolicyOutput(log_prob, entropy, log_prob.new_zeros(n))


CONTROLLERS: dict[str, Callable[..., ControllerBase]] = {
    "enas-micro": MicroController,
    "enas-macro": MacroController,
    "enas-rnn": RNNController,
}
