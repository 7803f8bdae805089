"""StackReg alignment of a tilt series between neighbours (Thevenaz 1998, pystackreg).

Conventions: a tilt series is ``(n_tilts, ny, nx)``; the tilt axis is parallel to x
(array axis 2) and y (array axis 1) is perpendicular to it. Shifts are ``(n_tilts, 2)``
as ``(dy, dx)`` in pixels with the sign of :func:`scipy.ndimage.shift`: applying ``s``
moves the image content by ``+s``. The shifts returned here ALIGN the stack.

pystackreg is C++ code for the CPU only: data on the GPU is copied to the host.
"""

from __future__ import annotations

import functools
import itertools
import multiprocessing
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

import numpy as np

from .._backend import get_array_module, n_workers, to_numpy
from .._validation import check_start, float_series
from ._profiles import com_trend, profile_positions

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
        smoothed centre-of-mass trend (see :mod:`tomoalign.align._profiles`). It assumes
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
    >>> from tomoalign.align._stackreg import stackreg_shifts
    >>> rng = np.random.default_rng(0)
    >>> stack = rng.random((4, 64, 64)).astype(np.float32)
    >>> stackreg_shifts(stack).shape
    (4, 2)
    """
    fdata = float_series(data)
    n = fdata.shape[0]
    start = check_start(start, n)
    if progress is not None and not callable(progress):
        raise TypeError(
            f"progress is {progress!r}; expected a callable taking the number of newly "
            "registered pairs, or None."
        )
    stackreg = _import_stackreg()
    host = np.ascontiguousarray(to_numpy(fdata), dtype=np.float64)

    register = functools.partial(
        stackreg(stackreg.TRANSLATION).register_stack,
        reference="previous",
        suppress_axis_warning=True,
    )
    npairs = n - 1
    offsets = np.zeros((npairs, 2))
    workers = min(n_workers(), max(1, npairs // 2))
    if workers > 1 and host.size >= _POOL_MIN_PIXELS:
        bounds = [*list(range(0, npairs, _PAIRS_PER_TASK)), npairs]
        # fork (Linux): "spawn" would re-run a user's script that lacks a __main__ guard
        ctx = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else None)
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            futures = {
                pool.submit(register, host[a : b + 1]): (a, b)
                for a, b in itertools.pairwise(bounds)
            }
            for future in as_completed(futures):
                a, b = futures[future]
                offsets[a:b] = _offsets_from_tmats(future.result())
                if progress is not None:
                    progress(b - a)
    else:
        for a in range(npairs):
            offsets[a] = _offsets_from_tmats(register(host[a : a + 2]))[0]
            if progress is not None:
                progress(1)

    # offsets[i]: content of projection i + 1 relative to projection i. Projection i
    # must move by -(its content position relative to `start`).
    position = np.zeros((n, 2))
    position[1:] = np.cumsum(offsets, axis=0)
    if drift_correction:
        xp = get_array_module(fdata)
        cols = to_numpy(xp.sum(fdata, axis=1, dtype=xp.float64))  # (n, nx), tilt-invariant
        rows = to_numpy(xp.sum(fdata, axis=2, dtype=xp.float64))  # (n, ny)
        position[:, 1] = profile_positions(cols)
        position[:, 0] += com_trend(rows, position[:, 0], sigma=_TREND_SIGMA)
    return -(position - position[start])
