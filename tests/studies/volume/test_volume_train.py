"""Training the models of a minima-volume run: SAM's step, the sam category, evaluation.

SAM (Foret et al. 2021, "Sharpness-Aware Minimization for Efficiently Improving
Generalization", Alg. 1): ε = ρ·g/‖g‖ with g = ∇L(w), then the base optimizer applies
∇L(w + ε) at w.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sweeplab.studies.volume import train
from sweeplab.studies.volume.config import VolumeConfig
from sweeplab.studies.volume.models import build_model


class _Bowl(nn.Module):
    """L(w) = ½ wᵀAw: its gradient at any point is known in closed form."""

    def __init__(self, w: list[float], a: np.ndarray):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(w, dtype=torch.float64))
        self.a = torch.tensor(a, dtype=torch.float64)

    def loss(self) -> torch.Tensor:
        return 0.5 * self.w @ self.a @ self.w


def test_sam_step_applies_the_gradient_of_the_ascended_point_at_w():
    a = np.diag([1.0, 4.0, 9.0]) + 0.5  # symmetric positive definite
    w0 = np.array([1.0, -2.0, 0.5])
    lr, rho = 0.1, 0.3
    bowl = _Bowl(w0.tolist(), a)
    opt = torch.optim.SGD(bowl.parameters(), lr=lr)
    returned = train.sam_step(bowl, bowl.loss, rho, opt)

    g = a @ w0
    eps = rho * g / np.linalg.norm(g)
    expected = w0 - lr * a @ (w0 + eps)
    np.testing.assert_allclose(bowl.w.detach().numpy(), expected, rtol=1e-12)
    assert float(returned) == pytest.approx(0.5 * w0 @ a @ w0, rel=1e-12)  # loss at w
    # not plain gradient descent: the ascent moved the gradient
    assert np.abs(expected - (w0 - lr * a @ w0)).max() > 1e-3


def _tiny(category: str, **extra) -> tuple[VolumeConfig, torch.Tensor, torch.Tensor]:
    cfg = VolumeConfig(category=category, hidden=(8,), epochs=3, batch_size=16, lr=0.01,
                       log_interval=1, **extra)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(40, 1, 8, 8, generator=gen)
    y = torch.randint(0, 10, (40,), generator=gen)
    return cfg, x, y


@pytest.mark.parametrize(("category", "steps"), [("sam", 3 * 3), ("low_data", 0),
                                                 ("poison", 0)])
def test_only_the_sam_category_trains_with_sam_steps(monkeypatch, category, steps):
    """3 epochs of 40 samples in batches of 16: 9 steps, every one a SAM step for sam."""
    calls: list[float] = []
    real = train.sam_step

    def spy(model, loss_fn, rho, optimizer):
        calls.append(rho)
        return real(model, loss_fn, rho, optimizer)

    monkeypatch.setattr(train, "sam_step", spy)
    cfg, x, y = _tiny(category, sam_rho=0.2)
    train.train_model(cfg, build_model(cfg, (8, 8), 10), x, y, None, lambda _: None,
                      lambda *_: None)
    assert calls == [0.2] * steps


def test_sam_and_its_rho_change_the_trained_weights():
    def weights(category: str, rho: float) -> torch.Tensor:
        cfg, x, y = _tiny(category, sam_rho=rho)
        model = train.train_model(cfg, build_model(cfg, (8, 8), 10), x, y, None,
                                  lambda _: None, lambda *_: None)
        return torch.nn.utils.parameters_to_vector(model.parameters()).detach()

    plain, sam_small, sam_large = weights("low_data", 0.05), weights("sam", 0.05), \
        weights("sam", 0.5)
    assert torch.equal(weights("sam", 0.05), sam_small)  # deterministic from the seeds
    assert not torch.allclose(plain, sam_small) and not torch.allclose(sam_small, sam_large)


def test_per_sample_loss_in_chunks_is_the_cross_entropy_of_the_whole_set():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 5))
    x, y = torch.randn(23, 3, 4), torch.randint(0, 5, (23,))
    loss, correct = train.per_sample_loss(model, x, y, chunk=4)
    with torch.no_grad():
        logits = model(x)
    assert loss.dtype == torch.float64 and loss.shape == (23,)
    torch.testing.assert_close(loss, F.cross_entropy(logits, y, reduction="none").double())
    assert torch.equal(correct, logits.argmax(1) == y)
    mean_loss, acc = train.evaluate(model, x, y)
    assert mean_loss == pytest.approx(float(loss.mean()), rel=1e-12)
    assert acc == pytest.approx(float(correct.double().mean()), rel=1e-12)


def test_full_batch_adamw_is_one_decoupled_step_per_epoch_on_the_whole_set():
    """batch_size 0: each epoch is one AdamW step on the mean loss of every sample."""
    cfg = VolumeConfig(dataset="digits", optimizer="adamw", lr=0.01, weight_decay=0.01,
                       batch_size=0, epochs=3, hidden=(8,))
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(50, 1, 8, 8, generator=gen), torch.randint(0, 10, (50,), generator=gen)
    model, reference = build_model(cfg, (8, 8), 10), build_model(cfg, (8, 8), 10)
    train.train_model(cfg, model, x, y, None, lambda state: None, lambda *a: None)
    opt = torch.optim.AdamW(reference.parameters(), lr=0.01, weight_decay=0.01)
    for _ in range(3):
        opt.zero_grad()
        F.cross_entropy(reference(x), y).backward()
        opt.step()
    for a, b in zip(model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    # and it is not Adam's coupled L2: the same run with adam ends elsewhere
    coupled = build_model(cfg, (8, 8), 10)
    train.train_model(cfg.model_copy(update={"optimizer": "adam", "weight_decay": 1.0}),
                      coupled, x, y, None, lambda state: None, lambda *a: None)
    assert not torch.allclose(coupled[1].weight, model[1].weight)
