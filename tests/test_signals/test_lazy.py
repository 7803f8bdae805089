"""Lazy (dask) series stream through the estimators: same shifts, never read whole."""

from __future__ import annotations

import tracemalloc
import warnings

import numpy as np
import pytest

import tomoalign
import tomoalign._backend as backend
import tomoalign.estimate._phase_correlation as pc_module
import tomoalign.estimate._stackreg as stackreg_module

da = pytest.importorskip("dask.array")

METHODS = ("PC", "COM", "COM-CL", "StackReg")
TILTS = np.arange(-60.0, 61.0, 3.0)  # 41 projections


class CountingMemmap:
    """An array-like over an ``np.memmap`` that records the bytes each read returns."""

    def __init__(self, mm: np.memmap) -> None:
        self.mm = mm
        self.shape = mm.shape
        self.dtype = mm.dtype
        self.ndim = mm.ndim
        self.reads: list[int] = []

    def __getitem__(self, index):
        out = np.array(self.mm[index])
        self.reads.append(out.nbytes)
        return out


@pytest.fixture(scope="module")
def on_disk(tmp_path_factory, misaligned):
    """A misaligned 41 x 256 x 256 float32 series (10.75 MB) in a raw file, and its array."""
    moved, _ = misaligned((256, 256), TILTS, jitter=5, seed=1)
    data = np.ascontiguousarray(moved.data, dtype=np.float32)
    path = tmp_path_factory.mktemp("lazy") / "series.raw"
    data.tofile(path)
    return path, data


def lazy_view(path, shape, *, chunk: int = 2):
    """A dask array over a memory map of ``path``, ``chunk`` projections per dask chunk."""
    counting = CountingMemmap(np.memmap(path, dtype=np.float32, mode="r", shape=shape))
    return da.from_array(counting, chunks=(chunk, -1, -1), asarray=True), counting


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of 1 MiB (4 projections), so that 10.75 MB are read in 11 blocks.

    PC's pair groups shrink to match (on 2048 px images a group is one pair already).
    """
    monkeypatch.setattr(backend, "BLOCK_BYTES", 2**20)
    monkeypatch.setattr(pc_module, "_CHUNK_BYTES", 2**20)
    monkeypatch.setattr(pc_module, "_GROUP_BYTES", 2**17)


def _estimate(data, method, **options):
    return tomoalign.estimate_shifts(data, method, tilts=TILTS[: data.shape[0]], **options)


@pytest.mark.parametrize("method", METHODS)
def test_lazy_shifts_equal_eager(on_disk, small_blocks, method):
    """Bit for bit the eager shifts, read in blocks; no read larger than a dask chunk."""
    path, data = on_disk
    lazy, counting = lazy_view(path, data.shape)
    expected = _estimate(data, method)
    found = _estimate(lazy, method)
    np.testing.assert_array_equal(found, expected)
    assert max(counting.reads) <= 2 * data[0].nbytes
    passes = 2 if method == "COM" else 1
    assert sum(counting.reads) <= passes * data.nbytes + 2 * data[0].nbytes * 11


@pytest.mark.parametrize("method", METHODS)
def test_lazy_estimate_memory_well_below_the_series(on_disk, small_blocks, method):
    """Peak traced memory while estimating is a fraction of the 10.75 MB series.

    Reading it whole would take at least 1x; what is measured is a few blocks plus the
    methods' own working sets, which do not grow with the image area: COM-CL's and PC's
    with ``n_tilts * nx`` (0.1-0.55x here, less on larger images), COM's windowed centre of
    mass with ``n_tilts * nslices * ny`` (about 1x here with the default 20 slices of these
    256 px images, 0.12x on 2048 px ones), hence 4 slices here.
    """
    options = {"nslices": 4} if method == "COM" else {}
    path, data = on_disk
    lazy, _ = lazy_view(path, data.shape)
    with warnings.catch_warnings():  # imports and one-off set-up outside the measurement
        warnings.simplefilter("ignore")
        _estimate(lazy[:8], method, **options)
    tracemalloc.start()
    try:
        _estimate(lazy, method, **options)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 0.6 * data.nbytes, f"{method}: {peak / data.nbytes:.2f} x the series"


def test_lazy_stackreg_pool_equals_eager(on_disk, small_blocks, monkeypatch):
    """The worker processes get blocks of a lazy series as they are read: same shifts."""
    path, data = on_disk
    monkeypatch.setattr(stackreg_module, "_POOL_MIN_PIXELS", 0)
    lazy, _ = lazy_view(path, data.shape)
    np.testing.assert_array_equal(_estimate(lazy, "StackReg"), _estimate(data, "StackReg"))


@pytest.mark.parametrize("method", METHODS)
def test_align_stack_lazy_result(on_disk, small_blocks, method):
    """align_stack on a lazy series: a lazy aligned copy, the eager one when computed."""
    path, data = on_disk
    lazy, _ = lazy_view(path, data.shape, chunk=8)
    eager = tomoalign.align_stack(tomoalign.TomoStack(data, tilts=TILTS), method)
    stack = tomoalign.TomoStack(lazy, tilts=TILTS)
    assert stack._lazy
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = tomoalign.align_stack(stack, method)
    assert out._lazy
    np.testing.assert_array_equal(out.shifts, eager.shifts)
    np.testing.assert_allclose(np.asarray(out.data), eager.data, atol=1e-5 * np.abs(data).max())
