"""The warning for implausible shifts: fires where a method failed, nowhere else."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import tomoalign
from tomoalign import datasets
from tomoalign.estimate._plausibility import profile_offsets, warn_if_implausible

METHODS = ("PC", "COM", "COM-CL", "StackReg")
TILTS = np.arange(-70.0, 71.0, 4.0)
SHAPE = (256, 256)  # the phantom: tests/conftest.py's misaligned(SHAPE, TILTS, ...)


def _implausible(record: list[warnings.WarningMessage]) -> list[warnings.WarningMessage]:
    return [w for w in record if "implausible" in str(w.message)]


def _align(stack, method):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        tomoalign.align_stack(stack, method)
    return _implausible(record)


@pytest.mark.parametrize("method", ["COM", "StackReg"])
def test_fires_where_a_method_fails(misaligned, method):
    """30 px jitter on 256 px: COM (p=20) and StackReg (broken chain) fail; it says so."""
    moved, _ = misaligned(SHAPE, TILTS, jitter=30, seed=1)
    found = _align(moved, method)
    assert len(found) == 1
    message = str(found[0].message)
    assert message.startswith(f"{method} alignment: the shifts found look implausible")
    assert "projection(s) [" in message
    assert "\n" not in message
    assert found[0].category is UserWarning
    assert found[0].filename == __file__  # points at the caller's line


def test_fires_from_estimate_shifts(misaligned):
    moved, _ = misaligned(SHAPE, TILTS, jitter=30, seed=1)
    with pytest.warns(UserWarning, match=r"^COM alignment: the shifts found look implausible"):
        tomoalign.estimate_shifts(moved.data, "COM", tilts=TILTS)


@pytest.mark.parametrize("method", ["PC", "COM-CL"])
def test_silent_where_a_method_copes_with_30_px(misaligned, method):
    moved, _ = misaligned(SHAPE, TILTS, jitter=30, seed=1)
    assert _align(moved, method) == []


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", ["jitter", "noisy", "drift"])
def test_silent_on_benchmark_like_cases(misaligned, method, case):
    """The README's cases (phantom, jitter 5; noise; drift), at 256 px."""
    if case == "drift":
        moved, _ = misaligned(SHAPE, TILTS, jitter=0, drift=1.5, seed=1)
        moved = datasets.add_noise(moved, "gaussian", 0.3, seed=2)
    else:
        moved, _ = misaligned(SHAPE, TILTS, jitter=5, seed=1)
        if case == "noisy":
            moved = datasets.add_noise(moved, "gaussian", 0.5, seed=2)
    assert _align(moved, method) == []


@pytest.mark.parametrize("method", METHODS)
def test_silent_on_the_real_needle(method):
    """The built-in needle: real data with tens of px of drift."""
    assert _align(datasets.needle(), method) == []


def test_profile_offsets_measure_what_is_left():
    rows = np.repeat(np.exp(-(((np.arange(96) - 48.0) / 9.0) ** 2))[None, :], 6, axis=0)
    cols = np.repeat(np.exp(-(((np.arange(80) - 40.0) / 7.0) ** 2))[None, :], 6, axis=0)
    shifts = np.zeros((6, 2))
    dy, dx = profile_offsets(shifts, rows, cols)
    np.testing.assert_array_equal(dy, 0)
    np.testing.assert_array_equal(dx, 0)
    shifts[2] = (7.0, -9.0)  # projection 2 moved off by the "alignment"
    dy, dx = profile_offsets(shifts, rows, cols)
    np.testing.assert_array_equal(dy, [0, 7, -7, 0, 0])
    assert dx[2] == pytest.approx(-9, abs=1)
    assert np.abs(np.delete(dx, 2)).max() <= 2
    match = r"TEST alignment: .*projection\(s\) \[1, 2, 3\] \(3 of 6\)"
    with pytest.warns(UserWarning, match=match):
        assert warn_if_implausible("TEST", shifts, rows, cols)
