"""The anchor studies' "paper vs this run" verdicts, from synthetic run tables (no training).

Each table is what ``sweeplab analyze`` loads (config columns, ``final.*`` metrics); the
claims and the paper's numbers are the real ``paper_values_*.yaml`` of the studies.
"""

from __future__ import annotations

import itertools

import pandas as pd
import pytest

from sweeplab.analysis.reproduction import load_paper_values, reproduction_rows
from sweeplab.analysis.spec import AnalysisData
from sweeplab.studies.anchor import claims

SIZES = {"n_train": 30000, "epochs": 12, "batch_size": 256, "d_model": 32, "d_state": 32}
COMPOSITE_IDS = {c.id for c in load_paper_values(claims.COMPOSITE_VALUES).claims}
INVERSE_IDS = {c.id for c in load_paper_values(claims.INVERSE_VALUES).claims}


def run(model_type: str, n_layers: int, gamma: float, seed: int, **final: float) -> dict:
    return {"model_type": model_type, "n_layers": n_layers, "gamma": gamma, "seed": seed,
            **SIZES, **{f"final.{k}": v for k, v in final.items()}}


def verdicts(rows: list[dict], inverse: bool = False) -> dict[str, str]:
    data = AnalysisData(pd.DataFrame(rows), pd.DataFrame(), pd.DataFrame(), [])
    path = claims.INVERSE_VALUES if inverse else claims.COMPOSITE_VALUES
    measure = claims.measure_inverse if inverse else claims.measure_composite
    return {r.claim.id: r.verdict for r in reproduction_rows(load_paper_values(path),
                                                             measure(data))}


def composite_runs(ablation: dict[str, tuple[float, float, float]],
                   phase: dict[float, tuple[float, float, float]]) -> list[dict]:
    """Ablation variants at the paper's settings and a phase diagram (depths 2, 5),
    3 seeds each; each entry (train, composite, symmetric)."""
    settings = {"mamba_ones_conv": (5, 1.0), "mamba_pos_encoding": (2, 0.5),
                "transformer_with_conv": (2, 1.0)}
    rows = []
    for (model, (layers, gamma)), seed in itertools.product(settings.items(), (1, 2, 3)):
        train, comp, sym = ablation[model]
        rows.append(run(model, layers, gamma, seed, train_acc=train, composite_acc=comp,
                        symmetric_acc=sym))
    for (gamma, (train, comp, sym)), layers, seed in itertools.product(
            phase.items(), (2, 5), (1, 2, 3)):
        rows.append(run("mamba_standard", layers, gamma, seed, train_acc=train,
                        composite_acc=comp, symmetric_acc=sym))
    return rows


PAPER_LIKE_PHASE = {0.1: (0.99, 0.08, 0.05), 0.4: (0.99, 0.1, 0.06), 0.5: (0.99, 0.2, 0.1),
                    1.0: (1.0, 0.85, 0.05), 2.0: (1.0, 0.8, 0.1)}


def test_every_claim_is_measured():
    data = AnalysisData(pd.DataFrame([run("mamba_standard", 2, 1.0, 1)]), pd.DataFrame(),
                        pd.DataFrame(), [])
    assert set(claims.measure_composite(data)) == COMPOSITE_IDS
    assert set(claims.measure_inverse(data)) == INVERSE_IDS


def test_paper_like_composite_runs_reproduce():
    rows = composite_runs({"mamba_ones_conv": (1.0, 0.01, 0.97),
                           "mamba_pos_encoding": (1.0, 0.08, 0.8),
                           "transformer_with_conv": (1.0, 0.7, 0.05)}, PAPER_LIKE_PHASE)
    got = verdicts(rows)
    assert set(got.values()) == {"reproduced"}, got


def test_the_positional_encoding_ablation_as_it_was_measured_is_not_reproduced():
    """Composite 0.27 / symmetric 0.05 (the opposite of Fig. 7c's 0.1 / 0.82)."""
    rows = composite_runs({"mamba_ones_conv": (1.0, 0.25, 0.23),
                           "mamba_pos_encoding": (0.99, 0.27, 0.05),
                           "transformer_with_conv": (1.0, 0.5, 0.3)}, PAPER_LIKE_PHASE)
    got = verdicts(rows)
    assert got["pos_encoding_symmetric"] == "not reproduced"
    assert got["pos_encoding_composite"] == "not reproduced"
    assert got["ones_conv_symmetric"] == "not reproduced"  # 0.23, and below composite
    assert got["transformer_conv_composite"] == "direction only"  # 0.5 > 0.3, < 0.54


def test_runs_that_did_not_fit_say_nothing_about_the_solution():
    """Held-out accuracies that would read as a reproduction count for nothing when the
    training set was not fit: the claims are 'not run', and their note says why."""
    rows = composite_runs({"mamba_ones_conv": (0.6, 0.0, 0.0),
                           "mamba_pos_encoding": (0.5, 0.05, 0.05),
                           "transformer_with_conv": (1.0, 0.7, 0.05)},
                          {g: (0.4, c, s) for g, (_, c, s) in PAPER_LIKE_PHASE.items()})
    data = AnalysisData(pd.DataFrame(rows), pd.DataFrame(), pd.DataFrame(), [])
    measured = claims.measure_composite(data)
    for claim in ("ones_conv_composite", "pos_encoding_composite", "standard_l2_neither",
                  "phase_large_init_neither", "phase_composite_rises"):
        assert measured[claim].value is None, claim
    assert "none of the 3 runs fit" in measured["ones_conv_composite"].note
    assert "train 0.60" in measured["ones_conv_composite"].note
    got = verdicts(rows)
    assert got["ones_conv_composite"] == "not run"
    assert got["phase_large_init_neither"] == "not run"
    assert got["transformer_conv_composite"] == "reproduced"


def test_only_fitted_runs_enter_a_solution_claim():
    """Two seeds fit and learn the symmetric solution, one did not fit: the measure is the
    mean of the two, and the note counts them."""
    rows = [run("mamba_ones_conv", 5, 1.0, s, train_acc=t, composite_acc=0.0,
                symmetric_acc=a) for s, t, a in ((1, 1.0, 0.96), (2, 0.99, 0.94), (3, 0.3, 0.0))]
    data = AnalysisData(pd.DataFrame(rows), pd.DataFrame(), pd.DataFrame(), [])
    m = claims.measure_composite(data)["ones_conv_symmetric"]
    assert m.value == pytest.approx(0.95) and m.seeds == 2 and m.direction
    assert m.note.startswith("2 of 3 runs fit")
    assert "30,000 samples" in m.scale and "12 epochs" in m.scale


def test_other_settings_are_not_run():
    """An ablation at the wrong depth or gamma does not stand in for the paper's setting."""
    rows = [run("mamba_ones_conv", 2, 1.0, 1, train_acc=1.0, composite_acc=0.0,
                symmetric_acc=1.0),
            run("mamba_pos_encoding", 2, 1.0, 1, train_acc=1.0, composite_acc=0.1,
                symmetric_acc=0.8)]
    got = verdicts(rows)
    assert got["ones_conv_symmetric"] == "not run"
    assert got["pos_encoding_symmetric"] == "not run"


def inverse_runs(results: dict[str, tuple[float, float, float]], gamma: float = 0.6,
                 seeds: tuple[int, ...] = (1, 2, 3)) -> list[dict]:
    return [run(model, 2, gamma, seed, train_acc=tr, test_acc=te, ood_acc=ood)
            for (model, (tr, te, ood)), seed in itertools.product(results.items(), seeds)]


def test_paper_like_inverse_runs_reproduce():
    rows = inverse_runs({"mamba_standard": (1.0, 0.2, 0.2), "transformer": (1.0, 1.0, 0.59),
                         "mamba_residual": (1.0, 1.0, 0.6)})
    rows += inverse_runs({"mamba_standard": (1.0, 0.2, 0.2), "transformer": (0.8, 0.7, 0.2),
                          "mamba_residual": (1.0, 1.0, 0.2)}, gamma=1.0)
    got = verdicts(rows, inverse=True)
    assert set(got.values()) == {"reproduced"}, got


def test_inverse_as_it_was_measured_at_cpu_scale():
    """Standard Mamba that never fit (train 0.26), residual 0.54 / 0.52 / 0.21 below the
    Transformer's 0.96: the memorisation and the residual claims are not reproduced, the
    residual's gain over Mamba has the paper's direction only."""
    rows = inverse_runs({"mamba_standard": (0.26, 0.21, 0.17),
                         "transformer": (0.96, 0.96, 0.38),
                         "mamba_residual": (0.54, 0.52, 0.21)})
    got = verdicts(rows, inverse=True)
    assert got["mamba_fits_train"] == "not reproduced"
    assert got["mamba_test_chance"] == "reproduced"
    assert got["transformer_test"] == "reproduced"
    assert got["transformer_ood"] == "direction only"  # 0.38: above chance, below 0.40
    assert got["residual_test"] == "not reproduced"
    assert got["residual_ood"] == "not reproduced"  # 0.21: chance
    assert got["residual_beats_mamba"] == "direction only"
    assert got["test_order"] == "not reproduced"  # transformer first


def test_inverse_at_another_gamma_is_not_run_except_the_order():
    rows = inverse_runs({"mamba_standard": (1.0, 0.2, 0.2), "transformer": (1.0, 0.9, 0.5),
                         "mamba_residual": (1.0, 0.95, 0.5)}, gamma=1.0)
    got = verdicts(rows, inverse=True)
    assert got.pop("test_order") == "reproduced"
    assert set(got.values()) == {"not run"}
