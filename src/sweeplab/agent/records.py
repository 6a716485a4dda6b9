"""The record of one iteration of the agent, shared by the planner, the loop and the registry."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from sweeplab.agent.space import Candidate

Status = Literal["ok", "invalid", "failed"]
Action = Literal["continue", "refine", "stop"]


@dataclass
class Decision:
    """What to do after an iteration, and why."""

    action: Action
    reason: str


@dataclass
class Proposal:
    """A candidate from a planner, with the exchange that produced it (LLM prompts and
    replies; empty for the offline planner) and the search-space point, if it has one."""

    candidate: Candidate
    transcript: list[dict[str, Any]] = field(default_factory=list)
    params: dict[str, Any] | None = None
    source: str = "optuna"


@dataclass
class IterationRecord:
    """One iteration: the proposal, what validation and evaluation found, the decision.

    ``score`` is what the planner optimises: the goal's metric on the validation set
    where the evaluation has it (accuracy), else on the test set; ``test_score`` is the
    goal's metric on the test set (both means over seeds). None when the candidate never
    got that far; ``status`` says why. ``assembler`` says who wrote the source:
    ``deterministic``, ``llm``, or ``deterministic (LLM failed)`` when the LLM assembly
    path was asked for and gave no valid source.
    """

    index: int
    proposal: Proposal
    status: Status = "ok"
    score: float | None = None
    test_score: float | None = None
    error: str | None = None
    validation: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    evaluation: dict[str, Any] = field(default_factory=dict)
    decision: Decision | None = None
    assembler: str = "deterministic"
    seconds: float = 0.0
