"""``sweeplab analyze`` on a real minima-volume grid: figures, per-model table, findings.

A tiny grid (scikit-learn digits, a 16-unit MLP, two model seeds) runs once through
``sweeplab volume run``; the analysis runs on it with the study's figure functions
spied on (the real functions still draw). Every number checked is recomputed here from
the runs' own CSVs, independently of the analysis code.

The first loss cutoff is 0.3, not 0.5: the model trained on 60 samples has a cumulative
mean loss of about 0.4 over the whole 120-sample pool, so at 0.3 its loss curve crosses
the cutoff inside the pool and its volume on the 120-sample landscape is zero (log-volume
-inf). That exercises the paths that matter most: zero volumes and cutoff sizes.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from sweeplab.cli.main import main
from sweeplab.studies.volume import plots

TINY = {
    "dataset": "digits", "base_size": 60, "extra_sizes": [0, 60], "test_size": 100,
    "hidden": [16], "epochs": 40, "batch_size": 32, "lr": 0.01, "n_directions": 6,
    "n_coefficients": 31, "max_coefficient": 3.0, "coarse_stride": 5,
    "loss_cutoffs": [0.3, 1.0], "log_interval": 10,
    # Li et al.'s scaling: on 8x8 digits its steps of 0.1 resolve the radii at this grid
    "direction_scaling": "li",
}
FIGURES = ("log_volume_vs_size", "loss_curves", "volume_vs_test")


def _analyze(grid: Path, out: Path) -> int:
    return main(["analyze", "--input_dir", str(grid), "--output_dir", str(out)])


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    """The grid, the analysis output, and what the figure functions were given."""
    tmp = tmp_path_factory.mktemp("volume_analysis")
    spec = tmp / "tiny.yaml"
    spec.write_text(yaml.safe_dump({
        "study": "minima-volume", "name": "tiny",
        "run_name": "model_{model_seed}_data_{data_seed}",
        "fixed": TINY, "grid": {"model_seed": [0, 1], "data_seed": [0]},
    }))
    assert main(["volume", "run", str(spec), "--out_dir", str(tmp / "runs"),
                 "--executor", "inline"]) == 0
    (grid,) = [p for p in (tmp / "runs").iterdir() if p.is_dir() and not p.name.startswith(".")]

    seen: dict[str, object] = {}

    def spy(name):
        real = getattr(plots, name)

        def wrapper(*args, **kwargs):
            seen[name] = (args, kwargs)
            return real(*args, **kwargs)
        return wrapper

    real_save = plots.save_figure

    def keep_figure(fig, path):
        seen[f"fig:{Path(path).name}"] = [
            [(line.get_xdata(), line.get_ydata(), line.get_marker(), line.get_transform())
             for line in ax.get_lines()] for ax in fig.axes]
        seen[f"axes:{Path(path).name}"] = fig.axes
        return real_save(fig, path)

    out = tmp / "analysis"
    with pytest.MonkeyPatch.context() as mp:
        for name in ("plot_log_volume_vs_size", "plot_loss_curves", "plot_volume_vs_test"):
            mp.setattr(plots, name, spy(name))
        mp.setattr(plots, "save_figure", keep_figure)
        assert _analyze(grid, out) == 0
    return grid, out, seen


def _runs(grid: Path) -> list[Path]:
    return sorted(p for p in grid.iterdir() if p.name.startswith("model_"))


def _stacked(grid: Path, name: str) -> pd.DataFrame:
    return pd.concat([pd.read_csv(run / name).assign(run=run.name) for run in _runs(grid)],
                     ignore_index=True)


def test_figures_are_written_and_in_the_report(analysed):
    _, out, _ = analysed
    report = (out / "report.md").read_text()
    for name in FIGURES:
        for suffix in ("png", "pdf"):
            path = out / "figs" / f"{name}.{suffix}"
            assert path.is_file() and path.stat().st_size > 1000, path
        assert f"](figs/{name}.png)" in report
    assert "volume_summary.csv" in report
    assert (out / "tables" / "volume_summary.tex").is_file()
    header = next(line for line in report.splitlines() if line.startswith("| condition | m |"))
    assert "test acc" in header and "log-vol @0.3" in header
    assert sum(line.startswith("| all runs | ") for line in report.splitlines()) >= 2  # per m
    assert (out / "tables" / "final_metrics.tex").is_file()


def test_precondition_the_grid_has_zero_volumes_and_crossings(analysed):
    grid, _, _ = analysed
    volume = _stacked(grid, "volume.csv")
    cutoffs = _stacked(grid, "cutoffs.csv")
    assert np.isneginf(volume["log_volume"]).any(), "cutoff 0.3 should give zero volumes"
    assert cutoffs["crossed"].any() and not cutoffs["crossed"].all()


def test_log_volume_points_are_the_means_across_seeds(analysed):
    grid, _, seen = analysed
    points = seen["plot_log_volume_vs_size"][0][0]
    volume = _stacked(grid, "volume.csv")
    expected = volume.groupby(["cutoff", "landscape_size", "train_size"])["log_volume"]
    expected = expected.agg(lambda v: v.to_numpy().mean())  # -inf when any seed is -inf
    got = points.set_index(["cutoff", "landscape_size", "train_size"])["mean"]
    assert len(got) == len(expected) == 2 * 2 * 2
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-12) if np.isfinite(value) \
            else np.isneginf(got[key]), key


def test_zero_volumes_are_marked_not_drawn_through(analysed):
    grid, _, seen = analysed
    volume = _stacked(grid, "volume.csv")
    zero = volume[np.isneginf(volume["log_volume"])]
    lines_by_panel = seen["fig:log_volume_vs_size"]
    axes = seen["axes:log_volume_vs_size"]
    for panel in lines_by_panel:  # no line or marker sits at a non-finite height
        for _, y, _, _ in panel:
            assert np.isfinite(np.asarray(y, dtype=float)).all()
    titles = [ax.get_title() for ax in axes]
    for cutoff, rows in zero.groupby("cutoff"):
        panel = lines_by_panel[titles.index(f"cutoff {cutoff:g}")]
        marked = [x for x, _, marker, _ in panel if marker == plots.ZERO_MARKER]
        marked = set(np.concatenate(marked).astype(float)) if marked else set()
        assert set(rows["train_size"].astype(float)) <= marked


def test_summary_table_equals_means_of_the_runs_csvs(analysed):
    grid, out, _ = analysed
    summary = pd.read_csv(out / "volume_summary.csv").set_index("m")
    tests = _stacked(grid, "test_accuracies.csv").groupby("m")
    volume = _stacked(grid, "volume.csv")
    own = volume[volume["landscape_size"] == volume["train_size"]]
    cutoffs = _stacked(grid, "cutoffs.csv")
    assert list(summary.index) == [0, 60]
    assert list(summary["n"]) == [2, 2]
    assert list(summary["train_size"]) == [60, 120]
    for m in (0, 60):
        row = summary.loc[m]
        assert row["test_acc_mean"] == pytest.approx(tests.get_group(m)["test_acc"].mean())
        assert row["test_loss_mean"] == pytest.approx(tests.get_group(m)["test_loss"].mean())
        for cutoff in (0.3, 1.0):
            lv = own[(own["m"] == m) & (own["cutoff"] == cutoff)]["log_volume"]
            assert len(lv) == 2
            assert row[f"log_volume_c{cutoff:g}_mean"] == pytest.approx(lv.mean())
            sizes = cutoffs[(cutoffs["m"] == m) & (cutoffs["cutoff"] == cutoff)]["cutoff_size"]
            assert row[f"cutoff_size_c{cutoff:g}_crossed"] == sizes.notna().sum()
            if sizes.notna().any():
                assert row[f"cutoff_size_c{cutoff:g}_mean"] == pytest.approx(sizes.mean())
            else:
                assert np.isnan(row[f"cutoff_size_c{cutoff:g}_mean"])
        uncrossed = volume[volume["m"] == m].groupby("run")["n_uncrossed"].sum()
        assert row["n_uncrossed_mean"] == pytest.approx(uncrossed.mean())


def test_loss_curves_and_cutoff_markers_are_means_across_seeds(analysed):
    grid, _, seen = analysed
    (curves, markers, cutoffs, _), _ = seen["plot_loss_curves"]
    assert list(cutoffs) == [0.3, 1.0]
    for m in (0, 60):
        stacked = np.stack([np.load(run / "cutoffs" / "loss_curves.npz")[f"m{m}"]
                            for run in _runs(grid)])
        drawn = curves[curves["m"] == m].sort_values("s")["loss"].to_numpy()
        np.testing.assert_allclose(drawn, stacked.mean(axis=0), rtol=1e-12)
    table = _stacked(grid, "cutoffs.csv")
    for _, row in markers.iterrows():
        sizes = table[(table["m"] == row["m"]) & (table["cutoff"] == row["cutoff"])]
        assert row["crossed"] == sizes["cutoff_size"].notna().sum()
        if row["crossed"]:
            assert row["cutoff_size"] == pytest.approx(sizes["cutoff_size"].mean())


def test_findings_state_the_trend_and_the_correlation(analysed):
    grid, out, seen = analysed
    report = (out / "report.md").read_text()
    volume = _stacked(grid, "volume.csv")
    own = volume[(volume["landscape_size"] == volume["train_size"]) & (volume["cutoff"] == 0.3)]
    fewest = own[own["m"] == 0]["log_volume"].mean()
    most = own[own["m"] == 60]["log_volume"].mean()
    assert (f"the log-volume goes from {fewest:.4g}" in report
            and f"to {most:.4g}" in report), report
    assert f"a change of {most - fewest:+.4g}" in report

    tests = _stacked(grid, "test_accuracies.csv")
    models = own.merge(tests, on=["run", "m"])
    models = models[np.isfinite(models["log_volume"])]
    rho = stats.spearmanr(models["log_volume"], models["test_acc"]).statistic
    assert f"with test accuracy rho = {rho:+.2f}" in report
    points = seen["plot_volume_vs_test"][0][0]
    assert len(points) == len(models) == 4  # one point per (run, m), all finite here

    zero = int(np.isneginf(volume["log_volume"]).sum())
    assert f"{zero} of {len(volume)} measured volumes are zero" in report
    uncrossed = int(volume["n_uncrossed"].sum())
    assert (f"{uncrossed} of {int(volume['n_directions'].sum())} radii" in report
            or (uncrossed == 0 and "no volume is a lower bound" in report))


def test_a_run_missing_a_stage_output_is_reported_not_fatal(analysed, tmp_path):
    grid, _, _ = analysed
    copy = tmp_path / grid.name
    shutil.copytree(grid, copy, ignore=shutil.ignore_patterns("models", "perturb"))
    (copy / "model_1_data_0" / "volume.csv").unlink()
    out = tmp_path / "analysis"
    assert _analyze(copy, out) == 0
    report = (out / "report.md").read_text()
    assert "1 run(s) lack volume.csv" in report
    summary = pd.read_csv(out / "volume_summary.csv")
    assert list(summary["n"]) == [2, 2]  # test metrics of both runs still count
    assert list(summary["test_acc_count"]) == [2, 2]
    assert list(summary["log_volume_c0.3_count"]) == [1, 1]


def test_the_study_declares_this_analysis_without_importing_torch():
    import subprocess
    import sys

    code = ("import sys; from sweeplab.analysis.spec import get_analysis; "
            "from sweeplab.studies.volume import analysis; "
            "assert get_analysis('minima-volume') is analysis.ANALYSIS; "
            "assert 'torch' not in sys.modules")
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0


def test_every_config_key_is_a_condition_a_replicate_or_no_result():
    """A key missing from all three would merge conditions that differ in it (radius_norm
    once was), or split replicates that differ only in how they were computed."""
    from sweeplab.studies.volume import analysis
    from sweeplab.studies.volume.config import VolumeConfig

    groups = (analysis.GROUP_KEYS, analysis.REPLICATE_KEYS, analysis.NO_RESULT_KEYS)
    assert sorted(k for g in groups for k in g) == sorted(VolumeConfig.model_fields)
    # what changes no result is not part of a run's identity either
    assert set(analysis.NO_RESULT_KEYS) <= VolumeConfig.IDENTITY_EXCLUDED


def test_the_report_has_the_paper_table_and_the_k_table(analysed):
    """A low-data grid: every poison claim "not run"; the K table ranks its models."""
    grid, out, _ = analysed
    report = (out / "report.md").read_text()
    assert "## Paper vs this run" in report
    table = pd.read_csv(out / "tables" / "reproduction.csv")
    assert set(table["verdict"]) == {"not run"} and len(table) == 4
    ranking = pd.read_csv(out / "volume_by_k_ranking.csv")
    assert list(ranking["k"]) == [6]  # no prefix below K = 6: all K only
    assert ranking["same_ranking"].iloc[0] == ranking["runs"].iloc[0] == 2
    assert "k directions" in report
