"""Center-of-mass (COM) alignment of a tilt series (Sanders 2015).

Conventions: a tilt series is ``(n_tilts, ny, nx)``; the tilt axis is parallel to x
(array axis 2) and y (array axis 1) is perpendicular to it. Shifts are ``(n_tilts, 2)``
as ``(dy, dx)`` in pixels with the sign of :func:`scipy.ndimage.shift`: applying ``s``
moves the image content by ``+s``. The shifts returned here ALIGN the stack. Tilt angles
are in degrees.

The 1-D profile tools (support, windowed centre of mass, Fourier shift of lines) live in
:mod:`tomoalign._profiles`, shared with the other estimators.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tomoalign._backend import get_array_module, get_fft_module, projection_blocks, to_numpy
from tomoalign._profiles import (
    float_block,
    series_profiles,
    shift_lines,
    support,
    windowed_com,
)
from tomoalign._validation import check_profiles, check_series_array, require_tilts
from tomoalign.estimate._options import MAX_SLICES, CenterOfMassOptions, check_progress

__all__ = ["MAX_SLICES", "com_shifts"]

#: Bytes of candidate profiles compared at once by the integer search (bounds its memory for
#: any search range ``p``).
_SEARCH_BYTES = 64 * 2**20


def _match_profiles(
    xp: Any, fft: Any, profiles: Any, lo: int, hi: int, p: int, *, outer: int = 3
) -> Any:
    """Shifts (n,) that best match each profile to the mean profile on ``[lo, hi)``.

    Integer search over ``[-p, p]`` (sum of squared differences) against the mean of the
    current aligned profiles, then Gauss-Newton subpixel refinement on Fourier-shifted
    profiles; the mean is recomputed after each pass.
    """
    n, _m = profiles.shape
    win = xp.arange(lo, hi)
    lags = xp.arange(-p, p + 1)
    s = xp.zeros(n, dtype=profiles.dtype)
    for it in range(outer):
        aligned = shift_lines(xp, fft, profiles, s)[:, lo:hi]
        ref = xp.mean(aligned, axis=0)
        if it == 0:
            # aligned(x) = P(x - j): integer search over j in [-p, p]
            # (2p+1, w); beyond the image the edge value stands in (xrange=None may
            # compare closer than p to the border)
            # (lags in groups, so that memory stays bounded for a large p)
            per = max(1, _SEARCH_BYTES // (8 * n * max(hi - lo, 1)))
            ssd = xp.empty((n, lags.size), dtype=profiles.dtype)
            for g0 in range(0, lags.size, per):
                group = lags[g0 : g0 + per]
                idx = xp.clip(win[None, :] - group[:, None], 0, _m - 1)
                cand = profiles[:, idx]  # (n, len(group), w)
                ssd[:, g0 : g0 + per] = xp.sum((cand - ref) ** 2, axis=-1)
            s = lags[xp.argmin(ssd, axis=1)].astype(profiles.dtype)
        for _ in range(6):
            r = shift_lines(xp, fft, profiles, s)[:, lo:hi] - ref
            # d/ds P(x - s) = -P'(x - s)
            jac = -shift_lines(xp, fft, profiles, s, derivative=True)[:, lo:hi]
            den = xp.sum(jac * jac, axis=-1)
            step = -xp.sum(r * jac, axis=-1) / xp.where(den > 0, den, 1.0)
            s = xp.clip(s + xp.clip(step, -1.0, 1.0), -float(p), float(p))
    return s


# --------------------------------------------------------------------------------------
# public function
# --------------------------------------------------------------------------------------
def com_shifts(
    data: Any,
    tilts: Any,
    /,
    *,
    xrange: tuple[int, int] | None = None,
    p: int = 20,
    nslices: int = 20,
    progress: Callable[[int], Any] | None = None,
) -> np.ndarray:
    """Estimate alignment shifts by center-of-mass tracking (Sanders 2015).

    Parallel to the tilt axis (x), mass is conserved: the mass profile along x (the sum
    over y) is the same for every projection. Each projection's profile is matched to the
    mean profile over ``xrange`` with subpixel precision, and the mean is re-estimated
    from the aligned profiles. Perpendicular to the tilt axis (y), the center of mass of
    an x-slice of the object moves as ``a cos(theta) + b sin(theta)``; after correcting
    the x shifts, the ``nslices`` most reliable slices are tracked with a
    background-insensitive windowed center of mass, and the model
    ``com[i, j] = t[i] + a[j] cos(theta[i]) + b[j] sin(theta[i])`` is fitted by robust
    (Huber) weighted least squares. The y shifts are ``-t``.

    Parameters
    ----------
    data : array_like
        Tilt series, shape ``(n_tilts, ny, nx)``, any real numeric dtype (NumPy, CuPy or
        dask array; dask is read a block of projections at a time, never whole). Not
        modified.
    tilts : array_like
        Tilt angles in degrees, shape ``(n_tilts,)``. Required (not all zero).
    xrange : tuple of int, optional
        Columns ``(start, stop)`` (pixels along x, stop exclusive) whose mass profile is
        matched; as in ETSpy, a given range is compared over ``[start + p, stop - p)``
        so that shifts up to ``p`` stay inside it. Default: compare the central 3/5 of
        ``nx``, ``[round(nx / 5), round(4 * nx / 5))``.
    p : int
        Search range for the x shift, pixels (``|dx| <= p``), ``0 <= p < nx``. Default 20.
    nslices : int
        Number of x-slices (columns) tracked for the y shift,
        ``1 <= nslices <= min(nx, 100)``.
        Default 20.
    progress : callable, optional
        Called with the number of projections read since the previous call (tqdm
        ``update`` style). The data is read twice (the profiles, then the tracked
        slices), so the calls add up to ``2 * n_tilts``.

    Returns
    -------
    numpy.ndarray
        Shifts that align the stack, shape ``(n_tilts, 2)``, float64, ``(dy, dx)`` in
        pixels, :func:`scipy.ndimage.shift` sign. Always a NumPy array. The x shifts have
        zero mean; the y shifts are free of any ``a + b cos(theta) + c sin(theta)``
        component other than the constant that centres the rotation axis on row
        ``(ny - 1) / 2`` (the rigid freedom of the model).

    Raises
    ------
    ValueError
        For a stack that is not 3-D, has fewer than 3 projections, non-finite pixels or
        constant projections; missing or all-zero tilts; an ``xrange`` outside the image
        or too narrow for ``p``; ``p`` outside ``[0, nx)``; ``nslices`` outside
        ``[1, min(nx, 100)]``.

    Notes
    -----
    Runs on NumPy or CuPy arrays (computed on the array's device); only the small final
    fit runs on the CPU.

    References
    ----------
    .. [1] T. Sanders, "Physically motivated global alignment method for electron
       tomography", Advanced Structural and Chemical Imaging 1, 4 (2015).
       https://doi.org/10.1186/s40679-015-0005-7

    Examples
    --------
    >>> import numpy as np
    >>> from tomoalign.estimate._center_of_mass import com_shifts
    >>> rng = np.random.default_rng(0)
    >>> stack = rng.random((5, 64, 64)).astype(np.float32)
    >>> com_shifts(stack, np.linspace(-60, 60, 5), p=5).shape
    (5, 2)
    """
    options = CenterOfMassOptions(xrange=xrange, p=p, nslices=nslices)
    shifts, _, _ = _com(data, tilts, options, progress)
    return shifts


def _com(
    data: Any,
    tilts: Any,
    options: CenterOfMassOptions,
    progress: Callable[[int], Any] | None,
) -> tuple[np.ndarray, Any, Any]:
    """:func:`com_shifts` and the row and column profiles `(n, ny)`, `(n, nx)` it read."""
    check_progress(progress, "projections read")
    if not hasattr(data, "shape") or not hasattr(data, "dtype"):
        data = np.asarray(data)
    check_series_array(data, min_tilts=3)
    n, ny, nx = (int(v) for v in data.shape)
    theta = np.deg2rad(require_tilts(tilts, n, method="COM alignment"))
    p, lo, hi = options.resolve(nx)
    nslices = options.nslices

    # ---- one pass over the data: sums over x (n, ny) and over y (n, nx) -------------
    rows, profiles = series_profiles(data, progress=progress)
    check_profiles(data, profiles)
    xp = get_array_module(profiles)
    fft = get_fft_module(xp)

    # ---- parallel (x): conservation of mass, subpixel profile matching -------------
    sx = _match_profiles(xp, fft, profiles, lo, hi, p)
    sx = sx - xp.mean(sx)

    # ---- perpendicular (y): COM of the best x-slices, x shifts corrected ------------
    aligned = shift_lines(xp, fft, profiles, sx)  # column masses after x alignment
    smax, smin = float(xp.max(sx)), float(xp.min(sx))
    # physical columns x whose source column x - s stays inside for every projection
    first = int(np.ceil(max(smax, 0.0)))
    last = int(np.floor(nx - 2 + min(smin, 0.0)))
    cols = xp.arange(nx)
    valid = (cols >= first) & (cols <= last)
    mean_mass = xp.mean(aligned, axis=0)
    std_mass = xp.std(aligned, axis=0)
    noise = xp.maximum(std_mass, 1e-12 * xp.max(xp.abs(mean_mass)) + 1e-300)
    ratio = xp.where(valid & (mean_mass > 0), mean_mass / noise, -xp.inf)
    nsel = min(nslices, int(xp.sum(valid)))
    best = xp.argsort(-ratio)[:nsel]  # physical columns
    src = best[None, :].astype(xp.float64) - sx[:, None]  # (n, nsel) source columns
    c0 = xp.clip(xp.floor(src).astype(xp.int64), 0, nx - 2)
    frac = (src - c0)[:, :, None]
    # second pass over the data: the tracked columns of each projection, (n, nsel, ny)
    slices = xp.empty((n, nsel, ny), dtype=xp.float64)
    for i0, block in projection_blocks(data):
        fblock = float_block(block)
        i1 = i0 + fblock.shape[0]
        at = xp.arange(i1 - i0)[:, None]
        left = fblock[at, :, c0[i0:i1]].astype(xp.float64)  # (k, nsel, ny)
        right = fblock[at, :, c0[i0:i1] + 1].astype(xp.float64)
        slices[i0:i1] = (1 - frac[i0:i1]) * left + frac[i0:i1] * right
        del block, fblock, left, right
        if progress is not None:
            progress(i1 - i0)
    center, lower, upper = support(xp.sum(slices, axis=1))  # band of the selected slices
    com, mass = windowed_com(slices, center[:, None], lower[:, None], upper[:, None])
    com = to_numpy(com)
    mass = to_numpy(mass)

    t = _fit_common_offset(com, mass, theta)
    g = np.stack([np.cos(theta), np.sin(theta)], axis=1)
    rel = t - (ny - 1) / 2
    rel = rel - g @ np.linalg.lstsq(g, rel, rcond=None)[0]
    shifts = np.empty((n, 2))
    shifts[:, 0] = -rel
    shifts[:, 1] = to_numpy(sx)
    return shifts, rows, profiles


def _fit_common_offset(com: np.ndarray, mass: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Robust fit of ``com[i, j] = t[i] + a[j] cos(theta[i]) + b[j] sin(theta[i])``.

    Weighted least squares (weights from each slice's mass, ``mass**2``, as the COM noise
    scales as ``1 / mass``) with Huber reweighting of the residuals. Returns ``t``
    (defined up to ``alpha cos + beta sin``).
    """
    n, ns = com.shape
    cos, sin = np.cos(theta), np.sin(theta)
    # design matrix for vec(com) (row-major: i major, j minor)
    a_t = np.kron(np.eye(n), np.ones((ns, 1)))
    a_a = np.kron(cos[:, None], np.eye(ns))
    a_b = np.kron(sin[:, None], np.eye(ns))
    design = np.hstack([a_t, a_a, a_b])
    yv = com.reshape(-1)
    mj = np.maximum(np.median(mass, axis=0), 1e-300)
    base = np.broadcast_to((mj / mj.max()) ** 2, (n, ns)).reshape(-1)
    w = base.copy()
    sol = np.zeros(design.shape[1])
    for _ in range(6):
        normal = (design * w[:, None]).T @ design
        sol = np.linalg.pinv(normal, rcond=1e-10, hermitian=True) @ (design.T @ (w * yv))
        r = (yv - design @ sol) * np.sqrt(base)
        scale = 1.4826 * np.median(np.abs(r - np.median(r)))
        if not scale > 0:
            break
        k = 1.5 * scale
        hub = np.where(np.abs(r) <= k, 1.0, k / np.maximum(np.abs(r), 1e-300))
        w = base * hub
    return sol[:n]
