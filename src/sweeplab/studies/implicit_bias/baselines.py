"""Baseline directions in input space that a trained linear network is compared with.

The implicit-bias study trains ``f(x) = W_L ... W_1 x`` on binary data ``(X, y)``,
``y_i in {-1, +1}``, without a bias, and measures the angle between the end-to-end
predictor ``w = W_1^T ... W_L^T`` and the directions computed here:

- the l2 hard-margin SVM through the origin, the limit direction of gradient descent on
  the logistic loss (Soudry et al. 2018, Thm 3);
- the lp max-margin direction ``argmin ||w||_p s.t. y_i <w, x_i> >= 1``, the limit
  direction of mirror descent with potential ``(1/p)||w||_p^p`` (Sun, Ahn, Thrampoulidis,
  Azizan 2022, Thm 1);
- regularized logistic regression (scikit-learn), a reference that exists even when the
  data is not separable.

Everything is numpy in, numpy out: ``X`` is ``(n, d)`` float64 and ``y`` is ``(n,)`` with
values in {-1, +1}. Write ``z_i = y_i x_i`` and ``Z`` for the matrix of rows ``z_i``; then
every max-margin problem reads ``min ||w|| s.t. Z w >= 1``.

The max-margin programs are solved by constraint generation (cutting planes): solve the
program on a working set of the ``z_i`` of smallest margin, add the constraints the
solution violates, repeat. The restricted program is a relaxation, so once its solution
satisfies every constraint it is optimal for the full program; only the few support
vectors matter, which keeps ``n = 12,000, d = 200`` to seconds where one conic solve of
the whole program takes tens of seconds.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cvxpy as cp
import numpy as np
from scipy.optimize import linprog
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from sweeplab.errors import ConfigError, SweeplabError

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

log = logging.getLogger(__name__)

# A constraint y_i <w, x_i> >= 1 counts as violated (on the rescaled data, rows of norm
# <= 1) below 1 - _FEAS_TOL; the conic solvers are asked for 1e-9.
_FEAS_TOL = 1e-8
# Working set: at least this many points, or a few per dimension; constraints added per
# round of constraint generation.
_MIN_WORKING_SET = 64
_WORKING_SET_PER_DIM = 2
_LOGREG_MAX_ITER = 10_000

_SOLVER_OPTIONS: dict[str, dict[str, Any]] = {
    "CLARABEL": {"tol_gap_abs": 1e-9, "tol_gap_rel": 1e-9, "tol_feas": 1e-9, "max_iter": 500},
    "SCS": {"eps_abs": 1e-9, "eps_rel": 1e-9, "max_iters": 200_000},
    "OSQP": {"eps_abs": 1e-10, "eps_rel": 1e-10, "max_iter": 400_000, "polish": True},
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
    """Return ``p`` as a float after checking ``1 <= p <= inf``."""
    try:
        pf = float(p)
    except (TypeError, ValueError):
        raise ConfigError("p", p, "a number >= 1 (inf allowed)") from None
    if math.isnan(pf) or pf < 1.0:
        raise ConfigError("p", p, "a number >= 1 (inf allowed)")
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


# --------------------------------------------------------------------------- separability


def is_linearly_separable(X: np.ndarray, y: np.ndarray) -> bool:
    """Whether the data is strictly separable by a hyperplane through the origin.

    Decides the linear feasibility problem

        find w  s.t.  y_i <w, x_i> >= 1   for all i

    with scipy's HiGHS LP solver (zero objective, free variables). Strict homogeneous
    separability (``y_i <w, x_i> > 0`` for all i) is equivalent to it, by rescaling ``w``
    by ``1 / min_i y_i <w, x_i>``. A point at the origin is never strictly separated.
    The rows are rescaled to norm at most 1 first; margins below the solver's
    feasibility tolerance (about 1e-7 of the largest ``||x_i||``) cannot be told apart
    from zero.

    Raises :class:`BaselineSolverError` if HiGHS ends with neither "feasible" nor
    "infeasible" (iteration limit, numerical trouble).
    """
    X, y = _check_data(X, y)
    Z, _ = _scaled_margins_matrix(X, y)
    n, d = Z.shape
    res = linprog(
        c=np.zeros(d),
        A_ub=-Z,
        b_ub=-np.ones(n),
        bounds=[(None, None)] * d,
        method="highs",
    )
    if res.status == 0:
        return True
    if res.status == 2:
        return False
    raise BaselineSolverError("separability LP", [("HIGHS", f"status {res.status}: {res.message}")])


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
    constraints ``Zs w >= 1`` met to ``_FEAS_TOL``. Infeasibility reported by any solver
    raises :class:`NotSeparableError`; no success at all raises
    :class:`BaselineSolverError` listing every attempt.
    """
    installed = set(cp.installed_solvers())
    attempts: list[tuple[str, str]] = []
    for solver in solvers:
        if solver not in installed:
            continue
        try:
            problem.solve(solver=solver, **_SOLVER_OPTIONS.get(solver, {}))
        except cp.error.SolverError as exc:
            attempts.append((solver, f"solver error: {exc}"))
            continue
        status = problem.status
        if status in (cp.INFEASIBLE, cp.INFEASIBLE_INACCURATE):
            attempts.append((solver, status))
            raise NotSeparableError(name, attempts)
        if status != cp.OPTIMAL or w.value is None:
            attempts.append((solver, str(status)))
            continue
        value = np.asarray(w.value, dtype=np.float64).ravel()
        if not np.all(np.isfinite(value)):
            attempts.append((solver, "optimal but non-finite solution"))
            continue
        worst = float(np.min(Zs @ value)) if Zs.shape[0] else 1.0
        if worst < 1.0 - _FEAS_TOL:
            attempts.append((solver, f"optimal but min margin {worst:.3g} < 1"))
            continue
        return value
    raise BaselineSolverError(name, attempts)


def _max_margin(
    Z: np.ndarray,
    objective: Callable[[cp.Variable], cp.Expression],
    solvers: tuple[str, ...],
    name: str,
) -> np.ndarray:
    """``argmin objective(w) s.t. Z w >= 1`` by constraint generation.

    Start from the working set of the ``k = max(64, 2 d)`` rows with smallest margin
    along the mean row ``mean_i z_i``; solve the restricted program; add the ``k`` most
    violated of the remaining constraints (``z_i . w < 1 - _FEAS_TOL``); repeat until
    none is violated. Each restricted program relaxes the full one, so its optimum is a
    lower bound, and a restricted optimum that is feasible for all rows is optimal for
    the full program (cutting-plane method; e.g. Boyd and Vandenberghe, Convex
    Optimization, 2004, sec. 5.2 for the relaxation argument). The working set only
    grows, so the loop ends after at most ``n / k`` rounds; in practice a handful.
    """
    n, d = Z.shape
    k = min(n, max(_MIN_WORKING_SET, _WORKING_SET_PER_DIM * d))
    center = Z.mean(axis=0)
    start = Z @ center if np.any(center) else np.zeros(n)
    active = np.zeros(n, dtype=bool)
    active[np.argsort(start, kind="stable")[:k]] = True
    while True:
        Zs = Z[active]
        w = cp.Variable(d)
        problem = cp.Problem(cp.Minimize(objective(w)), [Zs @ w >= 1])
        value = _solve_with_fallback(problem, w, Zs, solvers, name)
        margins = Z @ value
        violated = np.flatnonzero(~active & (margins < 1.0 - _FEAS_TOL))
        if violated.size == 0:
            return value
        worst = violated[np.argsort(margins[violated], kind="stable")[:k]]
        active[worst] = True


def _pnorm_objective(p: float) -> Callable[[cp.Variable], cp.Expression]:
    """The cvxpy expression ``||w||_p``: an LP for p = 1 and inf, cones otherwise."""
    if p == 1.0:
        return cp.norm1
    if math.isinf(p):
        return cp.norm_inf
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
    v = _max_margin(Z, lambda w: 0.5 * cp.sum_squares(w), _QP_SOLVERS, "l2 hard-margin SVM")
    return v / s


def lp_max_margin_direction(X: np.ndarray, y: np.ndarray, p: float) -> np.ndarray:
    """The lp max-margin predictor through the origin, for ``1 <= p <= inf``.

        w_p = argmin_w ||w||_p   s.t.   y_i <w, x_i> >= 1   for all i

    Its direction maximizes the margin measured in the lp norm, ``min_i y_i <w, x_i>``
    over ``||w||_p = 1``, which is ``1 / ||w_p||_p``. On separable data it is the limit
    direction of mirror descent with potential ``psi(w) = (1/p) ||w||_p^p`` (Sun, Ahn,
    Thrampoulidis, Azizan 2022, "Mirror descent maximizes generalized margin and can be
    implemented efficiently", NeurIPS, Thm 1); p = 2 is the SVM of :func:`svm_direction`.

    A convex program in cvxpy: ``cp.pnorm`` (second-order cones, exact for rational p;
    cvxpy approximates other p by a fraction with denominator <= 1024), an LP for p = 1
    and p = inf. Solved with Clarabel (SCS as fallback) by constraint generation; the
    solution is returned unnormalized.

    Raises :class:`ConfigError` for ``p < 1``, :class:`NotSeparableError` if the data is
    not separable through the origin and :class:`BaselineSolverError` if no solver
    reaches an optimal status.
    """
    X, y = _check_data(X, y)
    pf = _check_p(p)
    Z, s = _scaled_margins_matrix(X, y)
    v = _max_margin(Z, _pnorm_objective(pf), _CONE_SOLVERS, f"l{pf:g} max-margin")
    return v / s


# --------------------------------------------------------------------------- logistic


def logreg_direction(X: np.ndarray, y: np.ndarray, C: float = 1.0, seed: int = 0) -> np.ndarray:
    """Coefficients of l2-regularized logistic regression without intercept.

        w_C = argmin_w (1/2) ||w||_2^2 + C sum_i log(1 + exp(-y_i <w, x_i>))

    fitted by scikit-learn's ``LogisticRegression(fit_intercept=False, C=C)`` (lbfgs,
    up to 10,000 iterations). Defined on any data, separable or not; as ``C -> inf`` on
    separable data its direction tends to the l2 SVM direction (Rosset, Zhu, Hastie
    2004, "Margin maximizing loss functions", NeurIPS, Thm 2). Returns ``coef_`` as a
    float64 vector of length d. scikit-learn's ``ConvergenceWarning`` propagates.
    """
    X, y = _check_data(X, y)
    if not (C > 0 and math.isfinite(C)):
        raise ConfigError("logreg_C", C, "a finite number > 0")
    if np.unique(y).size < 2:
        raise ConfigError("y", "a single class", "both labels -1 and +1 present")
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
        """Freeze the arrays too, so a Baselines can be shared without copying."""
        for arr in (self.svm, self.logreg, self.lp_max_margin):
            if arr is not None:
                arr.flags.writeable = False

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
) -> Baselines:
    """Compute the separability flag and every baseline direction for ``(X, y)``.

    Logistic regression is always computed. On data separable through the origin (see
    :func:`is_linearly_separable`) also the l2 SVM and, unless ``p`` is None, the lp
    max-margin direction. On non-separable data those two are None with a warning, and
    a solver failure on separable data is reported the same way instead of raised, so
    a run always gets its baselines. Each warning is also logged at WARNING level.
    Bad input (shapes, labels, ``p < 1``, ``logreg_C <= 0``) raises
    :class:`ConfigError` before any work.
    """
    X, y = _check_data(X, y)
    pf = None if p is None else _check_p(p)
    if not (logreg_C > 0 and math.isfinite(logreg_C)):
        raise ConfigError("logreg_C", logreg_C, "a finite number > 0")
    notes: list[str] = []

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        logreg = logreg_direction(X, y, C=logreg_C, seed=seed)
    for w in caught:
        if issubclass(w.category, ConvergenceWarning):
            notes.append(f"logistic regression did not converge: {w.message}")
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)

    separable = is_linearly_separable(X, y)
    svm: np.ndarray | None = None
    lp: np.ndarray | None = None
    if not separable:
        notes.append(_NOT_SEPARABLE_WARNING)
    else:
        try:
            svm = svm_direction(X, y)
        except BaselineSolverError as exc:
            notes.append(f"svm baseline unavailable: {exc}")
        if pf is not None:
            try:
                lp = lp_max_margin_direction(X, y, pf)
            except BaselineSolverError as exc:
                notes.append(f"l{pf:g} max-margin baseline unavailable: {exc}")

    for note in notes:
        log.warning(note)
    return Baselines(
        separable=separable,
        svm=svm,
        logreg=logreg,
        lp_max_margin=lp,
        p=pf,
        warnings=tuple(notes),
    )
