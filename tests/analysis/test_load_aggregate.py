"""Loading runs and aggregating them across seeds, on small grids with known numbers."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from sweeplab.analysis import load as load_mod
from sweeplab.analysis.aggregate import (
    aggregate_curves,
    aggregate_final,
    condition_label,
    to_latex,
    varying_keys,
    write_condition_json,
)
from sweeplab.analysis.load import (
    AnalysisInputError,
    MixedStudiesError,
    find_run_dirs,
    load_metrics,
    load_runs,
)
from sweeplab.studies.implicit_bias.analysis import CONDITION_KEYS

T_975_2 = 4.302652729911275  # t_{0.975, 2}: 95% two-sided, 3 samples


def _config(**overrides) -> dict:
    cfg = {"dataset": "synthetic", "digits": [0, 1], "pca": None, "potential": "lp",
           "p": 1.5, "L": 2, "seed": 0, "epochs": 3}
    cfg.update(overrides)
    return cfg


def write_run(grid: Path, name: str, config: dict | None = None, *, study="implicit-bias",
              state="done", final: dict | None = None, metrics: list[dict] | None = None,
              error: str | None = None) -> Path:
    """One run directory written by hand, the way sweeplab writes it."""
    run = grid / name
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump(
        {"study": study, "config_hash": name[:12], "config": config or _config(),
         "cli": {"run": ["sweeplab"]}}, sort_keys=False))
    status = {"state": state, "duration_s": 1.5}
    if error:
        status["error"] = error
    (run / "status.json").write_text(json.dumps(status))
    if final is not None:
        (run / "final.json").write_text(json.dumps(final))
    if metrics is not None:
        (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in metrics))
    return run


def _curve(values: list[float], key: str = "loss") -> list[dict]:
    return [{"epoch": e, key: v} for e, v in enumerate(values)]


@pytest.fixture
def grid(tmp_path: Path) -> Path:
    """Condition A (lp, p=1.5, L=2): 3 seeds, angle 1, 2, 3; condition B (L=1): 1 seed."""
    g = tmp_path / "20260101-000000_test"
    for seed, angle in enumerate([1.0, 2.0, 3.0]):
        write_run(g, f"L=2,seed={seed}", _config(seed=seed),
                  final={"angle_svm": angle, "margin": None if seed == 1 else 10.0 * angle,
                         "separable": True, "warnings": ["a", "b"] if seed == 0 else []},
                  metrics=_curve([seed + 1.0, seed + 2.0, seed + 3.0]))
    write_run(g, "L=1,seed=0", _config(L=1), final={"angle_svm": 7.0, "margin": 1.0,
                                                    "separable": False, "warnings": []},
              metrics=_curve([5.0, 6.0]))
    return g


# --------------------------------------------------------------------------- final stats


def test_final_statistics_match_a_hand_computation(grid):
    loaded = load_runs([grid])
    agg = aggregate_final(loaded.runs, CONDITION_KEYS, ["angle_svm", "margin"])
    a = agg.set_index("condition").loc["L=2"]
    assert a["count"] == 3 and a["angle_svm_count"] == 3
    assert a["angle_svm_mean"] == pytest.approx(2.0)
    assert a["angle_svm_std"] == pytest.approx(1.0)
    assert (a["angle_svm_min"], a["angle_svm_max"]) == (1.0, 3.0)
    half = T_975_2 / math.sqrt(3)
    assert a["angle_svm_ci_low"] == pytest.approx(2.0 - half)
    assert a["angle_svm_ci_high"] == pytest.approx(2.0 + half)
    # margin is null for seed 1: left out of that metric only
    assert a["margin_count"] == 2
    assert a["margin_mean"] == pytest.approx(20.0)
    assert a["margin_std"] == pytest.approx(math.sqrt(200.0))
    b = agg.set_index("condition").loc["L=1"]
    assert b["count"] == 1 and b["angle_svm_mean"] == 7.0
    assert math.isnan(b["angle_svm_std"]) and math.isnan(b["angle_svm_ci_low"])
    assert sorted(agg.loc[agg["condition"] == "L=2", "run_ids"].iloc[0]) == [
        f"{grid.name}/L=2,seed={s}" for s in range(3)]


def test_runs_table_columns(grid):
    runs = load_runs([grid]).runs.set_index("run_id")
    row = runs.loc[f"{grid.name}/L=2,seed=0"]
    assert row["grid"] == grid.name and row["study"] == "implicit-bias"
    assert row["state"] == "done" and row["duration_s"] == 1.5
    assert row["digits"] == (0, 1) and row["pca"] is None  # hashable tuple, None kept
    assert row["final.warnings"] == "a; b"
    assert runs["final.angle_svm"].dtype == np.float64
    assert runs.index.is_unique and list(runs.columns[:6]) == [
        "run_dir", "grid", "study", "state", "duration_s", "config_hash"]


def test_group_keys_choose_the_conditions(grid):
    runs = load_runs([grid]).runs
    by_potential = aggregate_final(runs, ("potential", "not_a_column"), ["angle_svm"])
    assert list(by_potential["count"]) == [4]
    assert by_potential["angle_svm_mean"].iloc[0] == pytest.approx((1 + 2 + 3 + 7) / 4)
    assert "not_a_column" not in by_potential.columns
    by_default = aggregate_final(runs, CONDITION_KEYS, ["angle_svm"])
    assert list(by_default["L"]) == [1, 2] and list(by_default["count"]) == [1, 3]
    for key in CONDITION_KEYS:
        assert key in by_default.columns


def test_labels_leave_out_keys_every_run_shares(grid):
    runs = load_runs([grid]).runs
    assert varying_keys(runs, CONDITION_KEYS) == ["L"]
    row = {"potential": "lp", "p": 1.5, "L": 2, "digits": (3, 5), "pca": None}
    assert condition_label(row, ["potential", "p", "L"]) == "potential=lp, p=1.5, L=2"
    assert condition_label(row, ["digits", "pca"]) == "digits=3-5, pca=none"
    assert condition_label(row, []) == "all runs"
    agg = aggregate_final(runs, CONDITION_KEYS, metrics=["angle_svm"])
    assert set(agg["condition"]) == {"L=1", "L=2"}


def test_boolean_final_metrics_aggregate_as_fractions(grid):
    agg = aggregate_final(load_runs([grid]).runs, CONDITION_KEYS, metrics=["final.separable"])
    assert list(agg["separable_mean"]) == [0.0, 1.0]


def test_a_metric_no_run_recorded_is_left_out_and_named(grid):
    # e.g. align_min in a grid of depth-1 runs: a study's metric list fits every grid
    agg = aggregate_final(load_runs([grid]).runs, CONDITION_KEYS,
                          metrics=["angle_svm", "align_min"])
    assert "angle_svm_mean" in agg.columns
    assert not any(c.startswith("align_min") for c in agg.columns)
    assert agg.attrs["missing_metrics"] == ["align_min"]


# --------------------------------------------------------------------------- curves


def test_curves_are_mean_std_count_per_condition_and_epoch(grid):
    loaded = load_runs([grid])
    long = load_metrics(loaded)
    assert list(long.columns) == ["run_id", "epoch", "loss"]
    assert long["loss"].dtype == np.float64 and len(long) == 3 * 3 + 2
    curves = aggregate_curves(long, loaded.runs, CONDITION_KEYS, ["loss"])
    a = curves[curves["condition"] == "L=2"].set_index("epoch")
    # seeds 0, 1, 2 log seed+1+epoch: mean epoch+2, std 1
    assert list(a.index) == [0, 1, 2]
    np.testing.assert_allclose(a["loss_mean"], [2.0, 3.0, 4.0])
    np.testing.assert_allclose(a["loss_std"], [1.0, 1.0, 1.0])
    assert list(a["loss_count"]) == [3, 3, 3]
    b = curves[curves["condition"] == "L=1"]
    assert list(b["epoch"]) == [0, 1] and list(b["loss_mean"]) == [5.0, 6.0]
    assert b["loss_std"].isna().all() and list(b["L"]) == [1, 1]


def test_missing_values_are_nan_and_left_out_of_the_curves(tmp_path):
    g = tmp_path / "g"
    write_run(g, "s0", _config(seed=0), final={"x": 1.0},
              metrics=[{"epoch": 0, "loss": 1.0, "acc": None}, {"epoch": 1, "loss": 2.0}])
    write_run(g, "s1", _config(seed=1), final={"x": 1.0},
              metrics=[{"epoch": 0, "loss": 3.0, "acc": 0.5}, {"epoch": 1, "loss": 4.0}])
    loaded = load_runs([g])
    long = load_metrics(loaded)
    assert long["acc"].isna().sum() == 3
    curves = aggregate_curves(long, loaded.runs, CONDITION_KEYS)
    assert list(curves["acc_count"]) == [1, 0] and list(curves["acc_mean"][:1]) == [0.5]
    only = load_metrics(loaded, ["acc", "absent"])
    assert list(only.columns) == ["run_id", "epoch", "acc", "absent"]
    assert only["absent"].isna().all()


# --------------------------------------------------------------------------- bad input


def test_unusable_runs_are_listed_and_the_rest_analysed(grid):
    write_run(grid, "no_final", _config(seed=7))                     # done, no final.json
    bad = write_run(grid, "bad_config", _config(seed=8), final={"angle_svm": 0.0})
    (bad / "config.yaml").write_text("config: [unclosed\n")
    write_run(grid, "failed", _config(seed=9), state="failed", error="NaN loss at step 3")
    bad_final = write_run(grid, "bad_final", _config(seed=14), final={})
    (bad_final / "final.json").write_text('{"angle_svm": 1.0,')
    write_run(grid, "running", _config(seed=10), state="running")
    torn = write_run(grid, "torn", _config(seed=11), final={"angle_svm": 2.0},
                     metrics=_curve([2.0, 3.0, 4.0]))
    with open(torn / "metrics.jsonl", "a") as fh:
        fh.write('{"epoch": 3, "loss": 0.12')                         # crash mid-write
    corrupt = write_run(grid, "corrupt_metrics", _config(seed=12), final={"angle_svm": 2.0},
                        metrics=_curve([1.0, 2.0, 3.0]))
    corrupt.joinpath("metrics.jsonl").write_text('{"epoch": 0, "loss": 1}\nnot json\n'
                                                 '{"epoch": 2, "loss": 3}\n')
    write_run(grid, "no_metrics", _config(seed=13), final={"angle_svm": 2.0})

    loaded = load_runs([grid])
    reasons = {p.name: r for p, r in loaded.skipped}
    assert reasons["no_final"].startswith("missing final.json")
    assert reasons["bad_config"].startswith("corrupt config.yaml")
    assert reasons["failed"] == "state failed: NaN loss at step 3"
    assert reasons["running"] == "state running"
    assert reasons["bad_final"].startswith("corrupt final.json")
    assert len(reasons) == 5
    assert len(loaded.runs) == 4 + 3  # the fixture's runs, torn, corrupt_metrics, no_metrics

    long = load_metrics(loaded)
    metric_reasons = {p.name: r for p, r in loaded.metrics_skipped}
    assert metric_reasons["corrupt_metrics"].startswith("corrupt metrics.jsonl")
    assert metric_reasons["no_metrics"] == "missing metrics.jsonl"
    assert len(metric_reasons) == 2
    torn_rows = long[long["run_id"] == f"{grid.name}/torn"]
    assert list(torn_rows["epoch"]) == [0, 1, 2]                      # torn line dropped
    agg = aggregate_final(loaded.runs, CONDITION_KEYS, metrics=["angle_svm"])
    assert agg["count"].sum() == 7


def test_no_usable_run_is_a_typed_error(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(AnalysisInputError, match="empty: no usable run") as err:
        load_runs([empty])
    assert "\n" not in str(err.value)
    write_run(tmp_path / "g", "failed", state="failed", error="boom")
    with pytest.raises(AnalysisInputError, match=r"no usable run \(1 skipped\)"):
        load_runs([tmp_path / "g"])
    with pytest.raises(AnalysisInputError, match="no such directory"):
        load_runs([tmp_path / "nowhere"])


def test_mixed_studies_are_a_typed_error_unless_one_is_chosen(tmp_path):
    g = tmp_path / "g"
    for i in range(2):
        write_run(g, f"ib{i}", _config(seed=i), final={"x": float(i)})
    write_run(g, "other0", {"lr": 0.1}, study="toy", state="failed")  # counts, unusable
    with pytest.raises(MixedStudiesError) as err:
        load_runs([g])
    message = str(err.value)
    assert "implicit-bias (2 runs)" in message and "toy (1 run)" in message
    assert err.value.counts == {"implicit-bias": 2, "toy": 1}
    assert isinstance(err.value, AnalysisInputError) and "\n" not in message

    write_run(g, "other1", {"lr": 0.2}, study="toy", final={"y": 1.0})
    loaded = load_runs([g], study="toy")
    assert list(loaded.runs["study"]) == ["toy"] and loaded.studies == {"implicit-bias", "toy"}
    assert {p.name for p, _ in loaded.skipped} == {"ib0", "ib1", "other0"}
    assert len(load_runs([g], study="implicit-bias").runs) == 2


# --------------------------------------------------------------------------- finding runs


def test_find_run_dirs_accepts_a_run_a_grid_or_any_folder(grid, tmp_path):
    run = grid / "L=2,seed=0"
    nested = run / "figs" / "inner"
    nested.mkdir(parents=True)
    (nested / "config.yaml").write_text("not a run of its own")        # never searched
    assert find_run_dirs(run) == [run]
    assert len(find_run_dirs(grid)) == 4
    assert find_run_dirs(tmp_path) == find_run_dirs(grid)
    loaded = load_runs([grid, run])                                     # counted once
    assert len(loaded.runs) == 4


# --------------------------------------------------------------------------- parquet cache


def test_parquet_cache_is_written_reused_and_rebuilt(grid, monkeypatch):
    loaded = load_runs([grid])
    run = grid / "L=2,seed=0"
    jsonl, cache = run / "metrics.jsonl", run / "metrics.parquet"
    assert not cache.exists()
    first = load_metrics(loaded)
    assert cache.exists()
    built = cache.stat().st_mtime_ns

    def no_parse(path):
        raise AssertionError(f"parsed {path} although its cache is current")

    monkeypatch.setattr(load_mod, "_parse_jsonl", no_parse)
    again = load_metrics(loaded)
    pd.testing.assert_frame_equal(first, again)
    assert cache.stat().st_mtime_ns == built
    monkeypatch.undo()

    with open(jsonl, "a") as fh:                                        # the run goes on
        fh.write(json.dumps({"epoch": 3, "loss": 99.0}) + "\n")
    os.utime(jsonl, ns=(built + 10**9, built + 10**9))
    rebuilt = load_metrics(loaded)
    rows = rebuilt[rebuilt["run_id"] == f"{grid.name}/L=2,seed=0"]
    assert list(rows["epoch"]) == [0, 1, 2, 3] and rows["loss"].iloc[-1] == 99.0
    assert cache.stat().st_mtime_ns != built

    # same size and mtime restored is not enough to fool it either way: an edit that
    # keeps the size but changes the mtime rebuilds too
    jsonl.write_text(jsonl.read_text().replace("99.0", "42.0"))
    os.utime(jsonl, ns=(built + 2 * 10**9, built + 2 * 10**9))
    rows = load_metrics(loaded)
    assert rows.loc[rows["run_id"] == f"{grid.name}/L=2,seed=0", "loss"].iloc[-1] == 42.0


def test_a_broken_cache_is_rebuilt_from_the_jsonl(grid):
    loaded = load_runs([grid])
    first = load_metrics(loaded)
    (grid / "L=1,seed=0" / "metrics.parquet").write_bytes(b"garbage")
    pd.testing.assert_frame_equal(load_metrics(loaded), first)


# --------------------------------------------------------------------------- outputs


def test_latex_table_is_booktabs_with_escaped_text(grid):
    agg = aggregate_final(load_runs([grid]).runs, CONDITION_KEYS, metrics=["angle_svm"])
    agg["note"] = ["50% & #1", "a_b"]
    tex = to_latex(agg, [("condition", "Condition"), ("note", "note_x"),
                         ("angle_svm", "angle_svm"), ("count", "n")],
                   caption="Angles to the SVM direction", label="tab:angles")
    lines = tex.splitlines()
    assert lines[:5] == [r"\begin{table}[t]", r"\centering",
                         r"\caption{Angles to the SVM direction}", r"\label{tab:angles}",
                         r"\begin{tabular}{llrr}"]
    for rule in (r"\toprule", r"\midrule", r"\bottomrule", r"\end{tabular}", r"\end{table}"):
        assert rule in lines
    assert r"Condition & note\_x & angle\_svm & n \\" in lines
    assert r"L=1 & 50\% \& \#1 & $7.00$ & 1 \\" in lines               # std NaN: mean only
    assert r"L=2 & a\_b & $2.00 \pm 1.00$ & 3 \\" in lines


def test_condition_json_files_hold_every_statistic_and_run(grid, tmp_path):
    agg = aggregate_final(load_runs([grid]).runs, CONDITION_KEYS, metrics=["angle_svm", "margin"])
    paths = write_condition_json(agg, tmp_path / "conditions")
    assert [p.name for p in paths] == ["L=1.json", "L=2.json"]
    doc = json.loads(paths[1].read_text())
    assert doc["condition"] == "L=2" and doc["count"] == 3
    assert doc["group"]["L"] == 2 and doc["group"]["digits"] == [0, 1]
    assert doc["group"]["pca"] is None
    assert doc["stats"]["angle_svm"]["mean"] == pytest.approx(2.0)
    assert set(doc["stats"]["angle_svm"]) == {"count", "mean", "std", "min", "max",
                                              "ci_low", "ci_high"}
    assert len(doc["run_ids"]) == 3
    assert json.loads(paths[0].read_text())["stats"]["angle_svm"]["std"] is None


# --------------------------------------------------------------------------- a real grid


def test_a_real_grid_made_by_sweeplab(tmp_path):
    from sweeplab.cli.main import main

    spec = Path(__file__).resolve().parents[2] / "runs" / "configs" / "quick_debug.yaml"
    assert main(["grid", str(spec), "--out_dir", str(tmp_path), "--executor", "inline"]) == 0
    loaded = load_runs([tmp_path])
    assert len(loaded.runs) == 4 and not loaded.skipped and loaded.studies == {"implicit-bias"}
    agg = aggregate_final(loaded.runs, CONDITION_KEYS, ["angle_svm", "loss"])
    assert len(agg) == 4 and list(agg["count"]) == [1] * 4
    assert varying_keys(loaded.runs, CONDITION_KEYS) == ["potential", "p", "L"]
    long = load_metrics(loaded, ["loss", "angle_svm"])
    assert not loaded.metrics_skipped
    curves = aggregate_curves(long, loaded.runs, CONDITION_KEYS, ["loss"])
    for run_dir in loaded.runs["run_dir"]:
        lines = Path(run_dir, "metrics.jsonl").read_text().splitlines()
        assert len(long[long["run_id"].str.endswith(Path(run_dir).name)]) == len(lines)
        assert Path(run_dir, "metrics.parquet").exists()
    # one run per condition: the mean curve is that run's curve, its last value final loss
    last = curves.sort_values("epoch").groupby("condition")["loss_mean"].last()
    np.testing.assert_allclose(last.sort_index().to_numpy(),
                               agg.set_index("condition")["loss_mean"].sort_index().to_numpy())
