"""Tilt-invariant corrections from image profiles, shared by the chained estimators.

Chaining neighbour registrations (PC, StackReg) accumulates a random walk of small per-pair
errors, and a bias wherever neighbouring projections are not pure translations of each other.
Two facts of a tilt series about an axis parallel to x give drift-free references:

* the column profile (sum over y) of every projection is the same, up to the shift along x
  (the "common line"): :func:`profile_positions` aligns them to their mean;
* for an object inside the field of view, the centre of mass across the axis moves as
  ``a + b cos(theta) + c sin(theta)``: :func:`com_trend` measures the slowly varying part of
  (centre of mass - chained position), which is the chain's drift up to that sinusoid (the
  rigid freedom of any alignment).

All functions work on small `(n_tilts, m)` NumPy arrays.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tomoalign._backend import (
    fft_kwargs,
    get_array_module,
    is_dask_array,
    projection_blocks,
)
from tomoalign._numerics import (
    HUBER_EFFICIENCY,
    fourier_phase,
    hermitian_weights,
    huber_location,
    parabola_offset,
    refine_peak,
    robust_sigma,
    subpixel_offsets,
    upsampled_dft,
)

__all__ = [
    "band_weight",
    "com_trend",
    "parabola_offset",
    "profile_positions",
    "series_background",
    "series_profiles",
    "shift_lines",
    "support",
    "windowed_com",
]

# Iterations of the x-profile alignment against the mean aligned profile.
_PROFILE_ITERATIONS = 3
# Windowed centre of mass: at most this many fixed-point steps, stopping at steps below the
# tolerance (pixels).
_COM_MAX_ITERATIONS = 50
_COM_TOLERANCE = 1e-7
# Profile pixels more than this many pixels outside the object support are background.
_BACKGROUND_GAP = 2
# Half-width (pixels) of the subpixel grid of the profile peak search: one pixel beyond the
# half pixel around the whole-pixel maximum (:func:`tomoalign._numerics.subpixel_offsets`).
_PEAK_REACH = 1.5


#: Standard deviation of white noise after :func:`_box_smooth` (3 boxes of 5), per unit.
_SMOOTH_GAIN = float(
    np.sqrt(np.sum(np.convolve(np.convolve(np.ones(5), np.ones(5)), np.ones(5)) ** 2)) / 125
)


def float_block(block: Any) -> Any:
    """A block of projections in the computing dtype: float64 stays, anything else float32."""
    return block if block.dtype == np.float64 else block.astype(np.float32, copy=False)


def series_profiles(
    data: Any,
    *,
    progress: Callable[[int], Any] | None = None,
    nbytes: int | None = None,
) -> tuple[Any, Any]:
    """Row and column profiles of every projection, read a block of projections at a time.

    Parameters
    ----------
    data : array
        `(n_tilts, ny, nx)` NumPy, CuPy or dask array, any real dtype (summed as float32, or
        float64 for float64 data, accumulated in float64). A dask array is computed one block
        at a time (:func:`tomoalign._backend.projection_blocks`), never whole.
    progress : callable, optional
        Called with the number of projections of each block once it is summed.
    nbytes : int, optional
        About this many bytes of float32 projections per block; default
        :data:`tomoalign._backend.BLOCK_BYTES`.

    Returns
    -------
    rows, cols : array
        `(n_tilts, ny)` sums over x and `(n_tilts, nx)` sums over y, float64, on ``data``'s
        device (NumPy for dask). Bit for bit the sums of the whole array.
    """
    n, ny, nx = (int(v) for v in data.shape)
    xp = np if is_dask_array(data) else get_array_module(data)
    rows = xp.empty((n, ny), dtype=np.float64)
    cols = xp.empty((n, nx), dtype=np.float64)
    for i0, block in projection_blocks(data, nbytes=nbytes):
        fblock = float_block(block)
        i1 = i0 + fblock.shape[0]
        rows[i0:i1] = xp.sum(fblock, axis=2, dtype=np.float64)
        cols[i0:i1] = xp.sum(fblock, axis=1, dtype=np.float64)
        del block, fblock
        if progress is not None:
            progress(i1 - i0)
    return rows, cols


# --------------------------------------------------------------------------------------
# 1-D helpers on batches of profiles (last axis), array-module agnostic
# --------------------------------------------------------------------------------------
def _box_smooth(xp: Any, f: Any, width: int = 5, passes: int = 3) -> Any:
    """Smooth along the last axis with ``passes`` box filters (about a Gaussian)."""
    half = width // 2
    for _ in range(passes):
        pad = [(0, 0)] * (f.ndim - 1) + [(half + 1, half)]
        c = xp.cumsum(xp.pad(f, pad, mode="edge"), axis=-1)
        f = (c[..., width:] - c[..., :-width]) / width
    return f


def support(
    profiles: Any, *, threshold: float = 0.005, margin: float = 0.25, pad: float = 4.0
) -> tuple[Any, Any, Any]:
    """Center and half-width of the object support of high-SNR profiles (last axis).

    The profile is smoothed; the background is its 10th percentile; the support is where
    it exceeds both ``threshold`` times the peak above background and 6 times the noise
    of the smoothed profile (estimated from the second differences). The extent on each side of
    the center is widened to the largest among the two neighbours along axis 0 (the
    tilts), so that a noisy estimate cannot cut the object, then grown by ``margin``
    times the half-extent plus ``pad`` pixels.

    Returns
    -------
    center, lower, upper : array
        Center of the support and the bounds that a window must cover, shape
        ``profiles.shape[:-1]``, pixels.
    """
    xp = get_array_module(profiles)
    m = profiles.shape[-1]
    y = xp.arange(m, dtype=profiles.dtype)
    g = _box_smooth(xp, profiles, width=5, passes=3)
    b = xp.percentile(g, 10, axis=-1)[..., None]
    peak = xp.max(g, axis=-1)[..., None]
    pos = xp.clip(g - b, 0, None)
    # noise of the smoothed profile, from the second differences of the raw one
    d2 = profiles[..., 2:] - 2 * profiles[..., 1:-1] + profiles[..., :-2]
    # (white noise: a second difference has variance (1 + 4 + 1) sigma**2; median about 0)
    sigma = robust_sigma(d2, center=None, axis=-1)[..., None] / np.sqrt(6.0)
    level = xp.maximum(threshold * (peak - b), 6.0 * _SMOOTH_GAIN * sigma)
    above = (g - b) > level
    pos = xp.where(above, pos, 0.0)
    c = xp.sum(pos * y, axis=-1) / xp.maximum(xp.sum(pos, axis=-1), 1e-300)
    lo = xp.argmax(above, axis=-1).astype(profiles.dtype)
    hi = (m - 1 - xp.argmax(above[..., ::-1], axis=-1)).astype(profiles.dtype)
    below, over = c - lo, hi - c
    if below.ndim >= 1 and below.shape[0] >= 3:
        below = xp.maximum(below, xp.maximum(xp.roll(below, 1, axis=0), xp.roll(below, -1, axis=0)))
        over = xp.maximum(over, xp.maximum(xp.roll(over, 1, axis=0), xp.roll(over, -1, axis=0)))
    grow = margin * (below + over) / 2 + pad
    return c, c - below - grow, c + over + grow


def _background_pixels(xp: Any, profiles: Any, lower: Any, upper: Any) -> Any:
    """Mask of the pixels more than ``_BACKGROUND_GAP`` px outside ``[lower, upper]``."""
    y = xp.arange(profiles.shape[-1], dtype=profiles.dtype)
    return (y < lower[..., None] - _BACKGROUND_GAP) | (y > upper[..., None] + _BACKGROUND_GAP)


def series_background(profiles: Any, lower: Any, upper: Any) -> Any:
    """Background level `(n,)` of each profile `(n, m)`, pooled over the series.

    The background pixels of profile ``i`` are those more than ``_BACKGROUND_GAP`` pixels
    outside its support ``[lower[i], upper[i]]``, ``k_i`` of them. Their level ``b_i`` is
    the Huber M-estimate of location (:func:`tomoalign._numerics.huber_location`, clipped at
    1.345 ``sigma``: as resistant as the median to a few bright pixels, 95 % as efficient as
    the mean on Gaussian noise), with the sampling variance ``v_i = sigma**2 / (0.95 k_i)``,
    ``sigma`` being the robust standard deviation (1.4826 MAD,
    :func:`tomoalign._numerics.robust_sigma`) of all background pixels of the series about
    their profile's median. Where the object fills most of the field of view ``k_i`` is
    small and ``b_i`` noisy, so each ``b_i`` is shrunk towards the level ``mu`` of all
    background pixels of the series (the same estimate, pooled; random-effects pooling)::

        b = mu + tau2 / (tau2 + v_i) * (b_i - mu)

    ``tau2`` is the method-of-moments (DerSimonian-Laird) estimate of the variance of the
    true background between projections, ``max(0, (Q - (p - 1)) / (S1 - S2 / S1))`` with
    ``Q = sum((b_i - mu)**2 / v_i)``, ``S1 = sum(1 / v_i)``, ``S2 = sum(1 / v_i**2)`` over
    the ``p`` profiles that have background pixels. A background that is the same for the
    whole series (detector offset, vacuum level) gives ``tau2 ~ 0``: every profile gets
    the pooled, nearly noise-free ``mu``. One that really varies between projections
    gives a large ``tau2``: every profile keeps its own ``b_i``.

    Parameters
    ----------
    profiles : array
        `(n, m)` float64 profiles (sums over x of each projection).
    lower, upper : array
        `(n,)` bounds of the object support, pixels (see
        :func:`support`).

    Returns
    -------
    array
        `(n,)` background of each profile, in profile units: the shrunk ``b_i``; ``mu``
        for a profile without background pixels; 0 when no profile has any. Without noise
        (``sigma == 0``) the ``b_i`` are the exact medians and kept.
    """
    xp = get_array_module(profiles)
    n, _m = profiles.shape
    outside = _background_pixels(xp, profiles, lower, upper)
    k = xp.sum(outside, axis=1)
    has = k > 0
    if not bool(xp.any(has)):
        return xp.zeros(n, dtype=profiles.dtype)
    masked = xp.where(outside[has], profiles[has], xp.nan)  # (p, m), NaN on the support
    mu = xp.nanmedian(masked)
    own = xp.nanmedian(masked, axis=1)
    sigma = robust_sigma(masked, center=own[:, None], ignore_nan=True)
    if float(sigma) > 0:
        own = huber_location(masked, own, sigma)
        mu = huber_location(masked.reshape(1, -1), xp.reshape(mu, (1,)), sigma)[0]
        if own.shape[0] > 1:
            var = sigma**2 / (HUBER_EFFICIENCY * k[has])
            w = 1.0 / var
            s1 = xp.sum(w)
            q = xp.sum(w * (own - mu) ** 2)
            tau2 = xp.maximum((q - (own.shape[0] - 1)) / (s1 - xp.sum(w**2) / s1), 0.0)
            own = mu + tau2 / (tau2 + var) * (own - mu)
    b = xp.zeros(n, dtype=profiles.dtype) + mu
    b[has] = own
    return b


def windowed_com(
    profiles: Any, center: Any, lower: Any, upper: Any, *, background: Any = None
) -> tuple[Any, Any]:
    """Background-insensitive center of mass of 1-D profiles along the last axis.

    The center ``c`` is the fixed point of the center of mass computed in a window
    symmetric about ``c`` that covers ``[lower, upper]`` (with 1-pixel linear edges; cut
    by the image edges, where the background estimate matters again). Because the window
    is symmetric, a constant background has no first moment about ``c`` and drops out,
    and noise far from the object no longer enters with a large lever arm.

    Parameters
    ----------
    profiles : array
        Profiles, shape ``(..., m)``, float64.
    center : array
        Starting centers, broadcastable to ``profiles.shape[:-1]``, pixels.
    lower, upper : array
        Bounds of the object support that the window must cover, broadcastable to
        ``profiles.shape[:-1]``, pixels.
    background : array or None
        Background of each projection (axis 0), `(n,)`, profile units (e.g. from
        :func:`series_background`). ``None`` (default): the median of the projection's
        pixels outside the support of all its profiles, as described in the code.

    Returns
    -------
    center : array
        Center of mass, shape ``profiles.shape[:-1]``, pixels from index 0.
    mass : array
        Background-subtracted mass inside the window, same shape.
    """
    xp = get_array_module(profiles)
    f = profiles
    m = f.shape[-1]
    y = xp.arange(m, dtype=f.dtype)
    shape = f.shape[:-1]
    c = xp.broadcast_to(xp.asarray(center, dtype=f.dtype), shape).copy()
    lower = xp.broadcast_to(xp.asarray(lower, dtype=f.dtype), shape)
    upper = xp.broadcast_to(xp.asarray(upper, dtype=f.dtype), shape)
    # background of each projection (axis 0): median of the pixels outside the support
    # of all its profiles; the median over the whole series where a projection has
    # fewer than 16 such pixels; 0 where there are none at all.
    n = f.shape[0]
    if background is not None:
        b = xp.asarray(background, dtype=f.dtype)
    else:
        outside = _background_pixels(xp, f, lower, upper)
        masked = xp.where(outside, f, xp.nan).reshape(n, -1)
        n_out = xp.sum(outside.reshape(n, -1), axis=1)
        if bool(xp.any(n_out > 0)):
            overall = xp.nanmedian(masked[n_out > 0])
            per = xp.nanmedian(xp.where((n_out > 0)[:, None], masked, 0.0), axis=1)
            b = xp.where(n_out >= 16, per, overall)
        else:
            b = xp.zeros(n, dtype=f.dtype)
    b = b.reshape((n,) + (1,) * (f.ndim - 1))
    fb = (f - b).reshape(-1, m)
    c = c.reshape(-1)
    lower, upper = lower.reshape(-1), upper.reshape(-1)
    mass = xp.zeros(c.shape, dtype=f.dtype)
    # Fixed-point (mean-shift) iterations; a profile stops once its step is below the
    # tolerance, so the slow ones (noisy, or a window cut by the image edge) do not make
    # every profile iterate.
    active = xp.arange(c.size)
    for _ in range(_COM_MAX_ITERATIONS):
        ca = c[active]
        h = xp.maximum(xp.maximum(ca - lower[active], upper[active] - ca), 1.0)[:, None]
        d = y - ca[:, None]
        # symmetric where the image allows, clipped by the image edges otherwise
        w = xp.clip(xp.minimum(xp.minimum(h + 0.5 - xp.abs(d), y + 1.0), m - y), 0.0, 1.0)
        w *= fb[active]
        ma = xp.sum(w, axis=-1)
        num = xp.sum(w * d, axis=-1)
        ok = ma > 0
        step = xp.where(ok, num / xp.where(ok, ma, 1.0), 0.0)
        mass[active] = ma
        c[active] = xp.clip(ca + step, 0.0, m - 1.0)
        active = active[xp.abs(step) >= _COM_TOLERANCE]
        if active.size == 0:
            break
    c, mass = c.reshape(shape), mass.reshape(shape)
    return c, mass


def shift_lines(xp: Any, fft: Any, lines: Any, shifts: Any, *, derivative: bool = False) -> Any:
    """Fourier-shift each row of ``lines`` (n, m) by ``shifts`` (n,) (content moves +s).

    A linear ramp joining the end points is removed first (and shifted analytically) so
    the periodic extension has no jump. With ``derivative`` the x-derivative of the
    shifted line is returned instead.
    """
    _n, m = lines.shape
    x = xp.arange(m, dtype=lines.dtype)
    # The ramp through the two end samples, as offset and slope (the slope also shifts it
    # analytically below); :func:`tomoalign._numerics.remove_end_ramp` with ``edge=1`` is
    # the same line but rounds differently, so this form is kept.
    slope = (lines[:, -1] - lines[:, 0]) / (m - 1)
    ramp = lines[:, :1] + slope[:, None] * x
    k = fft.rfftfreq(m).astype(lines.dtype) if xp is np else xp.fft.rfftfreq(m)
    spec = fft.rfft(lines - ramp, axis=-1, **fft_kwargs(xp))
    phase = xp.exp(-2j * np.pi * k[None, :] * shifts[:, None])
    if derivative:
        out = fft.irfft(spec * phase * (2j * np.pi * k[None, :]), n=m, axis=-1, **fft_kwargs(xp))
        return out + slope[:, None]
    out = fft.irfft(spec * phase, n=m, axis=-1, **fft_kwargs(xp))
    return out + ramp - slope[:, None] * shifts[:, None]


def band_weight(f: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Band-pass weight at radial frequency ``f`` (cycles/px), zero for ``f >= hi``.

    A raised-cosine low-pass reaching 0 at ``hi`` times a Gaussian high-pass of half
    height at ``lo``; all ones when ``lo <= 0`` and ``hi >= 0.5``.
    """
    if hi >= 0.5 and lo <= 0:
        return np.ones_like(f)
    w = np.where(f < hi, np.cos(0.5 * np.pi * np.minimum(f / hi, 1.0)) ** 2, 0.0)
    if lo > 0:
        w *= 1.0 - np.exp(-np.log(2.0) * (f / lo) ** 2)
    return w


def _peak1(spec: np.ndarray, k: np.ndarray, n: int, coef: np.ndarray, uf: int) -> np.ndarray:
    """Subpixel peak positions of 1D correlations given as half spectra `(p, n // 2 + 1)`.

    The whole-pixel maximum of the inverse FFT, then the upsampled DFT on a
    ``1 / uf`` px grid around it, refined by a parabola.
    """
    corr = np.fft.irfft(spec, n=n, axis=-1)
    i = corr.argmax(axis=1)
    i = np.where(i > n // 2, i - n, i).astype(float)
    offsets = subpixel_offsets(uf, _PEAK_REACH)
    grid = i[:, None] + offsets[None, :]
    kernel = fourier_phase(k, offsets, n) * coef[:, None]
    c = upsampled_dft(spec, (i,), (kernel,), (k,), (n,))
    return refine_peak(c, (grid,), uf)[:, 0]


def profile_positions(
    prof: np.ndarray,
    *,
    bandpass: tuple[float, float] = (0.01, 0.25),
    whiten: float = 0.5,
    upsample_factor: int = 20,
) -> np.ndarray:
    """Positions along x `(n,)` of the column profiles `(n, nx)`, aligned to their mean.

    Parameters
    ----------
    prof : numpy.ndarray
        `(n_tilts, nx)` sums over y of each projection.
    bandpass : tuple of float
        ``(lo, hi)`` in cycles per pixel, see :func:`band_weight`.
    whiten : float
        Exponent of the spectral whitening, 0 (plain correlation) to 1 (phase only).
    upsample_factor : int
        Subpixel grid of the peak search, refined by a parabola.

    Returns
    -------
    numpy.ndarray
        `(n_tilts,)` content positions in pixels (the shifts that align are their negative),
        zero mean.
    """
    nx = prof.shape[1]
    # No window (its fixed weights would pull the shifts towards 0): the 1D periodic
    # component is taken instead by removing the ramp joining the two ends (this rounding of
    # it, not :func:`tomoalign._numerics.remove_end_ramp`'s, is what the estimates rest on).
    ramp = np.linspace(0.0, 1.0, nx)[None, :] * (prof[:, -1:] - prof[:, :1]) + prof[:, :1]
    flat = prof - ramp
    f = np.fft.rfft(flat - flat.mean(axis=1, keepdims=True), axis=1)
    k = np.arange(f.shape[1], dtype=float)
    coef = hermitian_weights(nx)
    amp = np.abs(f)
    g = f * np.sqrt(band_weight(k / nx, *bandpass))
    g /= (amp + 1e-3 * amp.mean(axis=1, keepdims=True) + 1e-30) ** whiten
    uf = upsample_factor
    d = _peak1(g[:-1] * g[1:].conj(), k, nx, coef, uf)  # chain for a first estimate
    u = np.concatenate([[0.0], -np.cumsum(d)])
    for _ in range(_PROFILE_ITERATIONS):
        ref = (g * np.exp(2j * np.pi * k * u[:, None] / nx)).mean(axis=0)
        d = _peak1(g * ref.conj()[None, :], k, nx, coef, uf)
        u = d - d.mean()
    return u


def com_trend(
    rows: np.ndarray,
    uy: np.ndarray,
    *,
    chain_ok: np.ndarray | None = None,
    com_ok: np.ndarray | None = None,
    sigma: float = 1.0,
) -> np.ndarray:
    """Correction `(n,)` to chained y positions from the centre-of-mass motion.

    ``com - uy`` is the object's own centre-of-mass motion (smooth over the tilts) plus the
    chain's error; its low-pass over the tilt index replaces the low frequencies of the
    chain by those of the centre of mass (a complementary filter). A projection whose chain
    position is unreliable takes its position from its own centre of mass instead, with the
    object's motion interpolated from its neighbours.

    Parameters
    ----------
    rows : numpy.ndarray
        `(n_tilts, ny)` sums over x of each projection.
    uy : numpy.ndarray
        `(n_tilts,)` chained content positions along y, pixels.
    chain_ok : numpy.ndarray of bool, optional
        `(n_tilts,)` whose chained position agrees with its neighbours. Default all.
    com_ok : numpy.ndarray of bool, optional
        `(n_tilts,)` whose centre of mass may be used (not a blank or noise frame).
        Default all.
    sigma : float
        Width, in projections, of the Gaussian low-pass over the tilt index.

    Returns
    -------
    numpy.ndarray
        To be added to ``uy``. The centre of mass is the background-insensitive windowed
        one of :func:`windowed_com`.
    """
    from scipy.ndimage import gaussian_filter1d  # on the small (n,) array only

    n = uy.size
    chain_ok = np.ones(n, bool) if chain_ok is None else np.asarray(chain_ok, bool)
    com_ok = np.ones(n, bool) if com_ok is None else np.asarray(com_ok, bool)
    com, _ = windowed_com(rows, *support(rows))
    both = (chain_ok & com_ok).astype(float)
    level = np.average(com - uy, weights=both + 1e-12)
    resid = (com - uy - level) * both

    def smooth(width: float) -> tuple[np.ndarray, np.ndarray]:
        num = gaussian_filter1d(resid, width, mode="nearest")
        den = gaussian_filter1d(both, width, mode="nearest")
        return num / np.maximum(den, 1e-12), den

    trend, den = smooth(sigma)
    wide, wide_den = smooth(4.0 * sigma)
    trend = np.where(den > 1e-3, trend, np.where(wide_den > 1e-3, wide, 0.0))
    # Trusted projections end at uy + trend = true position + object motion - level (+ the
    # chain's high frequencies); one whose chain is broken but whose centre of mass is fine
    # gets the same from its own centre of mass: com - level.
    own = ~chain_ok & com_ok
    trend[own] = (com - uy - level)[own]
    return trend
