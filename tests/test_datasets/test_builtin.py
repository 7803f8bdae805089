import numpy as np
import pytest

import tomoalign
from tomoalign import datasets


def test_needle():
    stack = datasets.needle()
    assert isinstance(stack, tomoalign.TomoStack)
    assert stack.data.shape == (77, 256, 256)
    assert stack.data.dtype == np.int16
    np.testing.assert_array_equal(stack.tilts, np.arange(-76, 77, 2))
    axis = stack.axes_manager.signal_axes[0]
    assert (axis.scale, axis.units) == (3.36, "nm")


def test_needle_lazy_and_provenance_shipped():
    from importlib import resources

    stack = datasets.needle(lazy=True)
    assert isinstance(stack, tomoalign.LazyTomoStack)
    note = (resources.files("tomoalign.datasets") / "data" / "PROVENANCE.md").read_text()
    assert "NIST" in note and "HAADF" in note


def test_phantom_series_is_a_stack_with_tilts():
    tilts = np.arange(-60, 61, 5)
    stack = datasets.phantom_series((48, 40), tilts=tilts, seed=2)
    assert stack.data.shape == (25, 48, 40)
    assert stack.data.dtype == np.float32
    np.testing.assert_array_equal(stack.tilts, tilts)
    again = datasets.phantom_series((48, 40), tilts=tilts, seed=2)
    np.testing.assert_array_equal(stack.data, again.data)
    other = datasets.phantom_series((48, 40), tilts=tilts, seed=3)
    assert not np.array_equal(stack.data, other.data)


def test_phantom_default_tilts():
    stack = datasets.phantom_series((32, 32))
    np.testing.assert_array_equal(stack.tilts, np.arange(-70, 71, 2))


def test_misalign_applies_the_returned_shifts():
    clean = datasets.phantom_series((64, 64), tilts=np.arange(-60, 61, 10))
    moved, true = datasets.misalign(clean, jitter=3.0, drift=0.5, seed=4)
    assert true.shape == (13, 2)
    np.testing.assert_allclose(moved.data, tomoalign.apply_shifts(clean.data, true), atol=1e-6)
    np.testing.assert_array_equal(moved.tilts, clean.tilts)
    np.testing.assert_array_equal(clean.shifts, 0)  # input untouched
    back = tomoalign.apply_shifts(moved.data, -true)
    # exact but for the Nyquist row/column of even sizes, which a Fourier shift damps
    np.testing.assert_allclose(back, clean.data, atol=0.005 * clean.data.max())


def test_add_noise_levels():
    clean = datasets.phantom_series((64, 64), tilts=np.arange(-60, 61, 10))
    noisy = datasets.add_noise(clean, kind="gaussian", level=0.5, seed=1)
    ratio = np.std(noisy.data - clean.data) / np.std(clean.data)
    assert ratio == pytest.approx(0.5, rel=0.05)
    assert datasets.add_noise(clean, kind="poisson", level=5).data.dtype == np.float32
    with pytest.raises(ValueError, match="kind"):
        datasets.add_noise(clean, kind="salt")
