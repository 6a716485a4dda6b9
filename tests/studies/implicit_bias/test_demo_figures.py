"""What the per-run figures show: the demo's baselines apart, coinciding curves marked.

The demo is run as ``make demo`` runs it (its flags are read from the Makefile), through
the CLI; each figure is captured as it is saved and read back.
"""

from __future__ import annotations

import itertools
import json
import re
import shlex
from pathlib import Path

import numpy as np
import pytest

from sweeplab.analysis import style
from sweeplab.cli.main import main
from sweeplab.studies.implicit_bias import plots
from sweeplab.studies.implicit_bias.metrics import angle_deg
from sweeplab.track.local import read_metrics

REPO = Path(__file__).resolve().parents[3]
BASELINES = ("svm", "logreg", "lp_max_margin", "linear_md")


def demo_flags() -> list[str]:
    """The flags of the run ``make demo`` starts (the line of its recipe that runs it)."""
    recipe = (REPO / "Makefile").read_text().split("\ndemo:", 1)[1]
    line = next(line for line in recipe.splitlines() if "sweeplab run implicit-bias" in line)
    argv = shlex.split(line)
    return argv[argv.index("implicit-bias") + 1:]


@pytest.fixture
def captured(monkeypatch) -> dict:
    """Every figure the study saves while the test runs, by file name."""
    figures: dict = {}

    def recording_save(fig, path, *args, **kwargs):
        figures[Path(path).name] = fig
        return style.save_figure(fig, path, *args, **kwargs)

    monkeypatch.setattr(plots, "save_figure", recording_save)
    return figures


def _run(tmp_path: Path, *flags: str) -> Path:
    assert main(["run", "implicit-bias", *flags, "--out_dir", str(tmp_path), "--quiet"]) == 0
    (run_dir,) = tmp_path.iterdir()
    return run_dir


def _labels(fig) -> list[str]:
    (ax,) = [ax for ax in fig.axes if ax.get_lines()]
    return [line.get_label() for line in ax.get_lines()]


def _legend_outside_axes(fig) -> bool:
    fig.canvas.draw()
    (ax,) = fig.axes
    legend = ax.get_legend().get_window_extent()
    return legend.x0 >= ax.get_window_extent().x1


def test_the_demo_shows_four_distinct_baselines_and_heads_for_the_lp_max_margin(
    tmp_path, captured
):
    flags = demo_flags()
    assert "--tag" in flags and "demo" in flags
    run_dir = _run(tmp_path, *flags)

    dirs = json.loads((run_dir / "directions.json").read_text())
    for a, b in itertools.combinations(BASELINES, 2):  # measured: 13.7 to 30.3 degrees
        assert angle_deg(np.array(dirs[a]), np.array(dirs[b])) > 8.0, (a, b)

    fig = captured["angles"]
    assert _labels(fig) == [plots.BASELINE_LABELS[b] for b in BASELINES]  # none marked "="
    curves = [line.get_ydata() for line in fig.axes[0].get_lines()]
    top = max(np.nanmax(c) for c in curves)
    for a, b in itertools.combinations(curves, 2):  # every curve visible on its own
        assert np.nanmax(np.abs(a - b)) > 0.1 * top
    assert _legend_outside_axes(fig)

    rows = read_metrics(run_dir / "metrics.jsonl")
    end = rows[-1]
    lp = "angle_lp_max_margin"
    # measured: lp 27.1 at epoch 10 -> 10.2; svm 23.1, logreg 15.9 at the end
    assert end[lp] < 0.6 * rows[10][lp]
    assert end[lp] < end["angle_logreg"] - 3.0 and end[lp] < end["angle_svm"] - 8.0
    assert end["margin_p_ratio"] > 0.85  # measured 0.93
    assert "decision_boundary" not in captured  # 8-D data: no boundary to draw


def test_coinciding_curves_and_lines_of_a_2d_run_are_marked_and_the_legend_is_outside(
    tmp_path, captured
):
    # the 2-D default data: the lp max-margin is the SVM (a vertex every norm shares)
    _run(tmp_path, "--epochs", "200")
    marked_svm = re.compile(r"^\$\\ell_p\$ max-margin \((=|≈) \$\\ell_2\$ SVM\)$")
    angles, boundary = captured["angles"], captured["decision_boundary"]
    labels = _labels(angles)
    assert labels[0] == plots.BASELINE_LABELS["svm"]
    assert marked_svm.match(labels[2]), labels
    assert marked_svm.match(_labels(boundary)[3]), _labels(boundary)
    for fig in (angles, boundary):
        assert _legend_outside_axes(fig)


def test_coinciding_marks_only_what_draws_as_one_line():
    curves = {"svm": np.array([20.0, 10.0, 5.0]), "logreg": np.array([19.0, 9.0, 4.0]),
              "lp_max_margin": np.array([20.0, 10.0, 5.0]),
              "linear_md": np.array([19.1, 9.05, 4.02])}
    same = plots.coinciding(list(curves), lambda a, b: float(np.max(np.abs(
        curves[a] - curves[b]))), tol=0.2)
    assert same == {"lp_max_margin": ("svm", 0.0), "linear_md": ("logreg", pytest.approx(0.1))}
    assert plots.marked_label("lp_max_margin", same).endswith("(= $\\ell_2$ SVM)")
    assert plots.marked_label("linear_md", same).endswith("(≈ logistic regression)")
    assert plots.marked_label("svm", same) == plots.BASELINE_LABELS["svm"]
