"""Every warning tomoalign gives points at the user's line (``tomoalign._warnings.warn``).

Each test triggers one warning from this file and asserts that Python attributes it to the
line of the call here, not to a line inside the package. Where the same warning is reachable
from two depths (an estimator through ``estimate_shifts`` and through ``align_stack``), both
are checked: a fixed ``stacklevel`` can be right for one depth only.
"""

from __future__ import annotations

import contextlib
import inspect
import warnings
from collections.abc import Iterator

import mrcfile
import numpy as np
import pytest

import tomoalign
from tomoalign import _backend, datasets
from tomoalign.estimate import _tilt_axis
from tomoalign.simulate import phantom_projections

TILTS = np.arange(-60.0, 61.0, 5.0)


@contextlib.contextmanager
def warns_here(category: type[Warning], match: str) -> Iterator[None]:
    """Expect one ``category`` warning matching ``match``, attributed to the next line."""
    line = inspect.currentframe().f_back.f_back.f_lineno + 1  # the line after the ``with``
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    ours = [w for w in caught if issubclass(w.category, category) and match in str(w.message)]
    seen = [str(w.message) for w in caught]
    assert ours, f"no {category.__name__} matching {match!r}; got {seen}"
    where = [(w.filename, w.lineno) for w in ours]
    assert where == [(__file__, line)] * len(ours), f"attributed to {where}, expected line {line}"


@pytest.fixture(scope="module")
def series() -> tomoalign.TomoStack:
    data = phantom_projections((48, 48), TILTS, seed=4)
    return tomoalign.TomoStack(data, tilts=TILTS)


@pytest.fixture(scope="module")
def far_off() -> tomoalign.TomoStack:
    """30 px jitter on 128 px: COM (p=20) cannot reach it, and says so."""
    phantom = datasets.phantom_series((128, 128), tilts=np.arange(-70.0, 71.0, 4.0), seed=0)
    moved, _ = datasets.misalign(phantom, jitter=30, seed=1)
    return moved


def test_the_helper_can_fail():
    """``warns_here`` itself rejects a warning attributed to another line."""
    with pytest.raises(AssertionError, match="attributed to"):
        with warns_here(UserWarning, "elsewhere"):
            pass
            warnings.warn("elsewhere", UserWarning, stacklevel=1)


def test_an_option_the_method_ignores(series):
    with warns_here(UserWarning, "'p' is not used by the PC method"):
        tomoalign.align_stack(series, "PC", p=5)


def test_start_ignored_by_estimate_shifts(series):
    with warns_here(UserWarning, "'start' is not used by the COM-CL method"):
        tomoalign.estimate_shifts(series.data, "COM-CL", start=2)


def test_implausible_shifts_from_estimate_shifts(far_off):
    with warns_here(UserWarning, "the shifts found look implausible"):
        tomoalign.estimate_shifts(far_off.data, "COM", tilts=far_off.tilts)


def test_implausible_shifts_from_align_stack(far_off):
    with warns_here(UserWarning, "the shifts found look implausible"):
        tomoalign.align_stack(far_off, "COM")


def test_implausible_shifts_from_the_method(far_off):
    with warns_here(UserWarning, "the shifts found look implausible"):
        far_off.stack_register("COM")


def test_cuda_fallback(series, monkeypatch):
    if _backend.cupy_available():
        pytest.skip("CuPy with a GPU is available: there is no fallback to warn about")
    monkeypatch.setattr(_backend, "_cuda_warned", set())
    with warns_here(RuntimeWarning, "CuPy or a CUDA GPU is not available"):
        tomoalign.align_stack(series, "PC", cuda=True)


def test_astra_cuda_fallback(series, monkeypatch):
    pytest.importorskip("astra")
    try:
        import astra

        if astra.use_cuda():
            pytest.skip("astra has CUDA: there is no fallback to warn about")
    except Exception:
        pass
    monkeypatch.setattr(_backend, "_cuda_warned", set())
    with warns_here(RuntimeWarning, "CUDA"):
        series.isig[:, :8].reconstruct("FBP", cuda=True)


def test_nan_pixels(series):
    data = series.data.copy()
    data[0, 0, 0] = np.nan
    with warns_here(RuntimeWarning, "NaN or infinite pixel"):
        tomoalign.TomoStack(data, tilts=TILTS)


def test_refused_tilt_axis(series, monkeypatch):
    monkeypatch.setattr(_tilt_axis, "tilt_axis_auto", lambda *a, **k: (1.0, 40.0))
    with warns_here(UserWarning, "and did not apply it"):
        series.tilt_align("auto")


def test_refused_tilt_axis_through_the_function(series, monkeypatch):
    monkeypatch.setattr(_tilt_axis, "tilt_axis_auto", lambda *a, **k: (1.0, 40.0))
    with warns_here(UserWarning, "and did not apply it"):
        tomoalign.tilt_align(series, "auto")


def test_crop_twice(series):
    moved = tomoalign.TomoStack(series.data, tilts=TILTS, shifts=np.tile([1.5, -2.0], (25, 1)))
    cropped = moved.shift_crop()
    with warns_here(UserWarning, "already cropped"):
        cropped.shift_crop()


def test_load_without_tilts(tmp_path, series):
    path = tmp_path / "series.mrc"
    tomoalign.TomoStack(series.data).save(path)
    with warns_here(UserWarning, "no tilt angles found"):
        tomoalign.load(path)


def test_mrc_with_extra_bytes(tmp_path, series):
    path = tmp_path / "series.mrc"
    tomoalign.TomoStack(series.data).save(path)
    with open(path, "ab") as f:
        f.write(b"\0" * 16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the missing tilts are not the point here
        with warns_here(UserWarning, "larger than its header says"):
            tomoalign.load(path, tilts=TILTS)


def test_mrc_with_a_damaged_header(tmp_path, series):
    path = tmp_path / "series.mrc"
    tomoalign.TomoStack(series.data).save(path)
    raw = bytearray(path.read_bytes())
    raw[208:212] = b"XXXX"  # the MRC2014 "MAP " identifier
    path.write_bytes(bytes(raw))
    with warns_here(UserWarning, "permissive"):
        tomoalign.load(path, tilts=TILTS)


def test_mrc_written_as_float32(tmp_path):
    data = np.arange(3 * 8 * 8, dtype=np.int64).reshape(3, 8, 8) * 10_000
    with warns_here(UserWarning, "float32"):
        tomoalign.TomoStack(data).save(tmp_path / "wide.mrc")
    with mrcfile.open(tmp_path / "wide.mrc") as mrc:
        assert mrc.data.dtype == np.float32
