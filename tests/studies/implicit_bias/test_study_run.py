"""One implicit-bias run end to end: the files a run directory must hold, and their content."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import yaml

from sweeplab.core.experiment import make_experiment_dir
from sweeplab.core.registry import get_study
from sweeplab.execute.single import execute_run
from sweeplab.studies.implicit_bias.metrics import angle_deg


def _run(tmp_path, **overrides):
    study = get_study("implicit-bias")
    cfg = study.config.from_mapping({"epochs": 60, **overrides})
    run_dir = make_experiment_dir(tmp_path, "t")
    result = execute_run(study, cfg, run_dir, cli={"explicit": overrides})
    return cfg, result


def test_synthetic_run_writes_every_file(tmp_path):
    cfg, result = _run(tmp_path, potential="lp", p=3.0, L=2, log_interval=7,
                       figure_formats=("png", "pdf"))
    d = result.run_dir
    assert result.state == "done", result.error
    for name in ("config.yaml", "status.json", "provenance.json", "final.json", "metrics.jsonl",
                 "metrics.csv", "directions.json", "dataset.npz", "logs/run.log"):
        assert (d / name).is_file(), name
    for fig in ("angles", "margins", "norm_balance", "alignment", "decision_boundary"):
        for ext in ("png", "pdf"):
            assert (d / "figs" / f"{fig}.{ext}").stat().st_size > 1000, (fig, ext)

    saved = yaml.safe_load((d / "config.yaml").read_text())
    assert saved["study"] == "implicit-bias" and saved["config"]["p"] == 3.0
    assert saved["config_hash"] == cfg.config_hash()
    assert saved["cli"]["explicit"]["log_interval"] == 7

    rows = [json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [0, 7, 14, 21, 28, 35, 42, 49, 56, 60]
    with open(d / "metrics.csv") as fh:
        csv_rows = list(csv.DictReader(fh))
    assert len(csv_rows) == len(rows)
    assert float(csv_rows[-1]["angle_svm"]) == pytest.approx(rows[-1]["angle_svm"])

    final = json.loads((d / "final.json").read_text())
    assert final["angle_svm"] == rows[-1]["angle_svm"] and final["epoch"] == 60
    assert 0.0 <= final["test_acc"] <= 1.0

    dirs = json.loads((d / "directions.json").read_text())
    assert set(dirs) >= {"end_to_end", "svm", "logreg", "lp_max_margin", "linear_md",
                         "n_samples", "input_dim"}
    assert dirs["n_samples"] == 512 and dirs["input_dim"] == 2
    assert angle_deg(np.array(dirs["end_to_end"]), np.array(dirs["svm"])) == pytest.approx(
        final["angle_svm"])

    data = np.load(d / "dataset.npz")
    assert data["X"].shape == (512, 2) and set(np.unique(data["y"])) == {-1.0, 1.0}
    z = data["y"] * (data["X"] @ np.array(dirs["svm"]))
    assert z.min() == pytest.approx(1.0, abs=1e-5)  # the saved data is what was trained on

    status = json.loads((d / "status.json").read_text())
    assert status["state"] == "done" and status["duration_s"] > 0
    prov = json.loads((d / "provenance.json").read_text())
    assert prov["seed"] == 0 and prov["packages"]["torch"]


def test_same_config_same_seed_gives_identical_metrics(tmp_path):
    _, a = _run(tmp_path, seed=3, epochs=30, plots=False)
    _, b = _run(tmp_path, seed=3, epochs=30, plots=False)
    _, c = _run(tmp_path, seed=4, epochs=30, plots=False)
    read = lambda r: (r.run_dir / "metrics.jsonl").read_text()  # noqa: E731
    assert read(a) == read(b)
    assert read(a) != read(c)


def test_non_separable_data_reports_baselines_unavailable(tmp_path):
    _, result = _run(tmp_path, separation=0.2, noise=1.5, epochs=20, plots=False)
    assert result.state == "done", result.error
    d = result.run_dir
    dirs = json.loads((d / "directions.json").read_text())
    assert dirs["svm"] is None and dirs["lp_max_margin"] is None
    assert dirs["logreg"] is not None and dirs["linear_md"] is not None
    final = json.loads((d / "final.json").read_text())
    assert final["separable"] is False
    assert any("separable" in w for w in final["warnings"])
    assert "angle_svm" not in final and "angle_logreg" in final
    assert "not linearly separable" in (d / "logs" / "run.log").read_text()


def test_digits_pair_with_pca_has_no_decision_boundary(tmp_path):
    _, result = _run(tmp_path, dataset="digits", digits=(3, 5), pca=10, L=3, epochs=30,
                     potential="quadratic")
    assert result.state == "done", result.error
    figs = {p.name for p in (result.run_dir / "figs").iterdir()}
    assert "angles.png" in figs and "decision_boundary.png" not in figs
    dirs = json.loads((result.run_dir / "directions.json").read_text())
    assert dirs["input_dim"] == 10 and len(dirs["end_to_end"]) == 10


@pytest.mark.filterwarnings("error::RuntimeWarning")  # diverging: no overflow
def test_diverging_run_is_recorded_as_failed(tmp_path):
    _, result = _run(tmp_path, lr=100.0, loss="exponential", separation=0.2, noise=1.5,
                     epochs=50, plots=False)
    assert result.state == "failed"
    status = json.loads((result.run_dir / "status.json").read_text())
    assert status["state"] == "failed" and "non-finite" in status["error"]
    assert "Traceback" in (result.run_dir / "logs" / "run.log").read_text()


def test_single_run_figures_are_png_by_default_and_formats_are_not_identity(tmp_path):
    """A run's figures are a quick look: png alone unless ``figure_formats`` asks for more;
    the formats are presentation, so they leave the run's identity (its hash) alone."""
    cfg, result = _run(tmp_path, potential="quadratic", L=1)
    assert result.state == "done", result.error
    figs = {p.suffix for p in (result.run_dir / "figs").iterdir()}
    assert figs == {".png"}
    with_pdf = cfg.model_copy(update={"figure_formats": ("png", "pdf")})
    assert with_pdf.config_hash() == cfg.config_hash()
