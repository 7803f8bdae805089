import shutil

import numpy as np
import pytest

import tomoalign
from tomoalign.formats._tilts import find_tilt_file, read_mdoc, read_tilt_file, write_tilt_file


def test_tilt_file_round_trip(tmp_path, tilts7):
    path = tmp_path / "a.tlt"
    write_tilt_file(path, tilts7 + 0.123)
    np.testing.assert_allclose(read_tilt_file(path), tilts7 + 0.123, atol=1e-4)


def test_tilt_file_with_blank_lines_and_comments(tmp_path):
    path = tmp_path / "a.rawtlt"
    path.write_text("# angles\n -60.0\n\n 0\n  60  \n")
    np.testing.assert_array_equal(read_tilt_file(path), [-60, 0, 60])


def test_tilt_file_bad_line(tmp_path):
    path = tmp_path / "a.rawtlt"
    path.write_text("-60\nabc\n")
    with pytest.raises(ValueError, match=r"line 2: 'abc' is not a tilt angle"):
        read_tilt_file(path)


def test_empty_tilt_file(tmp_path):
    path = tmp_path / "a.rawtlt"
    path.write_text("\n")
    with pytest.raises(ValueError, match="holds no angle"):
        read_tilt_file(path)


def test_missing_tilt_file():
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_tilt_file("/nonexistent/x.tlt")


def test_real_mdoc(shared_data):
    info = read_mdoc(shared_data / "serialem_multitilt" / "test_000.mdoc")
    np.testing.assert_allclose(info.tilts, [-0.000488, -0.000488])
    assert info.pixel_size_nm == pytest.approx(0.788)
    assert info.tilt_axis_angle == -90.0


def test_mdoc_without_tilts(tmp_path):
    path = tmp_path / "x.mdoc"
    path.write_text("PixelSpacing = 5\n\n[ZValue = 0]\nExposureTime = 1\n")
    with pytest.raises(ValueError, match="no TiltAngle"):
        read_mdoc(path)


@pytest.mark.parametrize("name", ["s.rawtlt", "s.tlt", "s.mdoc", "s.mrc.mdoc"])
def test_discovery_finds_each_kind(tmp_path, name):
    (tmp_path / name).write_text("0\n")
    assert find_tilt_file(tmp_path / "s.mrc") == tmp_path / name


def test_discovery_order_prefers_rawtlt(tmp_path):
    for name in ("s.tlt", "s.rawtlt", "s.mdoc"):
        (tmp_path / name).write_text("0\n")
    assert find_tilt_file(tmp_path / "s.mrc").name == "s.rawtlt"
    assert find_tilt_file(tmp_path / "other.mrc") is None


def test_load_discovers_tilts_beside_the_file(tmp_path, stack7, tilts7):
    stack7.save(tmp_path / "s.mrc")
    (tmp_path / "s.rawtlt").rename(tmp_path / "s.tlt")
    np.testing.assert_allclose(tomoalign.load(tmp_path / "s.mrc").tilts, tilts7)


def test_load_discovers_mdoc(tmp_path, shared_data):
    src = shared_data / "serialem_multitilt"
    shutil.copy(src / "test_000.mrc", tmp_path / "t.mrc")
    shutil.copy(src / "test_000.mdoc", tmp_path / "t.mrc.mdoc")
    stack = tomoalign.load(tmp_path / "t.mrc")
    assert stack.axes_manager.signal_axes[0].scale == pytest.approx(0.788)


def test_load_with_explicit_tilt_file_and_array(tmp_path, stack7, tilts7):
    stack7.save(tmp_path / "s.mrc")
    other = tmp_path / "other.tlt"
    write_tilt_file(other, tilts7 + 1)
    np.testing.assert_allclose(tomoalign.load(tmp_path / "s.mrc", tilts=other).tilts, tilts7 + 1)
    np.testing.assert_allclose(
        tomoalign.load(tmp_path / "s.mrc", tilts=tilts7 * 0.5).tilts, tilts7 * 0.5
    )


def test_tilt_count_mismatch_names_the_source(tmp_path, stack7):
    stack7.save(tmp_path / "s.mrc")
    (tmp_path / "s.rawtlt").write_text("1\n2\n3\n")
    with pytest.raises(ValueError, match=r"s\.rawtlt.*got 3 tilt angle\(s\) for 7 projection"):
        tomoalign.load(tmp_path / "s.mrc")
    with pytest.raises(ValueError, match=r"the tilts argument.*got 2 tilt angle"):
        tomoalign.load(tmp_path / "s.mrc", tilts=[1, 2])


def test_no_tilts_warns_how_to_give_them(tmp_path, array7):
    tomoalign.TomoStack(array7).save(tmp_path / "s.mrc")
    assert not (tmp_path / "s.rawtlt").exists()  # no tilts, no tilt file
    with pytest.warns(UserWarning, match=r"no tilt angles found.*tilts="):
        stack = tomoalign.load(tmp_path / "s.mrc")
    assert not stack.has_tilts
