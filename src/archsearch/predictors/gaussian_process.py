"""A Gaussian-process regressor on a flat encoding, on BoTorch and GPyTorch (the optional extra
``archsearch[bo]``): the model of the ``bo`` strategy, as a predictor.

The GP is :func:`archsearch.strategies.bo.gp_model`, fitted as the strategy fits it
(:func:`~archsearch.strategies.bo.fit_gp`): BoTorch's ``SingleTaskGP`` with a Matern-5/2
kernel, one lengthscale per input dimension (ARD) under the dimension-scaled lengthscale
prior, observation noise learned, outcomes standardised, hyperparameters maximising the
marginal likelihood (``fit_gpytorch_mll``, L-BFGS-B for at most ``maxiter`` iterations; torch's
RNG forked and seeded with the predictor's seed). Inputs: the encoding named by ``encoding``
(``path`` on NB201 by default, else ``one_hot``; :func:`archsearch.encodings.vector_encoder`),
in float64.

``predict`` gives the posterior mean of the objective and its posterior standard deviation
(of the latent function: observation noise not added). The saved state is the training data
and the fitted hyperparameters, from which the posterior is rebuilt exactly. Without BoTorch,
creating the predictor fails with the extra to install.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from archsearch.encodings import vector_encoder
from archsearch.predictors.base import Predictor, check_examples
from archsearch.predictors.gp_posterior import marginal_posterior
from archsearch.registry import PREDICTORS
from archsearch.spaces.base import Architecture, SearchSpace


def bo_module() -> Any:
    """archsearch.strategies.bo, imported when first needed: at import time it would close a
    cycle (the strategies import the predictors)."""
    from archsearch.strategies import bo

    return bo


@PREDICTORS.register("gp")
class GaussianProcessPredictor(Predictor):
    def __init__(self, space: SearchSpace, seed: int = 0, encoding: str | None = None,
                 max_paths: int | None = None, maxiter: int = 200) -> None:
        super().__init__(space, seed)
        bo_module().import_botorch("the gp predictor")
        if maxiter < 1:
            raise ValueError("maxiter must be at least 1")
        self.encode = vector_encoder(space, encoding, max_paths)
        self.maxiter = maxiter
        self.model: Any = None
        self.train_y: Any = None  # (n, 1) the outcomes as given (the model standardises them)

    def _inputs(self, archs: Sequence[Architecture]) -> Any:
        import torch

        return torch.from_numpy(np.stack([self.encode(a) for a in archs]).astype(np.float64))

    def fit(self, archs: Sequence[Architecture], values: Sequence[float]) -> None:
        import torch

        check_examples(archs, values)
        x = self._inputs(archs)  # (n, d)
        y = torch.tensor(np.asarray(values, dtype=np.float64)).unsqueeze(-1)  # (n, 1)
        self.model = bo_module().fit_gp(x, y, self.seed, maxiter=self.maxiter).eval()
        self.train_y = y

    def predict(self, archs: Sequence[Architecture]) -> tuple[np.ndarray, np.ndarray]:
        import torch

        if self.model is None:
            raise RuntimeError("predict before fit")
        with torch.no_grad():  # each cell's marginal: no joint covariance of all of them
            mean, std = marginal_posterior(self.model, self._inputs(archs))  # (n,), (n,)
        return mean.numpy().astype(np.float64), std.numpy().astype(np.float64)

    def state_dict(self) -> dict[str, Any]:
        if self.model is None:
            raise RuntimeError("state_dict before fit")
        return {"train_x": self.model.train_inputs[0].clone(), "train_y": self.train_y.clone(),
                "model": {k: v.clone() for k, v in self.model.state_dict().items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        model = bo_module().gp_model(state["train_x"], state["train_y"])
        model.load_state_dict(state["model"])
        self.model = model.eval()
        self.train_y = state["train_y"]
