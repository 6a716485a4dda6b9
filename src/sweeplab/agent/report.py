"""``sweeplab analyze`` on agent runs: the trajectory of the metric and the best model.

For each ``run_<timestamp>/`` given (or found one level below an input folder): what the
goal was understood as, the planner and the data (real or synthetic, said plainly), one
row per iteration (status, parameters, FLOPs, score with its 95% interval, decision),
a trajectory figure (score per iteration, best so far, the target), the best model's
layers, training settings and metrics with intervals, its per-class table, its learning
dynamics per seed (epochs run, best and convergence epoch, early stop, overfitting), and
its confusion-matrix and learning-curve plots.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

from sweeplab.agent.registry import is_agent_run, load_registry
from sweeplab.analysis.report import (
    Bullets,
    Figure,
    Heading,
    Paragraph,
    Report,
    Table,
    write_report,
)


def find_agent_runs(inputs: list[str | Path]) -> list[Path]:
    """Agent run directories among ``inputs`` and their children, in name order."""
    found: list[Path] = []
    for item in map(Path, inputs):
        if is_agent_run(item):
            found.append(item)
        elif item.is_dir():
            found += sorted(p for p in item.iterdir() if p.is_dir() and is_agent_run(p))
    return found


def _num(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.{digits}g}"


def _score_cell(entry: dict[str, Any], metric: str) -> str:
    stats = (entry.get("evaluation") or {}).get("aggregate", {}).get(metric)
    if not stats:
        return "-"
    low, high = stats.get("ci_low"), stats.get("ci_high")
    interval = f" [{_num(low)}, {_num(high)}]" if low is not None and high is not None else ""
    return f"{_num(stats.get('mean'))}{interval}"


def trajectory_figure(registry: dict[str, Any], path: Path) -> list[Path]:
    """Score per iteration (invalid ones marked at the bottom), best so far, the target."""
    from sweeplab.analysis.style import new_figure, save_figure

    goal, iterations = registry["goal"], registry["iterations"]
    fig, ax = new_figure()
    xs = [it["index"] for it in iterations if it.get("score") is not None]
    ys = [it["score"] for it in iterations if it.get("score") is not None]
    ax.plot(xs, ys, "o", color="C0", label="candidate (mean over seeds)")
    best, steps = -math.inf, []
    for it in iterations:
        if it.get("score") is not None:
            best = max(best, it["score"])
        steps.append(best if best > -math.inf else math.nan)
    ax.step([it["index"] for it in iterations], steps, where="post", color="C1",
            label="best so far")
    ax.axhline(goal["target"], color="C2", linestyle="--", label=f"target {goal['target']:g}")
    bad = [it["index"] for it in iterations if it.get("score") is None]
    if bad:
        bottom = min(ys + [goal["target"]]) if ys else goal["target"]
        ax.plot(bad, [bottom] * len(bad), "x", color="C3", label="invalid / failed")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("iteration")
    ax.set_ylabel(f"selection score ({goal['metric']} goal)")
    ax.legend(loc="best", fontsize="small")
    return save_figure(fig, path)


def _layers(entry: dict[str, Any]) -> str:
    model = entry["proposal"]["candidate"]["model"]
    parts = []
    for layer in model["layers"]:
        params = ", ".join(f"{k}={v}" for k, v in layer.get("params", {}).items())
        parts.append(f"{layer['type']}({params})" if params else layer["type"])
    return " -> ".join(parts)


def _training(train: dict[str, Any]) -> str:
    """A training spec in words: ``adam, lr 0.00137, batch 64, 5 epochs``."""
    text = (f"{train.get('optimizer', '?')}, lr {_num(train.get('lr'), 3)}, batch "
            f"{train.get('batch_size', '?')}, {train.get('epochs', '?')} epochs at most")
    if train.get("weight_decay"):
        text += f", weight decay {_num(train['weight_decay'], 3)}"
    return text


def _per_class(evaluation: dict[str, Any]) -> Table | None:
    rows = tuple((str(c.get("class")), _num(c.get("precision")), _num(c.get("recall")),
                  _num(c.get("f1")), _num(c.get("roc_auc")), _num(c.get("pr_auc")),
                  _num(c.get("support"))) for c in evaluation.get("per_class") or [])
    if not rows:
        return None
    seeds = len(evaluation.get("per_seed") or [])
    return Table(("class", "precision", "recall", "F1", "ROC-AUC", "PR-AUC", "support"), rows,
                 f"The best model per class on the test set (mean over {seeds} seed"
                 f"{'s' if seeds != 1 else ''})")


def _dynamics(evaluation: dict[str, Any]) -> Table | None:
    rows = []
    for seed in evaluation.get("per_seed") or []:
        curve = seed.get("curve") or []
        at_best = next((row for row in curve if row.get("epoch") == seed.get("best_epoch")), {})
        stop = ("early (patience)" if seed.get("stopped_early") else
                "time budget" if seed.get("stopped_by_time") else
                "diverged" if seed.get("diverged") else "all epochs")
        rows.append((str(seed.get("seed")), _num(seed.get("epochs_run")),
                     _num(seed.get("best_epoch")), _num(seed.get("convergence_epoch")), stop,
                     "yes" if seed.get("overfitting") else "no",
                     _num(at_best.get("train_loss")), _num(at_best.get("val_loss"))))
    if not rows:
        return None
    settings = evaluation.get("settings") or {}
    return Table(("seed", "epochs run", "best epoch", "convergence epoch", "stopped",
                  "overfitting", "train loss at best", "val loss at best"), tuple(rows),
                 "The best model's learning dynamics (best epoch: least validation loss, "
                 "its weights are kept; overfitting: validation loss above the best for "
                 f"{_num(settings.get('patience'))} epochs while training loss falls; "
                 "convergence: first epoch within "
                 f"{_num(100 * (settings.get('convergence_tolerance') or 0))}% of the best "
                 "validation accuracy)")


def _run_section(report: Report, run_dir: Path, out_dir: Path) -> None:
    registry = load_registry(run_dir)
    goal, iterations, best = registry["goal"], registry["iterations"], registry.get("best")
    metric = goal["metric"]
    settings = registry.get("settings", {})
    report.add(Heading(f"Agent run {run_dir.name}"))
    report.add(Paragraph(
        f"Goal: \"{goal['text']}\" (understood as {registry.get('goal_understood', '')}). "
        f"Planner {settings.get('planner', '?')}; data: {settings.get('data', '?')} "
        f"(source: {settings.get('data_source', '?')}). State: {registry.get('state')}"
        f" ({registry.get('reason', '')})."))
    rows = []
    for it in iterations:
        summary = it.get("summary") or {}
        decision = it.get("decision") or {}
        rows.append((str(it["index"]), it["proposal"].get("source", ""), it["status"],
                     _num(summary.get("params")), _num(summary.get("flops")),
                     _num(it.get("score")), _score_cell(it, metric), it.get("error") or "",
                     f"{decision.get('action', '')}: {decision.get('reason', '')}"))
    report.add(Table(("iteration", "planner", "status", "params", "FLOPs", "selection score",
                      f"test {metric} (mean [95% CI])", "error", "decision"), tuple(rows),
                     "Every iteration of the run (the planner sees the selection score: "
                     "validation accuracy for accuracy goals, so the test set stays out of "
                     "the search)"))
    figs = out_dir / "figs"
    paths = trajectory_figure(registry, figs / f"{run_dir.name}_trajectory")
    report.add(Figure(paths[0].relative_to(out_dir).as_posix(),
                      "Selection score per iteration (validation accuracy for accuracy goals; "
                      f"mean over seeds), best so far and the target ({metric} "
                      f"{goal['target']:g})"))
    reached = best is not None and (best.get("test_score") or -math.inf) >= goal["target"]
    bullets = [f"{len(iterations)} iterations; {sum(it['status'] == 'ok' for it in iterations)} "
               f"evaluated, {sum(it['status'] != 'ok' for it in iterations)} invalid or failed."]
    if best is None:
        bullets.append("No candidate was evaluated.")
        report.add(Bullets(tuple(bullets)))
        return
    entry = next(it for it in iterations if it["index"] == best["iteration"])
    bullets.append(f"Best: iteration {best['iteration']}, test {metric} "
                   f"{_num(best.get('test_score'))} (target {goal['target']:g} "
                   f"{'reached' if reached else 'not reached'}; selection score "
                   f"{_num(best['score'])}).")
    first = next((it for it in iterations if it.get("score") is not None), None)
    if first is not None and first["index"] != best["iteration"]:
        bullets.append(f"From the first evaluated candidate ({_num(first['score'])}) to the "
                       f"best: {best['score'] - first['score']:+.4f}.")
    report.add(Bullets(tuple(bullets)))
    summary = entry.get("summary") or {}
    report.add(Paragraph(
        f"Best model ({_num(summary.get('params'))} parameters, {_num(summary.get('flops'))} "
        f"FLOPs per sample; source written by the {entry.get('assembler', 'deterministic')} "
        f"assembler, kept as {best.get('final_source', best['source'])}): {_layers(entry)}; "
        f"training {_training(entry['proposal']['candidate']['train'])}."))
    evaluation = entry.get("evaluation") or {}
    aggregate = evaluation.get("aggregate", {})
    if aggregate:
        report.add(Table(("metric", "mean", "std", "95% CI", "seeds"), tuple(
            (name, _num(s.get("mean")), _num(s.get("std")),
             f"[{_num(s.get('ci_low'))}, {_num(s.get('ci_high'))}]", _num(s.get("n")))
            for name, s in aggregate.items()),
            "The best model's metrics across seeds (test set; val_* at the best epoch), "
            "mean, sample std and 95% Student-t interval"))
    for table in (_per_class(evaluation), _dynamics(evaluation)):
        if table is not None:
            report.add(table)
    for path, caption in _best_figures(evaluation, run_dir, best["iteration"],
                                       figs / run_dir.name):
        report.add(Figure(path.relative_to(out_dir).as_posix(), caption))


def _best_figures(evaluation: dict[str, Any], run_dir: Path, iteration: int,
                  prefix: Path) -> list[tuple[Path, str]]:
    """The best model's confusion matrix and learning curves as ``<prefix>_*.png`` (and a
    PDF twin), redrawn from the registry (so they exist even when the run's own PNGs were
    not kept); the run's PNGs are copied when the registry lacks the data."""
    import numpy as np

    from sweeplab.agent.curves import confusion_figure, learning_curve_figure
    from sweeplab.agent.evaluate import confusion_title

    seeds = evaluation.get("per_seed") or []
    matrix, classes = evaluation.get("confusion_matrix"), evaluation.get("per_class") or []
    out: list[tuple[Path, str]] = []
    both = ("png", "pdf")
    if matrix and classes and seeds:
        summed = np.asarray(matrix)
        out.append((confusion_figure(summed, [str(c["class"]) for c in classes],
                                     confusion_title(len(seeds), summed),
                                     Path(f"{prefix}_confusion_matrix.png"), both),
                    "Best model: test confusion matrix (summed over seeds; colour: share of "
                    "the true class)"))
        out.append((learning_curve_figure([s["curve"] for s in seeds],
                                          [s["seed"] for s in seeds],
                                          [s["best_epoch"] for s in seeds],
                                          Path(f"{prefix}_learning_curve.png"), both),
                    "Best model: learning curves per seed (o: the best epoch, whose weights "
                    "are kept)"))
        return out
    for png in sorted((run_dir / "experiments" / f"iter_{iteration:03d}").glob("*.png")):
        target = Path(f"{prefix}_{png.name}")
        shutil.copyfile(png, target)
        out.append((target, f"Best model: {png.stem.replace('_', ' ')}"))
    return out


def analyze_agent_runs(run_dirs: list[Path], out_dir: Path) -> tuple[Path, Path]:
    """The report of the agent runs ``run_dirs`` in ``out_dir`` (report.md, report.html)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    report = Report("sweeplab agent runs")
    for run_dir in run_dirs:
        _run_section(report, run_dir, out_dir)
    return write_report(report, out_dir)


def analyze_inputs(inputs: list[str], out_dir: str | Path) -> tuple[str, Path, Path] | None:
    """``sweeplab analyze``'s hook (the ``sweeplab.analyzers`` entry point): the agent
    runs among ``inputs`` analysed into ``out_dir`` as ``(what, report.md, report.html)``,
    or None when there are none (the runs are then a grid's)."""
    runs = find_agent_runs(list(inputs))
    if not runs:
        return None
    md, page = analyze_agent_runs(runs, Path(out_dir))
    return f"analysed {len(runs)} agent run(s)", md, page
