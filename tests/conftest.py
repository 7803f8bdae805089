"""Shared fixtures: array backends, eager/lazy, small synthetic series with known truth.

* ``xp``: NumPy, and CuPy where it imports and sees a GPU (skipped with a reason otherwise).
* ``lazy``: ``False`` (eager) and ``True`` (lazy, ``TiltSeries.as_lazy()``).
* ``phantom``, ``misaligned``: :func:`tomoalign.datasets.phantom_series` (and
  :func:`~tomoalign.datasets.misalign` of it) built once per session for each set of
  arguments; every call hands out a deep copy, so a test may modify what it gets.
* ``projections``, ``shifted_projections``: the same for the arrays of
  :func:`tomoalign.simulate.phantom_projections` (moved by
  :func:`~tomoalign.simulate.random_misalignment` with :func:`~tomoalign.shifts.apply_shifts`).
* ``tilts7``, ``array7``, ``stack7``: a tiny random series (no ground truth).

The hook at the end skips the docstring examples that need astra-toolbox where it is missing
(``pyproject.toml`` collects the examples under ``src/tomoalign`` with ``--doctest-modules``).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tomoalign._backend import cupy_available

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

# --- backends and modes ------------------------------------------------------------------------


@pytest.fixture(
    params=[
        "numpy",
        pytest.param(
            "cupy",
            marks=pytest.mark.skipif(not cupy_available(), reason="CuPy with a GPU not available"),
        ),
    ]
)
def xp(request):
    """The array module: ``numpy``, then ``cupy`` (skipped without CuPy and a GPU)."""
    if request.param == "numpy":
        return np
    import cupy

    return cupy


@pytest.fixture(params=[False, True], ids=["eager", "lazy"])
def lazy(request) -> bool:
    """Whether the series under test is lazy (``as_lazy()``) or eager."""
    return request.param


# --- synthetic series with known truth (built once per session, copies handed out) -----------


def _key(shape: Any, tilts: Any, kwargs: dict[str, Any]) -> tuple:
    tilts_key = None if tilts is None else tuple(np.asarray(tilts, dtype=float).ravel().tolist())
    return tuple(shape), tilts_key, tuple(sorted(kwargs.items()))


@pytest.fixture(scope="session")
def phantom() -> Callable[..., Any]:
    """``phantom(shape, tilts, **kwargs)``: a copy of ``datasets.phantom_series(...)``."""
    from tomoalign import datasets

    built: dict[tuple, Any] = {}

    def make(shape: tuple[int, int], tilts: Any = None, **kwargs: Any) -> Any:
        key = _key(shape, tilts, kwargs)
        if key not in built:
            built[key] = datasets.phantom_series(shape, tilts=tilts, **kwargs)
        return built[key].deepcopy()

    return make


@pytest.fixture(scope="session")
def misaligned(phantom) -> Callable[..., tuple[Any, np.ndarray]]:
    """``misaligned(shape, tilts, *, jitter, seed, drift=0, phantom_seed=0, **kwargs)``.

    ``datasets.misalign(phantom(shape, tilts, seed=phantom_seed, **kwargs), jitter, drift,
    seed)``: a copy of the moved series and of the applied (true) shifts.
    """
    from tomoalign import datasets

    built: dict[tuple, tuple[Any, np.ndarray]] = {}

    def make(
        shape: tuple[int, int],
        tilts: Any = None,
        *,
        jitter: float,
        seed: int,
        drift: float = 0.0,
        phantom_seed: int = 0,
        **kwargs: Any,
    ) -> tuple[Any, np.ndarray]:
        key = _key(shape, tilts, {**kwargs, "phantom_seed": phantom_seed}), jitter, drift, seed
        if key not in built:
            truth = phantom(shape, tilts, seed=phantom_seed, **kwargs)
            built[key] = datasets.misalign(truth, jitter=jitter, drift=drift, seed=seed)
        moved, true = built[key]
        return moved.deepcopy(), true.copy()

    return make


@pytest.fixture(scope="session")
def projections() -> Callable[..., np.ndarray]:
    """``projections(shape, tilts, **kwargs)``: a copy of ``phantom_projections(...)``."""
    from tomoalign.simulate import phantom_projections

    built: dict[tuple, np.ndarray] = {}

    def make(shape: tuple[int, int], tilts: Any, **kwargs: Any) -> np.ndarray:
        key = _key(shape, tilts, kwargs)
        if key not in built:
            built[key] = phantom_projections(shape, tilts, **kwargs)
        return built[key].copy()

    return make


@pytest.fixture(scope="session")
def shifted_projections(projections) -> Callable[..., tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``shifted_projections(shape, tilts, *, jitter, shift_seed, **kwargs)``.

    ``(clean, moved, true)``: ``clean = phantom_projections(shape, tilts, **kwargs)``,
    ``true = random_misalignment(len(tilts), jitter=jitter, seed=shift_seed)`` and ``moved``
    the float32 ``apply_shifts(clean, true)``; copies.
    """
    from tomoalign.shifts import apply_shifts
    from tomoalign.simulate import random_misalignment

    built: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}

    def make(
        shape: tuple[int, int], tilts: Any, *, jitter: float, shift_seed: int, **kwargs: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        clean = projections(shape, tilts, **kwargs)
        key = _key(shape, tilts, kwargs), jitter, shift_seed
        if key not in built:
            true = random_misalignment(len(tilts), jitter=jitter, seed=shift_seed)
            built[key] = np.asarray(apply_shifts(clean, true), dtype=np.float32), true
        moved, true = built[key]
        return clean, moved.copy(), true.copy()

    return make


# --- a tiny random series ------------------------------------------------------------------------


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


# --- real data and the system ----------------------------------------------------------------


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


# --- docstring examples ------------------------------------------------------------------------

#: Modules whose docstring examples run astra-toolbox's projector.
_DOCTESTS_NEEDING_ASTRA = ("tomoalign.reconstruction.",)


def pytest_collection_modifyitems(config, items):
    """Skip the examples that need astra-toolbox where it is not installed."""
    try:
        if importlib.util.find_spec("astra") is not None:
            return
    except ValueError:  # sys.modules["astra"] is None: blocked, as missing
        pass
    skip = pytest.mark.skip(reason="astra-toolbox not installed (pip install astra-toolbox)")
    for item in items:
        if type(item).__name__ == "DoctestItem" and item.name.startswith(_DOCTESTS_NEEDING_ASTRA):
            item.add_marker(skip)
