"""The loss landscape along random directions, evaluated for many perturbed models at once.

A *point* is a pair (direction index ``k``, coefficient ``c``); its parameters are
``θ + c · D[k]`` (``θ`` the trained parameters flattened, ``D`` the directions of
:func:`~sweeplab.studies.volume.directions.make_directions`). The loss of a point on the
landscape of size ``s`` is the mean cross-entropy over the first ``s`` samples of an
ordered pool (Fan, Sandlund & Ko 2025, "Sharp Minima Can Generalize: A Loss Landscape
Perspective On Data", arXiv 2511.04808, Sec. 3-4), so one forward pass over the pool
gives every landscape size at once: per-sample losses, a cumulative sum in float64, read
at ``s - 1`` and divided by ``s``. Accuracy likewise.

Batched evaluation: the parameters of many points are stacked and evaluated together.

- Generic models: ``torch.func.functional_call`` under ``torch.vmap`` over a stack of
  flat parameter vectors (buffers passed unbatched).
- Plain MLPs (an ``nn.Sequential`` of only ``nn.Flatten``, ``nn.Linear`` and ``nn.ReLU``):
  batched matrix products with ``(B, out, in)`` weights, no vmap. The first Linear layer
  is linear in its parameters, so for every point of direction ``k`` its output is
  ``A0 + c · A_k`` with ``A0 = x W0ᵀ + b0`` and ``A_k = x DW_kᵀ + Db_k`` computed once per
  direction: the widest layer of an image MLP is paid once per direction, not once per
  point. This is exact algebra; only float32 rounding differs from the plain forward.

Memory stays bounded: the pool is cut into sample chunks and the points into batches so
that batch × chunk × activation width (plus the stacked weights) fits ``memory_budget``
bytes (:data:`DEFAULT_MEMORY_BUDGET` on an accelerator, the smaller
:data:`CPU_MEMORY_BUDGET` on the CPU, where cache-sized batches run faster). Points at
coefficient 0 are all θ and evaluated once. Models are evaluated in eval mode (dropout
off, batch norm on running statistics) and their parameters, buffers and train/eval
flags are left as they were.

The crossings of loss cutoffs along these directions are found in
:mod:`sweeplab.studies.volume.crossings`.

What batching buys on one CPU core (``benchmarks/bench_volume.py``): the reference loop's
matrix products are already large (the whole pool at once) and near the core's peak, so
the batched grid gains what it saves in arithmetic, the first layer of the MLP, about 3x
on the 784-256-256-10 MLP. The rest comes from evaluating fewer points:
:func:`coarse_to_fine` finds the first coefficient where the loss exceeds each cutoff
from a coarse pass and short left-to-right scans between coarse points, sharing the
first-layer products across its calls. On the CPU the vmap path runs convolutions as
grouped convolutions, about as fast as the loop (a 8-16 channel CNN); batching it is
for accelerators.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sweeplab.studies.volume.directions import unflatten

__all__ = [
    "CPU_MEMORY_BUDGET",
    "DEFAULT_MEMORY_BUDGET",
    "FINE_BLOCK",
    "LandscapeData",
    "evaluate_points",
    "evaluate_points_naive",
    "is_plain_mlp",
    "scan_grid",
]

DEFAULT_MEMORY_BUDGET = 256 * 2**20
"""Bytes of activations and stacked weights one batch of points may take on a GPU."""

CPU_MEMORY_BUDGET = 16 * 2**20
"""The same on the CPU, where each point's matrix products are already large: a few
points per batch keep the activations in cache. Measured on the 784-256-256-10 MLP with
2,000 samples, one thread: 16 MiB (3 points a batch) ran 25-30% faster per point than
256 MiB (60 points), which spills the caches; 1-4 MiB cut the pool into chunks and ran
slower."""

FINE_BLOCK = 2
"""Grid indices per window per round in :func:`coarse_to_fine`'s fine search. On the
benchmark (16 directions x 100 coefficients, stride 10) blocks of 1, 2 and whole windows
evaluated 391, 406 and 509 points; 2 takes half the rounds of 1 for 4% more points."""

_F32 = 4  # bytes per float32


@dataclass(frozen=True)
class LandscapeData:
    """An ordered pool ``(x, y)`` and the landscape sizes read from it.

    ``x``: N samples of any shape (N, ...); ``y``: integer class labels (N,), stored as
    int64; ``sizes``: strictly increasing ints in 1..N; the landscape of size ``s`` is
    the first ``s`` samples.
    """

    x: Tensor
    y: Tensor
    sizes: tuple[int, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.x, Tensor) or self.x.dim() < 1:
            raise ValueError("LandscapeData.x must be a tensor of shape (N, ...)")
        if not isinstance(self.y, Tensor) or self.y.dim() != 1:
            raise ValueError("LandscapeData.y must be a 1-D tensor of class labels (N,)")
        if self.y.is_floating_point() or self.y.is_complex() or self.y.dtype == torch.bool:
            raise ValueError(f"LandscapeData.y must hold integer labels, got {self.y.dtype}")
        n = self.x.shape[0]
        if self.y.shape[0] != n:
            raise ValueError(f"LandscapeData: x has {n} samples but y has {self.y.shape[0]}")
        sizes = tuple(int(s) for s in self.sizes)
        if not sizes:
            raise ValueError("LandscapeData.sizes is empty: give at least one landscape size")
        if any(b <= a for a, b in zip(sizes, sizes[1:])):
            raise ValueError(f"LandscapeData.sizes={list(sizes)} must be strictly increasing")
        if sizes[0] < 1 or sizes[-1] > n:
            raise ValueError(f"LandscapeData.sizes={list(sizes)} must lie in 1..{n} (pool size)")
        object.__setattr__(self, "y", self.y.long())
        object.__setattr__(self, "sizes", sizes)

    @property
    def n_samples(self) -> int:
        """The pool size N."""
        return int(self.x.shape[0])


# --- inputs ---------------------------------------------------------------------------


def _coefficients(coefficients: Sequence[float] | Tensor | np.ndarray) -> np.ndarray:
    """The coefficient grid as float64 (C,), checked strictly increasing."""
    c = np.asarray(torch.as_tensor(coefficients).detach().cpu(), dtype=np.float64)
    if c.ndim != 1 or c.size == 0:
        raise ValueError(f"coefficients must be a non-empty 1-D sequence, got shape {c.shape}")
    if np.any(np.diff(c) <= 0):
        raise ValueError("coefficients must be strictly increasing")
    return c


def _check_theta(model: nn.Module, theta: Tensor, directions: Tensor) -> int:
    n = sum(p.numel() for p in model.parameters())
    if theta.dim() != 1 or theta.numel() != n:
        raise ValueError(f"theta of shape {tuple(theta.shape)} is not the model's {n} parameters")
    if directions.dim() != 2 or directions.shape[1] != n:
        raise ValueError(f"directions of shape {tuple(directions.shape)} are not (K, {n})")
    return n


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Evaluate in eval mode; restore every module's train/eval flag afterwards."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, training in flags:
            m.training = training


# --- reduction of per-sample values to landscape sizes --------------------------------


def _partial_sums(values: Tensor, lo: int, sizes: Tensor) -> Tensor:
    """Sums (B, S) of ``values`` (B, m), samples lo..lo+m-1 of the pool, within each size.

    The cumulative sum is float64, so summing chunks gives the sum over the first ``s``
    samples to float64 precision.
    """
    m = values.shape[1]
    cs = torch.cumsum(values.double(), dim=1)
    count = (sizes - lo).clamp(0, m)
    picked = cs[:, (count - 1).clamp_min(0)]
    return picked * (count > 0)


def _cross_entropy(logits: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """Per-sample cross-entropy and correctness for logits (B, m, classes), labels (m,).

    ``logsumexp(z) - z_y``, the stable form; on CPU a few times faster than
    ``F.cross_entropy`` on a 10-class last dimension, and equal to it to float32 rounding.
    """
    b, m, _ = logits.shape
    target = logits.gather(-1, y.expand(b, m)[..., None]).squeeze(-1)
    loss = torch.logsumexp(logits, dim=-1).sub_(target)
    correct = logits.argmax(dim=-1) == y
    return loss, correct


# --- the plain-MLP fast path ----------------------------------------------------------

_MLP_MODULES = (nn.Flatten, nn.Linear, nn.ReLU)


def is_plain_mlp(model: nn.Module) -> bool:
    """Whether ``model`` runs on the batched-matmul fast path of :func:`evaluate_points`.

    An ``nn.Sequential`` of only ``nn.Flatten`` (default dims), ``nn.Linear`` and
    ``nn.ReLU`` modules, with at least one Linear layer.
    """
    if type(model) is not nn.Sequential or len(model) == 0:
        return False
    for m in model:
        if type(m) not in _MLP_MODULES:
            return False
        if isinstance(m, nn.Flatten) and (m.start_dim, m.end_dim) != (1, -1):
            return False
    return any(isinstance(m, nn.Linear) for m in model)


class _MlpPlan:
    """Where each Linear layer's weight and bias sit in the flat parameter vector."""

    def __init__(self, model: nn.Sequential):
        offsets: dict[int, tuple[int, torch.Size]] = {}
        pos = 0
        for p in model.parameters():
            offsets[id(p)] = (pos, p.shape)
            pos += p.numel()
        modules = list(model)
        first = next(i for i, m in enumerate(modules) if isinstance(m, nn.Linear))
        self.prefix = modules[:first]
        self.layers: list[tuple[str, tuple | None]] = []
        for m in modules[first:]:
            if isinstance(m, nn.Linear):
                bias = offsets[id(m.bias)] if m.bias is not None else None
                self.layers.append(("linear", (offsets[id(m.weight)], bias)))
            elif isinstance(m, nn.ReLU):
                self.layers.append(("relu", None))
            # a default Flatten is the identity on the per-point (m, width) activations
        linears = [m for m in modules if isinstance(m, nn.Linear)]
        self.widths = [m.out_features for m in linears]
        self.weight_shapes = [(0, 0)] + [tuple(m.weight.shape) for m in linears[1:]]

    @staticmethod
    def take(vec: Tensor, where: tuple[int, torch.Size]) -> Tensor:
        """The tensor at ``where`` of flat vector(s) ``vec`` (..., n)."""
        start, shape = where
        size = int(np.prod(shape))
        return vec[..., start:start + size].reshape(*vec.shape[:-1], *shape)

    def linear(self, vec: Tensor, spec: tuple) -> tuple[Tensor, Tensor | None]:
        w_at, b_at = spec
        return self.take(vec, w_at), (self.take(vec, b_at) if b_at is not None else None)

    def first_layer(self, x0: Tensor, vec: Tensor) -> Tensor:
        """``x0 Wᵀ + b`` of the first Linear layer with parameters taken from ``vec`` (n,)."""
        w, b = self.linear(vec, self.layers[0][1])
        return F.linear(x0, w, b)

    def tail(self, h: Tensor, theta: Tensor, d: Tensor, c: Tensor,
             out: list[Tensor], w_out: list[Tensor]) -> Tensor:
        """Layers after the first Linear for points ``θ + c_b · d``; ``h`` (B, m, width).

        Activations are written into ``out`` and the stacked weights into ``w_out``
        (buffers per Linear layer, reused across batches: allocating tens of MB per batch
        costs more than the arithmetic on a CPU).
        """
        layer = 0
        for kind, spec in self.layers[1:]:
            if kind == "relu":
                h = h.clamp_min_(0)
                continue
            layer += 1
            w0, b0 = self.linear(theta, spec)
            dw, db = self.linear(d, spec)
            b = len(c)
            # (B, out, in) = θ + c·d, the same float32 operations as the reference loop
            w = torch.mul(dw, c[:, None, None], out=w_out[layer][:b]).add_(w0)
            if b0 is None:
                h = torch.bmm(h, w.transpose(1, 2), out=out[layer][:b])
            else:
                bias = (c[:, None] * db).add_(b0)
                h = torch.baddbmm(bias[:, None, :], h, w.transpose(1, 2), out=out[layer][:b])
        return h

    def buffers(self, batch: int, chunk: int, like: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        """Activation buffers (batch, chunk, width) and weight buffers, per Linear layer."""
        acts = [like.new_empty(batch, chunk, w) for w in self.widths]
        weights = [like.new_empty(batch, *shape) for shape in self.weight_shapes]
        return acts, weights


# --- batching arithmetic --------------------------------------------------------------


def _activation_floats(model: nn.Module, sample: Tensor) -> int:
    """Floats of every leaf module's output for one sample (the generic path's estimate)."""
    total = 0

    def hook(_m: nn.Module, _i: object, out: object) -> None:
        nonlocal total
        if isinstance(out, Tensor):
            total += out.numel()

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if not list(m.children())]
    try:
        model(sample)
    finally:
        for h in handles:
            h.remove()
    return max(total, 1)


def _plan_batches(per_sample: int, per_point_fixed: int, n: int, n_points: int,
                  budget: int, max_batch: int | None) -> tuple[int, int]:
    """Sample chunk m and point batch B so that B·(fixed + m·per_sample) ≲ budget bytes."""
    chunk = max(1, min(n, (budget // 2) // max(per_sample, 1)))
    batch = max(1, budget // max(per_point_fixed + chunk * per_sample, 1))
    if max_batch is not None:
        batch = min(batch, max_batch)
    return chunk, max(1, min(batch, n_points))


# --- evaluation -----------------------------------------------------------------------


def _points(theta: Tensor, directions: Tensor, k_idx, coeffs) -> tuple[Tensor, Tensor]:
    k = torch.as_tensor(k_idx, dtype=torch.long).reshape(-1).to(theta.device)
    c = torch.as_tensor(coeffs).reshape(-1).to(device=theta.device, dtype=theta.dtype)
    if k.numel() != c.numel():
        raise ValueError(f"{k.numel()} direction indices but {c.numel()} coefficients")
    if k.numel() and (int(k.min()) < 0 or int(k.max()) >= directions.shape[0]):
        raise ValueError(f"direction indices must lie in 0..{directions.shape[0] - 1}")
    return k, c


def evaluate_points(
    model: nn.Module,
    theta: Tensor,
    D: Tensor,
    k_idx: Sequence[int] | Tensor | np.ndarray,
    coeffs: Sequence[float] | Tensor | np.ndarray,
    data: LandscapeData,
    max_batch: int | None = None,
    memory_budget: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Loss and accuracy (P, S), float64, of the points ``θ + coeffs[p] · D[k_idx[p]]``.

    ``theta`` (n,) is the model's parameters flattened in ``named_parameters`` order,
    ``D`` (K, n) the directions; column ``s`` is the landscape ``data.sizes[s]``. Plain
    MLPs (:func:`is_plain_mlp`) run as batched matrix products, other models through
    ``torch.vmap`` of ``torch.func.functional_call``. Points at coefficient 0 are all θ
    and evaluated once. ``max_batch`` caps the points per batch; ``memory_budget``
    bounds a batch's bytes (default :data:`DEFAULT_MEMORY_BUDGET` on an accelerator,
    :data:`CPU_MEMORY_BUDGET` on the CPU). Agrees with :func:`evaluate_points_naive` to
    float32 rounding; the model is left unchanged.
    """
    return _evaluate_points(model, theta, D, k_idx, coeffs, data, max_batch, memory_budget,
                            cache=None)


class _FirstLayerCache:
    """First-layer products of the MLP path kept across calls on one (model, θ, D, pool).

    Keys: (sample chunk start, direction index or -1 for θ). Entries are kept while
    they fit ``budget`` bytes; beyond that they are recomputed, never evicted.
    """

    def __init__(self, budget: int):
        self.budget, self.used, self.store = budget, 0, {}

    def get(self, key: tuple[int, int], compute: Callable[[], Tensor]) -> Tensor:
        if key in self.store:
            return self.store[key]
        value = compute()
        size = value.numel() * value.element_size()
        if self.used + size <= self.budget:
            self.store[key] = value
            self.used += size
        return value


def _evaluate_points(model: nn.Module, theta: Tensor, D: Tensor, k_idx, coeffs,
                     data: LandscapeData, max_batch: int | None, memory_budget: int | None,
                     cache: _FirstLayerCache | None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`evaluate_points` with an optional first-layer cache shared across calls."""
    _check_theta(model, theta, D)
    k, c = _points(theta, D, k_idx, coeffs)
    zero = torch.nonzero(c == 0).reshape(-1)
    if zero.numel() <= 1:
        return _evaluate(model, theta, D, k, c, data, max_batch, memory_budget, cache)
    keep = c != 0
    keep[zero[0]] = True
    loss, acc = _evaluate(model, theta, D, k[keep], c[keep], data, max_batch, memory_budget,
                          cache)
    rows = torch.cumsum(keep, 0).cpu().numpy() - 1  # row of each kept point
    rows[zero.cpu().numpy()] = rows[int(zero[0])]
    return loss[rows], acc[rows]


def _evaluate(model: nn.Module, theta: Tensor, D: Tensor, k: Tensor, c: Tensor,
              data: LandscapeData, max_batch: int | None, memory_budget: int | None,
              cache: _FirstLayerCache | None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`evaluate_points` on checked points, without the sharing of θ."""
    n = theta.numel()
    if memory_budget is None:
        memory_budget = CPU_MEMORY_BUDGET if theta.device.type == "cpu" else DEFAULT_MEMORY_BUDGET
    n_points, sizes = k.numel(), torch.tensor(data.sizes, device=theta.device)
    loss_sum = torch.zeros(n_points, len(data.sizes), dtype=torch.float64, device=theta.device)
    correct_sum = torch.zeros_like(loss_sum)
    if n_points == 0:
        return loss_sum.cpu().numpy(), correct_sum.cpu().numpy()
    order = torch.argsort(k, stable=True)  # points of one direction together
    k_sorted, c_sorted = k[order], c[order]
    x_all, y_all = data.x, data.y.to(theta.device)
    with torch.no_grad(), _eval_mode(model):
        mlp = _MlpPlan(model) if is_plain_mlp(model) else None
        if mlp is not None:
            x0 = x_all[:1].to(device=theta.device, dtype=theta.dtype)
            for m in mlp.prefix:
                x0 = m(x0)
            if x0.dim() != 2:  # a Linear on (N, ..., in): not the per-sample rows assumed
                mlp = None
        if mlp is not None:
            per_sample = _F32 * sum(mlp.widths)  # one buffer per layer, reused
            fixed = _F32 * sum(int(np.prod(shape)) for shape in mlp.weight_shapes)
            run = _mlp_runner(mlp, theta, D, cache or _FirstLayerCache(0))
        else:
            per_sample = 2 * _F32 * _activation_floats(model, x_all[:1].to(theta.device))
            fixed = _F32 * n
            run = _vmap_runner(model, theta, D)
        chunk, batch = _plan_batches(per_sample, fixed, data.n_samples, n_points,
                                     memory_budget, max_batch)
        for lo in range(0, data.n_samples, chunk):
            xc = x_all[lo:lo + chunk].to(theta.device)
            yc = y_all[lo:lo + chunk]
            for sel, logits in run(lo, xc, k_sorted, c_sorted, batch):
                loss, correct = _cross_entropy(logits, yc)
                loss_sum[sel] += _partial_sums(loss, lo, sizes)
                correct_sum[sel] += _partial_sums(correct, lo, sizes)
    denom = sizes.double()
    out_loss = torch.empty_like(loss_sum)
    out_acc = torch.empty_like(correct_sum)
    out_loss[order] = loss_sum / denom
    out_acc[order] = correct_sum / denom
    return out_loss.cpu().numpy(), out_acc.cpu().numpy()


Runner = Callable[[int, Tensor, Tensor, Tensor, int], Iterator[tuple[slice, Tensor]]]
"""run(chunk start, sample chunk, sorted directions, coefficients, batch) yields
(points slice, logits (B, m, classes))."""


def _mlp_runner(plan: _MlpPlan, theta: Tensor, D: Tensor, cache: _FirstLayerCache) -> Runner:
    """Logits of the sorted points, direction by direction, on one sample chunk."""

    def run(start_sample: int, xc: Tensor, k: Tensor, c: Tensor,
            batch: int) -> Iterator[tuple[slice, Tensor]]:
        x0 = xc.to(theta.dtype)
        for m in plan.prefix:
            x0 = m(x0)
        # (m, width): the unperturbed first layer, then its change per unit coefficient
        a0 = cache.get((start_sample, -1), lambda: plan.first_layer(x0, theta))
        acts, weights = plan.buffers(min(batch, k.numel()), x0.shape[0], x0)
        dirs, counts = torch.unique_consecutive(k, return_counts=True)
        start = 0
        for kk, count in zip(dirs.tolist(), counts.tolist()):
            d = D[kk]
            ak = cache.get((start_sample, kk), lambda d=d: plan.first_layer(x0, d))
            for lo in range(start, start + count, batch):
                hi = min(lo + batch, start + count)
                cb = c[lo:hi]
                # (B, m, width) = A0 + c·A_k; logits are views of buffers reused next batch
                h = torch.addcmul(a0, cb[:, None, None], ak, out=acts[0][:hi - lo])
                yield slice(lo, hi), plan.tail(h, theta, d, cb, acts, weights)
            start += count

    return run


def _vmap_runner(model: nn.Module, theta: Tensor, D: Tensor) -> Runner:
    """Logits of the sorted points through vmap over stacked flat parameter vectors."""
    like = dict(model.named_parameters())
    buffers = dict(model.named_buffers())

    def forward(flat: Tensor, xc: Tensor) -> Tensor:
        return torch.func.functional_call(model, (unflatten(flat, like), buffers), (xc,))

    batched = torch.vmap(forward, in_dims=(0, None))

    def run(_start: int, xc: Tensor, k: Tensor, c: Tensor,
            batch: int) -> Iterator[tuple[slice, Tensor]]:
        for lo in range(0, k.numel(), batch):
            hi = min(lo + batch, k.numel())
            flat = theta + c[lo:hi, None] * D[k[lo:hi]]  # (B, n)
            yield slice(lo, hi), batched(flat, xc)

    return run


def evaluate_points_naive(
    model: nn.Module,
    theta: Tensor,
    D: Tensor,
    k_idx: Sequence[int] | Tensor | np.ndarray,
    coeffs: Sequence[float] | Tensor | np.ndarray,
    data: LandscapeData,
    max_batch: int | None = None,
    memory_budget: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The reference loop: for each point, load ``θ + c · d`` into the model, forward the pool.

    Same signature and result as :func:`evaluate_points` (``max_batch`` and
    ``memory_budget`` are accepted and unused: one point at a time, one pass over the
    whole pool). Evaluated in eval mode; the model's parameters are copied back in place
    at the end (their storage and the Parameter objects stay the same).
    """
    _check_theta(model, theta, D)
    k, c = _points(theta, D, k_idx, coeffs)
    params = list(model.parameters())
    saved = [p.detach().clone() for p in params]
    sizes = torch.tensor(data.sizes, device=theta.device)
    y = data.y.to(theta.device)
    x = data.x.to(theta.device)
    losses, accs = [], []
    try:
        with torch.no_grad(), _eval_mode(model):
            for kk, cc in zip(k.tolist(), c):
                point = theta + cc * D[kk]
                offset = 0
                for p in params:
                    p.copy_(point[offset:offset + p.numel()].view_as(p))
                    offset += p.numel()
                logits = model(x)
                loss = F.cross_entropy(logits, y, reduction="none")
                correct = logits.argmax(dim=1) == y
                losses.append(torch.cumsum(loss.double(), 0)[sizes - 1] / sizes)
                accs.append(torch.cumsum(correct.double(), 0)[sizes - 1] / sizes)
    finally:
        with torch.no_grad():
            for p, s in zip(params, saved):
                p.copy_(s)
    if not losses:
        empty = np.zeros((0, len(data.sizes)))
        return empty, empty.copy()
    return torch.stack(losses).cpu().numpy(), torch.stack(accs).cpu().numpy()


# --- the grid -----------------------------------------------------------------------


def scan_grid(
    model: nn.Module,
    theta: Tensor,
    D: Tensor,
    coefficients: Sequence[float] | Tensor | np.ndarray,
    data: LandscapeData,
    max_batch: int | None = None,
    memory_budget: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Loss and accuracy (K, C, S) on every (direction, coefficient) of the grid, batched.

    ``max_batch`` and ``memory_budget`` as in :func:`evaluate_points`.
    """
    return _scan(model, theta, D, _coefficients(coefficients), data, max_batch,
                 memory_budget, cache=None)


def _scan(model: nn.Module, theta: Tensor, D: Tensor, coef: np.ndarray, data: LandscapeData,
          max_batch: int | None, memory_budget: int | None,
          cache: _FirstLayerCache | None) -> tuple[np.ndarray, np.ndarray]:
    n_dir, n_coef = D.shape[0], coef.size
    k = np.repeat(np.arange(n_dir), n_coef)
    c = np.tile(coef, n_dir)
    loss, acc = _evaluate_points(model, theta, D, k, c, data, max_batch, memory_budget, cache)
    shape = (n_dir, n_coef, len(data.sizes))
    return loss.reshape(shape), acc.reshape(shape)
