"""Per-run gradient norms: clipping (``clip_grad_norm_``) and the SAM ascent step.

Both act on the whole gradient of one run, all its tensors together, and never mix
runs: for run b, ``||g_b|| = || (||g_b^(1)||, ..., ||g_b^(k)||) ||_2``, the norm of the
per-tensor norms, as ``torch.nn.utils.clip_grad_norm_`` computes it.
"""

from __future__ import annotations

import torch

Grads = dict[str, torch.Tensor]


def rows(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A per-run (B,) tensor shaped to broadcast over ``like`` (B, ...)."""
    return t.view(-1, *([1] * (like.dim() - 1)))


def grad_norms(grads: Grads) -> torch.Tensor:
    """||g_b||_2 (B,) over all of run b's gradient tensors."""
    per_tensor = [torch.linalg.vector_norm(g.reshape(len(g), -1), dim=1) for g in grads.values()]
    return torch.linalg.vector_norm(torch.stack(per_tensor, dim=1), dim=1)


def clip_grads(grads: Grads, max_norm: torch.Tensor) -> Grads:
    """``clip_grad_norm_`` per run: g_b * min(max_norm_b / (||g_b|| + 1e-6), 1).

    As torch computes it (``torch/nn/utils/clip_grad.py``): the coefficient is
    ``reciprocal(total_norm + 1e-6) * max_norm`` clamped at 1. A run without clipping
    has ``max_norm = inf``: its coefficient is 1 and its gradient unchanged.
    """
    coef = torch.clamp(torch.reciprocal(grad_norms(grads) + 1e-6) * max_norm, max=1.0)
    return {n: g * rows(coef, g) for n, g in grads.items()}


def sam_point(params: Grads, grads: Grads, rho: torch.Tensor) -> Grads:
    """The SAM point w_b + rho_b g_b / (||g_b|| + 1e-12) of every run.

    Sharpness-aware minimization (Foret et al. 2021, "Sharpness-Aware Minimization for
    Efficiently Improving Generalization", Alg. 1), as the reference PyTorch
    implementation writes its first step (github.com/davda54/sam, ``SAM.first_step``:
    ``scale = rho / (grad_norm + 1e-12)``, ``e_w = p.grad * scale``, ``p.add_(e_w)``). The
    gradient taken there is then applied at w_b by the base optimizer (``second_step``
    restores w_b exactly; here w_b is never changed).
    """
    scale = torch.reciprocal(grad_norms(grads) + 1e-12) * rho
    return {n: p + grads[n] * rows(scale, p) for n, p in params.items()}
