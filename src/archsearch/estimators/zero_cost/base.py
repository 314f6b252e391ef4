"""The proxy registry and the per-network context that shares expensive passes among proxies.

A proxy is a function ``score(ctx) -> float`` registered under a name; larger means "predicted
better". The context holds one freshly built (untrained) network and one minibatch, and
computes each expensive pass at most once, whichever proxies ask for it:

* ``loss_pass()``: cross-entropy on the batch, backward: weight gradients (grad_norm, snip) and
  each conv/linear layer's output with its gradient (fisher);
* ``jacobian_pass()``: the gradient of the summed logits with respect to the input, per sample
  (jacob_cov, epe_nas), and the binary ReLU masks of the same forward pass (naswot; grasp
  replays them to fix the network's linear region).

ReLU codes are recorded through a ``TorchFunctionMode``, so functional ``F.relu``/``torch.relu``
calls count as well as ``nn.ReLU`` modules.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

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
    """Records (input > 0) of every ReLU call in its input's shape, and whether the forward
    pass called any other function with a kink (max pooling, clamp, ...): without one, the
    ReLU masks alone fix the network's linear region (see ``MaskedRelu``)."""

    RELUS = frozenset({torch.relu, torch.relu_, F.relu, torch.Tensor.relu, torch.Tensor.relu_})
    KINKED = frozenset({
        "relu6", "hardtanh", "hardtanh_", "leaky_relu", "leaky_relu_", "clamp", "clamp_", "clip",
        "clip_", "abs", "abs_", "threshold", "threshold_", "hardswish", "hardsigmoid", "max",
        "min", "maximum", "minimum", "amax", "amin", "prelu", "rrelu", "sort", "topk", "median",
        "round", "floor", "ceil", "sign",
    })

    def __init__(self) -> None:
        super().__init__()
        self.masks: list[torch.Tensor] = []
        self.other_kinks: set[str] = set()

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[override]
        kwargs = kwargs or {}
        if func in self.RELUS and args and torch.is_tensor(args[0]):
            self.masks.append(args[0].detach() > 0)
        else:
            name = getattr(func, "__name__", "")
            if "max_pool" in name or "adaptive_max" in name or name in self.KINKED:
                self.other_kinks.add(name)
        return func(*args, **kwargs)


class MaskedRelu(TorchFunctionMode):
    """Replays recorded ReLU masks: the i-th ReLU call becomes ``x * masks[i]``. With the masks
    of the unperturbed network, the network is one smooth function around its weights whose
    derivatives equal the network's own wherever those are defined (ReLU'' = 0)."""

    def __init__(self, masks: list[torch.Tensor]) -> None:
        super().__init__()
        self.masks = masks
        self.calls = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[override]
        kwargs = kwargs or {}
        if func in ReluRecorder.RELUS and args and torch.is_tensor(args[0]):
            x = args[0]
            if self.calls >= len(self.masks) or self.masks[self.calls].shape != x.shape:
                raise RuntimeError("the network's ReLU calls differ from the recorded ones")
            mask = self.masks[self.calls]
            self.calls += 1
            inplace = (func in (torch.relu_, torch.Tensor.relu_) or kwargs.get("inplace", False)
                       or (func is F.relu and len(args) > 1 and bool(args[1])))
            return x.mul_(mask) if inplace else x * mask
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
        """Per-sample input gradients of the summed logits (``jacobian``, (N, C*H*W)), the
        boolean ReLU masks of the forward pass in call order (``relu_masks``) and the names of
        any other kinked functions it called (``other_kinks``)."""
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
                "model": model, "activations": outputs, "relu_masks": recorder.masks,
                "other_kinks": recorder.other_kinks,
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
