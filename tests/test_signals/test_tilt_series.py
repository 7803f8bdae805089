import warnings

import dask.array as da
import hyperspy.api as hs
import numpy as np
import pytest

import tomoalign
from tomoalign.signals.tilt_series import PER_PROJECTION, SIGNAL_TYPE, LazyTiltSeries, TiltSeries


def test_public_names_are_the_registered_classes():
    assert tomoalign.TomoStack is TiltSeries
    assert tomoalign.LazyTomoStack is LazyTiltSeries
    assert TiltSeries.__name__ != "TomoStack"  # ETSpy's class name stays ETSpy's


def test_construct_from_numpy(array7, tilts7):
    stack = tomoalign.TomoStack(array7, tilts=tilts7)
    assert stack.data.shape == (7, 24, 32)
    assert stack.axes_manager.navigation_shape == (7,)
    assert stack.axes_manager.signal_shape == (32, 24)
    np.testing.assert_array_equal(stack.tilts, tilts7)
    np.testing.assert_array_equal(stack.shifts, np.zeros((7, 2)))
    tomo = stack.metadata.Tomography
    assert tomo.tiltaxis == 0.0 and tomo.xshift == 0.0 and tomo.yshift == 0.0
    assert tomo.cropped is False
    assert stack.metadata.Signal.signal_type == SIGNAL_TYPE
    assert isinstance(stack.tilts, np.ndarray) and isinstance(stack.shifts, np.ndarray)


def test_defaults_without_tilts(array7):
    stack = tomoalign.TomoStack(array7)
    assert not stack.has_tilts
    np.testing.assert_array_equal(stack.tilts, np.zeros(7))


def test_input_array_not_modified_and_properties_are_copies(array7, tilts7):
    before = array7.copy()
    stack = tomoalign.TomoStack(array7, tilts=tilts7)
    stack.tilts[0] = 99
    stack.shifts[0] = 99
    assert stack.tilts[0] == -60
    assert np.all(stack.shifts == 0)
    np.testing.assert_array_equal(array7, before)


def test_setters_validate(stack7):
    stack7.shifts = np.ones((7, 2))
    np.testing.assert_array_equal(stack7.metadata.Tomography.shifts, np.ones((7, 2)))
    with pytest.raises(ValueError, match=r"shifts has shape \(6, 2\); expected \(7, 2\)"):
        stack7.shifts = np.ones((6, 2))
    with pytest.raises(ValueError, match="got 3 tilt angle"):
        stack7.tilts = [1, 2, 3]


@pytest.mark.parametrize(
    ("index", "expected"),
    [
        (slice(1, 4), [1, 2, 3]),
        (slice(None, None, 2), [0, 2, 4, 6]),
        (slice(None, None, -1), [6, 5, 4, 3, 2, 1, 0]),
        (slice(-2, None), [5, 6]),
    ],
)
def test_inav_slicing_keeps_per_projection_metadata(stack7, tilts7, index, expected):
    shifts = np.arange(14, dtype=float).reshape(7, 2)
    stack7.shifts = shifts
    part = stack7.inav[index]
    np.testing.assert_array_equal(part.data, stack7.data[expected])
    np.testing.assert_array_equal(part.tilts, tilts7[expected])
    np.testing.assert_array_equal(part.shifts, shifts[expected])
    # the original is untouched
    np.testing.assert_array_equal(stack7.tilts, tilts7)


def test_single_projection_and_isig(stack7, tilts7):
    one = stack7.inav[3]
    assert one.data.shape == (24, 32)
    np.testing.assert_array_equal(one.tilts, tilts7[[3]])
    crop = stack7.isig[2:10, 3:9]
    assert crop.data.shape == (7, 6, 8)
    np.testing.assert_array_equal(crop.tilts, tilts7)


def test_copy_deepcopy_dtype(stack7, tilts7):
    stack7.shifts = np.ones((7, 2))
    for other in (stack7.copy(), stack7.deepcopy()):
        assert isinstance(other, TiltSeries)
        np.testing.assert_array_equal(other.tilts, tilts7)
        np.testing.assert_array_equal(other.shifts, np.ones((7, 2)))
    deep = stack7.deepcopy()
    deep.shifts = np.zeros((7, 2))
    np.testing.assert_array_equal(stack7.shifts, np.ones((7, 2)))
    deep.change_dtype("float64")
    assert deep.data.dtype == np.float64
    np.testing.assert_array_equal(deep.tilts, tilts7)


def test_lazy_round_trip(stack7, tilts7):
    lazy = stack7.as_lazy()
    assert isinstance(lazy, LazyTiltSeries)
    np.testing.assert_array_equal(lazy.tilts, tilts7)
    part = lazy.inav[2:5]
    np.testing.assert_array_equal(part.tilts, tilts7[2:5])
    part.compute(show_progressbar=False)
    assert isinstance(part, TiltSeries) and not isinstance(part, LazyTiltSeries)
    np.testing.assert_array_equal(part.data, stack7.data[2:5])
    np.testing.assert_array_equal(part.tilts, tilts7[2:5])


def test_dask_input_gives_lazy(array7, tilts7):
    stack = tomoalign.TomoStack(da.from_array(array7, chunks=(2, -1, -1)), tilts=tilts7)
    assert isinstance(stack, LazyTiltSeries)
    np.testing.assert_array_equal(stack.tilts, tilts7)


def test_from_signal2d_keeps_axes(array7, tilts7):
    sig = hs.signals.Signal2D(array7)
    sig.axes_manager.signal_axes[0].scale = 2.5
    sig.axes_manager.signal_axes[0].units = "nm"
    stack = tomoalign.TomoStack(sig, tilts=tilts7)
    assert stack.axes_manager.signal_axes[0].scale == 2.5
    np.testing.assert_array_equal(stack.tilts, tilts7)
    # from another TomoStack: tilts and shifts carried over
    stack.shifts = np.full((7, 2), 0.5)
    again = tomoalign.TomoStack(stack)
    np.testing.assert_array_equal(again.tilts, tilts7)
    np.testing.assert_array_equal(again.shifts, np.full((7, 2), 0.5))


def test_set_signal_type_converts(array7):
    sig = hs.signals.Signal2D(array7)
    sig.set_signal_type(SIGNAL_TYPE)
    assert isinstance(sig, TiltSeries)
    assert sig.shifts.shape == (7, 2)


def test_per_projection_declared_once():
    assert set(PER_PROJECTION) == {"tilts", "shifts"}


@pytest.mark.parametrize(
    ("data", "error", "match"),
    [
        (np.zeros((8, 8)), ValueError, r"single 2D image of shape \(8, 8\)"),
        (np.zeros((2, 3, 8, 8)), ValueError, r"4 dimensions, shape \(2, 3, 8, 8\)"),
        (np.array([[["a"]]]), TypeError, "needs real numbers"),
        (np.zeros((3, 4, 4), complex), TypeError, "complex128"),
    ],
)
def test_bad_arrays(data, error, match):
    with pytest.raises(error, match=match):
        tomoalign.TomoStack(data)


def test_tilt_count_mismatch(array7):
    with pytest.raises(ValueError, match=r"got 5 tilt angle\(s\) for 7 projection"):
        tomoalign.TomoStack(array7, tilts=np.arange(5))
    with pytest.raises(ValueError, match=r"expected \(7, 2\)"):
        tomoalign.TomoStack(array7, shifts=np.zeros((7, 3)))


def test_nonfinite_pixels_warn_and_are_kept(array7):
    data = array7.copy()
    data[2, 3, 4] = np.nan
    data[5, 0, 0] = np.inf
    with pytest.warns(RuntimeWarning, match="2 NaN or infinite pixel"):
        stack = tomoalign.TomoStack(data)
    assert np.isnan(stack.data[2, 3, 4])


def test_finite_data_does_not_warn(array7):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tomoalign.TomoStack(array7)
