"""``sweeplab agent --goal TEXT``: search model architectures toward a goal stated in words.

Parses the goal (dataset, metric, target, model family, size), then iterates: a planner
proposes a model (an LLM through an OpenAI-compatible endpoint when ``--llm-base-url`` is
given, else Optuna's seeded TPE, fully offline), the assembler writes its PyTorch source,
the sandbox trains it (kernel isolation: see ``--check-isolation``), the agent scores
its predictions over a few seeds, and the planner decides whether to continue, refine or
stop. Everything goes to ``run_<timestamp>/``
(``experiments/registry.json``); see docs/agent.md.

The agent is a plugin of sweeplab (its ``sweeplab.commands`` entry point), with its own
pip extra: ``pip install 'sweeplab[agent]'`` (``[llm]`` for an LLM planner).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from sweeplab.agent.batching import BATCH_MODES
from sweeplab.cli.console import Interrupted, say, setup_logging
from sweeplab.cli.flags import OneLineParser, reject_unknown
from sweeplab.core.registry import require
from sweeplab.errors import ConfigError

REQUIRES = ("torch", "optuna", "sklearn", "scipy", "matplotlib", "pandas")
"""What the agent imports (the ``agent`` extra installs it)."""
LLM_REQUIRES = ("httpx", "tenacity")
"""What an LLM planner needs besides (the ``llm`` extra)."""

API_KEY_ENV = ("SWEEPLAB_LLM_API_KEY", "OPENAI_API_KEY")


def build_parser() -> OneLineParser:
    p = OneLineParser(prog="sweeplab agent", description=__doc__.splitlines()[0].replace("``", ""))
    p.add_argument("--goal", help="the goal in words, e.g. 'Design a small CNN "
                   "for Fashion-MNIST targeting >85%% accuracy' (required unless "
                   "--check-isolation)")
    p.add_argument("--name", help="suffix of the run directory")
    p.add_argument("--out_dir", "--out-dir", default="runs_out/agent",
                   help="where run_<timestamp>/ goes")
    p.add_argument("--keep", action="store_true",
                   help="keep every candidate's source, sandbox files and plots")
    p.add_argument("--max-iterations", "--max_iterations", type=int, default=8,
                   dest="max_iterations", help="iteration budget")
    p.add_argument("--seed", type=int, default=0, help="seed of the planner")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                   help="training seeds of each evaluation (mean, std and 95%% Student-t "
                        "interval; three seeds give t = 4.30, two a nearly useless 12.7)")
    p.add_argument("--epochs", type=int, default=5, help="training epochs per evaluation")
    p.add_argument("--patience", type=int, default=2, help="early stopping patience (epochs)")
    p.add_argument("--max-train", "--max_train", type=int, default=10_000, dest="max_train",
                   help="training samples used (a subsample keeps iterations quick)")
    p.add_argument("--data_dir", "--data-dir", default=None, help="folder of the dataset files")
    p.add_argument("--allow-synthetic", "--allow_synthetic", action="store_true",
                   dest="allow_synthetic",
                   help="use labelled synthetic data if the dataset's files are missing")
    p.add_argument("--llm-base-url", "--llm_base_url", dest="llm_base_url",
                   help="OpenAI-compatible endpoint, e.g. http://localhost:11434/v1")
    p.add_argument("--llm-model", "--llm_model", dest="llm_model", help="model name")
    p.add_argument("--llm-api-key", "--llm_api_key", dest="llm_api_key",
                   help="API key (default: $SWEEPLAB_LLM_API_KEY or $OPENAI_API_KEY)")
    p.add_argument("--llm-assemble", "--llm_assemble", action="store_true", dest="llm_assemble",
                   help="let the LLM write each model's source (validated like any other)")
    p.add_argument("--llm-timeout", "--llm_timeout", type=float, default=60.0,
                   dest="llm_timeout", help="seconds per LLM request")
    p.add_argument("--batch", default="auto",
                   help="auto: train a candidate's seeds together as one batched computation "
                        "where the batched trainer can take the model (else one by one, and "
                        "the evaluation says why); off: one by one")
    p.add_argument("--threads", type=int, default=1,
                   help="torch/BLAS threads for training and the sandbox (the candidates are "
                        "small: one thread is fastest, more oversubscribe a busy machine)")
    p.add_argument("--verbose", "-v", action="store_true",
                   help="log every step (proposals, LLM requests and retries, sandbox "
                        "results, decisions) to stderr")
    p.add_argument("--time-budget", "--time_budget", type=float, default=900.0,
                   dest="time_budget", help="seconds of wall clock for each candidate's "
                   "sandboxed training (all seeds; it stops by itself at 75%% of it) and for "
                   "its scoring; CPU time is capped at this times --threads")
    p.add_argument("--memory-mb", "--memory_mb", type=int, default=4096, dest="memory_mb",
                   help="address space of each sandboxed child, in MB (torch itself takes "
                        "about 600)")
    p.add_argument("--check-isolation", "--check_isolation", action="store_true",
                   dest="check_isolation", help="print the isolation candidates would run "
                   "under here and exit (0: kernel isolation, 1: none)")
    p.add_argument("--unsafe-no-isolation", "--unsafe_no_isolation", action="store_true",
                   dest="unsafe_no_isolation",
                   help="run candidates without kernel isolation, for machines where "
                        "bubblewrap cannot create namespaces (seccomp, resource limits, the "
                        "audit hook and the static check only): generated code could then "
                        "read any file this user can")
    return p


def main(argv: list[str]) -> int:
    """Run the agent; 0 when it finished (target reached or not), 2 bad input, 130 stopped."""
    ns, extras = build_parser().parse_known_args(argv)
    reject_unknown(extras, [], "sweeplab agent")
    if ns.check_isolation:
        return _check_isolation()
    if not ns.goal:
        raise ConfigError("goal", None, "give the goal in words with --goal TEXT (or "
                          "--check-isolation)")
    for key in ("max_iterations", "epochs", "patience", "max_train", "threads"):
        if getattr(ns, key) is not None and getattr(ns, key) < 1:
            raise ConfigError(key, getattr(ns, key), "must be >= 1")
    if ns.batch not in BATCH_MODES:
        raise ConfigError("batch", ns.batch, "allowed values are " + ", ".join(BATCH_MODES))
    if bool(ns.llm_base_url) != bool(ns.llm_model):
        raise ConfigError("llm-model" if ns.llm_base_url else "llm-base-url", None,
                          "give both --llm-base-url and --llm-model, or neither (offline)")
    if ns.llm_assemble and not ns.llm_base_url:
        raise ConfigError("llm-assemble", True, "needs --llm-base-url and --llm-model")
    if len(set(ns.seeds)) != len(ns.seeds):
        raise ConfigError("seeds", ns.seeds, "must be distinct (a repeated seed repeats a run "
                          "and narrows the interval falsely)")
    if ns.llm_timeout <= 0:
        raise ConfigError("llm-timeout", ns.llm_timeout, "must be > 0 seconds")
    if not ns.time_budget >= 10:
        raise ConfigError("time-budget", ns.time_budget, "must be >= 10 seconds")
    if ns.memory_mb < 1024:
        raise ConfigError("memory-mb", ns.memory_mb, "must be >= 1024 (torch alone takes "
                          "about 600 MB of address space)")
    require("sweeplab agent", REQUIRES, "sweeplab[agent]")
    if ns.llm_base_url:
        require("sweeplab agent --llm-base-url", LLM_REQUIRES, "sweeplab[llm]")
    setup_logging(verbose=ns.verbose)
    from sweeplab.core.threads import limit_threads

    limit_threads(ns.threads)

    from sweeplab.agent.goal import parse_goal

    goal = parse_goal(ns.goal)

    from sweeplab.agent.sandbox import choose_isolation

    isolation = choose_isolation(ns.unsafe_no_isolation)

    from sweeplab.agent.datasets import load_dataset
    from sweeplab.agent.loop import AgentSettings, run_loop, selection_metric
    from sweeplab.agent.registry import Registry, new_run_dir

    settings = AgentSettings(
        max_iterations=ns.max_iterations, seed=ns.seed, seeds=tuple(ns.seeds), epochs=ns.epochs,
        patience=ns.patience, max_train=ns.max_train, data_dir=ns.data_dir,
        allow_synthetic=ns.allow_synthetic, llm_base_url=ns.llm_base_url,
        llm_model=ns.llm_model, llm_assemble=ns.llm_assemble, llm_timeout=ns.llm_timeout,
        threads=ns.threads, sandbox_timeout_s=ns.time_budget, sandbox_memory_mb=ns.memory_mb,
        unsafe_no_isolation=ns.unsafe_no_isolation, batch=ns.batch)
    data = load_dataset(goal.dataset, data_dir=ns.data_dir, seed=ns.seed,
                        max_train=ns.max_train, allow_synthetic=ns.allow_synthetic)
    say(f"goal understood: {goal.describe()}")
    say(f"data: {data.description}")
    say(f"isolation: {isolation.describe()}")
    planner, client = _planner(ns, goal, data, settings)
    run_dir = new_run_dir(Path(ns.out_dir), ns.name)
    registry = Registry(run_dir, goal, {**settings.public(), "data": data.description,
                                        "data_source": data.source,
                                        "planner": type(planner).__name__,
                                        "isolation": isolation.to_dict()})
    say(f"agent run {run_dir} ({type(planner).__name__}, {settings.max_iterations} "
        "iterations at most)")
    try:
        result = run_loop(goal, settings, registry, planner, data, client, say=say)
    except KeyboardInterrupt as exc:
        registry.finish("interrupted", "stopped by a signal; finished iterations are kept")
        raise Interrupted(f"the registry holds every finished iteration: {registry.path}") from exc
    except BaseException as exc:
        registry.finish("failed", f"{type(exc).__name__}: {exc}")
        raise
    registry.finish("done", result.reason)
    if not ns.keep:
        registry.clean()
    if result.best is None:
        say(f"no candidate could be evaluated ({result.reason}); see {registry.path}")
    else:
        verdict = "reached" if result.reached else "not reached"
        say(f"best: iteration {result.best.index}, test {goal.metric} "
            f"{result.best.test_score:.4f} (target {goal.target:g} {verdict}; selected on "
            f"{selection_metric(goal.metric)} {result.best.score:.4f}); model: "
            f"{run_dir / 'src/models/model.py'}; registry: {registry.path}")
    return 0


def _check_isolation() -> int:
    """Print the isolation candidates get here; 0 with kernel isolation, 1 without."""
    from sweeplab.agent.sandbox import probe_isolation

    isolation = probe_isolation()
    say(f"isolation: {isolation.describe()}")
    return 0 if isolation.namespaces else 1


def _planner(ns: argparse.Namespace, goal, data, settings):  # noqa: ANN001, ANN202
    """The offline planner, or the LLM planner with it as fallback; and the LLM client."""
    from sweeplab.agent.planner import LLMPlanner, OptunaPlanner

    offline = OptunaPlanner(tuple(data.input_shape), data.num_classes, settings.epochs,
                            seed=settings.seed, family=goal.family)
    if not ns.llm_base_url:
        return offline, None
    from sweeplab.agent.llm import ChatClient

    key = ns.llm_api_key or next((os.environ[k] for k in API_KEY_ENV if os.environ.get(k)), None)
    client = ChatClient(ns.llm_base_url, ns.llm_model, api_key=key, timeout=ns.llm_timeout)
    from sweeplab.agent.loop import selection_metric

    return LLMPlanner(client, goal.text, tuple(data.input_shape), data.num_classes,
                      settings.epochs, fallback=offline, target=goal.target,
                      score_name=selection_metric(goal.metric)), client
