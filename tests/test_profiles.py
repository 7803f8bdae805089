"""Tests of tomoalign._profiles helpers that no method's tests cover on their own."""

from __future__ import annotations

import numpy as np

from tomoalign._profiles import series_background


def _huber_reference(values: np.ndarray, scale: float) -> np.ndarray:
    """Huber location of each row by direct minimisation of the Huber loss (k = 1.345)."""
    from scipy.optimize import minimize_scalar

    k = 1.345 * scale

    def loss(c: float, row: np.ndarray) -> float:
        r = np.abs(row - c)
        return float(np.sum(np.where(r <= k, 0.5 * r**2, k * r - 0.5 * k**2)))

    return np.array(
        [
            minimize_scalar(loss, args=(row,), bracket=(row.min(), row.max()), tol=1e-12).x
            for row in values
        ]
    )


def _mad_scale(values: np.ndarray) -> float:
    return 1.4826 * float(np.median(np.abs(values - np.median(values, axis=1)[:, None])))


def test_series_background_pools_a_constant_level():
    rng = np.random.default_rng(4)
    n, m = 40, 200
    rows = np.arange(m)
    bump = 100.0 * np.clip(1.0 - ((rows - 100) / 50.0) ** 2, 0.0, None)  # rows 50 to 150
    lower, upper = np.full(n, 40.0), np.full(n, 160.0)
    outside = (rows < 38) | (rows > 162)  # the background rows: 2 px beyond the support
    noise = rng.normal(size=(n, m))
    # each profile's own level (Huber), less the truth
    own_err = _huber_reference(noise[:, outside], _mad_scale(noise[:, outside]))
    # a constant level: every profile gets the pooled one, far less noisy than its own
    b = series_background(bump + 5.0 + noise, lower, upper)
    assert np.std(b - 5.0) < 0.1 * np.std(own_err)
    assert abs(np.mean(b) - 5.0) < 0.05
    # a level that differs between projections by much more than the noise: each keeps its own
    level = 5.0 + 10.0 * np.arange(n)
    b = series_background(bump + level[:, None] + noise, lower, upper)
    np.testing.assert_allclose(b - level, own_err, atol=0.01)


def test_series_background_level_resists_bright_pixels_and_beats_the_median():
    """Each profile's own level: near the mean's precision on Gaussian noise, not pulled by
    a few bright pixels (levels far apart, so that nothing is pooled)."""
    rng = np.random.default_rng(7)
    n, m = 400, 120
    rows = np.arange(m)
    lower, upper = np.full(n, 40.0), np.full(n, 80.0)
    outside = (rows < 38) | (rows > 82)  # 75 background rows
    level = 50.0 * np.arange(n)
    noise = rng.normal(size=(n, m))
    b = series_background(level[:, None] + noise, lower, upper)
    median_err = np.median(noise[:, outside], axis=1)
    # Huber at k = 1.345 keeps 95 % of the mean's efficiency, the median 64 %:
    # expected error ratio sqrt(0.64 / 0.95) = 0.82
    assert np.std(b - level) < 0.9 * np.std(median_err)
    bright = noise.copy()
    bright[:, [2, 10, 100]] += 1000.0  # three hot rows in every background
    b = series_background(level[:, None] + bright, lower, upper)
    assert np.max(np.abs(b - level)) < 0.6  # the mean would be off by 3000 / 75 = 40
