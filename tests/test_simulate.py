import numpy as np
import pytest

from tomoalign.simulate import (
    DEFAULT_TILTS,
    add_noise_array,
    phantom_projections,
    phantom_volume,
    random_misalignment,
)

SHAPE = (96, 80)
TILTS = np.arange(-60.0, 61.0, 4.0)  # 31 tilts


@pytest.fixture(scope="module")
def series():
    return phantom_projections(SHAPE, TILTS, beads=3, seed=5)


def center_of_mass(image):
    image = np.asarray(image, dtype=float)
    grids = np.indices(image.shape)
    return np.array([(image * g).sum() / image.sum() for g in grids])


# --- phantom_projections ---------------------------------------------------------------


def test_shape_dtype_and_values(series):
    assert series.shape == (TILTS.size, *SHAPE)
    assert series.dtype == np.float32
    assert np.all(np.isfinite(series))
    assert series.min() >= 0
    # every projection has texture for cross-correlation
    assert np.all(series.reshape(TILTS.size, -1).std(axis=1) > 0.1 * series.std())


def test_default_tilts_and_dtype_option():
    assert DEFAULT_TILTS[0] == -70 and DEFAULT_TILTS[-1] == 70 and DEFAULT_TILTS.size == 71
    out = phantom_projections((32, 32), n_ellipsoids=2, dtype=np.float64)
    assert out.shape == (71, 32, 32) and out.dtype == np.float64


def test_deterministic_with_seed(series):
    np.testing.assert_array_equal(series, phantom_projections(SHAPE, TILTS, beads=3, seed=5))
    other = phantom_projections(SHAPE, TILTS, beads=3, seed=6)
    assert not np.allclose(series, other)


def test_beads_do_not_move_the_ellipsoids():
    without = phantom_projections(SHAPE, TILTS[:3], beads=0, seed=5)
    with_beads = phantom_projections(SHAPE, TILTS[:3], beads=4, seed=5)
    diff = with_beads - without
    assert diff.max() > 5  # beads are dense
    # beads are small: they change only a few pixels
    assert np.count_nonzero(diff > 1e-6) < 0.05 * diff.size


def test_borders_are_empty_at_every_tilt(series):
    # default margin: 15 % of each size (14.4 px in y, 12 px in x), minus half a pixel
    assert np.all(series[:, :13] == 0) and np.all(series[:, -13:] == 0)
    assert np.all(series[:, :, :11] == 0) and np.all(series[:, :, -11:] == 0)
    wide = phantom_projections((64, 64), [-89.0, 0.0, 89.0], margin=20, beads=5, seed=1)
    assert np.all(wide[:, :19] == 0) and np.all(wide[:, :, -19:] == 0)


def test_total_mass_is_the_same_at_every_tilt(series):
    mass = series.sum(axis=(1, 2), dtype=np.float64)
    np.testing.assert_allclose(mass, mass.mean(), rtol=2e-3)


def test_volume_projects_to_tilt_zero():
    vol = phantom_volume(SHAPE, beads=3, seed=5)
    proj0 = phantom_projections(SHAPE, [0.0], beads=3, seed=5)[0].astype(float)
    assert vol.dtype == np.float32
    assert vol.shape == (SHAPE[0] // 4 + 4, *SHAPE)
    summed = vol.sum(axis=0, dtype=np.float64)
    np.testing.assert_allclose(summed.sum(), proj0.sum(), rtol=0.01)
    assert np.corrcoef(summed.ravel(), proj0.ravel())[0, 1] > 0.995
    assert np.abs(summed - proj0).mean() < 0.01 * proj0.max()


def test_volume_options():
    vol = phantom_volume((32, 40), thickness=10, n_ellipsoids=3, nz=30, dtype=np.float64)
    assert vol.shape == (30, 32, 40) and vol.dtype == np.float64
    # nothing outside the slab |z| <= 5
    z = np.arange(30) - 14.5
    assert np.all(vol[np.abs(z) > 5] == 0)
    assert vol.max() > 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_single_bead_follows_the_documented_sinusoid(seed):
    """Pins the geometry: (x, y, z) projects to column x, row y cos - z sin (+ centre)."""
    ny, nx = SHAPE
    vol = phantom_volume(SHAPE, beads=1, n_ellipsoids=0, seed=seed).astype(float)
    nz = vol.shape[0]
    k, j, i = center_of_mass(vol)
    z, y, x = k - (nz - 1) / 2, j - (ny - 1) / 2, i - (nx - 1) / 2
    assert abs(z) > 5  # the bead sits on a slab surface, so the sign of sin matters
    proj = phantom_projections(SHAPE, TILTS, beads=1, n_ellipsoids=0, seed=seed)
    theta = np.deg2rad(TILTS)
    rows, cols = np.array([center_of_mass(p) for p in proj]).T
    expected_rows = y * np.cos(theta) - z * np.sin(theta) + (ny - 1) / 2
    np.testing.assert_allclose(rows, expected_rows, atol=0.2)
    np.testing.assert_allclose(cols, x + (nx - 1) / 2, atol=0.2)


def test_supersample_one_samples_pixel_centres():
    ny, nx = 32, 32
    proj = phantom_projections((ny, nx), [0.0], beads=1, n_ellipsoids=0, supersample=1)[0]
    vol = phantom_volume((ny, nx), beads=1, n_ellipsoids=0)
    assert np.count_nonzero(proj) == np.count_nonzero(vol.sum(axis=0))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"shape": (8, 8)}, ValueError, r"shape=\(8, 8\); expected .* at least 16 px"),
        ({"shape": (32, 32, 32)}, ValueError, "expected the image shape"),
        ({"shape": 32}, TypeError, "shape must be a pair of ints"),
        ({"thickness": 2}, ValueError, "thickness=2.0 px; expected"),
        ({"tilts": [0.0, np.nan]}, ValueError, "tilts must be finite"),
        ({"tilts": np.zeros((2, 2))}, ValueError, r"tilts has shape \(2, 2\)"),
        ({"beads": -1}, ValueError, "beads=-1; expected a count >= 0"),
        ({"n_ellipsoids": 2.5}, TypeError, "n_ellipsoids must be an int"),
        ({"dtype": np.int16}, TypeError, "dtype=int16; expected a float dtype"),
        ({"margin": 15}, ValueError, "margin=15 leaves less than 4 px"),
        ({"supersample": 0}, ValueError, "supersample=0; expected at least 1"),
    ],
)
def test_phantom_bad_inputs_raise(kwargs, error, match):
    args = {"shape": (32, 32), "tilts": [0.0]} | kwargs
    with pytest.raises(error, match=match):
        phantom_projections(**args)


def test_volume_bad_nz_raises():
    with pytest.raises(ValueError, match="nz=0; expected at least 1"):
        phantom_volume((32, 32), nz=0)


# --- random_misalignment ---------------------------------------------------------------


def test_misalignment_shape_and_determinism():
    shifts = random_misalignment(31, jitter=3.0, drift=0.5, seed=4)
    assert shifts.shape == (31, 2) and shifts.dtype == np.float64
    np.testing.assert_array_equal(shifts, random_misalignment(31, jitter=3.0, drift=0.5, seed=4))
    assert not np.allclose(shifts, random_misalignment(31, jitter=3.0, drift=0.5, seed=5))


def test_jitter_is_bounded_and_uniform():
    shifts = random_misalignment(3000, jitter=4.0, seed=1)
    assert np.all(np.abs(shifts) <= 4.0)
    np.testing.assert_allclose(shifts.std(axis=0), 4.0 / np.sqrt(3), rtol=0.05)
    assert abs(np.corrcoef(shifts.T)[0, 1]) < 0.1  # axes independent


def test_drift_is_smooth_and_centred():
    drift = random_misalignment(3000, jitter=0.0, drift=1.0, seed=2)
    np.testing.assert_allclose(drift.mean(axis=0), 0.0, atol=1e-9)
    steps = np.diff(drift, axis=0)
    # moving average of 5 Gaussian steps of std 1: step std about 1 / sqrt(5)
    np.testing.assert_allclose(steps.std(axis=0), 1 / np.sqrt(5), rtol=0.1)
    # smooth: curvature smaller than the steps (white jitter would give sqrt(2) x larger)
    assert np.all(np.diff(steps, axis=0).std(axis=0) < 0.8 * steps.std(axis=0))


def test_jitter_and_drift_streams_are_independent():
    both = random_misalignment(40, jitter=2.0, drift=0.7, seed=3)
    jitter = random_misalignment(40, jitter=2.0, drift=0.0, seed=3)
    drift = random_misalignment(40, jitter=0.0, drift=0.7, seed=3)
    np.testing.assert_allclose(both, jitter + drift, atol=1e-12)
    np.testing.assert_array_equal(random_misalignment(5, jitter=0.0, seed=3), np.zeros((5, 2)))


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        ((0,), {}, ValueError, "n_tilts=0; expected at least 1"),
        ((3.5,), {}, TypeError, "n_tilts must be an int"),
        ((5,), {"jitter": -1.0}, ValueError, "jitter=-1.0; expected a finite"),
        ((5,), {"drift": np.nan}, ValueError, "drift=nan; expected a finite"),
    ],
)
def test_misalignment_bad_inputs_raise(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        random_misalignment(*args, **kwargs)


# --- add_noise_array -------------------------------------------------------------------


@pytest.mark.parametrize("level", [0.1, 0.5, 2.0])
def test_gaussian_noise_level(series, level):
    noisy = add_noise_array(series, kind="gaussian", level=level, seed=1)
    assert noisy.dtype == np.float32 and noisy.shape == series.shape
    ratio = (noisy.astype(float) - series).std() / series.std()
    np.testing.assert_allclose(ratio, level, rtol=0.02)


def test_poisson_high_dose_is_close_and_keeps_the_scale(series):
    noisy = add_noise_array(series, kind="poisson", level=1e5, seed=1)
    assert noisy.dtype == np.float32
    np.testing.assert_allclose(noisy.mean(dtype=float), series.mean(dtype=float), rtol=1e-3)
    assert np.abs(noisy - series).mean() < 0.01 * series.mean()


def test_poisson_noise_variance_follows_the_dose():
    clean = np.linspace(1.0, 3.0, 200_000).reshape(20, 100, 100)  # min 1, mean 2
    level = 50.0
    noisy = add_noise_array(clean, kind="poisson", level=level, seed=2)
    assert noisy.dtype == np.float64
    scale = level / (clean.mean() - clean.min())  # counts per intensity unit
    np.testing.assert_allclose((noisy - clean).var(), (clean - 1.0).mean() / scale, rtol=0.03)
    # values are counts mapped back: a lattice of step 1 / scale above the minimum
    counts = (noisy - 1.0) * scale
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-6)


def test_noise_is_deterministic_and_leaves_input_alone(series):
    copy = series.copy()
    a = add_noise_array(series, kind="gaussian", level=0.3, seed=7)
    b = add_noise_array(series, kind="gaussian", level=0.3, seed=7)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, add_noise_array(series, kind="gaussian", level=0.3, seed=8))
    add_noise_array(series, kind="poisson", level=10.0)
    np.testing.assert_array_equal(series, copy)


def test_noise_integer_input_becomes_float32():
    data = np.arange(600, dtype=np.int16).reshape(6, 10, 10)
    assert add_noise_array(data, kind="gaussian", level=0.1).dtype == np.float32
    assert add_noise_array(data, kind="poisson", level=5.0).dtype == np.float32


@pytest.mark.parametrize(
    ("data", "kwargs", "error", "match"),
    [
        (np.ones((2, 4, 4)), {"kind": "salt"}, ValueError, "'gaussian', 'poisson'"),
        (np.arange(8.0), {"level": 0.0}, ValueError, r"level=0.0; expected .* > 0"),
        (np.arange(8.0), {"kind": "poisson", "level": -5}, ValueError, "counts per pixel"),
        (np.ones((2, 4, 4)), {}, ValueError, "data is constant"),
        (np.ones((2, 4, 4)), {"kind": "poisson"}, ValueError, "data is constant"),
        (np.array([1.0, np.nan]), {}, ValueError, "1 NaN or infinite"),
        (np.ones(4, dtype=complex), {}, TypeError, "dtype complex128"),
    ],
)
def test_noise_bad_inputs_raise(data, kwargs, error, match):
    with pytest.raises(error, match=match):
        add_noise_array(data, **kwargs)
