import errno
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tomoalign import metrics
from tomoalign.cli import main


def test_info(tmp_path, stack7, capsys):
    stack7.save(tmp_path / "s.mrc")
    assert main(["info", str(tmp_path / "s.mrc"), "--list-tilts"]) == 0
    out = capsys.readouterr().out
    assert "(7, 24, 32)" in out
    assert "-60 .. 60 degrees, 7 angles" in out
    assert "angles:     -60 -40 -20 0 20 40 60" in out


def test_info_missing_file_is_one_line_on_stderr(capsys):
    assert main(["info", "/nonexistent.mrc"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "tomoalign: error: no such file: '/nonexistent.mrc'"


def test_convert_and_overwrite(tmp_path, stack7, capsys):
    stack7.save(tmp_path / "s.mrc")
    out = tmp_path / "s.hspy"
    assert main(["convert", str(tmp_path / "s.mrc"), str(out)]) == 0
    assert main(["convert", str(tmp_path / "s.mrc"), str(out)]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"tomoalign: error: the output {str(out)!r} already exists; add --overwrite to replace "
        "it, or choose another name\n"
    )
    assert main(["convert", str(tmp_path / "s.mrc"), str(out), "--overwrite"]) == 0


def test_warnings_are_one_line(tmp_path, array7, capsys):
    import tomoalign

    tomoalign.TomoStack(array7).save(tmp_path / "s.mrc")
    assert main(["info", str(tmp_path / "s.mrc")]) == 0
    err = capsys.readouterr().err
    assert err.startswith("tomoalign: warning: no tilt angles found")
    assert "Traceback" not in err


def test_demo(capsys):
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "(77, 256, 256)" in out
    assert "3.36 nm" in out
    for method in ("PC", "COM", "COM-CL", "StackReg"):
        assert f"{method} " in out and "aligned in" in out


def test_installed_command_runs():
    exe = Path(sys.executable).parent / "tomoalign"
    if not exe.exists():
        pytest.skip("the tomoalign console script is not on PATH (package not installed)")
    out = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0
    assert "Align electron-tomography tilt series" in out.stdout


def test_align_writes_output_and_shifts(tmp_path, capsys):
    from tomoalign import datasets

    truth = datasets.phantom_series((64, 64), tilts=np.arange(-60, 61, 5))
    moved, true = datasets.misalign(truth, jitter=3, seed=2)
    moved.save(tmp_path / "in.mrc")
    out, shifts = tmp_path / "ali.mrc", tmp_path / "shifts.txt"
    args = ["align", str(tmp_path / "in.mrc"), str(out), "--method", "COM-CL"]
    assert main([*args, "--shifts", str(shifts)]) == 0
    assert "COM-CL: aligned 25 projections" in capsys.readouterr().out
    found = np.loadtxt(shifts)
    assert max(metrics.rms_error(found, true, truth.tilts)) < 0.2
    import tomoalign

    np.testing.assert_allclose(
        tomoalign.load(out).data, tomoalign.apply_shifts(moved.data, found), atol=0.01
    )
    # a second run refuses to overwrite, before doing any work
    assert main(args) == 2
    assert "already exists" in capsys.readouterr().err


def test_align_with_tilt_axis(tmp_path, capsys):
    from tomoalign import datasets

    truth = datasets.phantom_series((64, 64), tilts=np.arange(-60, 61, 4))
    truth.save(tmp_path / "in.mrc")
    args = ["align", str(tmp_path / "in.mrc"), str(tmp_path / "out.hspy"), "--tilt-axis"]
    assert main(args) == 0
    assert "tilt axis:" in capsys.readouterr().out


# -- the input is sacred: refusals before any work ---------------------------------------------
API_WORDS = (
    "overwrite=True",
    "tilts=[",
    "stack.",
    "TomoStack(",
    "tomoalign.load(",
    "np.",
    "inav",
    "data[",
    "data.",
)


@pytest.fixture
def series(tmp_path, stack7, monkeypatch):
    """tmp_path/in.mrc with in.rawtlt beside it, as the working folder."""
    stack7.save(tmp_path / "in.mrc")
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def no_work(monkeypatch):
    """Make loading, aligning and saving fail loudly: a refusal must come before them."""
    import tomoalign
    import tomoalign.io

    def fail(*args, **kwargs):
        raise AssertionError("a refused run loaded, aligned or saved")

    for module, name in (
        (tomoalign, "align_stack"),
        (tomoalign.io, "load"),
        (tomoalign.io, "save"),
    ):
        monkeypatch.setattr(module, name, fail)


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {
        p.name: (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(folder.iterdir())
        if p.is_file() and not p.is_symlink()
    }


def one_error_line(capsys, *, after_work: bool = False) -> str:
    """The only line on stderr; ``after_work``: the warnings of the work done may precede it."""
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    if after_work:
        lines = [line for line in lines if not line.startswith("tomoalign: warning: ")]
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("tomoalign: error: ")
    assert "Traceback" not in captured.err
    assert not any(word in captured.err for word in API_WORDS), captured.err
    return lines[0]


def make_spelling(tmp_path: Path, name: str) -> str:
    """Another name for tmp_path/in.mrc (the working folder is tmp_path)."""
    if name == "symlink":
        os.symlink(tmp_path / "in.mrc", tmp_path / "link.mrc")
        return "link.mrc"
    if name == "hardlink":
        os.link(tmp_path / "in.mrc", tmp_path / "hard.mrc")
        return "hard.mrc"
    if name == "folder symlink":
        os.symlink(tmp_path, tmp_path / "dirlink")
        return "dirlink/in.mrc"
    return {
        "same": "in.mrc",
        "dot": "./in.mrc",
        "absolute": str(tmp_path / "in.mrc"),
        "detour": "sub/../in.mrc",
    }[name]


SPELLINGS = ["same", "dot", "absolute", "detour", "symlink", "hardlink", "folder symlink"]


@pytest.mark.parametrize("command", ["align", "convert"])
@pytest.mark.parametrize("spelling", SPELLINGS)
def test_output_that_is_the_input_is_refused(series, no_work, capsys, command, spelling):
    output = make_spelling(series, spelling)
    before = snapshot(series)
    assert main([command, "in.mrc", output, "--overwrite"]) == 2
    line = one_error_line(capsys)
    assert f"the output {output!r} is the input 'in.mrc'" in line
    assert snapshot(series) == before


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["align", "in.mrc", "in.ali"],
            "the tilt file 'in.rawtlt' written beside the output 'in.ali' is the input's tilt "
            "file 'in.rawtlt'",
        ),
        (
            ["convert", "in.mrc", "sub/../in.tif"],
            "the tilt file 'sub/../in.rawtlt' written beside the output 'sub/../in.tif' is the "
            "input's tilt file 'in.rawtlt'",
        ),
        (
            ["align", "in.mrc", "out.mrc", "--shifts", "./in.rawtlt"],
            "the --shifts file './in.rawtlt' is the input's tilt file 'in.rawtlt'",
        ),
        (
            ["align", "in.mrc", "out.mrc", "--shifts", "in.tlt"],
            "the --shifts file 'in.tlt' is the input's tilt file 'in.tlt'",
        ),
        (
            ["align", "in.mrc", "out.mrc", "--shifts", "in.mrc.mdoc"],
            "the --shifts file 'in.mrc.mdoc' is the input's tilt file 'in.mrc.mdoc'",
        ),
        (
            ["align", "in.mrc", "out.mrc", "--tilts", "angles.txt", "--shifts", "angles.txt"],
            "the --shifts file 'angles.txt' is the --tilts file 'angles.txt'",
        ),
        (
            ["align", "in.mrc", "out.hspy", "--shifts", "in.mrc"],
            "the --shifts file 'in.mrc' is the input 'in.mrc'",
        ),
    ],
)
def test_output_that_is_a_tilt_file_of_the_input_is_refused(series, no_work, capsys, argv, message):
    for name in ("in.tlt", "in.mrc.mdoc", "angles.txt"):
        (series / name).write_text("0\n")
    before = snapshot(series)
    assert main([*argv, "--overwrite"]) == 2
    assert message in one_error_line(capsys)
    assert snapshot(series) == before


def test_output_that_would_shadow_the_input_tilt_file_is_refused(series, no_work, capsys):
    """in.rawtlt beside in.mrc that has in.mdoc would change the tilts loading reads."""
    (series / "in.rawtlt").rename(series / "in.mdoc")
    before = snapshot(series)
    assert main(["convert", "in.mrc", "in.tif"]) == 2
    assert one_error_line(capsys) == (
        "tomoalign: error: the tilt file 'in.rawtlt' written beside the output 'in.tif' is "
        "'in.rawtlt', which loading 'in.mrc' would then read instead of 'in.mdoc'; choose "
        "another output name"
    )
    assert main(["align", "in.mrc", "o.hspy", "--shifts", "in.mrc.mdoc"]) == 2
    assert one_error_line(capsys).endswith(
        "the --shifts file 'in.mrc.mdoc' is 'in.mrc.mdoc', a tilt-file name of the input "
        "'in.mrc' (which has 'in.mdoc'); choose another output name"
    )
    assert snapshot(series) == before


def test_input_without_tilt_file_converts_beside_itself(series, capsys):
    (series / "in.rawtlt").unlink()
    assert main(["convert", "in.mrc", "in.tif", "--tilts", "../in.rawtlt"]) == 2  # no such file
    capsys.readouterr()
    assert main(["convert", "in.mrc", "in.hspy"]) == 0
    assert main(["convert", "in.mrc", "in.tif"]) == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["out.mrc", "--shifts", "out.rawtlt"],
            "the --shifts file 'out.rawtlt' is also the tilt file 'out.rawtlt' written beside "
            "the output 'out.mrc'",
        ),
        (
            ["out.tif", "--shifts", "sub/../out.rawtlt"],
            "the --shifts file 'sub/../out.rawtlt' is also the tilt file 'out.rawtlt' written "
            "beside the output 'out.tif'",
        ),
        (
            ["out.hspy", "--shifts", "./out.hspy"],
            "the --shifts file './out.hspy' is also the output 'out.hspy'",
        ),
    ],
)
def test_two_outputs_with_one_name_are_refused(series, no_work, capsys, argv, message):
    before = snapshot(series)
    assert main(["align", "in.mrc", *argv]) == 2
    assert message in one_error_line(capsys)
    assert snapshot(series) == before


OUTPUT_CHECKS = [
    (
        "out.rawtlt",
        ["out.mrc"],
        "the tilt file 'out.rawtlt' written beside the output 'out.mrc' already exists; "
        "add --overwrite to replace it",
    ),
    ("out.hspy", ["out.hspy"], "the output 'out.hspy' already exists; add --overwrite"),
    (None, ["nofolder/out.mrc"], "the folder 'nofolder' does not exist"),
    (None, ["sub"], "unsupported extension ''"),
    (None, ["out.xyz"], "cannot write 'out.xyz': unsupported extension '.xyz'; use one of"),
    (None, ["out.dm4"], "unsupported extension '.dm4'"),
    (None, ["out.mrc", "--tilts", "none.rawtlt"], "no such tilt file: 'none.rawtlt'"),
]
SHIFTS_CHECK = (
    "s.txt",
    ["out.mrc", "--shifts", "s.txt"],
    "the --shifts file 's.txt' already exists",
)


@pytest.mark.parametrize(
    ("command", "existing", "argv", "message"),
    [("convert", *case) for case in OUTPUT_CHECKS]
    + [("align", *case) for case in [*OUTPUT_CHECKS, SHIFTS_CHECK]],
)
def test_every_output_is_checked_before_work(
    series, no_work, capsys, command, existing, argv, message
):
    if existing:
        (series / existing).write_text("keep\n")
    before = snapshot(series)
    assert main([command, "in.mrc", *argv]) == 2
    assert message in one_error_line(capsys)
    assert snapshot(series) == before


def test_output_folder_that_is_a_file_or_an_output_that_is_a_folder(series, no_work, capsys):
    assert main(["align", "in.mrc", "in.rawtlt/out.mrc"]) == 2
    assert "is a file, not a folder" in one_error_line(capsys)
    (series / "dir.mrc").mkdir()
    assert main(["align", "in.mrc", "dir.mrc", "--overwrite"]) == 2
    assert "it is a folder" in one_error_line(capsys)


def test_read_only_output_folder_is_refused_before_work(series, no_work, monkeypatch, capsys):
    real_access = os.access

    def access(path, mode, *args, **kwargs):  # root may write anywhere: pretend it may not
        if Path(path).name == "sub" and mode & os.W_OK:
            return False
        return real_access(path, mode, *args, **kwargs)

    monkeypatch.setattr(os, "access", access)
    assert main(["align", "in.mrc", "sub/out.mrc"]) == 2
    assert "the folder 'sub' is not writable" in one_error_line(capsys)


def test_missing_input_is_refused_before_work(series, no_work, capsys):
    assert main(["align", "none.mrc", "out.mrc"]) == 2
    assert one_error_line(capsys) == "tomoalign: error: no such file: 'none.mrc'"


# -- OS errors: one line naming the file, exit code 1 -------------------------------------------
@pytest.mark.parametrize(
    ("error", "text"),
    [
        (OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), ".out.tmp-1.mrc"), "(ENOSPC)"),
        (OSError(errno.EROFS, os.strerror(errno.EROFS)), "(EROFS)"),
        (PermissionError(errno.EACCES, os.strerror(errno.EACCES), ".out.tmp-1.mrc"), "(EACCES)"),
        (OSError("device gone"), "device gone"),
        (OSError(errno.EIO, os.strerror(errno.EIO), "in.mrc"), "(EIO) on 'in.mrc'"),
        (OSError(errno.EIO, "bad", ".out.tomoalign-tmp-12-0123456789ab.mrc"), "bad (EIO)"),
    ],
)
@pytest.mark.parametrize("command", ["align", "convert"])
def test_os_error_while_saving_is_one_line_exit_1(
    series, monkeypatch, capsys, error, text, command
):
    import tomoalign.io

    def save(*args, **kwargs):
        raise error

    monkeypatch.setattr(tomoalign.io, "save", save)
    assert main([command, "in.mrc", "out.mrc"]) == 1
    line = one_error_line(capsys, after_work=True)
    assert line.startswith("tomoalign: error: could not write 'out.mrc': ")
    assert line.endswith(text)
    assert not (series / "out.mrc").exists()


def test_os_error_from_the_library_naming_the_file_is_kept(series, monkeypatch, capsys):
    import tomoalign.io

    class PathError(OSError):  # the io layer's one-line OSError
        def __str__(self):
            return str(self.strerror)

    def save(*args, **kwargs):
        raise PathError(
            errno.ENOSPC,
            "no space left on device while writing 'out.mrc', 'out.rawtlt'; nothing was written",
            "out.mrc",
        )

    monkeypatch.setattr(tomoalign.io, "save", save)
    assert main(["convert", "in.mrc", "out.mrc"]) == 1
    assert one_error_line(capsys) == (
        "tomoalign: error: no space left on device while writing 'out.mrc', 'out.rawtlt'; "
        "nothing was written (ENOSPC)"
    )


def test_os_error_on_the_companion_names_it(series, monkeypatch, capsys):
    import tomoalign.io

    def save(*args, **kwargs):
        raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT), "out.rawtlt")

    monkeypatch.setattr(tomoalign.io, "save", save)
    assert main(["convert", "in.mrc", "./out.mrc"]) == 1
    assert one_error_line(capsys) == (
        "tomoalign: error: could not write './out.rawtlt': Disk quota exceeded (EDQUOT)"
    )


def test_full_disk_is_one_line_exit_1(tmp_path, small_disk, tilts7, capsys):
    import tomoalign

    source = tmp_path / "big.mrc"
    tomoalign.TomoStack(np.ones((7, 384, 288), np.float32), tilts=tilts7).save(source)
    before = snapshot(tmp_path)
    assert main(["convert", str(source), str(small_disk / "out.mrc")]) == 1
    line = one_error_line(capsys)
    assert str(small_disk / "out.mrc") in line and line.endswith("(ENOSPC)")
    assert list(small_disk.iterdir()) == []
    assert snapshot(tmp_path) == before


def test_os_error_while_writing_shifts(series, monkeypatch, capsys):
    import tomoalign.cli

    def atomic_write(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(tomoalign.cli, "atomic_write", atomic_write)
    assert main(["align", "in.mrc", "out.hspy", "--shifts", "s.txt"]) == 1
    line = one_error_line(capsys, after_work=True)
    assert line == "tomoalign: error: could not write 's.txt': No space left on device (ENOSPC)"


@pytest.mark.parametrize(
    "error",
    [
        FileExistsError("'out.mrc' already exists; pass overwrite=True to replace it"),
        FileExistsError(errno.EEXIST, "exists", "out.mrc"),
    ],
)
def test_file_that_appears_during_the_run_is_worded_for_the_shell(
    series, monkeypatch, capsys, error
):
    import tomoalign.io

    def save(*args, **kwargs):
        raise error

    monkeypatch.setattr(tomoalign.io, "save", save)
    assert main(["convert", "in.mrc", "out.mrc"]) == 2
    line = one_error_line(capsys)
    assert line.startswith("tomoalign: error: 'out.mrc' already exists; add --overwrite")


def test_interrupt_is_one_line_exit_130(series, monkeypatch, capsys):
    import tomoalign.io

    def load(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(tomoalign.io, "load", load)
    assert main(["info", "in.mrc"]) == 130
    assert one_error_line(capsys) == "tomoalign: error: interrupted"


# -- wording for shell users -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("api", "cli"),
    [
        (
            "'a.mrc' already exists; pass overwrite=True to replace it, or choose another name",
            "'a.mrc' already exists; add --overwrite to replace it, or choose another name",
        ),
        (
            "COM needs the tilt angles, but all tilts are 0. Give the tilt angles in degrees: "
            "TomoStack(data, tilts=...), stack.tilts = ..., or a .rawtlt/.tlt/.mdoc file beside "
            "the data for tomoalign.load",
            "COM needs the tilt angles, but all tilts are 0. Give them with --tilts FILE (.rawtlt,"
            " .tlt or .mdoc), or put such a file beside the data",
        ),
        (
            "tilts from 'a.rawtlt' do not fit 'a.mrc': bad; fix or remove that tilt file, or "
            "pass tilts=[...] explicitly",
            "tilts from 'a.rawtlt' do not fit 'a.mrc': bad; fix or remove that tilt file, or "
            "give --tilts FILE",
        ),
        ("two\n  lines", "two lines"),
    ],
)
def test_cli_wording(api, cli):
    from tomoalign.cli import cli_wording

    assert cli_wording(api) == cli


def test_library_messages_are_reworded(tmp_path):
    """The library's current texts: a change there that escapes the rewording fails here."""
    import tomoalign
    from tomoalign._validation import (
        check_series_array,
        constant_error,
        nonfinite_error,
        require_tilts,
    )
    from tomoalign.cli import cli_wording
    from tomoalign.formats._atomic import check_writable

    (tmp_path / "a.mrc").write_bytes(b"")
    messages = [str(constant_error([1, 2])), str(nonfinite_error([0, 3]))]
    for call in (
        lambda: check_writable(tmp_path / "a.mrc", overwrite=False),
        lambda: require_tilts(np.zeros(3), 3, method="COM"),
        lambda: require_tilts(None, 3, method="COM"),
        lambda: check_series_array(np.zeros((4, 4)), what="the data in 'a.mrc'"),
        lambda: check_series_array(np.zeros((2, 3, 4, 4)), what="the data in 'a.mrc'"),
        lambda: check_series_array(np.zeros((3, 4, 4), complex), what="the data in 'a.mrc'"),
    ):
        with pytest.raises((ValueError, TypeError, OSError)) as info:
            call()
        messages.append(str(info.value))
    with pytest.warns(UserWarning) as record:
        tomoalign.TomoStack(np.ones((3, 4, 4), np.float32)).save(tmp_path / "b.mrc")
        tomoalign.load(tmp_path / "b.mrc")
    messages += [str(w.message) for w in record]
    for message in messages:
        reworded = cli_wording(message)
        assert not any(word in reworded for word in API_WORDS), reworded


def test_missing_tilts_warn_once_in_cli_words(tmp_path, array7, capsys):
    import tomoalign

    tomoalign.TomoStack(array7).save(tmp_path / "s.mrc")
    assert main(["info", str(tmp_path / "s.mrc")]) == 0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"tomoalign: warning: no tilt angles found for {str(tmp_path)!r}"[:40])
    assert err[0].endswith("Give them with --tilts FILE.")
    assert not any(word in err[0] for word in API_WORDS)


def test_com_without_tilts_says_tilts_option(tmp_path, array7, capsys):
    import tomoalign

    tomoalign.TomoStack(array7).save(tmp_path / "s.mrc")
    assert main(["align", str(tmp_path / "s.mrc"), str(tmp_path / "o.mrc"), "--method", "com"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("tomoalign: warning: no tilt angles found")
    assert len(err) == 2 and err[1].startswith("tomoalign: error: COM")
    assert "needs the tilt angles" in err[1]
    assert "--tilts FILE" in err[1]
    assert not any(word in "\n".join(err) for word in API_WORDS)


def test_tilt_file_that_does_not_fit_says_tilts_option(series, capsys):
    (series / "in.rawtlt").write_text("0\n10\n")
    assert main(["info", "in.mrc"]) == 2
    line = one_error_line(capsys)
    assert "do not fit" in line and line.endswith("give --tilts FILE")


def test_warnings_are_shown_once_each(series, monkeypatch, capsys):
    import warnings

    import tomoalign

    def align_stack(stack, method, **kwargs):
        warnings.warn("the same thing; set stack.tilts = ... first", UserWarning, stacklevel=1)
        warnings.warn("the same thing; set stack.tilts = ... first", UserWarning, stacklevel=1)
        warnings.warn("another thing", RuntimeWarning, stacklevel=1)
        return stack

    monkeypatch.setattr(tomoalign, "align_stack", align_stack)
    assert main(["align", "in.mrc", "out.hspy"]) == 0
    assert capsys.readouterr().err.splitlines() == [
        "tomoalign: warning: the same thing; --tilts FILE first",
        "tomoalign: warning: another thing",
    ]


@pytest.mark.parametrize("accepts", [True, False])
def test_tilt_axis_warnings_and_progress(series, monkeypatch, capsys, accepts):
    import warnings

    from tomoalign.signals.tilt_series import TiltSeries

    seen = {}

    def correct(self):
        warnings.warn("axis offset looks implausible", UserWarning, stacklevel=1)
        warnings.warn("axis offset looks implausible", UserWarning, stacklevel=1)
        out = self.deepcopy()
        out.metadata.set_item("Tomography.tiltaxis", 1.5)
        out.metadata.set_item("Tomography.yshift", -2.25)
        return out

    if accepts:

        def tilt_align(self, method="auto", *, show_progressbar=False):
            seen["show_progressbar"] = show_progressbar
            return correct(self)

    else:

        def tilt_align(self, method="auto"):
            seen["show_progressbar"] = None
            return correct(self)

    monkeypatch.setattr(TiltSeries, "tilt_align", tilt_align)
    assert main(["align", "in.mrc", "out.hspy", "--tilt-axis", "--progress"]) == 0
    assert seen == {"show_progressbar": True if accepts else None}
    captured = capsys.readouterr()
    assert "tilt axis: +1.50 degrees, offset -2.25 px (corrected)" in captured.out
    ours = [line for line in captured.err.splitlines() if line.startswith("tomoalign")]
    assert ours == ["tomoalign: warning: axis offset looks implausible"]  # (+ progress bars)


# -- options -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("given", "method"),
    [
        ("pc", "PC"),
        ("Pc", "PC"),
        ("com", "COM"),
        ("com-cl", "COM-CL"),
        ("COM_CL", "COM-CL"),
        ("stackreg", "StackReg"),
        ("STACK_REG", "StackReg"),
    ],
)
def test_method_in_any_case(given, method):
    from tomoalign.cli import build_parser

    args = build_parser().parse_args(["align", "a.mrc", "b.mrc", "--method", given])
    assert args.method == method


def test_unknown_method_is_one_line_listing_the_methods(capsys):
    assert main(["align", "a.mrc", "b.mrc", "--method", "xcorr"]) == 2
    line = one_error_line(capsys)
    assert "invalid choice: 'xcorr'" in line and "'PC', 'COM', 'COM-CL', 'StackReg'" in line


def test_help_lists_canonical_methods_and_exit_codes(capsys):
    assert main(["align", "--help"]) == 0
    assert "PC, COM, COM-CL, StackReg (any case" in " ".join(capsys.readouterr().out.split())
    assert main(["--help"]) == 0
    assert "Exit codes: 0 done, 1 system error" in " ".join(capsys.readouterr().out.split())


def test_usage_errors_are_one_line(capsys):
    assert main(["align", "a.mrc"]) == 2
    assert "the following arguments are required: output" in one_error_line(capsys)
    assert main([]) == 2
    one_error_line(capsys)


def test_align_with_lowercase_method(series, capsys):
    assert main(["align", "in.mrc", "out.mrc", "--method", "com-cl"]) == 0
    assert "COM-CL: aligned 7 projections" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("voxel", "expected"), [(0.0, "unknown"), (1.0, "unknown"), (3.3, "0.33 nm")]
)
def test_info_pixel_size(tmp_path, capsys, voxel, expected):
    import mrcfile

    path = tmp_path / "v.mrc"
    with mrcfile.new(path) as mrc:
        mrc.set_data(np.zeros((3, 8, 8), np.float32))
        mrc.voxel_size = voxel
    (tmp_path / "v.rawtlt").write_text("-10\n0\n10\n")
    assert main(["info", str(path)]) == 0
    assert f"pixel size: {expected}\n" in capsys.readouterr().out


@pytest.mark.parametrize("accepts", [True, False])
def test_progress_is_passed_only_where_accepted(series, monkeypatch, accepts):
    import tomoalign.io

    calls = {}
    real_load, real_save = tomoalign.io.load, tomoalign.io.save

    if accepts:

        def load(path, tilts=None, lazy=False, show_progressbar=False):
            calls["load"] = show_progressbar
            return real_load(path, tilts=tilts, lazy=lazy)

        def save(signal, path, overwrite=False, show_progressbar=False, **kwargs):
            calls["save"] = show_progressbar
            return real_save(signal, path, overwrite=overwrite)

    else:

        def load(path, tilts=None, lazy=False):
            calls["load"] = None
            return real_load(path, tilts=tilts, lazy=lazy)

        def save(signal, path, overwrite=False, **kwargs):
            assert "show_progressbar" not in kwargs
            calls["save"] = None
            return real_save(signal, path, overwrite=overwrite)

    monkeypatch.setattr(tomoalign.io, "load", load)
    monkeypatch.setattr(tomoalign.io, "save", save)
    assert main(["convert", "in.mrc", "out.hspy", "--progress"]) == 0
    assert calls == ({"load": True, "save": True} if accepts else {"load": None, "save": None})


def test_installed_command_refuses_to_replace_the_input(series):
    before = snapshot(series)
    commands = [[sys.executable, "-m", "tomoalign.cli"]]
    exe = Path(sys.executable).parent / "tomoalign"
    if exe.exists():
        commands.append([str(exe)])
    for command in commands:
        out = subprocess.run(
            [*command, "align", "in.mrc", "./in.mrc", "--overwrite"],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=series,
        )
        assert out.returncode == 2
        assert out.stderr == (
            "tomoalign: error: the output './in.mrc' is the input 'in.mrc'; an input is never "
            "replaced: choose another output name\n"
        )
        assert out.stdout == ""
    assert snapshot(series) == before
