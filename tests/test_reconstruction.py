"""Reconstruction, forward projection and the reprojection error against analytic truth."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("astra")

from tomoalign import _backend
from tomoalign import reconstruction as rec
from tomoalign.reconstruction import forward_project, reconstruct, reprojection_error
from tomoalign.shifts import apply_shifts
from tomoalign.simulate import (
    phantom_projections,
    phantom_volume,
    random_misalignment,
)

SHAPE = (64, 48)  # (ny, nx)
NZ = 32
THICK = 16
FULL = np.arange(-90.0, 90.0, 2.0)  # 90 tilts over 180 degrees: no missing wedge
WEDGE = np.arange(-70.0, 71.0, 2.0)  # 71 tilts, a 40 degree missing wedge


@pytest.fixture(scope="module")
def volume() -> np.ndarray:
    return phantom_volume(SHAPE, thickness=THICK, nz=NZ)


@pytest.fixture(scope="module")
def full_data() -> np.ndarray:
    return phantom_projections(SHAPE, FULL, thickness=THICK)


@pytest.fixture(scope="module")
def wedge_data() -> np.ndarray:
    return phantom_projections(SHAPE, WEDGE, thickness=THICK)


def _centroid(image: np.ndarray) -> np.ndarray:
    weights = np.clip(image, 0, None)
    grids = np.indices(image.shape)
    return np.array([(g * weights).sum() / weights.sum() for g in grids])


# -- geometry -------------------------------------------------------------------------------
def test_geometry_bead() -> None:
    """One bead off the centre plane: forward projection and reconstruction put it where
    the documented convention says (row = y cos - z sin + (ny - 1) / 2), z sign included."""
    ny, nx = SHAPE
    kwargs = {"thickness": THICK, "beads": 1, "n_ellipsoids": 0, "seed": 3}
    vol = phantom_volume(SHAPE, nz=NZ, **kwargs)
    k, j, i = _centroid(vol)
    z, y, x = k - (NZ - 1) / 2, j - (ny - 1) / 2, i - (nx - 1) / 2
    assert abs(z) > 3  # off the centre plane, so a flipped z would show

    tilts = np.array([-60.0, -30.0, 0.0, 30.0, 60.0])
    projected = forward_project(vol, tilts)
    analytic = phantom_projections(SHAPE, tilts, **kwargs)
    for t, theta in enumerate(np.deg2rad(tilts)):
        row = y * np.cos(theta) - z * np.sin(theta) + (ny - 1) / 2
        for image in (projected[t], analytic[t]):
            r, c = _centroid(image)
            assert r == pytest.approx(row, abs=0.15)
            assert c == pytest.approx(x + (nx - 1) / 2, abs=0.15)

    series = phantom_projections(SHAPE, WEDGE, **kwargs)
    found = reconstruct(series, WEDGE, method="SIRT", iterations=30, thickness=NZ)
    peak = np.unravel_index(np.argmax(found), found.shape)
    assert np.allclose(peak, np.round([k, j, i]), atol=1)
    # Mirrored tilts image the mirrored object: the bead moves to -z.
    mirrored = reconstruct(series, -WEDGE, method="SIRT", iterations=30, thickness=NZ)
    peak = np.unravel_index(np.argmax(mirrored), mirrored.shape)
    assert abs(peak[0] - (-z + (NZ - 1) / 2)) <= 1


def test_system_matrix_rows_and_columns_follow_reshape() -> None:
    """W @ volume.reshape(-1, nx) equals astra's own per-slice forward projection."""
    import astra

    rng = np.random.default_rng(0)
    vol = rng.random((6, 10, 3), dtype=np.float32)
    tilts = np.array([-40.0, 10.0, 55.0])
    ours = forward_project(vol, tilts)
    vg = astra.create_vol_geom(6, 10)
    pg = astra.create_proj_geom("parallel", 1.0, 10, np.deg2rad(tilts))
    pid = astra.create_projector("linear", pg, vg)
    try:
        for i in range(3):
            sid, sino = astra.create_sino(vol[:, :, i], pid)
            astra.data2d.delete(sid)
            np.testing.assert_allclose(ours[:, :, i], sino, rtol=1e-4, atol=1e-5)
    finally:
        astra.projector.delete(pid)


def test_forward_project_matches_analytic(volume: np.ndarray, wedge_data: np.ndarray) -> None:
    projected = forward_project(volume, WEDGE)
    assert projected.shape == wedge_data.shape and projected.dtype == np.float32
    # measured 0.9996; the volume is point-sampled, the projections area-averaged
    assert np.corrcoef(projected.ravel(), wedge_data.ravel())[0, 1] > 0.99
    assert projected.sum() / wedge_data.sum() == pytest.approx(1.0, abs=0.01)


# -- quality and scale ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "iterations", "min_corr"),
    # measured: FBP 0.990, SIRT 0.989, SART 0.991; means inside 2.1%, 2.0%, 0.8% low
    [("FBP", 1, 0.975), ("SIRT", 50, 0.975), ("SART", 10, 0.98)],
)
def test_quality_full_range(
    volume: np.ndarray, full_data: np.ndarray, method: str, iterations: int, min_corr: float
) -> None:
    found = reconstruct(full_data, FULL, method=method, iterations=iterations, thickness=NZ)
    assert found.shape == volume.shape and found.dtype == np.float32
    assert np.corrcoef(found.ravel(), volume.ravel())[0, 1] > min_corr
    inside = volume > 0
    assert found[inside].mean() == pytest.approx(volume[inside].mean(), rel=0.04)
    assert found.sum() == pytest.approx(volume.sum(), rel=0.01)


@pytest.mark.parametrize(
    ("method", "iterations", "min_corr"),
    # measured with a 40 degree missing wedge: SIRT 0.908, SART 0.964, FBP 0.790
    [("SIRT", 50, 0.88), ("SART", 10, 0.94), ("FBP", 1, 0.75)],
)
def test_quality_missing_wedge(
    volume: np.ndarray, wedge_data: np.ndarray, method: str, iterations: int, min_corr: float
) -> None:
    found = reconstruct(wedge_data, WEDGE, method=method, iterations=iterations, thickness=NZ)
    assert np.corrcoef(found.ravel(), volume.ravel())[0, 1] > min_corr
    if method != "FBP":  # iterative methods keep the total mass despite the wedge
        assert found.sum() == pytest.approx(volume.sum(), rel=0.01)


def test_method_is_case_insensitive(wedge_data: np.ndarray) -> None:
    a = reconstruct(wedge_data[:, :, :4], WEDGE, method="sirt", iterations=3)
    b = reconstruct(wedge_data[:, :, :4], WEDGE, method="SIRT", iterations=3)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("method", ["SIRT", "SART"])
def test_constrain_keeps_non_negative(wedge_data: np.ndarray, method: str) -> None:
    sub = wedge_data[:, :, 10:18]
    free = reconstruct(sub, WEDGE, method=method, iterations=5, thickness=NZ)
    assert free.min() < 0  # so that the constraint has something to do
    kept = reconstruct(sub, WEDGE, method=method, iterations=5, thickness=NZ, constrain=True)
    assert kept.min() >= 0


def test_thickness_sets_nz_and_default_is_ny(wedge_data: np.ndarray) -> None:
    sub = wedge_data[:, :, :3]
    assert reconstruct(sub, WEDGE, thickness=20).shape == (20, SHAPE[0], 3)
    assert reconstruct(sub, WEDGE).shape == (SHAPE[0], SHAPE[0], 3)


def test_iterations_change_sirt(wedge_data: np.ndarray) -> None:
    sub = wedge_data[:, :, 20:24]
    one = reconstruct(sub, WEDGE, method="SIRT", iterations=1, thickness=NZ)
    more = reconstruct(sub, WEDGE, method="SIRT", iterations=10, thickness=NZ)
    assert not np.allclose(one, more)


def test_progress_counts_every_slice(wedge_data: np.ndarray, monkeypatch) -> None:
    monkeypatch.setattr(rec, "_BLOCK_COLUMNS", 5)
    calls: list[int] = []
    reconstruct(wedge_data, WEDGE, method="FBP", thickness=NZ, progress=calls.append)
    assert sum(calls) == SHAPE[1] and len(calls) == -(-SHAPE[1] // 5)


def test_system_matrix_built_in_parts_equals_one_piece(monkeypatch) -> None:
    """Built by tilt groups on several processes (forced), the matrix is the same."""
    angles = tuple(float(a) for a in np.arange(-60.0, 61.0, 15.0))  # 9 tilts, 3 groups
    whole = rec._matrix_part(12, 20, angles)
    rec._system_matrix.cache_clear()
    monkeypatch.setattr(rec, "_PARALLEL_MATRIX_MIN", 0)
    monkeypatch.setattr(_backend, "n_workers", lambda: 3)
    try:
        parts = rec._system_matrix(12, 20, angles)
    finally:
        rec._system_matrix.cache_clear()
    assert parts.shape == whole.shape == (9 * 20, 12 * 20)
    assert parts.format == "csr" and parts.dtype == np.float32
    assert (parts != whole).nnz == 0


def test_process_pool_gives_the_same_result(wedge_data: np.ndarray, monkeypatch) -> None:
    """The multi-process path (forced on a small job) equals the in-process one."""
    sub = wedge_data[:, :, 8:16]
    serial = reconstruct(sub, WEDGE, method="SIRT", iterations=5, thickness=NZ)
    monkeypatch.setattr(rec, "_PARALLEL_MIN_SECONDS", 0.0)
    monkeypatch.setattr(_backend, "n_workers", lambda: 2)
    calls: list[int] = []
    pooled = reconstruct(
        sub, WEDGE, method="SIRT", iterations=5, thickness=NZ, progress=calls.append
    )
    np.testing.assert_allclose(pooled, serial, rtol=1e-5, atol=1e-6)
    assert sum(calls) == 8


def test_dask_input_and_integer_data(wedge_data: np.ndarray) -> None:
    import dask.array as da

    sub = wedge_data[:, :, :4]
    expected = reconstruct(sub, WEDGE, method="FBP", thickness=NZ)
    lazy = reconstruct(da.from_array(sub, chunks=(10, -1, -1)), WEDGE, thickness=NZ)
    np.testing.assert_allclose(lazy, expected)
    ints = reconstruct((sub * 100).astype(np.int32), WEDGE, thickness=NZ)
    assert ints.dtype == np.float32


# -- cuda fallback --------------------------------------------------------------------------
def test_cuda_without_gpu_warns_once_and_matches_cpu(wedge_data: np.ndarray, monkeypatch) -> None:
    import astra

    monkeypatch.setattr(_backend, "cupy_available", lambda: False)
    monkeypatch.setattr(astra, "use_cuda", lambda: False)
    monkeypatch.setattr(_backend, "_cuda_warned", set())
    sub = wedge_data[:, :, :6]
    cpu = reconstruct(sub, WEDGE, method="SIRT", iterations=5, thickness=NZ)
    with pytest.warns(RuntimeWarning, match="cuda=True.*computing the reconstruction on the CPU"):
        gpu = reconstruct(sub, WEDGE, method="SIRT", iterations=5, thickness=NZ, cuda=True)
    np.testing.assert_array_equal(gpu, cpu)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = forward_project(cpu, WEDGE, cuda=True)  # no second warning
    np.testing.assert_array_equal(again, forward_project(cpu, WEDGE))


# -- reprojection error ---------------------------------------------------------------------
def test_reprojection_error_ranks_alignment(wedge_data: np.ndarray) -> None:
    aligned = reprojection_error(wedge_data, WEDGE, nslices=8, thickness=NZ)
    errors = [aligned]
    for jitter in (1.0, 3.0):
        shifts = random_misalignment(WEDGE.size, jitter=jitter, seed=4)
        moved = apply_shifts(wedge_data, shifts)
        errors.append(reprojection_error(moved, WEDGE, nslices=8, thickness=NZ))
    # measured: 0.065, 0.140, 0.318
    assert errors[0] < 0.1
    assert errors[0] < 0.7 * errors[1]
    assert errors[1] < 0.7 * errors[2]


def test_reprojection_error_sees_tilt_axis_offset(wedge_data: np.ndarray) -> None:
    """A tilt axis 4 px off row (ny - 1) / 2 is inconsistent with any volume."""
    offset = np.zeros((WEDGE.size, 2))
    offset[:, 0] = 4.0  # the whole series 4 px across the axis
    kwargs = {"slices": [12, 24, 36], "thickness": NZ, "iterations": 100}
    aligned = reprojection_error(wedge_data, WEDGE, **kwargs)
    moved = reprojection_error(apply_shifts(wedge_data, offset), WEDGE, **kwargs)
    # measured: 0.020 and 0.057 (2 px: 0.034; with 30 iterations the floor is 0.064)
    assert moved > 2 * aligned


def test_reprojection_error_bad_slices(wedge_data: np.ndarray) -> None:
    with pytest.raises(ValueError, match=r"slices \[48\] are outside the 48 x-columns"):
        reprojection_error(wedge_data, WEDGE, slices=[0, 48])
    with pytest.raises(ValueError, match="repeat a column"):
        reprojection_error(wedge_data, WEDGE, slices=[3, 3])
    with pytest.raises(ValueError, match="non-empty sequence of integer"):
        reprojection_error(wedge_data, WEDGE, slices=[])
    with pytest.raises(ValueError, match="are all zero"):
        reprojection_error(np.zeros((5, 16, 16), np.float32), np.linspace(-40, 40, 5))


# -- bad input ------------------------------------------------------------------------------
@pytest.fixture
def small() -> tuple[np.ndarray, np.ndarray]:
    tilts = np.linspace(-60.0, 60.0, 5)
    return np.random.default_rng(1).random((5, 16, 8), dtype=np.float32), tilts


def test_unknown_method(small) -> None:
    data, tilts = small
    with pytest.raises(ValueError, match=r"method='ART' is not a reconstruction method.*'FBP'"):
        reconstruct(data, tilts, method="ART")


def test_tilt_errors(small) -> None:
    data, tilts = small
    with pytest.raises(ValueError, match=r"got 4 tilt angle\(s\) for 5 projection\(s\)"):
        reconstruct(data, tilts[:4])
    with pytest.raises(ValueError, match="all tilts are 0"):
        reconstruct(data, np.zeros(5))
    with pytest.raises(ValueError, match="needs the tilt angles, but none were given"):
        reconstruct(data, None)


def test_too_few_projections(small) -> None:
    data, tilts = small
    with pytest.raises(ValueError, match=r"has 2 projection\(s\); at least 3"):
        reconstruct(data[:2], tilts[:2])


def test_non_finite_pixels(small) -> None:
    data, tilts = small
    bad = data.copy()
    bad[3, 2, 2] = np.nan
    with pytest.raises(ValueError, match=r"1 NaN or infinite pixel\(s\) in projection\(s\) \[3\]"):
        reconstruct(bad, tilts)


def test_bad_shapes_types_and_options(small) -> None:
    data, tilts = small
    with pytest.raises(ValueError, match="single 2D image"):
        reconstruct(data[0], tilts)
    with pytest.raises(TypeError, match="complex"):
        reconstruct(data.astype(np.complex64), tilts)
    with pytest.raises(ValueError, match="iterations=0; expected at least 1"):
        reconstruct(data, tilts, method="SIRT", iterations=0)
    with pytest.raises(TypeError, match="iterations must be an int"):
        reconstruct(data, tilts, iterations=2.5)
    with pytest.raises(ValueError, match="thickness=0"):
        reconstruct(data, tilts, thickness=0)
    with pytest.raises(TypeError, match="progress must be a callable"):
        reconstruct(data, tilts, progress=3)


def test_forward_project_errors() -> None:
    with pytest.raises(ValueError, match=r"volume has 2 dimension\(s\).*volume\[np.newaxis\]"):
        forward_project(np.ones((4, 4)), [0.0])
    with pytest.raises(TypeError, match="volume has dtype complex128"):
        forward_project(np.ones((2, 4, 4), complex), [0.0])
    vol = np.ones((3, 8, 4), np.float32)
    vol[1, 2, 2] = np.inf
    with pytest.raises(ValueError, match=r"1 NaN or infinite voxel\(s\) in z-slice\(s\) \[1\]"):
        forward_project(vol, [0.0])
    with pytest.raises(ValueError, match="tilt angles must be finite"):
        forward_project(np.ones((3, 8, 4)), [0.0, np.nan])


def test_missing_astra_message(monkeypatch, small) -> None:
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "astra":
            raise ImportError("no astra")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    rec._system_matrix.cache_clear()
    data, tilts = small
    with pytest.raises(ImportError, match=r"requires 'astra-toolbox' \(pip install tomoalign"):
        reconstruct(data, tilts)
