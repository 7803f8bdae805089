import mrcfile
import numpy as np
import pytest

import tomoalign
from tomoalign.formats._mrc import _tilts_from_extended_header


@pytest.mark.parametrize("suffix", [".mrc", ".st", ".ali", ".mrcs"])
@pytest.mark.parametrize("dtype", [np.float32, np.int16, np.uint16, np.int8])
def test_round_trip(tmp_path, array7, tilts7, suffix, dtype):
    data = (array7 * 100).astype(dtype)
    stack = tomoalign.TomoStack(data, tilts=tilts7)
    for axis in stack.axes_manager.signal_axes:
        axis.scale, axis.units = 0.788, "nm"
    path = tmp_path / f"series{suffix}"
    stack.save(path)
    assert path.with_suffix(".rawtlt").is_file()
    back = tomoalign.load(path)
    assert back.data.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(back.data, data)
    np.testing.assert_allclose(back.tilts, tilts7, atol=1e-4)
    assert back.axes_manager.signal_axes[0].scale == pytest.approx(0.788, rel=1e-5)
    assert back.axes_manager.signal_axes[0].units == "nm"
    with mrcfile.open(path) as mrc:  # a standard file, strict mode reads it
        assert mrc.voxel_size.x == pytest.approx(7.88, rel=1e-5)


def test_lazy_memory_maps(tmp_path, stack7, tilts7):
    path = tmp_path / "s.mrc"
    stack7.save(path)
    lazy = tomoalign.load(path, lazy=True)
    assert isinstance(lazy, tomoalign.LazyTomoStack)
    assert lazy.data.dtype == np.float32
    np.testing.assert_array_equal(lazy.tilts, np.round(tilts7, 4))
    np.testing.assert_array_equal(np.asarray(lazy.data[2:4]), stack7.data[2:4])


def test_lazy_save_streams(tmp_path, stack7):
    path = tmp_path / "s.mrc"
    stack7.save(path)
    lazy = tomoalign.load(path, lazy=True)
    out = tmp_path / "copy.mrc"
    lazy.save(out)
    np.testing.assert_array_equal(tomoalign.load(out).data, stack7.data)


def test_float64_is_written_as_float32_with_a_warning(tmp_path, array7):
    stack = tomoalign.TomoStack(array7.astype(np.float64))
    with pytest.warns(UserWarning, match="MRC cannot store float64"):
        stack.save(tmp_path / "s.mrc")
    assert stack.data.dtype == np.float64  # the signal itself is untouched


def test_int32_that_fits_is_written_losslessly(tmp_path, array7):
    data = (array7 * 1000).astype(np.int32)
    tomoalign.TomoStack(data).save(tmp_path / "s.mrc")
    with pytest.warns(UserWarning, match="no tilt angles"):
        back = tomoalign.load(tmp_path / "s.mrc")
    np.testing.assert_array_equal(back.data, data)


def _fei_old_header_file(path, data, tilts):
    ext = np.zeros((1024, 32), "<f4")
    ext[: len(tilts), 0] = tilts
    with mrcfile.new(path) as mrc:
        mrc.set_data(data)
        mrc.set_extended_header(np.frombuffer(ext.tobytes(), dtype="V1"))


def test_tilts_from_old_fei_extended_header(tmp_path, array7, tilts7):
    path = tmp_path / "fei.mrc"
    _fei_old_header_file(path, array7, tilts7)
    stack = tomoalign.load(path)
    np.testing.assert_allclose(stack.tilts, tilts7, atol=1e-5)


def test_tilts_from_serialem_extended_header(tmp_path, array7, tilts7):
    path = tmp_path / "seri.mrc"
    nint = 4
    ext = np.zeros((len(tilts7), nint // 2), "<i2")
    ext[:, 0] = np.round(tilts7 * 100)
    with mrcfile.new(path) as mrc:
        mrc.set_data(array7)
        mrc.set_extended_header(np.frombuffer(ext.tobytes(), dtype="V1"))
        mrc.header.exttyp = b"SERI"
        extra = bytearray(mrc.header.extra2.tobytes())
        extra[16:20] = np.array([nint, 1], "<i2").tobytes()
        mrc.header.extra2 = bytes(extra)
    stack = tomoalign.load(path)
    np.testing.assert_allclose(stack.tilts, tilts7, atol=0.01)


def test_extended_header_without_tilts_is_ignored(tmp_path, array7):
    path = tmp_path / "zeros.mrc"
    _fei_old_header_file(path, array7, np.zeros(7))
    with pytest.warns(UserWarning, match="no tilt angles found"):
        stack = tomoalign.load(path)
    assert not stack.has_tilts
    assert _tilts_from_extended_header(None, b"", 7) is None


def test_real_needle_header_tilts(shared_data):
    with pytest.warns(UserWarning, match="permissive mode"):
        stack = tomoalign.load(shared_data / "needle" / "HAADF.mrc", lazy=True)
    assert stack.data.shape == (77, 256, 256)
    assert stack.data.dtype == np.int16
    np.testing.assert_array_equal(stack.tilts, np.arange(-76, 77, 2))


def test_real_serialem_with_mdoc(shared_data):
    stack = tomoalign.load(shared_data / "serialem_multitilt" / "test_000.mrc")
    assert stack.data.shape == (2, 1024, 1024)
    assert stack.axes_manager.signal_axes[0].scale == pytest.approx(0.788)
    assert stack.metadata.Tomography.acquisition_tilt_axis == -90.0
    np.testing.assert_allclose(stack.tilts, [-0.000488, -0.000488])


@pytest.mark.parametrize("cut", [100, 1024 + 500, -10])
def test_truncated_mrc_raises_and_names_the_file(tmp_path, stack7, cut):
    path = tmp_path / "s.mrc"
    stack7.save(path)
    raw = path.read_bytes()
    bad = tmp_path / "bad.mrc"
    bad.write_bytes(raw[:cut])
    for lazy in (False, True):
        with pytest.raises(ValueError, match=r"bad\.mrc.*not a readable MRC file"):
            tomoalign.load(bad, lazy=lazy)


def test_garbage_file_raises(tmp_path):
    bad = tmp_path / "noise.mrc"
    bad.write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(ValueError, match="not a readable MRC file"):
        tomoalign.load(bad)


def test_single_image_mrc_is_refused(tmp_path):
    path = tmp_path / "one.mrc"
    with mrcfile.new(path) as mrc:
        mrc.set_data(np.zeros((16, 16), np.float32))
    with pytest.raises(ValueError, match="single 2D image"):
        tomoalign.load(path)
