"""Runs trained together equal the same runs trained one by one with torch.optim.

Every test trains B runs with :func:`train_batched` and each run alone with the plain
PyTorch loop of ``batched_reference`` (its torch.optim optimizer, LambdaLR, clipping,
SAM, randperm order), then compares the final weights: within 1e-10 in float64 and
1e-5 in float32 after ~300 steps. The runs of a batch differ in seed, lr, weight
decay, momentum or betas, schedule and clipping.
"""

from __future__ import annotations

import math

import pytest
import torch
from batched_reference import classification_data, cnn, mlp, per_sample_ce, train_alone

from sweeplab.batched import RunSpec, TrainSettings, train_batched

TOL = {torch.float64: 1e-10, torch.float32: 1e-5}


def cosine(total: int):
    return lambda k: 0.5 * (1 + math.cos(math.pi * min(k, total) / total))


def runs_of(n: int, epochs: int, **overrides) -> list[RunSpec]:
    """n runs whose every hyperparameter differs."""
    lrs = [3e-3, 1e-2, 2e-3, 5e-3]
    runs = [RunSpec(seed=10 + i, lr=lrs[i % 4], epochs=epochs, weight_decay=0.01 * i,
                    momentum=[0.9, 0.5, 0.0, 0.99][i % 4], betas=[(0.9, 0.999), (0.8, 0.99),
                                                               (0.95, 0.98), (0.9, 0.9)][i % 4],
                    schedule=[None, cosine(300), None, lambda k: 1 / (1 + 0.01 * k)][i % 4],
                    grad_clip=[None, 0.5, None, 2.0][i % 4], sam_rho=[0.05, 0.1, 0.0, 0.02][i % 4])
            for i in range(n)]
    for run in runs:
        for key, value in overrides.items():
            setattr(run, key, value)
    return runs


def max_diff(a: dict, b: dict) -> float:
    assert list(a) == list(b)
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a)


def check_against_alone(make_model, data, runs, optimizer, batch_size, dtype, nesterov=False,
                        sam=False, **settings):
    results = train_batched(make_model, per_sample_ce, data, runs,
                            TrainSettings(optimizer=optimizer, batch_size=batch_size,
                                          nesterov=nesterov, sam=sam, **settings))
    for run, result in zip(runs, results):
        assert result.ok, result.error
        alone = train_alone(make_model, run, data, optimizer, batch_size, nesterov, sam)
        assert alone.failed_at is None
        assert result.steps == len(alone.losses)
        assert max_diff(result.state_dict, alone.model.state_dict()) <= TOL[dtype]
    return results


@pytest.mark.parametrize("optimizer,nesterov", [("sgd", False), ("sgd", True), ("adam", False),
                                                ("adamw", False)])
def test_mlp_runs_equal_their_torch_optim_loops_in_float64(optimizer, nesterov):
    data = classification_data(128, (20,))
    runs = runs_of(4, epochs=38)  # 8 steps an epoch: 304 steps
    if nesterov:
        for run in runs:
            run.momentum = max(run.momentum, 0.5)
    check_against_alone(lambda r: mlp().double(), data, runs, optimizer, 16, torch.float64,
                        nesterov=nesterov)


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_mlp_runs_equal_their_loops_in_float32(optimizer):
    data = classification_data(128, (20,), dtype=torch.float32)
    check_against_alone(lambda r: mlp(), data, runs_of(4, epochs=38), optimizer, 16,
                        torch.float32)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_cnn_runs_equal_their_loops(dtype):
    data = classification_data(64, (1, 8, 8), dtype=dtype)
    check_against_alone(lambda r: cnn().to(dtype), data, runs_of(2, epochs=75), "adam", 16,
                        dtype)


@pytest.mark.parametrize("model", [mlp, cnn])
def test_sam_runs_equal_the_reference_sam_loop(model):
    shape = (20,) if model is mlp else (1, 8, 8)
    data = classification_data(64, shape)
    check_against_alone(lambda r: model().double(), data, runs_of(2, epochs=50), "sgd", 16,
                        torch.float64, sam=True)


def test_runs_on_different_samples_and_epochs_step_together():
    """Each run its own subset (so its own epoch length and short last batch) and epochs."""
    data = classification_data(100, (20,))
    runs = runs_of(3, epochs=20)
    runs[0].samples = torch.arange(0, 100, 2)
    runs[1].samples = torch.tensor([5, 3, 99, 41, 17, 8, 60, 61, 62, 70, 71])
    runs[2].epochs = 7
    results = check_against_alone(lambda r: mlp().double(), data, runs, "adam", 16,
                                  torch.float64)
    assert [r.steps for r in results] == [20 * 4, 20 * 1, 7 * 7]
    assert [r.epochs for r in results] == [20, 20, 7]


def test_a_runs_numbers_do_not_depend_on_its_batch_mates():
    data = classification_data(96, (20,))
    runs = runs_of(4, epochs=10)
    make = lambda r: mlp().double()  # noqa: E731
    together = train_batched(make, per_sample_ce, data, runs, TrainSettings(batch_size=16))
    reordered = train_batched(make, per_sample_ce, data, [runs[3], runs[1]],
                              TrainSettings(batch_size=16))
    assert max_diff(together[3].state_dict, reordered[0].state_dict) <= 1e-13
    assert max_diff(together[1].state_dict, reordered[1].state_dict) <= 1e-13


@pytest.mark.parametrize("model", [mlp, cnn])
def test_the_three_formulations_compute_the_same_training(model):
    """vmap(grad), vmap + autograd and the hand-batched forward pass: one result."""
    shape = (20,) if model is mlp else (1, 8, 8)
    data = classification_data(64, shape)
    runs = runs_of(3, epochs=10)
    finals = {}
    for formulation in ("func", "vmap", "hand"):
        results = train_batched(lambda r: model().double(), per_sample_ce, data, runs,
                                TrainSettings(batch_size=16, formulation=formulation, sam=True))
        finals[formulation] = [r.state_dict for r in results]
    for name in ("vmap", "hand"):
        for a, b in zip(finals["func"], finals[name]):
            assert max_diff(a, b) <= 1e-12


def test_metrics_reach_each_runs_context_at_its_logged_epochs(contexts):
    data = classification_data(64, (20,))
    runs = runs_of(2, epochs=6, log_interval=4)
    runs[1].samples = torch.arange(40)
    ctxs = contexts("batch", 2)
    for run, ctx in zip(runs, ctxs):
        run.ctx = ctx

    def evaluate(batch):
        logits = batch.outputs(data.inputs)
        return {"accuracy": (logits.argmax(-1) == data.targets).double().mean(1),
                "epoch_seen": [float(e) for e in batch.epochs]}

    results = train_batched(lambda r: mlp().double(), per_sample_ce, data, runs,
                            TrainSettings(batch_size=16), evaluate=evaluate)
    from sweeplab.track.local import read_metrics

    for run, ctx, result in zip(runs, ctxs, results):
        ctx.flush()
        rows = read_metrics(ctx.run_dir / "metrics.jsonl")
        assert [r["epoch"] for r in rows] == [4, 6]
        assert [r["epoch_seen"] for r in rows] == [4.0, 6.0]
        alone = train_alone(lambda r: mlp().double(), run, data, "adam", 16)
        per_epoch = len(alone.losses) // run.epochs
        last_epoch = alone.losses[-per_epoch:]
        assert rows[-1]["train_loss"] == pytest.approx(sum(last_epoch) / per_epoch, rel=1e-12)
        assert result.metrics == {k: v for k, v in rows[-1].items() if k != "epoch"}
        model = alone.model
        accuracy = float((model(data.inputs).argmax(-1) == data.targets).double().mean())
        assert rows[-1]["accuracy"] == pytest.approx(accuracy)


def test_each_runs_directory_is_the_same_as_when_it_trains_alone(contexts):
    """Same files, same metric rows, same checkpoint layout: batched or a batch of one."""
    from sweeplab.core.checkpoint import checkpoint_path, load_checkpoint
    from sweeplab.track.local import read_metrics

    data = classification_data(64, (20,))
    dirs = {}
    for mode, settings in (("batch", TrainSettings(batch_size=16)),
                           ("alone", TrainSettings(batch_size=16, max_batch=1))):
        runs = runs_of(3, epochs=5, log_interval=2)
        runs[2].samples = torch.arange(30)
        ctxs = contexts(mode, 3, save_interval=2)
        for run, ctx in zip(runs, ctxs):
            run.ctx = ctx
        train_batched(lambda r: mlp().double(), per_sample_ce, data, runs, settings)
        for ctx in ctxs:
            ctx.flush()
        dirs[mode] = [c.run_dir for c in ctxs]
    for a, b in zip(dirs["batch"], dirs["alone"]):
        files = lambda d: sorted(str(p.relative_to(d)) for p in d.rglob("*") if p.is_file())  # noqa
        assert files(a) == files(b)
        rows_a, rows_b = read_metrics(a / "metrics.jsonl"), read_metrics(b / "metrics.jsonl")
        assert [sorted(r) for r in rows_a] == [sorted(r) for r in rows_b]
        for ra, rb in zip(rows_a, rows_b):
            assert ra["epoch"] == rb["epoch"]
            assert ra["train_loss"] == pytest.approx(rb["train_loss"], rel=1e-12)
        ca, cb = load_checkpoint(checkpoint_path(a)), load_checkpoint(checkpoint_path(b))
        assert (ca["epoch"], ca["reason"], ca["metrics"]) == (cb["epoch"], cb["reason"],
                                                               cb["metrics"])
        sa, sb = ca["state"]["batched"], cb["state"]["batched"]
        assert sorted(sa) == sorted(sb) and sa["step"] == sb["step"]
        assert max_diff(sa["model"], sb["model"]) <= 1e-13
