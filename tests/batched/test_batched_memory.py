"""B is chosen from the model's measured step and the memory allowed, and said in the log."""

from __future__ import annotations

import logging

import pytest
import torch
from batched_reference import classification_data, mlp, per_sample_ce
from test_batched_training import max_diff, runs_of
from torch import nn

from sweeplab.batched import TrainSettings, memory, plan_batches, step_cost, train_batched
from sweeplab.batched.memory import PAYS_BELOW_FLOPS, StepCost, per_run_bytes, split_units


def test_a_step_is_measured_on_the_real_model():
    """Linear layers: forward 2 n in out a layer; backward twice that, less the input
    gradient of the first layer (the data needs none)."""
    n, sizes = 32, (20, 16, 3)
    model = mlp(*sizes).double()
    x, y = torch.randn(n, 20, dtype=torch.float64), torch.randint(0, 3, (n,))
    cost = step_cost(model, per_sample_ce, x, y)
    forward = 2 * n * (20 * 16 + 16 * 3)
    assert cost.flops == 3 * forward - 2 * n * 20 * 16
    assert cost.param_bytes == 8 * sum(p.numel() for p in model.parameters())
    assert n * 16 * 8 <= cost.saved_bytes <= 10 * n * (20 + 16 + 3) * 8  # activations, no params


def test_the_budget_sets_b_and_the_runs_split_into_nearly_equal_units():
    cost = StepCost(flops=1e6, saved_bytes=10_000, param_bytes=4_000)
    need = per_run_bytes(cost, optimizer_states=2, sam=True)
    plan = plan_batches(10, cost, torch.device("cpu"), 2, sam=True, budget=3 * need + 1)
    assert plan.batch == 3 and plan.pays
    assert [len(u) for u in plan.units] == [3, 3, 2, 2]
    assert sum(plan.units, []) == list(range(10))
    assert plan_batches(10, cost, torch.device("cpu"), 2, budget=10**12, max_batch=4).batch == 4
    assert split_units(10, 4) == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]


def test_a_step_that_fills_the_device_trains_one_by_one():
    big = StepCost(flops=2 * PAYS_BELOW_FLOPS["cpu"], saved_bytes=1, param_bytes=1)
    plan = plan_batches(5, big, torch.device("cpu"), 1, budget=10**12)
    assert not plan.pays and plan.batch == 1 and len(plan.units) == 5
    assert "5 runs one by one: a step already fills the cpu" in plan.describe()
    assert plan_batches(5, big, torch.device("cpu"), 1, budget=10**12,
                        always_batch=True).batch == 5


def test_on_cpu_memory_bound_operators_train_one_by_one():
    """The volume CNN's step: 43 operators over 4.4 MB of activations (measured 0.85x)."""
    cnn_step = StepCost(flops=1e8, saved_bytes=4_400_000, param_bytes=40_000, ops=43)
    plan = plan_batches(8, cnn_step, torch.device("cpu"), 2, budget=10**12)
    assert not plan.pays and "memory-bound on CPU" in plan.describe()
    small_ops = StepCost(flops=1e8, saved_bytes=4_400_000, param_bytes=40_000, ops=500)
    assert plan_batches(8, small_ops, torch.device("cpu"), 2, budget=10**12).pays


def test_on_cpu_b_keeps_the_batchs_activations_near_the_cache(monkeypatch):
    monkeypatch.setattr(memory, "cpu_cache_bytes", lambda: 10_000_000)
    step = StepCost(flops=1e6, saved_bytes=4_000_000, param_bytes=1_000, ops=1_000)
    assert plan_batches(20, step, torch.device("cpu"), 2, budget=10**12).batch == 5


def test_the_plan_is_logged_and_a_small_budget_only_changes_the_units(contexts, caplog):
    data = classification_data(64, (20,))
    runs = runs_of(4, epochs=3)
    ctxs = contexts("batch", 4)
    for run, ctx in zip(runs, ctxs):
        run.ctx = ctx
    make = lambda r: mlp().double()  # noqa: E731
    whole = train_batched(make, per_sample_ce, data, runs, TrainSettings(batch_size=16))
    model = make(runs[0])
    cost = step_cost(model, per_sample_ce, data.inputs[:16], data.targets[:16])
    budget = 2 * per_run_bytes(cost, 2, False) + 1
    caplog.clear()  # the first call logs too whenever an earlier test left INFO enabled
    with caplog.at_level(logging.INFO):
        split = train_batched(make, per_sample_ce, data, runs,
                              TrainSettings(batch_size=16, memory_budget=budget))
    lines = [r.getMessage() for r in caplog.records if "batched training" in r.getMessage()]
    assert "4 runs in 2 unit(s) of at most 2" in lines[0]
    assert len(lines) == 1 + 4  # the module's logger and each run's
    for a, b in zip(whole, split):
        assert max_diff(a.state_dict, b.state_dict) <= 1e-13


@pytest.mark.parametrize("max_batch,units", [(1, 4), (3, 2)])
def test_max_batch_caps_b(max_batch, units, caplog):
    data = classification_data(32, (20,))
    with caplog.at_level(logging.INFO, logger="sweeplab.batched"):
        results = train_batched(lambda r: nn.Sequential(nn.Linear(20, 3)).double(),
                                per_sample_ce, data, runs_of(4, epochs=1),
                                TrainSettings(batch_size=16, max_batch=max_batch))
    assert all(r.ok for r in results)
    assert f"4 runs in {units} unit(s) of at most {max_batch} " in caplog.records[0].getMessage()
