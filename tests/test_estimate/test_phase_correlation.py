import numpy as np
import pytest
from scipy.ndimage import gaussian_filter, shift

from tomoalign.estimate._phase_correlation import phase_correlation_align, phase_correlation_shifts
from tomoalign.metrics import rms_error
from tomoalign.shifts import apply_shifts
from tomoalign.simulate import (
    add_noise_array,
    phantom_projections,
    random_misalignment,
)

TILTS = np.arange(-58.0, 59.0, 4.0)  # 30 projections


@pytest.fixture(scope="module")
def clean():
    return phantom_projections((128, 128), TILTS, seed=0)


@pytest.fixture(scope="module")
def misaligned(clean):
    true = random_misalignment(len(TILTS), jitter=4.0, seed=1)
    return apply_shifts(clean, true).astype(np.float32), true


def test_clean_accuracy(misaligned):
    data, true = misaligned
    found = phase_correlation_shifts(data)
    ry, rx = rms_error(found, true, TILTS)
    assert ry < 0.06  # measured 0.028
    assert rx < 0.01  # measured 0.001


def test_noisy_accuracy(misaligned):
    data, true = misaligned
    noisy = add_noise_array(data, kind="gaussian", level=0.5, seed=2)
    ry, rx = rms_error(phase_correlation_shifts(noisy), true, TILTS)
    assert ry < 0.3  # measured 0.16
    assert rx < 0.3  # measured 0.16


def test_periodic_decomposition_removes_the_edge_cross():
    """A background gradient makes edges that do not wrap around: their cross in the spectrum
    pulls a correlation that keeps the edges (``taper=0``) towards zero shift by pixels; the
    periodic-plus-smooth decomposition removes it."""
    rng = np.random.default_rng(4)
    texture = gaussian_filter(rng.standard_normal((96, 96)), 1.5)
    yy, xx = np.mgrid[:96, :96]
    image = texture + 0.2 * texture.std() * (yy + 0.7 * xx)
    true = random_misalignment(9, jitter=4.0, seed=6)
    frames = np.stack([shift(image, (dy, dx), order=3, mode="nearest") for dy, dx in true])[
        :, 16:80, 16:80
    ]  # cut out of the larger image: real, non-periodic edges

    def worst(taper):  # largest error after removing the common offset, px
        residual = phase_correlation_shifts(frames, taper=taper, com_sigma=None) + true
        return np.abs(residual - residual.mean(axis=0)).max()

    assert worst(0) > 2.0  # measured 4.0
    assert worst("periodic") < 0.3  # measured 0.09


def test_start_semantics(misaligned):
    data, _ = misaligned
    a = phase_correlation_shifts(data)
    b = phase_correlation_shifts(data, start=3)
    assert np.all(a[len(TILTS) // 2] == 0)
    assert np.all(b[3] == 0)
    np.testing.assert_allclose(a - a[3], b, atol=1e-6)
    c = phase_correlation_shifts(data, start=len(TILTS) - 1)
    assert np.all(c[-1] == 0)


def test_upsample_improves_subpixel(misaligned):
    data, true = misaligned
    e1 = rms_error(phase_correlation_shifts(data, upsample_factor=1), true, TILTS)
    e10 = rms_error(phase_correlation_shifts(data, upsample_factor=10), true, TILTS)
    assert e10[1] < 0.5 * e1[1]


@pytest.mark.parametrize("com_sigma", [None, 1.0])
def test_outlier_projection_does_not_derail(misaligned, com_sigma):
    data, true = misaligned
    bad = data.copy()
    k = 20
    bad[k] = np.random.default_rng(0).normal(bad.mean(), bad.std(), bad[k].shape)
    found = phase_correlation_shifts(bad, com_sigma=com_sigma)
    keep = np.arange(len(TILTS)) != k
    ry, rx = rms_error(found[keep], true[keep], TILTS[keep])
    assert ry < 0.5
    assert rx < 0.1


def test_hugely_shifted_projection(clean):
    true = random_misalignment(len(TILTS), jitter=2.0, seed=3)
    true[7] += (25.0, -30.0)
    data = apply_shifts(clean, true)
    found = phase_correlation_shifts(data, com_sigma=None)
    keep = np.abs(np.arange(len(TILTS)) - 7) > 0
    err = found[keep] + true[keep]
    assert np.ptp(err[:, 1]) < 0.5


def test_input_not_modified_and_integer_dtype(misaligned):
    data, true = misaligned
    ints = np.round(data * 100).astype(np.int32)
    before = ints.copy()
    found = phase_correlation_shifts(ints)
    np.testing.assert_array_equal(ints, before)
    assert found.shape == (len(TILTS), 2)
    assert found.dtype == np.float64
    ry, rx = rms_error(found, true, TILTS)
    assert ry < 0.06 and rx < 0.01


def test_progress_sums_to_n(misaligned):
    data, _ = misaligned
    calls = []
    phase_correlation_shifts(data, progress=calls.append)
    assert sum(calls) == len(TILTS)


@pytest.mark.parametrize(
    ("data", "kwargs", "match"),
    [
        (np.zeros((4, 16)), {}, "single 2D image"),
        (np.random.default_rng(0).random((2, 16, 16)), {}, "at least 3"),
        (np.random.default_rng(0).random((5, 16, 16)), {"start": 5}, r"0 <= start <= 4"),
        (np.random.default_rng(0).random((5, 16, 16)), {"upsample_factor": 0}, r"in \[1, 100\]"),
        (
            np.random.default_rng(0).random((5, 16, 16)),
            {"upsample_factor": 10**6},
            r"upsample_factor=1000000; expected an integer in \[1, 100\]",
        ),
        (
            np.random.default_rng(0).random((5, 16, 16)),
            {"com_sigma": 1e9},
            r"com_sigma=1000000000.0; expected a width in projections in \(0, 5\]",
        ),
        (np.random.default_rng(0).random((5, 16, 16)), {"com_sigma": np.inf}, "com_sigma"),
        (np.random.default_rng(0).random((5, 16, 16)), {"com_sigma": 0}, "com_sigma"),
        (np.random.default_rng(0).random((5, 16, 16)), {"bandpass": (0.3, 0.2)}, "low < high"),
        (np.random.default_rng(0).random((5, 16, 16)), {"taper": 0.6}, "taper"),
        (np.random.default_rng(0).random((5, 16, 16)), {"taper": "hann"}, "'periodic'"),
        (np.random.default_rng(0).random((5, 16, 16)), {"max_jump": 0}, "max_jump"),
    ],
)
def test_errors(data, kwargs, match):
    with pytest.raises(ValueError, match=match):
        phase_correlation_shifts(data, **kwargs)


def test_nonfinite_error():
    data = np.random.default_rng(0).random((5, 16, 16))
    data[1, 2, 3] = np.nan
    data[3, 0, 0] = np.inf
    with pytest.raises(ValueError, match=r"2 NaN or infinite pixel\(s\).*\[1, 3\]"):
        phase_correlation_shifts(data)


@pytest.mark.parametrize(("dtype", "level"), [(np.float64, 7.0), (np.float32, 1234.5)])
def test_constant_projection_error(dtype, level):
    # The profiles come through a float32 FFT: a constant image's are flat only to rounding.
    data = np.random.default_rng(0).random((5, 40, 36)).astype(dtype)
    data[2] = level
    with pytest.raises(ValueError, match=r"\[2\] are constant \(zero variance\)"):
        phase_correlation_shifts(data)
    with pytest.raises(ValueError, match=r"\[2\] are constant \(zero variance\)"):
        phase_correlation_align(data)


def test_largest_upsample_factor_memory_bounded(misaligned):
    """upsample_factor=100 (the limit) runs in bounded memory and agrees with the default."""
    import tracemalloc

    data, true = misaligned
    tracemalloc.start()
    try:
        fine = phase_correlation_shifts(data, upsample_factor=100)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 200 * 2**20
    coarse = phase_correlation_shifts(data)
    assert np.abs(fine - coarse).max() < 0.5
    assert max(rms_error(fine, true, TILTS)) < 0.5


def test_type_errors():
    data = np.random.default_rng(0).random((5, 16, 16))
    with pytest.raises(TypeError, match="start must be an int"):
        phase_correlation_shifts(data, start=1.5)
    with pytest.raises(TypeError, match="upsample_factor must be an int"):
        phase_correlation_shifts(data, upsample_factor=2.5)


# --- internals: the cropped spectrum layout, the window overlap, the work split ------------


def test_crop_keeps_low_frequencies_in_fft_order():
    from tomoalign.estimate._phase_correlation import _crop

    rng = np.random.default_rng(3)
    full = np.fft.rfft2(rng.random((2, 40, 40)))  # (2, 40, 21)
    out = _crop(full, 6, 16, 9, np)
    ky = np.fft.fftfreq(16) * 16  # signed row frequencies of the cropped layout
    for r, k in enumerate(ky.astype(int)):
        if abs(k) <= 6:
            np.testing.assert_allclose(out[:, r], full[:, k % 40, :9], rtol=1e-6)
        else:
            assert not out[:, r].any()


def test_overlap_matches_circular_autocorrelation():
    from tomoalign.estimate._phase_correlation import _Overlap, _tukey

    w = _tukey(50, 0.1)
    lags = np.array([[0.0, 1.0, -3.0], [3.0, 7.0, 1.0]])
    expected = [[np.dot(w, np.roll(w, int(r))) / np.dot(w, w) for r in row] for row in lags]
    np.testing.assert_allclose(_Overlap(w)(lags), expected, atol=1e-12)


@pytest.mark.parametrize(("n", "size"), [(3, 1), (5, 2), (30, 7), (30, 100)])
def test_pair_groups_cover_every_pair_once_in_row_order(n, size):
    from tomoalign.estimate._phase_correlation import _pair_groups, _Pairs

    pairs = _Pairs.of(n)
    assert pairs.lags == (1, 2) and pairs.size == 2 * n - 3
    groups = _pair_groups(pairs, n, size)
    rows = np.concatenate([np.arange(g.j0, g.j0 + g.a1 - g.a0) for g in groups])
    np.testing.assert_array_equal(rows, np.arange(pairs.size))
    for g in groups:
        assert 0 < g.a1 - g.a0 <= size
        np.testing.assert_array_equal(pairs.a[g.j0 : g.j0 + g.a1 - g.a0], np.arange(g.a0, g.a1))
        np.testing.assert_array_equal(
            pairs.b[g.j0 : g.j0 + g.a1 - g.a0] - g.lag, np.arange(g.a0, g.a1)
        )


@pytest.mark.parametrize(("size", "hi"), [((64, 64), 0.25), ((63, 70), 0.5), ((128, 40), 0.1)])
def test_layout_holds_the_band(size, hi):
    from tomoalign.estimate._phase_correlation import _Layout

    layout = _Layout.of(size, hi)
    ny, nx = size
    assert layout.my >= 2 * layout.kmy + 1 or layout.my == ny
    assert layout.kmy == min(int(np.ceil(hi * ny)), ny // 2)
    assert layout.kmx == min(int(np.ceil(hi * nx)), nx // 2)
    assert layout.mxh == layout.mx // 2 + 1 and layout.kmx < layout.mxh
    np.testing.assert_array_equal(layout.ky, np.fft.fftfreq(layout.my) * layout.my)
    assert layout.coef[0] == 1 and (layout.coef[1:] == 2).all()


@pytest.mark.parametrize("k", [1, 2, 7])
def test_in_parts_covers_every_index_once(k):
    from concurrent.futures import ThreadPoolExecutor

    from tomoalign.estimate._phase_correlation import _in_parts

    hits = np.zeros(k, int)

    def mark(sl):
        hits[sl] += 1

    with ThreadPoolExecutor(2) as pool:
        _in_parts(pool, 2, mark, k)
    _in_parts(None, 1, mark, k)
    assert (hits == 2).all()


@pytest.mark.parametrize("size", [(40, 50), (41, 37), (64, 64)])
@pytest.mark.parametrize("kmy", [None, 7])
def test_smooth_part_is_moisans_periodic_decomposition(size, kmy):
    """The smooth part computed from the border spectra equals the one solved in real space."""
    from tomoalign.estimate._phase_correlation import (
        _border_spectra,
        _crop,
        _crop_size,
        _smooth_kernels,
        _subtract_smooth_part,
    )

    ny, nx = size
    u = np.random.default_rng(5).random((3, ny, nx)) + np.linspace(0, 5, nx)
    # Moisan (2011): v holds the jumps across the borders; laplacian(s) = v, p = u - s.
    v = np.zeros_like(u)
    v[:, 0, :] += u[:, -1, :] - u[:, 0, :]
    v[:, -1, :] -= u[:, -1, :] - u[:, 0, :]
    v[:, :, 0] += u[:, :, -1] - u[:, :, 0]
    v[:, :, -1] -= u[:, :, -1] - u[:, :, 0]
    q, r = np.fft.fftfreq(ny)[:, None], np.fft.fftfreq(nx)[None, :]
    laplacian = 2 * np.cos(2 * np.pi * q) + 2 * np.cos(2 * np.pi * r) - 4
    laplacian[0, 0] = 1.0
    s_hat = np.fft.fft2(v) / laplacian
    s_hat[:, 0, 0] = 0.0
    periodic = u - np.fft.ifft2(s_hat).real

    kmy = ny // 2 if kmy is None else kmy
    my, mxh = _crop_size(ny, kmy), nx // 2 + 1
    ky = np.fft.fftfreq(my) * my
    p = _crop(np.fft.rfft2(u), kmy, my, mxh, np)
    _subtract_smooth_part(
        _border_spectra(u, kmy, my, mxh, np), _smooth_kernels((ny, nx), kmy, ky, mxh, np), p
    )
    expected = _crop(np.fft.rfft2(periodic), kmy, my, mxh, np)
    expected[:, 0, 0] = 0.0
    np.testing.assert_allclose(p, expected, atol=2e-5 * np.abs(expected).max())


@pytest.mark.parametrize(
    ("dtype", "size", "taper"),
    [
        (np.float32, (64, 64), "periodic"),
        (np.float64, (64, 64), "periodic"),
        (np.int16, (63, 70), "periodic"),
        (np.float32, (63, 70), 0),
        (np.float32, (64, 64), 0.1),  # a window: estimate, then apply
    ],
)
def test_align_is_estimate_then_apply(dtype, size, taper):
    """The shared transforms give the shifts of the estimate and the images of apply_shifts."""
    data = phantom_projections(size, TILTS[:12], seed=1)
    data = apply_shifts(data, random_misalignment(12, jitter=3.0, seed=2))
    data = (data * (1000 if np.dtype(dtype).kind == "i" else 1)).astype(dtype)
    before = data.copy()
    shifts, aligned = phase_correlation_align(data, taper=taper)
    np.testing.assert_array_equal(data, before)
    # float64 input is transformed in float64 when shared, in float32 for the estimate alone
    atol = 1e-4 if dtype == np.float64 else 1e-9
    np.testing.assert_allclose(shifts, phase_correlation_shifts(data, taper=taper), atol=atol)
    expected = apply_shifts(data, shifts)
    assert aligned.dtype == expected.dtype
    scale = np.abs(expected).max()
    tolerance = 1e-12 if expected.dtype == np.float64 else 2e-6
    np.testing.assert_allclose(aligned / scale, expected / scale, atol=tolerance)


class _LastCoreFirst:
    """A stand-in thread pool that runs the submitted parts one after another, the last
    first: the order in which a later core's writes reach an earlier core's spectra before
    that core has read them."""

    def __init__(self):
        self.pending = []

    def submit(self, fn, *args):
        self.pending.append((fn, args))
        return self

    def result(self):
        while self.pending:
            fn, args = self.pending.pop()
            fn(*args)


@pytest.mark.parametrize("size", [(9, 8), (7, 9), (16, 15), (20, 64)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("pool", "workers"), [(None, 1), ("last-first", 2), ("last-first", 3)])
def test_shift_in_place_overwrites_only_consumed_spectra(monkeypatch, size, dtype, pool, workers):
    """The images written into the spectra's memory equal apply_shifts' for any core layout."""
    import tomoalign.estimate._phase_correlation as pcm

    monkeypatch.setattr(pcm, "_GROUP_BYTES", 1)  # one projection per group: many per core
    rng = np.random.default_rng(3)
    images = rng.random((23, *size)).astype(dtype)
    shifts = rng.uniform(-3.0, 3.0, (23, 2))
    spectra = np.fft.rfft2(images).astype(np.complex64 if dtype == np.float32 else np.complex128)
    out = pcm._shift_in_place(spectra, shifts, size[1], _LastCoreFirst() if pool else None, workers)
    expected = apply_shifts(images, shifts)
    assert out.dtype == expected.dtype and out.shape == expected.shape
    assert np.shares_memory(out, spectra)  # no second stack-sized array
    np.testing.assert_allclose(out, expected, atol=1e-5 if dtype == np.float32 else 1e-12)


def test_shift_in_place_on_threads(monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    import tomoalign.estimate._phase_correlation as pcm

    monkeypatch.setattr(pcm, "_GROUP_BYTES", 1)
    rng = np.random.default_rng(4)
    images = rng.random((40, 12, 10)).astype(np.float32)
    shifts = rng.uniform(-3.0, 3.0, (40, 2))
    with ThreadPoolExecutor(3) as pool:
        out = pcm._shift_in_place(np.fft.rfft2(images).astype(np.complex64), shifts, 10, pool, 3)
    np.testing.assert_allclose(out, apply_shifts(images, shifts), atol=1e-5)


def test_pair_rounds_and_groups_do_not_change_the_shifts(monkeypatch, misaligned):
    """Pairs in many small groups and rounds (as on large images) give the same shifts."""
    import tomoalign.estimate._phase_correlation as pcm

    data, _ = misaligned
    expected, aligned = phase_correlation_align(data)
    # 128 x 128 crops to 72 x 72: 3 pairs (or projections) per group, one group per core
    monkeypatch.setattr(pcm, "_GROUP_BYTES", 3 * 72 * 72 * 4)
    monkeypatch.setattr(pcm, "_ROUND_GROUPS_PER_CORE", 1)
    shifts, aligned_small = phase_correlation_align(data)
    np.testing.assert_allclose(shifts, expected, atol=1e-5)
    np.testing.assert_allclose(aligned_small, aligned, atol=1e-5 * np.abs(aligned).max())


def test_align_on_the_gpu_matches_the_cpu(misaligned):
    """CuPy data take the same code (one group per chunk, no thread pool) to the same result."""
    from tomoalign._backend import cupy_available

    if not cupy_available():
        pytest.skip("CuPy with a GPU not available")
    import cupy

    data, _ = misaligned
    shifts, aligned = phase_correlation_align(data)
    gpu_shifts, gpu_aligned = phase_correlation_align(cupy.asarray(data))
    assert isinstance(gpu_aligned, cupy.ndarray) and gpu_aligned.dtype == aligned.dtype
    # cuFFT and pocketfft round float32 differently: the shifts agree to 1e-3 px
    np.testing.assert_allclose(gpu_shifts, shifts, atol=1e-3)
    scale = np.abs(aligned).max()
    np.testing.assert_allclose(gpu_aligned.get() / scale, aligned / scale, atol=1e-3)
