"""The study's metrics on cases with a known answer."""

from __future__ import annotations

import numpy as np
import pytest

from sweeplab.studies.implicit_bias.metrics import (
    MetricTracker,
    angle_deg,
    balances,
    end_to_end,
    layer_alignment,
    normalized_margin,
    rank_one_ratio,
)
from sweeplab.studies.implicit_bias.model import loss_numpy, mean_exp
from sweeplab.studies.implicit_bias.potentials import LpPotential, Quadratic


def test_end_to_end_is_the_product_of_the_layers():
    rng = np.random.default_rng(0)
    ws = [rng.normal(size=(4, 3)), rng.normal(size=(5, 4)), rng.normal(size=(1, 5))]
    np.testing.assert_allclose(end_to_end(ws), (ws[2] @ ws[1] @ ws[0]).ravel())


def test_angles():
    assert angle_deg(np.array([1.0, 0]), np.array([0, 2.0])) == pytest.approx(90)
    assert angle_deg(np.array([1.0, 1]), np.array([3.0, 3])) == pytest.approx(0, abs=1e-6)
    assert angle_deg(np.array([1.0, 0]), np.array([-1.0, 0])) == pytest.approx(180)
    assert np.isnan(angle_deg(np.zeros(2), np.ones(2)))


def test_normalized_margin_is_scale_invariant_and_uses_the_q_norm():
    Z = np.array([[1.0, 2.0], [2.0, 0.5]])
    w = np.array([1.0, 1.0])
    assert normalized_margin(w, Z, 2) == pytest.approx(2.5 / np.sqrt(2))
    assert normalized_margin(7 * w, Z, 2) == pytest.approx(2.5 / np.sqrt(2))
    assert normalized_margin(w, Z, 1) == pytest.approx(2.5 / 2)


def test_alignment_and_rank_one_of_a_perfectly_aligned_network():
    rng = np.random.default_rng(1)
    v1, u1 = rng.normal(size=3), rng.normal(size=4)
    W1 = np.outer(u1, v1)                       # rank one, left vector u1
    W2 = 2.5 * (u1 / np.linalg.norm(u1))[None]  # its right vector is u1
    assert layer_alignment([W1, W2]) == [pytest.approx(1.0)]
    assert rank_one_ratio(W1) == pytest.approx(1.0)
    W1_rot = np.outer(np.array([1.0, 0, 0, 0]), v1)
    W2_orth = np.array([[0.0, 1.0, 0, 0]])
    assert layer_alignment([W1_rot, W2_orth]) == [pytest.approx(0.0)]
    assert rank_one_ratio(np.eye(4)) == pytest.approx(0.5)


def test_balances_use_the_potentials_norm():
    W1, W2 = np.full((2, 2), 2.0), np.full((1, 2), 1.0)
    assert balances([W1, W2], Quadratic()) == [pytest.approx(16 - 2)]
    assert balances([W1, W2], LpPotential(3.0)) == [pytest.approx(4 * 8 - 2)]


def test_tracker_reports_ratios_against_the_optimal_margins():
    X = np.array([[2.0, 0.0], [-2.0, 0.1], [1.0, 1.0]])
    y = np.array([1.0, -1.0, 1.0])
    svm = np.array([0.5, 0.0])  # margins 1, 1, 0.5 -> not optimal on purpose
    ws = [np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([[1.0, 0.0]])]
    tracker = MetricTracker(X, y, Quadratic(), "logistic", {"svm": svm, "logreg": None}, ws)
    out = tracker(ws)
    assert out["angle_svm"] == pytest.approx(0.0, abs=1e-6)
    assert "angle_logreg" not in out
    assert out["margin_l2_ratio"] == pytest.approx(1.0)
    assert out["train_acc"] == 1.0
    assert out["loss"] == pytest.approx(np.mean(np.log1p(np.exp(-np.array([2.0, 2.0, 1.0])))))
    assert out["balance_drift_max"] == 0.0


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_the_exponential_loss_of_a_diverging_run_is_inf_without_an_overflow():
    assert loss_numpy("exponential", np.array([-800.0, 3.0])) == np.inf
    # a mean within float64 although one of its terms alone is not
    top = np.finfo(np.float64).max
    big = np.log(top)
    assert mean_exp(np.array([big + 0.5, big - 5.0])) == pytest.approx(
        top / 2 * (np.exp(0.5) + np.exp(-5.0)), rel=1e-12)
    rows = np.array([[800.0, 1.0], [1.0, 2.0], [np.inf, 0.0]])
    out = mean_exp(rows, axis=1)
    assert out[0] == np.inf and out[2] == np.inf
    assert out[1] == np.exp(rows[1]).mean()  # rows that fit: the plain formula, bit for bit
