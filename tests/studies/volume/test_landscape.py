"""Batched landscape evaluation against the one-point-at-a-time loop, and the crossing search.

The loss of a point (direction k, coefficient c) on landscape s is the mean cross-entropy
of the model at θ + c·D[k] over the first s pool samples (Fan, Sandlund & Ko 2025,
arXiv 2511.04808, Sec. 3-4).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn

from sweeplab.studies.volume.crossings import coarse_to_fine, first_crossings
from sweeplab.studies.volume.directions import flatten_params, make_directions
from sweeplab.studies.volume.landscape import (
    LandscapeData,
    evaluate_points,
    evaluate_points_naive,
    is_plain_mlp,
    scan_grid,
)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Small models run fastest on one thread, and a shared 2-core box stays responsive."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _setup(model: nn.Module, k: int = 4):
    params = {name: p.detach() for name, p in model.named_parameters()}
    # li's unit-size rows keep the losses in the range the float32 tolerances are set for
    return flatten_params(params), make_directions(params, 100, k, scaling="li")


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _assert_unchanged(model: nn.Module, before: dict[str, torch.Tensor]) -> None:
    after = model.state_dict()
    assert all(torch.equal(after[k], before[k]) for k in before)


def _points(n_dir: int, coefs: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Every direction at every coefficient, shuffled so directions interleave."""
    k = np.repeat(np.arange(n_dir), coefs.size)
    c = np.tile(coefs, n_dir)
    perm = np.random.default_rng(seed).permutation(k.size)
    return k[perm], c[perm]


def test_mlp_fast_path_matches_the_naive_loop() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 24), nn.ReLU(), nn.Linear(24, 16),
                          nn.ReLU(), nn.Linear(16, 5))
    assert is_plain_mlp(model)
    theta, D = _setup(model, k=4)
    data = LandscapeData(torch.randn(240, 6, 6), torch.randint(0, 5, (240,)), (7, 60, 200, 240))
    k, c = _points(4, np.linspace(0.0, 2.0, 9))
    before = _snapshot(model)
    ref_loss, ref_acc = evaluate_points_naive(model, theta, D, k, c, data)
    _assert_unchanged(model, before)
    for kwargs in ({}, {"max_batch": 3, "memory_budget": 30_000}):  # also sample chunks
        loss, acc = evaluate_points(model, theta, D, k, c, data, **kwargs)
        assert loss.shape == acc.shape == (k.size, 4) and loss.dtype == np.float64
        np.testing.assert_allclose(loss, ref_loss, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(acc, ref_acc, rtol=0, atol=1e-12)
        _assert_unchanged(model, before)
    # the points really differ from one another: the test compares a landscape, not a constant
    assert np.ptp(ref_loss[:, -1]) > 0.5


def test_cnn_vmap_path_matches_the_naive_loop_with_buffers_and_modes_kept() -> None:
    torch.manual_seed(1)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(6 * 2 * 2, 3),
    )
    model[1].running_mean.uniform_(-0.5, 0.5)  # buffers that matter in eval mode
    model[1].running_var.uniform_(0.5, 2.0)
    model.train()
    assert not is_plain_mlp(model)
    theta, D = _setup(model, k=3)
    data = LandscapeData(torch.randn(150, 1, 8, 8), torch.randint(0, 3, (150,)), (1, 50, 149))
    k, c = _points(3, np.linspace(0.0, 1.5, 6), seed=1)
    before = _snapshot(model)
    ref_loss, ref_acc = evaluate_points_naive(model, theta, D, k, c, data)
    for kwargs in ({}, {"max_batch": 4, "memory_budget": 200_000}):
        loss, acc = evaluate_points(model, theta, D, k, c, data, **kwargs)
        np.testing.assert_allclose(loss, ref_loss, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(acc, ref_acc, rtol=0, atol=1e-12)
    _assert_unchanged(model, before)
    assert model.training and model[1].training  # the caller's mode is restored
    assert np.ptp(ref_loss[:, -1]) > 0.1


def test_landscape_sizes_are_prefix_means_of_one_pass() -> None:
    """Column s is the mean over the first sizes[s] samples, checked against slicing."""
    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(5, 4))
    theta, D = _setup(model, k=1)
    x, y = torch.randn(40, 5), torch.randint(0, 4, (40,))
    data = LandscapeData(x, y, (3, 17, 40))
    loss, acc = evaluate_points(model, theta, D, [0], [0.0], data)
    with torch.no_grad():
        per_sample = nn.functional.cross_entropy(model(x), y, reduction="none").double()
        correct = (model(x).argmax(1) == y).double()
    np.testing.assert_allclose(loss[0], [per_sample[:s].mean() for s in (3, 17, 40)], rtol=1e-6)
    np.testing.assert_allclose(acc[0], [correct[:s].mean() for s in (3, 17, 40)], rtol=1e-12)


@pytest.mark.parametrize(
    ("sizes", "y", "message"),
    [((5, 5), None, "strictly increasing"), ((0, 5), None, r"1\.\.10"),
     ((3, 11), None, r"1\.\.10"), ((), None, "empty"),
     ((3,), torch.zeros(9, dtype=torch.long), "10 samples but y has 9"),
     ((3,), torch.zeros(10), "integer labels")],
)
def test_landscape_data_rejects_bad_input(sizes, y, message) -> None:
    y = torch.zeros(10, dtype=torch.long) if y is None else y
    with pytest.raises(ValueError, match=message):
        LandscapeData(torch.zeros(10, 3), y, sizes)


def test_first_crossings_takes_the_first_exceedance_and_minus_one_for_none() -> None:
    loss = np.array([[[0.1, 0.1], [0.6, 0.2], [0.4, 0.3], [2.0, 0.4]]])  # (K=1, C=4, S=2)
    index = first_crossings(loss, [0.5, 1.0])
    assert index.shape == (2, 1, 2)
    assert index[:, 0, :].tolist() == [[1, -1], [3, -1]]
    assert first_crossings(np.array([[[0.1], [np.nan]]]), [5.0]).tolist() == [[[1]]]


@pytest.fixture(scope="module")
def trained_digits_mlp():
    """A 64-32-10 MLP trained for 300 Adam steps on sklearn's digits (1,000 samples)."""
    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x[:1000] / 16.0, dtype=torch.float32)
    y = torch.tensor(y[:1000])
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(0)
    for _ in range(300):
        idx = torch.randint(0, 1000, (64,), generator=gen)
        loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model, LandscapeData(x, y, (100, 400, 1000))


@pytest.mark.parametrize(("stride", "block"), [(4, None), (7, None), (7, 1), (7, 3)])
def test_coarse_to_fine_equals_the_exhaustive_scan_on_a_trained_model(
    trained_digits_mlp, stride: int, block: int | None
) -> None:
    model, data = trained_digits_mlp
    theta, D = _setup(model, k=16)
    coefs = np.linspace(0.0, 1.5, 60)
    cutoffs = [0.5, 1.0]
    loss, _ = scan_grid(model, theta, D, coefs, data)
    assert loss[0, 0, -1] < 0.1  # a minimum: the trained model fits its data
    exhaustive = first_crossings(loss, cutoffs)
    found = coarse_to_fine(model, theta, D, coefs, data, cutoffs, stride, block=block)
    np.testing.assert_array_equal(found.index, exhaustive)
    # a real search: every direction crosses, mostly off the coarse grid, for less work
    assert (exhaustive >= 0).all()
    assert np.isin(exhaustive, found.coarse_index, invert=True).mean() > 0.5
    assert found.coarse_index[0] == 0 and found.coarse_index[-1] == coefs.size - 1
    assert found.n_grid == 16 * 60 and found.n_evaluated < 0.6 * found.n_grid
    np.testing.assert_allclose(found.coarse_loss, loss[:, found.coarse_index], rtol=1e-6)


def test_fine_rounds_stop_early_without_changing_the_answer(trained_digits_mlp) -> None:
    """Scanning windows left to right in blocks evaluates fewer points than whole windows."""
    model, data = trained_digits_mlp
    theta, D = _setup(model, k=8)
    coefs = np.linspace(0.0, 1.5, 60)
    whole = coarse_to_fine(model, theta, D, coefs, data, [0.5, 1.0], 10, block=None)
    blocks = coarse_to_fine(model, theta, D, coefs, data, [0.5, 1.0], 10, block=2)
    np.testing.assert_array_equal(blocks.index, whole.index)
    assert blocks.n_evaluated < whole.n_evaluated


def test_coarse_to_fine_reports_no_crossing_within_range(trained_digits_mlp) -> None:
    model, data = trained_digits_mlp
    theta, D = _setup(model, k=2)
    coefs = np.linspace(0.0, 0.1, 12)  # too short a ray to reach a loss of 50
    found = coarse_to_fine(model, theta, D, coefs, data, [50.0], 5)
    assert (found.index == -1).all()
    assert found.n_evaluated == 2 * found.coarse_index.size  # nothing to refine
