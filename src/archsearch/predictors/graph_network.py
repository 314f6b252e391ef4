"""The bidirectional graph convolutional network of Wen et al. (ECCV 2020, "Neural Predictor for
Neural Architecture Search"): a cell graph in, one number out.

Input: cells as :func:`archsearch.encodings.adjacency` writes them, stacked: ``a`` (B, N, N)
with ``a[b, i, j] = 1`` when node i feeds node j, ``x`` (B, N, F) one-hot node features (an
all-zero row is a padding slot, not a node). Each of ``layers`` graph convolutions propagates
in both directions and averages:

    H' = ( ReLU(F H W_forward) + ReLU(R H W_reverse) ) / 2

with F = rownorm(A^T + I) (a node averages itself and the nodes feeding it: information flows
along the edges) and R = rownorm(A + I) (itself and the nodes it feeds: against them), each
direction with its own weights and bias. The graph's feature is the mean over its nodes
(padding slots excluded), and a linear layer maps it to the output, one scalar per graph.

All weights are Glorot-uniform from the generator passed in, biases zero; no dropout, so that
training draws nothing from global state.
"""

from __future__ import annotations

import torch
from torch import nn


def row_normalised(a: torch.Tensor) -> torch.Tensor:
    """(B, N, N) -> (B, N, N): self-loops added, each row divided by its sum."""
    a = a + torch.eye(a.shape[-1], dtype=a.dtype)
    return a / a.sum(dim=-1, keepdim=True)


def glorot(fan_in: int, fan_out: int, generator: torch.Generator) -> nn.Parameter:
    bound = (6.0 / (fan_in + fan_out)) ** 0.5
    return nn.Parameter(torch.empty(fan_in, fan_out).uniform_(-bound, bound,
                                                              generator=generator))


class BidirectionalGCN(nn.Module):
    def __init__(self, features: int, width: int, layers: int,
                 generator: torch.Generator) -> None:
        super().__init__()
        dims = [features] + [width] * layers
        self.forward_weights = nn.ParameterList(
            [glorot(i, o, generator) for i, o in zip(dims[:-1], dims[1:])])
        self.reverse_weights = nn.ParameterList(
            [glorot(i, o, generator) for i, o in zip(dims[:-1], dims[1:])])
        self.forward_biases = nn.ParameterList([nn.Parameter(torch.zeros(o)) for o in dims[1:]])
        self.reverse_biases = nn.ParameterList([nn.Parameter(torch.zeros(o)) for o in dims[1:]])
        self.head = glorot(width, 1, generator)
        self.head_bias = nn.Parameter(torch.zeros(1))

    def node_features(self, a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """(B, N, N), (B, N, F) -> (B, N, width): every node after the convolutions."""
        along = row_normalised(a.transpose(1, 2))  # (B, N, N): row j mixes j's inputs
        against = row_normalised(a)  # (B, N, N): row i mixes what i feeds
        h = x
        for w_f, b_f, w_r, b_r in zip(self.forward_weights, self.forward_biases,
                                      self.reverse_weights, self.reverse_biases):
            h_forward = torch.relu(along @ h @ w_f + b_f)  # (B, N, width)
            h_reverse = torch.relu(against @ h @ w_r + b_r)  # (B, N, width)
            h = (h_forward + h_reverse) / 2
        return h

    def forward(self, a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """(B, N, N), (B, N, F) -> (B,)."""
        h = self.node_features(a, x)  # (B, N, width)
        real = x.any(dim=-1, keepdim=True).to(h.dtype)  # (B, N, 1): 0 on padding slots
        graph = (h * real).sum(dim=1) / real.sum(dim=1)  # (B, width)
        return (graph @ self.head + self.head_bias).squeeze(-1)  # (B,)
