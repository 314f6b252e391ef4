"""The proxy registry and the per-network context that shares expensive passes among proxies.

A proxy is a function ``score(ctx) -> float`` registered under a name; larger means "predicted
better". The context holds one freshly built (untrained) network and one minibatch, and
computes each expensive pass at most once, whichever proxies ask for it:

* ``loss_pass()``: cross-entropy on the batch, backward: weight gradients (grad_norm, snip) and
  each conv/linear layer's output with its gradient (fisher);
* ``jacobian_pass()``: the gradient of the summed logits with respect to the input, per sample
  (jacob_cov, epe_nas), and the binary ReLU codes of the same forward pass (naswot).

ReLU codes are recorded through a ``TorchFunctionMode``, so functional ``F.relu``/``torch.relu``
calls count as well as ``nn.ReLU`` modules.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn
from torch.nn import functional as F
from torch.overrides import TorchFunctionMode

Proxy = Callable[["ProxyContext"], float]
PROXIES: dict[str, Proxy] = {}


def proxy(name: str) -> Callable[[Proxy], Proxy]:
    def register(fn: Proxy) -> Proxy:
        if name in PROXIES:
            raise KeyError(f"duplicate proxy {name!r}")
        PROXIES[name] = fn
        return fn

    return register


def weighted_layers(model: nn.Module) -> list[nn.Module]:
    """The conv and linear layers: the parameters every gradient proxy sums over."""
    return [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def logits_of(out: Any) -> torch.Tensor:
    return out[0] if isinstance(out, tuple) else out


class ReluRecorder(TorchFunctionMode):
    """Records (input > 0) of every ReLU call, flattened per sample."""

    RELUS = {torch.relu, torch.relu_, F.relu, torch.Tensor.relu, torch.Tensor.relu_}

    def __init__(self) -> None:
        super().__init__()
        self.codes: list[torch.Tensor] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[override]
        kwargs = kwargs or {}
        if func in self.RELUS and args and torch.is_tensor(args[0]) and args[0].dim() > 1:
            self.codes.append((args[0].detach() > 0).flatten(1).float())
        return func(*args, **kwargs)


@dataclass
class ProxyContext:
    """One untrained network and one minibatch (x: (N, C, H, W), y: (N,))."""

    model: nn.Module
    x: torch.Tensor
    y: torch.Tensor
    num_classes: int
    _cache: dict[str, Any] = field(default_factory=dict)

    def pristine(self) -> nn.Module:
        """A copy of the network as built (for proxies that change its weights), channels_last
        (much faster convolutions on CPU; the numbers do not depend on the layout)."""
        return copy.deepcopy(self.model).to(memory_format=torch.channels_last)

    @property
    def batch(self) -> torch.Tensor:
        return self.x.contiguous(memory_format=torch.channels_last)

    def loss_pass(self) -> dict[str, Any]:
        """Weight gradients of the cross-entropy (``model``'s ``.grad``) and every conv/linear
        output with its gradient (``activations``)."""
        return self._shared_pass()

    def jacobian_pass(self) -> dict[str, Any]:
        """Per-sample input gradients of the summed logits (``jacobian``, (N, C*H*W)) and the
        ReLU codes of the forward pass (``relu_codes``)."""
        return self._shared_pass()

    def _shared_pass(self) -> dict[str, Any]:
        """One forward pass serves both: backward of the loss for the weights and activations,
        then an input-only backward of the summed logits for the Jacobian."""
        if "shared" not in self._cache:
            model = self.pristine()
            model.train()
            outputs: list[torch.Tensor] = []

            def keep(_module: nn.Module, _inputs: Any, out: torch.Tensor) -> None:
                if out.requires_grad:
                    out.retain_grad()
                outputs.append(out)

            hooks = [m.register_forward_hook(keep) for m in weighted_layers(model)]
            x = self.batch.clone().requires_grad_(True)
            with ReluRecorder() as recorder:
                logits = logits_of(model(x))
            for h in hooks:
                h.remove()
            jacobian = torch.zeros_like(x)
            if logits.requires_grad:
                F.cross_entropy(logits, self.y).backward(retain_graph=True, inputs=[
                    p for p in model.parameters() if p.requires_grad] + [o for o in outputs
                                                                         if o.requires_grad])
                (grad_x,) = torch.autograd.grad(logits.sum(), x, allow_unused=True)
                if grad_x is not None:  # None: the output ignores the input (all-none cells)
                    jacobian = grad_x
            self._cache["shared"] = {
                "model": model, "activations": outputs, "relu_codes": recorder.codes,
                "jacobian": jacobian.detach().flatten(1),
            }
        return self._cache["shared"]


def correlation(rows: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of the rows (float64). Rows with no variance (a network whose output
    does not depend on its input) count as perfectly correlated: the limit of the worst case."""
    rows = rows.double()
    centred = rows - rows.mean(1, keepdim=True)
    norm = centred.norm(dim=1, keepdim=True)
    dead = (norm.squeeze(1) <= 1e-12 * (1 + rows.abs().max()))
    unit = centred / norm.clamp_min(1e-300)
    corr = unit @ unit.T
    if dead.any():
        corr[dead, :] = 1.0
        corr[:, dead] = 1.0
    return corr.clamp(-1.0, 1.0)
