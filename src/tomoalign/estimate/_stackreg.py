"""StackReg alignment of a tilt series between neighbours (Thevenaz 1998, pystackreg).

Conventions: a tilt series is ``(n_tilts, ny, nx)``; the tilt axis is parallel to x
(array axis 2) and y (array axis 1) is perpendicular to it. Shifts are ``(n_tilts, 2)``
as ``(dy, dx)`` in pixels with the sign of :func:`scipy.ndimage.shift`: applying ``s``
moves the image content by ``+s``. The shifts returned here ALIGN the stack.

pystackreg is C++ code for the CPU only: data on the GPU is copied to the host.
"""

from __future__ import annotations

import functools
import multiprocessing
import sys
from collections.abc import Callable
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any

import numpy as np

from tomoalign._backend import get_array_module, n_workers, projection_blocks, to_numpy
from tomoalign._profiles import com_trend, float_block, profile_positions
from tomoalign._validation import check_series_array, constant_error, require_finite
from tomoalign.estimate._options import StackRegOptions, check_progress

__all__ = ["stackreg_shifts"]

#: Below this many pixels in the stack, registering in one process is faster than
#: starting worker processes.
_POOL_MIN_PIXELS = 8_000_000
#: Neighbour pairs per task sent to a worker process (progress granularity).
_PAIRS_PER_TASK = 8
#: Width (projections) of the centre-of-mass trend that corrects the chain's drift in y: the
#: chain is trusted at higher frequencies, the centre of mass at lower ones.
_TREND_SIGMA = 3.0


def _import_stackreg() -> Any:
    """Return pystackreg's ``StackReg`` class, or raise ``ImportError`` with the fix."""
    try:
        from pystackreg import StackReg
    except ImportError:
        raise ImportError(
            "StackReg alignment requires 'pystackreg' (pip install pystackreg)"
        ) from None
    return StackReg


def _offsets_from_tmats(tmats: np.ndarray) -> np.ndarray:
    """Pairwise content offsets ``(k - 1, 2)`` as ``(dy, dx)`` from cumulative matrices.

    ``StackReg.register(ref, mov)`` returns a 3 x 3 matrix whose translation column is
    ``(dx, dy)`` (x first) = how far the content of ``mov`` lies from that of ``ref``
    (``mov`` equals ``ref`` moved by ``+(dy, dx)``, :func:`scipy.ndimage.shift` sign);
    ``register_stack(..., reference="previous")`` chains them into cumulative matrices
    relative to the first frame, so successive differences give each pair's offset.
    """
    cumulative = tmats[:, [1, 0], 2]  # (k, 2) as (dy, dx)
    return np.diff(cumulative, axis=0)


def stackreg_shifts(
    data: Any,
    /,
    *,
    start: int | None = None,
    drift_correction: bool = True,
    progress: Callable[[int], Any] | None = None,
) -> np.ndarray:
    """Estimate alignment shifts with StackReg between neighbouring projections.

    Each projection is registered to its neighbour by pystackreg's TRANSLATION model
    (the pyramid least-squares intensity registration of Thevenaz et al.), and the
    pairwise offsets are accumulated outward from projection ``start``, whose shift is
    0. Large stacks are registered in several worker processes (pystackreg holds the
    GIL, so threads would not run in parallel), each on a contiguous block of
    projections.

    Parameters
    ----------
    data : array_like
        Tilt series, shape ``(n_tilts, ny, nx)``, any real numeric dtype (NumPy, CuPy or
        dask array; copied to the host: pystackreg runs on the CPU only). Not modified.
    start : int, optional
        Index of the projection that stays in place (shift 0),
        ``0 <= start < n_tilts``. Default: ``n_tilts // 2``.
    drift_correction : bool, default True
        Correct the drift that chaining accumulates (beyond ETSpy): along x, replace the
        chained positions by those of the column profiles aligned to their mean (the
        projection onto the tilt axis does not change with tilt); across it, add the
        smoothed centre-of-mass trend (see :mod:`tomoalign._profiles`). It assumes
        the object stays inside the field of view. False gives the plain neighbour chain,
        as ETSpy computes it.
    progress : callable, optional
        Called as ``progress(k)`` each time ``k`` more neighbour pairs are registered
        (the calls sum to ``n_tilts - 1``), so ``tqdm(total=n_tilts - 1).update`` can be
        passed directly. Called from the calling thread.

    Returns
    -------
    numpy.ndarray
        Shifts that align the stack, shape ``(n_tilts, 2)``, float64, ``(dy, dx)`` in
        pixels, :func:`scipy.ndimage.shift` sign; ``shifts[start] == 0``.

    Raises
    ------
    ImportError
        When pystackreg is not installed.
    ValueError
        For a stack that is not 3-D, has fewer than 3 projections, non-finite pixels or
        constant projections, or ``start`` outside ``[0, n_tilts)``.
    TypeError
        For a non-integer ``start`` or a ``progress`` that is not callable.

    Notes
    -----
    Errors of the pairwise registrations add up along the chain (a random walk), as
    for every neighbour-pair method.

    References
    ----------
    .. [1] P. Thevenaz, U. E. Ruttimann, M. Unser, "A pyramid approach to subpixel
       registration based on intensity", IEEE Transactions on Image Processing 7(1),
       27-41 (1998). https://doi.org/10.1109/83.650848

    Examples
    --------
    >>> import numpy as np
    >>> from tomoalign.estimate._stackreg import stackreg_shifts
    >>> rng = np.random.default_rng(0)
    >>> stack = rng.random((4, 64, 64)).astype(np.float32)
    >>> stackreg_shifts(stack).shape
    (4, 2)
    """
    options = StackRegOptions(start=start, drift_correction=drift_correction)
    shifts, _, _ = _stackreg(data, options, progress)
    return shifts


def _ptp(fblock: Any) -> np.ndarray:
    """Peak-to-peak value of each projection of a block, on the host."""
    xp = get_array_module(fblock)
    return to_numpy(xp.max(fblock, axis=(1, 2)) - xp.min(fblock, axis=(1, 2)))


def _register_block(block: np.ndarray) -> np.ndarray:
    """Pairwise offsets `(k - 1, 2)` of a block of `k` consecutive projections (any dtype)."""
    stackreg = _import_stackreg()
    register = stackreg(stackreg.TRANSLATION).register_stack
    host = np.ascontiguousarray(block, dtype=np.float64)
    return _offsets_from_tmats(register(host, reference="previous", suppress_axis_warning=True))


def _stackreg(
    data: Any, options: StackRegOptions, progress: Callable[[int], Any] | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`stackreg_shifts` and the row and column profiles `(n, ny)`, `(n, nx)` it read.

    The series is read once, a block of projections at a time (each block holding the first
    projection of the next, for the pair across the boundary): the blocks go to the worker
    processes (or are registered here, pair by pair) and their profiles are summed here.
    A few blocks are in flight at a time, so the memory stays bounded for a lazy series.
    """
    check_progress(progress, "registered pairs")
    if not hasattr(data, "shape") or not hasattr(data, "dtype"):
        data = np.asarray(data)
    check_series_array(data, min_tilts=3)
    n, ny, nx = (int(v) for v in data.shape)
    start = options.resolve(data.shape)
    _import_stackreg()
    npairs = n - 1
    offsets = np.zeros((npairs, 2))
    rows = np.empty((n, ny))
    cols = np.empty((n, nx))
    seen = 0  # projections whose profiles are summed

    def take_profiles(i0: int, block: Any) -> None:
        """Profiles of the projections of ``block`` (first ``i0``) not yet summed."""
        nonlocal seen
        fblock = float_block(block[seen - i0 :])
        if fblock.shape[0] == 0:
            return
        xp = get_array_module(fblock)
        check_block(fblock, xp)
        rows[seen : seen + fblock.shape[0]] = to_numpy(xp.sum(fblock, axis=2, dtype=xp.float64))
        cols[seen : seen + fblock.shape[0]] = to_numpy(xp.sum(fblock, axis=1, dtype=xp.float64))
        seen += fblock.shape[0]

    def check_block(fblock: Any, xp: Any) -> None:
        """Raise for NaN/inf pixels or constant projections, naming all of the series'."""
        if bool(xp.isfinite(fblock).all()) and not np.any(_ptp(fblock) == 0):
            return
        require_finite(data)
        flat = [
            j0 + int(j)
            for j0, other in projection_blocks(data)
            for j in np.flatnonzero(_ptp(float_block(other)) == 0)
        ]
        raise constant_error(flat)

    workers = min(n_workers(), max(1, npairs // 2))
    if workers > 1 and n * ny * nx >= _POOL_MIN_PIXELS:
        # fork (Linux): "spawn" would re-run a user's script that lacks a __main__ guard
        ctx = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else None)
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            pending: dict[Any, tuple[int, int]] = {}

            def collect(block: bool) -> None:
                done, _ = wait(pending, return_when=FIRST_COMPLETED if block else ALL_COMPLETED)
                for future in done:
                    a, b = pending.pop(future)
                    offsets[a:b] = future.result()
                    if progress is not None:
                        progress(b - a)

            blocks = projection_blocks(data, step=_PAIRS_PER_TASK, overlap=1)
            for a, block in blocks:
                if block.shape[0] < 2:
                    take_profiles(a, block)
                    break
                take_profiles(a, block)
                host = to_numpy(block)
                pending[pool.submit(_register_block, host)] = (a, a + host.shape[0] - 1)
                del block, host
                while len(pending) >= 2 * workers:
                    collect(True)
            if pending:
                collect(False)
    else:
        stackreg = _import_stackreg()
        register = functools.partial(
            stackreg(stackreg.TRANSLATION).register_stack,
            reference="previous",
            suppress_axis_warning=True,
        )
        for i0, block in projection_blocks(data, overlap=1):
            take_profiles(i0, block)
            host = np.ascontiguousarray(to_numpy(block), dtype=np.float64)
            for j in range(host.shape[0] - 1):
                offsets[i0 + j] = _offsets_from_tmats(register(host[j : j + 2]))[0]
                if progress is not None:
                    progress(1)
            del block, host

    # offsets[i]: content of projection i + 1 relative to projection i. Projection i
    # must move by -(its content position relative to `start`).
    position = np.zeros((n, 2))
    position[1:] = np.cumsum(offsets, axis=0)
    if options.drift_correction:
        position[:, 1] = profile_positions(cols)  # tilt-invariant column profiles
        position[:, 0] += com_trend(rows, position[:, 0], sigma=_TREND_SIGMA)
    return -(position - position[start]), rows, cols
