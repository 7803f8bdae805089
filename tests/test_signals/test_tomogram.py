"""The tomogram signal: construction, axes, slicing, lazy, plotting, co-existence with ETSpy."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import dask.array as da
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure

from tomoalign.signals.tomogram import (
    SIGNAL_TYPE,
    LazyRecStack,
    LazyTomogram,
    RecStack,
    Tomogram,
)


@pytest.fixture
def volume() -> np.ndarray:
    """(nz, ny, nx) = (12, 20, 16) with every voxel distinct."""
    return np.arange(12 * 20 * 16, dtype=np.float32).reshape(12, 20, 16)


#: The registration to add to tomoalign/hyperspy_extension.yaml (kept in step with it).
REGISTRATION = {
    "Tomogram": {"lazy": False},
    "LazyTomogram": {"lazy": True},
}


@pytest.fixture(autouse=True)
def _registered(monkeypatch):
    """Make HyperSpy know the classes even before the YAML lists them (as_lazy, compute and
    set_signal_type look classes up there); once it does, this changes nothing."""
    from hyperspy.extensions import ALL_EXTENSIONS

    signals = ALL_EXTENSIONS["signals"]
    for name, extra in REGISTRATION.items():
        if name not in signals:
            entry = {
                "signal_type": SIGNAL_TYPE,
                "signal_dimension": 2,
                "dtype": "real",
                "module": "tomoalign.signals.tomogram",
                **extra,
            }
            monkeypatch.setitem(signals, name, entry)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_aliases() -> None:
    assert RecStack is Tomogram and LazyRecStack is LazyTomogram
    assert Tomogram.__name__ == "Tomogram" and LazyTomogram.__name__ == "LazyTomogram"


def test_construction_axes_and_signal_type(volume: np.ndarray) -> None:
    rec = Tomogram(volume)
    assert rec.data is volume
    am = rec.axes_manager
    assert am.navigation_shape == (12,) and am.signal_shape == (16, 20)
    assert [a.name for a in am.navigation_axes] == ["z"]
    assert [a.name for a in am.signal_axes] == ["x", "y"]  # HyperSpy lists x first
    assert rec.metadata.Signal.signal_type == SIGNAL_TYPE == "tomoalign_tomogram"
    assert not rec._lazy


def test_calibrated_axes_are_kept(volume: np.ndarray) -> None:
    axes = [
        {"name": n, "size": s, "scale": 3.36, "units": "nm", "navigate": n == "z"}
        for n, s in zip(("z", "y", "x"), volume.shape, strict=True)
    ]
    rec = Tomogram(volume, axes=axes)
    assert all(a.scale == 3.36 and a.units == "nm" for a in rec.axes_manager._axes)


def test_slicing_keeps_the_class(volume: np.ndarray) -> None:
    rec = Tomogram(volume)
    sub = rec.inav[2:5]
    assert isinstance(sub, Tomogram)
    np.testing.assert_array_equal(sub.data, volume[2:5])
    assert sub.axes_manager.navigation_axes[0].name == "z"
    one = rec.inav[3]
    np.testing.assert_array_equal(one.data, volume[3])
    crop = rec.isig[2:10, 1:4]  # x, then y
    np.testing.assert_array_equal(crop.data, volume[:, 1:4, 2:10])
    assert isinstance(rec.deepcopy(), Tomogram)


def test_lazy(volume: np.ndarray) -> None:
    lazy = Tomogram(da.from_array(volume, chunks=(4, -1, -1)))
    assert isinstance(lazy, LazyTomogram) and lazy._lazy
    assert lazy.axes_manager.navigation_axes[0].name == "z"
    computed = lazy.compute() or lazy
    assert isinstance(computed, Tomogram)
    np.testing.assert_array_equal(computed.data, volume)
    again = Tomogram(volume).as_lazy()
    assert isinstance(again, LazyTomogram)
    assert again.metadata.Signal.signal_type == SIGNAL_TYPE


def test_plot_slices_returns_a_figure(volume: np.ndarray) -> None:
    rec = Tomogram(volume)
    rec.metadata.General.title = "phantom"
    fig = rec.plot_slices()
    assert isinstance(fig, Figure)
    images = [ax.images[0].get_array() for ax in fig.axes if ax.images]
    assert len(images) == 3
    np.testing.assert_array_equal(images[0], volume[6])  # central z
    np.testing.assert_array_equal(images[1], volume[:, 10, :])  # central y
    np.testing.assert_array_equal(images[2], volume[:, :, 8])  # central x
    chosen = rec.plot_slices(z=1, y=-1, x=0)
    images = [ax.images[0].get_array() for ax in chosen.axes if ax.images]
    np.testing.assert_array_equal(images[1], volume[:, 19, :])


def test_plot_slices_lazy(volume: np.ndarray) -> None:
    fig = Tomogram(da.from_array(volume, chunks=(4, -1, -1))).plot_slices(z=0)
    assert isinstance(fig, Figure)


def test_plot_slices_bad_index(volume: np.ndarray) -> None:
    rec = Tomogram(volume)
    with pytest.raises(ValueError, match="z=12 is outside the volume's 12 z-slices"):
        rec.plot_slices(z=12)
    with pytest.raises(TypeError, match="y must be an int slice index or None"):
        rec.plot_slices(y=1.5)


def test_plot_works(volume: np.ndarray) -> None:
    Tomogram(volume).plot()


@pytest.mark.parametrize(
    ("data", "error", "match"),
    [
        (np.zeros((4, 4)), ValueError, r"2 dimension\(s\).*\(nz, ny, nx\)"),
        (np.zeros((2, 3, 4, 5)), ValueError, r"4 dimension\(s\)"),
        (np.zeros((2, 3, 4), complex), TypeError, "data has dtype complex128; a volume needs"),
        (np.array([["a"]]), TypeError, "real numbers"),
    ],
)
def test_bad_data(data, error, match) -> None:
    with pytest.raises(error, match=match):
        Tomogram(data)


def test_from_reconstruction() -> None:
    pytest.importorskip("astra")
    from tomoalign.reconstruction import reconstruct
    from tomoalign.simulate import phantom_projections

    tilts = np.arange(-60.0, 61.0, 4.0)
    rec = Tomogram(reconstruct(phantom_projections((32, 24), tilts, thickness=8), tilts))
    assert rec.axes_manager.navigation_shape == (32,)
    assert rec.axes_manager.signal_shape == (24, 32)


def test_set_signal_type(volume: np.ndarray) -> None:
    import hyperspy.api as hs

    s = hs.signals.Signal2D(volume)
    s.set_signal_type(SIGNAL_TYPE)
    assert isinstance(s, Tomogram)


def test_coexists_with_etspy_recstack(volume: np.ndarray) -> None:
    etspy_base = pytest.importorskip("etspy.base", reason="ETSpy is not installed")
    import hyperspy.api as hs
    from etspy.base import RecStack as EtspyRecStack
    from hyperspy.extensions import ALL_EXTENSIONS

    import tomoalign  # noqa: F401

    assert EtspyRecStack is not RecStack
    assert ALL_EXTENSIONS["signals"]["RecStack"]["module"].startswith("etspy")
    theirs = hs.signals.Signal2D(volume)
    theirs.set_signal_type("RecStack")
    assert isinstance(theirs, etspy_base.RecStack)
    assert not isinstance(theirs, Tomogram)
    ours = Tomogram(volume)
    assert not isinstance(ours, etspy_base.RecStack)


def test_tomostack_reconstruct_carries_pixel_size(capsys):
    import numpy as np

    import tomoalign
    from tomoalign import datasets

    stack = datasets.phantom_series((48, 40), tilts=np.arange(-70, 71, 5), seed=1)
    for axis in stack.axes_manager.signal_axes:
        axis.scale, axis.units = 0.5, "nm"
    rec = stack.reconstruct(
        "SIRT", iterations=20, constrain=True, thickness=24, show_progressbar=True
    )
    assert isinstance(rec, tomoalign.RecStack)
    assert rec.data.shape == (24, 48, 40)
    assert rec.data.min() >= 0
    assert [a.scale for a in rec.axes_manager._axes] == [0.5, 0.5, 0.5]
    assert [a.name for a in rec.axes_manager._axes] == ["z", "y", "x"]
    assert rec.metadata.Reconstruction.method == "SIRT"
    assert "SIRT reconstruction" in capsys.readouterr().err
    no_tilts = tomoalign.TomoStack(stack.data)
    with pytest.raises(ValueError, match="reconstruction needs the tilt angles"):
        no_tilts.reconstruct()


def test_alignment_lowers_reconstruction_and_reprojection_error():
    import numpy as np

    import tomoalign
    from tomoalign import datasets
    from tomoalign.simulate import phantom_volume

    shape, tilts = (64, 48), np.arange(-70, 71, 3)
    truth = datasets.phantom_series(shape, tilts=tilts, thickness=16, seed=5)
    volume = phantom_volume(shape, thickness=16, nz=32, seed=5)
    moved, _ = datasets.misalign(truth, jitter=3.0, seed=1)
    aligned = moved.stack_register("COM-CL")

    def rec_error(stack):
        from scipy.ndimage import shift
        from skimage.registration import phase_cross_correlation

        rec = stack.reconstruct("SIRT", iterations=30, thickness=32).data
        # an alignment is free up to a rigid translation of the object: register it first
        offset = phase_cross_correlation(volume, rec, upsample_factor=10)[0]
        rec = shift(rec, offset, order=1)
        return np.linalg.norm(rec - volume) / np.linalg.norm(volume)

    floor, good, bad = rec_error(truth), rec_error(aligned), rec_error(moved)
    # the missing wedge and the iterations set a floor (0.448); aligned 0.453, misaligned 0.618
    assert good - floor < 0.25 * (bad - floor)
    assert tomoalign.reprojection_error(aligned, nslices=8) < 0.7 * tomoalign.reprojection_error(
        moved, nslices=8
    )
