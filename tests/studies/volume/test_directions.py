"""Filter-scaled random directions (the authors' filtnorm; Li et al. 2018, Sec. 4) and flat
parameter vectors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sweeplab.studies.volume.directions import (
    flatten_params,
    make_directions,
    random_direction,
    unflatten,
)


def _params() -> dict[str, torch.Tensor]:
    torch.manual_seed(3)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 7), nn.ReLU(),
        nn.Linear(7, 3),
    )
    return {k: p.detach() for k, p in model.named_parameters()}


def _row_norms(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(t.shape[0], -1).norm(dim=1)


def test_same_seed_same_direction_and_different_seeds_differ() -> None:
    params = _params()
    a, b, c = (random_direction(params, s) for s in (11, 11, 12))
    assert all(torch.equal(a[k], b[k]) for k in params)
    assert all(not torch.allclose(a[k], c[k]) for k in params)


def test_li_weight_filters_take_the_norm_of_the_trained_filters() -> None:
    """li: Conv2d channels and Linear rows: ||d_i||_F = ||θ_i||_F, filter by filter."""
    params = _params()
    d = random_direction(params, 5, "li")
    for name in ("0.weight", "3.weight", "5.weight"):  # conv (4,1,3,3), linears (7,144), (3,7)
        torch.testing.assert_close(_row_norms(d[name]), _row_norms(params[name]), rtol=1e-5,
                                   atol=0)
        # rescaled, not replaced: each filter points along a fresh Gaussian, not along θ_i
        cos = torch.nn.functional.cosine_similarity(
            d[name].reshape(d[name].shape[0], -1), params[name].reshape(d[name].shape[0], -1))
        assert cos.abs().max() < 0.9


@pytest.mark.parametrize("scaling", ["filtnorm", "li"])
def test_biases_stay_the_raw_gaussian_of_the_seed(scaling) -> None:
    params = _params()
    d = random_direction(params, 8, scaling)
    gen = torch.Generator().manual_seed(8)
    raw = {k: torch.randn(tuple(p.shape), generator=gen) for k, p in params.items()}
    for name in ("0.bias", "3.bias", "5.bias"):
        assert torch.equal(d[name], raw[name])
    # and the weights are those same draws, only rescaled per filter
    w, g = d["3.weight"], raw["3.weight"]
    ratio = w / g
    torch.testing.assert_close(ratio, ratio[:, :1].expand_as(ratio), rtol=1e-5, atol=0)


@pytest.mark.parametrize("scaling", ["filtnorm", "li"])
def test_a_zero_trained_filter_gives_a_zero_direction_filter(scaling) -> None:
    params = _params()
    params["3.weight"] = params["3.weight"].clone()
    params["3.weight"][2] = 0.0
    d = random_direction(params, 1, scaling)
    assert torch.count_nonzero(d["3.weight"][2]) == 0
    assert torch.all(_row_norms(d["3.weight"])[[0, 1, 3]] > 0)


@pytest.mark.parametrize("scaling", ["filtnorm", "li"])
def test_make_directions_stacks_seeds_in_flat_parameter_order(scaling) -> None:
    params = _params()
    directions = make_directions(params, perturbation_seed=40, k=3, scaling=scaling)
    n = sum(p.numel() for p in params.values())
    assert directions.shape == (3, n)
    for i in range(3):
        assert torch.equal(directions[i],
                           flatten_params(random_direction(params, 40 + i, scaling)))
    # direction i does not depend on how many directions are drawn
    assert torch.equal(make_directions(params, 41, 1, scaling=scaling)[0], directions[1])


def test_flatten_and_unflatten_round_trip_in_model_order() -> None:
    params = _params()
    flat = flatten_params(params)
    assert torch.equal(flat, torch.nn.utils.parameters_to_vector(params.values()))
    back = unflatten(flat, params)
    assert list(back) == list(params)
    assert all(torch.equal(back[k], params[k]) for k in params)
    with pytest.raises(ValueError, match="does not hold"):
        unflatten(flat[:-1], params)


def test_raw_norms_are_the_unscaled_gaussians_and_ignore_the_weights():
    from sweeplab.studies.volume.directions import raw_norms

    a = {"w": torch.randn(5, 7), "b": torch.randn(5)}
    b = {"w": 100 * torch.randn(5, 7), "b": torch.zeros(5)}
    norms = raw_norms(a, 11, 3)
    assert torch.equal(norms, raw_norms(b, 11, 3))  # same shapes, same draws
    for i in range(3):
        gen = torch.Generator().manual_seed(11 + i)
        g = [torch.randn(5, 7, generator=gen), torch.randn(5, generator=gen)]
        expected = torch.sqrt(sum((t.double() ** 2).sum() for t in g))
        assert float(norms[i]) == pytest.approx(float(expected), rel=1e-12)


# --- known answers: a tiny MLP whose row norms are set by hand --------------------------

ROW_NORMS = torch.tensor([1.0, 2.0, 5.0])
"""Norms of the three output rows of the first layer (fan_in 4), set by hand."""


def _hand_mlp() -> dict[str, torch.Tensor]:
    """Linear(4, 3) + Linear(3, 2): first-layer rows of norms 1, 2, 5; second layer rows
    (3, 4, 0) and (0, 0, 12), norms 5 and 12; biases 0.5."""
    w1 = torch.tensor([[1.0, 0, 0, 0], [0, 0, 2.0, 0], [3.0, 0, 0, 4.0]])
    w2 = torch.tensor([[3.0, 4.0, 0], [0, 0, 12.0]])
    return {"0.weight": w1, "0.bias": torch.full((3,), 0.5),
            "2.weight": w2, "2.bias": torch.full((2,), 0.5)}


def _draws(params, seed):
    gen = torch.Generator().manual_seed(seed)
    return {k: torch.randn(tuple(p.shape), generator=gen) for k, p in params.items()}


def test_filtnorm_multiplies_each_gaussian_row_by_the_trained_row_norm() -> None:
    """The authors' filtnorm: d_i = g_i · ||θ_i||, no division by ||g_i||."""
    params = _hand_mlp()
    g = _draws(params, 21)
    d = random_direction(params, 21, "filtnorm")
    torch.testing.assert_close(d["0.weight"], g["0.weight"] * ROW_NORMS[:, None], rtol=1e-6,
                               atol=0)
    torch.testing.assert_close(d["2.weight"], g["2.weight"] * torch.tensor([[5.0], [12.0]]),
                               rtol=1e-6, atol=0)
    assert torch.equal(d["0.bias"], g["0.bias"]) and torch.equal(d["2.bias"], g["2.bias"])
    # a row keeps its Gaussian length: ||d_i|| / ||θ_i|| = ||g_i||, about sqrt(fan_in)
    torch.testing.assert_close(d["0.weight"].norm(dim=1) / ROW_NORMS, g["0.weight"].norm(dim=1),
                               rtol=1e-6, atol=0)


def test_li_sets_each_row_to_the_trained_row_norm() -> None:
    """Li et al.: d_i = g_i · ||θ_i|| / ||g_i||, so ||d_i|| = ||θ_i|| exactly."""
    params = _hand_mlp()
    g = _draws(params, 21)
    d = random_direction(params, 21, "li")
    torch.testing.assert_close(d["0.weight"].norm(dim=1), ROW_NORMS, rtol=1e-6, atol=0)
    torch.testing.assert_close(d["2.weight"].norm(dim=1), torch.tensor([5.0, 12.0]), rtol=1e-6,
                               atol=0)
    expected = g["0.weight"] * (ROW_NORMS / g["0.weight"].norm(dim=1))[:, None]
    torch.testing.assert_close(d["0.weight"], expected, rtol=1e-6, atol=0)
    assert torch.equal(d["0.bias"], g["0.bias"])


def test_the_two_scalings_differ_by_the_gaussian_row_norm_about_sqrt_fan_in() -> None:
    """filtnorm rows are ||g_i|| times li's: ~sqrt(784) = 28 for a 784-input layer."""
    torch.manual_seed(0)
    params = {"w": torch.randn(64, 784), "b": torch.randn(64)}
    a, b = random_direction(params, 3, "filtnorm"), random_direction(params, 3, "li")
    ratio = a["w"].norm(dim=1) / b["w"].norm(dim=1)
    assert 26.0 < float(ratio.mean()) < 30.0
    assert torch.equal(a["b"], b["b"])


def test_an_unknown_scaling_is_refused() -> None:
    with pytest.raises(ValueError, match="filtnorm, li"):
        random_direction(_hand_mlp(), 0, "unit")
