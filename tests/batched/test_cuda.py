"""The batched trainer on a CUDA device: same numbers as on CPU, no host sync per step.

Run on a machine with a GPU: ``.venv/bin/python -m pytest -q tests/batched/test_cuda.py``
(about a minute). Elsewhere every test skips, saying why.
"""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from batched_reference import (
    classification_data,
    cnn,
    mlp,
    per_sample_ce,
    per_sample_mse,
    regression_data,
    train_alone,
)
from test_batched_training import max_diff, runs_of
from torch import nn

from sweeplab.batched import RunSpec, TrainData, TrainSettings, train_batched
from sweeplab.batched.memory import memory_budget
from sweeplab.errors import NonFiniteError

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason=f"no CUDA device here (torch {torch.__version__}, "
           f"cuda build {torch.version.cuda or 'none'}); run this file where a GPU is")

CUDA = TrainSettings(device="cuda", batch_size=16, sam=True, sync_every=50)


def _on(data: TrainData, device: str) -> TrainData:
    return TrainData(data.inputs.to(device), data.targets.to(device))


@pytest.mark.parametrize("model", [mlp, cnn])
def test_a_cuda_batch_equals_the_cpu_batch_and_each_run_alone_on_cuda(model):
    shape = (20,) if model is mlp else (1, 8, 8)
    data = classification_data(64, shape)
    runs = runs_of(3, epochs=75)  # 300 steps
    make = lambda r: model().double()  # noqa: E731
    on_gpu = train_batched(make, per_sample_ce, data, runs, CUDA)
    on_cpu = train_batched(make, per_sample_ce, data, runs,
                           TrainSettings(batch_size=16, sam=True))
    for run, gpu, cpu in zip(runs, on_gpu, on_cpu):
        assert gpu.ok and cpu.ok
        assert max_diff(gpu.state_dict, cpu.state_dict) <= 1e-10
        cuda_make = lambda r: model().double().cuda()  # noqa: E731
        alone = train_alone(cuda_make, run, _on(data, "cuda"), "adam", 16, sam=True)
        assert max_diff(gpu.state_dict, {k: v.cpu() for k, v in
                                         alone.model.state_dict().items()}) <= 1e-10


def test_the_loop_syncs_with_the_host_per_chunk_not_per_step():
    """torch's sync debug mode flags every synchronizing call: doubling the steps at a
    fixed chunk size adds a chunk's syncs, never one per step."""
    data = classification_data(256, (20,))  # 16 steps an epoch

    def syncs(epochs: int) -> int:
        runs = [RunSpec(seed=s, lr=1e-3, epochs=epochs, grad_clip=1.0) for s in range(8)]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                results = train_batched(lambda r: mlp().double(), per_sample_ce, data, runs,
                                        TrainSettings(device="cuda", batch_size=16,
                                                      sync_every=100))
            finally:
                torch.cuda.set_sync_debug_mode("default")
        assert all(r.ok for r in results)
        return sum("synchroniz" in str(w.message) for w in caught)

    short, long = syncs(25), syncs(50)  # 400 and 800 steps
    assert long - short <= 40, (short, long)


def test_a_diverging_run_fails_at_its_step_on_the_device_and_the_others_go_on():
    data = regression_data(96)
    runs = runs_of(3, epochs=12, momentum=0.0, schedule=None, grad_clip=None)
    runs[1].lr = 100.0
    make = lambda r: nn.Linear(20, 1).double()  # noqa: E731
    results = train_batched(make, per_sample_mse, data, runs,
                            TrainSettings(device="cuda", optimizer="sgd", batch_size=16,
                                          sync_every=7))
    alone = train_alone(make, runs[1], data, "sgd", 16, loss_fn=F.mse_loss)
    assert isinstance(results[1].error, NonFiniteError)
    assert results[1].error.step == alone.failed_at
    for i in (0, 2):
        reference = train_alone(make, runs[i], data, "sgd", 16, loss_fn=F.mse_loss)
        assert max_diff(results[i].state_dict, reference.model.state_dict()) <= 1e-10


def test_the_memory_budget_is_the_devices_free_memory():
    free, _ = torch.cuda.mem_get_info()
    assert 0 < memory_budget(torch.device("cuda")) <= free
