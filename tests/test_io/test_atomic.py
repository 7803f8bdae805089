"""Saves that fail cleanly: no partial output and no temporary file, whatever goes wrong."""

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import tomoalign
from tomoalign.formats._atomic import (
    TEMPORARY_PATTERN,
    atomic_write,
    remove_stale_temporaries,
    temporary_name,
)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture
def big7(tilts7):
    """3 MB of float32: more than the small disk holds."""
    return tomoalign.TomoStack(np.ones((7, 384, 288), np.float32), tilts=tilts7)


def test_temporary_names_match_the_pattern(tmp_path):
    tmp = temporary_name(tmp_path / "rec.mrc")
    assert tmp.parent == tmp_path and tmp.suffix == ".mrc"
    match = TEMPORARY_PATTERN.match(tmp.name)
    assert match and int(match["pid"]) == os.getpid()
    assert not TEMPORARY_PATTERN.match("rec.mrc")
    assert not TEMPORARY_PATTERN.match(".rec.tmp-0123456789ab.mrc")


def test_a_failing_writer_leaves_nothing(tmp_path):
    def writer(tmp):
        tmp.write_bytes(b"partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "x.mrc", writer, overwrite=False)
    assert list(tmp_path.iterdir()) == []


def test_stale_temporaries_of_dead_processes_are_removed(tmp_path, stack7):
    dead = tmp_path / f".s.tomoalign-tmp-{_dead_pid()}-0123456789ab.mrc"
    live = tmp_path / f".s.tomoalign-tmp-{os.getpid()}-0123456789ab.mrc"
    others = [tmp_path / ".s.tmp-0123456789ab.mrc", tmp_path / "keep.mrc"]
    for path in (dead, live, *others):
        path.write_bytes(b"x")
    folder = tmp_path / f".d.tomoalign-tmp-{_dead_pid()}-0123456789ab.mrc"
    folder.mkdir()  # not a file: left alone
    stack7.save(tmp_path / "out.mrc")
    assert not dead.exists()
    assert live.exists() and folder.exists() and all(p.exists() for p in others)
    assert remove_stale_temporaries(tmp_path) == []


def test_existing_file_error_carries_the_path(tmp_path, stack7):
    path = tmp_path / "s.mrc"
    stack7.save(path)
    with pytest.raises(FileExistsError) as info:
        stack7.save(path)
    assert info.value.errno == errno.EEXIST
    assert info.value.filename == str(path)
    assert str(info.value) == f"{str(path)!r} already exists; pass overwrite=True to replace " + (
        "it, or choose another name"
    )


@pytest.mark.parametrize("suffix", [".mrc", ".tif", ".hspy"])
def test_full_disk(small_disk, big7, lazy, suffix):
    stack = big7.as_lazy() if lazy else big7
    target = small_disk / f"s{suffix}"
    with pytest.raises(
        OSError, match=r"no space left on device (while writing|for) '.*s\."
    ) as info:
        stack.save(target)
    assert info.value.errno == errno.ENOSPC
    assert "\n" not in str(info.value)
    assert list(small_disk.iterdir()) == []  # no partial output, no temporary
    stack.inav[:1].isig[:16, :16].save(target)  # a small one still fits
    assert target.is_file()


def test_read_only_folder(tmp_path, stack7):
    if os.geteuid() != 0:
        pytest.skip("mounting needs root")
    folder = tmp_path / "ro"
    folder.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)])
    if done.returncode:
        pytest.skip("cannot mount a read-only tmpfs here")
    try:
        with pytest.raises(PermissionError, match=r"ro' is not writable"):
            stack7.save(folder / "s.mrc")
        assert list(folder.iterdir()) == []
    finally:
        subprocess.run(["umount", str(folder)], check=False)


_SAVER = """
import sys, numpy as np, dask.array as da, tomoalign
data = da.ones((int(sys.argv[2]), 1024, 1024), dtype=np.float32, chunks=(4, -1, -1))
stack = tomoalign.LazyTomoStack(data, tilts=np.linspace(-60, 60, data.shape[0]))
stack.save(sys.argv[1])
"""


def _kill_while_writing(target: Path, n: int, delay: float) -> bool:
    """Start a save of `(n, 1024, 1024)` float32; SIGKILL it ``delay`` s into the writing."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen([sys.executable, "-c", _SAVER, str(target), str(n)], env=env)
    try:
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            if any(TEMPORARY_PATTERN.match(p.name) for p in target.parent.iterdir()):
                break
            time.sleep(0.005)
        time.sleep(delay)
        alive = proc.poll() is None
        if alive:
            proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    return alive


def test_killed_save_leaves_no_output_and_the_next_save_cleans_up(tmp_path):
    target = tmp_path / "big.mrc"
    killed = 0
    for delay in np.random.default_rng(0).uniform(0.0, 0.3, size=3):
        killed += _kill_while_writing(target, 40, delay)
        if target.exists():  # the save finished before the kill: it must be complete
            assert target.stat().st_size == 1024 + 40 * 1024 * 1024 * 4
            target.unlink()
            target.with_suffix(".rawtlt").unlink()
        assert not target.with_suffix(".rawtlt").exists()
    assert killed >= 2
    stale = [p for p in tmp_path.iterdir() if TEMPORARY_PATTERN.match(p.name)]
    assert 1 <= len(stale) <= killed
    tomoalign.TomoStack(np.ones((3, 8, 8), np.float32)).save(tmp_path / "next.mrc")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["next.mrc"]


@pytest.mark.parametrize("suffix", [".hspy", ".tif"])
def test_filename_after_save_names_the_final_file(tmp_path, stack7, suffix):
    path = tmp_path / f"out{suffix}"
    stack7.save(path)
    tp = stack7.tmp_parameters
    assert (tp.filename, tp.extension) == ("out", suffix)
    assert Path(tp.folder) == tmp_path.resolve()
    assert "tomoalign-tmp" not in str(stack7.metadata.as_dictionary())


def test_filename_is_restored_after_a_failed_save(tmp_path, stack7, monkeypatch):
    from hyperspy.signal import BaseSignal

    stack7.save(tmp_path / "first.hspy")
    real = BaseSignal.save

    def failing(self, filename, *args, **kwargs):
        real(self, filename, *args, **kwargs)
        raise OSError(errno.EIO, "simulated failure")

    monkeypatch.setattr(BaseSignal, "save", failing)
    with pytest.raises(OSError, match="simulated"):
        stack7.save(tmp_path / "second.hspy")
    assert stack7.tmp_parameters.filename == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["first.hspy"]


def test_a_file_that_appears_during_the_write_is_not_replaced(tmp_path):
    first, second = tmp_path / "a.mrc", tmp_path / "a.rawtlt"

    def writer(tmp, tmp_tilts):
        tmp.write_bytes(b"new")
        tmp_tilts.write_bytes(b"new")
        second.write_bytes(b"someone else's")  # appears after the check

    with pytest.raises(FileExistsError, match=r"a\.rawtlt' already exists") as info:
        atomic_write([first, second], writer, overwrite=False)
    assert info.value.filename == str(second)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.rawtlt"]  # a.mrc rolled back
    assert second.read_bytes() == b"someone else's"


def test_errors_pickle_and_show_standard_names(tmp_path, stack7):
    import pickle

    stack7.save(tmp_path / "s.mrc")
    with pytest.raises(FileExistsError) as info:
        stack7.save(tmp_path / "s.mrc")
    assert type(info.value).__name__ == "FileExistsError"
    back = pickle.loads(pickle.dumps(info.value))
    assert isinstance(back, FileExistsError) and back.filename == str(tmp_path / "s.mrc")
