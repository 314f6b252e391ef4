"""NAS-RL's controller for the ``nasrl-cnn`` space (Zoph & Le, 2017): a two-layer LSTM that
emits each layer's hyperparameters, then an *anchor point* choosing the layer's inputs.

Per layer: one step per layer decision (filter height, width, filters, [stride]), each read by
a softmax head shared by all layers (so one controller emits any depth), then the anchor step.
Its output ``h_i`` sets, for every earlier layer j, ``P(j feeds i) = sigmoid(v . tanh(W_prev h_j
+ W_curr h_i))`` (content-based attention over the earlier anchors). The next LSTM input is
the mean of the chosen layers' anchors (the start token when none is chosen).

``depth`` (set by the strategy's curriculum) is how many layers ``sample`` emits; ``log_prob``
reads the depth from the width of the choices it is given.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from archsearch.strategies.controller import ControllerBase, PolicyOutput
from archsearch.strategies.enas_controllers import Attention


class AnchorController(ControllerBase):
    def __init__(self, space: Any, hidden: int = 35, layers: int = 2,
                 tanh_constant: float | None = None, temperature: float | None = None,
                 init_range: float = 0.1, generator: torch.Generator | None = None,
                 **_: Any) -> None:
        super().__init__(hidden, layers, tanh_constant, temperature)
        self.space = space
        self.depth = space.depth
        kinds = [d.n_options for d in space.layer_decisions(0)]  # layer 0 has no input bits
        self.heads = nn.ModuleList(nn.Linear(hidden, n) for n in kinds)
        self.embeddings = nn.ModuleList(nn.Embedding(n, hidden) for n in kinds)
        self.attention = Attention(hidden)
        self.reset_parameters(generator, init_range)

    def run(self, n: int, choices: torch.Tensor | None,
            generator: torch.Generator | None) -> tuple[torch.Tensor, PolicyOutput]:
        depth = self.depth if choices is None else self.space.depth_of(choices.shape[1])
        state = self.init_state(n)
        start = self.g_emb.expand(n, self.hidden)
        x = start
        out = torch.zeros(n, self.space.n_choices(depth), dtype=torch.long, device=x.device)
        log_prob = entropy = x.new_zeros(n)
        anchors: list[torch.Tensor] = []
        keys: list[torch.Tensor] = []
        pos = 0
        for k in range(depth):
            for head, embedding in zip(self.heads, self.embeddings):
                logits = self.squash(head(self.step(x, state)))  # (n, options)
                given = None if choices is None else choices[:, pos]
                a, lp, ent = self.pick(logits, given, generator)
                out[:, pos] = a
                log_prob, entropy, pos = log_prob + lp, entropy + ent, pos + 1
                x = embedding(a)
            h = self.step(x, state)  # the anchor point of layer k: (n, hidden)
            x = start
            if k > 0:
                score = self.attention(torch.stack(keys, 1), h)  # (n, k)
                logits = torch.stack([torch.zeros_like(score), score], -1)  # p(1) = sigmoid
                bits, lp, ent = self.pick_bits(
                    logits, None if choices is None else choices[:, pos:pos + k], generator)
                out[:, pos:pos + k] = bits
                log_prob, entropy = log_prob + lp, entropy + ent
                chosen = bits.to(h.dtype)[..., None]  # (n, k, 1)
                count = chosen.sum(1)  # (n, 1)
                mean = (chosen * torch.stack(anchors, 1)).sum(1) / count.clamp_min(1)
                x = torch.where(count > 0, mean, start)
                pos += k
            anchors.append(h)
            keys.append(self.attention.w1(h))
        return out, PolicyOutput(log_prob, entropy, x.new_zeros(n))
