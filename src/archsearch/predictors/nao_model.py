"""NAO's encoder, predictor and decoder (Luo et al., NeurIPS 2018, "Neural Architecture
Optimization"), as one torch module; the ``nao`` predictor (:mod:`~archsearch.predictors.nao`)
trains it and searches with it.

Following renqianluo/NAO_pytorch (NAO_V1's ``encoder.py`` / ``decoder.py``):

- encoder: token embedding -> ``layers``-layer LSTM -> one hidden state per token, each
  L2-normalised; the architecture's embedding is the normalised mean of those states;
- predictor: ``mlp_layers`` fully connected ReLU layers of ``mlp_width`` on the embedding, a
  linear output and a sigmoid (targets scaled to [0, 1]);
- decoder: an LSTM started from the embedding (as hidden and cell state of every layer), fed
  the previous token (a start token first; the true one while training), with dot-product
  attention over the encoder's states (the attended mix and the LSTM output, concatenated,
  through a tanh layer) and a linear layer to the vocabulary.

Departures: no dropout (NAO: 0.1), so that a fit needs no random draws beyond the seeded
initialisation; every weight is drawn from the generator given (uniform in ±1/sqrt(fan in),
or ±1/sqrt(hidden) in an LSTM: PyTorch's own schemes, and N(0, 1) embeddings), not from the
global RNG. The decoder's logits are masked per position to that decision's tokens (NAO_V1's
decoder likewise lets a node position pick only a node, an op position only an op), so every
decoded sequence is a choice vector within the decisions' ranges.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

START = 0  # the decoder's first input; decision i's choice c is token offsets[i] + c + 1


class NAOModel(nn.Module):
    def __init__(self, sizes: list[int], embedding: int, hidden: int, layers: int,
                 mlp_layers: int, mlp_width: int, generator: torch.Generator) -> None:
        super().__init__()
        self.sizes = list(sizes)  # options per decision
        vocab = 1 + sum(sizes)
        starts = [1 + sum(sizes[:i]) for i in range(len(sizes))]
        mask = torch.full((len(sizes), vocab), float("-inf"))
        for i, (s, n) in enumerate(zip(starts, sizes)):
            mask[i, s:s + n] = 0.0
        self.register_buffer("offsets", torch.tensor(starts))
        self.register_buffer("mask", mask)  # (length, vocab): 0 where a token is valid
        self.embed = nn.Embedding(vocab, embedding)
        self.encoder = nn.LSTM(embedding, hidden, layers, batch_first=True)
        widths = [hidden] + [mlp_width] * mlp_layers
        self.mlp = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.regressor = nn.Linear(widths[-1], 1)
        self.decoder_embed = nn.Embedding(vocab, embedding)
        self.decoder = nn.LSTM(embedding, hidden, layers, batch_first=True)
        self.combine = nn.Linear(2 * hidden, hidden)
        self.out = nn.Linear(hidden, vocab)
        self.layers = layers
        with torch.no_grad():  # PyTorch's default schemes, drawn from ``generator``
            for module in self.modules():
                if isinstance(module, nn.Embedding):
                    module.weight.normal_(generator=generator)
                elif isinstance(module, (nn.LSTM, nn.Linear)):
                    fan = hidden if isinstance(module, nn.LSTM) else module.in_features
                    for p in module.parameters(recurse=False):
                        p.uniform_(-fan ** -0.5, fan ** -0.5, generator=generator)

    def tokens(self, choices: torch.Tensor) -> torch.Tensor:
        """(n, length) choice indices -> (n, length) tokens."""
        return choices + self.offsets

    def choices(self, tokens: torch.Tensor) -> torch.Tensor:
        return tokens - self.offsets

    def encode(self, tokens: torch.Tensor) -> torch.Tensor:
        """(n, length) tokens -> (n, length, hidden) normalised per-token states."""
        states, _ = self.encoder(self.embed(tokens))
        return F.normalize(states, dim=-1)

    @staticmethod
    def embedding(states: torch.Tensor) -> torch.Tensor:
        return F.normalize(states.mean(dim=1), dim=-1)

    def predict(self, states: torch.Tensor) -> torch.Tensor:
        """(n, length, hidden) -> (n,) in (0, 1)."""
        x = self.embedding(states)
        for layer in self.mlp:
            x = torch.relu(layer(x))
        return torch.sigmoid(self.regressor(x)).squeeze(-1)

    def _initial(self, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.embedding(states).unsqueeze(0).repeat(self.layers, 1, 1).contiguous()
        return h, h.clone()

    def _logits(self, output: torch.Tensor, states: torch.Tensor,
                positions: slice) -> torch.Tensor:
        """Attention over the encoder's states, then masked logits at ``positions``."""
        weights = torch.softmax(output @ states.transpose(1, 2), dim=-1)  # (n, t, length)
        mixed = torch.tanh(self.combine(torch.cat([weights @ states, output], dim=-1)))
        return self.out(mixed) + self.mask[positions]

    def reconstruct(self, states: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits (n, length, vocab) of ``tokens`` from the encoder's states."""
        start = torch.full_like(tokens[:, :1], START)
        inputs = torch.cat([start, tokens[:, :-1]], dim=1)
        output, _ = self.decoder(self.decoder_embed(inputs), self._initial(states))
        return self._logits(output, states, slice(0, tokens.shape[1]))

    def greedy(self, states: torch.Tensor) -> torch.Tensor:
        """(n, length) tokens decoded greedily from the encoder's states, one valid token per
        position (the mask)."""
        n, length = states.shape[0], len(self.sizes)
        token = torch.full((n, 1), START, dtype=torch.long, device=states.device)
        state = self._initial(states)
        out = []
        for i in range(length):
            output, state = self.decoder(self.decoder_embed(token), state)
            token = self._logits(output, states, slice(i, i + 1)).argmax(dim=-1)
            out.append(token)
        return torch.cat(out, dim=1)
