"""MirrorDescent against gradient descent and the potentials' own algebra."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sweeplab.studies.implicit_bias.model import DeepLinearNetwork, logistic_loss
from sweeplab.studies.implicit_bias.optim import MirrorDescent
from sweeplab.studies.implicit_bias.potentials import (
    HyperbolicEntropy,
    LpPotential,
    Potential,
    Quadratic,
    make_potential,
    register_potential,
)

POTENTIALS = [Quadratic(), LpPotential(1.5), LpPotential(3.0), HyperbolicEntropy(0.5)]


def _data(n: int = 64, d: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = torch.sign(X @ torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64))
    return X, y


def _trajectory(make_opt, steps: int = 50) -> list[list[torch.Tensor]]:
    X, y = _data()
    model = DeepLinearNetwork(3, depth=3, width=5, init_scale=0.5,
                              generator=torch.Generator().manual_seed(1))
    opt = make_opt(model.parameters())
    out = []
    for _ in range(steps):
        opt.zero_grad()
        logistic_loss(y * model(X)).backward()
        opt.step()
        out.append([w.detach().clone() for w in model.layers])
    return out


@pytest.mark.parametrize("potential", [Quadratic(), LpPotential(2.0)], ids=["quadratic", "lp-p2"])
def test_md_with_euclidean_potential_is_gradient_descent_step_for_step(potential):
    md = _trajectory(lambda ps: MirrorDescent(ps, lr=0.3, potential=potential))
    gd = _trajectory(lambda ps: torch.optim.SGD(ps, lr=0.3))
    for step, (a, b) in enumerate(zip(md, gd)):
        for wa, wb in zip(a, b):
            torch.testing.assert_close(wa, wb, rtol=1e-13, atol=1e-15, msg=f"step {step}")


def test_lp_md_differs_from_gradient_descent():
    md = _trajectory(lambda ps: MirrorDescent(ps, lr=0.3, potential=LpPotential(1.5)), steps=5)
    gd = _trajectory(lambda ps: torch.optim.SGD(ps, lr=0.3), steps=5)
    assert not torch.allclose(md[-1][0], gd[-1][0])


@pytest.mark.parametrize("potential", POTENTIALS, ids=lambda p: str(p.describe()))
def test_mirror_maps_are_inverse_and_the_gradient_of_psi(potential: Potential):
    w = torch.linspace(-2.0, 2.0, 41, dtype=torch.float64).requires_grad_(True)
    torch.testing.assert_close(potential.inverse_mirror(potential.mirror(w)), w)
    (grad,) = torch.autograd.grad(potential.value(w), w)
    torch.testing.assert_close(potential.mirror(w), grad)
    wn = w.detach().numpy()
    np.testing.assert_allclose(potential.mirror(wn), grad.numpy(), rtol=1e-12, atol=1e-12)


def test_lp_mirror_map_formula():
    pot = LpPotential(3.0)
    w = torch.tensor([-2.0, -0.5, 0.0, 0.5, 2.0], dtype=torch.float64)
    torch.testing.assert_close(pot.mirror(w), torch.sign(w) * w.abs() ** 2)
    torch.testing.assert_close(pot.inverse_mirror(w), torch.sign(w) * w.abs() ** 0.5)


def test_mirror_step_matches_the_definition():
    """One step: z' = grad psi(W) - lr g, W' = (grad psi)^{-1}(z')."""
    pot = LpPotential(1.5)
    w = torch.nn.Parameter(torch.tensor([[0.3, -0.7, 1.2]], dtype=torch.float64))
    g = torch.tensor([[0.5, 0.1, -0.4]], dtype=torch.float64)
    expected = pot.inverse_mirror(pot.mirror(w.detach()) - 0.2 * g)
    opt = MirrorDescent([w], lr=0.2, potential=pot)
    w.grad = g.clone()
    opt.step()
    torch.testing.assert_close(w.detach(), expected)


class _CountingPotential(LpPotential):
    """An lp potential that counts its mirror-map calls."""

    def __init__(self, p: float):
        super().__init__(p)
        object.__setattr__(self, "calls", {"mirror": 0, "inverse": 0})

    def mirror(self, w):
        self.calls["mirror"] += 1
        return super().mirror(w)

    def inverse_mirror(self, z):
        self.calls["inverse"] += 1
        return super().inverse_mirror(z)


def test_dual_variable_is_optimizer_state_not_recomputed_each_step():
    pot = _CountingPotential(1.5)
    _trajectory(lambda ps: MirrorDescent(ps, lr=0.1, potential=pot), steps=20)
    assert pot.calls["mirror"] == 3  # once per layer, on the first step only
    assert pot.calls["inverse"] == 3 * 20


class _Cosh(Potential):
    """psi(w) = sum cosh(w): mirror map sinh, inverse asinh (a potential not shipped)."""

    name = "cosh"

    def value(self, w):
        return torch.cosh(w).sum()

    def mirror(self, w):
        return torch.sinh(w)

    def inverse_mirror(self, z):
        return torch.asinh(z)

    def balance_norm(self, w):
        return float((w * torch.sinh(w) - torch.cosh(w)).sum())

    @property
    def margin_p(self):
        return 2.0


def test_a_new_potential_joins_without_touching_the_optimizer():
    register_potential("cosh-test", lambda p, beta: _Cosh())
    pot = make_potential("cosh-test")
    md = _trajectory(lambda ps: MirrorDescent(ps, lr=0.1, potential=pot), steps=3)
    expected_first = _trajectory(lambda ps: torch.optim.SGD(ps, lr=0.0), steps=1)[0]
    assert all(torch.isfinite(w).all() for w in md[-1])
    assert not torch.allclose(md[-1][0], expected_first[0])


def test_invalid_potential_parameters_are_rejected():
    with pytest.raises(ValueError, match="p > 1"):
        LpPotential(1.0)
    with pytest.raises(ValueError, match="beta > 0"):
        HyperbolicEntropy(0.0)
    with pytest.raises(KeyError, match="known"):
        make_potential("nope")


@pytest.mark.parametrize("depth", [1, 2, 4])
@pytest.mark.parametrize("loss", ["logistic", "exponential"])
def test_analytic_gradients_equal_autograd(depth, loss):
    from sweeplab.studies.implicit_bias.model import LOSSES

    X, y = _data(n=40)
    model = DeepLinearNetwork(3, depth, width=6, init_scale=1.0,
                              generator=torch.Generator().manual_seed(depth))
    value, grads = model.loss_and_grads(X, y, loss)
    reference = LOSSES[loss](y * model(X))
    reference.backward()
    assert value == pytest.approx(reference.item(), rel=1e-13)
    for g, w in zip(grads, model.layers):
        torch.testing.assert_close(g, w.grad, rtol=1e-12, atol=1e-14)
