"""Analysis figures: files written, and the figure shows what the tables say.

Each figure is captured as it is saved (``save_figure`` wrapped), so the tests read the
drawn lines, bands, cells and boxes back and compare them with the input numbers.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection

from sweeplab.analysis import plotting
from sweeplab.analysis import style as style_module
from sweeplab.studies.implicit_bias import plots

REPO = Path(__file__).resolve().parents[2]
BASELINES = ("svm", "logreg", "lp_max_margin", "linear_md")
SETTINGS = (("quadratic", 1.5), ("lp", 1.5), ("lp", 3.0))


@pytest.fixture
def captured(monkeypatch) -> list:
    """Every figure saved through ``save_figure`` while the test runs, in order."""
    figures: list = []

    def recording_save(fig, path, *args, **kwargs):
        figures.append(fig)
        return style_module.save_figure(fig, path, *args, **kwargs)

    monkeypatch.setattr(plotting, "save_figure", recording_save)
    monkeypatch.setattr(plots, "save_figure", recording_save)
    return figures


def assert_figure_files(paths: list[Path], n_figures: int = 1) -> None:
    """One .png and one .pdf per figure, non-empty; the png a real image of sensible size."""
    suffixes = [p.suffix for p in paths]
    assert suffixes.count(".png") == suffixes.count(".pdf") == n_figures == len(paths) / 2
    assert {p.with_suffix("") for p in paths if p.suffix == ".png"} == {
        p.with_suffix("") for p in paths if p.suffix == ".pdf"}
    for path in paths:
        assert path.is_file() and path.stat().st_size > 1000, path
        if path.suffix == ".pdf":
            assert path.read_bytes()[:5] == b"%PDF-"
        else:
            image = mpimg.imread(path)
            height, width = image.shape[:2]
            assert 300 <= height <= 6000 and 400 <= width <= 8000, (path, image.shape)
            assert image.std() > 0.01  # not a blank canvas


def condition_of(potential: str, p: float, depth: int) -> str:
    return f"{plots.potential_setting(potential, p)}, L={depth}"


def make_curves(epochs: int = 60, depths=(1, 2)) -> pd.DataFrame:
    """Aggregated curves of 3 settings x depths: known means and stds, NaN layer metrics at L=1."""
    rows = []
    for i, ((potential, p), depth) in enumerate((s, d) for s in SETTINGS for d in depths):
        for epoch in range(epochs):
            row = {"condition": condition_of(potential, p, depth), "potential": potential,
                   "p": p, "L": depth, "epoch": epoch}
            for j, name in enumerate(BASELINES):
                row[f"angle_{name}_mean"] = 30.0 / (1 + epoch) + i + j
                row[f"angle_{name}_std"] = 0.5
                row[f"angle_{name}_count"] = 3
            for m in ("margin_l2_ratio", "margin_p_ratio", "margin_l2", "margin_p", "loss"):
                row[f"{m}_mean"] = 1 - 0.5 / (1 + epoch) - 0.01 * i
                row[f"{m}_std"] = 0.01
                row[f"{m}_count"] = 3
            for m, value in (("balance_drift_max", 1e-4 * epoch), ("align_min", 0.9),
                             ("rank1_min", 0.8)):
                row[f"{m}_mean"] = value * (i + 1) if depth > 1 else np.nan
                row[f"{m}_std"] = 1e-5 if depth > 1 else np.nan
                row[f"{m}_count"] = 3 if depth > 1 else 0
            rows.append(row)
    return pd.DataFrame(rows)


def make_finals() -> pd.DataFrame:
    """Aggregated finals over 4 settings x 2 depths; L=1 has no balance or alignment."""
    rows = []
    settings = SETTINGS + (("hypentropy", 1.5),)
    for i, ((potential, p), depth) in enumerate((s, d) for s in settings for d in (1, 2)):
        row = {"potential": potential, "p": p, "L": depth,
               "condition": condition_of(potential, p, depth), "count": 3}
        for m, value in (("angle_svm", 2.0 + i), ("balance_drift_max", 1e-4 * (i + 1)),
                         ("align_min", 0.9 + 0.01 * i), ("rank1_min", 0.5 + 0.01 * i)):
            layered = m in ("balance_drift_max", "align_min", "rank1_min")
            v = np.nan if layered and depth == 1 else value
            for stat, offset in (("mean", 0), ("std", 0.1), ("min", -0.1), ("max", 0.1),
                                 ("ci_low", -0.2), ("ci_high", 0.2)):
                row[f"{m}_{stat}"] = v + offset * (stat != "mean")
            row[f"{m}_count"] = 0 if np.isnan(v) else 3
        rows.append(row)
    # reversed, so the figure's row order (quadratic, lp by p, hypentropy) is its own doing
    return pd.DataFrame(rows[::-1]).reset_index(drop=True)


def make_runs(seeds: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for (potential, p), depth in ((s, d) for s in SETTINGS for d in (1, 2)):
        for seed in range(seeds):
            row = {"run_id": f"{potential}-{p}-{depth}-{seed}", "potential": potential,
                   "p": p, "beta": 1.0, "L": depth, "seed": seed, "lr": 0.05}
            for name in BASELINES:
                row[f"final.angle_{name}"] = float(rng.uniform(0, 10))
            row["final.margin_l2_ratio"] = float(rng.uniform(0.9, 1))
            row["final.margin_p_ratio"] = float(rng.uniform(0.9, 1))
            rows.append(row)
    return pd.DataFrame(rows)


# ------------------------------------------------------------------- generic figures


def test_plot_curves_draws_mean_and_band_per_condition(tmp_path, captured):
    curves = make_curves()
    paths = plotting.plot_curves(curves, "loss", tmp_path / "loss", ylabel="loss")
    assert_figure_files(paths)
    (ax,) = captured[0].axes
    conditions = list(dict.fromkeys(curves["condition"]))
    assert [line.get_label() for line in ax.get_lines()] == conditions
    bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(bands) == len(conditions)
    first = curves[curves["condition"] == conditions[0]]
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), first["loss_mean"])
    # the band spans mean - std .. mean + std
    ys = bands[0].get_paths()[0].vertices[:, 1]
    assert ys.min() == pytest.approx((first["loss_mean"] - first["loss_std"]).min())
    assert ys.max() == pytest.approx((first["loss_mean"] + first["loss_std"]).max())
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == conditions


def test_plot_curves_many_conditions_stay_distinct_and_legend_moves_out(tmp_path, captured):
    epochs = np.arange(1000)
    curves = pd.concat([
        pd.DataFrame({"condition": f"condition number {i}", "epoch": epochs,
                      "loss_mean": 1.0 / (1 + epochs) + i, "loss_std": 0.1})
        for i in range(12)
    ])
    plotting.plot_curves(curves, "loss", tmp_path / "many", ylabel="loss", title="many")
    (ax,) = captured[0].axes
    styles = {(line.get_color(), line.get_linestyle()) for line in ax.get_lines()}
    assert len(styles) == 12
    assert ax.get_xscale() == "log"  # 1,000 epochs span three decades
    anchor = ax.get_legend().get_bbox_to_anchor().transformed(ax.transAxes.inverted())
    assert anchor.x0 > 1.0  # legend right of the axes, not over the curves


def test_plot_curves_logx_auto_keeps_short_runs_linear(tmp_path, captured):
    curves = make_curves(epochs=50)
    plotting.plot_curves(curves, "loss", tmp_path / "short", ylabel="loss")
    assert captured[0].axes[0].get_xscale() == "linear"
    plotting.plot_curves(curves, "loss", tmp_path / "forced", ylabel="loss", logx=True)
    assert captured[1].axes[0].get_xscale() == "log"


def test_plot_curves_names_a_missing_metric(tmp_path):
    with pytest.raises(ValueError, match="angle_nope_mean"):
        plotting.plot_curves(make_curves(), "angle_nope", tmp_path / "x", ylabel="x")


def test_plot_heatmap_cells_equal_the_means(tmp_path, captured):
    finals = make_finals()
    finals["setting"] = [plots.potential_setting(*r) for r in zip(finals["potential"],
                                                                   finals["p"])]
    paths = plotting.plot_heatmap(finals, "setting", "L", "balance_drift_max",
                                  tmp_path / "heat", "drift", fmt="{:.4g}")
    assert_figure_files(paths)
    ax = captured[0].axes[0]
    cells = np.ma.filled(ax.images[0].get_array().astype(float), np.nan)
    expected = finals.pivot(index="setting", columns="L", values="balance_drift_max_mean")
    rows = [t.get_text() for t in ax.get_yticklabels()]
    assert rows == list(dict.fromkeys(finals["setting"]))  # order of first appearance
    np.testing.assert_array_equal(cells, expected.loc[rows, [1, 2]].to_numpy())
    texts = sorted(t.get_text() for t in ax.texts)
    means = finals["balance_drift_max_mean"].dropna()
    assert texts == sorted(f"{v:.4g}" for v in means)  # NaN cells: no text


def test_heatmap_table_refuses_cells_shared_by_conditions():
    finals = make_finals()
    with pytest.raises(ValueError, match="several conditions"):
        plotting.heatmap_table(finals, "potential", "L", "angle_svm")  # lp has two p


def test_plot_boxplots_one_box_per_condition_with_its_median(tmp_path, captured):
    runs = make_runs()
    runs.loc[0, "final.angle_svm"] = np.nan  # a failed run is left out, not plotted as 0
    columns = ["final.angle_svm", "angle_logreg"]  # the final. prefix may be omitted
    paths = plotting.plot_boxplots(runs, columns, ["potential", "p", "L"],
                                   tmp_path / "box", ylabel="degrees")
    assert_figure_files(paths)
    axes = [ax for ax in captured[0].axes if ax.get_visible()]
    assert len(axes) == 2
    labels = [t.get_text() for t in axes[0].get_xticklabels()]
    assert labels[0] == "potential=quadratic, p=1.5, L=1" and len(labels) == 6
    medians = [  # median lines: horizontal, as wide as the box (caps are half as wide)
        line.get_ydata()[0] for line in axes[0].lines
        if len(line.get_xdata()) == 2 and line.get_ydata()[0] == line.get_ydata()[1]
        and np.ptp(line.get_xdata()) == pytest.approx(0.55)
    ]
    groups = runs.groupby(["potential", "p", "L"], sort=False)["final.angle_svm"]
    np.testing.assert_allclose(medians, [np.nanmedian(v) for _, v in groups])
    dots = [c for c in axes[0].collections if c.get_offsets().shape[0]]
    assert sum(c.get_offsets().shape[0] for c in dots) == runs["final.angle_svm"].notna().sum()


# ------------------------------------------------------- implicit bias, across seeds


def test_angles_across_seeds_one_panel_per_baseline(tmp_path, captured):
    curves = make_curves()
    assert_figure_files(plots.plot_angles_over_time(curves, tmp_path / "angles"))
    fig = captured[0]
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == [f"vs {label}" for label in plots.BASELINE_LABELS.values()]
    n = curves["condition"].nunique()
    for ax in fig.axes:
        assert len(ax.get_lines()) == n
        assert sum(isinstance(c, PolyCollection) for c in ax.collections) == n
    legend_texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend_texts == list(dict.fromkeys(curves["condition"]))
    # one colour per condition, the same in every panel
    colours = [[line.get_color() for line in ax.get_lines()] for ax in fig.axes]
    assert all(c == colours[0] for c in colours) and len(set(colours[0])) == n


def test_margins_across_seeds_ratio_panels_with_the_optimum(tmp_path, captured):
    curves = make_curves()
    assert_figure_files(plots.plot_margins_over_time(curves, tmp_path / "margins"))
    fig = captured[0]
    assert len(fig.axes) == 2
    n = curves["condition"].nunique()
    for ax in fig.axes:
        assert len(ax.get_lines()) == n + 1  # conditions + the dashed optimum at 1
        assert list(ax.get_lines()[-1].get_ydata()) == [1, 1]
    assert fig.legends[0].get_texts()[-1].get_text() == "optimum (1)"


def test_norm_balance_across_seeds_leaves_out_single_layer_conditions(tmp_path, captured):
    curves = make_curves()
    assert_figure_files(plots.plot_norm_balance(curves, tmp_path / "balance"))
    (ax,) = captured[0].axes
    deep = [c for c in dict.fromkeys(curves["condition"]) if c.endswith("L=2")]
    assert [line.get_label() for line in ax.get_lines()] == deep
    plots.plot_norm_balance(make_curves(depths=(1,)), tmp_path / "shallow")
    assert "L = 1 only" in captured[1].axes[0].texts[0].get_text()


def test_alignment_across_seeds(tmp_path, captured):
    assert_figure_files(plots.plot_alignment(make_curves(), tmp_path / "align"))
    assert [len(ax.get_lines()) for ax in captured[0].axes] == [3, 3]


def test_single_run_figures_unchanged(tmp_path, captured):
    """Rows, a column mapping and a one-run DataFrame all give the per-run figure."""
    epochs = np.arange(30)
    cols = {"epoch": epochs, **{f"angle_{b}": 20.0 / (1 + epochs) + k
                                for k, b in enumerate(BASELINES)}}
    rows = [{k: float(v[i]) for k, v in cols.items()} for i in range(len(epochs))]
    for results in (rows, cols, pd.DataFrame(cols)):
        assert_figure_files(plots.plot_angles_over_time(results, tmp_path / "run_angles"))
    for fig in captured:
        (ax,) = fig.axes
        assert [line.get_label() for line in ax.get_lines()] == list(
            plots.BASELINE_LABELS.values())
        np.testing.assert_allclose(ax.get_lines()[1].get_ydata(), cols["angle_logreg"])
        assert ax.get_title() == "Direction of the end-to-end predictor"


def test_heatmaps_over_setting_and_depth(tmp_path, captured):
    finals = make_finals()
    paths = plots.plot_heatmaps(finals, tmp_path / "heatmap")
    assert_figure_files(paths, n_figures=2)
    assert {p.stem for p in paths} == {"heatmap_norm_balance", "heatmap_alignment"}
    balance, alignment = captured
    assert [ax.get_title() for ax in alignment.axes if ax.images][:2] == [
        plots.HEATMAPS["alignment"]["align_min"], plots.HEATMAPS["alignment"]["rank1_min"]]
    ax = balance.axes[0]
    rows = [t.get_text() for t in ax.get_yticklabels()]
    assert rows == ["quadratic", "lp p=1.5", "lp p=3", "hypentropy"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["2"]  # L=1: no balance at all
    cells = np.ma.filled(ax.images[0].get_array().astype(float), np.nan)[:, 0]
    deep = finals[finals["L"] == 2].set_index("potential")
    expected = [deep[deep["p"] == 1.5].loc["quadratic", "balance_drift_max_mean"],
                deep[deep["p"] == 1.5].loc["lp", "balance_drift_max_mean"],
                deep[deep["p"] == 3.0].loc["lp", "balance_drift_max_mean"],
                deep.loc["hypentropy", "balance_drift_max_mean"]]
    np.testing.assert_array_equal(cells, expected)
    assert [t.get_text() for t in ax.texts] == [f"{v:.2e}" for v in expected]


def test_final_boxplots_label_conditions_by_setting_and_depth(tmp_path, captured):
    runs = make_runs()
    paths = plots.plot_final_boxplots(runs, tmp_path / "boxplot")
    assert_figure_files(paths, n_figures=2)
    angles, margins = captured
    assert len([ax for ax in angles.axes if ax.get_visible()]) == 4
    assert len([ax for ax in margins.axes if ax.get_visible()]) == 2
    labels = [t.get_text() for t in angles.axes[0].get_xticklabels()]
    assert labels == [condition_of(pot, p, d) for pot, p in SETTINGS for d in (1, 2)]


# ----------------------------------------------------------------- a real 2-D grid


@pytest.fixture(scope="module")
def real_grid(tmp_path_factory) -> list[Path]:
    """The quick_debug grid (4 runs, 2-D synthetic data), run inline; its run dirs."""
    from sweeplab.cli.main import main

    out = tmp_path_factory.mktemp("quick_debug")
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        assert main(["grid", "runs/configs/quick_debug.yaml", "--out_dir", str(out),
                     "--executor", "inline"]) in (0, None)
    finally:
        os.chdir(cwd)
    dirs = sorted(p.parent for p in out.glob("*/*/directions.json"))
    assert len(dirs) == 4
    return dirs


def test_decision_boundaries_of_a_real_grid(real_grid, tmp_path, captured):
    bogus = tmp_path / "not_a_run"
    bogus.mkdir()
    paths = plots.plot_decision_boundaries([bogus, *real_grid], tmp_path / "boundaries")
    assert_figure_files(paths)
    fig = captured[0]
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert len(panels) == 4  # the bogus directory is passed over
    for ax, run_dir in zip(panels, real_grid):
        directions = json.loads((run_dir / "directions.json").read_text())
        drawn = {line.get_label() for line in ax.get_lines()}
        expected = {"deep network"} | {plots.BASELINE_LABELS[b] for b in BASELINES
                                       if directions.get(b) is not None}
        assert drawn == expected
        # the deep network's line is {x : <w, x> = 0}
        w = np.asarray(directions["end_to_end"])
        deep = next(line for line in ax.get_lines() if line.get_label() == "deep network")
        points = np.column_stack([deep.get_xdata(), deep.get_ydata()])
        np.testing.assert_allclose(points @ w, 0, atol=1e-9)
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "deep network" in legend and "y = +1" in legend

    plots.plot_decision_boundaries(real_grid, tmp_path / "two", max_runs=2)
    assert len([ax for ax in captured[1].axes if ax.get_visible()]) == 2
    assert plots.plot_decision_boundaries([bogus], tmp_path / "none") == []
    assert not list(tmp_path.glob("none*"))


def test_grid_figures_from_a_real_grid(real_grid, tmp_path, captured):
    """Runs, finals and curves built from the grid's own files draw every figure."""
    master = pd.read_csv(next(real_grid[0].parent.glob("master.csv")))
    runs = master[master["state"] == "done"].copy()
    runs["setting"] = [plots.potential_setting(pot, p) for pot, p in
                       zip(runs["potential"], runs["p"])]
    runs["condition"] = [f"{s}, L={d}" for s, d in zip(runs["setting"], runs["L"])]
    long = []
    for run_dir, condition in zip(runs["run"], runs["condition"]):
        rows = [json.loads(line) for line in
                (real_grid[0].parent / run_dir / "metrics.jsonl").read_text().splitlines()]
        long.append(pd.DataFrame(rows).assign(condition=condition))
    metrics = ["angle_svm", "angle_logreg", "angle_lp_max_margin", "angle_linear_md",
               "margin_l2_ratio", "margin_p_ratio", "balance_drift_max"]
    grouped = pd.concat(long).groupby(["condition", "epoch"], sort=False)[metrics]
    curves = pd.concat([grouped.mean().add_suffix("_mean"), grouped.std().add_suffix("_std")],
                       axis=1).reset_index()
    finals = runs[["setting", "L", "condition"]].copy()
    for m in ("balance_drift_max", "align_min", "rank1_min"):
        finals[f"{m}_mean"] = runs[f"final.{m}"].to_numpy()

    paths = [
        *plots.plot_angles_over_time(curves, tmp_path / "angles"),
        *plots.plot_margins_over_time(curves, tmp_path / "margins"),
        *plots.plot_norm_balance(curves, tmp_path / "balance"),
        *plots.plot_heatmaps(finals, tmp_path / "heatmap"),
        *plots.plot_final_boxplots(runs, tmp_path / "boxplot"),
    ]
    assert_figure_files(paths, n_figures=7)
    balance = captured[2].axes[0]
    assert [line.get_label() for line in balance.get_lines()] == [
        c for c in curves["condition"].unique() if c.endswith("L=2")]
    heat = captured[3].axes[0]
    assert [t.get_text() for t in heat.get_yticklabels()] == ["quadratic", "lp p=3"]
    expected = [runs[(runs["setting"] == s) & (runs["L"] == 2)]["final.balance_drift_max"]
                .item() for s in ("quadratic", "lp p=3")]
    assert [t.get_text() for t in heat.texts] == [f"{v:.2e}" for v in expected]


def test_decision_boundaries_show_conditions_before_second_seeds():
    names = [f"potential={pot},L={d},seed={s}" for pot in ("lp", "quadratic")
             for d in (1, 2) for s in (0, 1, 2)]
    order = [p.name for p in plots.spread_over_conditions([Path(n) for n in names])]
    assert sorted(order) == sorted(names)
    assert [n.rsplit(",", 1)[1] for n in order[:4]] == ["seed=0"] * 4
    assert len({n.rsplit(",", 1)[0] for n in order[:4]}) == 4
