"""The one tilt validator, tomoalign._validation.validate_tilts, and its error paths."""

from __future__ import annotations

import re

import numpy as np
import pytest

from tomoalign._validation import check_tilts, require_tilts, validate_tilts

HOW = "Give the tilt angles in degrees: TomoStack(data, tilts=...)"


def test_returns_a_float64_copy():
    given = np.array([-30.0, 0.0, 30.0])
    out = validate_tilts(given, 3)
    assert out.dtype == np.float64 and out.shape == (3,)
    assert not np.shares_memory(out, given)
    np.testing.assert_array_equal(validate_tilts([[1, 2], [3, 4]], 4), [1.0, 2.0, 3.0, 4.0])


def test_count():
    with pytest.raises(ValueError, match=r"got 2 tilt angle\(s\) for 3 projection\(s\); give"):
        validate_tilts([1.0, 2.0], 3)
    with pytest.raises(ValueError, match=r"for 3 projection\(s\); expected one per projection"):
        validate_tilts([1.0, 2.0], 3, required="COM")


def test_finite_names_the_angles():
    with pytest.raises(ValueError, match=re.escape("tilt angles must be finite; got [nan]")):
        validate_tilts([1.0, np.nan], 2)
    with pytest.raises(ValueError, match=re.escape("tilts must be finite; got [inf]")):
        validate_tilts([np.inf, 1.0], name="tilts")


def test_shape():
    with pytest.raises(ValueError, match=r"tilts has shape \(2, 2\); expected a 1D thing"):
        validate_tilts(np.zeros((2, 2)), shape="a 1D thing")
    with pytest.raises(ValueError, match=r"tilts has shape \(0,\); expected a 1D thing"):
        validate_tilts([], shape="a 1D thing")


def test_file_range():
    with pytest.raises(ValueError) as info:
        validate_tilts([0.0, 95.0, -90.0], source="'a.tlt'")
    assert str(info.value).startswith(
        "tilt angle 95 (entry 2 of 3) in 'a.tlt' is outside (-90, 90] degrees; 2 angle(s) are"
    )
    with pytest.raises(ValueError, match=r"tilt angle nan .* is outside"):
        validate_tilts([np.nan], source="'a.tlt'")
    np.testing.assert_array_equal(validate_tilts([90.0, -89.9], source="f"), [90.0, -89.9])
    # in memory, no range
    np.testing.assert_array_equal(validate_tilts([120.0, -200.0], 2), [120.0, -200.0])


def test_required():
    with pytest.raises(
        ValueError, match=re.escape(f"COM needs the tilt angles, but none were given. {HOW}")
    ):
        validate_tilts(None, 3, required="COM")
    with pytest.raises(
        ValueError, match=re.escape(f"COM needs the tilt angles, but all tilts are 0. {HOW}")
    ):
        validate_tilts(np.zeros(3), 3, required="COM")
    np.testing.assert_array_equal(validate_tilts(np.zeros(3), 3), np.zeros(3))


def test_order_of_checks():
    # count before finite, finite before all-zero
    with pytest.raises(ValueError, match="got 1 tilt angle"):
        validate_tilts([np.nan], 2)
    with pytest.raises(ValueError, match="must be finite"):
        validate_tilts([0.0, np.nan], 2, required="COM")


def test_wrappers():
    np.testing.assert_array_equal(check_tilts((1, 2), 2), [1.0, 2.0])
    with pytest.raises(ValueError, match="give exactly one angle"):
        check_tilts([1.0], 2)
    np.testing.assert_array_equal(require_tilts([0, 5], 2, method="m"), [0.0, 5.0])
    with pytest.raises(ValueError, match="m needs the tilt angles, but none were given"):
        require_tilts(None, 2, method="m")
