"""The agent's iterations: propose, assemble, run the candidate in the sandbox, decide.

Each iteration is recorded in the registry before the next begins. A candidate refused
on the way (syntax, the static check, a crash before training, a wrong output shape, an
operation the sandbox forbids, a parameter count over the budget) is recorded as
``invalid`` with the reason, and the planner learns that it failed; one whose training
or scoring fails (an exception, a limit, a timeout) is recorded as ``failed``: a failure
of one candidate is data, never the end of the search (only ``KeyboardInterrupt`` and
the like stop the loop).

No candidate's code runs in this process: :func:`~sweeplab.agent.candidate.run_candidate`
trains and predicts in the sandbox (``src/models/iter_<k>/train/`` and ``score/``, each
the only writable place of its child) and scores the predictions here. The loop refuses
to start without kernel isolation unless ``unsafe_no_isolation`` is set, which runs
candidates without it (:func:`~sweeplab.agent.sandbox.choose_isolation`).

With ``llm_assemble`` the LLM writes each source; when it gives no valid one (the
endpoint fails, or every reply is rejected) the deterministic assembler writes it
instead and the record says so (``assembler``), so the search goes on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sweeplab.agent.goal import Goal
from sweeplab.agent.records import Decision, IterationRecord
from sweeplab.agent.registry import Registry

log = logging.getLogger("sweeplab.agent")


@dataclass
class AgentSettings:
    """Budget and evaluation settings of one agent run (recorded in the registry)."""

    max_iterations: int = 8
    seed: int = 0
    seeds: tuple[int, ...] = (0, 1, 2)
    epochs: int = 5
    patience: int = 2
    max_train: int | None = 10_000
    data_dir: str | None = None
    allow_synthetic: bool = False
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_assemble: bool = False
    llm_timeout: float = 60.0
    threads: int = 1
    sandbox_timeout_s: float = 900.0
    sandbox_cpu_seconds: int | None = None
    sandbox_memory_mb: int = 4096
    unsafe_no_isolation: bool = False
    batch: str = "auto"
    static_check: bool = True
    audit_hook: bool = True

    def limits(self) -> Any:
        """The limits of each sandboxed child: ``sandbox_timeout_s`` of wall clock,
        ``sandbox_cpu_seconds`` of CPU time (default: the wall clock times ``threads``,
        plus 30 s of start-up), ``sandbox_memory_mb`` of address space."""
        from sweeplab.agent.sandbox import SandboxLimits

        cpu = self.sandbox_cpu_seconds or int(self.sandbox_timeout_s * self.threads) + 30
        return SandboxLimits(timeout_s=self.sandbox_timeout_s, cpu_seconds=cpu,
                             memory_mb=self.sandbox_memory_mb, threads=self.threads,
                             max_files=32 + len(self.seeds))

    def public(self) -> dict[str, Any]:
        """The settings as recorded (never an API key: it is not a field)."""
        return asdict(self)


@dataclass
class AgentResult:
    """What the loop ends with."""

    run_dir: Path
    history: list[IterationRecord] = field(default_factory=list)
    best: IterationRecord | None = None
    reached: bool = False
    reason: str = ""


VALIDATION_METRICS = {"accuracy": "val_accuracy"}
"""Goal metric -> its validation-set version in the evaluation, used to select candidates
so that the test set stays out of the search (other metrics exist on the test set only)."""


def selection_metric(metric: str) -> str:
    """The metric the planner optimises for a goal on ``metric``."""
    return VALIDATION_METRICS.get(metric, metric)


MAX_REJECTED = 200
"""Proposals over the goal's parameter budget are refused before any work and do not use
the iteration budget; this many at most, so a planner stuck above it still ends."""


def parameter_count(model_cfg: Any) -> int:
    """Numbers a model config's state holds, from the assembler's inferred shapes: its
    parameters and its buffers (batch norm keeps a running mean and variance per feature
    and a batch counter), as the agent counts them in the weights a candidate returns."""
    from sweeplab.agent.assembler import infer_shapes

    shapes = infer_shapes(model_cfg)
    inputs = [tuple(model_cfg.input_shape), *shapes[:-1]]
    total = 0
    for layer, shape_in in zip(model_cfg.layers, inputs, strict=True):
        p = layer.params
        if layer.type == "conv2d":
            total += p["out_channels"] * (shape_in[0] * p["kernel_size"] ** 2 + 1)
        elif layer.type == "linear":
            total += p["out_features"] * (shape_in[0] + 1)
        elif layer.type in ("batchnorm2d", "batchnorm1d"):
            total += 4 * shape_in[0] + 1
    return total


def metric_of(evaluation: Any, metric: str) -> float:
    """A metric's mean across seeds from an evaluation."""
    aggregate = evaluation.aggregate
    if metric not in aggregate:
        raise KeyError(f"the evaluation has no metric {metric!r} (has {sorted(aggregate)})")
    return float(aggregate[metric]["mean"])


def run_loop(
    goal: Goal,
    settings: AgentSettings,
    registry: Registry,
    planner: Any,
    data: Any,
    client: Any | None = None,
    say: Callable[[str], None] | None = None,
) -> AgentResult:
    """Iterate until the planner stops or the budget is spent; every step is registered.

    ``say`` receives one progress line per iteration (the CLI prints them; default: the
    ``sweeplab.agent`` logger).
    """
    say = say or log.info
    from sweeplab.agent.assembler import AssemblyError
    from sweeplab.agent.candidate import Sandbox, Task, run_candidate
    from sweeplab.agent.llm import one_line
    from sweeplab.agent.sandbox import Layers, choose_isolation

    sandbox = Sandbox(choose_isolation(settings.unsafe_no_isolation), settings.limits(),
                      Layers(settings.static_check, settings.audit_hook))
    history: list[IterationRecord] = []
    result = AgentResult(registry.run_dir, history)
    rejected, index = 0, 0
    with Task(data) as task:
        while index < settings.max_iterations:
            started = time.monotonic()
            proposal = planner.propose(history)
            model_cfg = proposal.candidate.model
            log.info("proposal (%s): %s", proposal.source, proposal.candidate.rationale)
            if goal.max_params and rejected < MAX_REJECTED:
                try:
                    size = parameter_count(model_cfg)
                except ValueError:
                    size = 0  # an invalid config: the iteration below records why
                if size > goal.max_params:
                    rejected += 1
                    refused = IterationRecord(-rejected, proposal, status="invalid", error=(
                        f"{size:,} parameters exceed the goal's budget of "
                        f"{goal.max_params:,} (refused before validation)"))
                    log.info("refused before validation: %s", refused.error)
                    planner.observe(refused)
                    registry.reject(refused)
                    continue
            index += 1
            record = IterationRecord(index, proposal)
            folder = registry.model_dir(index)
            try:
                source = _assemble(record, client if settings.llm_assemble else None,
                                   settings.static_check)
                (folder / "model.py").write_text(source, encoding="utf-8")
                outcome = run_candidate(
                    source, task, proposal.candidate.train, settings.seeds, settings.patience,
                    folder, sandbox, max_params=goal.max_params,
                    plots=registry.plots_dir(index), batch=settings.batch)
                record.validation, record.summary = outcome.validation, outcome.summary
                record.status, record.error = outcome.status, outcome.error
                if outcome.evaluation is not None:
                    record.evaluation = outcome.evaluation.to_dict()
                    record.score = metric_of(outcome.evaluation, selection_metric(goal.metric))
                    record.test_score = metric_of(outcome.evaluation, goal.metric)
            except AssemblyError as exc:  # a layer list that cannot be built
                record.status, record.error = "invalid", f"assembly: {exc}"
            except Exception as exc:  # noqa: BLE001 - scoring failed here: recorded
                record.status, record.error = "failed", one_line(f"{type(exc).__name__}: {exc}")
                log.info("iteration %d failed", index, exc_info=True)  # --verbose: traceback
            planner.observe(record)
            history.append(record)
            record.decision = _decide(planner, history, goal, settings.max_iterations - index)
            record.seconds = time.monotonic() - started
            registry.add(record)
            log.info("iteration %d done: %s%s; decision %s (%s)", index, record.status,
                     f" ({record.error})" if record.error else "", record.decision.action,
                     record.decision.reason)
            say(_line(record, goal))
            if record.decision.action == "stop":
                result.reason = record.decision.reason
                break
    if not result.reason:
        result.reason = "iteration budget spent"
    if rejected:
        say(f"{rejected} proposal(s) over the parameter budget refused before validation")
    scored = [r for r in history if r.score is not None]
    result.best = max(scored, key=lambda r: r.score) if scored else None
    result.reached = (result.best is not None and result.best.test_score is not None
                      and result.best.test_score >= goal.target)
    return result


def _assemble(record: IterationRecord, client: Any | None, static: bool = True) -> str:
    """The candidate's source: the LLM's when ``client`` is given and it gives a valid
    one (its exchange joins the proposal's transcript), else the deterministic one.
    ``static=False`` (the sandbox's own tests only) takes the LLM's source without the
    static check."""
    from sweeplab.agent.assembler import assemble, assemble_with_llm
    from sweeplab.agent.gate import static_check
    from sweeplab.agent.llm import LLMError

    model_cfg = record.proposal.candidate.model
    if client is None:
        return assemble(model_cfg)
    try:
        source, transcript = assemble_with_llm(model_cfg, client,
                                               static_check if static else None)
    except LLMError as exc:
        record.proposal.transcript.extend(
            [{**m, "phase": "assemble"} for m in exc.transcript]
            + [{"role": "note", "phase": "assemble", "content": f"the LLM gave no valid "
                f"source ({exc}); the deterministic assembler wrote it"}])
        record.assembler = "deterministic (LLM failed)"
        log.info("LLM assembly failed (%s); deterministic source instead", exc)
        return assemble(model_cfg)
    record.proposal.transcript.extend({**m, "phase": "assemble"} for m in transcript)
    record.assembler = "llm"
    return source


def _decide(planner: Any, history: list[IterationRecord], goal: Goal, budget_left: int) -> Decision:
    """Stop once the selected model (best selection score) reaches the target on the test
    set (what the goal is about); else ask the planner, without the target, so that a
    validation score at the target does not stop a search whose test score is short."""
    scored = [r for r in history if r.score is not None and r.test_score is not None]
    if scored:
        best = max(scored, key=lambda r: r.score)
        if best.test_score >= goal.target:
            return Decision("stop", f"target reached: test {goal.metric} of the selected "
                                    f"model (iteration {best.index}) {best.test_score:.4f} "
                                    f">= {goal.target:g}")
    return planner.decide(history, None, budget_left)


def _line(record: IterationRecord, goal: Goal) -> str:
    """One progress line per iteration."""
    params = record.summary.get("params")
    size = f", {params:,} params" if isinstance(params, int) else ""
    what = (record.error if record.status != "ok" else
            f"{selection_metric(goal.metric)} {record.score:.4f}, test {goal.metric} "
            f"{record.test_score:.4f}{size}")
    decision = record.decision or Decision("continue", "")
    return (f"[{record.index}] {record.proposal.source}: {record.status}: {what} -> "
            f"{decision.action} ({decision.reason}) in {record.seconds:.1f}s")
