"""Random filter-scaled directions in parameter space, and flat parameter vectors.

The volume of a minimum is estimated along random directions from the trained
parameters θ (Fan, Sandlund & Ko 2025, "Sharp Minima Can Generalize: A Loss Landscape
Perspective On Data", arXiv 2511.04808, Sec. 3). Each direction is a Gaussian draw ``g``
rescaled filter by filter — for a Linear layer every output row, for a Conv2d every
output channel: the slice along dim 0 — so that a step of coefficient 1 moves each
filter in proportion to its own size and the scale invariance of ReLU networks does not
make one layer look sharper than another. Two scalings are offered (``scaling``):

- ``filtnorm`` (the authors' code, ``minima_volume/perturb_funcs.py``: ``filtnorm`` and
  ``filternorm_perturbation_vectors``): ``d_i = g_i · ||θ_i||``. The Gaussian filter keeps
  its own length, about ``sqrt(fan_in)``, so a step of 1 moves filter ``i`` by about
  ``sqrt(fan_in) · ||θ_i||``.
- ``li`` (Li, Xu, Taylor, Studer & Goldstein 2018, "Visualizing the Loss Landscape of
  Neural Nets", NeurIPS, Sec. 4): ``d_i = g_i · ||θ_i|| / ||g_i||``, so ``||d_i|| =
  ||θ_i||``: about ``sqrt(fan_in)`` times shorter than ``filtnorm`` (28x for a
  784-input row).

Tensors of dim <= 1 (biases) stay the raw Gaussian in both, as in the authors' code (their
``filtnorm`` gives biases a norm of 1): relative to the weights, biases weigh about
``sqrt(fan_in)`` times more under ``li``.

A direction is drawn from its own CPU ``torch.Generator`` seeded with its seed, filling
the tensors in the mapping's order, so direction ``i`` is the same whatever the number
of directions, the device or the process.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

__all__ = ["SCALINGS", "flatten_params", "make_directions", "random_direction", "raw_norms",
           "unflatten"]

SCALINGS = ("filtnorm", "li")
"""The filter scalings of a direction (see the module docstring)."""


def flatten_params(params: Mapping[str, Tensor]) -> Tensor:
    """Concatenate ``params`` (in the mapping's order) into one detached vector (n,).

    The same order as ``torch.nn.utils.parameters_to_vector(model.parameters())`` when
    ``params`` is ``dict(model.named_parameters())``.
    """
    if not params:
        raise ValueError("params is empty: nothing to flatten")
    return torch.cat([p.detach().reshape(-1) for p in params.values()])


def unflatten(vector: Tensor, like: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Split a flat ``vector`` (n,) into views shaped like the tensors of ``like``.

    The inverse of :func:`flatten_params`; the views share ``vector``'s storage.
    """
    total = sum(t.numel() for t in like.values())
    if vector.dim() != 1 or vector.numel() != total:
        raise ValueError(
            f"vector of shape {tuple(vector.shape)} does not hold the {total} entries of "
            f"{len(like)} tensors"
        )
    out: dict[str, Tensor] = {}
    offset = 0
    for name, t in like.items():
        out[name] = vector[offset:offset + t.numel()].view(t.shape)
        offset += t.numel()
    return out


def _gaussian(params: Mapping[str, Tensor], seed: int) -> list[Tensor]:
    """The raw standard-normal draws of a direction: float32, CPU, one per parameter."""
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    return [torch.randn(tuple(p.shape), generator=gen, dtype=torch.float32)
            for p in params.values()]


def raw_norms(params: Mapping[str, Tensor], perturbation_seed: int, k: int) -> Tensor:
    """Euclidean norms (k,) of the raw Gaussian draws of the ``k`` directions, before scaling.

    The volume's radius along direction ``i`` is its crossing coefficient times this norm
    by default (``radius_norm: raw``), the same for every model of one architecture.
    """
    return torch.stack([
        torch.sqrt(sum((g.double() ** 2).sum() for g in _gaussian(params, perturbation_seed + i)))
        for i in range(k)
    ])


def random_direction(params: Mapping[str, Tensor], seed: int,
                     scaling: str = "filtnorm") -> dict[str, Tensor]:
    """A filter-scaled Gaussian direction shaped like ``params``.

    ``g`` is standard normal from a CPU generator seeded with ``seed`` (float32, tensors
    drawn in the mapping's order). For every filter ``i`` (slice along dim 0) of a tensor
    of dim >= 2: ``d_i = g_i · ||θ_i||_F`` (``scaling="filtnorm"``, the authors' code) or
    ``d_i = g_i · ||θ_i||_F / ||g_i||_F`` (``"li"``, Li et al. 2018, Sec. 4); ``d = g``
    for tensors of dim <= 1. A zero filter of θ gives a zero filter of ``d``. Each tensor
    is returned on the device and in the floating dtype of its parameter.
    """
    if scaling not in SCALINGS:
        raise ValueError(f"scaling={scaling!r}: allowed values are {', '.join(SCALINGS)}")
    out: dict[str, Tensor] = {}
    for (name, p), g in zip(params.items(), _gaussian(params, seed), strict=True):
        if p.dim() >= 2:
            w = p.detach().to(device="cpu", dtype=torch.float32).reshape(p.shape[0], -1)
            g_rows = g.reshape(p.shape[0], -1)
            scale = w.norm(dim=1)
            if scaling == "li":
                scale = scale / g_rows.norm(dim=1).clamp_min(torch.finfo(g.dtype).tiny)
            g = (g_rows * scale[:, None]).reshape(p.shape)
        dtype = p.dtype if p.is_floating_point() else torch.float32
        out[name] = g.to(device=p.device, dtype=dtype)
    return out


def make_directions(params: Mapping[str, Tensor], perturbation_seed: int, k: int,
                    scaling: str = "filtnorm") -> Tensor:
    """``k`` flattened directions (k, n): row ``i`` is ``random_direction(params, seed + i)``.

    Flattened in the order of :func:`flatten_params`, so ``θ + c · D[i]`` is the point at
    coefficient ``c`` along direction ``i``; ``scaling`` as in :func:`random_direction`.
    """
    if k < 1:
        raise ValueError(f"k={k}: need at least one direction")
    return torch.stack(
        [flatten_params(random_direction(params, perturbation_seed + i, scaling))
         for i in range(k)]
    )
