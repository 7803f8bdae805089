import numpy as np
import pytest

import tomoalign
from tomoalign import datasets
from tomoalign.signals._tilt import compose_tilt_axis


@pytest.mark.parametrize(
    ("shifts", "expected"),
    [
        # (dy range, dx range) -> kept (y slice, x slice) of a (64, 80) image: the common
        # area, its rows then made symmetric about the centre row (the tilt axis) 31.5
        ([[0, 0], [4, 2.5], [1.2, 0]], (slice(4, 60), slice(3, 80))),
        ([[0, 0], [-4, -2.5], [-1.2, 0]], (slice(4, 60), slice(0, 77))),
        ([[3, -2], [-1.5, 4], [0, 0]], (slice(3, 61), slice(4, 78))),
    ],
    ids=["positive", "negative", "mixed"],
)
def test_shift_crop_keeps_the_common_area_centred_on_the_axis(shifts, expected):
    data = np.arange(3 * 64 * 80, dtype=np.float32).reshape(3, 64, 80)
    stack = tomoalign.TomoStack(data, tilts=[-10, 0, 10], shifts=shifts)
    out = tomoalign.shift_crop(stack)
    ys, xs = expected
    np.testing.assert_array_equal(out.data, data[:, ys, xs])
    assert out.metadata.Tomography.cropped is True
    np.testing.assert_array_equal(out.shifts, stack.shifts)
    assert stack.data.shape == (3, 64, 80)  # input untouched
    np.testing.assert_array_equal(out.data, stack.shift_crop().data)


def test_shift_crop_etspy_case_is_not_empty():
    # ETSpy 1.3.0 returns (5, 0, 0) for this: shifts in [0, 4], none negative
    data = np.ones((5, 64, 80), np.float32)
    shifts = np.column_stack([np.linspace(0, 4, 5), np.linspace(4, 0, 5)])
    out = tomoalign.TomoStack(data, shifts=shifts).shift_crop()
    assert out.data.shape == (5, 56, 76)  # rows 4..59: symmetric about the axis


def test_crop_that_cannot_keep_the_axis_says_so():
    # every projection moved 40 px down: the rows they share (40..63) miss the centre row
    stack = tomoalign.TomoStack(np.ones((3, 64, 8)), shifts=[[40, 0], [40, 0], [40, 0]])
    with pytest.raises(ValueError, match=r"centre row 31\.5"):
        stack.shift_crop()


def test_shift_crop_twice_warns_and_keeps(stack7):
    stack7.shifts = np.full((7, 2), 2.0)
    once = stack7.shift_crop()
    with pytest.warns(UserWarning, match="already cropped"):
        twice = once.shift_crop()
    assert twice.data.shape == once.data.shape


def test_shift_crop_no_common_area():
    stack = tomoalign.TomoStack(np.ones((3, 8, 8)), shifts=[[0, 0], [9, 0], [-9, 0]])
    with pytest.raises(ValueError, match="empty"):
        stack.shift_crop()


def test_compose_is_exact():
    from tomoalign.geometry import correct_tilt_axis

    data = datasets.phantom_series((96, 96), tilts=[-30, 0, 30]).data
    first, second = (3.0, 2.5, 0.0), (-1.2, -0.7, 1.5)
    both = correct_tilt_axis(correct_tilt_axis(data, *first[:2]), *second[:2], xshift=second[2])
    angle, offset, xshift = compose_tilt_axis(first, second)
    once = correct_tilt_axis(data, angle, offset, xshift=xshift)
    inner = (slice(None), slice(20, -20), slice(20, -20))
    assert np.abs(both[inner] - once[inner]).max() < 0.02 * data.max()


@pytest.fixture(scope="module")
def two_channels(misaligned):
    """A HAADF-like series and a second channel (3 x it) with the same misalignment."""
    moved, _ = misaligned((96, 96), np.arange(-60, 61, 4), phantom_seed=4, jitter=3.0, seed=6)
    other = tomoalign.TomoStack(3.0 * moved.data, tilts=moved.tilts)
    other.metadata.General.title = "EDS map"
    return moved, other


@pytest.mark.parametrize("crop", [False, True])
def test_align_other_gives_the_same_geometry(two_channels, crop):
    from tomoalign.geometry import correct_tilt_axis

    haadf, eds = two_channels
    aligned = haadf.stack_register("PC", crop=crop)
    md = aligned.metadata.Tomography
    md.tiltaxis, md.yshift, md.xshift = 2.0, -1.5, 0.5  # as tilt_align would set them
    aligned.data = correct_tilt_axis(aligned.data, 2.0, -1.5, xshift=0.5)
    out = tomoalign.align_other(aligned, eds)
    assert out.data.shape == aligned.data.shape
    np.testing.assert_allclose(out.data, 3.0 * aligned.data, rtol=1e-4, atol=1e-3)
    np.testing.assert_array_equal(out.tilts, eds.tilts)
    np.testing.assert_array_equal(out.shifts, aligned.shifts)
    assert (out.metadata.Tomography.tiltaxis, out.metadata.Tomography.yshift) == (2.0, -1.5)
    assert out.metadata.Tomography.cropped is crop
    assert out.metadata.General.title == "EDS map"
    np.testing.assert_array_equal(eds.data, 3.0 * haadf.data)  # other untouched
    np.testing.assert_allclose(aligned.align_other(eds).data, out.data)


def test_align_other_lazy(two_channels):
    haadf, eds = two_channels
    aligned = haadf.stack_register("COM-CL")
    out = aligned.align_other(eds.as_lazy())
    assert isinstance(out, tomoalign.LazyTomoStack)
    out.compute(show_progressbar=False)
    np.testing.assert_allclose(out.data, 3.0 * aligned.data, rtol=1e-4, atol=1e-3)


def test_align_other_keeps_other_dtype_rules(two_channels):
    haadf, eds = two_channels
    aligned = haadf.stack_register("PC")
    ints = tomoalign.TomoStack((eds.data * 10).astype(np.int16), tilts=eds.tilts)
    assert aligned.align_other(ints).data.dtype == np.float32
    doubles = tomoalign.TomoStack(eds.data.astype(np.float64), tilts=eds.tilts)
    assert aligned.align_other(doubles).data.dtype == np.float64


def test_align_other_errors(two_channels):
    haadf, eds = two_channels
    with pytest.raises(ValueError, match="no alignment to give"):
        haadf.align_other(eds)
    aligned = haadf.stack_register("PC")
    with pytest.raises(
        ValueError, match=r"other has 30 projection\(s\) but the aligned stack has 31"
    ):
        aligned.align_other(eds.inav[1:])
    with pytest.raises(ValueError, match=r"other has images of \(96, 90\) px"):
        aligned.align_other(eds.isig[:90, :])
    cropped = haadf.stack_register("PC", crop=True)
    with pytest.raises(ValueError, match="before cropping"):
        cropped.align_other(eds.isig[:90, :])
