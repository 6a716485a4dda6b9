"""Metrics of the implicit-bias study, all in float64 numpy.

- angle(u, v) = arccos(<u, v> / (||u|| ||v||)) in degrees, between the end-to-end
  predictor and each baseline direction.
- Normalized margins gamma_q(w) = min_i y_i <w, x_i> / ||w||_q for q = 2 and for the
  potential's p; the lp max-margin solution w* attains gamma_p* = 1 / ||w*||_p, so
  gamma_p / gamma_p* <= 1 measures how close training is to lp max-margin.
- Layer alignment |u_k^T v_{k+1}|, u_k the top left singular vector of W_k and v_{k+1} the
  top right singular vector of W_{k+1}, and the rank-one ratio sigma_1(W_k) / ||W_k||_F
  (both tend to 1 under GD on separable data: Ji & Telgarsky 2019, Thm 4.1).
- Norm balance N(W_k) - N(W_{k+1}) with the potential's conserved norm N (see
  ``potentials``), as a value and as its drift from initialization.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import reduce

import numpy as np

from sweeplab.studies.implicit_bias.model import loss_numpy
from sweeplab.studies.implicit_bias.potentials import Potential


def end_to_end(weights: Sequence[np.ndarray]) -> np.ndarray:
    """w = (W_L ... W_1)^T as a vector of shape (d,)."""
    return reduce(lambda acc, w: w @ acc, weights[1:], weights[0]).reshape(-1)


def angle_deg(u: np.ndarray, v: np.ndarray) -> float:
    """Angle between u and v in degrees (NaN if either is zero)."""
    nu, nv = np.linalg.norm(u), np.linalg.norm(v)
    if nu == 0 or nv == 0:
        return float("nan")
    cos = float(np.dot(u, v) / (nu * nv))
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))


def normalized_margin(w: np.ndarray, Z: np.ndarray, q: float) -> float:
    """gamma_q(w) = min_i (Z w)_i / ||w||_q with Z rows y_i x_i."""
    norm = np.linalg.norm(w, ord=q)
    return float(np.min(Z @ w) / norm) if norm > 0 else float("nan")


def layer_spectra(weights: Sequence[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(u_1, singular values, v_1) of every layer: one SVD per layer serves all metrics."""
    out = []
    for w in weights:
        u, s, vt = np.linalg.svd(w, full_matrices=False)
        out.append((u[:, 0], s, vt[0]))
    return out


def layer_alignment(weights: Sequence[np.ndarray], spectra=None) -> list[float]:
    """|u_k^T v_{k+1}| for k = 1..L-1 (top singular vectors of adjacent layers)."""
    spectra = spectra or layer_spectra(weights)
    return [float(abs(spectra[k][0] @ spectra[k + 1][2])) for k in range(len(spectra) - 1)]


def rank_one_ratio(w: np.ndarray, singular_values: np.ndarray | None = None) -> float:
    """sigma_1(W) / ||W||_F, equal to 1 exactly when W has rank one."""
    s = np.linalg.svd(w, compute_uv=False) if singular_values is None else singular_values
    fro = math.sqrt(float(s @ s))
    return float(s[0] / fro) if fro > 0 else float("nan")


def balances(weights: Sequence[np.ndarray], potential: Potential) -> list[float]:
    """N(W_k) - N(W_{k+1}) for k = 1..L-1, N the potential's conserved norm."""
    norms = [potential.balance_norm(w) for w in weights]
    return [norms[k] - norms[k + 1] for k in range(len(norms) - 1)]


class MetricTracker:
    """Computes every logged metric of a deep linear network's weights.

    Holds what does not change during training (data, baselines, initial balances) so a
    call costs a few small matrix products and one SVD per layer.
    """

    def __init__(
        self,
        X: np.ndarray,
        y: np.ndarray,
        potential: Potential,
        loss: str,
        baselines: Mapping[str, np.ndarray | None],
        init_weights: Sequence[np.ndarray],
    ):
        self.Z = np.asarray(y, dtype=np.float64)[:, None] * np.asarray(X, dtype=np.float64)
        self.potential = potential
        self.p = potential.margin_p
        self.loss = loss
        self.baselines = {
            k: np.asarray(v, dtype=np.float64) for k, v in baselines.items() if v is not None
        }
        self._units = {k: v / np.linalg.norm(v) for k, v in self.baselines.items()
                       if np.linalg.norm(v) > 0}
        self.optimal_margin_l2 = self._optimal("svm", 2.0)
        self.optimal_margin_p = self._optimal("lp_max_margin", self.p)
        self.init_balance = balances(init_weights, potential)

    def _optimal(self, name: str, q: float) -> float | None:
        w = self.baselines.get(name)
        return None if w is None else normalized_margin(w, self.Z, q)

    def __call__(self, weights: Sequence[np.ndarray]) -> dict[str, float]:
        """Metrics of one set of layer weights, as a flat dict of floats."""
        w = end_to_end(weights)
        m = self.Z @ w
        out: dict[str, float] = {
            "loss": loss_numpy(self.loss, m),
            "train_acc": float(np.mean(m > 0)),
        }
        norm2 = math.sqrt(float(w @ w))
        for name, unit in self._units.items():
            if norm2 > 0:
                cos = min(1.0, max(-1.0, float(unit @ w) / norm2))
                out[f"angle_{name}"] = math.degrees(math.acos(cos))
            else:
                out[f"angle_{name}"] = float("nan")
        norm_p = float(np.linalg.norm(w, ord=self.p))
        out["margin_l2"] = float(m.min() / norm2) if norm2 > 0 else float("nan")
        out["margin_p"] = float(m.min() / norm_p) if norm_p > 0 else float("nan")
        if self.optimal_margin_l2:
            out["margin_l2_ratio"] = out["margin_l2"] / self.optimal_margin_l2
        if self.optimal_margin_p:
            out["margin_p_ratio"] = out["margin_p"] / self.optimal_margin_p
        out["e2e_norm"] = norm2
        out["e2e_norm_p"] = norm_p
        for k, wk in enumerate(weights, start=1):
            out[f"norm_{k}"] = math.sqrt(float(np.vdot(wk, wk)))
        if len(weights) > 1:
            self._layer_metrics(weights, out)
        return out

    def _layer_metrics(self, weights: Sequence[np.ndarray], out: dict[str, float]) -> None:
        spectra = layer_spectra(weights)
        align = layer_alignment(weights, spectra)
        rank1 = [rank_one_ratio(wk, sp[1]) for wk, sp in zip(weights, spectra)]
        bal = balances(weights, self.potential)
        for k, a in enumerate(align, start=1):
            out[f"align_{k}"] = a
        out["align_min"] = min(align)
        for k, r in enumerate(rank1, start=1):
            out[f"rank1_{k}"] = r
        out["rank1_min"] = min(rank1)
        drifts = [b - b0 for b, b0 in zip(bal, self.init_balance)]
        for k, (b, d) in enumerate(zip(bal, drifts), start=1):
            out[f"balance_{k}"] = b
            out[f"balance_drift_{k}"] = d
        out["balance_drift_max"] = max(abs(d) for d in drifts)
