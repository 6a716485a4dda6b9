"""The agent's real loop with an LLM (a scripted chat-completions server) planning and
writing every source: what test_loop.py and test_containment.py drive."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kernel import KERNEL

from sweeplab.agent.goal import parse_goal
from sweeplab.agent.llm import ChatClient
from sweeplab.agent.loop import AgentResult, AgentSettings, run_loop
from sweeplab.agent.planner import LLMPlanner, OptunaPlanner
from sweeplab.agent.registry import Registry


@dataclass
class LoopRun:
    """What a test checks after the loop: its result, its run directory, the lines it
    said and the offline planner that learnt from every iteration."""

    result: AgentResult
    run_dir: Path
    offline: OptunaPlanner
    lines: list[str] = field(default_factory=list)


def run_llm_loop(server: Any, run_dir: Path, data: Any, goal_text: str, iterations: int,
                 client: dict[str, Any], **settings: Any) -> LoopRun:
    """``run_loop`` on ``data`` toward ``goal_text`` with one seed, two epochs and the LLM
    at ``server`` writing the sources (``client``: ChatClient options; ``settings``:
    more AgentSettings; without kernel isolation here, ``unsafe_no_isolation``)."""
    goal = parse_goal(goal_text)
    settings.setdefault("unsafe_no_isolation", not KERNEL)
    config = AgentSettings(max_iterations=iterations, seeds=(0,), epochs=2, patience=1,
                           max_train=int(data.y_train.shape[0]), llm_base_url=server.url,
                           llm_model="m", llm_assemble=True, **settings)
    chat = ChatClient(server.url, "m", backoff=0.0, **client)
    offline = OptunaPlanner(data.input_shape, data.num_classes, 2, family=goal.family)
    planner = LLMPlanner(chat, goal_text, data.input_shape, data.num_classes, 2,
                         fallback=offline, target=goal.target, score_name="val_accuracy")
    run_dir.mkdir(parents=True)
    registry = Registry(run_dir, goal, config.public())
    run = LoopRun(None, run_dir, offline)  # type: ignore[arg-type]
    run.result = run_loop(goal, config, registry, planner, data, chat, say=run.lines.append)
    return run
