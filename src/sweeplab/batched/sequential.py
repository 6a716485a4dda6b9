"""A hand-batched forward pass for plain ``nn.Sequential`` models (MLPs, small CNNs).

For B models of one ``nn.Sequential`` made of the layers in :data:`HAND_LAYERS`, with
inputs ``x`` (B, n, ...) (model b on ``x[b]``), the forward pass of all B is:

- ``Linear``: ``y[b] = x[b] W[b]^T + bias[b]``, one ``torch.baddbmm`` over b;
- ``Conv2d``: on CUDA one grouped convolution (the B models' inputs side by side as
  channels, ``groups = B``); on CPU one ordinary convolution per model, because
  grouped convolutions there measured 2-4x slower than B separate ones (B = 16-64,
  the volume CNN's layers);
- activations and pooling: once over all B models' outputs.

Mathematically this is the forward pass of each model on its own mini-batch; numbers
differ from a single model's only by summation order (about 1e-16 relative in float64).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

ELEMENTWISE = (nn.ReLU, nn.Tanh, nn.Sigmoid, nn.GELU, nn.SiLU, nn.LeakyReLU, nn.ELU,
               nn.Identity)
POOLS = (nn.MaxPool2d, nn.AvgPool2d)
HAND_LAYERS = (nn.Linear, nn.Conv2d, nn.Flatten, *ELEMENTWISE, *POOLS)
"""Layers the hand-batched forward pass knows; any other module means ``vmap``."""

Step = tuple[str, nn.Module, str]


def hand_plan(model: nn.Module) -> list[Step] | None:
    """The layers of ``model`` as (kind, module, parameter prefix), or ``None`` if unsupported.

    Supported: an ``nn.Sequential`` of :data:`HAND_LAYERS`, with ``Flatten`` over every
    non-batch dimension, ``Conv2d`` ungrouped with zero padding.
    """
    if type(model) is not nn.Sequential:
        return None
    plan: list[Step] = []
    for name, module in model.named_children():
        if type(module) is nn.Linear:
            plan.append(("linear", module, name))
        elif type(module) is nn.Conv2d:
            if module.groups != 1 or module.padding_mode != "zeros" or isinstance(
                    module.padding, str):
                return None
            plan.append(("conv", module, name))
        elif type(module) is nn.Flatten:
            if module.start_dim != 1 or module.end_dim != -1:
                return None
            plan.append(("flatten", module, name))
        elif type(module) in ELEMENTWISE:
            plan.append(("elementwise", module, name))
        elif type(module) in POOLS:
            plan.append(("pool", module, name))
        else:
            return None
    return plan


def _linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """y[b] = x[b] W[b]^T + bias[b], computed as (W[b] x[b]^T)^T.

    In that order autograd's gradient of W is contiguous (a transposed view otherwise,
    which every optimizer pass would then read with strides), and it measured ~15%
    faster than ``baddbmm(bias, x, W^T)`` for the volume MLP.
    """
    b, in_features = x.shape[0], x.shape[-1]
    flat_t = x.reshape(b, -1, in_features).transpose(1, 2)
    out_t = (torch.bmm(weight, flat_t) if bias is None
             else torch.baddbmm(bias.unsqueeze(2), weight, flat_t))
    return out_t.transpose(1, 2).reshape(*x.shape[:-1], weight.shape[1])


def batched_conv(x: torch.Tensor, conv: nn.Conv2d, weight: torch.Tensor,
                 bias: torch.Tensor | None, grouped: bool | None = None) -> torch.Tensor:
    """Model b's convolution on x[b] (B, n, C, H, W), for every b.

    ``grouped``: one grouped convolution (default on CUDA) or one per model (CPU).
    """
    args = (conv.stride, conv.padding, conv.dilation)
    b, n = x.shape[:2]
    if not (x.device.type != "cpu" if grouped is None else grouped):
        return torch.stack([F.conv2d(x[i], weight[i], None if bias is None else bias[i], *args)
                            for i in range(b)])
    grouped = x.transpose(0, 1).reshape(n, -1, *x.shape[3:])
    out = F.conv2d(grouped, weight.reshape(-1, *weight.shape[2:]),
                   None if bias is None else bias.reshape(-1), *args, groups=b)
    return out.view(n, b, -1, *out.shape[2:]).transpose(0, 1)


def _per_sample(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """A layer of per-sample tensors (pooling) over all B models' samples at once."""
    b, n = x.shape[:2]
    out = module(x.reshape(b * n, *x.shape[2:]))
    return out.view(b, n, *out.shape[1:])


def hand_forward(plan: list[Step], tensors: dict[str, torch.Tensor],
                 x: torch.Tensor) -> torch.Tensor:
    """Outputs (B, n, ...) of the B models on their inputs ``x`` (B, n, ...)."""
    for kind, module, name in plan:
        weight, bias = tensors.get(f"{name}.weight"), tensors.get(f"{name}.bias")
        if kind == "linear":
            x = _linear(x, weight, bias)
        elif kind == "conv":
            x = batched_conv(x, module, weight, bias)
        elif kind == "flatten":
            x = x.flatten(2)
        elif kind == "pool":
            x = _per_sample(module, x)
        else:
            x = module(x)
    return x


def hand_forward_fn(model: nn.Module) -> Callable[..., torch.Tensor] | None:
    """``forward(tensors, x)`` for ``model``'s architecture, or ``None`` if unsupported."""
    plan = hand_plan(model)
    if plan is None:
        return None
    return lambda tensors, x: hand_forward(plan, tensors, x)
