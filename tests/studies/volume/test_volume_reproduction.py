"""The minima-volume study's "paper vs this run" verdicts, from synthetic run tables.

Run directories hold hand-written ``volume.csv`` and ``test_accuracies.csv`` (nothing
trains); the study's measure of each claim of ``paper_values.yaml`` is judged by the
framework's rules. The paper's poison runs: log-volume on the clean base set falls
monotonically with poison, by about -1.25 per parameter at 25% poison, ordering the
models as their test loss does; test accuracy drops by 0.177.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sweeplab.analysis.reproduction import load_paper_values, reproduction_rows
from sweeplab.analysis.spec import AnalysisData, get_analysis
from sweeplab.studies.volume.by_k import k_ranking

N_PARAMS = 1000
MS = (0, 10, 50, 100, 200)


def _run(root: Path, run_id: str, log_volumes, test_loss, test_acc, cutoff=0.1,
         category="poison") -> dict:
    """One synthetic run: headline rows on the base set (600), own rows beside them."""
    run_dir = root / run_id
    run_dir.mkdir(parents=True)
    rows = []
    for m, lv in zip(MS, log_volumes, strict=True):
        base = {"m": m, "train_size": 600 + m, "cutoff": cutoff, "n_directions": 64,
                "n_uncrossed": 0, "n_params": N_PARAMS}
        rows.append({**base, "landscape_size": 600, "log_volume": lv,
                     "headline": category == "poison" or m == 0})
        if m:  # the own (poisoned) landscape: deliberately the opposite trend
            rows.append({**base, "landscape_size": 600 + m, "log_volume": -lv,
                         "headline": category != "poison"})
    pd.DataFrame(rows).to_csv(run_dir / "volume.csv", index=False)
    pd.DataFrame({"m": MS, "train_size": [600 + m for m in MS], "test_loss": test_loss,
                  "test_acc": test_acc}).to_csv(run_dir / "test_accuracies.csv", index=False)
    return {"run_id": run_id, "run_dir": str(run_dir), "category": category,
            "dataset": "mnist", "base_size": 600, "extra_sizes": str(list(MS)),
            "arch": "mlp", "hidden": "[256, 128]", "channels": "[8, 16]", "epochs": 500,
            "n_directions": 64, "direction_scaling": "filtnorm"}


def _data(runs: list[dict]) -> AnalysisData:
    frame = pd.DataFrame(runs)
    finals = pd.DataFrame({"condition": ["all runs"], "run_ids": [list(frame["run_id"])]})
    return AnalysisData(runs=frame, finals=finals, curves=pd.DataFrame(), group_keys=[])


def _verdicts(data: AnalysisData) -> dict[str, tuple[str, object]]:
    spec = get_analysis("minima-volume")
    rows = reproduction_rows(load_paper_values(spec.paper_values), spec.reproduction(data))
    return {r.claim.id: (r.verdict, r.measured) for r in rows}


PAPER_LIKE = (1000.0, 900.0, 700.0, 400.0, -250.0)  # -1.25 per parameter, monotone
LOSS_UP = (0.30, 0.35, 0.50, 0.70, 1.00)
ACC_DOWN = (0.94, 0.93, 0.89, 0.85, 0.77)


def test_a_run_like_the_papers_reproduces_every_claim(tmp_path):
    runs = [_run(tmp_path, f"r{i}", np.add(PAPER_LIKE, 5 * i), LOSS_UP, ACC_DOWN)
            for i in range(3)]
    verdicts = _verdicts(_data(runs))
    assert {k: v for k, (v, _) in verdicts.items()} == {
        "poison_volume_rank": "reproduced", "poison_volume_drop_per_param": "reproduced",
        "volume_orders_test_loss": "reproduced", "poison_test_acc_drop": "reproduced"}
    _, measured = verdicts["poison_volume_drop_per_param"]
    assert measured.value == pytest.approx(-1.25) and measured.seeds == 3
    assert "mnist" in measured.scale and "cutoff 0.1" in measured.scale
    assert verdicts["poison_test_acc_drop"][1].value == pytest.approx(-0.17)


def test_the_own_poisoned_landscape_is_not_what_is_judged(tmp_path):
    """The synthetic own-landscape rows rise with poison; the verdicts use the base set."""
    runs = [_run(tmp_path, "r0", PAPER_LIKE, LOSS_UP, ACC_DOWN)]
    assert _verdicts(_data(runs))["poison_volume_rank"][1].value == pytest.approx(-1.0)


def test_volumes_that_grow_with_poison_are_not_reproduced(tmp_path):
    rising = tuple(reversed(PAPER_LIKE))
    runs = [_run(tmp_path, "r0", rising, LOSS_UP, ACC_DOWN)]
    verdicts = _verdicts(_data(runs))
    assert verdicts["poison_volume_rank"][0] == "not reproduced"
    assert verdicts["poison_volume_drop_per_param"][0] == "not reproduced"
    assert verdicts["volume_orders_test_loss"][0] == "not reproduced"
    assert verdicts["poison_test_acc_drop"][0] == "reproduced"  # accuracy still falls


def test_a_weaker_effect_of_the_papers_sign_is_direction_only(tmp_path):
    """Volume falls overall, but not monotonically and by less; accuracy barely moves."""
    weak = (1000.0, 1100.0, 900.0, 1050.0, 700.0)  # rho = -0.5, -0.3 per parameter
    runs = [_run(tmp_path, "r0", weak, LOSS_UP, (0.94, 0.94, 0.93, 0.93, 0.92))]
    verdicts = _verdicts(_data(runs))
    assert verdicts["poison_volume_rank"][1].value == pytest.approx(-0.5)
    assert verdicts["poison_volume_rank"][0] == "direction only"
    assert verdicts["poison_volume_drop_per_param"][0] == "direction only"
    assert verdicts["poison_test_acc_drop"][0] == "direction only"


def test_runs_without_poison_leave_every_claim_not_run(tmp_path):
    runs = [_run(tmp_path, "r0", PAPER_LIKE, LOSS_UP, ACC_DOWN, category="low_data")]
    verdicts = _verdicts(_data(runs))
    assert {v for v, _ in verdicts.values()} == {"not run"}


def test_another_cutoff_is_measured_and_says_so(tmp_path):
    runs = [_run(tmp_path, "r0", PAPER_LIKE, LOSS_UP, ACC_DOWN, cutoff=0.5)]
    verdict, measured = _verdicts(_data(runs))["poison_volume_rank"]
    assert verdict == "reproduced" and "cutoff 0.5" in measured.note


def test_zero_volumes_are_left_out_of_the_correlations(tmp_path):
    with_zero = (1000.0, 900.0, 700.0, 400.0, float("-inf"))
    runs = [_run(tmp_path, "r0", with_zero, LOSS_UP, ACC_DOWN)]
    verdicts = _verdicts(_data(runs))
    assert verdicts["poison_volume_rank"] == ("reproduced", verdicts["poison_volume_rank"][1])
    assert verdicts["poison_volume_rank"][1].value == pytest.approx(-1.0)
    assert verdicts["poison_volume_drop_per_param"][0] == "not run"  # -inf is no drop


def test_k_ranking_counts_runs_whose_model_order_changes_with_k():
    """Two runs: with 16 directions one of them swaps its two closest models."""
    rows = []
    for run, swap in (("a", False), ("b", True)):
        for k, lv in ((16, (10.0, 8.0, 9.5)), (64, (12.0, 11.0, 10.0))):
            if not swap and k == 16:
                lv = (11.0, 9.0, 8.0)
            for m, v in zip((0, 1, 2), lv, strict=True):
                rows.append({"run_id": run, "condition": "c", "m": m, "k": k, "cutoff": 0.1,
                             "landscape_size": 600, "log_volume": v, "headline": True})
    table = k_ranking(pd.DataFrame(rows)).set_index("k")
    assert table.loc[64, "same_ranking"] == 2 and table.loc[64, "spearman"] == pytest.approx(1)
    assert table.loc[16, "same_ranking"] == 1 and table.loc[16, "runs"] == 2
    assert table.loc[16, "spearman"] == pytest.approx((1.0 + 0.5) / 2)
    assert table.loc[16, "mean_shift"] == pytest.approx(
        np.mean([11 - 12, 9 - 11, 8 - 10, 10 - 12, 8 - 11, 9.5 - 10]))
    assert table.loc[64, "ranking"] == "m=0 > m=1 > m=2"
