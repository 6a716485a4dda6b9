"""Science checks of the baseline directions (max-margin programs, separability, logreg).

Every max-margin answer is checked against something that does not share its code path:
Hölder's equality case, scipy's SLSQP on the primal, the Lagrange dual, a full (not
working-set) cvxpy solve, and scikit-learn's liblinear SVM.
"""

from __future__ import annotations

import json
import logging

import cvxpy as cp
import numpy as np
import pytest
from scipy.optimize import minimize
from sklearn.svm import LinearSVC

from sweeplab.errors import ConfigError, SweeplabError
from sweeplab.studies.implicit_bias import baselines as bl
from sweeplab.studies.implicit_bias.baselines import (
    Baselines,
    BaselineSolverError,
    NotSeparableError,
    compute_baselines,
    is_linearly_separable,
    logreg_direction,
    lp_max_margin_direction,
    svm_direction,
)

# --------------------------------------------------------------------------- helpers


def angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    """Angle between two vectors in degrees (clipped, so parallel gives exactly 0)."""
    cos = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))


def separable_data(
    seed: int, n: int, d: int, gap: float = 0.3, scales: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian points labelled by a random hyperplane through 0, a slab of width gap removed.

    ``scales`` multiplies the coordinates (anisotropic data) after the labels are drawn,
    which keeps the data separable through the origin.
    """
    rng = np.random.default_rng(seed)
    u = rng.standard_normal(d)
    u /= np.linalg.norm(u)
    X = rng.standard_normal((4 * n, d))
    s = X @ u
    keep = np.abs(s) > gap
    X, s = X[keep][:n], s[keep][:n]
    y = np.sign(s)
    if scales is not None:
        X = X * scales
    return X, y


def min_margin(X: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    return float(np.min(y * (X @ w)))


def normalized_objective(X: np.ndarray, y: np.ndarray, w: np.ndarray, p: float) -> float:
    """``||w||_p / min_i y_i <w, x_i>``: the optimal value of the program, scale-free.

    For any strictly separating w this is ``||w'||_p`` of the feasible ``w' = w / min``,
    so it compares solvers fairly even when one violates the constraints slightly.
    """
    return float(np.linalg.norm(w, p) / min_margin(X, y, w))


def slsqp_primal(X: np.ndarray, y: np.ndarray, p: float, w0: np.ndarray) -> np.ndarray:
    """``argmin (1/p)||w||_p^p s.t. y_i <w, x_i> >= 1`` by scipy SLSQP (same minimizer)."""
    Z = y[:, None] * X

    def f(w: np.ndarray) -> float:
        return float(np.sum(np.abs(w) ** p) / p)

    def grad(w: np.ndarray) -> np.ndarray:
        return np.sign(w) * np.abs(w) ** (p - 1)

    cons = {"type": "ineq", "fun": lambda w: Z @ w - 1.0, "jac": lambda w: Z}
    opts = {"ftol": 1e-10, "maxiter": 2000}
    return minimize(f, w0, jac=grad, constraints=[cons], method="SLSQP", options=opts).x


def slsqp_dual_value(X: np.ndarray, y: np.ndarray, p: float) -> float:
    """``max sum(a) s.t. ||Z^T a||_q <= 1, a >= 0``: the Lagrange dual of min ||w||_p.

    Lagrangian ``||w||_p - a^T (Z w - 1)``; its infimum over w is ``sum(a)`` when the
    dual norm ``||Z^T a||_q <= 1`` (1/p + 1/q = 1) and -inf otherwise. Strong duality
    (Slater: separable data has a strictly feasible w) makes the optimal values equal.
    Solved by SLSQP from a tiny feasible start, so it shares nothing with the primal.
    """
    Z = y[:, None] * X
    q = p / (p - 1.0)
    n = Z.shape[0]

    def norm_slack(a: np.ndarray) -> float:
        return 1.0 - float(np.linalg.norm(Z.T @ a, q))

    def norm_slack_jac(a: np.ndarray) -> np.ndarray:
        u = Z.T @ a
        return -(Z @ (np.sign(u) * np.abs(u) ** (q - 1))) / np.linalg.norm(u, q) ** (q - 1)

    res = minimize(
        lambda a: -np.sum(a),
        np.full(n, 1e-3 / n),
        jac=lambda a: -np.ones_like(a),
        constraints=[{"type": "ineq", "fun": norm_slack, "jac": norm_slack_jac}],
        bounds=[(0.0, None)] * n,
        method="SLSQP",
        options={"ftol": 1e-10, "maxiter": 3000},
    )
    a = np.maximum(res.x, 0.0)
    # Rescale onto the constraint so the value is a true (weak-duality) lower bound.
    return float(np.sum(a) / max(1.0, np.linalg.norm(Z.T @ a, q)))


def holder_solution(x: np.ndarray, p: float) -> np.ndarray:
    """``argmin ||w||_p s.t. <w, x> >= 1`` in closed form (Hölder's equality case).

    ``<w, x> <= ||w||_p ||x||_q`` with equality iff ``w ~ sign(x)|x|^(q-1)``; scaling to
    ``<w, x> = 1`` gives ``w* = sign(x)|x|^(q-1) / ||x||_q^q`` and ``||w*||_p = 1/||x||_q``.
    """
    q = p / (p - 1.0)
    return np.sign(x) * np.abs(x) ** (q - 1.0) / np.sum(np.abs(x) ** q)


def xor_data(seed: int, n: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Four clusters at (+-1, +-1), label = sign(x1 x2): not separable by any line."""
    rng = np.random.default_rng(seed)
    centers = np.array([[1.0, 1.0], [-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0]])
    labels = np.array([1.0, 1.0, -1.0, -1.0])
    idx = np.arange(n) % 4
    return centers[idx] + 0.1 * rng.standard_normal((n, 2)), labels[idx]


def overlapping_gaussians(seed: int, n: int = 400, d: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Class means +-0.5 e_1 with unit noise: heavy overlap, far from separable."""
    rng = np.random.default_rng(seed)
    y = np.where(np.arange(n) % 2 == 0, -1.0, 1.0)
    mean = np.zeros(d)
    mean[0] = 0.5
    return y[:, None] * mean + rng.standard_normal((n, d)), y


def aniso_scales(d: int) -> np.ndarray:
    """Coordinate scales from e^-1 to e: anisotropic data, where the lp geometry shows."""
    return np.exp(np.linspace(-1.0, 1.0, d))


# --------------------------------------------------------------------------- lp program


@pytest.mark.parametrize("p", [1.0, 1.5, 2.0, 3.0])
def test_lp_solution_meets_constraints_and_is_tight(p):
    X, y = separable_data(seed=1, n=300, d=8)
    w = lp_max_margin_direction(X, y, p)
    margins = y * (X @ w)
    assert margins.min() >= 1 - 1e-6
    # Optimality: scaling w down by any factor would cut the objective, so some
    # constraint must be active.
    assert margins.min() == pytest.approx(1.0, abs=1e-6)
    assert w.dtype == np.float64 and w.shape == (8,)


@pytest.mark.parametrize("p", [1.5, 3.0])
@pytest.mark.parametrize("label", [1.0, -1.0])
def test_single_constraint_matches_holder_closed_form(p, label):
    x = np.array([1.0, -2.0, 3.0, 0.5])
    w = lp_max_margin_direction(label * x[None, :], np.array([label]), p)
    expected = holder_solution(x, p)
    q = p / (p - 1.0)
    # Interior-point accuracy: the optimal value to ~1e-9, the minimizer to ~sqrt of it.
    assert angle_deg(w, expected) < 5e-3
    np.testing.assert_allclose(w, expected, rtol=2e-3)
    assert np.linalg.norm(w, p) == pytest.approx(1.0 / np.linalg.norm(x, q), rel=1e-7)


@pytest.mark.parametrize("p", [1.5, 3.0])
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize(("n", "d"), [(150, 5), (40, 30)])
def test_lp_optimal_value_matches_slsqp_primal_and_dual(p, seed, n, d):
    # (150, 5): n > max(64, 3 d), so the working-set loop is on trial; (40, 30): few
    # points in many dimensions, where the lp and l2 solutions differ (see below).
    X, y = separable_data(seed=seed, n=n, d=d, gap=0.2, scales=aniso_scales(d))
    X = X / np.linalg.norm(X, axis=1).max()  # O(1) objective values suit SLSQP
    w = lp_max_margin_direction(X, y, p)
    ours = normalized_objective(X, y, w, p)

    w_svm = svm_direction(X, y)
    w_slsqp = slsqp_primal(X, y, p, w0=1.01 * w_svm / min_margin(X, y, w_svm))
    theirs = normalized_objective(X, y, w_slsqp, p)
    dual = slsqp_dual_value(X, y, p)

    assert ours == pytest.approx(theirs, rel=1e-4)
    assert ours <= theirs * (1 + 1e-7)  # cvxpy is no worse than SLSQP
    assert dual <= ours * (1 + 1e-7)  # weak duality
    assert ours == pytest.approx(dual, rel=1e-4)  # strong duality
    assert angle_deg(w, w_slsqp) < 0.05


def test_working_set_answer_equals_full_program_with_bad_seed():
    # A seed pointing the wrong way forces many rounds of constraint generation; the
    # answer must still be the optimum of the whole program, solved in one go.
    X, y = separable_data(seed=5, n=2000, d=12, gap=0.05)
    Z, s = bl._scaled_margins_matrix(X, y)
    bad_seed = -Z.mean(axis=0)
    w_cg = bl._lp_max_margin(Z, 3.0, bad_seed) / s

    w = cp.Variable(12)
    prob = cp.Problem(cp.Minimize(cp.pnorm(w, 3)), [(y[:, None] * X) @ w >= 1])
    prob.solve(solver="CLARABEL")
    assert prob.status == cp.OPTIMAL
    assert np.linalg.norm(w_cg, 3) == pytest.approx(prob.value, rel=1e-6)
    assert angle_deg(w_cg, w.value) < 1e-3


# --------------------------------------------------------------------------- lp vs SVM


@pytest.mark.parametrize(("p", "at_least"), [(1.5, 10.0), (3.0, 8.0)])
def test_lp_direction_differs_from_svm_on_a_single_point(p, at_least):
    x = np.array([[1.0, 2.0, 3.0]])
    y = np.array([1.0])
    # Closed forms: w_2 ~ x and w_p ~ x^(q-1): 13.6 degrees apart for p = 1.5, 10.1 for 3.
    assert angle_deg(lp_max_margin_direction(x, y, p), svm_direction(x, y)) > at_least


@pytest.mark.parametrize("p", [1.5, 3.0])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lp_direction_differs_from_svm_on_anisotropic_data(p, seed):
    # Fewer points than dimensions: the optimum is not a vertex of the constraints that
    # every norm shares (with n >> d it often is, and all p give the same direction).
    X, y = separable_data(seed=seed, n=40, d=30, gap=0.2, scales=aniso_scales(30))
    assert angle_deg(lp_max_margin_direction(X, y, p), svm_direction(X, y)) > 3.0


@pytest.mark.parametrize(("n", "d"), [(40, 30), (300, 6)])
def test_lp_at_p2_is_the_svm(n, d):
    X, y = separable_data(seed=3, n=n, d=d, gap=0.2, scales=aniso_scales(d))
    w2, w_svm = lp_max_margin_direction(X, y, 2.0), svm_direction(X, y)
    assert angle_deg(w2, w_svm) < 1e-3
    np.testing.assert_allclose(np.linalg.norm(w2), np.linalg.norm(w_svm), rtol=1e-7)


# --------------------------------------------------------------------------- SVM


@pytest.mark.parametrize("seed", [0, 4])
def test_svm_agrees_with_slsqp_and_liblinear(seed):
    X, y = separable_data(seed=seed, n=120, d=6, gap=0.2)
    w = svm_direction(X, y)
    assert min_margin(X, y, w) == pytest.approx(1.0, abs=1e-6)

    w_slsqp = slsqp_primal(X, y, 2.0, w0=w * 1.5)
    assert angle_deg(w, w_slsqp) < 1e-3
    # The returned vector is the solution itself: 1/||w|| is the geometric margin.
    assert np.linalg.norm(w) == pytest.approx(np.linalg.norm(w_slsqp), rel=1e-6)

    svc = LinearSVC(fit_intercept=False, loss="hinge", C=1e6, max_iter=1_000_000, tol=1e-10)
    svc.fit(X, y)
    assert angle_deg(w, svc.coef_.ravel()) < 0.5


# --------------------------------------------------------------------------- separability


def test_separable_gaussians_are_separable():
    X, y = separable_data(seed=0, n=500, d=3, gap=0.1)
    assert is_linearly_separable(X, y) is True


def test_xor_and_overlapping_data_are_not_separable():
    assert is_linearly_separable(*xor_data(0)) is False
    assert is_linearly_separable(*overlapping_gaussians(0)) is False


def test_separable_with_intercept_only_is_not_separable_through_origin():
    # 1-D: x = 1 -> -1, x = 2 -> +1 is separated by the threshold 1.5, never by sign(w x).
    X = np.array([[1.0], [2.0], [1.1], [2.5]])
    y = np.array([-1.0, 1.0, -1.0, 1.0])
    assert is_linearly_separable(X, y) is False
    # A point at the origin can never be strictly separated.
    X0, y0 = separable_data(seed=0, n=50, d=3)
    assert is_linearly_separable(np.vstack([X0, np.zeros(3)]), np.append(y0, 1.0)) is False


def test_separability_agrees_with_max_margin_feasibility_at_scale():
    # Many points, a thin margin and a few flipped labels: the LP working set must grow
    # until it either certifies a separator or contains an unseparable subset.
    X, y = separable_data(seed=7, n=3000, d=20, gap=0.01)
    assert is_linearly_separable(X, y) is True
    y_flip = y.copy()
    y_flip[:3] *= -1
    assert is_linearly_separable(X, y_flip) is False
    with pytest.raises(NotSeparableError):
        svm_direction(X, y_flip)


def test_max_margin_on_non_separable_data_raises_typed_error():
    X, y = xor_data(1)
    with pytest.raises(NotSeparableError) as info:
        lp_max_margin_direction(X, y, 1.5)
    assert isinstance(info.value, SweeplabError)


# --------------------------------------------------------------------------- solver failure


def test_solver_fallback_and_typed_error(monkeypatch):
    X, y = separable_data(seed=2, n=80, d=4)
    reference = lp_max_margin_direction(X, y, 3.0)

    # Clarabel stopped after one iteration: SCS takes over and still finds the optimum.
    monkeypatch.setitem(bl._SOLVER_OPTIONS, "CLARABEL", {"max_iter": 1})
    fallback = lp_max_margin_direction(X, y, 3.0)
    assert angle_deg(fallback, reference) < 0.05

    # Both stopped early: no optimal status, a typed error naming both attempts...
    monkeypatch.setitem(bl._SOLVER_OPTIONS, "SCS", {"max_iters": 2})
    with pytest.raises(BaselineSolverError) as info:
        lp_max_margin_direction(X, y, 3.0)
    assert [s for s, _ in info.value.attempts] == ["CLARABEL", "SCS"]
    assert not isinstance(info.value, NotSeparableError)

    # ...which compute_baselines turns into a missing baseline and a warning.
    res = compute_baselines(X, y, p=3.0)
    assert res.separable and res.lp_max_margin is None and res.svm is not None
    assert any("l3 max-margin baseline unavailable" in w for w in res.warnings)


# --------------------------------------------------------------------------- compute_baselines


def test_compute_baselines_on_separable_data():
    X, y = separable_data(seed=0, n=200, d=5)
    res = compute_baselines(X, y, p=1.5, logreg_C=2.0, seed=3)
    assert isinstance(res, Baselines)
    assert res.separable and res.warnings == () and res.p == 1.5
    np.testing.assert_allclose(res.svm, svm_direction(X, y), rtol=1e-5)
    np.testing.assert_allclose(res.lp_max_margin, lp_max_margin_direction(X, y, 1.5), rtol=1e-5)
    np.testing.assert_allclose(res.logreg, logreg_direction(X, y, C=2.0, seed=3))
    d = json.loads(json.dumps(res.as_dict()))
    assert d["separable"] is True and d["p"] == 1.5 and d["warnings"] == []
    assert len(d["svm"]) == len(d["lp_max_margin"]) == len(d["logreg"]) == 5
    with pytest.raises(ValueError):
        res.svm[0] = 0.0  # arrays are read-only

    no_p = compute_baselines(X, y, p=None)
    assert no_p.lp_max_margin is None and no_p.p is None and no_p.warnings == ()
    assert no_p.as_dict()["lp_max_margin"] is None


@pytest.mark.parametrize("make", [xor_data, overlapping_gaussians])
def test_compute_baselines_on_non_separable_data_warns_and_keeps_logreg(make, caplog):
    X, y = make(2)
    with caplog.at_level(logging.DEBUG, logger="sweeplab"):
        res = compute_baselines(X, y, p=3.0)
    assert res.separable is False
    assert res.svm is None and res.lp_max_margin is None
    assert len(res.warnings) == 1
    assert "not linearly separable through the origin" in res.warnings[0]
    # returned, not logged: the run records it once (RunContext.warn), or it would show twice
    assert res.warnings[0] not in caplog.text
    assert res.logreg.shape == (X.shape[1],) and np.all(np.isfinite(res.logreg))
    d = json.loads(json.dumps(res.as_dict()))
    assert d["svm"] is None and d["lp_max_margin"] is None and d["separable"] is False


# --------------------------------------------------------------------------- bad input


def test_bad_input_raises_config_error_naming_the_key():
    X, y = separable_data(seed=0, n=20, d=3)
    with pytest.raises(ConfigError, match="y"):
        svm_direction(X, (y > 0).astype(float))  # labels {0, 1}
    with pytest.raises(ConfigError, match="p"):
        lp_max_margin_direction(X, y, 0.5)
    with pytest.raises(ConfigError, match="p"):
        lp_max_margin_direction(X, y, float("inf"))
    with pytest.raises(ConfigError, match="p"):
        compute_baselines(X, y, p=0.9)
    with pytest.raises(ConfigError, match="logreg_C"):
        compute_baselines(X, y, p=None, logreg_C=0.0)
    with pytest.raises(ConfigError, match="X"):
        is_linearly_separable(X[:, :, None], y)
    with pytest.raises(ConfigError, match="y"):
        is_linearly_separable(X, y[:-1])
