"""One candidate, start to end, without this process ever running its code.

:func:`run_candidate` takes a candidate's source and:

1. checks it statically (:func:`~sweeplab.agent.gate.static_check`; stage ``static``);
2. runs a sandboxed child that imports it, builds it, runs it forward, refuses a state
   over the budget, trains one model per seed on the training and validation data (the
   seeds together where the batched trainer can, with ``batch`` ``auto``:
   :mod:`sweeplab.agent.multiseed`) and returns each one's weights
   (:mod:`sweeplab.agent.sandbox`);
3. reads the weights as plain arrays and counts their numbers itself: this count
   (parameters and buffers, everything the model stores) is the one held against the
   goal's budget, whatever the child said;
4. runs a second sandboxed child, from scratch, that builds the model again, loads those
   weights exactly (every key and shape) and returns its logits on the validation and
   test inputs; it never sees a label;
5. computes every metric from those logits with the agent's own code
   (:func:`~sweeplab.agent.evaluate.score_seed`).

So a candidate that forges its report, trains a larger hidden model, or patches the
metric code inside its sandbox changes nothing the agent concludes: the test labels never
enter a sandbox, and the predictions scored are those of the source with the weights
that were counted. What the training child reports (its learning curve) is kept for the
plots, marked as reported.

:class:`Task` writes the data each child may read, once per agent run: ``train.npz``
(training and validation images and labels) and ``inputs.npz`` (validation and test
images, no labels).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sweeplab.agent.arrays import ArrayFileError, read_arrays, write_arrays
from sweeplab.agent.batching import describe
from sweeplab.agent.datasets import AgentData
from sweeplab.agent.evaluate import (
    CURVE_NOTE,
    Evaluation,
    EvaluationError,
    score_seed,
    summarise_seeds,
)
from sweeplab.agent.isolation import Isolation
from sweeplab.agent.sandbox import (
    LOGITS_NAME,
    Layers,
    SandboxLimits,
    ValidationResult,
    input_path,
    run_child,
    static_refusal,
    write_source,
)
from sweeplab.agent.space import TrainSpec

log = logging.getLogger("sweeplab.agent.candidate")

REFUSED_STAGES = frozenset({"static", "isolation", "import", "build", "forward", "shape",
                            "budget", "blocked"})
"""A run that stops at one of these is ``invalid`` (the code was refused or is not a
working model); at any other (training, limits, a kill) it is ``failed``."""
TIME_SHARE = 0.75
"""Share of the wall-clock limit the training itself may use before it stops by time
(the rest covers start-up and saving, so an honest candidate is not killed)."""


class Task:
    """The data files the sandboxed children read (see the module docstring), in a private
    temporary folder removed by :meth:`close`."""

    def __init__(self, data: AgentData):
        self.data = data
        self.folder = Path(tempfile.mkdtemp(prefix="sweeplab-agent-task-"))
        self.folder.chmod(0o755)
        self.train = write_arrays(self.folder / "train.npz", {
            "x_train": data.x_train.numpy(), "y_train": data.y_train.numpy(),
            "x_val": data.x_val.numpy(), "y_val": data.y_val.numpy()})
        self.inputs = write_arrays(self.folder / "inputs.npz", {
            "x_val": data.x_val.numpy(), "x_test": data.x_test.numpy()})

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> Task:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class Sandbox:
    """How candidates run: the isolation, the limits of each child, and (for the
    sandbox's own tests only) the layers that can be switched off."""

    isolation: Isolation
    limits: SandboxLimits
    layers: Layers = Layers()


@dataclass
class Outcome:
    """What became of a candidate: ``status`` (``ok``, ``invalid``, ``failed``), ``error``
    (``<stage>: <reason>``, in the sandbox's fixed vocabulary), ``validation`` (the
    training child's verdict, with the scoring child's under ``scoring``), ``summary``
    (the child's model summary, with ``params`` counted by the agent from the weights)
    and ``evaluation``."""

    status: str
    error: str | None = None
    validation: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    evaluation: Evaluation | None = None


def _refused(result: ValidationResult) -> Outcome:
    status = "invalid" if result.stage in REFUSED_STAGES else "failed"
    return Outcome(status, f"{result.stage}: {result.error}", result.to_dict(),
                   dict(result.summary))


def run_candidate(source: str, task: Task, train: TrainSpec, seeds: tuple[int, ...],
                  patience: int, folder: Path, sandbox: Sandbox, *,
                  max_params: int | None = None, class_name: str | None = None,
                  plots: Path | None = None, batch: str = "auto") -> Outcome:
    """Steps 1-5 of the module docstring for ``source``, in ``folder`` (``train/`` and
    ``score/`` are the two children's work directories); plots go to ``plots``.

    ``batch``: ``auto`` trains the seeds together where the batched trainer can, ``off``
    one by one; the evaluation's ``settings["training"]`` says which ran and why."""
    data = task.data
    if sandbox.layers.static:
        refused = static_refusal(source)
        if refused is not None:
            return _refused(refused)
    seeds = tuple(int(s) for s in seeds)
    limits = sandbox.limits
    train_dir = Path(folder) / "train"
    write_source(source, train_dir)
    spec = {"input_shape": list(data.input_shape), "num_classes": data.num_classes,
            "batch": 2, "class_name": class_name, "seeds": list(seeds),
            "patience": int(patience), "train": train.model_dump(), "max_params": max_params,
            "batch_mode": batch,
            "max_seconds": max(1.0, TIME_SHARE * limits.timeout_s),
            "data": input_path(sandbox.isolation, "train.npz", task.train)}
    trained = run_child("train", train_dir, spec, limits, sandbox.isolation,
                        {"train.npz": task.train}, sandbox.layers)
    result = trained.result
    if not result.ok:
        return _refused(result)
    outcome = Outcome("ok", validation=result.to_dict(), summary=dict(result.summary))
    try:
        weights = [read_arrays(train_dir / report["weights"], limits.file_size_mb * 2**20)
                   for report in trained.seeds]
        if not weights:
            raise ArrayFileError("the training reported no usable seeds")
    except ArrayFileError as exc:
        outcome.status, outcome.error = "failed", f"train: unusable weights ({exc})"
        return outcome
    shapes = [{k: v.shape for k, v in w.items()} for w in weights]
    if any(s != shapes[0] for s in shapes[1:]):
        outcome.status = "failed"
        outcome.error = "train: the seeds returned weights of different structures"
        return outcome
    params = int(sum(v.size for v in weights[0].values()))
    outcome.summary.update(params=params, reported_params=result.summary.get("params"),
                           params_counted="every number of the returned weights "
                                          "(parameters and buffers)")
    if max_params and params > max_params:
        outcome.status = "invalid"
        outcome.error = (f"budget: {params:,} parameters exceed the goal's budget of "
                         f"{max_params:,} (counted from the returned weights)")
        return outcome
    logits, scoring = _score(source, task, weights, folder, sandbox, class_name)
    outcome.validation["scoring"] = scoring.to_dict()
    if logits is None:
        outcome.status = "failed"
        outcome.error = f"score: {scoring.error}" if not scoring.ok else \
            "score: the logits returned are unusable"
        return outcome
    try:
        results = [score_seed(report, logits[f"x_val_{i}"], logits[f"x_test_{i}"], data,
                              patience) for i, report in enumerate(trained.seeds)]
    except EvaluationError as exc:
        outcome.status, outcome.error = "failed", f"score: {exc}"
        return outcome
    outcome.evaluation = summarise_seeds(results, data, {
        "train": train.model_dump(), "seeds": list(seeds), "patience": patience,
        "max_seconds": spec["max_seconds"], "curve": CURVE_NOTE,
        "isolation": sandbox.isolation.kind,
        "training": {**trained.training, "message": describe(trained.training)}}, plots)
    return outcome


def _score(source: str, task: Task, weights: list[dict[str, np.ndarray]], folder: Path,
           sandbox: Sandbox, class_name: str | None
           ) -> tuple[dict[str, np.ndarray] | None, ValidationResult]:
    """The logits of the source with each of ``weights`` (rewritten by this process, so
    the child reads only files the agent wrote), from a fresh sandboxed child."""
    data = task.data
    score_dir = Path(folder) / "score"
    write_source(source, score_dir)
    inputs_dir = Path(folder) / "weights"
    inputs_dir.mkdir(parents=True, exist_ok=True)
    inputs = {"inputs.npz": task.inputs}
    for i, arrays in enumerate(weights):
        inputs[f"weights_{i}.npz"] = write_arrays(inputs_dir / f"weights_{i}.npz", arrays)
    spec = {"num_classes": data.num_classes, "class_name": class_name,
            "data": input_path(sandbox.isolation, "inputs.npz", task.inputs),
            "inputs": ["x_val", "x_test"],
            "weights": [input_path(sandbox.isolation, name, path)
                        for name, path in inputs.items() if name != "inputs.npz"]}
    run = run_child("score", score_dir, spec, sandbox.limits, sandbox.isolation, inputs,
                    sandbox.layers)
    if not run.result.ok:
        return None, run.result
    expected = {}
    for i in range(len(weights)):
        expected[f"x_val_{i}"] = (data.y_val.shape[0], data.num_classes)
        expected[f"x_test_{i}"] = (data.y_test.shape[0], data.num_classes)
    try:
        logits = read_arrays(score_dir / LOGITS_NAME, sandbox.limits.file_size_mb * 2**20)
    except ArrayFileError as exc:
        log.info("unusable logits: %s", exc)
        return None, run.result
    if {k: tuple(v.shape) for k, v in logits.items()} != expected or any(
            v.dtype.kind != "f" for v in logits.values()):
        return None, run.result
    return logits, run.result
