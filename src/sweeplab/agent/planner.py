"""What to try next: the offline planner (Optuna TPE) and the LLM planner.

A planner has three methods the loop calls: ``propose(history) -> Proposal`` before an
iteration, ``observe(record)`` once the iteration is scored (``record.score`` is the goal
metric, maximised, or None when the candidate was invalid or failed) and
``decide(history, target, budget_left) -> Decision`` after it.

:class:`OptunaPlanner` runs a seeded TPE study (Bergstra et al., "Algorithms for
Hyper-Parameter Optimization", NeurIPS 2011) over :data:`sweeplab.agent.space.SPACE` by
ask/tell, so the same seed and the same scores give the same proposals.
:class:`LLMPlanner` asks an LLM for a point of the same space, checked against the same
ranges, and feeds every scored point into the TPE study too: when the LLM fails, the
offline search that takes over has learnt from everything tried so far.
"""

from __future__ import annotations

import inspect
import json
import math
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.samplers import TPESampler
from optuna.trial import TrialState

from sweeplab.agent.llm import (
    ChatClient,
    DecisionReply,
    LLMError,
    Message,
    candidate_schema,
    decision_schema,
    proposal_model,
)
from sweeplab.agent.records import Decision, IterationRecord, Proposal
from sweeplab.agent.space import (
    SPACE,
    Candidate,
    build_candidate,
    point_model,
    space_dims,
    validated,
)
from sweeplab.errors import ConfigError


def _fmt(value: float) -> str:
    """A score as people write it: 0.87, 0.8734."""
    return f"{value:.4g}"


def _finite(score: float | None) -> float | None:
    """``score``, or None when it is missing or not finite (a failed candidate)."""
    return None if score is None or not math.isfinite(score) else float(score)


def best_score(history: list[IterationRecord]) -> float | None:
    """The best (largest) score in ``history``, or None when nothing was scored."""
    scores = [s for s in (_finite(r.score) for r in history) if s is not None]
    return max(scores) if scores else None


def offline_decision(history: list[IterationRecord], target: float | None,
                     budget_left: int) -> Decision:
    """The rule without an LLM: stop at the target or when the budget is spent; "refine"
    when the last iteration raised the best score (short of the target); else continue."""
    best = best_score(history)
    short = f", short of target {_fmt(target)}" if target is not None else ""
    if target is not None and best is not None and best >= target:
        return Decision("stop", f"target reached: best {_fmt(best)} >= {_fmt(target)}")
    if budget_left <= 0:
        what = f"best {_fmt(best)}{short}" if best is not None else "nothing scored"
        return Decision("stop", f"iteration budget spent: {what}")
    if not history:
        return Decision("continue", "no iteration yet")
    last = _finite(history[-1].score)
    before = best_score(history[:-1])
    if last is not None and (before is None or last > before):
        was = f" (from {_fmt(before)})" if before is not None else ""
        return Decision("refine", f"best improved to {_fmt(last)}{was}{short}")
    if last is None:
        return Decision("continue", f"last iteration {history[-1].status}; best "
                        f"{_fmt(best) if best is not None else 'none yet'}{short}")
    return Decision("continue", f"no improvement: last {_fmt(last)}, best {_fmt(best)}{short}")


def check_params(params: Any, family: str | None = None) -> dict[str, Any]:
    """``params`` as a point of the space (:class:`~sweeplab.agent.space.SpacePoint`,
    ``family`` pinned when given), in its order; one ``ValueError`` naming every missing,
    unknown (with what it likely meant) or invalid key."""
    return validated(point_model(family), params).model_dump()


BASELINE: dict[str, Any] = {
    "family": "cnn", "conv_blocks": 2, "channels": 16, "kernel_size": 3, "batchnorm": True,
    "pooling": "flatten", "hidden": 32, "mlp_layers": 2, "mlp_width": 64, "dropout": 0.1,
    "lr": 1e-3,
}
"""The first trial: a conventional small classifier (two conv blocks of 16 and 32
channels with batch norm and max-pooling, a 32-unit dense layer, Adam at 1e-3; as an MLP,
two layers of 64), as a researcher starts from a baseline that is known to train rather
than from a random point. As a CNN: 55k parameters on 28x28 images, 71k on 32x32x3."""


class OptunaPlanner:
    """Seeded TPE over :data:`SPACE` by ask/tell (in memory; Optuna's logging silenced).

    ``family`` (from the goal, e.g. "cnn") pins that key: it is still a parameter of
    every trial, with one choice. Failed candidates are told as ``TrialState.FAIL``.
    With ``baseline`` this planner's first proposal is :data:`BASELINE` (its family
    pinned when the goal names one; a trial like any other, so TPE learns from it) unless
    the study already holds a scored trial (points an LLM proposed); the first
    ``n_startup_trials`` trials are random, then TPE.
    """

    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, epochs: int,
                 seed: int = 0, family: str | None = None, n_startup_trials: int = 5,
                 baseline: bool = True):
        families = SPACE["family"]
        if family is not None and family not in families:
            raise ConfigError("family", family, f"one of {', '.join(families)}")
        self.input_shape = tuple(input_shape)
        self.num_classes = num_classes
        self.epochs = epochs
        self.seed = seed
        self.family = family
        self.n_startup_trials = n_startup_trials
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.study = optuna.create_study(
            direction="maximize",
            sampler=TPESampler(seed=seed, n_startup_trials=n_startup_trials))
        self.distributions = self._distributions()
        self._pending: list[tuple[Proposal, optuna.Trial]] = []
        self._baseline = baseline

    def _distributions(self) -> dict[str, BaseDistribution]:
        """One Optuna distribution per key of :data:`SPACE`, in its order."""
        out: dict[str, BaseDistribution] = {}
        for dim in space_dims():
            if dim.name == "family" and self.family is not None:
                out[dim.name] = CategoricalDistribution((self.family,))
            elif dim.kind == "categorical":
                out[dim.name] = CategoricalDistribution(dim.choices)
            elif dim.kind == "int":
                out[dim.name] = IntDistribution(int(dim.low), int(dim.high), log=dim.log)
            else:
                out[dim.name] = FloatDistribution(dim.low, dim.high, log=dim.log)
        return out

    def propose(self, history: list[IterationRecord]) -> Proposal:
        """The next trial's point, built into a candidate (``history`` is not needed:
        the study has every observed score)."""
        done = len(self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
        baseline, self._baseline = self._baseline and done == 0, False
        if baseline:
            self.study.enqueue_trial({**BASELINE, "family": self.family or BASELINE["family"]})
        trial = self.study.ask(self.distributions)
        params = {name: trial.params[name] for name in self.distributions}
        phase = "random start-up" if done < self.n_startup_trials else "TPE"
        if baseline:
            phase = "baseline: a conventional starting point"
        candidate = self._build(params, f"Optuna trial {trial.number} ({phase})")
        proposal = Proposal(candidate, [], params, source="optuna")
        self._pending.append((proposal, trial))
        return proposal

    def _build(self, params: dict[str, Any], rationale: str) -> Candidate:
        """The candidate ``params`` describe, with ``rationale``."""
        candidate = build_candidate(params, self.input_shape, self.num_classes, self.epochs)
        return candidate.model_copy(update={"rationale": rationale})

    def observe(self, record: IterationRecord) -> None:
        """Tell the study how the record's proposal scored.

        A proposal of this planner completes its trial; one made elsewhere with a space
        point (an LLM's) is added with :meth:`add_external`; one without is ignored.
        """
        for i, (proposal, trial) in enumerate(self._pending):
            if proposal is record.proposal:
                del self._pending[i]
                score = _finite(record.score)
                if score is None:
                    self.study.tell(trial, state=TrialState.FAIL)
                else:
                    self.study.tell(trial, score)
                return
        if record.proposal.params is not None:
            self.add_external(record.proposal.params, record.score)

    def add_external(self, params: dict[str, Any], score: float | None) -> None:
        """Add a point proposed elsewhere and its score (None: failed) to the study, with
        this planner's distributions, so the TPE learns from it."""
        try:
            point = check_params(params, self.family)
        except ValueError as exc:
            raise ValueError(f"external point rejected: {exc}") from None
        score = _finite(score)
        self.study.add_trial(optuna.trial.create_trial(
            params=point, distributions=self.distributions,
            state=TrialState.FAIL if score is None else TrialState.COMPLETE,
            value=score))

    def decide(self, history: list[IterationRecord], target: float | None,
               budget_left: int) -> Decision:
        """:func:`offline_decision`."""
        return offline_decision(history, target, budget_left)


ROLE = ("You are a careful machine-learning researcher. You design image classifiers "
        "that reach a goal within a small budget of quick training runs, learning from "
        "every result so far.")


class LLMPlanner:
    """Proposals and decisions from an LLM, with ``fallback`` (an :class:`OptunaPlanner`)
    for an iteration where the LLM fails and learning from every scored point.

    The LLM picks a point of :data:`SPACE` (a JSON schema with its enums and ranges,
    checked locally: an invalid reply is re-prompted with the error). The family is
    pinned to the fallback's when the goal names one. Every prompt and reply goes into
    the proposal's transcript (the decision's into the last record's, tagged
    ``phase: decide``), so the registry keeps the whole exchange.

    ``target`` (the goal's level) and ``score_name`` (what a history score is, e.g.
    ``val_accuracy``) are shown in the prompts; a ``decide`` call without a target (the
    agent's loop checks the target itself, on the test set) still shows this one.
    """

    def __init__(self, client: ChatClient, goal_text: str, input_shape: tuple[int, int, int],
                 num_classes: int, epochs: int, fallback: OptunaPlanner,
                 target: float | None = None, score_name: str = "the goal's metric"):
        self.client = client
        self.goal_text = goal_text
        self.target = target
        self.score_name = score_name
        self.input_shape = tuple(input_shape)
        self.num_classes = num_classes
        self.epochs = epochs
        self.fallback = fallback
        self.family = fallback.family
        self.schema = candidate_schema(self.family)

    # --- propose ---------------------------------------------------------------------

    def propose(self, history: list[IterationRecord]) -> Proposal:
        """The LLM's next point; the fallback's, saying so, when the LLM fails."""
        try:
            (params, candidate), transcript = self.client.complete_json(
                self.propose_messages(history), self.schema, "proposal", self._parse)
        except LLMError as exc:
            proposal = self.fallback.propose(history)
            proposal.transcript = _tag(exc.transcript, "propose") + [{
                "role": "note", "phase": "propose",
                "content": f"the LLM failed ({exc}); this proposal is the offline "
                           "planner's (Optuna TPE)"}]
            proposal.source = "optuna-fallback"
            return proposal
        return Proposal(candidate, _tag(transcript, "propose"), params, source="llm")

    def _parse(self, reply: dict[str, Any]) -> tuple[dict[str, Any], Candidate]:
        """The space point and candidate of a reply; ``ValueError`` when it is invalid."""
        proposal = validated(proposal_model(self.family), reply)
        params = proposal.params.model_dump()
        candidate = build_candidate(params, self.input_shape, self.num_classes, self.epochs)
        return params, candidate.model_copy(update={"rationale": proposal.rationale.strip()})

    def propose_messages(self, history: list[IterationRecord]) -> list[Message]:
        """The system prompt (role, goal, space) and the history, asking for a point."""
        dims = space_dims()
        lines = [f"- {d.describe()}" for d in dims]
        if self.family is not None:
            lines[[d.name for d in dims].index("family")] = (
                f'- family: "{self.family}" (fixed by the goal)')
        system = "\n".join([
            ROLE, "",
            f"Goal: {self.goal_text}",
            f"Data: input shape (C, H, W) = {list(self.input_shape)}, "
            f"{self.num_classes} classes. Each candidate is trained for {self.epochs} "
            f"epochs over a few seeds and scored on {self.score_name} (mean over seeds, "
            "higher is better).",
            "",
            "You choose one point of this search space per turn (every key is required; "
            "keys that do not apply to the chosen family are ignored):",
            *lines, "",
            "How a point becomes a model:",
            inspect.cleandoc(build_candidate.__doc__ or "").split("\n\n", 1)[-1], "",
            'Reply with only a JSON object: {"rationale": "<one or two sentences: why this '
            'point, given the results so far>", "params": {<every key above>}}.'])
        return [{"role": "system", "content": system},
                {"role": "user", "content": _history_prompt(history) + "\n\nPropose the "
                 "next point: improve on the best result, learn from the failures and do "
                 "not repeat a point already tried."}]

    # --- observe ---------------------------------------------------------------------

    def observe(self, record: IterationRecord) -> None:
        """Feed the scored point to the fallback's study (its own proposal or the LLM's)."""
        self.fallback.observe(record)

    # --- decide ----------------------------------------------------------------------

    def decide(self, history: list[IterationRecord], target: float | None,
               budget_left: int) -> Decision:
        """The LLM's decision, never past the budget; the offline rule if the LLM fails."""
        if budget_left <= 0:
            return offline_decision(history, target, budget_left)
        try:
            decision, transcript = self.client.complete_json(
                self.decide_messages(history, target, budget_left), decision_schema(),
                "decision", _parse_decision)
        except LLMError as exc:
            _attach(history, _tag(exc.transcript, "decide"))
            rule = offline_decision(history, target, budget_left)
            return Decision(rule.action, f"{rule.reason} (offline rule: the LLM failed: "
                            f"{str(exc)[:200]})")
        _attach(history, _tag(transcript, "decide"))
        return decision

    def decide_messages(self, history: list[IterationRecord], target: float | None,
                        budget_left: int) -> list[Message]:
        """The prompt asking whether to continue, refine or stop."""
        target = target if target is not None else self.target
        system = "\n".join([
            ROLE, "",
            f"Goal: {self.goal_text}",
            f"Target score: {_fmt(target) if target is not None else 'none given'} "
            f"(higher is better; scores are {self.score_name}). Iterations left in the "
            f"budget: {budget_left}.",
            "",
            'After each iteration you decide: "continue" (keep searching), "refine" (the '
            'last result is promising: search close to it) or "stop" (the goal is met, or '
            "more iterations are unlikely to help).",
            'Reply with only a JSON object: {"action": "continue" | "refine" | "stop", '
            '"reason": "<one sentence with the numbers that justify it>"}.'])
        return [{"role": "system", "content": system},
                {"role": "user", "content": _history_prompt(history) + "\n\nDecide."}]


def _parse_decision(reply: dict[str, Any]) -> Decision:
    """A decision reply as a :class:`Decision`; ``ValueError`` when it is invalid."""
    decision = validated(DecisionReply, reply)
    return Decision(decision.action, " ".join(decision.reason.split())[:300]
                    or "(no reason given)")


def history_entry(record: IterationRecord) -> dict[str, Any]:
    """One iteration as the LLM sees it: point, status, score, error, size, decision."""
    params = record.proposal.params
    if params is not None:  # 4 significant digits are plenty to read a float by
        params = {k: float(f"{v:.4g}") if isinstance(v, float) else v
                  for k, v in params.items()}
    entry: dict[str, Any] = {"iteration": record.index, "source": record.proposal.source,
                             "params": params, "status": record.status,
                             "score": None if record.score is None else round(record.score, 4)}
    if record.error:
        entry["error"] = " ".join(record.error.split())[:300]
    if isinstance(record.summary.get("params"), int):
        entry["n_params"] = record.summary["params"]
    if record.decision is not None:
        entry["decision"] = record.decision.action
    return entry


def _history_prompt(history: list[IterationRecord]) -> str:
    """The history as compact JSON, one iteration a line, and the best so far."""
    if not history:
        return "No iterations yet."
    lines = "\n".join(json.dumps(history_entry(r), separators=(",", ":")) for r in history)
    text = ("Results so far (one JSON object per iteration; score is the selection score, "
            f"null when the candidate was invalid or failed):\n{lines}")
    best = best_score(history)
    if best is not None:
        index = next(r.index for r in history if _finite(r.score) == best)
        text += f"\nBest so far: iteration {index}, score {_fmt(best)}."
    last = history[-1].decision
    if last is not None:
        text += f"\nLast decision: {last.action} ({last.reason})."
    return text


def _tag(transcript: list[Message], phase: str) -> list[Message]:
    """``transcript`` with each entry tagged with the planner's ``phase``."""
    return [{**entry, "phase": phase} for entry in transcript]


def _attach(history: list[IterationRecord], transcript: list[Message]) -> None:
    """Append a decision's exchange to the last record's transcript (it is registered
    after the decision, so the registry keeps it)."""
    if history and transcript:
        history[-1].proposal.transcript.extend(transcript)
