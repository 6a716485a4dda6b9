"""Mirror descent as a torch optimizer.

For every parameter W (entry-wise potential psi), one step is

    z_{t+1} = z_t - lr * grad L(W_t),      W_{t+1} = (grad psi)^{-1}(z_{t+1}),

with the dual variable z = grad psi(W) kept as optimizer state (Beck & Teboulle 2003,
"Mirror descent and nonlinear projected subgradient methods for convex optimization").
Keeping z avoids mapping the weights through grad psi at every step, which would cost an
extra pass and, for psi with a flat or steep mirror map (p far from 2), lose precision.
The state is created from the weights on the first step; after changing the weights by
hand, call :meth:`MirrorDescent.reset_dual`.

torch wraps ``Optimizer.add_param_group`` (called by every constructor), ``zero_grad``,
``state_dict`` and ``load_state_dict`` in ``torch._disable_dynamo``, whose first call
imports ``torch._dynamo`` (and sympy): over a second of a run's start-up, a third of it,
although nothing here is compiled. :class:`MirrorDescent` uses the same methods without
that wrapper, which only tells ``torch.compile`` not to trace them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from sweeplab.studies.implicit_bias.potentials import Potential


def _eager(method: Any) -> Any:
    """``method`` without torch's ``_disable_dynamo`` wrapper (which imports torch._dynamo)."""
    return getattr(method, "__wrapped__", method)


class MirrorDescent(torch.optim.Optimizer):
    """Entry-wise mirror descent; each param group may carry its own ``potential``."""

    add_param_group = _eager(torch.optim.Optimizer.add_param_group)
    zero_grad = _eager(torch.optim.Optimizer.zero_grad)
    state_dict = _eager(torch.optim.Optimizer.state_dict)
    load_state_dict = _eager(torch.optim.Optimizer.load_state_dict)

    def __init__(self, params: Iterable, lr: float, potential: Potential):
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        super().__init__(params, dict(lr=lr, potential=potential))

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:
        """One mirror step on every parameter that has a gradient."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, potential = group["lr"], group["potential"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                state = self.state[param]
                dual = state.get("dual")
                if dual is None:
                    dual = state["dual"] = potential.mirror(param.detach()).clone()
                dual.add_(param.grad, alpha=-lr)
                param.copy_(potential.inverse_mirror(dual))
        return loss

    @torch.no_grad()
    def reset_dual(self) -> None:
        """Recompute every dual variable from the current weights."""
        for group in self.param_groups:
            for param in group["params"]:
                self.state[param]["dual"] = group["potential"].mirror(param.detach()).clone()
