"""Tests of tomoalign.geometry: the tilt-axis mapping, its inverse and their checks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tomoalign.geometry import correct_tilt_axis, misalign_tilt_axis
from tomoalign.simulate import phantom_projections

NY, NX = 65, 81
YC, XC = (NY - 1) / 2, (NX - 1) / 2


def _blob(row: float, col: float, sigma: float = 1.5) -> np.ndarray:
    r, c = np.indices((NY, NX), dtype=float)
    return np.exp(-((r - row) ** 2 + (c - col) ** 2) / (2 * sigma**2))[None]


def _com(image: np.ndarray) -> tuple[float, float]:
    r, c = np.indices(image.shape, dtype=float)
    return float((image * r).sum() / image.sum()), float((image * c).sum() / image.sum())


@pytest.mark.parametrize(("angle", "offset"), [(10.0, 4.0), (-7.5, -6.0), (0.0, 3.0)])
def test_off_axis_bead_lands_where_the_convention_says(angle, offset):
    u, v = 12.0, 6.0  # along and across the axis in the aligned frame
    aligned = _blob(YC + v, XC + u)
    raw = misalign_tilt_axis(aligned, angle, offset)
    a = math.radians(angle)
    want = (YC + offset + u * math.sin(a) + v * math.cos(a), XC + u * math.cos(a) - v * math.sin(a))
    np.testing.assert_allclose(_com(raw[0]), want, atol=0.02)
    # and the correction takes it back
    np.testing.assert_allclose(
        _com(correct_tilt_axis(raw, angle, offset)[0]), (YC + v, XC + u), atol=0.02
    )


def test_positive_angle_turns_the_axis_towards_larger_rows():
    # a bright line along the aligned axis appears in the raw image with d_row/d_col = tan(a)
    aligned = np.zeros((1, NY, NX))
    aligned[0, int(YC), 10:-10] = 1.0
    raw = misalign_tilt_axis(aligned, 5.0, 0.0, order=1)[0]
    left, right = _com(raw[:, 15:25])[0], _com(raw[:, -25:-15])[0]
    assert right - left == pytest.approx((NX - 40) * math.tan(math.radians(5.0)), abs=0.1)


def test_xshift_moves_content_to_larger_x():
    raw = _blob(YC, XC)
    out = correct_tilt_axis(raw, 0.0, 0.0, xshift=2.5)
    np.testing.assert_allclose(_com(out[0]), (YC, XC + 2.5), atol=0.01)


def test_round_trip_interior():
    tilts = np.arange(-60.0, 61.0, 20.0)
    truth = phantom_projections((96, 96), tilts, margin=16)
    back = correct_tilt_axis(misalign_tilt_axis(truth, 8.0, -5.0), 8.0, -5.0)
    inner = (slice(None), slice(20, -20), slice(20, -20))
    err = np.abs(back - truth)[inner]
    # cubic interpolation twice of sharp-edged ellipsoids: small, local errors
    assert err.mean() < 0.01 * truth.max()
    assert float(np.sqrt(np.mean(err**2))) < 0.02 * truth.max()


def test_zero_geometry_is_identity_and_outside_continues_the_edge():
    data = np.random.default_rng(0).random((2, 16, 20)).astype(np.float32)
    np.testing.assert_allclose(correct_tilt_axis(data, 0.0, 0.0), data, atol=1e-5)
    moved = correct_tilt_axis(data, 0.0, 100.0)
    # every row reads beyond the last one: the last row, continued
    np.testing.assert_allclose(moved, np.broadcast_to(data[:, -1:, :], data.shape), atol=1e-5)


def test_offset_background_gets_no_frame():
    # a detector offset (the needle's vacuum is at about -31,900 counts): turning the image
    # must not fill its corners with 0, a bright frame 31,900 counts above the vacuum
    data = np.full((2, 32, 32), -31900.0, dtype=np.float32)
    data[:, 12:20, 8:24] += 5000.0
    out = correct_tilt_axis(data, 5.0, 2.0, order=1)
    assert out.max() <= data.max() + 1.0 and out.min() >= data.min() - 1.0
    np.testing.assert_allclose(out[:, :4, :], -31900.0, atol=1.0)


def test_misalign_and_constant_mode_fill_outside_with_zero():
    data = np.random.default_rng(0).random((2, 16, 20)).astype(np.float32)
    assert not misalign_tilt_axis(data, 0.0, -100.0).any()
    assert not correct_tilt_axis(data, 0.0, 100.0, mode="constant").any()
    with pytest.raises(ValueError, match="mode='wrap'"):
        correct_tilt_axis(data, 0.0, 1.0, mode="wrap")


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [(np.int16, np.float32), (np.float32, np.float32), (np.float64, np.float64)],
)
def test_output_dtype(dtype, expected):
    data = np.ones((3, 16, 16), dtype=dtype)
    assert correct_tilt_axis(data, 1.0, 0.5).dtype == expected
    assert misalign_tilt_axis(data, 1.0, 0.5).dtype == expected


def test_input_not_modified():
    data = np.random.default_rng(1).random((2, 16, 16))
    copy = data.copy()
    correct_tilt_axis(data, 3.0, 1.0)
    misalign_tilt_axis(data, 3.0, 1.0)
    np.testing.assert_array_equal(data, copy)


def test_errors():
    data = np.ones((3, 16, 16), dtype=np.float32)
    with pytest.raises(ValueError, match="single 2D image"):
        correct_tilt_axis(data[0], 0.0, 0.0)
    bad = data.copy()
    bad[1, 2, 3] = np.nan
    with pytest.raises(ValueError, match=r"NaN or infinite pixel\(s\) in projection\(s\) \[1\]"):
        correct_tilt_axis(bad, 0.0, 0.0)
    with pytest.raises(ValueError, match="angle=nan; expected a finite number"):
        correct_tilt_axis(data, float("nan"), 0.0)
    with pytest.raises(ValueError, match="offset=inf"):
        misalign_tilt_axis(data, 0.0, float("inf"))
    with pytest.raises(TypeError, match="xshift must be a real number"):
        correct_tilt_axis(data, 0.0, 0.0, xshift="1")
    with pytest.raises(ValueError, match="order=7; expected an integer spline order"):
        misalign_tilt_axis(data, 0.0, 0.0, order=7)
