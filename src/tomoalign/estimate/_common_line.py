"""Center of mass plus common-line (COM-CL) alignment of a tilt series (Scott 2012).

Conventions: a tilt series is ``(n_tilts, ny, nx)``; the tilt axis is parallel to x
(array axis 2) and y (array axis 1) is perpendicular to it. Shifts are ``(n_tilts, 2)``
as ``(dy, dx)`` in pixels with the sign of :func:`scipy.ndimage.shift`: applying ``s``
moves the image content by ``+s``. The shifts returned here ALIGN the stack.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tomoalign._backend import fft_kwargs, get_array_module, get_fft_module, to_numpy
from tomoalign._profiles import (
    series_background,
    series_profiles,
    shift_lines,
    support,
    windowed_com,
)
from tomoalign._validation import check_profiles, check_series_array
from tomoalign.estimate._options import MAX_DIV_FACTOR, CommonLineOptions, check_progress

__all__ = ["MAX_DIV_FACTOR", "com_cl_shifts"]

#: Bytes of candidate phase factors evaluated at once by the subpixel search.
_SEARCH_BYTES = 64 * 2**20


def _deramp(xp: Any, lines: Any, edge: int = 4) -> Any:
    """Subtract from each line the straight line through its two end levels."""
    m = lines.shape[-1]
    e = max(1, min(edge, m // 4))
    left = xp.mean(lines[..., :e], axis=-1, keepdims=True)
    right = xp.mean(lines[..., -e:], axis=-1, keepdims=True)
    x = (xp.arange(m, dtype=lines.dtype) - (e - 1) / 2) / max(m - e, 1)
    return lines - (left + (right - left) * x)


def _cross_spectrum(xp: Any, fft: Any, ref: Any, lines: Any, size: int) -> Any:
    """``conj(FFT(ref)) * FFT(lines)`` of zero-padded lines less their end ramps (rfft).

    The straight line joining the mean of the first and last 4 pixels is removed, so a
    background level or an object crossing the image edges does not add a fixed,
    unshifted step to the zero-padded lines.
    """
    kw = fft_kwargs(xp)
    ref = _deramp(xp, ref)
    lines = _deramp(xp, lines)
    return xp.conj(fft.rfft(ref, n=size, axis=-1, **kw)) * fft.rfft(lines, n=size, axis=-1, **kw)


def _line_offsets(
    xp: Any, fft: Any, ref: Any, lines: Any, *, resolution: float, div_factor: int
) -> Any:
    """Offsets ``d`` (n,) such that ``lines[i](x) ~ ref(x - d[i])``, pixels.

    The integer part is the peak of the zero-padded cross-correlation; the subpixel part
    is found by evaluating the band-limited cross-correlation at ``div_factor`` points of
    the current interval (first ``[-0.5, 0.5]`` about the integer peak) and keeping the
    best sub-interval until it is narrower than ``resolution``. All lines and candidates
    are evaluated at once.
    """
    nx = lines.shape[-1]
    size = int(fft.next_fast_len(2 * nx)) if hasattr(fft, "next_fast_len") else 2 * nx
    size += size % 2  # even, for the rfft weights below
    spec = _cross_spectrum(xp, fft, ref, lines, size)  # (n, size // 2 + 1)
    xcorr = fft.irfft(spec, n=size, axis=-1, **fft_kwargs(xp))
    peak = xp.argmax(xcorr, axis=-1)
    start = xp.where(peak > size // 2, peak - size, peak).astype(xp.float64) - 0.5
    k = xp.arange(spec.shape[-1], dtype=xp.float64)
    weight = xp.full(spec.shape[-1], 2.0)
    weight[0] = 1.0
    weight[-1] = 1.0
    spec = spec * weight
    width = 1.0
    frac = (xp.arange(div_factor, dtype=xp.float64) + 0.5) / div_factor
    n = lines.shape[0]
    per = max(1, _SEARCH_BYTES // (16 * div_factor * k.size))  # lines per batch
    values = xp.empty((n, div_factor), dtype=xp.float64)
    while width > resolution:
        cand = start[:, None] + width * frac[None, :]  # (n, div)
        for i0 in range(0, n, per):
            i1 = min(n, i0 + per)
            phase = xp.exp(2j * np.pi * cand[i0:i1, :, None] * k / size)  # (m, div, K)
            values[i0:i1] = xp.real(xp.sum(spec[i0:i1, None, :] * phase, axis=-1))
        best = xp.argmax(values, axis=-1)
        width /= div_factor
        start = start + best * width
    return start + width / 2


def com_cl_shifts(
    data: Any,
    /,
    *,
    com_ref_index: int | None = None,
    cl_ref_index: int | None = None,
    cl_resolution: float = 0.05,
    cl_div_factor: int = 8,
    progress: Callable[[int], Any] | None = None,
) -> np.ndarray:
    """Estimate alignment shifts by center of mass (y) and common line (x) (Scott 2012).

    Perpendicular to the tilt axis (y), the center of mass of each projection is moved
    to row ``com_ref_index``. The center of mass is computed on the projection onto y
    (sum over x), less its background, in a window symmetric about the center that covers
    the object, so a constant background and the noise far from the object do not bias or
    blur it. The background is pooled over the series: each projection's own level (a Huber
    estimate over its profile outside the object) is shrunk towards the level of the whole
    series unless the levels differ between projections by more than their noise
    (random-effects pooling). This matters where the object reaches an image edge and the
    window is cut there: the background then enters with the lever arm of the cut, and a
    level measured on the few background rows of one projection would add its noise to
    that projection's center of mass.

    Parallel to the tilt axis (x), the projection of each image onto the tilt axis (sum
    over y, the common line) is the same for all tilts: each line is registered to the
    line of projection ``cl_ref_index`` (integer peak of the cross-correlation, then an
    interval search to ``cl_resolution``), then all lines are registered again to the
    mean of the aligned lines (less noise than one line), keeping the reference's shift
    at 0.

    Parameters
    ----------
    data : array_like
        Tilt series, shape ``(n_tilts, ny, nx)``, any real numeric dtype (NumPy, CuPy or
        dask array; dask is read a block of projections at a time, never whole). Not
        modified.
    com_ref_index : int, optional
        Row (y pixel index, ``0 <= com_ref_index < ny``) that every projection's center
        of mass is moved to. Default: the central row ``ny // 2``.
    cl_ref_index : int, optional
        Index of the projection whose common line is the reference; its x shift is 0.
        Default: ``n_tilts // 2``.
    cl_resolution : float
        Precision of the subpixel common-line search in pixels, in ``(0, 0.5)``: the
        search stops when its interval is narrower than this. Default 0.05.
    cl_div_factor : int
        Number of parts the search interval is divided into at each step, in ``[2, 100]``.
        Default 8.
    progress : callable, optional
        Called with the number of projections read since the previous call (tqdm
        ``update`` style); the calls add up to ``n_tilts``.

    Returns
    -------
    numpy.ndarray
        Shifts that align the stack, shape ``(n_tilts, 2)``, float64, ``(dy, dx)`` in
        pixels, :func:`scipy.ndimage.shift` sign (always a NumPy array).
        ``shifts[:, 0] = com_ref_index - com_y``; ``shifts[cl_ref_index, 1] == 0``.

    Raises
    ------
    ValueError
        For a stack that is not 3-D, has fewer than 3 projections, non-finite pixels or
        constant projections; ``com_ref_index`` outside ``[0, ny)``; ``cl_ref_index``
        outside ``[0, n_tilts)``; ``cl_resolution`` outside ``(0, 0.5)``;
        ``cl_div_factor`` outside ``[2, 100]``.
    TypeError
        For a non-integer index or division factor.

    Notes
    -----
    The center of mass of the whole object moves as ``a + b cos(theta) + c sin(theta)``
    with the tilt, so the y shifts are exact up to that rigid freedom. Runs on NumPy or
    CuPy arrays.

    References
    ----------
    .. [1] M. C. Scott et al., "Electron tomography at 2.4-angstrom resolution",
       Nature 483, 444-447 (2012). https://doi.org/10.1038/nature10934

    Examples
    --------
    >>> import numpy as np
    >>> from tomoalign.estimate._common_line import com_cl_shifts
    >>> rng = np.random.default_rng(0)
    >>> stack = rng.random((5, 64, 64)).astype(np.float32)
    >>> com_cl_shifts(stack).shape
    (5, 2)
    """
    options = CommonLineOptions(
        com_ref_index=com_ref_index,
        cl_ref_index=cl_ref_index,
        cl_resolution=cl_resolution,
        cl_div_factor=cl_div_factor,
    )
    shifts, _, _ = _com_cl(data, options, progress)
    return shifts


def _com_cl(
    data: Any, options: CommonLineOptions, progress: Callable[[int], Any] | None
) -> tuple[np.ndarray, Any, Any]:
    """:func:`com_cl_shifts` and the row and column profiles `(n, ny)`, `(n, nx)` it read."""
    check_progress(progress, "projections read")
    if not hasattr(data, "shape") or not hasattr(data, "dtype"):
        data = np.asarray(data)
    check_series_array(data, min_tilts=3)
    n = int(data.shape[0])
    com_ref, cl_ref = options.resolve(data.shape)

    # ---- one pass over the data: sums over x (n, ny) and over y (n, nx) ---------------
    yprof, lines = series_profiles(data, progress=progress)  # lines: the common lines
    check_profiles(data, yprof, lines)
    xp = get_array_module(yprof)
    fft = get_fft_module(xp)

    # ---- perpendicular (y): windowed center of mass of the projection onto y ---------
    center, lower, upper = support(yprof)
    background = series_background(yprof, lower, upper)
    com_y, _ = windowed_com(yprof, center, lower, upper, background=background)

    # ---- parallel (x): common lines -------------------------------------------------
    opts = {"resolution": options.cl_resolution, "div_factor": options.cl_div_factor}
    d = _line_offsets(xp, fft, lines[cl_ref], lines, **opts)
    d = d - d[cl_ref]
    mean_line = xp.mean(shift_lines(xp, fft, lines, -d), axis=0)
    d = _line_offsets(xp, fft, mean_line, lines, **opts)
    d = d - d[cl_ref]

    shifts = np.empty((n, 2))
    shifts[:, 0] = com_ref - to_numpy(com_y)
    shifts[:, 1] = -to_numpy(d)
    return shifts, yprof, lines
