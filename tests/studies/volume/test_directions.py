"""Filter-normalised random directions (Li et al. 2018, Sec. 4) and flat parameter vectors."""

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


def test_weight_filters_take_the_norm_of_the_trained_filters() -> None:
    """Conv2d output channels and Linear output rows: ||d_i||_F = ||θ_i||_F, filter by filter."""
    params = _params()
    d = random_direction(params, 5)
    for name in ("0.weight", "3.weight", "5.weight"):  # conv (4,1,3,3), linears (7,144), (3,7)
        torch.testing.assert_close(_row_norms(d[name]), _row_norms(params[name]), rtol=1e-5,
                                   atol=0)
        # rescaled, not replaced: each filter points along a fresh Gaussian, not along θ_i
        cos = torch.nn.functional.cosine_similarity(
            d[name].reshape(d[name].shape[0], -1), params[name].reshape(d[name].shape[0], -1))
        assert cos.abs().max() < 0.9


def test_biases_stay_the_raw_gaussian_of_the_seed() -> None:
    params = _params()
    d = random_direction(params, 8)
    gen = torch.Generator().manual_seed(8)
    raw = {k: torch.randn(tuple(p.shape), generator=gen) for k, p in params.items()}
    for name in ("0.bias", "3.bias", "5.bias"):
        assert torch.equal(d[name], raw[name])
    # and the weights are those same draws, only rescaled per filter
    w, g = d["3.weight"], raw["3.weight"]
    ratio = w / g
    torch.testing.assert_close(ratio, ratio[:, :1].expand_as(ratio), rtol=1e-5, atol=0)


def test_a_zero_trained_filter_gives_a_zero_direction_filter() -> None:
    params = _params()
    params["3.weight"] = params["3.weight"].clone()
    params["3.weight"][2] = 0.0
    d = random_direction(params, 1)
    assert torch.count_nonzero(d["3.weight"][2]) == 0
    assert torch.all(_row_norms(d["3.weight"])[[0, 1, 3]] > 0)


def test_make_directions_stacks_seeds_in_flat_parameter_order() -> None:
    params = _params()
    directions = make_directions(params, perturbation_seed=40, k=3)
    n = sum(p.numel() for p in params.values())
    assert directions.shape == (3, n)
    for i in range(3):
        assert torch.equal(directions[i], flatten_params(random_direction(params, 40 + i)))
    # direction i does not depend on how many directions are drawn
    assert torch.equal(make_directions(params, 41, 1)[0], directions[1])


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
