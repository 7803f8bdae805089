"""Readers refuse bad files early, with one-line messages that name the file."""

import time
import tracemalloc

import mrcfile
import numpy as np
import pytest

import tomoalign
from tomoalign.formats._tilts import MAX_TILT_FILE_BYTES, read_mdoc, read_tilt_file


@pytest.fixture
def mrc_path(tmp_path):
    path = tmp_path / "s.mrc"
    with mrcfile.new(path) as mrc:
        mrc.set_data(np.arange(5 * 16 * 16, dtype=np.float32).reshape(5, 16, 16))
        mrc.voxel_size = 3.4
    return path


def _poke(path, offset, value, dtype="<i4"):
    raw = bytearray(path.read_bytes())
    raw[offset : offset + 4] = np.array([value], dtype).tobytes()
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize(
    ("offset", "value", "match"),
    [
        (0, -5, r"nx=-5"),
        (4, 0, r"ny=0"),
        (8, 2**31 - 1, r"header promises \d+ bytes"),
        (0, 2**31 - 1, r"header promises \d+ bytes"),
        (92, 2**31 - 1, r"1024 header \+ 2147483647 extended header"),
        (92, -7, r"nsymbt=-7 is negative"),
        (12, 7, r"mode is 7"),
    ],
)
def test_bad_header_fields_are_refused_quickly(mrc_path, offset, value, match, lazy):
    _poke(mrc_path, offset, value)
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(ValueError, match=r"s\.mrc.*not a readable MRC file.*" + match):
            tomoalign.load(mrc_path, lazy=lazy)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - start < 2
    assert peak < 50 * 2**20  # nothing sized by the header was allocated


def test_complex_mode_is_a_value_error(mrc_path):
    _poke(mrc_path, 12, 4)
    _poke(mrc_path, 0, 8)  # 8 x 16 x 5 complex64 = the same bytes as 16 x 16 x 5 float32
    with pytest.raises(ValueError, match=r"s\.mrc.*complex numbers \(MRC mode 4\)"):
        tomoalign.load(mrc_path)


def test_volume_stack_with_zero_mz(mrc_path):
    _poke(mrc_path, 88, 401)  # ispg: a volume stack
    _poke(mrc_path, 36, 0)  # mz
    with pytest.raises(ValueError, match=r"s\.mrc.*mz=0"):
        tomoalign.load(mrc_path)


def test_trailing_bytes_warn_naming_the_file(mrc_path):
    with open(mrc_path, "ab") as f:
        f.write(b"\0" * 100)
    with pytest.warns(UserWarning, match=r"s\.mrc' is 100 bytes larger than its header says"):
        stack = tomoalign.load(mrc_path, tilts=np.zeros(5))
    assert stack.data.shape == (5, 16, 16)


def test_permissive_reasons_reach_the_user(mrc_path):
    raw = bytearray(mrc_path.read_bytes())
    raw[208:212] = b"XXXX"  # no MAP identifier
    raw[212:216] = b"\x99\x99\x00\x00"  # unknown machine stamp
    mrc_path.write_bytes(bytes(raw))
    with pytest.warns(UserWarning) as record:
        tomoalign.load(mrc_path, tilts=np.zeros(5))
    text = " ".join(str(w.message) for w in record)
    assert "s.mrc" in text and "permissive mode" in text
    assert "Map ID string not found" in text and "machine stamp" in text.lower()


def test_rawtlt_with_undecodable_bytes(tmp_path):
    path = tmp_path / "a.rawtlt"
    path.write_bytes(b"10\n\xff\xfe20\n")
    with pytest.raises(ValueError, match=r"a\.rawtlt' is not text"):
        read_tilt_file(path)


@pytest.mark.parametrize("bad", ["-90", "90.5", "1e308", "nan", "-inf"])
def test_tilts_outside_range_are_refused(tmp_path, bad):
    path = tmp_path / "a.tlt"
    path.write_text(f"10\n{bad}\n")
    with pytest.raises(ValueError, match=r"entry 2 of 2\) in '.*a\.tlt' is outside \(-90, 90\]"):
        read_tilt_file(path)


def test_plus_90_is_accepted(tmp_path):
    path = tmp_path / "a.tlt"
    path.write_text("-89.99\n90\n")
    np.testing.assert_array_equal(read_tilt_file(path), [-89.99, 90])


def test_mdoc_tilt_out_of_range_on_load(tmp_path, mrc_path):
    (tmp_path / "s.mdoc").write_text(
        "".join(f"[ZValue = {i}]\nTiltAngle = {t}\n\n" for i, t in enumerate([0, 1, 2, 3, 180]))
    )
    with pytest.raises(ValueError, match=r"tilt angle 180 .*s\.mdoc"):
        tomoalign.load(mrc_path)


def test_bad_mdoc_is_one_line(tmp_path):
    path = tmp_path / "x.mdoc"
    path.write_text("PixelSpacing = 5\n\n[ZValue = 0]\nTiltAngle = abc\n")
    with pytest.raises(ValueError, match=r"x\.mdoc' as a SerialEM \.mdoc: .*TiltAngle") as info:
        read_mdoc(path)
    assert "\n" not in str(info.value)


def test_huge_mdoc_is_refused_before_parsing(tmp_path):
    path = tmp_path / "x.mdoc"
    with open(path, "wb") as f:
        f.truncate(MAX_TILT_FILE_BYTES + 1)  # sparse: costs no disk
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"x\.mdoc' is 16\.0 MiB; tilt files over 16 MiB"):
        read_mdoc(path)
    assert time.perf_counter() - start < 1


def test_tilt_file_that_is_a_folder(tmp_path):
    (tmp_path / "d.rawtlt").mkdir()
    with pytest.raises(IsADirectoryError, match=r"d\.rawtlt' is a folder"):
        read_tilt_file(tmp_path / "d.rawtlt")
