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

import math

import numpy as np

__all__ = ["band_weight", "com_trend", "parabola_offset", "profile_positions"]

# Iterations of the x-profile alignment against the mean aligned profile.
_PROFILE_ITERATIONS = 3
# Percentile of each row profile taken as the background before the centre of mass.
_BACKGROUND_PERCENTILE = 5.0


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


def parabola_offset(cm: np.ndarray, c0: np.ndarray, cp: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Vertex offset (grid steps, within +-0.5) of the parabola through three samples."""
    den = cm - 2 * c0 + cp
    good = ok & (den < 0)
    off = np.where(good, 0.5 * (cm - cp) / np.where(good, den, -1.0), 0.0)
    return np.clip(off, -0.5, 0.5)


def _dft1(
    spec: np.ndarray, grid: np.ndarray, k: np.ndarray, n: int, coef: np.ndarray
) -> np.ndarray:
    e = np.exp((2j * np.pi / n) * grid[:, :, None] * k[None, None, :]) * coef
    return np.einsum("pmk,pk->pm", e, spec).real


def _peak1(spec: np.ndarray, k: np.ndarray, n: int, coef: np.ndarray, uf: int) -> np.ndarray:
    """Subpixel peak positions of 1D correlations given as half spectra `(p, n // 2 + 1)`."""
    corr = np.fft.irfft(spec, n=n, axis=-1)
    i = corr.argmax(axis=1)
    i = np.where(i > n // 2, i - n, i).astype(float)
    half = math.ceil(1.5 * uf)
    grid = i[:, None] + np.arange(-half, half + 1)[None, :] / uf
    c = _dft1(spec, grid, k, n, coef)
    j = c.argmax(axis=1)
    ar = np.arange(c.shape[0])
    d = grid[ar, j]
    if uf > 1:
        jc = np.clip(j, 1, c.shape[1] - 2)
        d = d + parabola_offset(c[ar, jc - 1], c[ar, jc], c[ar, jc + 1], jc == j) / uf
    return d


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
    # component is taken instead by removing the ramp joining the two ends.
    ramp = np.linspace(0.0, 1.0, nx)[None, :] * (prof[:, -1:] - prof[:, :1]) + prof[:, :1]
    flat = prof - ramp
    f = np.fft.rfft(flat - flat.mean(axis=1, keepdims=True), axis=1)
    k = np.arange(f.shape[1], dtype=float)
    coef = np.full(k.size, 2.0)
    coef[0] = 1.0
    if nx % 2 == 0:
        coef[-1] = 1.0
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
    rows: np.ndarray, uy: np.ndarray, trusted: np.ndarray, *, sigma: float = 1.0
) -> np.ndarray:
    """Correction `(n,)` to chained y positions from the centre-of-mass motion.

    Parameters
    ----------
    rows : numpy.ndarray
        `(n_tilts, ny)` sums over x of each projection.
    uy : numpy.ndarray
        `(n_tilts,)` chained content positions along y, pixels.
    trusted : numpy.ndarray
        `(n_tilts,)` 1 for projections whose centre of mass may be used, 0 otherwise
        (untrusted ones neither give nor receive a trend: normalised convolution).
    sigma : float
        Width, in projections, of the Gaussian low-pass over the tilt index.

    Returns
    -------
    numpy.ndarray
        To be added to ``uy``. The background of each profile is its 5th percentile.
    """
    from scipy.ndimage import gaussian_filter1d  # on the small (n,) array only

    rows = rows - np.percentile(rows, _BACKGROUND_PERCENTILE, axis=1, keepdims=True)
    mass = rows.sum(axis=1)
    mass = np.where(mass > 0, mass, 1.0)
    com = (rows * np.arange(rows.shape[1])).sum(axis=1) / mass
    resid = com - uy
    resid = (resid - np.average(resid, weights=trusted + 1e-12)) * trusted
    num = gaussian_filter1d(resid, sigma, mode="nearest")
    den = gaussian_filter1d(trusted, sigma, mode="nearest")
    return np.where(den > 1e-3, num / np.maximum(den, 1e-3), 0.0)
