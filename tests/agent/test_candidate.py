"""One candidate through the sandbox: the agent's own parameter count (from the returned
weights, buffers included) matches the config's, its metrics are those of the returned
weights on the test set, and a model over the budget is refused before training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sweeplab.agent.assembler import assemble
from sweeplab.agent.candidate import Sandbox, Task, run_candidate
from sweeplab.agent.datasets import load_dataset
from sweeplab.agent.loop import parameter_count
from sweeplab.agent.sandbox import SandboxLimits, probe_isolation
from sweeplab.agent.space import TrainSpec, build_candidate


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=0, max_train=200)


@pytest.fixture(scope="module")
def sandbox():
    return Sandbox(probe_isolation(), SandboxLimits(timeout_s=120, cpu_seconds=120))


CNN = {"family": "cnn", "conv_blocks": 2, "channels": 8, "kernel_size": 3, "batchnorm": True,
       "pooling": "global", "hidden": 16, "dropout": 0.1, "lr": 3e-3}


def test_the_count_and_the_metrics_are_the_agents_own(digits, sandbox, tmp_path: Path):
    model_cfg = build_candidate(CNN, digits.input_shape, 10, 2).model
    source = assemble(model_cfg)
    with Task(digits) as task:
        outcome = run_candidate(source, task, TrainSpec(lr=3e-3, epochs=2), (0, 1), 2,
                                tmp_path, sandbox, max_params=100_000)
    assert outcome.status == "ok", outcome.error
    # every number the weights hold: parameters and batch norm's buffers, as configured
    assert outcome.summary["params"] == parameter_count(model_cfg)
    assert outcome.summary["params"] > outcome.summary["reported_params"]  # + buffers
    # the test accuracy is that of the returned weights, recomputed here independently
    namespace: dict = {"__name__": "trusted"}
    exec(compile(source, "model.py", "exec"), namespace)  # noqa: S102 - the assembler's own
    for index, seed in enumerate(outcome.evaluation.per_seed):
        weights = np.load(tmp_path / "weights" / f"weights_{index}.npz")
        model = namespace["build"]()
        model.load_state_dict({k: torch.from_numpy(weights[k]) for k in weights.files})
        model.eval()
        with torch.no_grad():
            predicted = model(digits.x_test).argmax(dim=1)
        accuracy = float((predicted == digits.y_test).double().mean())
        assert seed.metrics["accuracy"] == pytest.approx(accuracy, abs=1e-12)
    assert outcome.evaluation.settings["isolation"] == probe_isolation().kind


def test_a_state_over_the_budget_is_refused_before_training(digits, sandbox, tmp_path):
    wide = {**CNN, "family": "mlp", "mlp_layers": 2, "mlp_width": 512}
    model_cfg = build_candidate(wide, digits.input_shape, 10, 2).model
    with Task(digits) as task:
        outcome = run_candidate(assemble(model_cfg), task, TrainSpec(epochs=2), (0,), 2,
                                tmp_path, sandbox, max_params=10_000)
    assert outcome.status == "invalid" and not outcome.evaluation
    assert outcome.error == (f"budget: its state of {parameter_count(model_cfg):,} numbers "
                             "exceeds the budget of 10,000")
    assert not list((tmp_path / "train").glob("weights_*.npz"))  # nothing was trained
