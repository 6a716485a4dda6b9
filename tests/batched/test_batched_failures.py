"""A run fails alone: at the step it fails alone, leaving its batch-mates unchanged.

Also: what cannot train in a batch is refused before any work, with a typed error
naming the key or the module.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from batched_reference import (
    classification_data,
    mlp,
    per_sample_ce,
    per_sample_mse,
    regression_data,
    train_alone,
)
from test_batched_training import max_diff, runs_of
from torch import nn

from sweeplab.batched import BatchedModelError, TrainSettings, train_batched
from sweeplab.errors import ConfigError, NonFiniteError
from sweeplab.track.local import read_metrics


@pytest.mark.parametrize("host_checks", [True, False])
def test_a_diverging_run_fails_at_its_own_step_and_the_others_go_on(host_checks, contexts):
    """Least squares with a step size far past 2 / (largest curvature) diverges
    geometrically; its loss overflows at some step s alone, and must in the batch too.

    host_checks=False is the CUDA path (failure masked on the device, found at the
    chunk's end); on CPU both must give the same step and the same survivors.
    """
    data = regression_data(96)
    runs = runs_of(3, epochs=12, momentum=0.0, schedule=None, grad_clip=None)
    runs[1].lr = 100.0
    ctxs = contexts("batch", 3)
    for run, ctx in zip(runs, ctxs):
        run.ctx = ctx
    make = lambda r: nn.Linear(20, 1).double()  # noqa: E731
    settings = dict(optimizer="sgd", batch_size=16, sync_every=7)
    results = train_batched(make, per_sample_mse, data, runs,
                            TrainSettings(host_checks=host_checks, **settings))
    alone = [train_alone(make, run, data, "sgd", 16, loss_fn=F.mse_loss) for run in runs]
    assert alone[1].failed_at is not None and alone[1].failed_at % 7 != 0  # mid-chunk
    failed = results[1]
    assert isinstance(failed.error, NonFiniteError)
    assert failed.error.step == alone[1].failed_at == failed.steps
    ctxs[1].flush()
    rows = read_metrics(ctxs[1].run_dir / "metrics.jsonl")
    assert [r["epoch"] for r in rows] == list(range(1, alone[1].failed_at // 6 + 1))
    for i in (0, 2):
        assert results[i].ok and alone[i].failed_at is None
        assert max_diff(results[i].state_dict, alone[i].model.state_dict()) <= 1e-10
    without = train_batched(make, per_sample_mse, data, [runs[0], runs[2]],
                            TrainSettings(**settings))
    assert max_diff(results[0].state_dict, without[0].state_dict) <= 1e-13
    assert max_diff(results[2].state_dict, without[1].state_dict) <= 1e-13


def test_a_model_that_cannot_be_built_fails_only_its_run():
    data = classification_data(32, (20,))
    runs = runs_of(3, epochs=2)

    def make(run):
        if run.seed == runs[1].seed:
            raise RuntimeError("no such architecture")
        return mlp().double()

    results = train_batched(make, per_sample_ce, data, runs, TrainSettings(batch_size=16))
    assert [r.ok for r in results] == [True, False, True]
    assert "no such architecture" in str(results[1].error)


def test_a_run_whose_architecture_differs_fails_alone():
    data = classification_data(32, (20,))
    runs = runs_of(3, epochs=2)
    results = train_batched(lambda r: mlp(hidden=8 if r is runs[2] else 16).double(),
                            per_sample_ce, data, runs, TrainSettings(batch_size=16))
    assert [r.ok for r in results] == [True, True, False]
    assert "differs" in str(results[2].error)


@pytest.mark.parametrize("key,value,settings", [
    ("optimizer", "rmsprop", {"optimizer": "rmsprop"}),
    ("batch_size", 0, {"batch_size": 0}),
    ("formulation", "jit", {"formulation": "jit"}),
    ("lr", -0.1, {}),
    ("nesterov", True, {"optimizer": "sgd", "nesterov": True}),
    ("samples", None, {}),
    ("device", "tpu", {"device": "tpu"}),
])
def test_bad_settings_are_refused_before_any_work(key, value, settings):
    data = classification_data(32, (20,))
    runs = runs_of(2, epochs=1, momentum=0.0)
    if key == "lr":
        runs[1].lr = value
    if key == "samples":
        runs[0].samples = torch.tensor([0, 40])
    built = []

    def make(run):
        built.append(run)
        return mlp().double()

    with pytest.raises(ConfigError) as err:
        train_batched(make, per_sample_ce, data, runs, TrainSettings(**settings))
    assert err.value.key == key
    assert built == []


@pytest.mark.parametrize("layer,says", [(nn.BatchNorm1d(16), "batch normalization"),
                                        (nn.Dropout(0.1), "dropout")])
def test_modules_that_train_differently_in_a_batch_are_refused(layer, says):
    data = classification_data(32, (20,))
    make = lambda r: nn.Sequential(nn.Linear(20, 16), layer, nn.Linear(16, 3)).double()  # noqa
    with pytest.raises(BatchedModelError, match=f"module 1 is {says}"):
        train_batched(make, per_sample_ce, data, runs_of(2, epochs=1), TrainSettings())


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is available here")
def test_cuda_without_a_gpu_is_refused_in_one_line():
    with pytest.raises(ConfigError, match="invalid device=cuda: no CUDA device is available"):
        train_batched(lambda r: mlp().double(), per_sample_ce, classification_data(32, (20,)),
                      runs_of(1, epochs=1), TrainSettings(device="cuda"))
