"""Parameter and FLOP counts of a network, for reports and the ``params``/``flops`` baselines."""

from __future__ import annotations

import torch
from torch import nn


def count_flops_m(model: nn.Module, input_shape: tuple[int, ...] = (1, 3, 32, 32)) -> float:
    """Multiply-accumulates of the convolutions and linear layers for one input, in millions.

    This is the convention of NAS-Bench-201 and NASLib ("FLOPs" = MACs of conv and linear
    layers, biases included); normalisation, activations and pooling are not counted.
    """
    total = 0.0

    def conv_hook(module: nn.Conv2d, _inputs: tuple[torch.Tensor], output: torch.Tensor) -> None:
        nonlocal total
        kh, kw = module.kernel_size
        per_output = kh * kw * module.in_channels // module.groups + (module.bias is not None)
        total += output.numel() / output.shape[0] * per_output

    def linear_hook(module: nn.Linear, _inputs: tuple[torch.Tensor], output: torch.Tensor) -> None:
        nonlocal total
        total += output.numel() / output.shape[0] * (module.in_features + (module.bias is not None))

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        with torch.no_grad():
            model(torch.zeros(input_shape, device=device))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return total / 1e6
