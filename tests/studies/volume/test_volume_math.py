"""Radii and log-volumes against landscapes whose volume is known in closed form.

log V = logsumexp_i(n log r_i) − log K, the star-shaped volume estimate of Fan, Sandlund
& Ko (2025), arXiv 2511.04808, Sec. 3, up to the unit ball's constant.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from sweeplab.studies.volume.crossings import first_crossings
from sweeplab.studies.volume.volume_math import (
    cutoff_size,
    first_crossing_size,
    log_volume,
    prefix_means,
    radii,
    volume_table,
)


def test_isotropic_bowl_has_one_radius_and_volume_n_log_r() -> None:
    """L = a·||δ||² along directions of norm ν: every radius is the first grid step past
    sqrt(cutoff/a), and log-volume = n·log R."""
    coefs = np.linspace(0.0, 3.0, 301)
    norms = np.array([1.0, 1.0, 1.0, 0.5, 2.0])  # three unit directions, two scaled ones
    a = np.array([2.0, 8.0])  # one bowl per landscape size
    delta = coefs[None, :] * norms[:, None]  # (K, C) distance from the minimum
    loss = a[None, None, :] * delta[:, :, None] ** 2  # (K, C, S)
    cutoffs, n = [0.37, 1.13], 40
    index = first_crossings(loss, cutoffs)
    r, crossed = radii(index, coefs, norms)
    assert crossed.all()
    for q, cut in enumerate(cutoffs):
        for s, a_s in enumerate(a):
            exact = math.sqrt(cut / a_s)
            for k, nu in enumerate(norms):
                # the first coefficient c with a(cν)² > cutoff, times ν
                c_first = coefs[np.argmax(coefs * nu > exact)]
                assert r[q, k, s] == pytest.approx(c_first * nu, rel=1e-12)
                assert exact < r[q, k, s] <= exact + (coefs[1] - coefs[0]) * nu
    unit = index[:, :3, :]
    r_unit, _ = radii(unit, coefs, norms[:3])
    big_r = r_unit[0, 0, 0]
    assert np.all(r_unit[0, :, 0] == big_r)
    assert log_volume(r_unit[0, :, 0], n) == pytest.approx(n * math.log(big_r), rel=1e-12)


def test_anisotropic_bowl_volume_converges_to_the_ellipse_area() -> None:
    """L = ½ δᵀHδ, H = diag(h1, h2): π·mean(r²) over uniform directions -> the ellipse's
    area π·sqrt(2c/h1)·sqrt(2c/h2), through the whole grid -> crossing -> radius chain."""
    rng = np.random.default_rng(0)
    h, cutoff = np.array([1.0, 9.0]), 0.5
    angles = rng.uniform(0.0, 2 * np.pi, 20_000)
    u = np.stack([np.cos(angles), np.sin(angles)], axis=1)  # unit directions
    curvature = (u**2) @ h  # uᵀHu
    coefs = np.linspace(0.0, 1.2, 600)  # the long semi-axis is sqrt(2c/h1) = 1
    loss = 0.5 * curvature[:, None, None] * coefs[None, :, None] ** 2  # (K, C, 1)
    index = first_crossings(loss, [cutoff])
    r, crossed = radii(index, coefs, np.ones(u.shape[0]))
    assert crossed.all()
    area = math.pi * math.exp(log_volume(r[0, :, 0], 2))
    ellipse = math.pi * math.sqrt(2 * cutoff / h[0]) * math.sqrt(2 * cutoff / h[1])
    assert area == pytest.approx(ellipse, rel=0.02)
    # a sphere's mean radius would be wrong here: the estimate weights r², not r
    assert math.pi * np.mean(r) ** 2 < 0.95 * ellipse


def test_log_volume_is_exact_where_the_naive_mean_overflows() -> None:
    r, n = np.array([1.5, 2.0, 0.5]), 100_000
    with np.errstate(over="ignore"):
        naive = np.log(np.mean(r**n))
    assert naive == np.inf
    exact = n * math.log(2.0) + math.log1p(0.75**n + 0.25**n) - math.log(3)
    assert log_volume(r, n) == pytest.approx(exact, rel=1e-12)
    # and where r^n underflows to 0 for every direction
    assert log_volume(r / 10, n) == pytest.approx(exact - n * math.log(10), rel=1e-12)


def test_zero_radii_contribute_nothing_and_all_zero_is_minus_infinity() -> None:
    assert log_volume([0.0, 2.0], 3) == pytest.approx(math.log(8 / 2))
    assert log_volume([0.0, 0.0], 3) == -math.inf
    with pytest.raises(ValueError):
        log_volume([-1.0, 1.0], 3)


def test_uncrossed_directions_are_counted_and_make_a_lower_bound() -> None:
    coefs = np.linspace(0.0, 2.0, 5)  # 0, 0.5, 1, 1.5, 2
    norms = np.array([1.0, 2.0, 3.0])
    index = np.array([[[1, 2], [-1, 3], [4, -1]]])  # (Q=1, K=3, S=2)
    r, crossed = radii(index, coefs, norms)
    np.testing.assert_allclose(r[0], [[0.5, 1.0], [4.0, 3.0], [6.0, 6.0]])
    assert crossed[0].tolist() == [[True, True], [False, True], [True, False]]
    rows = volume_table(index, coefs, norms, 7, [0.8], [100, 200])
    assert [(row["landscape_size"], row["n_uncrossed"], row["lower_bound"]) for row in rows] == [
        (100, 1, True), (200, 1, True)]
    first = rows[0]
    assert first["n_directions"] == 3 and first["cutoff"] == 0.8
    assert first["log_volume"] == pytest.approx(math.log((0.5**7 + 4.0**7 + 6.0**7) / 3))
    assert (first["min_radius"], first["max_radius"]) == (0.5, 6.0)
    assert first["mean_radius"] == pytest.approx(10.5 / 3)
    crossed_all = volume_table(np.array([[[1], [2], [3]]]), coefs, norms, 7, [0.8], [100])
    assert crossed_all[0]["n_uncrossed"] == 0 and crossed_all[0]["lower_bound"] is False


def test_drop_leaves_uncrossed_directions_out_of_the_mean_and_still_counts_them() -> None:
    """The authors' rule: the mean of r^n runs over the directions that crossed."""
    coefs = np.linspace(0.0, 2.0, 5)
    norms = np.array([1.0, 2.0, 3.0])
    index = np.array([[[1, 2], [-1, 3], [4, -1]]])
    rows = volume_table(index, coefs, norms, 7, [0.8], [100, 200], uncrossed="drop")
    first, second = rows
    assert first["log_volume"] == pytest.approx(math.log((0.5**7 + 6.0**7) / 2))
    assert second["log_volume"] == pytest.approx(math.log((1.0**7 + 3.0**7) / 2))
    assert [(r["n_uncrossed"], r["n_used"], r["lower_bound"]) for r in rows] == [
        (1, 2, False), (1, 2, False)]
    assert (first["min_radius"], first["max_radius"]) == (0.5, 6.0)
    # the lower bound keeps all three: the dropped radius (range end) is in its mean
    kept = volume_table(index, coefs, norms, 7, [0.8], [100, 200])
    assert [r["n_used"] for r in kept] == [3, 3]
    assert kept[0]["log_volume"] == pytest.approx(math.log((0.5**7 + 4.0**7 + 6.0**7) / 3))
    # nothing crossed: undefined, not -inf (a flat landscape is no zero volume)
    none = volume_table(np.array([[[-1], [-1], [-1]]]), coefs, norms, 7, [0.8], [100],
                        uncrossed="drop")
    assert math.isnan(none[0]["log_volume"]) and none[0]["n_used"] == 0
    with pytest.raises(ValueError, match="lower_bound, drop"):
        volume_table(index, coefs, norms, 7, [0.8], [100, 200], uncrossed="cap")


def test_cutoff_size_is_where_the_prefix_mean_stays_above_the_cutoff() -> None:
    per_sample = np.array([0.1, 0.3, 0.2, 1.4, 0.0, 3.0])
    # prefix means: 0.1, 0.2, 0.2, 0.5, 0.4, 0.833...
    assert cutoff_size(per_sample, 0.45) == 6  # above at 4, back below at 5: counts from 6
    assert cutoff_size(per_sample, 0.5) == 6  # equal is not above
    assert cutoff_size(per_sample, 0.3) == 4
    assert cutoff_size(per_sample, 0.05) == 1
    assert cutoff_size(per_sample, 0.9) is None
    # a misfit first sample lifts the first prefix means, then the mean settles below
    assert cutoff_size(np.array([2.0, 0.0, 0.0, 0.0, 0.0]), 0.45) is None


def test_first_crossing_size_is_the_first_prefix_mean_above_the_cutoff() -> None:
    per_sample = np.array([0.1, 0.3, 0.2, 1.4, 0.0, 3.0])
    np.testing.assert_allclose(prefix_means(per_sample), [0.1, 0.2, 0.2, 0.5, 0.4, 5.0 / 6])
    # above at 4, back below at 5, above again at 6: the first rise, where cutoff_size
    # waits for the curve to stay above
    assert first_crossing_size(per_sample, 0.45) == 4 and cutoff_size(per_sample, 0.45) == 6
    assert first_crossing_size(per_sample, 0.5) == 6  # equal is not above
    assert first_crossing_size(per_sample, 0.3) == 4 == cutoff_size(per_sample, 0.3)
    assert first_crossing_size(per_sample, 0.05) == 1
    assert first_crossing_size(per_sample, 0.9) is None
    misfit = np.array([2.0, 0.0, 0.0, 0.0, 0.0])
    assert first_crossing_size(misfit, 0.45) == 1 and cutoff_size(misfit, 0.45) is None
    # a NaN loss (a blown-up model) counts as above, as in the crossings along directions
    assert first_crossing_size(np.array([0.1, np.nan]), 5.0) == 2
