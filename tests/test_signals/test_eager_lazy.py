"""Every public workflow gives the same result on an eager series and on its ``as_lazy()`` copy.

One small series (31 x 64 x 64, tests/conftest.py's ``misaligned``), each workflow run on
``TomoStack(...)`` and on ``.as_lazy()``: the shifts, the data and the metadata (and axes) must
be equal. Equal means bit for bit, data included: the lazy paths read the same float32 values
block by block and run the same float64 arithmetic per projection (or pair, or x-slice), so no
float32 rounding tolerance is needed, and none is granted (measured: no difference at all).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

import tomoalign
from tomoalign.geometry import misalign_tilt_axis

TILTS = np.arange(-60.0, 61.0, 4.0)  # 31 projections
SHAPE = (64, 64)


# --- comparison --------------------------------------------------------------------------------


def _flat(tree: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _axes(signal: Any) -> list[tuple]:
    return [
        (a.name, a.size, a.scale, a.offset, str(a.units), a.navigate)
        for a in signal.axes_manager._axes
    ]


def assert_same(lazy_out: Any, eager_out: Any, *, lazy_result: bool = True) -> None:
    """Same class family, data, shifts, metadata and axes; lazy where the input was."""
    assert lazy_out._lazy is lazy_result
    assert not eager_out._lazy
    data = np.asarray(lazy_out.data)
    assert data.dtype == eager_out.data.dtype
    np.testing.assert_array_equal(data, eager_out.data)
    if hasattr(eager_out, "shifts"):
        np.testing.assert_array_equal(lazy_out.shifts, eager_out.shifts)
        np.testing.assert_array_equal(lazy_out.tilts, eager_out.tilts)
    lazy_md = _flat(lazy_out.metadata.as_dictionary())
    eager_md = _flat(eager_out.metadata.as_dictionary())
    assert lazy_md.keys() == eager_md.keys()
    for key, value in eager_md.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(lazy_md[key], value, err_msg=key)
        else:
            assert lazy_md[key] == value, key
    assert _axes(lazy_out) == _axes(eager_out)


# --- inputs ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def series(misaligned):
    """Misaligned by +-3 px (the series of test_progress.py)."""
    return misaligned(SHAPE, TILTS, jitter=3, seed=1)[0]


@pytest.fixture(scope="module")
def aligned(series):
    return tomoalign.align_stack(series, "PC")


@pytest.fixture(scope="module")
def tilted(phantom):
    """Aligned phantom whose tilt axis is turned by 3 degrees and moved by 2 px."""
    truth = phantom(SHAPE, TILTS)
    return tomoalign.TomoStack(misalign_tilt_axis(truth.data, 3.0, 2.0), tilts=TILTS)


def _both(stack: Any, workflow: Any) -> tuple[Any, Any]:
    """``workflow`` on the eager series and on a lazy copy; the lazy input stays as it was."""
    eager = workflow(stack)
    lazy_in = stack.as_lazy()
    before = np.array(lazy_in.shifts)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning that the eager run does not give (none)
        lazy = workflow(lazy_in)
    assert lazy_in._lazy
    np.testing.assert_array_equal(lazy_in.shifts, before)
    return lazy, eager


# --- the workflows -----------------------------------------------------------------------------


@pytest.mark.parametrize("crop", [False, True], ids=["uncropped", "crop"])
@pytest.mark.parametrize("method", ["PC", "COM", "COM-CL", "StackReg"])
def test_align_stack(series, method, crop):
    if method == "StackReg":
        pytest.importorskip("pystackreg")
    lazy, eager = _both(series, lambda s: tomoalign.align_stack(s, method, crop=crop))
    assert not np.array_equal(eager.shifts, series.shifts)  # it did move the projections
    assert_same(lazy, eager)


def test_stack_register(series):
    lazy, eager = _both(series, lambda s: s.stack_register("COM-CL"))
    assert_same(lazy, eager)


@pytest.mark.parametrize("method", ["auto", "CoM", "MaxImage"])
def test_tilt_align(tilted, method):
    lazy, eager = _both(tilted, lambda s: s.tilt_align(method))
    if method == "auto":  # the correction was found and applied, not refused
        assert eager.metadata.Tomography.tiltaxis == pytest.approx(3.0, abs=0.3)
    assert_same(lazy, eager)


def test_shift_crop(aligned):
    lazy, eager = _both(aligned, tomoalign.shift_crop)
    assert eager.data.shape[1:] < aligned.data.shape[1:]
    assert_same(lazy, eager)


@pytest.mark.parametrize("other_lazy", [True, False], ids=["other-lazy", "other-eager"])
def test_align_other(tilted, series, other_lazy):
    """The alignment of a (lazy) series applied to a second channel (lazy or eager).

    The result is lazy exactly when ``other`` is.
    """
    done = tomoalign.align_stack(tilted, "PC").tilt_align("CoM")
    other = tomoalign.TomoStack(3.0 * series.data, tilts=TILTS)
    eager = tomoalign.align_other(done, other)
    lazy = tomoalign.align_other(done.as_lazy(), other.as_lazy() if other_lazy else other)
    assert_same(lazy, eager, lazy_result=other_lazy)


@pytest.mark.parametrize(
    ("method", "options"), [("FBP", {}), ("SIRT", {"iterations": 5})], ids=["FBP", "SIRT"]
)
def test_reconstruct(aligned, method, options):
    """A lazy series reconstructs to the same (eager) volume."""
    pytest.importorskip("astra")
    lazy, eager = _both(aligned, lambda s: s.reconstruct(method, thickness=32, **options))
    assert eager.data.shape == (32, *SHAPE)
    assert_same(lazy, eager, lazy_result=False)


def test_mrc_round_trip(aligned, tmp_path):
    """Saved eager and lazy: the same bytes; loaded eager and lazy: the same series."""
    (tmp_path / "eager").mkdir()
    (tmp_path / "lazy").mkdir()
    aligned.save(tmp_path / "eager" / "s.mrc")
    aligned.as_lazy().save(tmp_path / "lazy" / "s.mrc")
    for name in ("s.mrc", "s.rawtlt"):
        assert (tmp_path / "lazy" / name).read_bytes() == (tmp_path / "eager" / name).read_bytes()
    eager = tomoalign.load(tmp_path / "eager" / "s.mrc")
    lazy = tomoalign.load(tmp_path / "lazy" / "s.mrc", lazy=True)
    assert_same(lazy, eager)
    np.testing.assert_array_equal(eager.data, aligned.data)
