"""The batched optimizers, clipping and SAM step: torch.optim's numbers, bit for bit.

Each test feeds the same gradients to B runs stacked and to B ``torch.optim`` optimizers,
one per run, with per-run hyperparameters that all differ, and compares the parameters
after every step exactly (``torch.equal``), in float32 and float64.
"""

from __future__ import annotations

import math

import pytest
import torch
from batched_reference import torch_optimizer
from torch import nn

from sweeplab.batched import BatchedOptimizer, RunSpec
from sweeplab.batched.norms import clip_grads, grad_norms, sam_point

SHAPES = {"w": (7, 13), "b": (33,), "k": (3, 2, 5, 5)}
"""Sizes that are not multiples of a vector width, so every kernel's tail is exercised."""
B = 4


def _runs(**per_run) -> list[RunSpec]:
    base = dict(lr=[1e-3, 3e-2, 1e-2, 2e-3], weight_decay=[0.0, 1e-2, 0.3, 1e-4],
                momentum=[0.0, 0.9, 0.5, 0.99], dampening=[0.0, 0.1, 0.0, 0.5],
                betas=[(0.9, 0.999), (0.8, 0.99), (0.95, 0.9), (0.0, 0.5)],
                eps=[1e-8, 1e-6, 1e-3, 1e-10],
                schedule=[None, lambda k: 0.5 ** k, None, lambda k: 1 + k])
    base.update(per_run)
    return [RunSpec(seed=b, epochs=1, **{k: v[b] for k, v in base.items()}) for b in range(B)]


def _stacked_vs_torch(kind, dtype, runs, nesterov=False, steps=30):
    gen = torch.Generator().manual_seed(0)
    start = {n: torch.randn(B, *s, generator=gen, dtype=dtype) for n, s in SHAPES.items()}
    alone = [{n: nn.Parameter(t[b].clone()) for n, t in start.items()} for b in range(B)]
    opts = [torch_optimizer(kind, run, list(p.values()), nesterov) for run, p in zip(runs, alone)]
    params = {n: t.clone() for n, t in start.items()}
    batched = BatchedOptimizer(kind, params, runs, [0] * B, nesterov=nesterov)
    for _ in range(steps):
        grads = {n: torch.randn(B, *s, generator=gen, dtype=dtype) for n, s in SHAPES.items()}
        for b, (opt, sched) in enumerate(opts):
            for n, p in alone[b].items():
                p.grad = grads[n][b].clone()
            opt.step()
            if sched is not None:
                sched.step()
        params = batched.step(params, grads, batched.coefficients(1)[0])
        for n in SHAPES:
            expected = torch.stack([alone[b][n].detach() for b in range(B)])
            assert torch.equal(params[n], expected), (kind, dtype, n)
    return batched, params, opts, alone


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kind", ["adam", "adamw"])
def test_adam_and_adamw_equal_torch_optim_bit_for_bit(kind, dtype):
    _stacked_vs_torch(kind, dtype, _runs())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_equals_torch_optim_bit_for_bit(nesterov, dtype):
    runs = _runs(momentum=[0.9, 0.5, 0.99, 0.3], dampening=[0.0] * B) if nesterov else _runs()
    _stacked_vs_torch("sgd", dtype, runs, nesterov=nesterov)


def test_plain_sgd_keeps_no_buffer_and_still_matches():
    batched, *_ = _stacked_vs_torch("sgd", torch.float64, _runs(momentum=[0.0] * B))
    assert all(state == {} for state in batched.state.values())


@pytest.mark.parametrize("kind", ["sgd", "adam", "adamw"])
def test_a_runs_state_dict_is_torch_optims_and_loads_back(kind):
    """Run b's exported state is what its own torch.optim optimizer's state_dict() holds,
    and a fresh batched optimizer loaded from it continues bit for bit."""
    runs = _runs()
    batched, params, opts, alone = _stacked_vs_torch(kind, torch.float64, runs, steps=5)
    names = list(SHAPES)
    for b, (opt, _) in enumerate(opts):
        rows = [(n, params[n][b], True) for n in names]
        mine, theirs = batched.state_dict(b, rows), opt.state_dict()
        assert mine["param_groups"][0]["lr"] == pytest.approx(theirs["param_groups"][0]["lr"])
        assert set(mine["state"]) == set(theirs["state"])
        for i, entry in theirs["state"].items():
            assert set(mine["state"][i]) == set(entry)
            for key, value in entry.items():
                assert torch.equal(mine["state"][i][key], value), (kind, b, key)
        fresh = torch.optim.SGD if kind == "sgd" else torch.optim.Adam
        fresh([nn.Parameter(params[n][b].clone()) for n in names], lr=1.0).load_state_dict(mine)
    reloaded = BatchedOptimizer(kind, {n: t.clone() for n, t in params.items()}, runs, [0] * B)
    for b in range(B):
        reloaded.load_state_dict(b, [(n, params[n][b], True) for n in names],
                                 batched.state_dict(b, [(n, params[n][b], True) for n in names]),
                                 step=5)
    grads = {n: torch.full((B, *s), 0.1, dtype=torch.float64) for n, s in SHAPES.items()}
    a = batched.step(params, grads, batched.coefficients(1)[0])
    c = reloaded.step(params, grads, reloaded.coefficients(1)[0])
    assert all(torch.equal(a[n], c[n]) for n in SHAPES)


def test_keep_mask_leaves_excluded_runs_untouched():
    gen = torch.Generator().manual_seed(1)
    params = {n: torch.randn(B, *s, generator=gen) for n, s in SHAPES.items()}
    opt = BatchedOptimizer("adam", params, _runs(), [0] * B)
    grads = {n: torch.randn(B, *s, generator=gen) for n, s in SHAPES.items()}
    grads["w"][2] = math.nan
    keep = torch.tensor([True, True, False, True])
    new = opt.step(params, grads, opt.coefficients(1)[0], keep)
    for n in SHAPES:
        assert torch.equal(new[n][2], params[n][2])
        assert not torch.equal(new[n][0], params[n][0])
        assert torch.equal(opt.state[n]["exp_avg"][2], torch.zeros(SHAPES[n]))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_clipping_is_clip_grad_norm_per_run(dtype):
    gen = torch.Generator().manual_seed(2)
    grads = {n: torch.randn(B, *s, generator=gen, dtype=dtype) * (1 + torch.arange(B)).view(
        -1, *[1] * len(s)).to(dtype) for n, s in SHAPES.items()}
    max_norm = [0.5, math.inf, 30.0, 1e-3]
    clipped = clip_grads(grads, torch.tensor(max_norm, dtype=dtype))
    for b in range(B):
        ps = [nn.Parameter(torch.zeros(s, dtype=dtype)) for s in SHAPES.values()]
        for p, n in zip(ps, SHAPES):
            p.grad = grads[n][b].clone()
        if math.isfinite(max_norm[b]):
            nn.utils.clip_grad_norm_(ps, max_norm[b])
        for p, n in zip(ps, SHAPES):
            tol = 4 * torch.finfo(dtype).eps
            assert torch.allclose(clipped[n][b], p.grad, rtol=tol, atol=0), (b, n)
    assert all(torch.equal(clipped[n][1], grads[n][1]) for n in SHAPES)  # inf: untouched
    assert grad_norms(clipped)[0] == pytest.approx(0.5, rel=1e-5)


def test_sam_point_is_the_reference_first_step():
    """davda54/sam SAM.first_step: w + rho g / (||g|| + 1e-12), ||g|| the norm of norms."""
    gen = torch.Generator().manual_seed(3)
    params = {n: torch.randn(B, *s, generator=gen, dtype=torch.float64) for n, s in SHAPES.items()}
    grads = {n: torch.randn(B, *s, generator=gen, dtype=torch.float64) for n, s in SHAPES.items()}
    rho = [0.05, 0.0, 1.0, 0.5]
    point = sam_point(params, grads, torch.tensor(rho, dtype=torch.float64))
    for b in range(B):
        norm = torch.norm(torch.stack([grads[n][b].norm(p=2) for n in SHAPES]), p=2)
        scale = rho[b] / (norm + 1e-12)
        for n in SHAPES:
            assert torch.equal(point[n][b], params[n][b] + grads[n][b] * scale)
    assert all(torch.equal(point[n][1], params[n][1]) for n in SHAPES)  # rho 0: w itself
