"""The metrics of :class:`~.metrics.MetricTracker`, for B runs at once.

Same quantities, same formulas, float64 numpy over a leading run axis (see ``metrics``
for the math and its sources): loss and accuracy, the angle to each baseline direction,
normalized margins gamma_q(w) = min_i y_i <w, x_i> / ||w||_q (q = 2 and the potential's
p) and their ratios to the baselines' optimal margins, end-to-end and per-layer norms,
layer alignment |u_k^T v_{k+1}|, rank-one ratios sigma_1 / ||W_k||_F and the norm
balance N(W_k) - N(W_{k+1}) with its drift from initialization.

Run b gets exactly the keys its single run logs (a run without an svm baseline has no
``angle_svm``), with values equal up to the summation order of the products (about
1e-16 relative). Two shortcuts, both exact in exact arithmetic: the logistic loss
log(1 + e^{-m}) is evaluated as max(-m, 0) + log1p(e^{-|m|}), the formula of numpy's
``logaddexp``, without its per-element cost; and a layer that is a vector (one row or
one column) has the SVD sigma_1 = ||W||, with its direction as the singular vector.
A run whose weights are not finite is measured by its own :class:`MetricTracker`, so it
fails, or not, exactly as alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter

import numpy as np

from sweeplab.studies.implicit_bias.batched_train import data_layout
from sweeplab.studies.implicit_bias.metrics import MetricTracker, balances, normalized_margin
from sweeplab.studies.implicit_bias.model import mean_exp
from sweeplab.studies.implicit_bias.potentials import (
    HyperbolicEntropy,
    LpPotential,
    Potential,
)


@dataclass(frozen=True, eq=False)
class TrackedRun:
    """What the metrics of one run need: its data, potential, baselines and init."""

    X: np.ndarray
    y: np.ndarray
    data_id: int
    potential: Potential
    directions: Mapping[str, np.ndarray | None]
    init_weights: Sequence[np.ndarray]


class BatchedMetricTracker:
    """:class:`MetricTracker` for runs of one loss and depth; runs of a data set adjacent."""

    def __init__(self, runs: Sequence[TrackedRun], loss: str, names: Sequence[str]):
        """``names``: the baseline directions, in the order their angles are logged."""
        self.runs = list(runs)
        self.loss = loss
        self.names = list(names)
        self.depth = len(runs[0].init_weights)
        Z_by_id: dict[int, np.ndarray] = {}
        for run in self.runs:
            if run.data_id not in Z_by_id:
                Z_by_id[run.data_id] = (np.asarray(run.y, dtype=np.float64)[:, None]
                                        * np.asarray(run.X, dtype=np.float64))
        self._Z_by_id = Z_by_id
        d = next(iter(Z_by_id.values())).shape[1]
        self.p = np.array([r.potential.margin_p for r in self.runs])
        self.units = np.zeros((len(self.runs), len(self.names), d))  # zero: no baseline
        self.optimal = {"l2": np.ones(len(self.runs)), "p": np.ones(len(self.runs))}
        self.keys: list[tuple[str, ...]] = []
        init_balance = []
        for b, run in enumerate(self.runs):
            self.keys.append(self._constants(b, run))
            init_balance.append(balances(run.init_weights, run.potential))
        self.init_balance = np.array(init_balance, dtype=np.float64).reshape(
            len(self.runs), self.depth - 1)
        self._columns_layout()

    def _constants(self, b: int, run: TrackedRun) -> tuple[str, ...]:
        """Run b's unit baselines and optimal margins; returns the keys it logs, in order."""
        Z = self._Z_by_id[run.data_id]
        keys = ["loss", "train_acc"]
        for j, name in enumerate(self.names):
            v = run.directions.get(name)
            if v is None:
                continue
            v = np.asarray(v, dtype=np.float64)
            norm = np.linalg.norm(v)
            if norm > 0:
                self.units[b, j] = v / norm
                keys.append(f"angle_{name}")
        keys += ["margin_l2", "margin_p"]
        for which, name, q in (("l2", "svm", 2.0), ("p", "lp_max_margin", self.p[b])):
            v = run.directions.get(name)
            opt = None if v is None else normalized_margin(np.asarray(v, np.float64), Z, q)
            if opt:  # as MetricTracker: a missing or zero optimal margin gives no ratio
                self.optimal[which][b] = opt
                keys.append(f"margin_{which}_ratio")
        keys += ["e2e_norm", "e2e_norm_p"] + [f"norm_{k}" for k in range(1, self.depth + 1)]
        if self.depth > 1:
            pairs = range(1, self.depth)
            keys += [f"align_{k}" for k in pairs] + ["align_min"]
            keys += [f"rank1_{k}" for k in range(1, self.depth + 1)] + ["rank1_min"]
            for k in pairs:
                keys += [f"balance_{k}", f"balance_drift_{k}"]
            keys.append("balance_drift_max")
        return tuple(keys)

    def _columns_layout(self) -> None:
        """The data layout (as the trainer's) and where each run's keys sit in a row."""
        self.r, order = data_layout([run.data_id for run in self.runs])
        self.Zt = np.stack([self._Z_by_id[k].T for k in order])  # (K, d, n)
        self.columns = list(dict.fromkeys(key for keys in self.keys for key in keys))
        where = {key: j for j, key in enumerate(self.columns)}
        everything = tuple(self.columns)
        self._pick = [None if keys == everything else itemgetter(*(where[key] for key in keys))
                      for keys in self.keys]
        self._buffers: tuple[np.ndarray, np.ndarray] | None = None
        kind = type(self.runs[0].potential)
        if kind is LpPotential:
            self._param = np.array([r.potential.p for r in self.runs])[:, None, None]
        elif kind is HyperbolicEntropy:
            self._param = np.array([r.potential.beta ** 2 for r in self.runs])[:, None, None]
        self._kind = kind

    def select(self, rows: Sequence[int]) -> None:
        """Keep the runs ``rows`` (in that order)."""
        idx = np.asarray(rows, dtype=np.intp)
        self.runs = [self.runs[i] for i in rows]
        self.keys = [self.keys[i] for i in rows]
        self.p = self.p[idx]
        self.units = self.units[idx]
        self.optimal = {k: v[idx] for k, v in self.optimal.items()}
        self.init_balance = self.init_balance[idx]
        self._columns_layout()

    def __call__(self, weights: Sequence[np.ndarray]) -> list[dict[str, float] | BaseException]:
        """Every run's metrics for layers ``weights`` (each (B, out, in) float64).

        A run whose layers are not all finite gets what its own MetricTracker returns,
        or the exception it raises.
        """
        finite = np.ones(len(self.runs), dtype=bool)
        for w in weights:
            finite &= np.isfinite(w).all(axis=(1, 2))
        given = weights
        if not finite.all():
            weights = [np.where(finite[:, None, None], w, 0.0) for w in weights]
        with np.errstate(all="ignore"):
            cols = self._columns(weights)
        table = np.stack([cols[key] for key in self.columns], axis=1).tolist()
        out: list[dict[str, float] | BaseException] = [
            dict(zip(keys, row if pick is None else pick(row)))
            for keys, pick, row in zip(self.keys, self._pick, table)
        ]
        for b in np.flatnonzero(~finite):
            out[b] = self._alone(b, [w[b] for w in given])
        return out

    def _alone(self, b: int, weights: list[np.ndarray]) -> dict[str, float] | BaseException:
        run = self.runs[b]
        tracker = MetricTracker(run.X, run.y, run.potential, self.loss, run.directions,
                                run.init_weights)
        try:
            return tracker(weights)
        except Exception as exc:  # noqa: BLE001 - the run's own failure, returned as data
            return exc

    def _columns(self, weights: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        B = len(self.runs)
        w = weights[0]
        for wk in weights[1:]:
            w = np.matmul(wk, w)
        w = w.reshape(B, -1)
        K = self.Zt.shape[0]
        m = np.matmul(w.reshape(K, self.r, -1), self.Zt).reshape(B, -1)
        out: dict[str, np.ndarray] = {"loss": self._loss(m), "train_acc": (m > 0).mean(axis=1)}
        norm2 = np.sqrt(np.einsum("bd,bd->b", w, w))
        positive = norm2 > 0
        safe2 = np.where(positive, norm2, 1.0)
        cos = np.einsum("bjd,bd->bj", self.units, w) / safe2[:, None]
        cos = np.where(cos > -1.0, np.minimum(cos, 1.0), -1.0)  # min(1, max(-1, cos))
        angles = np.where(positive[:, None], np.degrees(np.arccos(cos)), np.nan)
        for j, name in enumerate(self.names):
            out[f"angle_{name}"] = angles[:, j]
        # ||w||_p = (sum_j |w_j|^p)^(1/p), numpy.linalg.norm's formula for p other than 1, 2
        norm_p = (np.abs(w) ** self.p[:, None]).sum(axis=1) ** (1.0 / self.p)
        lowest = m.min(axis=1)
        out["margin_l2"] = np.where(positive, lowest / safe2, np.nan)
        out["margin_p"] = np.where(norm_p > 0, lowest / norm_p, np.nan)
        out["margin_l2_ratio"] = out["margin_l2"] / self.optimal["l2"]
        out["margin_p_ratio"] = out["margin_p"] / self.optimal["p"]
        out["e2e_norm"] = norm2
        out["e2e_norm_p"] = norm_p
        for k, wk in enumerate(weights, start=1):
            out[f"norm_{k}"] = np.sqrt(np.einsum("bij,bij->b", wk, wk))
        if len(weights) > 1:
            self._layer_columns(weights, out)
        return out

    def _loss(self, m: np.ndarray) -> np.ndarray:
        """mean_i l(m_bi) per run, as ``loss_numpy`` (logistic: logaddexp's formula)."""
        if self.loss == "logistic":
            if self._buffers is None or self._buffers[0].shape != m.shape:
                self._buffers = (np.empty_like(m), np.empty_like(m))
            terms, rest = self._buffers
            np.abs(m, out=terms)
            np.negative(terms, out=terms)
            np.exp(terms, out=terms)
            np.log1p(terms, out=terms)
            np.negative(m, out=rest)
            np.maximum(rest, 0.0, out=rest)
            terms += rest
            return terms.mean(axis=1)
        if self.loss == "exponential":
            return mean_exp(-m, axis=1)
        raise KeyError(f"unknown loss {self.loss!r}")

    def _layer_columns(self, weights: Sequence[np.ndarray], out: dict[str, np.ndarray]) -> None:
        """Alignment, rank-one ratios and balances (MetricTracker._layer_metrics)."""
        spectra = [_top_singular(wk) for wk in weights]
        align = [np.abs(np.einsum("bi,bi->b", spectra[k][0], spectra[k + 1][3]))
                 for k in range(len(weights) - 1)]
        rank1 = [np.where(fro > 0, s1 / fro, np.nan) for _, s1, fro, _ in spectra]
        norms = [self._balance_norm(wk) for wk in weights]
        bal = [norms[k] - norms[k + 1] for k in range(len(norms) - 1)]
        drifts = [b - self.init_balance[:, k] for k, b in enumerate(bal)]
        for k, a in enumerate(align, start=1):
            out[f"align_{k}"] = a
        out["align_min"] = _python_fold(align, np.less)
        for k, r in enumerate(rank1, start=1):
            out[f"rank1_{k}"] = r
        out["rank1_min"] = _python_fold(rank1, np.less)
        for k, (b, d) in enumerate(zip(bal, drifts), start=1):
            out[f"balance_{k}"] = b
            out[f"balance_drift_{k}"] = d
        out["balance_drift_max"] = _python_fold([np.abs(d) for d in drifts], np.greater)

    def _balance_norm(self, w: np.ndarray) -> np.ndarray:
        """N(W) of each run's potential (``Potential.balance_norm``), shape (B,)."""
        if self._kind is LpPotential:
            return (np.abs(w) ** self._param).sum(axis=(1, 2))
        if self._kind is HyperbolicEntropy:
            return np.sqrt(w * w + self._param).sum(axis=(1, 2))
        return (w * w).sum(axis=(1, 2))


def _top_singular(w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(u_1, sigma_1, ||W||_F, v_1) of every matrix of the stack w (B, out, in).

    A vector (one row or column) has sigma_1 = ||W|| and its direction as singular
    vector; a matrix with two columns (or rows) gets sigma_1^2 and v_1 from the 2 x 2
    Gram matrix [[a, b], [b, c]] = W^T W in closed form:

        sigma_1^2 = (a + c)/2 + h,  h = hypot((a - c)/2, b),
        v_1 ~ ((a - c)/2 + h, b) if a >= c else (b, (c - a)/2 + h),   u_1 = W v_1 / sigma_1,

    sums of terms of one sign, free of cancellation. Other shapes, and the rows these
    leave undetermined (a zero matrix, sigma_1 = sigma_2), go through LAPACK's SVD.
    """
    B, rows, cols = w.shape
    if min(rows, cols) == 1:
        vec = w.reshape(B, -1)
        s1 = np.sqrt(np.einsum("bi,bi->b", vec, vec))
        if np.all(s1 > 0):
            unit = vec / s1[:, None]
            one = np.ones((B, 1))
            return (one, s1, s1, unit) if rows == 1 else (unit, s1, s1, one)
    elif min(rows, cols) == 2:
        if rows == 2 and cols != 2:
            v1, s1, fro, u1 = _top_singular(np.swapaxes(w, 1, 2))
            return u1, s1, fro, v1
        a = np.einsum("bi,bi->b", w[:, :, 0], w[:, :, 0])
        c = np.einsum("bi,bi->b", w[:, :, 1], w[:, :, 1])
        b = np.einsum("bi,bi->b", w[:, :, 0], w[:, :, 1])
        half = (a - c) / 2
        h = np.hypot(half, b)
        first = a >= c
        v = np.stack([np.where(first, half + h, b), np.where(first, b, h - half)], axis=1)
        norm = np.sqrt(np.einsum("bi,bi->b", v, v))
        if np.all(norm > 0):
            v /= norm[:, None]
            s1 = np.sqrt((a + c) / 2 + h)
            u = np.einsum("bij,bj->bi", w, v) / s1[:, None]
            return u, s1, np.sqrt(a + c), v
    u, s, vt = np.linalg.svd(w, full_matrices=False)
    return u[:, :, 0], s[:, 0], np.sqrt(np.einsum("bi,bi->b", s, s)), vt[:, 0, :]


def _python_fold(columns: list[np.ndarray], better) -> np.ndarray:
    """Python's min/max over columns, entry-wise: replace only where strictly better.

    ``min(a, b)`` keeps a NaN it starts with and skips a later one; so does this.
    """
    result = columns[0]
    for col in columns[1:]:
        result = np.where(better(col, result), col, result)
    return result
