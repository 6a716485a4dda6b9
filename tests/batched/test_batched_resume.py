"""A batch stopped by SIGTERM and resumed equals the batch never stopped.

The signal arrives mid-epoch and mid-chunk (from inside the loss, as a real ``kill``
would land between two operations); every run's checkpoint is written through its own
RunContext and the batch raises RunInterrupted. Reopened from their checkpoints, the
runs continue -- together again, or each alone -- to the same weights and the same
metrics.jsonl as an uninterrupted batch.
"""

from __future__ import annotations

import os
import signal

import pytest
import torch
from batched_reference import classification_data, mlp, per_sample_ce
from test_batched_training import max_diff, runs_of

from sweeplab.batched import TrainSettings, train_batched
from sweeplab.batched.checkpoint import STATE_KEY
from sweeplab.core.checkpoint import checkpoint_path, load_checkpoint
from sweeplab.core.context import RunInterrupted
from sweeplab.track.local import read_metrics

SETTINGS = TrainSettings(optimizer="adamw", batch_size=16, sam=True, sync_every=5)


def _runs():
    runs = runs_of(3, epochs=9, log_interval=2)
    runs[1].samples = torch.arange(0, 80, 3)  # 27 samples: 2 steps an epoch
    runs[1].epochs = 20
    runs[2].epochs = 6
    return runs


def _train(runs, ctxs, stop_at_call=None, **settings):
    calls = 0

    def loss(outputs, targets):
        nonlocal calls
        calls += 1
        if calls == stop_at_call:
            os.kill(os.getpid(), signal.SIGTERM)
        return per_sample_ce(outputs, targets)

    for run, ctx in zip(runs, ctxs):
        run.ctx = ctx
    make = lambda r: mlp().double()  # noqa: E731
    return train_batched(make, loss, classification_data(80, (20,)), runs,
                         TrainSettings(**{**SETTINGS.__dict__, **settings}))


@pytest.mark.parametrize("resume_alone", [False, True])
def test_sigterm_then_resume_equals_the_uninterrupted_batch(contexts, resume_alone):
    whole = _train(_runs(), contexts("whole", 3, save_interval=4))
    ctxs = contexts("stopped", 3, save_interval=4)
    # The loss is called once to measure a step, then twice a step (SAM): call 45 is in
    # step 21, so the stop lands before step 22: mid-epoch (5 steps an epoch for runs 0
    # and 2, 2 for run 1) and mid-chunk (steps 20-24).
    with pytest.raises(RunInterrupted):
        _train(_runs(), ctxs, stop_at_call=45)
    saved = [load_checkpoint(checkpoint_path(c.run_dir)) for c in ctxs]
    assert [s["reason"] for s in saved] == ["signal"] * 3
    assert [s["state"][STATE_KEY]["step"] for s in saved] == [22, 22, 22]
    assert [s["epoch"] for s in saved] == [4, 11, 4]
    resumed = contexts.resume(ctxs)
    if resume_alone:
        results = [_train([run], [ctx])[0] for run, ctx in zip(_runs(), resumed)]
    else:
        results = _train(_runs(), resumed)
    for a, b, ctx_a, ctx_b in zip(whole, results, contexts_of(whole), resumed):
        assert a.ok and b.ok
        assert max_diff(a.state_dict, b.state_dict) == 0.0
        assert (a.steps, a.epochs, a.metrics) == (b.steps, b.epochs, b.metrics)
        ctx_a.flush()
        ctx_b.flush()
        assert read_metrics(ctx_a.run_dir / "metrics.jsonl") == read_metrics(
            ctx_b.run_dir / "metrics.jsonl")
        final = load_checkpoint(checkpoint_path(ctx_b.run_dir))
        assert final["reason"] == "final" and final["epoch"] == a.epochs


def contexts_of(results):
    return [r.run.ctx for r in results]


def test_periodic_checkpoints_follow_each_runs_save_interval(contexts):
    ctxs = contexts("batch", 3, save_interval=4)
    results = _train(_runs(), ctxs)
    # epochs 9, 20, 6: checkpoints at 4, 8, ... and the last
    assert [c.checkpoints_saved for c in ctxs] == [3, 5, 2]
    for ctx, result in zip(ctxs, results):
        state = load_checkpoint(checkpoint_path(ctx.run_dir))["state"][STATE_KEY]
        model = mlp().double()
        model.load_state_dict(state["model"])
        opt = torch.optim.AdamW(model.parameters())
        opt.load_state_dict(state["optimizer"])
        assert max_diff(model.state_dict(), result.state_dict) == 0.0


def test_a_finished_run_resumed_from_its_final_checkpoint_just_returns(contexts):
    ctxs = contexts("batch", 3, save_interval=0)
    first = _train(_runs(), ctxs)
    again = _train(_runs(), contexts.resume(ctxs))
    for a, b in zip(first, again):
        assert max_diff(a.state_dict, b.state_dict) == 0.0 and a.metrics == b.metrics
    assert [c.checkpoints_saved for c in contexts_of(again)] == [0, 0, 0]
