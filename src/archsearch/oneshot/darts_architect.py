"""DARTS' architecture gradient (quark0/darts ``cnn/architect.py``): first order, or the
one-step unrolled second order.

First order: ``grad_alpha L_val(w, alpha)``, the weights taken as they are.

Second order: the validation loss after one (virtual) SGD step of the weights,

    w' = w - eta * (momentum * buf + grad_w L_train(w) + weight_decay * w)

(the SGD-with-momentum step the weights' optimizer would take next, unclipped; eta its current
learning rate, buf its momentum buffer), differentiated through that step:

    grad_alpha L_val(w', alpha) - eta * H v,
    H v ~ [grad_alpha L_train(w + eps v) - grad_alpha L_train(w - eps v)] / (2 eps),

with ``v = grad_w' L_val(w', alpha)`` and ``eps = r / ||v||`` (r = 0.01): a central finite
difference of the mixed second derivative along v, centred on the weights w themselves, not on
w' (centring on w' was a bug of early code, quark0/darts#21). The official code moves the
weights in place (+eps, -2 eps, +eps); here every loss at other weights is a functional call
with those weights, so the supernet's own weights are never touched. With ``eta = 0`` the
second order is the first (w' = w and the correction vanishes).

The losses are the estimator's (``loss(path, batch, params)``): the supernet in training mode
on the path the architecture weights give, ``path(detach)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

Params = dict[str, torch.Tensor]


def unrolled_weights(weights: Params, grads: Params, buffers: Params, eta: float,
                     momentum: float, weight_decay: float) -> Params:
    """w' = w - eta (momentum * buf + g + weight_decay * w), per parameter (no graph)."""
    return {n: w - eta * (momentum * buffers[n] + grads[n] + weight_decay * w)
            for n, w in weights.items()}


def hessian_vector_term(train_loss: Callable[[Params], torch.Tensor], weights: Params,
                        vector: Params, alphas: Sequence[torch.Tensor],
                        r: float = 0.01) -> list[torch.Tensor]:
    """[grad_alpha L(w + eps v) - grad_alpha L(w - eps v)] / (2 eps), eps = r / ||v||: the
    mixed second derivative of ``train_loss`` (a function of the weights, differentiable in
    ``alphas``) along ``vector``, at ``weights``."""
    norm = torch.cat([v.flatten() for v in vector.values()]).norm()
    eps = r / norm
    plus = {n: w + eps * vector[n] for n, w in weights.items()}
    minus = {n: w - eps * vector[n] for n, w in weights.items()}
    g_plus = grad_or_zeros(train_loss(plus), alphas)
    g_minus = grad_or_zeros(train_loss(minus), alphas)
    return [(p - m) / (2 * eps) for p, m in zip(g_plus, g_minus)]


def grad_or_zeros(loss: torch.Tensor, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """d loss / d inputs, zeros for inputs the loss does not depend on."""
    grads = torch.autograd.grad(loss, list(inputs), allow_unused=True)
    return [torch.zeros_like(x) if g is None else g for x, g in zip(inputs, grads)]


class Architect:
    """The architecture gradient of ``alphas`` over an estimator's supernet.

    ``path(detach)``: the relaxed path of the current alphas (detached: no graph to them).
    ``order``: 1 (first order) or 2 (unrolled); momentum and weight decay of the unrolled
    step are the weights' optimizer's."""

    def __init__(self, estimator: object, alphas: Sequence[torch.Tensor],
                 path: Callable[[bool], object], order: int, r: float = 0.01) -> None:
        if order not in (1, 2):
            raise ValueError(f"DARTS' order is 1 or 2, not {order}")
        self.estimator, self.alphas, self.path = estimator, list(alphas), path
        self.order, self.r = order, r

    def loss(self, batch: object, params: Params | None = None,
             detach: bool = False) -> torch.Tensor:
        return self.estimator.loss(self.path(detach), batch, params)  # type: ignore[attr-defined]

    def gradients(self, train: object, val: object, eta: float | None = None
                  ) -> list[torch.Tensor]:
        """d L_val / d alpha for this step (``eta``: the weights' learning rate, by default
        the estimator's current one)."""
        if self.order == 1:
            return grad_or_zeros(self.loss(val), self.alphas)
        eta = self.estimator.current_lr() if eta is None else eta  # type: ignore[attr-defined]
        return self.unrolled_gradients(train, val, eta)

    def unrolled_gradients(self, train: object, val: object, eta: float) -> list[torch.Tensor]:
        model = self.estimator.model  # type: ignore[attr-defined]
        optimizer = self.estimator.optimizer  # type: ignore[attr-defined]
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        weights = {n: p.detach() for n, p in named}
        # 1. w' = one SGD step on the training batch (alphas held fixed: a detached path)
        grads = dict(zip(weights, grad_or_zeros(self.loss(train, detach=True),
                                                [p for _, p in named])))
        buffers = {n: optimizer.state.get(p, {}).get("momentum_buffer") for n, p in named}
        buffers = {n: torch.zeros_like(weights[n]) if b is None else b
                   for n, b in buffers.items()}
        group = optimizer.param_groups[0]
        unrolled = unrolled_weights(weights, grads, buffers, eta, group["momentum"],
                                    group["weight_decay"])
        unrolled = {n: w.requires_grad_() for n, w in unrolled.items()}
        # 2. the validation loss at w': its gradient in alpha, and v = its gradient in w'
        both = grad_or_zeros(self.loss(val, unrolled), [*self.alphas, *unrolled.values()])
        d_alpha, v = both[:len(self.alphas)], dict(zip(unrolled, both[len(self.alphas):]))
        # 3. minus eta times the finite-difference Hessian-vector term, centred on w
        hv = hessian_vector_term(lambda params: self.loss(train, params), weights, v,
                                 self.alphas, self.r)
        return [g - eta * h for g, h in zip(d_alpha, hv)]
