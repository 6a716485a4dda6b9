"""SGD, Adam and AdamW for B runs at once, step for step as ``torch.optim`` steps each run.

Every per-run hyperparameter (lr and its schedule, weight decay, momentum, dampening,
betas, eps) is a (B,) tensor broadcast over the stacked parameters, and every update is
written with the same elementwise kernels, in the same order, as ``torch.optim``'s
single-tensor implementation (the one it uses on CPU; ``torch/optim/sgd.py``
``_single_tensor_sgd``, ``torch/optim/adam.py`` ``_single_tensor_adam``). Given equal
gradients, the parameters and states after a step are bit-for-bit those of
``torch.optim`` (tested). With g the gradient, p the parameter, t the run's step count
(1 at its first step) and lr = lr_b * schedule_b(t - 1):

SGD (``torch.optim.SGD``, momentum mu, dampening d, weight decay lambda)::

    g <- g + lambda p
    buf <- g                          (first step)
    buf <- mu buf + (1 - d) g         (later steps)
    g <- g + mu buf (nesterov)  or  g <- buf (momentum > 0)
    p <- p - lr g

Adam (``torch.optim.Adam``; Kingma & Ba 2015, Alg. 1, with L2 weight decay)::

    g <- g + lambda p
    m <- lerp(m, g, 1 - beta1)         = beta1 m + (1 - beta1) g
    v <- beta2 v + (1 - beta2) g^2
    p <- p - (lr / (1 - beta1^t)) m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

AdamW (``torch.optim.AdamW``; Loshchilov & Hutter 2019, decoupled weight decay): the
same, without the L2 term and with ``p <- p (1 - lr lambda)`` first.

A ``keep`` mask leaves the parameters and state of the runs it excludes untouched
(a failed run, on a device where its failure is seen only later).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from sweeplab.batched.norms import rows
from sweeplab.batched.spec import RunSpec

Tensors = dict[str, torch.Tensor]
Split = Callable[[str, torch.Tensor], Tensors]

CPU_CHUNK_BYTES = 1 << 20
"""On CPU a step updates rows of about this many bytes of a parameter together, so the
update's passes run over what the caches hold, as one run's tensors alone would (the
stacked tensors of B runs outgrow them; measured best of 16 KiB to all rows at once)."""


def _scalar_dtype() -> torch.dtype:
    """The dtype of ``torch.optim``'s ``step`` tensors (``_get_scalar_dtype``)."""
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


class BatchedOptimizer:
    """``torch.optim.SGD`` / ``Adam`` / ``AdamW`` over the stacked parameters of B runs.

    ``params`` are the trainable stacked tensors (B, ...); ``steps[b]`` the optimizer
    steps run b has taken so far. The update itself is :meth:`step`, fed with per-step
    coefficients from :meth:`coefficients` (computed on the host for a chunk of steps,
    so the device never waits for the host).
    """

    def __init__(self, kind: str, params: Tensors, runs: Sequence[RunSpec],
                 steps: Sequence[int], nesterov: bool = False):
        self.kind = kind
        self.nesterov = nesterov
        self.runs = list(runs)
        self.steps = list(steps)
        first = next(iter(params.values()))
        self.device, self.dtype = first.device, first.dtype
        self.decay = any(r.weight_decay != 0 for r in runs)
        self.momentum = kind == "sgd" and any(r.momentum != 0 for r in runs)
        self.const = self._constants()
        if kind == "sgd":
            self.state = {n: {"momentum_buffer": torch.zeros_like(p)} for n, p in
                          params.items()} if self.momentum else {n: {} for n in params}
        else:
            self.state = {n: {"exp_avg": torch.zeros_like(p), "exp_avg_sq": torch.zeros_like(p)}
                          for n, p in params.items()}

    def _constants(self) -> Tensors:
        runs = self.runs
        values = {"weight_decay": [r.weight_decay for r in runs]}
        if self.kind == "sgd":
            values["momentum"] = [r.momentum for r in runs]
        else:
            values |= {"one_minus_beta1": [1 - r.betas[0] for r in runs],
                       "beta2": [r.betas[1] for r in runs],
                       "one_minus_beta2": [1 - r.betas[1] for r in runs],
                       "eps": [r.eps for r in runs]}
        return {k: torch.tensor(v, dtype=self.dtype, device=self.device)
                for k, v in values.items()}

    # ------------------------------------------------------------------ coefficients

    def coefficients(self, count: int) -> torch.Tensor:
        """Per-step scalars of the next ``count`` steps, (count, B, 3), on the host.

        SGD: (-lr, momentum factor of g, 0); Adam: (-lr / (1 - beta1^t),
        sqrt(1 - beta2^t), 1 - lr lambda), each computed in Python floats exactly as
        ``torch.optim`` computes it.
        """
        table = []
        for k in range(count):
            row = []
            for run, done in zip(self.runs, self.steps):
                step = done + k
                lr = run.lr_at(step)
                if self.kind == "sgd":
                    first = step == 0 or run.momentum == 0
                    row.append((-lr, 1.0 if first else 1 - run.dampening, 0.0))
                else:
                    t = float(step + 1)
                    b1, b2 = run.betas
                    row.append((-(lr / (1 - b1 ** t)), (1 - b2 ** t) ** 0.5,
                                1 - lr * run.weight_decay))
            table.append(row)
        return torch.tensor(table, dtype=self.dtype)

    # ------------------------------------------------------------------ the step

    def step(self, params: Tensors, grads: Tensors, coef: torch.Tensor,
             keep: torch.Tensor | None = None) -> Tensors:
        """One step of every run; returns the new parameters (state updated in place).

        ``coef`` is one row (B, 3) of :meth:`coefficients`, on the device. Without
        ``keep`` the parameters are updated in place (and ``grads`` overwritten), a few
        runs at a time on CPU (:data:`CPU_CHUNK_BYTES`); runs with ``keep`` False keep
        their parameters and state (new tensors are returned).
        """
        new = {}
        for name, p in params.items():
            g, state = grads[name], self.state[name]
            if keep is None:
                rows_at_once = self._rows_at_once(p)
                for a in range(0, len(p), rows_at_once):
                    part = slice(a, a + rows_at_once)
                    self._update(p[part], g[part], {k: v[part] for k, v in state.items()},
                                 coef[part], part)
                new[name] = p
                continue
            p_new, updated = p.clone(), {k: v.clone() for k, v in state.items()}
            self._update(p_new, g.clone(), updated, coef, slice(None))
            mask = rows(keep, p)
            new[name] = torch.where(mask, p_new, p)
            state.update({k: torch.where(mask, v, state[k]) for k, v in updated.items()})
        self.steps = [s + 1 for s in self.steps]
        return new

    def _rows_at_once(self, p: torch.Tensor) -> int:
        if p.device.type != "cpu":
            return len(p)
        return max(1, CPU_CHUNK_BYTES // max(1, p[0].numel() * p.element_size()))

    def _update(self, p: torch.Tensor, g: torch.Tensor, state: Tensors, coef: torch.Tensor,
                part: slice) -> None:
        """The update of the module docstring, in place on ``p``, ``g`` and ``state``."""
        c = {k: v[part] for k, v in self.const.items()}
        if self.kind == "sgd":
            if self.decay:
                g.addcmul_(p, rows(c["weight_decay"], p))
            if self.momentum:
                mu = rows(c["momentum"], p)
                buf = state["momentum_buffer"].mul_(mu).addcmul_(g, rows(coef[:, 1], p))
                g = g.addcmul_(buf, mu) if self.nesterov else buf
            p.addcmul_(g, rows(coef[:, 0], p))
            return
        if self.decay:
            if self.kind == "adamw":
                p.mul_(rows(coef[:, 2], p))
            else:
                g.addcmul_(p, rows(c["weight_decay"], p))
        m = state["exp_avg"].lerp_(g, rows(c["one_minus_beta1"], p))
        v = state["exp_avg_sq"].mul_(rows(c["beta2"], p))
        v.addcmul_(g * rows(c["one_minus_beta2"], p), g)
        denom = v.sqrt().div_(rows(coef[:, 1], p)).add_(rows(c["eps"], p))
        p.addcdiv_(m * rows(coef[:, 0], p), denom)

    # ------------------------------------------------------------------ rows

    def select(self, keep: Sequence[int]) -> None:
        """Keep the runs ``keep`` (in that order)."""
        index = torch.as_tensor(list(keep), dtype=torch.long, device=self.device)
        self.runs = [self.runs[i] for i in keep]
        self.steps = [self.steps[i] for i in keep]
        self.const = {k: v.index_select(0, index) for k, v in self.const.items()}
        self.state = {n: {k: v.index_select(0, index) for k, v in s.items()}
                      for n, s in self.state.items()}

    def _torch_optimizer(self, row: int, tensors: Sequence[tuple[str, torch.Tensor, bool]]
                         ) -> tuple[torch.optim.Optimizer, dict[str, nn.Parameter]]:
        """The ``torch.optim`` optimizer run ``row`` would have alone, over fresh parameters."""
        run = self.runs[row]
        params = {n: nn.Parameter(t.detach().to("cpu", copy=True), requires_grad=trainable)
                  for n, t, trainable in tensors}
        lr = run.lr_at(self.steps[row])
        if self.kind == "sgd":
            opt: torch.optim.Optimizer = torch.optim.SGD(
                list(params.values()), lr=lr, momentum=run.momentum, dampening=run.dampening,
                weight_decay=run.weight_decay, nesterov=self.nesterov)
        else:
            cls = torch.optim.AdamW if self.kind == "adamw" else torch.optim.Adam
            opt = cls(list(params.values()), lr=lr, betas=run.betas, eps=run.eps,
                      weight_decay=run.weight_decay)
        if run.schedule is not None:
            opt.param_groups[0]["initial_lr"] = run.lr  # as LambdaLR records it
        return opt, params

    def state_dict(self, row: int, tensors: Sequence[tuple[str, torch.Tensor, bool]],
                   split: Split | None = None) -> dict:
        """Run ``row``'s optimizer as ``torch.optim``'s ``state_dict()`` gives it.

        ``tensors``: (name, run row's tensor, trainable) for every parameter in
        ``model.parameters()`` order. ``split(name, row)`` maps a row of a stacked tensor
        to the model's parameters it holds (default: itself, under its own name; a flat
        layout holds them all). Loads into the run's own ``torch.optim`` optimizer.
        """
        split = split or _itself
        opt, params = self._torch_optimizer(row, tensors)
        step = self.steps[row]
        if step > 0 and (self.kind != "sgd" or self.runs[row].momentum != 0):
            for name, state in self.state.items():
                pieces = {key: split(name, value[row]) for key, value in state.items()}
                for param in next(iter(pieces.values()), {}):
                    entry = {key: pieces[key][param].detach().to("cpu", copy=True)
                             for key in state}
                    if self.kind != "sgd":
                        entry = {"step": torch.tensor(float(step), dtype=_scalar_dtype()),
                                 **entry}
                    opt.state[params[param]] = entry
        return opt.state_dict()

    def load_state_dict(self, row: int, tensors: Sequence[tuple[str, torch.Tensor, bool]],
                        saved: dict, step: int, split: Split | None = None) -> None:
        """Set run ``row``'s state from a ``torch.optim`` state dict after ``step`` steps."""
        split = split or _itself
        opt, params = self._torch_optimizer(row, tensors)
        opt.load_state_dict(saved)
        self.steps[row] = step
        with torch.no_grad():
            for name, state in self.state.items():
                for key, value in state.items():
                    for param, target in split(name, value[row]).items():
                        entry = opt.state.get(params[param], {})
                        if key in entry:
                            target.copy_(entry[key])
                        else:
                            target.zero_()


def _itself(name: str, row: torch.Tensor) -> dict[str, torch.Tensor]:
    return {name: row}
