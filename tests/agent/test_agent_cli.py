"""``sweeplab agent`` end to end: the offline planner on real digits, the registry, --keep,
bad goals, the LLM planner against a real scripted chat-completions server, and
``sweeplab analyze`` on the agent's run.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from chat_server import ScriptedServer, reply
from kernel import CLI_FLAGS

from sweeplab.agent.goal import parse_goal
from sweeplab.agent.sandbox import plain_isolation, probe_isolation
from sweeplab.cli.main import main
from sweeplab.errors import ConfigError

QUICK = ["--epochs", "8", "--seeds", "0", "--patience", "3", *CLI_FLAGS]


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


@pytest.mark.parametrize(("text", "understood"), [
    ("Design a small CNN for digits targeting >90% accuracy",
     ("digits", "accuracy", 0.9, "cnn", 100_000)),
    ("MLP for MNIST reaching 98 percent accuracy", ("mnist", "accuracy", 0.98, "mlp", None)),
    ("fashion mnist, 0.9 accuracy", ("fashion-mnist", "accuracy", 0.9, None, None)),
    ("CIFAR-10 convnet with top-1 accuracy 0.7", ("cifar-10", "accuracy", 0.7, "cnn", None)),
    # "f1 micro" also starts with "f1": the specific form wins
    ("digits F1-micro >= 0.95", ("digits", "f1_micro", 0.95, None, None)),
    ("digits micro-averaged F1 of 0.95", ("digits", "f1_micro", 0.95, None, None)),
    ("digits F1 score >= .9", ("digits", "f1_macro", 0.9, None, None)),
    ("digits precision-recall AUC of 0.95", ("digits", "pr_auc", 0.95, None, None)),
    ("digits ROC AUC > 0.99", ("digits", "roc_auc", 0.99, None, None)),
    ("digits with macro recall of 0.9", ("digits", "recall", 0.9, None, None)),
    # an error rate is the complement of accuracy
    ("an MLP on digits with a test error below 5%", ("digits", "accuracy", 0.95, "mlp", None)),
    ("tiny CNN for digits, fewer than 5,000 parameters, 90% accuracy",
     ("digits", "accuracy", 0.9, "cnn", 5_000)),
])
def test_goal_phrasings(text, understood):
    goal = parse_goal(text)
    assert (goal.dataset, goal.metric, goal.target, goal.family, goal.max_params) == understood


@pytest.mark.parametrize(("text", "error"), [
    ("make it better", "could not find a dataset and a target (understood: nothing)"),
    ("reach 90% accuracy", "could not find a dataset (understood: metric=accuracy, "
                           "target=0.9)"),
    ("digits at 150% accuracy", "the target 1.5 is not a level a metric can reach"),
])
def test_goals_it_cannot_use_say_what_was_understood(text, error):
    with pytest.raises(ConfigError) as info:
        parse_goal(text)
    assert error in str(info.value) and "\n" not in str(info.value)


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
    assert registry["settings"]["threads"] == 1
    # without --keep: the registry, the best source and its plots; no sandbox files
    best_dir = f"iter_{best['iteration']:03d}"
    models = run / "src" / "models"
    assert sorted(p.name for p in models.glob("iter_*")) == [best_dir]
    assert [p.name for p in (models / best_dir).iterdir()] == ["model.py"]
    assert (models / "model.py").read_text() == (models / best_dir / "model.py").read_text()
    assert sorted(p.name for p in (run / "experiments").iterdir()) == [best_dir,
                                                                       "registry.json"]
    assert sorted(p.name for p in (run / "experiments" / best_dir).iterdir()) == [
        "confusion_matrix.png", "learning_curve.png"]
    assert registry["cleaned"] is True
    assert "best: iteration" in capsys.readouterr().out

    report = tmp_path / "report"
    assert main(["analyze", "--input_dir", str(out), "--output_dir", str(report)]) == 0
    text = (report / "report.md").read_text()
    assert f"Agent run {run.name}" in text and "target 0.9 reached" in text
    assert (report / "figs" / f"{run.name}_trajectory.png").stat().st_size > 1000
    for name in ("confusion_matrix", "learning_curve"):  # each figure has its PDF twin
        for suffix in (".png", ".pdf"):
            assert (report / "figs" / f"{run.name}_{name}{suffix}").stat().st_size > 1000
    for link in re.findall(r"\]\((figs/[^)]+)\)", text):  # no dangling link
        assert (report / link).is_file(), link
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    for digit in range(10):  # the per-class table
        assert any(line.startswith(f"| {digit} | ") for line in rows)
    assert "| seed | epochs run | best epoch | convergence epoch |" in text


def test_keep_keeps_every_candidate(tmp_path):
    out = tmp_path / "agent"
    assert main(["agent", "--goal", "an MLP for digits with accuracy of 0.999",
                 "--max-iterations", "2", "--keep", "--out_dir", str(out), *QUICK]) == 0
    run, registry = _registry(out)
    assert len(registry["iterations"]) == 2
    assert registry["iterations"][-1]["decision"]["action"] == "stop"  # budget spent
    for it in registry["iterations"]:
        folder = run / "src" / "models" / f"iter_{it['index']:03d}"
        assert (folder / "model.py").is_file()
        assert (folder / "train" / "sandbox_result.json").is_file()
        assert (folder / "score" / "logits.npz").is_file()
        assert (run / "experiments" / f"iter_{it['index']:03d}" / "learning_curve.png").is_file()
    assert "cleaned" not in registry


def test_a_goal_it_cannot_read_is_exit_2_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "agent"
    assert main(["agent", "--goal", "make it better", "--out_dir", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "could not find a dataset and a target" in err
    assert "(understood: nothing)" in err and "'>85% accuracy'" in err  # and how to say it
    assert not out.exists()
    assert main(["agent", "--goal", "a small CNN for MNIST", "--out_dir", str(out)]) == 2
    err = capsys.readouterr().err
    assert "could not find a target (understood: dataset=mnist, family=cnn, " in err
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
                     "--llm-api-key", "sk-do-not-store",
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
    assert server.requests[0]["headers"]["Authorization"] == "Bearer sk-do-not-store"
    run, _ = _registry(out)
    assert not [p for p in run.rglob("*") if p.is_file() and b"sk-do-not-store" in p.read_bytes()]


def test_a_parameter_budget_refuses_proposals_before_any_work(tmp_path):
    out = tmp_path / "agent"
    goal = "a CNN for digits with under 3k parameters targeting 99% accuracy"
    assert main(["agent", "--goal", goal, "--max-iterations", "2", "--out_dir", str(out),
                 "--epochs", "2", "--seeds", "0", *CLI_FLAGS]) == 0
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
    proc = subprocess.Popen(  # -X faulthandler: SIGABRT prints every thread's stack
        [sys.executable, "-X", "faulthandler", "-m", "sweeplab", "agent",
         "--goal", "an MLP for digits targeting 100%", "--max-iterations", "50",
         "--epochs", "20", "--seeds", "0", "--out_dir", str(out), "--verbose", *CLI_FLAGS],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # a shell without job control (CI's `make test &`) starts its jobs with SIGINT
        # ignored, and Python keeps an inherited SIG_IGN: give the agent a terminal's Ctrl-C
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        found = list(out.glob("run_*/experiments/registry.json"))
        if found and json.loads(found[0].read_text())["iterations"]:
            break
        time.sleep(0.2)
    # the signal lands while the next candidate's sandbox starts: a Ctrl-C during a fork
    # with a preexec_fn was once swallowed by CPython's at-fork handlers, and the agent ran on
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        _, err = proc.communicate()
        stacks = err[err.find("Fatal Python error"):].split("\nExtension modules")[0]
        pytest.fail(f"the agent did not stop after SIGINT; its stacks:\n{stacks[-4000:]}")
    assert proc.returncode == 130, err
    _, registry = _registry(out)
    assert registry["state"] == "interrupted" and len(registry["iterations"]) >= 1
    assert "registry holds every finished iteration" in err
    # --verbose: every step is logged on stderr
    assert "proposal (optuna)" in err and "iteration 1 done: ok" in err
    assert ": ok in " in err  # the sandbox's verdict


def test_check_isolation_says_what_is_in_force(capsys):
    code = main(["agent", "--check-isolation"])
    found = probe_isolation()
    assert capsys.readouterr().out == f"isolation: {found.describe()}\n"
    assert code == (0 if found.namespaces else 1)


@pytest.mark.parametrize(("flag", "value", "words"), [
    ("--time-budget", "5", "invalid time-budget=5.0: must be >= 10 seconds"),
    ("--memory-mb", "512", "invalid memory-mb=512: must be >= 1024"),
])
def test_bad_sandbox_budgets_are_exit_2_and_write_nothing(tmp_path, capsys, flag, value,
                                                          words):
    out = tmp_path / "agent"
    assert main(["agent", "--goal", "an MLP for digits targeting 90%", flag, value,
                 "--out_dir", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and words in err and not out.exists()


def test_without_kernel_isolation_it_refuses_unless_told(tmp_path, capsys, monkeypatch):
    """On a machine without bubblewrap (here: none on PATH) the agent stops before any
    work; with --unsafe-no-isolation it runs, and says and records so."""
    monkeypatch.setenv("PATH", str(tmp_path))
    probe_isolation.cache_clear()
    plain_isolation.cache_clear()
    out = tmp_path / "agent"
    goal = "an MLP for digits targeting 99.9% accuracy"
    try:
        assert main(["agent", "--goal", goal, "--out_dir", str(out)]) == 2
        err = capsys.readouterr().err
        assert len(err.splitlines()) == 1 and "bubblewrap (bwrap) is not installed" in err
        assert "--unsafe-no-isolation" in err and not out.exists()
        assert main(["agent", "--goal", goal, "--unsafe-no-isolation", "--max-iterations",
                     "1", "--out_dir", str(out), *QUICK]) == 0
    finally:
        probe_isolation.cache_clear()
        plain_isolation.cache_clear()
    assert "isolation: NONE (--unsafe-no-isolation)" in capsys.readouterr().out
    _, registry = _registry(out)
    assert registry["settings"]["isolation"]["kind"] == "none"
    (only,) = registry["iterations"]
    assert only["status"] == "ok" and only["validation"]["isolation"] == "none"
