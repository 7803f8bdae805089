"""Tests of tomoalign.estimate._center_of_mass.com_shifts (Sanders 2015 COM alignment)."""

from __future__ import annotations

import numpy as np
import pytest

from tomoalign.estimate._center_of_mass import com_shifts
from tomoalign.metrics import rms_error
from tomoalign.simulate import add_noise_array

TILTS = np.arange(-70.0, 71.0, 4.0)


@pytest.fixture(scope="module")
def series(shifted_projections):
    _, moved, true = shifted_projections((96, 96), TILTS, seed=3, jitter=4.0, shift_seed=1)
    noisy = add_noise_array(moved, kind="gaussian", level=0.5, seed=1)
    return moved, noisy, true


def test_clean_ground_truth(series):
    moved, _, true = series
    found = com_shifts(moved, TILTS, p=8)
    assert found.shape == (TILTS.size, 2)
    assert found.dtype == np.float64
    ry, rx = rms_error(found, true, TILTS)
    # measured 0.002 / 0.001 px
    assert ry < 0.02
    assert rx < 0.02
    assert abs(found[:, 1].mean()) < 1e-9


def test_noisy_ground_truth(series):
    _, noisy, true = series
    ry, rx = rms_error(com_shifts(noisy, TILTS, p=8), true, TILTS)
    # measured 0.23 / 0.22 px (ETSpy 1.3 COM: several px in y on such data)
    assert ry < 0.4
    assert rx < 0.35


def test_input_not_modified_and_int_dtype(series):
    moved, _, _ = series
    data = (moved * 10).astype(np.int32)
    before = data.copy()
    found = com_shifts(data, TILTS, p=8)
    np.testing.assert_array_equal(data, before)
    assert np.all(np.isfinite(found))


def test_xrange_and_nslices_options(series):
    moved, _, true = series
    found = com_shifts(moved, TILTS, xrange=(10, 86), p=6, nslices=5)
    assert max(rms_error(found, true, TILTS)) < 0.05


def test_nslices_bounded_on_wide_images():
    """On images wider than 100 px, nslices stops at 100 (the fit grows as its square)."""
    rng = np.random.default_rng(0)
    data = rng.random((5, 32, 160)).astype(np.float32)
    with pytest.raises(ValueError, match=r"nslices is 2048; expected an integer in \[1, 100\]"):
        com_shifts(data, np.linspace(-60, 60, 5), nslices=2048, p=4)
    with pytest.raises(ValueError, match=r"nslices is 101; expected .*\[1, 100\] \(at most 100"):
        com_shifts(data, np.linspace(-60, 60, 5), nslices=101, p=4)


def test_search_in_groups_is_identical(series, monkeypatch):
    """The integer search over lags in small groups (bounded memory) gives the same bits."""
    import tomoalign.estimate._center_of_mass as module

    moved, _, _ = series
    whole = com_shifts(moved, TILTS, p=8)
    monkeypatch.setattr(module, "_SEARCH_BYTES", 1)
    np.testing.assert_array_equal(com_shifts(moved, TILTS, p=8), whole)


def test_largest_p_memory_bounded(series):
    """The widest search range (p = nx - 1) runs in bounded memory and finds the shifts."""
    import tracemalloc

    moved, _, true = series
    tracemalloc.start()
    try:
        found = com_shifts(moved, TILTS, p=95)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 150 * 2**20
    assert max(rms_error(found, true, TILTS)) < 0.05


@pytest.mark.parametrize("tilts", [None, np.zeros(TILTS.size)])
def test_needs_tilts(series, tilts):
    with pytest.raises(ValueError, match=r"needs the tilt angles.*TomoStack\(data, tilts"):
        com_shifts(series[0], tilts)


def test_tilt_count(series):
    with pytest.raises(ValueError, match="got 35 tilt angle\\(s\\) for 36 projection"):
        com_shifts(series[0], TILTS[:-1])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"p": -1}, r"p is -1; expected an integer in \[0, 95\]"),
        ({"p": 96}, r"p is 96; expected an integer in \[0, 95\]"),
        ({"p": 10**6}, r"p is 1000000; expected an integer in \[0, 95\]"),
        ({"nslices": 0}, r"nslices is 0; expected an integer in \[1, 96\]"),
        ({"nslices": 97}, r"nslices is 97; expected an integer in \[1, 96\]"),
        ({"xrange": (-5, 50)}, r"expected 0 <= start < stop <= 96"),
        ({"xrange": (10, 200)}, r"expected 0 <= start < stop <= 96"),
        ({"xrange": (40, 30)}, r"expected 0 <= start < stop <= 96"),
        ({"xrange": (30, 60), "p": 12}, r"leaves 6 column\(s\); expected at least 8"),
        ({"xrange": "abc"}, r"expected two column indices"),
    ],
)
def test_option_errors(series, kwargs, match):
    with pytest.raises(ValueError, match=match):
        com_shifts(series[0], TILTS, **kwargs)


def test_stack_errors():
    rng = np.random.default_rng(0)
    good = rng.random((4, 32, 32)).astype(np.float32)
    tilts = np.linspace(-60, 60, 4)
    with pytest.raises(ValueError, match=r"single 2D image .* \(n_tilts, ny, nx\)"):
        com_shifts(good[0], tilts)
    with pytest.raises(ValueError, match="4 dimensions"):
        com_shifts(good[None], tilts)
    with pytest.raises(ValueError, match="at least 3"):
        com_shifts(good[:2], tilts[:2])
    bad = good.copy()
    bad[1, 3, 4] = np.nan
    bad[2, 0, 0] = np.inf
    with pytest.raises(
        ValueError, match=r"2 NaN or infinite pixel\(s\) in projection\(s\) \[1, 2\]"
    ):
        com_shifts(bad, tilts)
    flat = good.copy()
    flat[3] = 1.0
    with pytest.raises(ValueError, match=r"projection\(s\) \[3\] are constant"):
        com_shifts(flat, tilts)
    with pytest.raises(TypeError, match="complex"):
        com_shifts(good.astype(np.complex64), tilts)
