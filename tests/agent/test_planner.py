"""The planners: seeded TPE over the space, the offline decision rule, and the LLM planner
against a real scripted chat-completions server (see ``test_llm.py``)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch
from chat_server import ScriptedServer, reply, status
from optuna.trial import TrialState
from torch import nn

from sweeplab.agent.llm import ChatClient
from sweeplab.agent.planner import (
    BASELINE,
    LLMPlanner,
    OptunaPlanner,
    check_params,
    offline_decision,
)
from sweeplab.agent.records import Decision, IterationRecord, Proposal
from sweeplab.agent.space import SPACE, Candidate, ModelConfig, build_candidate
from sweeplab.errors import ConfigError

SHAPE = (1, 28, 28)
GOAL = "Design a small CNN for Fashion-MNIST targeting >85% accuracy"


def torch_model(config: ModelConfig) -> nn.Module:
    """The layer list as a torch module (lazy layers infer the input sizes)."""
    make = {
        "conv2d": lambda p: nn.LazyConv2d(p["out_channels"], p["kernel_size"],
                                          p.get("stride", 1), p.get("padding", 0)),
        "linear": lambda p: nn.LazyLinear(p["out_features"]),
        "relu": lambda p: nn.ReLU(), "gelu": lambda p: nn.GELU(),
        "maxpool2d": lambda p: nn.MaxPool2d(p["kernel_size"], p.get("stride")),
        "avgpool2d": lambda p: nn.AvgPool2d(p["kernel_size"], p.get("stride")),
        "adaptiveavgpool2d": lambda p: nn.AdaptiveAvgPool2d(p["output_size"]),
        "batchnorm2d": lambda p: nn.LazyBatchNorm2d(),
        "batchnorm1d": lambda p: nn.LazyBatchNorm1d(),
        "dropout": lambda p: nn.Dropout(p["p"]), "flatten": lambda p: nn.Flatten(),
    }
    return nn.Sequential(*(make[layer.type](layer.params) for layer in config.layers))


def score_of(params: dict[str, Any]) -> float:
    """A made-up deterministic objective that prefers wide CNNs and lr near 3e-3."""
    bonus = 0.2 if params["family"] == "cnn" else 0.0
    return bonus + params["channels"] / 100 - abs(params["lr"] - 3e-3) * 10


def run(planner: Any, n: int, score=score_of) -> list[IterationRecord]:
    """``n`` iterations of propose / observe / decide with ``score`` as the evaluation."""
    history: list[IterationRecord] = []
    for index in range(1, n + 1):
        proposal = planner.propose(history)
        record = IterationRecord(index, proposal, score=score(proposal.params))
        planner.observe(record)
        history.append(record)
        record.decision = planner.decide(history, 0.99, n - index)
    return history


def record(index: int, score: float | None, status: str = "ok") -> IterationRecord:
    """A record with only a score (for the decision rule)."""
    params = {"family": "cnn", "conv_blocks": 1, "channels": 8, "kernel_size": 3,
              "batchnorm": False, "pooling": "flatten", "hidden": 0, "mlp_layers": 1,
              "mlp_width": 32,
              "dropout": 0.0, "lr": 1e-3}
    candidate = build_candidate(params, SHAPE, 10, 1)
    return IterationRecord(index, Proposal(candidate, params=params), status=status,
                           score=score, error=None if status == "ok" else "boom")


# --- OptunaPlanner --------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 8, 8), (3, 3, 3)])
def test_proposals_are_valid_candidates_that_run(shape):
    planner = OptunaPlanner(shape, 7, epochs=2, seed=3, n_startup_trials=3)
    history = run(planner, 8)
    for rec in history:
        proposal = rec.proposal
        assert isinstance(proposal.candidate, Candidate) and proposal.source == "optuna"
        assert list(proposal.params) == list(SPACE)
        assert check_params(proposal.params) == proposal.params
        assert proposal.candidate.train.epochs == 2
        assert proposal.candidate.train.lr == proposal.params["lr"]
        config = ModelConfig.model_validate(proposal.candidate.model.model_dump())
        out = torch_model(config).eval()(torch.zeros(2, *shape))
        assert out.shape == (2, 7)
    families = {rec.proposal.params["family"] for rec in history}
    assert families == {"cnn", "mlp"}  # both explored when not pinned


def test_same_seed_and_scores_give_the_same_proposals():
    def points(seed: int) -> list[dict]:
        planner = OptunaPlanner(SHAPE, 10, epochs=1, seed=seed, n_startup_trials=3)
        return [rec.proposal.params for rec in run(planner, 8)]

    first = points(0)
    assert first == points(0)
    assert first != points(1)


def test_tpe_takes_over_after_the_startup_trials_and_failures_are_failed_trials():
    planner = OptunaPlanner(SHAPE, 10, epochs=1, seed=0, n_startup_trials=2)
    history = run(planner, 4, score=lambda p: None if p["family"] == "mlp" else 0.5)
    states = [t.state for t in planner.study.trials]
    expected = [TrialState.FAIL if r.proposal.params["family"] == "mlp"
                else TrialState.COMPLETE for r in history]
    assert states == expected
    assert "baseline" in history[0].proposal.candidate.rationale
    assert "random start-up" in history[1].proposal.candidate.rationale


def test_the_first_proposal_is_the_baseline_unless_something_is_known():
    pinned = OptunaPlanner(SHAPE, 10, epochs=1, seed=5, family="mlp")
    first, second = (pinned.propose([]) for _ in range(2))
    assert first.params == {**BASELINE, "family": "mlp"} and second.params != first.params
    assert "baseline" in first.candidate.rationale
    assert "baseline" not in second.candidate.rationale
    informed = OptunaPlanner(SHAPE, 10, epochs=1, seed=5)
    informed.add_external({**BASELINE, "channels": 32}, 0.8)  # e.g. an LLM's point
    assert informed.propose([]).params != BASELINE
    assert OptunaPlanner(SHAPE, 10, epochs=1, seed=5, baseline=False).propose([]).params \
        != BASELINE


def test_family_is_pinned_but_still_a_parameter():
    planner = OptunaPlanner(SHAPE, 10, epochs=1, seed=0, family="cnn", n_startup_trials=2)
    history = run(planner, 6)
    assert {rec.proposal.params["family"] for rec in history} == {"cnn"}
    assert all(t.params["family"] == "cnn" for t in planner.study.trials)
    assert all(rec.proposal.candidate.model.layers[0].type == "conv2d" for rec in history)
    with pytest.raises(ConfigError, match="invalid family=rnn: one of cnn, mlp"):
        OptunaPlanner(SHAPE, 10, epochs=1, family="rnn")


def test_external_points_join_the_study_and_count_for_tpe():
    planner = OptunaPlanner(SHAPE, 10, epochs=1, seed=0, n_startup_trials=2)
    point = record(1, 0.8).proposal.params
    planner.add_external(point, 0.8)
    planner.add_external({**point, "channels": 32}, None)
    planner.add_external({**point, "channels": 16}, 0.7)
    trials = planner.study.trials
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.FAIL,
                                         TrialState.COMPLETE]
    assert trials[0].params == point and trials[0].value == 0.8
    assert "(TPE)" in planner.propose([]).candidate.rationale  # 2 complete: start-up done
    with pytest.raises(ValueError, match=r"external point rejected: channels=100: Input "
                                         r"should be less than or equal to 64"):
        planner.add_external({**point, "channels": 100}, 0.5)


def test_check_params_lists_every_problem():
    good = record(1, None).proposal.params
    assert check_params({**good, "channels": 16.0})["channels"] == 16
    bad = {**good, "channels": 4, "kernel_size": 4, "batchnorm": "yes", "chanels": 16,
           "extra": 1}
    del bad["lr"]
    with pytest.raises(ValueError) as info:
        check_params(bad)
    message = str(info.value)
    assert "\n" not in message
    for part in ("missing key(s) lr",
                 "unknown key(s) chanels (did you mean channels?), extra; allowed: family, "
                 "conv_blocks, channels,",
                 "channels=4: Input should be greater than or equal to 8",
                 "kernel_size=4: Input should be 3 or 5",
                 'batchnorm="yes": Input should be False or True'):
        assert part in message
    with pytest.raises(ValueError, match="family=\"cnn\": Input should be 'mlp'"):
        check_params(good, family="mlp")
    with pytest.raises(ValueError, match="Input should be a valid dictionary"):
        check_params([1, 2])


def test_offline_decision_rules():
    assert offline_decision([record(1, 0.8), record(2, 0.87)], 0.85, 3) == Decision(
        "stop", "target reached: best 0.87 >= 0.85")
    assert offline_decision([record(1, 0.9)], 0.85, 0).action == "stop"
    assert offline_decision([record(1, 0.8)], 0.85, 0) == Decision(
        "stop", "iteration budget spent: best 0.8, short of target 0.85")
    assert offline_decision([record(1, 0.7), record(2, 0.8)], 0.85, 2) == Decision(
        "refine", "best improved to 0.8 (from 0.7), short of target 0.85")
    assert offline_decision([record(1, 0.8), record(2, 0.7)], 0.85, 2) == Decision(
        "continue", "no improvement: last 0.7, best 0.8, short of target 0.85")
    assert offline_decision([record(1, 0.8), record(2, None, "invalid")], 0.85, 2) == Decision(
        "continue", "last iteration invalid; best 0.8, short of target 0.85")
    assert offline_decision([record(1, 0.8)], None, 2).action == "refine"  # first score
    assert offline_decision([record(1, 0.8), record(2, 0.8)], None, 2).action == "continue"


# --- LLMPlanner ------------------------------------------------------------------------

LLM_POINT = {"family": "cnn", "conv_blocks": 2, "channels": 32, "kernel_size": 3,
             "batchnorm": True, "pooling": "global", "hidden": 128, "mlp_layers": 1,
             "mlp_width": 64,
             "dropout": 0.25, "lr": 0.002}


def proposal_reply(**changes: Any) -> tuple:
    """A scripted reply proposing :data:`LLM_POINT` with ``changes``."""
    return reply(json.dumps({"rationale": "two conv blocks are enough for 28x28",
                             "params": {**LLM_POINT, **changes}}))


def llm_planner(server: ScriptedServer, family: str | None = "cnn") -> LLMPlanner:
    chat = ChatClient(server.url, "planner-model", timeout=0.5, retries=1, backoff=0.0)
    offline = OptunaPlanner(SHAPE, 10, epochs=3, seed=0, family=family)
    return LLMPlanner(chat, GOAL, SHAPE, 10, 3, fallback=offline)


def test_llm_proposal_comes_from_the_servers_params_and_feeds_the_fallback(serve):
    server = serve(proposal_reply(), proposal_reply(channels=48))
    planner = llm_planner(server)
    proposal = planner.propose([])
    assert proposal.source == "llm" and proposal.params == LLM_POINT
    assert proposal.candidate == build_candidate(LLM_POINT, SHAPE, 10, 3).model_copy(
        update={"rationale": "two conv blocks are enough for 28x28"})
    body = server.bodies()[0]
    system = body["messages"][0]["content"]
    assert GOAL in system and "channels: integer in [8, 64] (log scale)" in system
    assert 'family: "cnn" (fixed by the goal)' in system
    schema = body["response_format"]["json_schema"]["schema"]
    params = schema["$defs"][schema["properties"]["params"]["$ref"].split("/")[-1]]
    assert params["properties"]["family"]["const"] == "cnn"
    assert [m["role"] for m in proposal.transcript] == ["system", "user", "assistant"]
    assert all(m["phase"] == "propose" for m in proposal.transcript)

    first = IterationRecord(1, proposal, score=0.81)
    planner.observe(first)
    (trial,) = planner.fallback.study.trials
    assert trial.params == LLM_POINT and trial.value == 0.81

    second = planner.propose([first])
    assert second.params["channels"] == 48
    history_prompt = server.bodies()[1]["messages"][1]["content"]
    assert '"iteration":1' in history_prompt and '"score":0.81' in history_prompt
    assert "Best so far: iteration 1, score 0.81." in history_prompt


def test_llm_out_of_range_or_wrong_family_is_reprompted(serve):
    server = serve(proposal_reply(channels=100), proposal_reply(family="mlp"), proposal_reply())
    proposal = llm_planner(server).propose([])
    assert proposal.params == LLM_POINT and proposal.source == "llm"
    bodies = server.bodies()
    assert ("params.channels=100: Input should be less than or equal to 64"
            in bodies[1]["messages"][-1]["content"])
    assert ("params.family=\"mlp\": Input should be 'cnn'"
            in bodies[2]["messages"][-1]["content"])


def test_llm_failing_falls_back_to_optuna_and_says_so(serve):
    server = serve(*[status(500, "model crashed")] * 2)
    planner = llm_planner(server)
    proposal = planner.propose([])
    assert len(server.requests) == 2  # one try and one retry
    assert proposal.source == "optuna-fallback"
    assert check_params(proposal.params, "cnn") == proposal.params
    note = proposal.transcript[-1]
    assert note["role"] == "note" and "HTTP 500: model crashed" in note["content"]
    assert "offline planner" in note["content"]
    planner.observe(IterationRecord(1, proposal, score=0.5))
    (trial,) = planner.fallback.study.trials
    assert trial.state == TrialState.COMPLETE and trial.value == 0.5  # its own trial, told


def test_llm_decides_but_never_past_the_budget(serve):
    server = serve(reply(json.dumps({"action": "refine", "reason": "0.81 is close to 0.85"})),
                   status(500), status(500))
    planner = llm_planner(server)
    history = [record(1, 0.7), record(2, 0.81)]
    assert planner.decide(history, 0.85, 3) == Decision("refine", "0.81 is close to 0.85")
    prompt = server.bodies()[0]
    assert prompt["response_format"]["json_schema"]["name"] == "decision"
    assert "Iterations left in the budget: 3." in prompt["messages"][0]["content"]
    decided = [m for m in history[-1].proposal.transcript if m["phase"] == "decide"]
    assert decided[-1]["role"] == "assistant" and "refine" in decided[-1]["content"]

    assert planner.decide(history, 0.85, 0) == Decision(
        "stop", "iteration budget spent: best 0.81, short of target 0.85")
    assert len(server.requests) == 1  # no request at budget 0

    fallback = planner.decide(history, 0.85, 2)  # the LLM fails: the offline rule
    assert fallback.action == "refine"
    assert fallback.reason.startswith("best improved to 0.81 (from 0.7), short of target "
                                      "0.85 (offline rule: the LLM failed: ")


def test_llm_invalid_action_is_reprompted(serve):
    server = serve(reply('{"action": "pause", "reason": "tired"}'),
                   reply('{"action": "stop", "reason": "0.9 >= 0.85"}'))
    decision = llm_planner(server).decide([record(1, 0.9)], 0.85, 4)
    assert decision == Decision("stop", "0.9 >= 0.85")
    assert ("action=\"pause\": Input should be 'continue', 'refine' or 'stop'"
            in server.bodies()[1]["messages"][-1]["content"])


def test_llm_prompts_name_the_goals_target_and_what_a_score_is(serve):
    # the loop calls decide() without a target (it checks the target on the test set
    # itself); the LLM is still told the goal's level and that scores are validation scores
    server = serve(proposal_reply(), reply('{"action": "continue", "reason": "0.8 < 0.85"}'))
    chat = ChatClient(server.url, "planner-model", timeout=0.5, retries=0)
    planner = LLMPlanner(chat, GOAL, SHAPE, 10, 3, fallback=OptunaPlanner(SHAPE, 10, 3),
                         target=0.85, score_name="val_accuracy")
    planner.propose([])
    assert planner.decide([record(1, 0.8)], None, 3).action == "continue"
    propose, decide = (body["messages"][0]["content"] for body in server.bodies())
    assert "scored on val_accuracy" in propose
    assert "Target score: 0.85 (higher is better; scores are val_accuracy)" in decide
