"""Norm balance is conserved by mirror flow on deep linear networks, up to O(lr).

Under mirror flow d/dt grad psi(W_k) = -grad_{W_k} L, N(W_k) - N(W_{k+1}) is constant
(see ``potentials`` module docstring; for GD this is Du, Hu & Lee 2018, Thm 2.1). Mirror
*descent* with step lr follows the flow up to O(lr) over a fixed time horizon, so the
drift must shrink in proportion to lr.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sweeplab.studies.implicit_bias.metrics import balances
from sweeplab.studies.implicit_bias.model import DeepLinearNetwork
from sweeplab.studies.implicit_bias.potentials import (
    HyperbolicEntropy,
    LpPotential,
    Potential,
    Quadratic,
)
from sweeplab.studies.implicit_bias.train import train_mirror_descent


def _separable(n: int = 128, d: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    u = rng.normal(size=d)
    u /= np.linalg.norm(u)
    y = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    X = 1.5 * y[:, None] * u + 0.4 * rng.normal(size=(n, d))
    return X, y


def _drift(potential: Potential, lr: float, horizon: float, depth: int = 2) -> tuple[float, float]:
    """Balance drift after time ``horizon`` (= lr x steps), and how much N(W_1) moved."""
    X, y = _separable()
    model = DeepLinearNetwork(4, depth, width=6, init_scale=0.8,
                              generator=torch.Generator().manual_seed(3))
    w0 = model.weights_numpy()
    train_mirror_descent(model, X, y, potential, lr=lr, epochs=round(horizon / lr))
    w1 = model.weights_numpy()
    drift = max(abs(a - b) for a, b in zip(balances(w1, potential), balances(w0, potential)))
    moved = abs(potential.balance_norm(w1[0]) - potential.balance_norm(w0[0]))
    return drift, moved


@pytest.mark.parametrize(
    "potential",
    [Quadratic(), LpPotential(1.5), LpPotential(3.0), HyperbolicEntropy(0.5)],
    ids=["gd-frobenius", "lp-1.5", "lp-3", "hypentropy"],
)
def test_balance_drift_is_first_order_in_lr(potential: Potential):
    horizon = 4.0
    coarse, moved = _drift(potential, lr=0.08, horizon=horizon)
    fine, _ = _drift(potential, lr=0.02, horizon=horizon)
    # The norms themselves change a lot; their difference barely moves.
    assert moved > 50 * coarse, (moved, coarse)
    # O(lr): a 4x smaller step gives ~4x smaller drift (allow 2.5x-6x).
    assert 2.5 < coarse / fine < 6.0, (coarse, fine)


def test_balance_of_every_adjacent_pair_in_a_deeper_network():
    pot = LpPotential(1.5)
    X, y = _separable()
    model = DeepLinearNetwork(4, 4, width=5, init_scale=0.8,
                              generator=torch.Generator().manual_seed(4))
    b0 = balances(model.weights_numpy(), pot)
    train_mirror_descent(model, X, y, pot, lr=0.005, epochs=400)
    b1 = balances(model.weights_numpy(), pot)
    assert len(b0) == 3
    np.testing.assert_allclose(b1, b0, atol=5e-3 * max(1.0, max(map(abs, b0))))
