"""Each run's mini-batch loss and its gradient, for B runs in one computation.

Run b's loss is the mean of ``loss_fn`` over the real samples of its mini-batch,
``L_b = sum_i w_bi l(f(theta_b, x_bi), y_bi) / sum_i w_bi`` (w: 1 for a sample, 0 for
the padding of a short last mini-batch), and its gradient is dL_b / d theta_b. Runs
never mix: theta_b reaches only L_b, so the gradient of sum_b L_b with respect to the
stacked parameters is, row by row, each run's own gradient.

Three formulations compute the same numbers (up to summation order):

- ``func``: ``vmap(grad_and_value(L))`` over the stacked parameters, the ``torch.func``
  recipe for model ensembles (``functional_call`` of the architecture per run);
- ``vmap``: the forward pass under ``vmap(functional_call)``, then one ordinary autograd
  backward of sum_b L_b (no transform in the backward pass);
- ``hand``: the forward pass hand-batched (``baddbmm``, grouped convolution; see
  :mod:`sweeplab.batched.sequential`) for plain ``nn.Sequential`` MLPs/CNNs, then autograd.

``auto`` picks ``hand`` where it applies and ``vmap`` elsewhere: the fastest measured on
CPU (``benchmarks/bench_batched_models.py``, docs/batched.md).

``loss_fn(outputs, targets)`` must return one loss per sample (e.g. ``F.cross_entropy``
with ``reduction="none"``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.func import functional_call, grad_and_value, vmap

from sweeplab.batched.sequential import hand_forward_fn
from sweeplab.batched.stack import StackedModel

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Grads = dict[str, torch.Tensor]


def resolve_formulation(name: str, stack: StackedModel) -> str:
    """``auto`` -> ``hand`` for a plain Sequential MLP/CNN, else ``vmap``; others unchanged."""
    if name == "auto":
        return "hand" if hand_forward_fn(stack.base) is not None else "vmap"
    if name == "hand" and hand_forward_fn(stack.base) is None:
        raise ValueError("formulation 'hand' needs an nn.Sequential of Linear, Conv2d, "
                         "Flatten, pooling and activation layers")
    return name


class Objective:
    """Per-run losses, gradients and outputs of a :class:`StackedModel`."""

    def __init__(self, stack: StackedModel, loss_fn: LossFn, formulation: str = "auto"):
        self.stack = stack
        self.loss_fn = loss_fn
        self.formulation = resolve_formulation(formulation, stack)
        base = stack.base
        self._hand = hand_forward_fn(base) if self.formulation == "hand" else None
        self._vmapped = vmap(lambda tensors, x: functional_call(base, tensors, (x,)))

        def one_loss(trainable, rest, x, y, w, count):
            out = functional_call(base, {**trainable, **rest}, (x,))
            return (loss_fn(out, y) * w).sum() / count

        self._func = vmap(grad_and_value(one_loss))

    def outputs(self, tensors: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """Outputs (B, n, ...) of the B models, model b on ``x[b]`` (B, n, ...)."""
        if self._hand is not None:
            return self._hand(tensors, x)
        return self._vmapped(tensors, x)

    def losses(self, tensors: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor,
               w: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
        """L_b (B,) from the models' outputs on ``x`` (see the module docstring)."""
        out = self.outputs(tensors, x)
        per_sample = self.loss_fn(out.flatten(0, 1), y.flatten(0, 1)).view(w.shape)
        return (per_sample * w).sum(1) / count

    def value_and_grad(self, params: dict[str, torch.Tensor], x: torch.Tensor,
                       y: torch.Tensor, w: torch.Tensor,
                       count: torch.Tensor) -> tuple[torch.Tensor, Grads]:
        """L_b (B,) and dL_b/dtheta_b for every trainable tensor, at ``params`` (trainable)."""
        stack = self.stack
        rest = {n: stack.params[n] for n in stack.frozen} | stack.buffers
        # parameters as contiguous (B, *shape) tensors, whatever layout they live in, so
        # a run's products do not depend on how many runs share the batch
        params = {n: p.contiguous() for n, p in params.items()}
        if self.formulation == "func":
            grads, loss = self._func(params, rest, x, y, w, count)
            return loss.detach(), grads
        with torch.enable_grad():
            leaves = {n: p.detach().requires_grad_() for n, p in params.items()}
            loss = self.losses({**rest, **leaves}, x, y, w, count)
            grads = torch.autograd.grad(loss.sum(), list(leaves.values()))
        # autograd may hand back transposed views (a Linear's weight under vmap): the
        # optimizer's passes run several times faster over contiguous rows
        return loss.detach(), {n: g.contiguous() for n, g in zip(leaves, grads)}
