"""NAO's predictor (Luo et al., NeurIPS 2018, "Neural Architecture Optimization"): an
encoder-predictor-decoder over the architecture as a token sequence, and the gradient step in
its embedding space that NAO searches with (``improve``).

The sequence is the space's decisions in order, decision i's choice c the token
``offsets[i] + c + 1`` (offsets: the options of the decisions before; 0 is the decoder's start
token), so that no two decisions share a token. The network is
:class:`~archsearch.predictors.nao_model.NAOModel`. Training, as renqianluo/NAO_pytorch's
NAO_V1 ``train_search.py`` (``controller_train``): targets min-max scaled to [0, 1], loss
``trade_off * MSE(prediction) + (1 - trade_off) * cross-entropy(reconstruction)`` with
``trade_off`` 0.8, Adam (lr 1e-3, L2 weight decay 1e-4), gradients clipped to norm 5,
shuffled minibatches of 100. ``predict`` maps the sigmoid output back to the objective's units
and gives no uncertainty (std None).

``improve`` is NAO's ``infer``: the gradient of the predicted value with respect to the
encoder's per-token states, ``h' = h + eta * df/dh``, the moved states normalised again and
decoded greedily; ``eta`` grows ``step_size, 2 * step_size, ...`` (NAO_V1: 1, 2, ... up to 50)
until the decoded architecture differs from its start, is valid and is not to be avoided.

CPU-sized defaults, each a departure from NAO_V1 (in brackets): embedding 16 (48), hidden 32
(96), an MLP of 2 x 32 (3 x 200), 60 epochs (1,000) of batches of 20 (100) at lr 1e-2 (1e-3):
on the 100 to 200 architectures a CPU search evaluates they fit in seconds, reconstruct
about 95% of the training tokens and rank held-out NB201 cells' convolution count at Spearman
0.96 (100 training cells); ``NAOPredictor(space, embedding=48, hidden=96, mlp_layers=3,
mlp_width=200, epochs=1000, batch_size=100, lr=1e-3)`` is NAO_V1's. NAO_V1 also doubles its
training set by symmetric swaps of its own cell encoding: not done here. No dropout
(:mod:`nao_model`). The sequence has one token per decision, so a space whose architectures
make fewer decisions than it lists (a shallower NAS-RL stack) is refused with a UserError.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from archsearch.errors import ArchitectureError, UserError
from archsearch.predictors.base import Predictor, check_examples
from archsearch.predictors.nao_model import NAOModel
from archsearch.registry import PREDICTORS
from archsearch.spaces.base import Architecture, SearchSpace

log = logging.getLogger(__name__)


@PREDICTORS.register("nao")
class NAOPredictor(Predictor):
    def __init__(self, space: SearchSpace, seed: int = 0, embedding: int = 16, hidden: int = 32,
                 layers: int = 1, mlp_layers: int = 2, mlp_width: int = 32,
                 epochs: int = 60, batch_size: int = 20, lr: float = 1e-2,
                 weight_decay: float = 1e-4, trade_off: float = 0.8,
                 grad_clip: float = 5.0) -> None:
        super().__init__(space, seed)
        if min(embedding, hidden, layers, mlp_width, batch_size) < 1 or mlp_layers < 0 \
                or epochs < 0 or not lr > 0 or weight_decay < 0 or not 0 <= trade_off <= 1:
            raise ValueError("embedding, hidden, layers, mlp_width and batch_size must be at "
                             "least 1, mlp_layers and epochs at least 0, lr positive, "
                             "weight_decay not negative and trade_off in [0, 1]")
        self.sizes = [d.n_options for d in space.decisions()]
        self.shape = {"embedding": embedding, "hidden": hidden, "layers": layers,
                      "mlp_layers": mlp_layers, "mlp_width": mlp_width}
        self.epochs, self.batch_size, self.lr = epochs, batch_size, lr
        self.weight_decay, self.trade_off, self.grad_clip = weight_decay, trade_off, grad_clip
        self.model: NAOModel | None = None
        self.scale = (0.0, 1.0)  # the targets' minimum and range

    # ---- sequences ------------------------------------------------------------------------

    def choices(self, archs: Sequence[Architecture]) -> torch.Tensor:
        """(n, decisions) each architecture's choice per decision."""
        rows = [self.space.encode(a) for a in archs]
        for arch, row in zip(archs, rows):
            if len(row) != len(self.sizes):
                raise UserError(f"nao: {arch.to_str()} makes {len(row)} decisions, the space "
                                f"lists {len(self.sizes)}; nao needs one token per decision")
        return torch.tensor(rows, dtype=torch.long).reshape(len(archs), len(self.sizes))

    def _model(self) -> NAOModel:
        if self.model is None:
            raise RuntimeError("predict before fit")
        return self.model

    # ---- the protocol ---------------------------------------------------------------------

    def fit(self, archs: Sequence[Architecture], values: Sequence[float]) -> None:
        check_examples(archs, values)
        y = np.asarray(values, dtype=np.float64)
        low, span = float(y.min()), float(y.max() - y.min())
        self.scale = (low, span if span > 0 else 1.0)
        targets = torch.from_numpy((y - self.scale[0]) / self.scale[1]).float()
        generator = torch.Generator().manual_seed(self.seed)
        self.model = model = NAOModel(self.sizes, generator=generator, **self.shape)
        tokens = model.tokens(self.choices(archs))
        optimizer = torch.optim.Adam(model.parameters(), lr=self.lr,
                                     weight_decay=self.weight_decay)
        n = len(targets)
        for epoch in range(self.epochs):
            order = torch.randperm(n, generator=generator)
            total = 0.0
            for start in range(0, n, self.batch_size):
                idx = order[start:start + self.batch_size]
                loss = self.loss(tokens[idx], targets[idx])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), self.grad_clip)
                optimizer.step()
                total += float(loss.detach()) * len(idx)
            if epoch == self.epochs - 1:
                log.debug("nao: last epoch's mean loss %.4f on %d architectures", total / n, n)
        model.requires_grad_(False)

    def loss(self, tokens: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        model = self._model()
        states = model.encode(tokens)
        prediction = F.mse_loss(model.predict(states), targets)
        logits = model.reconstruct(states, tokens)
        reconstruction = F.cross_entropy(logits.flatten(0, 1), tokens.flatten())
        return self.trade_off * prediction + (1 - self.trade_off) * reconstruction

    def scores(self, archs: Sequence[Architecture]) -> torch.Tensor:
        """(n,) the sigmoid outputs, in [0, 1] of the training targets' range."""
        model = self._model()
        with torch.no_grad():
            return model.predict(model.encode(model.tokens(self.choices(archs))))

    def predict(self, archs: Sequence[Architecture]) -> tuple[np.ndarray, None]:
        return self.scores(archs).double().numpy() * self.scale[1] + self.scale[0], None

    def reconstruct(self, archs: Sequence[Architecture]) -> np.ndarray:
        """(n, decisions) the choices decoded greedily from each architecture's own states."""
        model = self._model()
        with torch.no_grad():
            tokens = model.greedy(model.encode(model.tokens(self.choices(archs))))
        return model.choices(tokens).numpy()

    # ---- NAO's search step ----------------------------------------------------------------

    def improve(self, archs: Sequence[Architecture], step_size: float = 1.0,
                max_steps: int = 50,
                avoid: Collection[str] = ()) -> list[Architecture | None]:
        """Per architecture, the first decoding of its moved states (step ``k * step_size``,
        k = 1 .. ``max_steps``) that differs from it, is a valid architecture and whose string
        is not in ``avoid``; None where no step gives one. In the order of ``archs``."""
        if not archs:
            return []
        model = self._model()
        with torch.enable_grad():
            states = model.encode(model.tokens(self.choices(archs))).detach().requires_grad_()
            gradient, = torch.autograd.grad(model.predict(states).sum(), states)
        starts = [a.to_str() for a in archs]
        found: list[Architecture | None] = [None] * len(archs)
        for k in range(1, max_steps + 1):
            open_ = [i for i, f in enumerate(found) if f is None]
            if not open_:
                break
            with torch.no_grad():
                moved = F.normalize(states[open_] + k * step_size * gradient[open_], dim=-1)
                decoded = model.choices(model.greedy(moved)).tolist()
            for i, choices in zip(open_, decoded):
                try:
                    arch = self.space.decode(choices)
                except ArchitectureError:
                    continue  # a constraint of the space the mask does not know
                text = arch.to_str()
                if text != starts[i] and text not in avoid:
                    found[i] = arch
        return found

    def state_dict(self) -> dict[str, Any]:
        if self.model is None:
            raise RuntimeError("state_dict before fit")
        return {"model": self.model.state_dict(), "shape": dict(self.shape), "sizes": self.sizes,
                "scale": list(self.scale)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.shape = {k: int(v) for k, v in state["shape"].items()}
        self.sizes = [int(s) for s in state["sizes"]]
        self.model = NAOModel(self.sizes, generator=torch.Generator().manual_seed(0),
                              **self.shape)
        self.model.load_state_dict(state["model"])
        self.model.requires_grad_(False)
        self.scale = (float(state["scale"][0]), float(state["scale"][1]))
