"""``sweeplab analyze`` end to end on a real grid: numbers, files, report, bad input."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from sweeplab import RunContext, StudyConfig, register_study
from sweeplab.cli.main import main

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def grid(tmp_path_factory) -> Path:
    """A real 8-run grid (2 potentials x 2 depths x 2 seeds) plus one failing run."""
    root = tmp_path_factory.mktemp("ana")
    spec = {"study": "implicit-bias",
            "fixed": {"epochs": 80, "n_samples": 128, "input_dim": 2},
            "grid": {"potential": ["quadratic", "lp"], "L": [1, 2], "seed": [0, 1]}}
    path = root / "g.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    assert main(["grid", str(path), "--tag", "a", "--out_dir", str(root / "runs_out"),
                 "--jobs", "2"]) == 0
    (grid_dir,) = (root / "runs_out").iterdir()
    return grid_dir


def _rows(path: Path) -> list[dict]:
    with open(path) as fh:
        return list(csv.DictReader(fh))


def test_statistics_match_the_run_files(grid, tmp_path):
    out = tmp_path / "ana"
    assert main(["analyze", "--input_dir", str(grid), "--output_dir", str(out)]) == 0
    summary = {r["condition"]: r for r in _rows(out / "summary.csv")}
    assert set(summary) == {"quadratic, L=1", "quadratic, L=2", "lp p=1.5, L=1", "lp p=1.5, L=2"}
    finals = [json.loads((grid / f"potential=lp,L=2,seed={s}" / "final.json").read_text())
              for s in (0, 1)]
    angles = np.array([f["angle_svm"] for f in finals])
    row = summary["lp p=1.5, L=2"]
    assert int(row["count"]) == 2
    assert float(row["angle_svm_mean"]) == pytest.approx(angles.mean())
    assert float(row["angle_svm_std"]) == pytest.approx(angles.std(ddof=1))
    half = 12.706204736174707 * angles.std(ddof=1) / np.sqrt(2)  # t_{0.975, 1}
    assert float(row["angle_svm_ci_high"]) == pytest.approx(angles.mean() + half, rel=1e-6)
    assert len(_rows(out / "master.csv")) == 8
    assert len(list((out / "conditions").glob("*.json"))) == 4
    curves = _rows(out / "curves.csv")
    assert {int(r["epoch"]) for r in curves} == set(range(81))


def test_tables_figures_and_report(grid, tmp_path):
    out = tmp_path / "ana"
    main(["analyze", "--input_dir", str(grid), "--output_dir", str(out)])
    for name in ("final_angles", "final_margins", "balance_alignment", "accuracy"):
        tex = (out / "tables" / f"{name}.tex").read_text()
        assert "\\toprule" in tex and "\\bottomrule" in tex and "\\pm" in tex
    pngs = sorted(p.stem for p in (out / "figs").glob("*.png"))
    for stem in pngs:
        assert (out / "figs" / f"{stem}.pdf").stat().st_size > 1000
    assert {"angles", "margins", "norm_balance", "decision_boundaries"} <= set(pngs)
    assert any(s.startswith("heatmap") for s in pngs) and any(s.startswith("box") for s in pngs)
    report = (out / "report.md").read_text()
    assert "## Key findings" in report and "ends closest to" in report
    for link in [line.split("](")[1].rstrip(")") for line in report.splitlines()
                 if line.startswith("![")]:
        assert (out / link).is_file(), link
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == len(pngs)


def test_findings_do_not_outrun_the_numbers(grid, tmp_path):
    """A finding that names a closest baseline must agree with the summary table."""
    out = tmp_path / "ana"
    main(["analyze", "--input_dir", str(grid), "--output_dir", str(out)])
    summary = {r["condition"]: r for r in _rows(out / "summary.csv")}
    names = {"the l2 SVM": "svm", "logistic regression": "logreg",
             "the lp max-margin direction": "lp_max_margin", "linear MD (L = 1)": "linear_md"}
    lines = [x for x in (out / "report.md").read_text().splitlines() if "ends closest to" in x]
    assert len(lines) == 4
    for line in lines:
        condition = line[2:].split(": ends closest")[0]
        named = next(k for k in names if f"closest to {k}" in line)
        row = summary[condition]
        means = {b: float(row[f"angle_{b}_mean"]) for b in names.values()
                 if row.get(f"angle_{b}_mean") not in ("", None)}
        assert min(means, key=means.get) == names[named]


def test_bad_runs_are_listed_skipped_and_the_rest_analysed(grid, tmp_path, capsys):
    copy = tmp_path / "grid_copy"
    shutil.copytree(grid, copy)
    (copy / "potential=lp,L=1,seed=0" / "final.json").unlink()
    (copy / "potential=lp,L=1,seed=1" / "config.yaml").write_text("{{ not yaml")
    status = copy / "potential=quadratic,L=1,seed=0" / "status.json"
    status.write_text(json.dumps({"state": "failed", "error": "boom"}))
    out = tmp_path / "ana"
    assert main(["analyze", "--input_dir", str(copy), "--output_dir", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "analysed 5 runs" in printed and "3 skipped" in printed
    report = (out / "report.md").read_text()
    for name in ("potential=lp,L=1,seed=0", "potential=lp,L=1,seed=1",
                 "potential=quadratic,L=1,seed=0"):
        assert name in report
    assert len(_rows(out / "master.csv")) == 5


def test_no_runs_and_missing_dirs_are_one_line_errors(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["analyze", "--input_dir", str(empty), "--output_dir", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and str(empty) in err
    assert main(["analyze", "--input_dir", str(tmp_path / "nope")]) == 2
    assert "no such directory" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_spec_analysis_command_verbatim(grid, tmp_path):
    shutil.copytree(REPO / "analysis", tmp_path / "analysis")
    proc = subprocess.run(
        [sys.executable, "-m", "analysis.run_analysis", "--input_dir", str(grid),
         "--output_dir", "analysis_results/synth_bias"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "analysis_results" / "synth_bias" / "report.html").is_file()


def test_the_real_report_renders_in_chromium(grid, tmp_path):
    import functools
    import http.server
    import re
    import threading

    from test_report_browser import CHECKER, CHROMIUM, _chromium

    if CHROMIUM is None:
        pytest.skip("chromium not installed (apt-get install chromium)")
    out = tmp_path / "ana"
    main(["analyze", "--input_dir", str(grid), "--output_dir", str(out)])
    (out / "check.html").write_text(CHECKER)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(out))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/check.html"
        proc = _chromium("--virtual-time-budget=15000", "--dump-dom", url, tmp=tmp_path)
    finally:
        server.shutdown()
    verdict = json.loads(re.search(r'<pre id="verdict">(.*?)</pre>', proc.stdout)
                         .group(1).replace("&quot;", '"'))
    n_png = len(list((out / "figs").glob("*.png")))
    assert verdict["images"] == n_png and verdict["broken"] == 0
    assert verdict["tables"] >= 4


def test_grid_analyze_flag_writes_the_report(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    spec = {"study": "implicit-bias", "fixed": {"epochs": 20, "n_samples": 64},
            "grid": {"potential": ["quadratic", "lp"], "seed": [0, 1]}}
    (tmp_path / "g.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    assert main(["grid", "g.yaml", "--tag", "z", "--executor", "inline", "--analyze"]) == 0
    (grid_dir,) = (tmp_path / "runs_out").iterdir()
    out = tmp_path / "analysis_results" / grid_dir.name
    assert (out / "report.md").is_file() and (out / "report.html").is_file()
    assert "analysed 4 runs in 2 conditions" in capsys.readouterr().out


class _ToyConfig(StudyConfig):
    """A second study for the mixed-studies test."""

    x: int = 0


@register_study("toy-analysis", config=_ToyConfig)
def _toy(cfg: _ToyConfig, ctx: RunContext) -> dict[str, float]:
    """Doubles x."""
    return {"y": 2.0 * cfg.x}


def test_mixed_studies_are_refused_unless_one_is_chosen(grid, tmp_path, capsys):
    mixed = tmp_path / "mixed"
    shutil.copytree(grid, mixed / "g1")
    toy = {"study": "toy-analysis", "grid": {"x": [1, 2]}}
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(toy))
    assert main(["grid", str(tmp_path / "t.yaml"), "--tag", "t", "--out_dir", str(mixed),
                 "--executor", "inline"]) == 0
    capsys.readouterr()
    assert main(["analyze", "--input_dir", str(mixed), "--output_dir", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "implicit-bias (8 runs)" in err and "toy-analysis (2 runs)" in err
    assert main(["analyze", "--input_dir", str(mixed), "--output_dir", str(tmp_path / "o"),
                 "--study", "toy-analysis"]) == 0
    summary = _rows(tmp_path / "o" / "summary.csv")
    assert sorted(float(r["y_mean"]) for r in summary) == [2.0, 4.0]
