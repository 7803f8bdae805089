"""tilt_align on the signal: ground truth restored, metadata, and bad input."""

import numpy as np
import pytest

import tomoalign
from tomoalign import datasets
from tomoalign.geometry import misalign_tilt_axis

TILTS = np.arange(-70.0, 71.0, 2.0)


@pytest.fixture(scope="module")
def truth(phantom):
    return phantom((128, 128), TILTS, seed=2)


def _raw(truth, angle, offset, noise=0.0):
    raw = tomoalign.TomoStack(misalign_tilt_axis(truth.data, angle, offset), tilts=truth.tilts)
    return datasets.add_noise(raw, level=noise, seed=3) if noise else raw


@pytest.mark.parametrize(("angle", "offset"), [(4.0, 6.0), (-7.0, -9.5)])
def test_auto_restores_the_axis(truth, angle, offset):
    out = _raw(truth, angle, offset).tilt_align()
    md = out.metadata.Tomography
    assert md.tiltaxis == pytest.approx(angle, abs=0.2)
    assert md.yshift == pytest.approx(offset, abs=0.3)
    inner = (slice(None), slice(24, -24), slice(24, -24))
    err = np.abs(out.data[inner] - truth.data[inner]).max()
    assert err < 0.05 * truth.data.max()


def test_auto_with_noise_beats_com_and_maximage(truth):
    raw = _raw(truth, 3.0, 5.0, noise=0.5)
    errors = {}
    for method in ("auto", "CoM", "MaxImage"):
        md = raw.tilt_align(method).metadata.Tomography
        errors[method] = abs(md.tiltaxis - 3.0)
    # measured 0.28 (auto), 18.7 (CoM), 1.3 (MaxImage) degrees
    assert 3 * errors["auto"] < min(errors["CoM"], errors["MaxImage"])


def test_auto_with_noise_meets_the_target_at_256_px():
    # The 0.2 degree / 0.3 px target is stated and benchmarked at 256 px; at 128 px (the
    # other tests here) the angle's RMS error at this noise is about 0.26 degree.
    truth = datasets.phantom_series((256, 256), tilts=TILTS, seed=2)
    md = _raw(truth, 3.0, 5.0, noise=0.5).tilt_align().metadata.Tomography
    # measured 0.13 degree, 0.14 px
    assert abs(md.tiltaxis - 3.0) < 0.2
    assert abs(md.yshift - 5.0) < 0.3


def test_shifted_rotated_and_offset_series_is_restored(truth):
    from skimage.registration import phase_cross_correlation

    raw = _raw(truth, 3.0, 4.0)
    moved, _ = datasets.misalign(raw, jitter=3.0, seed=8)
    out = moved.stack_register("PC").tilt_align().stack_register("PC").tilt_align()
    inner = (slice(24, -24), slice(24, -24))
    resid = np.array(
        [
            phase_cross_correlation(truth.data[i][inner], out.data[i][inner], upsample_factor=20)[0]
            for i in range(len(TILTS))
        ]
    )
    theta = np.deg2rad(TILTS)
    # the alignment is free up to a rigid 3D translation, b cos + c sin across the axis and a
    # constant along it; the axis offset (a constant across) is not free: it must be gone
    design = np.column_stack([np.cos(theta), np.sin(theta)])
    y = resid[:, 0] - design @ np.linalg.lstsq(design, resid[:, 0], rcond=None)[0]
    x = resid[:, 1] - resid[:, 1].mean()
    assert np.sqrt(np.mean(y**2)) < 0.5
    assert np.sqrt(np.mean(x**2)) < 0.5


def test_metadata_composes_with_an_earlier_correction(truth):
    raw = _raw(truth, 4.0, 6.0)
    once = raw.tilt_align()
    twice = once.tilt_align()
    md = twice.metadata.Tomography
    assert md.tiltaxis == pytest.approx(4.0, abs=0.2)
    assert md.yshift == pytest.approx(6.0, abs=0.3)


def test_maximage_with_also_shift_and_plot(truth):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    raw = _raw(truth, 0.0, 5.0)
    out = raw.tilt_align("MaxImage", also_shift=True, shift_limit=8, plot_results=True)
    md = out.metadata.Tomography
    # ETSpy's method: a Hough angle (measured 2.6 degrees off here) and a whole-pixel offset
    assert md.tiltaxis == pytest.approx(0.0, abs=3.0)
    assert md.yshift == pytest.approx(5.0, abs=1.0)
    assert plt.get_fignums()
    plt.close("all")


def test_input_untouched_and_dtype(truth):
    raw = _raw(truth, 2.0, 1.0)
    ints = tomoalign.TomoStack((raw.data * 100).astype(np.int16), tilts=raw.tilts)
    before = ints.data.copy()
    out = ints.tilt_align("CoM")
    np.testing.assert_array_equal(ints.data, before)
    assert ints.metadata.Tomography.tiltaxis == 0.0
    assert out.data.dtype == np.float32


def test_lazy_series(truth):
    raw = _raw(truth, 2.0, 1.0).as_lazy()
    out = raw.tilt_align("CoM")
    assert isinstance(out, tomoalign.LazyTomoStack)


@pytest.mark.parametrize(
    ("stack", "match"),
    [
        (tomoalign.TomoStack(np.random.default_rng(0).random((5, 32, 32))), "needs the tilt"),
        (
            tomoalign.TomoStack(np.random.default_rng(0).random((2, 32, 32)), tilts=[-10, 10]),
            "at least 3",
        ),
    ],
    ids=["no tilts", "two projections"],
)
def test_bad_input(stack, match):
    with pytest.raises(ValueError, match=match):
        stack.tilt_align()


def test_unknown_method(truth):
    with pytest.raises(ValueError, match=r"unknown tilt-axis method 'Hough'; valid methods are"):
        truth.tilt_align("Hough")


@pytest.mark.parametrize(
    ("found", "why"),
    [((2.0, 100.0), "quarter of the image height"), ((12.5, 0.0), "beyond the range searched")],
)
def test_implausible_axis_is_refused(truth, monkeypatch, found, why):
    from tomoalign.estimate import _tilt_axis

    monkeypatch.setattr(_tilt_axis, "tilt_axis_auto", lambda *a, **k: found)
    with pytest.warns(UserWarning, match=why) as caught:
        kept = truth.tilt_align()
    assert caught[0].filename == __file__  # the warning points at the user's line
    np.testing.assert_array_equal(kept.data, truth.data)
    assert kept.metadata.Tomography.tiltaxis == truth.metadata.Tomography.tiltaxis
