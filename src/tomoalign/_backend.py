"""Array-module helpers: one implementation for NumPy, CuPy and dask.

Algorithms take ``xp = get_array_module(array)`` and ``fft = get_fft_module(xp)``
and never import CuPy themselves, so the CPU tests exercise the code the GPU runs.
Nothing here touches the GPU at import time: CuPy is imported lazily, only when an
array that already lives on the GPU is seen or when :func:`to_device` is asked for it.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from types import ModuleType
from typing import Any

import numpy as np

from tomoalign._warnings import warn

__all__ = [
    "cupy_available",
    "fork_available",
    "get_array_module",
    "get_fft_module",
    "is_cupy_array",
    "is_dask_array",
    "n_workers",
    "ndimage",
    "process_pool",
    "projection_blocks",
    "to_device",
    "to_numpy",
    "warn_cuda_once",
]

#: The "cuda=True but no usable GPU" fallbacks already announced this session, by kind
#: (``"cupy"``: the array algorithms; ``"astra"``: the reconstruction), each warned once.
_cuda_warned: set[str] = set()


def n_workers() -> int:
    """Number of CPU workers to use for FFTs and thread pools (all cores)."""
    return max(
        1,
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1),
    )


def is_dask_array(array: Any) -> bool:
    """Return True when ``array`` is a dask array (without importing dask)."""
    return type(array).__module__.startswith("dask.")


def is_cupy_array(array: Any) -> bool:
    """Return True when ``array`` is a CuPy array (without importing CuPy)."""
    return type(array).__module__.startswith("cupy")


def get_array_module(array: Any) -> ModuleType:
    """Return the array module (``numpy`` or ``cupy``) that owns ``array``."""
    if is_cupy_array(array):
        import cupy

        return cupy
    return np


def ndimage(xp: ModuleType) -> ModuleType:
    """Return ``scipy.ndimage`` for NumPy, ``cupyx.scipy.ndimage`` for CuPy."""
    if xp is np:
        import scipy.ndimage

        return scipy.ndimage
    import cupyx.scipy.ndimage  # only reached for arrays that already live on the GPU

    return cupyx.scipy.ndimage


def get_fft_module(xp: ModuleType) -> ModuleType:
    """Return the FFT module for ``xp``: ``scipy.fft`` for NumPy, ``cupy.fft`` for CuPy."""
    if xp is np:
        import scipy.fft

        return scipy.fft
    return xp.fft


def fft_kwargs(xp: ModuleType) -> dict[str, Any]:
    """Keyword arguments for the FFT calls of ``xp``: all cores on the CPU."""
    return {"workers": n_workers()} if xp is np else {}


def cupy_available() -> bool:
    """Return True when CuPy imports and sees at least one GPU."""
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def warn_cuda_once(kind: str, message: str) -> None:
    """Warn (``RuntimeWarning``) that ``cuda=True`` falls back to the CPU, once per ``kind``.

    ``kind`` names what is missing (``"cupy"``, ``"astra"``), so each fallback is announced
    once per session with its own advice, however often it is asked for.
    """
    if kind not in _cuda_warned:
        warn(message, RuntimeWarning)
        _cuda_warned.add(kind)


def to_device(array: Any, cuda: bool) -> Any:
    """Move ``array`` to the GPU when ``cuda`` is true and a GPU is usable.

    When ``cuda`` is requested but CuPy or a GPU is missing, warn once per session and
    return the array unchanged, so the same computation runs on the CPU.
    """
    if not cuda or is_cupy_array(array):
        return array
    if cupy_available():
        import cupy

        return cupy.asarray(array)
    warn_cuda_once(
        "cupy",
        "cuda=True was requested but CuPy or a CUDA GPU is not available; computing "
        "the same result on the CPU (install tomoalign[gpu] on a machine with a GPU).",
    )
    return array


def fork_available() -> bool:
    """True where :func:`process_pool` forks its workers (Linux)."""
    return sys.platform.startswith("linux")


def process_pool(workers: int) -> ProcessPoolExecutor:
    """A process pool of ``workers``, forked where the platform allows (Linux).

    Forked workers inherit the parent's state (a cached system matrix, imported modules),
    and a user's script without an ``if __name__ == "__main__"`` guard is not run again in
    each worker, as the "spawn" start method would. Elsewhere the platform's default start
    method is used.
    """
    ctx = multiprocessing.get_context("fork" if fork_available() else None)
    return ProcessPoolExecutor(max_workers=workers, mp_context=ctx)


#: Bytes of float32 projections read per block by :func:`projection_blocks`.
BLOCK_BYTES = 64 * 2**20


def projection_blocks(
    data: Any, *, nbytes: int | None = None, overlap: int = 0, step: int | None = None
) -> Iterator[tuple[int, Any]]:
    """Blocks of consecutive projections of a `(n_tilts, ny, nx)` series, one at a time.

    A NumPy or CuPy array yields views; a dask array computes each block when it is reached
    (so a lazily loaded series is read a block at a time, never whole).

    Parameters
    ----------
    data : array
        The series, NumPy, CuPy or dask.
    nbytes : int, optional
        About this many bytes of float32 projections per block (at least one projection);
        default :data:`BLOCK_BYTES`.
    overlap : int
        Each block also holds the first ``overlap`` projections of the next one (for
        neighbour pairs that cross a block boundary).
    step : int, optional
        Projections per block (before the overlap); default from ``nbytes``.

    Yields
    ------
    (int, array)
        The index of the block's first projection and the block, on ``data``'s device.
    """
    n, ny, nx = (int(v) for v in data.shape)
    if step is None:
        step = max(1, (nbytes or BLOCK_BYTES) // max(1, ny * nx * 4))
    for i0 in range(0, n, step):
        block = data[i0 : min(n, i0 + step + overlap)]
        if is_dask_array(block):
            # in this thread: a block is a chunk or two, and no thread pool is left running
            # when StackReg forks its worker processes
            block = np.asarray(block.compute(scheduler="synchronous"))
        yield i0, block


def to_numpy(array: Any) -> np.ndarray:
    """Return ``array`` as a NumPy array (copying from the GPU or computing dask)."""
    if is_cupy_array(array):
        return array.get()
    if is_dask_array(array):
        return np.asarray(array.compute())
    return np.asarray(array)
