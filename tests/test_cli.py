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
    assert "already exists; pass overwrite=True" in capsys.readouterr().err
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
