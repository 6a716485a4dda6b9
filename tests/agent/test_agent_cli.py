"""``sweeplab agent`` end to end: the offline planner on real digits, the registry, --keep,
bad goals, the LLM planner against a real scripted chat-completions server, and
``sweeplab analyze`` on the agent's run.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from chat_server import ScriptedServer, reply

from sweeplab.agent.goal import parse_goal
from sweeplab.cli.main import main
from sweeplab.errors import ConfigError

QUICK = ["--epochs", "8", "--seeds", "0", "--patience", "3"]


def _registry(out: Path) -> tuple[Path, dict]:
    (run,) = [p for p in out.iterdir() if p.is_dir()]
    return run, json.loads((run / "experiments" / "registry.json").read_text())


def test_goal_parsing_and_its_errors():
    goal = parse_goal("Design a small CNN for Fashion-MNIST targeting >85% accuracy")
    assert (goal.dataset, goal.metric, goal.target, goal.family) == (
        "fashion-mnist", "accuracy", 0.85, "cnn")
    assert goal.max_params == 100_000
    goal = parse_goal("an MLP on sklearn digits with macro F1 of 0.95 under 20k parameters")
    assert (goal.dataset, goal.metric, goal.target, goal.family, goal.max_params) == (
        "digits", "f1_macro", 0.95, "mlp", 20_000)
    with pytest.raises(ConfigError, match="could not find a target.*dataset=mnist"):
        parse_goal("a CNN for MNIST")


def test_offline_agent_reaches_a_target_on_digits_within_its_budget(tmp_path, capsys):
    out = tmp_path / "agent"
    goal = "Design an MLP for sklearn digits targeting >90% accuracy"
    assert main(["agent", "--goal", goal, "--max-iterations", "6", "--out_dir", str(out),
                 *QUICK]) == 0
    run, registry = _registry(out)
    assert registry["state"] == "done" and registry["settings"]["planner"] == "OptunaPlanner"
    best = registry["best"]
    assert best["test_score"] >= 0.9
    last = registry["iterations"][-1]
    assert last["decision"]["action"] == "stop" and "target reached" in last["decision"]["reason"]
    assert len(registry["iterations"]) <= 6
    for it in registry["iterations"]:
        assert it["proposal"]["candidate"]["model"]["layers"][0]["type"] == "flatten"  # MLP
        if it["status"] == "ok":
            assert it["validation"]["ok"] and it["summary"]["params"] > 0
            assert set(it["evaluation"]["aggregate"]) >= {"accuracy", "f1_macro", "roc_auc"}
    assert (run / "src" / "models" / "model.py").is_file()
    kept = sorted(p.name for p in (run / "src" / "models").glob("iter_*"))
    assert kept == [f"iter_{best['iteration']:03d}"]  # without --keep: the best only
    assert "best: iteration" in capsys.readouterr().out

    report = tmp_path / "report"
    assert main(["analyze", "--input_dir", str(out), "--output_dir", str(report)]) == 0
    text = (report / "report.md").read_text()
    assert f"Agent run {run.name}" in text and "target 0.9 reached" in text
    assert (report / "figs" / f"{run.name}_trajectory.png").stat().st_size > 1000
    assert (report / "figs" / f"{run.name}_confusion_matrix.png").is_file()


def test_keep_keeps_every_candidate(tmp_path):
    out = tmp_path / "agent"
    assert main(["agent", "--goal", "an MLP for digits with accuracy of 0.999",
                 "--max-iterations", "2", "--keep", "--out_dir", str(out), *QUICK]) == 0
    run, registry = _registry(out)
    assert len(registry["iterations"]) == 2
    assert registry["iterations"][-1]["decision"]["action"] == "stop"  # budget spent
    for it in registry["iterations"]:
        assert (run / "src" / "models" / f"iter_{it['index']:03d}" / "model.py").is_file()


def test_a_goal_it_cannot_read_is_exit_2_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "agent"
    assert main(["agent", "--goal", "make it better", "--out_dir", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "could not find a dataset and a target" in err
    assert not out.exists()


def test_llm_planner_proposals_and_prompts_are_registered(tmp_path):
    params = {"family": "mlp", "conv_blocks": 1, "channels": 8, "kernel_size": 3,
              "batchnorm": False, "pooling": "global", "hidden": 0, "mlp_layers": 1,
              "mlp_width": 64,
              "dropout": 0.0, "lr": 0.005}
    server = ScriptedServer([
        reply(json.dumps({"rationale": "a small MLP first", "params": params})),
        reply(json.dumps({"action": "stop", "reason": "good enough for a test"})),
    ])
    try:
        out = tmp_path / "agent"
        assert main(["agent", "--goal", "an MLP for digits targeting 99% accuracy",
                     "--llm-base-url", server.url, "--llm-model", "scripted",
                     "--max-iterations", "3", "--out_dir", str(out), *QUICK]) == 0
    finally:
        server.close()
    _, registry = _registry(out)
    assert registry["settings"]["planner"] == "LLMPlanner"
    (only,) = registry["iterations"]
    assert only["proposal"]["source"] == "llm" and only["proposal"]["params"]["mlp_width"] == 64
    roles = [m["role"] for m in only["proposal"]["transcript"]]
    assert "system" in roles and "assistant" in roles
    assert only["decision"] == {"action": "stop", "reason": "good enough for a test"}
    assert "digits" in json.dumps(server.bodies()[0]["messages"])


def test_a_parameter_budget_refuses_proposals_before_any_work(tmp_path):
    out = tmp_path / "agent"
    goal = "a CNN for digits with under 3k parameters targeting 99% accuracy"
    assert main(["agent", "--goal", goal, "--max-iterations", "2", "--out_dir", str(out),
                 "--epochs", "2", "--seeds", "0"]) == 0
    _, registry = _registry(out)
    assert len(registry["iterations"]) == 2
    for it in registry["iterations"]:
        assert it["status"] != "ok" or it["summary"]["params"] <= 3_000
    for refused in registry["rejected"]:
        assert "exceed the goal's budget of 3,000" in refused["error"]
        assert not refused["validation"] and not refused["evaluation"]  # no work was done


def test_an_interrupted_agent_keeps_every_finished_iteration(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "agent"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sweeplab", "agent", "--goal", "an MLP for digits targeting 100%",
         "--max-iterations", "50", "--epochs", "20", "--seeds", "0", "--out_dir", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        found = list(out.glob("run_*/experiments/registry.json"))
        if found and json.loads(found[0].read_text())["iterations"]:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    _, registry = _registry(out)
    assert registry["state"] == "interrupted" and len(registry["iterations"]) >= 1
    assert "registry holds every finished iteration" in err
