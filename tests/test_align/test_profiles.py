"""Tests of tomoalign.align._profiles helpers that no method's tests cover on their own."""

from __future__ import annotations

import numpy as np

from tomoalign.align._profiles import series_background


def test_series_background_pools_a_constant_level():
    rng = np.random.default_rng(4)
    n, m = 40, 200
    rows = np.arange(m)
    bump = 100.0 * np.clip(1.0 - ((rows - 100) / 50.0) ** 2, 0.0, None)  # rows 50 to 150
    lower, upper = np.full(n, 40.0), np.full(n, 160.0)
    outside = (rows < 38) | (rows > 162)  # the background rows: 2 px beyond the support
    noise = rng.normal(size=(n, m))
    own_err = np.median(noise[:, outside], axis=1)  # each profile's own median, less truth
    # a constant level: every profile gets the pooled one, far less noisy than its own
    b = series_background(bump + 5.0 + noise, lower, upper)
    assert np.std(b - 5.0) < 0.1 * np.std(own_err)
    assert abs(np.mean(b) - 5.0) < 0.05
    # a level that differs between projections by much more than the noise: each keeps its own
    level = 5.0 + 10.0 * np.arange(n)
    b = series_background(bump + level[:, None] + noise, lower, upper)
    np.testing.assert_allclose(b - level, own_err, atol=0.01)
