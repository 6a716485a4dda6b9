"""sweeplab analyze on a real (tiny) anchor-composite grid: the phase diagram is drawn and
its cells are the means over seeds of the runs' own final.json."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import yaml

from sweeplab.cli.main import main


def test_phase_diagram_cells_are_seed_means_of_the_runs(tmp_path, capsys):
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({
        "study": "anchor-composite",
        "run_name": "L{n_layers}_G{gamma}_S{seed}",
        "fixed": {"n_train": 300, "n_test": 50, "n_heldout": 50, "d_model": 8, "d_state": 8,
                  "epochs": 2, "log_interval": 1, "batch_size": 64, "device": "cpu"},
        "grid": {"n_layers": [1, 2], "gamma": [0.5, 1.0], "seed": [1, 2]},
    }))
    out = tmp_path / "runs"
    assert main(["grid", str(spec), "--tag", "pd", "--out_dir", str(out), "--executor",
                 "inline"]) == 0
    grid = next(out.glob("*_pd"))
    assert (grid / "L1_G0.5_S1" / "model.pt").is_file()
    report = tmp_path / "analysis"
    assert main(["analyze", "--input_dir", str(grid), "--output_dir", str(report)]) == 0
    for ext in ("png", "pdf"):
        assert (report / "figs" / f"phase_diagram.{ext}").stat().st_size > 0
    summary = pd.read_csv(report / "summary.csv")
    assert len(summary) == 4
    for _, row in summary.iterrows():
        finals = [json.loads((grid / f"L{int(row.n_layers)}_G{row.gamma}_S{s}" /
                              "final.json").read_text())["composite_acc"] for s in (1, 2)]
        assert abs(row.composite_acc_mean - sum(finals) / 2) < 1e-12
    assert "figs/phase_diagram.png" in Path(report / "report.md").read_text()
