import os
import sys

import hyperspy.api as hs
import numpy as np
import pytest

import tomoalign


def test_missing_file():
    with pytest.raises(FileNotFoundError, match=r"no such file: ./nonexistent/x\.mrc."):
        tomoalign.load("/nonexistent/x.mrc")


def test_folder_is_refused(tmp_path):
    with pytest.raises(IsADirectoryError, match="is a folder"):
        tomoalign.load(tmp_path)


def test_unknown_extension(tmp_path):
    path = tmp_path / "x.xyz"
    path.write_text("hello")
    with pytest.raises(ValueError, match=r"unknown extension '\.xyz'; supported are .*\.mrc"):
        tomoalign.load(path)


def test_dm_series_from_list_sorted_by_tilt(shared_data):
    files = sorted((shared_data / "dm_series").glob("*.dm3"))
    stack = tomoalign.load(files[::-1])  # any order in, tilt order out
    assert stack.data.shape == (3, 128, 128)
    assert stack.data.dtype == np.float32
    assert np.all(np.diff(stack.tilts) > 0)
    np.testing.assert_allclose(stack.tilts, [-72.003, -69.004, -66.004], atol=1e-3)
    assert stack.axes_manager.signal_axes[0].units == "nm"
    assert stack.axes_manager.signal_axes[0].scale == pytest.approx(19.1087, rel=1e-4)


def test_single_dm_image_is_not_a_series(shared_data):
    with pytest.raises(ValueError, match="single 2D image"):
        tomoalign.load(shared_data / "dm_series" / "BF_001.dm3")


def test_list_of_non_dm_files(tmp_path, stack7):
    stack7.save(tmp_path / "a.mrc")
    stack7.save(tmp_path / "b.mrc")
    with pytest.raises(ValueError, match="must be DigitalMicrograph images"):
        tomoalign.load([tmp_path / "a.mrc", tmp_path / "b.mrc"])


def test_dm_series_shape_mismatch(tmp_path, shared_data):
    files = sorted((shared_data / "dm_series").glob("*.dm3"))
    stack = tomoalign.load(files)
    small = stack.inav[0].isig[:64, :64]
    small.save(tmp_path / "small.hspy")  # a 2D signal
    with pytest.raises(ValueError, match=r"single 2D image|must hold one 2D projection|dm3"):
        tomoalign.load([files[0], tmp_path / "small.hspy"])


def test_corrupt_dm_file(tmp_path, shared_data):
    raw = (shared_data / "dm_series" / "BF_001.dm3").read_bytes()
    bad = tmp_path / "bad.dm3"
    bad.write_bytes(raw[: len(raw) // 3])
    with pytest.raises(ValueError, match=r"could not read .*bad\.dm3"):
        tomoalign.load(bad)


def test_hspy_round_trip_keeps_everything(tmp_path, stack7, tilts7, lazy):
    stack7.shifts = np.arange(14, dtype=float).reshape(7, 2)
    stack7.metadata.Tomography.tiltaxis = 1.5
    stack7.axes_manager.signal_axes[0].scale = 0.5
    stack7.axes_manager.signal_axes[0].units = "nm"
    stack7.save(tmp_path / "s.hspy")
    back = tomoalign.load(tmp_path / "s.hspy", lazy=lazy)
    assert isinstance(back, tomoalign.LazyTomoStack if lazy else tomoalign.TomoStack)
    np.testing.assert_array_equal(np.asarray(back.data), stack7.data)
    np.testing.assert_array_equal(back.tilts, tilts7)
    np.testing.assert_array_equal(back.shifts, stack7.shifts)
    assert back.metadata.Tomography.tiltaxis == 1.5
    assert back.axes_manager.signal_axes[0].scale == 0.5


def test_hspy_opens_in_hyperspy_as_our_class(tmp_path, stack7, tilts7):
    stack7.save(tmp_path / "s.hspy")
    sig = hs.load(tmp_path / "s.hspy")
    assert isinstance(sig, tomoalign.TomoStack)
    np.testing.assert_array_equal(sig.tilts, tilts7)


def test_tiff_round_trip(tmp_path, stack7, tilts7, lazy):
    stack7.save(tmp_path / "s.tif")
    back = tomoalign.load(tmp_path / "s.tif", lazy=lazy)
    assert back.data.dtype == np.float32
    np.testing.assert_array_equal(np.asarray(back.data), stack7.data)
    np.testing.assert_allclose(back.tilts, tilts7)


def test_save_refuses_existing_without_overwrite(tmp_path, stack7):
    path = tmp_path / "s.mrc"
    path.write_bytes(b"precious")
    with pytest.raises(FileExistsError, match="already exists; pass overwrite=True"):
        stack7.save(path)
    assert path.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.mrc"]
    stack7.save(path, overwrite=True)
    np.testing.assert_array_equal(tomoalign.load(path).data, stack7.data)


def test_save_refuses_when_the_tilt_companion_exists(tmp_path, stack7):
    (tmp_path / "s.rawtlt").write_text("keep me")
    with pytest.raises(FileExistsError, match=r"s\.rawtlt"):
        stack7.save(tmp_path / "s.mrc")
    assert not (tmp_path / "s.mrc").exists()
    assert (tmp_path / "s.rawtlt").read_text() == "keep me"


def test_save_to_missing_folder(tmp_path, stack7):
    with pytest.raises(FileNotFoundError, match="does not exist; create it first"):
        stack7.save(tmp_path / "nope" / "s.mrc")


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="root ignores modes")
def test_save_to_unwritable_folder(tmp_path, stack7):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(PermissionError, match="is not writable"):
            stack7.save(folder / "s.mrc")
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o700)


def test_save_where_a_file_stands_for_the_folder(tmp_path, stack7):
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(NotADirectoryError, match="is a file, not a folder"):
        stack7.save(tmp_path / "file.txt" / "s.mrc")


def test_save_when_access_is_denied(tmp_path, stack7, monkeypatch):
    # The same check as test_save_to_unwritable_folder, also where tests run as root.
    import tomoalign.formats._atomic as atomic

    monkeypatch.setattr(atomic.os, "access", lambda *args, **kwargs: False)
    with pytest.raises(PermissionError, match="is not writable"):
        stack7.save(tmp_path / "s.mrc")
    assert list(tmp_path.iterdir()) == []


def test_save_unknown_extension(tmp_path, stack7):
    with pytest.raises(ValueError, match=r"unsupported extension '\.png'"):
        stack7.save(tmp_path / "s.png")
    with pytest.raises(ValueError, match=r"unsupported extension '\.dm3'"):
        stack7.save(tmp_path / "s.dm3")
    assert list(tmp_path.iterdir()) == []


def test_failed_save_leaves_nothing(tmp_path, stack7, monkeypatch):
    import tomoalign.signals._save as tio

    def boom(path, data, **kwargs):
        path.write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(tio, "write_mrc", boom)
    with pytest.raises(OSError, match="disk full"):
        stack7.save(tmp_path / "s.mrc")
    assert list(tmp_path.iterdir()) == []


def test_failed_overwrite_keeps_the_old_file(tmp_path, stack7, monkeypatch):
    import tomoalign.signals._save as tio

    path = tmp_path / "s.mrc"
    stack7.save(path)
    before = path.read_bytes()

    def boom(path, data, **kwargs):
        raise RuntimeError("interrupted")

    monkeypatch.setattr(tio, "write_mrc", boom)
    with pytest.raises(RuntimeError):
        stack7.save(path, overwrite=True)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.mrc", "s.rawtlt"]


def test_load_never_changes_values(tmp_path, array7):
    data = (array7 * 3000 - 1500).astype(np.int16)
    tomoalign.TomoStack(data, tilts=np.arange(7)).save(tmp_path / "s.mrc")
    back = tomoalign.load(tmp_path / "s.mrc")
    assert back.data.dtype == np.int16
    np.testing.assert_array_equal(back.data, data)
