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
    # batch norm: the seeds trained one by one, and the evaluation says why
    training = outcome.evaluation.settings["training"]
    assert (training["path"], training["reason"]) == ("one_by_one", "batch_norm")
    assert training["message"].startswith("seeds trained one by one: the model has batch "
                                          "normalization")


MLP = {"family": "mlp", "mlp_layers": 2, "mlp_width": 32, "dropout": 0.0, "lr": 3e-3}


def test_seeds_trained_together_in_the_sandbox_equal_one_by_one(digits, sandbox, tmp_path):
    """Three seeds of a candidate trained together inside the sandbox (every layer on)
    return the weights and metrics they return one by one (float32, 1e-5)."""
    source = assemble(build_candidate(MLP, digits.input_shape, 10, 8).model)
    outcomes = {}
    with Task(digits) as task:
        for batch in ("auto", "off"):
            outcomes[batch] = run_candidate(source, task, TrainSpec(lr=3e-3, epochs=8),
                                            (0, 1, 2), 8, tmp_path / batch, sandbox,
                                            batch=batch)
            assert outcomes[batch].status == "ok", outcomes[batch].error
    together, alone = (outcomes[b].evaluation for b in ("auto", "off"))
    assert together.settings["training"] == {
        "path": "batched", "reason": "batched", "seeds": 3, "units": 1, "batch": 3,
        "flops": pytest.approx(together.settings["training"]["flops"]),
        "bytes_per_op": pytest.approx(together.settings["training"]["bytes_per_op"]),
        "message": "its 3 seeds trained together by sweeplab.batched.train_batched "
                   "(1 unit(s) of at most 3)"}
    assert alone.settings["training"]["reason"] == "off"
    for index, (a, b) in enumerate(zip(together.per_seed, alone.per_seed, strict=True)):
        assert (a.seed, a.epochs_run, a.best_epoch) == (b.seed, b.epochs_run, b.best_epoch)
        for name, value in a.metrics.items():
            assert value == pytest.approx(b.metrics[name], abs=1e-5), name
        weights = [np.load(tmp_path / batch / "weights" / f"weights_{index}.npz")
                   for batch in ("auto", "off")]
        for key in weights[0].files:
            assert np.abs(weights[0][key] - weights[1][key]).max() <= 1e-5, key


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


@pytest.mark.skipif(not probe_isolation().namespaces, reason="needs bubblewrap's mount view")
def test_without_the_batched_trainer_in_the_sandbox_the_seeds_train_one_by_one(
        digits, sandbox, tmp_path, monkeypatch):
    """Where the sweeplab package cannot be imported in the sandbox (here: an empty folder
    mounted in its place), training goes on one by one and the record says why."""
    empty = tmp_path / "package" / "sweeplab"
    empty.mkdir(parents=True)
    monkeypatch.setattr("sweeplab.agent.sandbox.PACKAGE_DIR", empty)
    source = assemble(build_candidate(MLP, digits.input_shape, 10, 2).model)
    with Task(digits) as task:
        outcome = run_candidate(source, task, TrainSpec(lr=3e-3, epochs=2), (0, 1), 2,
                                tmp_path / "run", sandbox)
    assert outcome.status == "ok", outcome.error
    training = outcome.evaluation.settings["training"]
    assert training == {"path": "one_by_one", "reason": "unavailable",
                        "exception": "ModuleNotFoundError",
                        "message": "seeds trained one by one: sweeplab.batched could not be "
                                   "imported in the sandbox (ModuleNotFoundError)"}
