"""Baseline directions in input space that a trained linear network is compared with.

The implicit-bias study trains ``f(x) = W_L ... W_1 x`` on binary data ``(X, y)``,
``y_i in {-1, +1}``, without a bias, and measures the angle between the end-to-end
predictor ``w = W_1^T ... W_L^T`` and the directions computed here:

- the l2 hard-margin SVM through the origin, the limit direction of gradient descent on
  the logistic loss (Soudry et al. 2018, Thm 3);
- the lp max-margin direction ``argmin ||w||_p s.t. y_i <w, x_i> >= 1``, the limit
  direction of mirror descent with potential ``(1/p)||w||_p^p`` (Sun, Ahn, Thrampoulidis,
  Azizan 2022, NeurIPS, arXiv:2205.12808);
- regularized logistic regression (scikit-learn), a reference that exists even when the
  data is not separable.

Everything is numpy in, numpy out: ``X`` is ``(n, d)`` float64 and ``y`` is ``(n,)`` with
values in {-1, +1}. Write ``z_i = y_i x_i`` and ``Z`` for the matrix of rows ``z_i``; then
every max-margin problem reads ``min ||w|| s.t. Z w >= 1``.

The max-margin programs and the separability LP are solved by constraint generation
(cutting planes): solve the program on a working set of the ``z_i`` of smallest margin
along a cheap seed direction, add the constraints the solution violates, repeat. The
restricted program is a relaxation, so once its solution satisfies every constraint it is
optimal for the full program. Only the support vectors (at most about d of them) matter,
which takes ``n = 12,000, d = 200`` from about 20 s for one interior-point solve of the
whole program (its cost grows like ``n d^2`` an iteration) to one or two solves on a few
hundred points. The seed changes only the speed, never the answer.

cvxpy, scipy and scikit-learn are imported by the functions that use them, not with this
module: importing all three costs about a second, which a resumed run (its baselines come
from the checkpoint) and code that only needs :class:`Baselines` do not pay.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from sweeplab.errors import ConfigError, SweeplabError

if TYPE_CHECKING:
    import cvxpy as cp

__all__ = [
    "Baselines",
    "BaselineSolverError",
    "NotSeparableError",
    "compute_baselines",
    "is_linearly_separable",
    "logreg_direction",
    "lp_max_margin_direction",
    "svm_direction",
]


# A constraint y_i <w, x_i> >= 1 counts as violated (on the rescaled data, rows of norm
# <= 1) below 1 - _FEAS_TOL; the conic solvers are asked for 1e-9, and a solution of a
# restricted program is accepted (then rescaled onto the constraints) within _ACCEPT_TOL.
_FEAS_TOL = 1e-8
_ACCEPT_TOL = 1e-6
# Working sets (constraint generation): at least _MIN_WORKING_SET points, else a few per
# dimension: more when the seed direction is rough (a few epochs of a linear SVM) than when
# it is an exact max-margin solution. Rounds add the most violated points plus a band of
# the next-smallest margins, which anticipates the points the new solution will violate.
_MIN_WORKING_SET = 64
_ROUGH_SEED_PER_DIM = 3
_EXACT_SEED_PER_DIM = 2
_BAND_FRACTION = 1 / 12
_LOGREG_MAX_ITER = 10_000
# t* = max_{||w||_inf <= 1} min_i y_i <w, x_i> (rows of norm <= 1) at or below this counts
# as not separable: HiGHS's primal feasibility tolerance, below which t* means nothing.
_SEPARABILITY_TOL = 1e-7
# Seeds (see _seed_direction): a loosely regularized SVM for the max-margin programs, a
# cheaper one for the separability test, which must also be quick on overlapping data.
_MM_SEED_C, _MM_SEED_ITER = 1e4, 1000
_SEP_SEED_C, _SEP_SEED_ITER = 1.0, 200

_SOLVER_OPTIONS: dict[str, dict[str, Any]] = {
    "CLARABEL": {"tol_gap_abs": 1e-9, "tol_gap_rel": 1e-9, "tol_feas": 1e-9, "max_iter": 500},
    "SCS": {"eps_abs": 1e-9, "eps_rel": 1e-9, "max_iters": 200_000},
    "OSQP": {"eps_abs": 1e-10, "eps_rel": 1e-10, "max_iter": 400_000},
}
# Preference order: Clarabel (interior point, accurate) first, first-order solvers after.
_CONE_SOLVERS = ("CLARABEL", "SCS")
_QP_SOLVERS = ("CLARABEL", "OSQP", "SCS")

_NOT_SEPARABLE_WARNING = (
    "svm and lp max-margin baselines unavailable: the data is not linearly separable "
    "through the origin (no w with y_i <w, x_i> >= 1 for all i)"
)


class BaselineSolverError(SweeplabError):
    """A max-margin or separability program did not end with an optimal status.

    ``problem`` names the program, ``attempts`` lists ``(solver, status)`` for each
    solver tried, in order.
    """

    def __init__(self, problem: str, attempts: list[tuple[str, str]]):
        self.problem = problem
        self.attempts = tuple(attempts)
        tried = ", ".join(f"{s}: {st}" for s, st in attempts) or "no solver installed"
        super().__init__(f"{problem}: no optimal solution ({tried})")


class NotSeparableError(BaselineSolverError):
    """The max-margin program is infeasible: the data is not separable through the origin."""


# --------------------------------------------------------------------------- inputs


def _check_data(X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(X, y)`` as float64 arrays after checking shapes, finiteness and labels."""
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise ConfigError("X", f"array of shape {X.shape}", "a non-empty (n, d) array")
    if y.shape != (X.shape[0],):
        raise ConfigError("y", f"array of shape {y.shape}", f"shape ({X.shape[0]},) to match X")
    if not np.all(np.isfinite(X)):
        raise ConfigError("X", "an array with NaN or inf", "finite values")
    if not np.all((y == 1.0) | (y == -1.0)):
        bad = sorted({float(v) for v in np.unique(y)} - {-1.0, 1.0})[:5]
        raise ConfigError("y", f"labels including {bad}", "labels in {-1, +1}")
    return X, y


def _check_p(p: Any) -> float:
    """Return ``p`` as a float after checking ``1 <= p < inf``."""
    try:
        pf = float(p)
    except (TypeError, ValueError):
        raise ConfigError("p", p, "a finite number >= 1") from None
    if not (math.isfinite(pf) and pf >= 1.0):
        raise ConfigError("p", p, "a finite number >= 1")
    return pf


def _scaled_margins_matrix(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """Return ``(Z / s, s)`` with rows ``z_i = y_i x_i`` and ``s = max_i ||z_i||_2``.

    Rescaling keeps the programs well conditioned whatever the units of ``X``: if ``v``
    solves ``min ||v|| s.t. (Z/s) v >= 1`` then ``w = v / s`` solves the original program
    (the objective is homogeneous and the feasible set scales by ``1/s``).
    """
    Z = y[:, None] * X
    s = float(np.max(np.linalg.norm(Z, axis=1)))
    if s == 0.0:
        s = 1.0
    return Z / s, s


# --------------------------------------------------------------------------- working sets


def _seed_direction(Xs: np.ndarray, y: np.ndarray, C: float, max_iter: int) -> np.ndarray:
    """A rough max-margin direction, used only to pick the first working set.

    A few epochs of liblinear's dual coordinate descent for the squared-hinge SVM
    without intercept (scikit-learn ``LinearSVC(dual=True)``; Hsieh et al. 2008, "A dual
    coordinate descent method for large-scale linear SVM", ICML), which costs O(n d) an
    epoch. Its smallest margins ``y_i <w, x_i>`` are good guesses for the support vectors
    of every max-margin program here. Only speed depends on it: the working-set loops
    certify their answer on all the data. Single-class data gets the mean of ``y_i x_i``.
    """
    if np.unique(y).size < 2:
        return (y[:, None] * Xs).mean(axis=0)
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.svm import LinearSVC

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        svc = LinearSVC(
            fit_intercept=False, C=C, dual=True, max_iter=max_iter, tol=1e-6, random_state=0
        )
        svc.fit(Xs, y)
    return np.asarray(svc.coef_, dtype=np.float64).ravel()


def _initial_working_set(Z: np.ndarray, seed: np.ndarray, k: int) -> np.ndarray:
    """Boolean mask of the ``k`` rows of smallest margin ``z_i . seed``."""
    active = np.zeros(Z.shape[0], dtype=bool)
    active[np.argsort(Z @ seed, kind="stable")[:k]] = True
    return active


def _working_set_size(n: int, d: int, per_dim: float) -> int:
    """Rows in a first working set, and most rows added per round: ``max(64, per_dim d)``."""
    return min(n, max(_MIN_WORKING_SET, int(per_dim * d)))


def _grow(active: np.ndarray, margins: np.ndarray, violated: np.ndarray, k: int) -> None:
    """Add to ``active`` the ``k`` most violated rows, then a band of the next smallest.

    ``violated`` indexes inactive rows; the band is ``k / 12`` (at least 16) more inactive
    rows of smallest margin: likely support vectors of the next restricted solution.
    """
    active[violated[np.argsort(margins[violated], kind="stable")[:k]]] = True
    rest = np.flatnonzero(~active)
    band = max(16, int(_BAND_FRACTION * k))
    active[rest[np.argsort(margins[rest], kind="stable")[:band]]] = True


# --------------------------------------------------------------------------- separability


def _margin_lp(Zs: np.ndarray) -> tuple[float, np.ndarray]:
    """``max t s.t. Zs w >= t, -1 <= w_j <= 1`` by HiGHS; returns ``(t*, w*)``.

    Always feasible (``w = 0, t = 0``) and bounded (``t <= max_i ||z_i||_1``), so HiGHS
    answers "optimal" rather than the fragile "infeasible" of a pure feasibility LP.
    """
    from scipy.optimize import linprog

    m, d = Zs.shape
    c = np.zeros(d + 1)
    c[-1] = -1.0
    A_ub = np.hstack([-Zs, np.ones((m, 1))])
    res = linprog(
        c,
        A_ub=A_ub,
        b_ub=np.zeros(m),
        bounds=[(-1.0, 1.0)] * d + [(None, None)],
        method="highs",
    )
    if res.status != 0 or res.x is None:
        raise BaselineSolverError(
            "separability LP", [("HIGHS", f"status {res.status}: {res.message}")]
        )
    return float(res.x[-1]), np.asarray(res.x[:d], dtype=np.float64)


def _separable(Z: np.ndarray, seed: np.ndarray) -> bool:
    """Separability of the rows of ``Z`` (norms <= 1) by constraint generation.

    On a working set S: ``t_S = max_{||w||_inf <= 1} min_{i in S} z_i . w``. If the
    maximizer separates every row by more than the tolerance (``min_i z_i . w > tol``)
    it certifies separability. If ``t_S <= tol`` a subset, hence the whole set, is not
    separable. Otherwise the (at most ``k = max(64, 2 d)``) rows it separates worst, and a
    band of next-smallest margins, join S and the LP is solved again; S only grows, so
    the loop ends.
    """
    n, d = Z.shape
    k = _working_set_size(n, d, _EXACT_SEED_PER_DIM)
    active = _initial_working_set(Z, seed, k)
    while True:
        t, w = _margin_lp(Z[active])
        margins = Z @ w
        if margins.min() > _SEPARABILITY_TOL:
            return True
        if t <= _SEPARABILITY_TOL:
            return False
        bad = np.flatnonzero(~active & (margins <= _SEPARABILITY_TOL))
        if bad.size == 0:
            # Only rows of S are at or below tol, so t_S is within HiGHS's tolerance of it.
            return False
        _grow(active, margins, bad, k)


def is_linearly_separable(X: np.ndarray, y: np.ndarray) -> bool:
    """Whether the data is strictly separable by a hyperplane through the origin.

    Decides the linear feasibility problem

        exists w  with  y_i <w, x_i> >= 1   for all i,

    which is strict homogeneous separability (rescale any ``w`` with all
    ``y_i <w, x_i> > 0`` by ``1 / min_i y_i <w, x_i>``), by linear programming with
    scipy's HiGHS (``scipy.optimize.linprog``). For robustness it solves the bounded
    equivalent ``t* = max t s.t. y_i <w, x_i> >= t, ||w||_inf <= 1`` (separable iff
    ``t* > 0``), with rows rescaled to l2 norm <= 1, by constraint generation over the
    points (see :func:`_separable`). A point at the origin is never strictly separated.
    Margins ``t*`` at or below 1e-7 (HiGHS's feasibility tolerance, in this
    normalization) count as not separable.

    Raises :class:`BaselineSolverError` if HiGHS ends without an optimal status.
    """
    X, y = _check_data(X, y)
    Z, s = _scaled_margins_matrix(X, y)
    return _separable(Z, _seed_direction(X / s, y, C=_SEP_SEED_C, max_iter=_SEP_SEED_ITER))


# --------------------------------------------------------------------------- max margin


def _solve_with_fallback(
    problem: cp.Problem,
    w: cp.Variable,
    Zs: np.ndarray,
    solvers: tuple[str, ...],
    name: str,
) -> np.ndarray:
    """Solve ``problem`` with the first solver in ``solvers`` that reaches optimality.

    An attempt counts as successful only with status "optimal", a finite ``w`` and the
    constraints ``Zs w >= 1`` met to ``_ACCEPT_TOL``; a solution short of them by that
    little is divided by ``min(Zs w)``, which makes it feasible and changes its objective
    by as little. Infeasibility certified by a solver raises :class:`NotSeparableError`
    (an inaccurate one counts as a failed attempt); no success at all raises
    :class:`BaselineSolverError` listing every attempt.
    """
    import cvxpy as cp

    installed = set(cp.installed_solvers())
    attempts: list[tuple[str, str]] = []
    for solver in solvers:
        if solver not in installed:
            continue
        try:
            with warnings.catch_warnings():
                # cvxpy warns on inaccurate solutions; the status check below handles them.
                warnings.simplefilter("ignore", UserWarning)
                problem.solve(solver=solver, **_SOLVER_OPTIONS.get(solver, {}))
        except cp.error.SolverError as exc:
            attempts.append((solver, f"solver error: {exc}"))
            continue
        status = problem.status
        if status == cp.INFEASIBLE:
            attempts.append((solver, status))
            raise NotSeparableError(name, attempts)
        if status != cp.OPTIMAL or w.value is None:
            attempts.append((solver, str(status)))
            continue
        value = np.asarray(w.value, dtype=np.float64).ravel()
        if not np.all(np.isfinite(value)):
            attempts.append((solver, "optimal but non-finite solution"))
            continue
        worst = float(np.min(Zs @ value))
        if worst < 1.0 - _ACCEPT_TOL:
            attempts.append((solver, f"optimal but min margin {worst:.8g} < 1"))
            continue
        return value / worst if worst < 1.0 else value
    raise BaselineSolverError(name, attempts)


def _max_margin(
    Z: np.ndarray,
    objective: Callable[[cp.Variable], cp.Expression],
    solvers: tuple[str, ...],
    name: str,
    seed: np.ndarray,
    per_dim: float,
) -> np.ndarray:
    """``argmin objective(w) s.t. Z w >= 1`` by constraint generation.

    Start from the working set of the ``k = max(64, per_dim d)`` rows of smallest margin
    along ``seed``; solve the restricted program; add the (at most ``k``) most violated of
    the other constraints (``z_i . w < 1 - _FEAS_TOL``) and a band of next-smallest
    margins (:func:`_grow`); repeat until none is violated. Each
    restricted program relaxes the full one, so a restricted optimum that satisfies
    every constraint is optimal for the full program (Kelley's cutting-plane method;
    Boyd and Vandenberghe, Convex Optimization, 2004, sec. 5.2 for the relaxation
    argument). The working set only grows, so the loop ends after at most ``n / k``
    rounds; with a good seed, one or two.
    """
    import cvxpy as cp

    n, d = Z.shape
    k = _working_set_size(n, d, per_dim)
    active = _initial_working_set(Z, seed, k)
    while True:
        Zs = Z[active]
        w = cp.Variable(d)
        problem = cp.Problem(cp.Minimize(objective(w)), [Zs @ w >= 1])
        value = _solve_with_fallback(problem, w, Zs, solvers, name)
        margins = Z @ value
        violated = np.flatnonzero(~active & (margins < 1.0 - _FEAS_TOL))
        if violated.size == 0:
            return value
        _grow(active, margins, violated, k)


def _pnorm_objective(p: float) -> Callable[[cp.Variable], cp.Expression]:
    """The cvxpy expression ``||w||_p``: an LP for p = 1, second-order cones otherwise."""
    import cvxpy as cp

    if p == 1.0:
        return cp.norm1
    return lambda w: cp.pnorm(w, p)


def svm_direction(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The l2 hard-margin SVM through the origin (Vapnik 1998; Soudry et al. 2018).

        w_svm = argmin_w (1/2) ||w||_2^2   s.t.   y_i <w, x_i> >= 1   for all i

    solved as a quadratic program in cvxpy (Clarabel, falling back to OSQP/SCS) by
    constraint generation. The solution itself is returned, not normalized: its
    geometric margin is ``1 / ||w_svm||_2``. Its direction is the limit direction of
    gradient descent on the logistic loss for separable data (Soudry, Hoffer, Nacson,
    Gunasekar, Srebro 2018, "The implicit bias of gradient descent on separable data",
    JMLR, Thm 3).

    Raises :class:`NotSeparableError` if the data is not separable through the origin
    and :class:`BaselineSolverError` if no solver reaches an optimal status.
    """
    X, y = _check_data(X, y)
    Z, s = _scaled_margins_matrix(X, y)
    return _svm(Z, _seed_direction(X / s, y, C=_MM_SEED_C, max_iter=_MM_SEED_ITER)) / s


def _half_squared_norm(w: cp.Variable) -> cp.Expression:
    """``(1/2) ||w||_2^2``, which cvxpy hands to the solver as a quadratic objective."""
    import cvxpy as cp

    return 0.5 * cp.sum_squares(w)


def _svm(Z: np.ndarray, seed: np.ndarray, per_dim: float = _ROUGH_SEED_PER_DIM) -> np.ndarray:
    """The SVM of :func:`svm_direction` for the rescaled rows ``Z`` (see there)."""
    name = "l2 hard-margin SVM"
    return _max_margin(Z, _half_squared_norm, _QP_SOLVERS, name, seed, per_dim)


def lp_max_margin_direction(X: np.ndarray, y: np.ndarray, p: float) -> np.ndarray:
    """The lp max-margin predictor through the origin, for ``1 <= p < inf``.

        w_p = argmin_w ||w||_p   s.t.   y_i <w, x_i> >= 1   for all i

    Its direction maximizes the margin measured in the lp norm, ``min_i y_i <w, x_i>``
    over ``||w||_p = 1``, which is ``1 / ||w_p||_p``. On separable data it is the limit
    direction of mirror descent with potential ``psi(w) = (1/p) ||w||_p^p`` (Sun, Ahn,
    Thrampoulidis, Azizan 2022, "Mirror descent maximizes generalized margin and can be
    implemented efficiently", NeurIPS; arXiv:2205.12808). p = 2 is the SVM of
    :func:`svm_direction`.

    A convex program in cvxpy: ``cp.pnorm`` (second-order cones, exact for rational p;
    cvxpy approximates other p by a fraction with denominator <= 1024), an LP for p = 1
    (whose minimizer need not be unique: one of them is returned). Solved with Clarabel
    (SCS as fallback) by constraint generation; the solution is returned unnormalized,
    its optimal value to about 1e-9 relative and its direction to about 1e-3 degrees.

    Raises :class:`ConfigError` for ``p < 1``, :class:`NotSeparableError` if the data is
    not separable through the origin and :class:`BaselineSolverError` if no solver
    reaches an optimal status.
    """
    X, y = _check_data(X, y)
    pf = _check_p(p)
    Z, s = _scaled_margins_matrix(X, y)
    seed = _seed_direction(X / s, y, C=_MM_SEED_C, max_iter=_MM_SEED_ITER)
    return _lp_max_margin(Z, pf, seed) / s


def _lp_max_margin(
    Z: np.ndarray, p: float, seed: np.ndarray, per_dim: float = _ROUGH_SEED_PER_DIM
) -> np.ndarray:
    """The lp max-margin predictor of :func:`lp_max_margin_direction` for rows ``Z``."""
    name = f"l{p:g} max-margin"
    return _max_margin(Z, _pnorm_objective(p), _CONE_SOLVERS, name, seed, per_dim)


# --------------------------------------------------------------------------- logistic


def logreg_direction(X: np.ndarray, y: np.ndarray, C: float = 1.0, seed: int = 0) -> np.ndarray:
    """Coefficients of l2-regularized logistic regression without intercept.

        w_C = argmin_w (1/2) ||w||_2^2 + C sum_i log(1 + exp(-y_i <w, x_i>))

    fitted by scikit-learn's ``LogisticRegression(fit_intercept=False, C=C)`` (lbfgs,
    up to 10,000 iterations). Defined on any data, separable or not; as ``C -> inf`` on
    separable data its direction tends to the l2 SVM direction (Rosset, Zhu, Hastie
    2004, "Margin maximizing loss functions", NeurIPS). Returns ``coef_`` as a float64
    vector of length d. scikit-learn's ``ConvergenceWarning`` propagates.
    """
    X, y = _check_data(X, y)
    if not (C > 0 and math.isfinite(C)):
        raise ConfigError("logreg_C", C, "a finite number > 0")
    if np.unique(y).size < 2:
        raise ConfigError("y", "a single class", "both labels -1 and +1 present")
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(
        fit_intercept=False, C=C, random_state=seed, max_iter=_LOGREG_MAX_ITER
    )
    model.fit(X, y)
    return np.asarray(model.coef_, dtype=np.float64).ravel()


# --------------------------------------------------------------------------- all together


@dataclass(frozen=True, eq=False)
class Baselines:
    """Every baseline direction for one dataset.

    ``svm`` and ``lp_max_margin`` are None when the data is not separable through the
    origin (or, with a warning, when a solver failed); ``lp_max_margin`` is also None
    when ``p`` is None. ``warnings`` holds a sentence for each baseline left out or
    doubtful. Arrays are read-only.
    """

    separable: bool
    svm: np.ndarray | None
    logreg: np.ndarray
    lp_max_margin: np.ndarray | None
    p: float | None
    warnings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        """Hold read-only float64 copies, so a Baselines can be shared safely."""
        for name in ("svm", "logreg", "lp_max_margin"):
            arr = getattr(self, name)
            if arr is not None:
                arr = np.array(arr, dtype=np.float64)
                arr.flags.writeable = False
                object.__setattr__(self, name, arr)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able dict: vectors as lists of floats, missing baselines as None."""

        def vec(a: np.ndarray | None) -> list[float] | None:
            return None if a is None else [float(v) for v in a]

        return {
            "separable": bool(self.separable),
            "svm": vec(self.svm),
            "logreg": vec(self.logreg),
            "lp_max_margin": vec(self.lp_max_margin),
            "p": None if self.p is None else float(self.p),
            "warnings": list(self.warnings),
        }


def compute_baselines(
    X: np.ndarray,
    y: np.ndarray,
    p: float | None,
    logreg_C: float = 1.0,
    seed: int = 0,
    use_cache: bool = True,
) -> Baselines:
    """Compute the separability flag and every baseline direction for ``(X, y)``.

    With ``use_cache``, a set solved before on the same data and settings (by any
    process) is read back bit for bit from :mod:`baseline_cache` instead.

    Logistic regression is always computed. On data separable through the origin (see
    :func:`is_linearly_separable`) also the l2 SVM and, unless ``p`` is None, the lp
    max-margin direction. On non-separable data those two are None with a warning, and
    a solver failure on separable data is reported the same way instead of raised, so
    a run always gets its baselines; so is a logistic ``ConvergenceWarning``. The
    warnings are returned, not logged: the caller records each once (a run through
    ``RunContext.warn``, which logs it and keeps it for ``final.json``). ``seed`` is the
    random state of logistic regression; the SVM seeds the lp program's working set
    (speed only). Bad input (shapes, labels, a single class, ``p`` not a finite number
    >= 1, ``logreg_C <= 0``) raises :class:`ConfigError`.
    """
    X, y = _check_data(X, y)
    pf = None if p is None else _check_p(p)
    if not (logreg_C > 0 and math.isfinite(logreg_C)):
        raise ConfigError("logreg_C", logreg_C, "a finite number > 0")
    if not use_cache:
        return _solve_baselines(X, y, pf, logreg_C, seed)
    from sweeplab.studies.implicit_bias import baseline_cache

    key = baseline_cache.key("baselines", X, y, p=pf, logreg_C=float(logreg_C), seed=int(seed))
    hit = baseline_cache.load(key)
    if hit is not None:
        arrays, meta = hit
        return Baselines(separable=bool(meta["separable"]), svm=arrays.get("svm"),
                         logreg=arrays["logreg"], lp_max_margin=arrays.get("lp_max_margin"),
                         p=pf, warnings=tuple(meta["warnings"]))
    base = _solve_baselines(X, y, pf, logreg_C, seed)
    baseline_cache.store(key, {"svm": base.svm, "logreg": base.logreg,
                               "lp_max_margin": base.lp_max_margin},
                         {"separable": base.separable, "warnings": list(base.warnings)})
    return base


def _solve_baselines(X: np.ndarray, y: np.ndarray, pf: float | None, logreg_C: float,
                     seed: int) -> Baselines:
    """:func:`compute_baselines` on checked input, without the cache."""
    from sklearn.exceptions import ConvergenceWarning

    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        logreg = logreg_direction(X, y, C=logreg_C, seed=seed)
    for w in caught:
        if issubclass(w.category, ConvergenceWarning):
            notes.append(f"logistic regression did not converge: {w.message}")
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)

    Z, s = _scaled_margins_matrix(X, y)
    try:
        # The logistic direction ranks the points well enough to seed the LP's working set.
        separable = _separable(Z, logreg)
    except BaselineSolverError as exc:
        separable = False
        notes.append(f"separability could not be decided, treated as not separable: {exc}")
    svm: np.ndarray | None = None
    lp: np.ndarray | None = None
    if not separable:
        notes.append(_NOT_SEPARABLE_WARNING)
    else:
        start = _seed_direction(X / s, y, C=_MM_SEED_C, max_iter=_MM_SEED_ITER)
        per_dim = _ROUGH_SEED_PER_DIM
        try:
            svm = _svm(Z, start) / s
            # Support vectors of the lp program sit among the smallest SVM margins.
            start, per_dim = svm, _EXACT_SEED_PER_DIM
        except BaselineSolverError as exc:
            notes.append(f"svm baseline unavailable: {exc}")
        if pf is not None:
            try:
                lp = _lp_max_margin(Z, pf, start, per_dim) / s
            except BaselineSolverError as exc:
                notes.append(f"l{pf:g} max-margin baseline unavailable: {exc}")

    return Baselines(
        separable=separable,
        svm=svm,
        logreg=logreg,
        lp_max_margin=lp,
        p=pf,
        warnings=tuple(notes),
    )
