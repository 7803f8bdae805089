import dask.array as da
import numpy as np
import pytest

from tomoalign._backend import is_dask_array, to_numpy
from tomoalign.shifts import apply_shifts, common_area

# ``xp`` (NumPy, and CuPy where a GPU is present) is tests/conftest.py's.


def gaussian_stack(n, ny, nx, *, sigma=2.5, dtype=np.float64):
    yy, xx = np.mgrid[:ny, :nx]
    blob = np.exp(-((yy - (ny - 1) / 2) ** 2 + (xx - (nx - 1) / 2) ** 2) / (2 * sigma**2))
    return np.repeat(blob[None], n, axis=0).astype(dtype)


def center_of_mass(image):
    image = np.asarray(image, dtype=float)
    yy, xx = np.indices(image.shape)
    return (image * yy).sum() / image.sum(), (image * xx).sum() / image.sum()


SIZES = [(8, 8), (7, 9), (6, 9), (9, 6)]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_integer_fourier_shift_is_roll(xp, size, dtype):
    rng = np.random.default_rng(1)
    data = rng.random((4, *size)).astype(dtype)
    shifts = np.array([[1, -2], [0, 0], [3, 5], [-4, 1]], dtype=float)
    out = to_numpy(apply_shifts(xp.asarray(data), shifts))
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for i in range(4):
        expected = np.roll(data[i], shifts[i].astype(int), axis=(0, 1))
        np.testing.assert_allclose(out[i], expected, atol=tol)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("shift_type", ["fourier", "interp"])
def test_zero_shift_is_identity(xp, size, shift_type):
    data = np.random.default_rng(2).random((3, *size))
    out = to_numpy(apply_shifts(xp.asarray(data), np.zeros((3, 2)), shift_type=shift_type))
    np.testing.assert_allclose(out, data, atol=1e-12)


@pytest.mark.parametrize("size", [(32, 32), (31, 33), (32, 31)])
@pytest.mark.parametrize("shift", [(1.3, 0.0), (-2.6, 0.0), (0.0, 0.7), (0.0, -1.45), (-0.4, 2.2)])
def test_subpixel_shift_moves_center_of_mass(xp, size, shift):
    data = gaussian_stack(2, *size)
    shifts = np.array([shift, (0.0, 0.0)])
    out = to_numpy(apply_shifts(xp.asarray(data), shifts))
    before = center_of_mass(data[0])
    after = center_of_mass(out[0])
    np.testing.assert_allclose(np.subtract(after, before), shift, atol=1e-4)
    np.testing.assert_allclose(out[1], data[1], atol=1e-12)


@pytest.mark.parametrize("size", [(32, 32), (31, 34)])
def test_interp_agrees_with_fourier_inside(size):
    data = gaussian_stack(3, *size, sigma=3.5)
    shifts = np.array([[1.3, -0.7], [-2.25, 0.4], [0.5, 2.9]])
    fourier = apply_shifts(data, shifts, shift_type="fourier")
    spline = apply_shifts(data, shifts, shift_type="interp")
    np.testing.assert_allclose(spline[:, 4:-4, 4:-4], fourier[:, 4:-4, 4:-4], atol=2e-3)
    np.testing.assert_array_equal(apply_shifts(data, shifts, shift_type="spline"), spline)


def test_interp_fills_uncovered_pixels_with_zero():
    out = apply_shifts(np.ones((1, 10, 12)), [[2.0, -3.0]], shift_type="interp")
    assert np.all(out[0, :2] == 0) and np.all(out[0, :, -3:] == 0)
    np.testing.assert_allclose(out[0, 2:, :-3], 1.0, atol=1e-12)


@pytest.mark.parametrize("shift_type", ["fourier", "interp"])
@pytest.mark.parametrize(
    ("dtype", "expected"),
    [
        (np.float32, np.float32),
        (np.float64, np.float64),
        (np.int16, np.float32),
        (np.uint16, np.float32),
        (np.int64, np.float32),
    ],
)
def test_output_dtype(shift_type, dtype, expected):
    data = (np.arange(2 * 8 * 10).reshape(2, 8, 10) * 7).astype(dtype)
    out = apply_shifts(data, [[0.5, 0.0], [0.0, 0.0]], shift_type=shift_type)
    assert out.dtype == expected
    # integers become floats: an unshifted integer image is reproduced exactly...
    np.testing.assert_allclose(out[1], data[1], atol=1e-3)
    # ...and a half-pixel shift gives values between the integers (no truncation).
    if dtype in (np.int16, np.uint16, np.int64):
        assert np.any(np.abs(out[0] - np.round(out[0])) > 0.1)


def test_input_not_modified():
    data = np.random.default_rng(3).random((3, 10, 11)).astype(np.float32)
    copy = data.copy()
    for shift_type in ("fourier", "interp"):
        out = apply_shifts(data, np.full((3, 2), 1.5), shift_type=shift_type)
        assert out is not data
        np.testing.assert_array_equal(data, copy)


@pytest.mark.parametrize("chunk_size", [1, 2, 5, None])
def test_chunk_size_does_not_change_result(chunk_size):
    data = np.random.default_rng(4).random((5, 12, 10)).astype(np.float32)
    shifts = np.random.default_rng(5).uniform(-3, 3, (5, 2))
    expected = apply_shifts(data, shifts, chunk_size=5)
    out = apply_shifts(data, shifts, chunk_size=chunk_size)
    np.testing.assert_allclose(out, expected, atol=1e-6)


@pytest.mark.parametrize("shift_type", ["fourier", "interp"])
def test_dask_input_is_lazy_and_matches_numpy(shift_type):
    data = np.random.default_rng(6).random((7, 16, 12)).astype(np.float32)
    shifts = np.random.default_rng(7).uniform(-3, 3, (7, 2))
    calls = []

    def record(block):
        calls.append(block.shape)
        return block

    lazy = da.from_array(data, chunks=(3, 8, 12)).map_blocks(record, dtype=data.dtype)
    calls.clear()  # dask called it once on an empty array to infer its output
    out = apply_shifts(lazy, shifts, shift_type=shift_type, chunk_size=2)
    assert is_dask_array(out)
    assert calls == []  # nothing computed yet
    assert out.dtype == np.float32 and out.shape == data.shape
    assert out.chunks[0] == (3, 3, 1)
    result = out.compute()
    assert calls
    np.testing.assert_allclose(result, apply_shifts(data, shifts, shift_type=shift_type), atol=1e-6)


def test_shifts_may_be_a_list_and_data_array_like():
    out = apply_shifts(np.zeros((2, 4, 4)).tolist(), [[1, 0], [0, 1]])
    assert out.shape == (2, 4, 4)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (np.zeros((8, 8)), r"single 2D image of shape \(8, 8\)"),
        (np.zeros((2, 3, 8, 8)), r"4 dimensions, shape \(2, 3, 8, 8\)"),
    ],
)
def test_bad_data_shape_raises(data, match):
    with pytest.raises(ValueError, match=match):
        apply_shifts(data, np.zeros((2, 2)))


def test_complex_data_raises():
    with pytest.raises(TypeError, match="complex"):
        apply_shifts(np.zeros((2, 4, 4), dtype=complex), np.zeros((2, 2)))


@pytest.mark.parametrize(
    ("shifts", "match"),
    [
        (
            np.zeros((4, 2)),
            r"shifts has shape \(4, 2\); expected \(5, 2\) as \(dy, dx\) for a stack of 5 "
            r"projections",
        ),
        (np.zeros((5, 3)), r"shifts has shape \(5, 3\); expected \(5, 2\)"),
        (np.zeros(10), r"shifts has shape \(10,\); expected \(5, 2\)"),
    ],
)
def test_bad_shift_shape_raises(shifts, match):
    with pytest.raises(ValueError, match=match):
        apply_shifts(np.zeros((5, 8, 8)), shifts)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_shifts_raise(bad):
    shifts = np.zeros((3, 2))
    shifts[1, 0] = bad
    with pytest.raises(ValueError, match="finite"):
        apply_shifts(np.zeros((3, 8, 8)), shifts)


def test_bad_shift_type_raises():
    with pytest.raises(ValueError, match=r"shift_type='cubic'.*'fourier', 'interp', 'spline'"):
        apply_shifts(np.zeros((1, 8, 8)), [[0, 0]], shift_type="cubic")


def test_bad_chunk_size_raises():
    with pytest.raises(ValueError, match="chunk_size=0; expected at least 1"):
        apply_shifts(np.zeros((1, 8, 8)), [[0, 0]], chunk_size=0)
    with pytest.raises(TypeError, match="chunk_size must be an int"):
        apply_shifts(np.zeros((1, 8, 8)), [[0, 0]], chunk_size=1.5)


def test_shift_options_are_keyword_only():
    with pytest.raises(TypeError):
        apply_shifts(np.zeros((1, 8, 8)), [[0, 0]], "interp")


@pytest.mark.parametrize(
    ("shifts", "rows", "cols"),
    [
        ([[2.0, 1.5], [0.5, 0.0]], slice(2, 10), slice(2, 12)),  # positive
        ([[-2.0, -0.2], [-1.0, 0.0]], slice(0, 8), slice(0, 11)),  # negative
        ([[1.2, -3.0], [-2.5, 2.0], [0.5, 0.4]], slice(2, 7), slice(2, 9)),  # mixed
        ([[0.0, 0.0]], slice(0, 10), slice(0, 12)),  # none
        ([[3.0000000001, -2.9999999999]], slice(4, 10), slice(0, 9)),  # exact ceil
    ],
)
def test_common_area(shifts, rows, cols):
    n = len(shifts)
    assert common_area(shifts, (n, 10, 12)) == (rows, cols)
    assert common_area(np.asarray(shifts), (10, 12)) == (rows, cols)
    # The slices are exactly where every spline-shifted projection of ones has data.
    out = apply_shifts(np.ones((n, 10, 12)), shifts, shift_type="interp")
    covered = np.all(np.abs(out - 1) < 1e-9, axis=0)
    expected = np.zeros((10, 12), dtype=bool)
    expected[rows, cols] = True
    np.testing.assert_array_equal(covered, expected)


def test_common_area_empty_raises():
    with pytest.raises(ValueError, match="common area is empty along y"):
        common_area([[6.0, 0.0], [-5.0, 0.0]], (2, 10, 12))
    with pytest.raises(ValueError, match="common area is empty along x"):
        common_area([[0.0, 12.0]], (10, 12))


def test_common_area_bad_inputs_raise():
    with pytest.raises(ValueError, match=r"shifts has shape \(2, 2\); expected \(3, 2\)"):
        common_area(np.zeros((2, 2)), (3, 10, 12))
    with pytest.raises(ValueError, match=r"shape=\(10,\); expected"):
        common_area(np.zeros((2, 2)), (10,))
    with pytest.raises(ValueError, match=r"shifts has shape \(2,\); expected \(n_tilts, 2\)"):
        common_area([1.0, 2.0], (10, 12))
    with pytest.raises(ValueError, match="finite"):
        common_area([[np.nan, 0.0]], (10, 12))
