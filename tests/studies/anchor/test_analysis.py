"""``sweeplab analyze`` on real (tiny) anchor grids: phase diagram, ablation bars, inverse task.

Grids run through the CLI (inline executor, a few seconds in all); the heatmap's cells are
checked against the mean over seeds computed independently from each run's final.json.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from sweeplab.analysis import plotting
from sweeplab.analysis.spec import get_analysis
from sweeplab.cli.main import main
from sweeplab.core.registry import study_names
from sweeplab.studies.anchor import analysis

TINY = {
    "n_train": 300,
    "n_test": 50,
    "d_state": 8,
    "d_model": 8,
    "epochs": 2,
    "log_interval": 1,
    "save_interval": 0,
    "device": "cpu",
}


def _grid(
    tmp: Path, name: str, study: str, fixed: dict, grid: dict, zip_: dict | None = None
) -> Path:
    spec = {"study": study, "name": name, "fixed": {**TINY, **fixed}, "grid": grid,
            "run_name": "L{n_layers}_G{gamma}_S{seed}"}
    if "model_type" in grid or zip_:
        spec["run_name"] = "{model_type}_" + spec["run_name"]
    if zip_:
        spec["zip"] = zip_
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    out = tmp / f"{name}_out"
    assert main(["grid", str(path), "--out_dir", str(out), "--executor", "inline"]) == 0
    (grid_dir,) = [p for p in out.iterdir() if p.is_dir()]
    return grid_dir


@pytest.fixture(scope="module")
def grids(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("anchor_grids")
    return {
        "phase": _grid(
            tmp,
            "phase",
            "anchor-composite",
            {"n_heldout": 50},
            {"n_layers": [1, 2], "gamma": [0.5, 1.0], "seed": [1, 2]},
        ),
        "ablation": _grid(
            tmp,
            "ablation",
            "anchor-composite",
            {"n_heldout": 50, "n_layers": 1},
            {"seed": [1, 2]},
            {"model_type": ["mamba_standard", "transformer"], "gamma": [1.0, 0.5]},
        ),
        "inverse": _grid(
            tmp,
            "inverse",
            "inverse-sequence",
            {"n_ood": 50, "n_layers": 1, "gamma": 1.0},
            {"model_type": ["mamba_standard", "transformer"], "seed": [1, 2]},
        ),
    }


def _analyze(grid_dir: Path, out: Path) -> str:
    assert main(["analyze", "--input_dir", str(grid_dir), "--output_dir", str(out)]) == 0
    return (out / "report.md").read_text()


def _finals(grid_dir: Path) -> pd.DataFrame:
    rows = []
    for run in grid_dir.iterdir():
        if (run / "final.json").is_file():
            cfg = yaml.safe_load((run / "config.yaml").read_text())
            cfg = cfg.get("config", cfg) if isinstance(cfg, dict) else cfg
            rows.append(
                {
                    **{k: cfg[k] for k in ("n_layers", "gamma", "model_type", "seed")},
                    **json.loads((run / "final.json").read_text()),
                }
            )
    return pd.DataFrame(rows)


def test_both_studies_registered():
    assert set(study_names()) >= {"anchor-composite", "inverse-sequence"}
    assert get_analysis("anchor-composite") is analysis.COMPOSITE_ANALYSIS
    assert get_analysis("inverse-sequence") is analysis.INVERSE_ANALYSIS


def test_phase_diagram_cells_are_seed_means(grids, tmp_path, monkeypatch):
    drawn: list[pd.DataFrame] = []
    original = plotting.draw_heatmap

    def spy(ax, table, *args, **kwargs):
        drawn.append(table.copy())
        return original(ax, table, *args, **kwargs)

    monkeypatch.setattr(plotting, "draw_heatmap", spy)
    # run directories named as the layout (L2_G0.5_S42), with the run's own files
    names = sorted(p.name for p in grids["phase"].iterdir()
                   if p.is_dir() and not p.name.startswith("."))
    assert names == [f"L{n}_G{g}_S{s}" for n in (1, 2) for g in (0.5, 1.0) for s in (1, 2)]
    for name in ("model.pt", "metrics.json", "config.yaml", "train.log"):
        assert (grids["phase"] / "L1_G0.5_S1" / name).is_file(), name
    out = tmp_path / "analysis"
    report = _analyze(grids["phase"], out)
    for suffix in ("png", "pdf"):
        assert (out / "figs" / f"phase_diagram.{suffix}").stat().st_size > 0
    assert "figs/phase_diagram.png" in report and "figs/accuracy_curves.png" in report
    assert not (out / "figs" / "ablation_solutions.png").exists()  # model_type fixed

    finals = _finals(grids["phase"])
    assert len(finals) == 8
    total = finals["composite_acc"] + finals["symmetric_acc"]
    finals["composite_share"] = finals["composite_acc"] / total.where(total > 0)
    panels = ("composite_acc", "symmetric_acc", "composite_share", "train_acc")
    assert len(drawn) == len(panels)
    for table, metric in zip(drawn, panels):
        expected = finals.groupby(["n_layers", "gamma"])[metric].mean()
        assert list(table.index) == [1, 2] and list(table.columns) == [0.5, 1.0]
        for (layers, gamma), value in expected.items():
            assert table.loc[layers, gamma] == pytest.approx(value, abs=1e-12, nan_ok=True)

    tex = (out / "tables" / "final_metrics.tex").read_text()
    summary = pd.read_csv(out / "summary.csv")
    assert len(summary) == 4  # one row per (depth, gamma) condition
    body = tex.split("\\midrule")[1].split("\\bottomrule")[0]
    assert body.count("\\\\") == 4  # one LaTeX row per condition
    assert "L=1, gamma=0.5 & 2 &" in body  # each row names its condition and seed count
    assert all(f"| L={layer}, gamma={g:g} | 2 |" in report for layer in (1, 2) for g in (0.5, 1))
    assert "(depth, gamma) cells" in report


def test_report_marks_unfit_conditions_and_has_the_reproduction_table(grids, tmp_path):
    """Two epochs on 300 samples fit nothing: every condition is 'not fit' in the solutions
    table, the findings say so, and every claim of the paper is 'not run' (the phase
    claims need fitted runs at the paper's gammas, the ablations their settings)."""
    out = tmp_path / "analysis"
    report = _analyze(grids["phase"], out)
    finals = _finals(grids["phase"])
    assert (finals["train_acc"] < 0.95).all()  # the premise
    solutions = pd.read_csv(out / "tables" / "solutions.csv")
    assert len(solutions) == 4 and set(solutions["solution"]) == {"not fit"}
    assert "training not fit (train < 95.0%) in 4" in report
    assert (out / "tables" / "solutions.tex").is_file()
    repro = pd.read_csv(out / "tables" / "reproduction.csv")
    assert set(repro["verdict"]) == {"not run"}
    assert len(repro) == 11 and "## Paper vs this run" in report
    assert "11 not run" in report


def test_inverse_report_has_the_reproduction_table(grids, tmp_path):
    """The tiny inverse grid ran at gamma 1.0, 1 layer: no claim's setting (2 layers,
    gamma 0.6) ran, so every claim is 'not run'."""
    out = tmp_path / "analysis"
    report = _analyze(grids["inverse"], out)
    repro = pd.read_csv(out / "tables" / "reproduction.csv")
    assert len(repro) == 9 and set(repro["verdict"]) == {"not run"}
    assert "Chen, Lin, Wang & Xu (2025)" in report


def test_composite_share_of_each_run():
    runs = pd.DataFrame({"final.composite_acc": [0.6, 0.0, 0.2],
                         "final.symmetric_acc": [0.2, 0.0, 0.6]})
    share = analysis.prepare(runs)["final.composite_share"]
    assert share[0] == pytest.approx(0.75) and np.isnan(share[1])
    assert share[2] == pytest.approx(0.25)


def test_ablation_bars_by_model(grids, tmp_path):
    out = tmp_path / "analysis"
    report = _analyze(grids["ablation"], out)
    for suffix in ("png", "pdf"):
        assert (out / "figs" / f"ablation_solutions.{suffix}").is_file()
    assert not (out / "figs" / "phase_diagram.png").exists()  # depth does not vary
    assert "figs/ablation_solutions.png" in report
    summary = pd.read_csv(out / "summary.csv")
    assert sorted(summary["model_type"]) == ["mamba_standard", "transformer"]
    finals = _finals(grids["ablation"])
    means = finals.groupby("model_type")["composite_acc"].mean()
    got = summary.set_index("model_type")["composite_acc_mean"]
    assert np.allclose(got[means.index], means)


def test_inverse_table_and_bars(grids, tmp_path):
    out = tmp_path / "analysis"
    report = _analyze(grids["inverse"], out)
    for suffix in ("png", "pdf"):
        assert (out / "figs" / f"inverse_accuracy.{suffix}").is_file()
    tex = (out / "tables" / "final_metrics.tex").read_text()
    assert "OOD acc" in tex and "composite" not in tex
    assert tex.split("\\midrule")[1].count("\\\\") == 2  # one row per model
    assert "| mamba_standard | 2 |" in report and "| transformer | 2 |" in report
    assert "figs/inverse_accuracy.png" in report and "out of distribution" in report
    assert "dashed: chance, 20%" in report
    assert (grids["inverse"] / "transformer_L1_G1.0_S2" / "model.pt").is_file()
    assert len(pd.read_csv(out / "summary.csv")) == 2


def _row(comp: tuple[float, float], sym: tuple[float, float], n: int = 3) -> pd.Series:
    """A finals row from (mean, ci half-width) of each accuracy."""
    row = {"condition": "c", "count": n}
    for name, (mean, half) in (("composite_acc", comp), ("symmetric_acc", sym)):
        row.update(
            {f"{name}_mean": mean, f"{name}_ci_low": mean - half, f"{name}_ci_high": mean + half}
        )
    return pd.Series(row)


def test_inverse_findings_say_when_accuracy_is_at_chance():
    def row(test: tuple[float, float], ood: tuple[float, float]) -> pd.Series:
        out = {}
        for name, (lo, hi) in (("test_acc", test), ("ood_acc", ood)):
            out.update({f"{name}_ci_low": lo, f"{name}_ci_high": hi})
        return pd.Series(out)

    assert analysis.versus_chance(row((0.17, 0.24), (0.15, 0.26))) == (
        "; test and OOD indistinguishable from chance (20%)")
    assert analysis.versus_chance(row((0.9, 0.99), (0.15, 0.26))) == (
        "; OOD indistinguishable from chance (20%)")
    assert analysis.versus_chance(row((0.9, 0.99), (0.3, 0.4))) == ""
    assert analysis.versus_chance(pd.Series({"test_acc_ci_low": float("nan")})) == ""


def test_a_condition_that_did_not_fit_has_no_solution():
    row = _row((0.9, 0.05), (0.1, 0.05))
    row["train_acc_mean"] = 0.94
    assert analysis.solution_of(row) == "not fit"
    assert "did not fit its training set" in analysis.composite_sentence(row)
    row["train_acc_mean"] = 0.95
    assert analysis.solution_of(row) == "composite"


def test_findings_name_a_winner_only_when_intervals_separate():
    assert analysis.solution_of(_row((0.9, 0.05), (0.1, 0.05))) == "composite"
    assert analysis.solution_of(_row((0.2, 0.05), (0.8, 0.1))) == "symmetric"
    assert analysis.solution_of(_row((0.5, 0.2), (0.4, 0.2))) == "undecided"
    assert analysis.solution_of(_row((0.02, 0.01), (0.05, 0.01))) == "neither"
    assert "overlap" in analysis.composite_sentence(_row((0.5, 0.2), (0.4, 0.2)))
    assert "composite solution dominates" in analysis.composite_sentence(
        _row((0.9, 0.05), (0.1, 0.05))
    )
