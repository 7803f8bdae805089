"""Tiny shared fixtures: small synthetic tilt series and paths to the shared real data."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def tilts7() -> np.ndarray:
    return np.linspace(-60.0, 60.0, 7)


@pytest.fixture
def array7(tilts7: np.ndarray) -> np.ndarray:
    """A (7, 24, 32) float32 series with distinct content in every projection."""
    rng = np.random.default_rng(7)
    return rng.random((tilts7.size, 24, 32), dtype=np.float32)


@pytest.fixture
def stack7(array7: np.ndarray, tilts7: np.ndarray):
    import tomoalign

    return tomoalign.TomoStack(array7, tilts=tilts7)


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared real data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs (needs root and mount permission; skipped otherwise)."""
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    folder = tmp_path / "small"
    folder.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(folder)], capture_output=True
    )
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield folder
    subprocess.run(["umount", str(folder)], check=False)
