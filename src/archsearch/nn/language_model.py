"""Word-level language models: an ENAS recurrent cell (or an LSTM, the baseline) between a word
embedding and a softmax that share their weights (tied), with the usual regularisation:

* embedding dropout: whole words dropped from the vocabulary for a batch (rows of the
  embedding), the rest rescaled;
* variational dropout: one mask per sequence, the same at every time step, on the input to the
  cell (``dropout_input``), on the recurrent state (``dropout_hidden``) and on the output
  (``dropout_output``).

``forward(tokens, h, arch=None) -> (logits, h_last)``: tokens (T, B) int64, h (B, H) carried
across batches by the caller (truncated back-propagation through time).

ENAS cells can chain ReLU and identity nodes, whose state is unbounded: with SGD at the usual
language-model learning rates a supernet diverges within a few epochs. ``max_hidden_norm``
rescales any sample's hidden state whose norm exceeds it after every step (a stabiliser used by
public ENAS-PTB implementations; None turns it off).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def variational_mask(x: torch.Tensor, p: float, training: bool) -> torch.Tensor | None:
    """A (B, H) keep-mask scaled by 1/(1-p), or None when there is nothing to drop."""
    if not training or p <= 0:
        return None
    return torch.bernoulli(x.new_full(x.shape[-2:], 1 - p)) / (1 - p)


def embedding_dropout(weight: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    if not training or p <= 0:
        return weight
    keep = torch.bernoulli(weight.new_full((weight.shape[0], 1), 1 - p)) / (1 - p)
    return weight * keep


class RNNLanguageModel(nn.Module):
    """Embedding -> ENAS cell over time -> tied softmax. ``cell.cell is None``: the supernet
    (``forward`` takes the architecture to run)."""

    def __init__(self, cell: nn.Module, vocab_size: int, hidden: int,
                 dropout_embedding: float = 0.1, dropout_input: float = 0.2,
                 dropout_hidden: float = 0.1, dropout_output: float = 0.2,
                 max_hidden_norm: float | None = 25.0) -> None:
        super().__init__()
        self.hidden = hidden
        self.encoder = nn.Embedding(vocab_size, hidden)
        nn.init.uniform_(self.encoder.weight, -0.1, 0.1)
        self.cell = cell
        self.max_hidden_norm = max_hidden_norm
        self.bias = nn.Parameter(torch.zeros(vocab_size))  # decoder bias; weight tied
        self.p = (dropout_embedding, dropout_input, dropout_hidden, dropout_output)

    def init_hidden(self, batch: int, device: torch.device | None = None) -> torch.Tensor:
        return torch.zeros(batch, self.hidden, device=device or self.bias.device)

    def forward(self, tokens: torch.Tensor, h: torch.Tensor,
                arch: object | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        arch = arch if arch is not None else self.cell.cell
        assert arch is not None, "the supernet needs an architecture to run"
        p_emb, p_in, p_hid, p_out = self.p
        weight = embedding_dropout(self.encoder.weight, p_emb, self.training)
        x = F.embedding(tokens, weight)  # (T, B, H)
        m_in = variational_mask(x, p_in, self.training)
        if m_in is not None:
            x = x * m_in
        xw = self.cell.w_x(x)  # (T, B, 2H): node 0's input projections, all steps at once
        m_hid = variational_mask(h, p_hid, self.training)
        outputs = []
        for t in range(tokens.shape[0]):
            h = self.cell.step(xw[t], h * m_hid if m_hid is not None else h, arch)
            if self.max_hidden_norm is not None:
                norm = h.norm(dim=-1, keepdim=True)
                h = h * (self.max_hidden_norm / norm.clamp_min(self.max_hidden_norm))
            outputs.append(h)
        out = torch.stack(outputs)  # (T, B, H)
        m_out = variational_mask(out, p_out, self.training)
        if m_out is not None:
            out = out * m_out
        return F.linear(out, self.encoder.weight, self.bias), h  # (T, B, V), (B, H)


class LSTMLanguageModel(nn.Module):
    """The baseline: one LSTM layer, same tying and dropouts (variational on input and output,
    and on the carried hidden state between batches)."""

    def __init__(self, vocab_size: int, hidden: int, dropout_embedding: float = 0.1,
                 dropout_input: float = 0.2, dropout_hidden: float = 0.1,
                 dropout_output: float = 0.2) -> None:
        super().__init__()
        self.hidden = hidden
        self.encoder = nn.Embedding(vocab_size, hidden)
        nn.init.uniform_(self.encoder.weight, -0.1, 0.1)
        self.lstm = nn.LSTM(hidden, hidden)
        self.bias = nn.Parameter(torch.zeros(vocab_size))
        self.p = (dropout_embedding, dropout_input, dropout_hidden, dropout_output)

    def init_hidden(self, batch: int, device: torch.device | None = None) -> torch.Tensor:
        return torch.zeros(2, batch, self.hidden, device=device or self.bias.device)

    def forward(self, tokens: torch.Tensor, h: torch.Tensor,
                arch: object | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        p_emb, p_in, p_hid, p_out = self.p
        x = F.embedding(tokens, embedding_dropout(self.encoder.weight, p_emb, self.training))
        m_in = variational_mask(x, p_in, self.training)
        if m_in is not None:
            x = x * m_in
        h0, c0 = h[0], h[1]
        m_hid = variational_mask(h0, p_hid, self.training)
        if m_hid is not None:
            h0 = h0 * m_hid
        out, (hn, cn) = self.lstm(x, (h0[None], c0[None]))  # (T, B, H)
        m_out = variational_mask(out, p_out, self.training)
        if m_out is not None:
            out = out * m_out
        return F.linear(out, self.encoder.weight, self.bias), torch.stack([hn[0], cn[0]])


def lstm_matching(params: int, vocab_size: int) -> int:
    """The LSTM hidden size whose language model has about ``params`` parameters:
    V*h (tied embedding) + V (bias) + 8h^2 + 8h (LSTM) = params."""
    a, b, c = 8.0, vocab_size + 8.0, vocab_size - params
    return max(1, round((-b + (b * b - 4 * a * c) ** 0.5) / (2 * a)))
