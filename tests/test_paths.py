import os
from pathlib import Path

import pytest

from tomoalign._paths import (
    PathConflictError,
    Role,
    check_no_clobber,
    same_file,
    tilt_companions,
    tilt_file_names,
)
from tomoalign.formats._tilts import find_tilt_file


@pytest.fixture
def tree(tmp_path, monkeypatch):
    (tmp_path / "in.mrc").write_bytes(b"data")
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


def spellings(tmp_path: Path) -> dict[str, Path]:
    """Ways to name tmp_path/in.mrc; links are made here."""
    os.symlink(tmp_path / "in.mrc", tmp_path / "symlink.mrc")
    os.link(tmp_path / "in.mrc", tmp_path / "hardlink.mrc")
    os.symlink(tmp_path, tmp_path / "dirlink")
    return {
        "same": Path("in.mrc"),
        "dot": Path("./in.mrc"),
        "absolute": tmp_path / "in.mrc",
        "detour": Path("sub/../in.mrc"),
        "symlink": Path("symlink.mrc"),
        "hardlink": Path("hardlink.mrc"),
        "folder symlink": Path("dirlink/in.mrc"),
    }


def test_same_file_every_spelling(tree):
    for name, path in spellings(tree).items():
        assert same_file("in.mrc", path), name
    assert not same_file("in.mrc", "sub/in.mrc")


def test_same_file_when_neither_exists(tree):
    assert same_file("new.mrc", "./sub/../new.mrc")
    assert same_file("new.mrc", tree / "new.mrc")
    assert not same_file("new.mrc", "new.rawtlt")


@pytest.mark.parametrize("name", ["in.rawtlt", "in.tlt", "in.mdoc", "in.mrc.mdoc"])
def test_tilt_companions_include_what_loading_finds(tree, name):
    (tree / name).write_text("0\n")
    found = find_tilt_file(tree / "in.mrc")
    assert found is not None and found.name == name
    assert found in tilt_companions(tree / "in.mrc")


def test_tilt_companions_lists_all_existing(tree):
    for name in ("in.rawtlt", "in.tlt", "in.mrc.mdoc"):
        (tree / name).write_text("0\n")
    assert [p.name for p in tilt_companions(tree / "in.mrc")] == [
        "in.rawtlt",
        "in.tlt",
        "in.mrc.mdoc",
    ]
    assert tilt_companions(tree / "sub" / "none.mrc") == []


def test_check_no_clobber_names_both_paths(tree):
    inputs = [Role(Path("in.mrc"), "the input {path}")]
    with pytest.raises(
        PathConflictError, match=r"the output 'sub/../in.mrc' is the input 'in.mrc'"
    ):
        check_no_clobber(inputs, [Role(Path("sub/../in.mrc"), "the output {path}")])
    outputs = [Role(Path("a.mrc"), "the output {path}"), Role(Path("./a.mrc"), "the copy {path}")]
    with pytest.raises(PathConflictError, match=r"the copy 'a.mrc' is also the output 'a.mrc'"):
        check_no_clobber(inputs, outputs)
    check_no_clobber(inputs, [Role(Path("b.mrc"), "the output {path}")])


def test_tilt_file_names_in_the_order_loading_looks(tree):
    names = tilt_file_names(tree / "in.mrc")
    assert [p.name for p in names] == ["in.rawtlt", "in.tlt", "in.mdoc", "in.mrc.mdoc"]
    for name in names:
        name.write_text("0\n")
    for name in names:
        assert find_tilt_file(tree / "in.mrc") == name
        name.unlink()
    assert find_tilt_file(tree / "in.mrc") is None


def test_role_label_keeps_the_spelling():
    assert Role("./a/../b.mrc", "the output {path}").describe() == "the output './a/../b.mrc'"
    assert Role(Path("x.tlt"), "{path}, a tilt file", fix="rename").fix == "rename"
