"""Shared numerics: robust location and scale, real-FFT helpers, the subpixel DFT peak search.

Every estimator that needs one of these calls it from here, so each constant is written
once with its reason. Functions that run on the GPU take the array module ``xp`` (NumPy or
CuPy, see :mod:`tomoalign._backend`); the others work on small NumPy arrays.

Where estimators deliberately use different settings (the Huber cut-off of a regression
versus that of a location, the number of reweighting passes), the setting is a parameter
here and a named constant at the caller, with the caller's reason beside it.

The arithmetic of each function is exactly that of the copies it replaces (same operations
in the same order), so results are bit for bit those of before.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from tomoalign._backend import get_array_module, to_numpy

__all__ = [
    "HUBER_EFFICIENCY",
    "HUBER_K",
    "MAD_TO_SIGMA",
    "TINY",
    "difference_sigma",
    "fourier_phase",
    "hermitian_weights",
    "huber_location",
    "huber_weights",
    "parabola_offset",
    "refine_peak",
    "remove_end_ramp",
    "robust_sigma",
    "subpixel_offsets",
    "upsampled_dft",
]

#: Median absolute deviation (MAD) to standard deviation, for Gaussian data:
#: ``1 / Phi^-1(3/4) = 1.482602...`` (half of a normal sample lies within 0.6745 sigma of its
#: median), rounded to the 5 significant digits every estimator has always used.
MAD_TO_SIGMA = 1.4826

#: Huber's tuning constant for a location: clipping residuals at 1.345 standard deviations
#: keeps 95 % of the mean's asymptotic efficiency on Gaussian noise (the median keeps 64 %)
#: and the median's resistance to a few outliers (Huber 1981, Holland & Welsch 1977).
HUBER_K = 1.345

#: Asymptotic efficiency of the Huber location at :data:`HUBER_K`, relative to the mean on
#: Gaussian noise: its sampling variance is ``sigma**2 / (HUBER_EFFICIENCY * n)``.
HUBER_EFFICIENCY = 0.95

#: Smallest magnitude divided by (avoids 0 / 0 for exactly zero residuals or powers).
TINY = 1e-300

#: Default pass limit and step tolerance (in units of ``scale``) of :func:`huber_location`.
_HUBER_MAX_ITERATIONS = 50
_HUBER_TOLERANCE = 1e-9


# --------------------------------------------------------------------------------------
# robust statistics
# --------------------------------------------------------------------------------------
def robust_sigma(
    values: Any,
    *,
    center: Any = "median",
    axis: int | None = None,
    keepdims: bool = False,
    ignore_nan: bool = False,
) -> Any:
    """Robust standard deviation: ``MAD_TO_SIGMA * median(|values - center|)``.

    Parameters
    ----------
    values : array
        NumPy or CuPy array, any shape; units of the data.
    center : {"median"}, None, scalar or array
        ``"median"`` (default): the median of ``values`` (along ``axis``). ``None``: the
        values are already deviations from their centre (residuals of a fit, or
        differences of neighbours with zero mean), taken as they are. Otherwise the centre
        itself, broadcastable to ``values``.
    axis : int, optional
        Axis along which the medians are taken; default all values.
    keepdims : bool
        Keep the reduced axis (length 1).
    ignore_nan : bool
        NaN values are missing (``nanmedian``).

    Returns
    -------
    float or array
        The scale, units of ``values``, in their dtype (float32 data gives a float32
        scale): a NumPy/CuPy scalar for ``axis=None``.

    Examples
    --------
    >>> import numpy as np
    >>> float(robust_sigma(np.array([1.0, 2.0, 3.0, 4.0, 100.0])))
    1.4826
    >>> robust_sigma(np.array([[1.0, -1.0, 3.0]]), center=None, axis=1)
    array([1.4826])
    """
    return MAD_TO_SIGMA * _mad(values, center, axis, keepdims, ignore_nan)


def _mad(values: Any, center: Any, axis: int | None, keepdims: bool, ignore_nan: bool) -> Any:
    """``median(|values - center|)`` as :func:`robust_sigma` describes, in the data's dtype."""
    xp = get_array_module(values)
    median = xp.nanmedian if ignore_nan else xp.median
    if isinstance(center, str):
        if center != "median":
            raise ValueError(f"center={center!r}; expected 'median', None or a value")
        mid = median(values) if axis is None else median(values, axis=axis, keepdims=True)
        dev = xp.abs(values - mid)
    elif center is None:
        dev = xp.abs(values)
    else:
        dev = xp.abs(values - center)
    return median(dev, axis=axis, keepdims=keepdims)


def difference_sigma(differences: Any) -> float:
    """Standard deviation of white pixel noise from differences of neighbouring pixels.

    A difference of two independent pixels has twice the noise variance, and an image's
    structure changes slowly from pixel to pixel, so ``robust_sigma(differences) /
    sqrt(2)`` measures the noise alone.

    Parameters
    ----------
    differences : numpy.ndarray
        Differences of neighbouring pixels (any shape; all are pooled).

    Returns
    -------
    float
        The noise standard deviation of one pixel, pixel units (computed in float64 from
        the median, whatever the dtype of ``differences``).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(1).normal(scale=2.0, size=100_000) + np.linspace(0, 50, 100_000)
    >>> round(difference_sigma(np.diff(x)), 1)
    2.0
    """
    return MAD_TO_SIGMA * float(_mad(differences, "median", None, False, False)) / math.sqrt(2.0)


def huber_weights(residuals: Any, cut: Any) -> Any:
    """Huber weights ``min(1, cut / |r|)`` of residuals for iteratively reweighted fits.

    Parameters
    ----------
    residuals : array
        NumPy or CuPy array of residuals, any shape and units.
    cut : float or array
        Clipping point, same units, broadcastable (e.g. ``HUBER_K * robust_sigma(r)``).

    Returns
    -------
    array
        Weights in ``(0, 1]``, float: 1 within ``cut`` of zero, ``cut / |r|`` beyond, so the
        weighted residual never exceeds ``cut``.

    Examples
    --------
    >>> import numpy as np
    >>> huber_weights(np.array([0.0, -1.0, 4.0]), 2.0)
    array([1. , 1. , 0.5])
    """
    xp = get_array_module(residuals)
    r = xp.abs(residuals)
    return xp.where(r <= cut, 1.0, cut / xp.maximum(r, TINY))


def huber_location(
    values: Any,
    start: Any,
    scale: Any,
    *,
    k: float = HUBER_K,
    max_iterations: int = _HUBER_MAX_ITERATIONS,
    tolerance: float = _HUBER_TOLERANCE,
) -> Any:
    """Huber M-estimate of the location of each row of ``values``, NaN = missing.

    Iteratively reweighted mean (:func:`huber_weights` at ``k * scale``) from ``start``,
    until every row's step is at most ``tolerance * scale`` or ``max_iterations`` passes.

    Parameters
    ----------
    values : array
        `(p, m)` NumPy or CuPy array; NaN marks a missing value.
    start : array
        `(p,)` starting locations (e.g. the row medians), units of ``values``.
    scale : float or 0-d array
        Robust standard deviation of the values (e.g. :func:`robust_sigma`), > 0.
    k : float
        Clipping point in units of ``scale``; default :data:`HUBER_K`.
    max_iterations : int
        Most reweighting passes.
    tolerance : float
        Convergence: largest step, in units of ``scale``.

    Returns
    -------
    array
        `(p,)` locations, units of ``values``.

    Examples
    --------
    >>> import numpy as np
    >>> v = np.array([[0.0, 1.0, 2.0, 3.0, 4.0, 50.0, np.nan]])
    >>> round(float(huber_location(v, np.array([2.0]), 1.0)[0]), 6)  # the mean: 10
    2.5
    """
    xp = get_array_module(values)
    valid = ~xp.isnan(values)
    x = xp.where(valid, values, 0.0)
    c = start
    cut = k * scale
    for _ in range(max_iterations):
        w = xp.where(valid, huber_weights(x - c[:, None], cut), 0.0)
        new = xp.sum(w * x, axis=1) / xp.sum(w, axis=1)
        done = bool(xp.max(xp.abs(new - c)) <= tolerance * scale)
        c = new
        if done:
            break
    return c


# --------------------------------------------------------------------------------------
# real FFT helpers
# --------------------------------------------------------------------------------------
def hermitian_weights(n: int, m: int | None = None, *, nyquist: bool = True, xp: Any = np) -> Any:
    """Weights of the columns of a real FFT's half spectrum in sums over the full spectrum.

    ``rfft`` of a length-``n`` real signal keeps frequencies ``0 .. n // 2``; the others are
    their complex conjugates. A sum over the full spectrum of a Hermitian quantity (power,
    a correlation's real part) is the sum over the half spectrum with these weights: 1 for
    the DC column and, for even ``n``, the Nyquist column (no conjugate partner), 2 for
    every other column.

    Parameters
    ----------
    n : int
        Length of the real transform.
    m : int, optional
        Number of columns kept, from frequency 0 (a cropped half spectrum); at most
        ``n // 2 + 1`` (the default).
    nyquist : bool
        Give the Nyquist column of an even ``n`` the weight 1 (default). False weights it 2,
        as the phase correlation's cropped spectra do (there it is 0 after the band-pass
        unless the band reaches 0.5 cycles/px).
    xp : module
        Array module of the result (NumPy or CuPy).

    Returns
    -------
    array
        `(m,)` float64 weights.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=8)
    >>> w = hermitian_weights(8)
    >>> bool(np.isclose(w @ np.abs(np.fft.rfft(x)) ** 2, np.sum(np.abs(np.fft.fft(x)) ** 2)))
    True
    >>> hermitian_weights(7)
    array([1., 2., 2., 2.])
    """
    m = n // 2 + 1 if m is None else int(m)
    if not 1 <= m <= n // 2 + 1:
        raise ValueError(f"m={m}; a half spectrum of length {n} has 1 to {n // 2 + 1} columns")
    w = xp.full(m, 2.0)
    w[0] = 1.0
    if nyquist and n % 2 == 0 and m == n // 2 + 1:
        w[-1] = 1.0
    return w


def remove_end_ramp(lines: Any, edge: int = 4) -> Any:
    """Subtract from each line the straight line through its two end levels.

    Before a Fourier transform of a line whose two ends differ (a background gradient, an
    object crossing the image edge), so that the periodic or zero-padded extension has no
    step: the end levels are the means of the first and last ``e = max(1, min(edge,
    m // 4))`` samples, placed at the centres of those groups.

    Parameters
    ----------
    lines : array
        `(..., m)` NumPy or CuPy float array; lines along the last axis.
    edge : int
        Samples averaged at each end (default 4).

    Returns
    -------
    array
        `(..., m)` the lines less their ramps (a new array).

    Examples
    --------
    >>> import numpy as np
    >>> remove_end_ramp(np.arange(8.0) * 3 + 1)
    array([0., 0., 0., 0., 0., 0., 0., 0.])
    """
    xp = get_array_module(lines)
    m = lines.shape[-1]
    e = max(1, min(edge, m // 4))
    left = xp.mean(lines[..., :e], axis=-1, keepdims=True)
    right = xp.mean(lines[..., -e:], axis=-1, keepdims=True)
    x = (xp.arange(m, dtype=lines.dtype) - (e - 1) / 2) / max(m - e, 1)
    return lines - (left + (right - left) * x)


# --------------------------------------------------------------------------------------
# subpixel peak of a correlation given by its half spectrum (Guizar-Sicairos et al. 2008)
# --------------------------------------------------------------------------------------
def fourier_phase(a: Any, b: Any, n: int, xp: Any = np) -> Any:
    """The DFT phase factors ``exp(2 pi i a[j] b[l] / n)``, `(len(a), len(b))` complex128.

    With ``a`` positions (pixels) and ``b`` frequency indices, row ``j`` shifts a spectrum
    by ``-a[j]`` pixels (evaluates its inverse DFT at ``a[j]``); with ``a`` frequencies and
    ``b`` positions it is the kernel of a matrix DFT evaluated at the positions ``b``.
    The product is formed as ``((2 pi i / n) * a) * b``, in that order.

    Parameters
    ----------
    a, b : array
        1-D real arrays (NumPy, or on ``xp``'s device).
    n : int
        Length of the transform.
    xp : module
        Array module of the result.

    Examples
    --------
    >>> import numpy as np
    >>> p = fourier_phase(np.array([0.0, 1.0]), np.arange(4.0), 4)
    >>> np.round(p, 12)
    array([[ 1.+0.j,  1.+0.j,  1.+0.j,  1.+0.j],
           [ 1.+0.j,  0.+1.j, -1.+0.j, -0.-1.j]])
    """
    return xp.exp((2j * np.pi / n) * xp.asarray(a)[:, None] * xp.asarray(b)[None, :])


def subpixel_offsets(upsample_factor: int, reach: float = 1.5) -> np.ndarray:
    """Offsets (pixels) of an upsampled grid around a whole-pixel peak.

    Multiples of ``1 / upsample_factor`` from ``-h`` to ``h``, ``h = ceil(reach *
    upsample_factor) / upsample_factor``: 1.5 px by default, one pixel beyond the half pixel
    in which the true peak of a whole-pixel maximum lies.

    Examples
    --------
    >>> subpixel_offsets(2)
    array([-1.5, -1. , -0.5,  0. ,  0.5,  1. ,  1.5])
    """
    half = math.ceil(reach * upsample_factor)
    return np.arange(-half, half + 1) / upsample_factor


def upsampled_dft(
    spectra: Any,
    whole: Sequence[Any],
    kernels: Sequence[Any],
    freqs: Sequence[Any],
    sizes: Sequence[int],
    *,
    xp: Any = np,
) -> np.ndarray:
    """Real part of the inverse DFT of half spectra on subpixel grids (matrix DFT).

    The grid of spectrum ``j`` along each axis is ``whole[axis][j] + offsets``: its
    whole-pixel part is a per-spectrum phase factor (:func:`fourier_phase`), the subpixel
    ``offsets`` are in the kernels shared by all spectra, so the evaluation is matrix
    products (Guizar-Sicairos, Thurman & Fienup 2008, without their zero padding step).

    Parameters
    ----------
    spectra : array
        `(p, K)` (1-D) or `(p, Ky, Kx)` (2-D) complex half spectra, frequencies along the
        last axis ``0 .. K - 1`` (on ``xp``'s device for 2-D).
    whole : sequence of array
        Per axis, `(p,)` whole-pixel grid centres (NumPy).
    kernels : sequence of array
        Per axis, the DFT kernel at the offsets, with the :func:`hermitian_weights` on the
        last (half-spectrum) axis: 1-D ``fourier_phase(k, offsets, n) * weights[:, None]``
        `(K, g)`; 2-D ``fourier_phase(offsets_y, ky, ny)`` `(gy, Ky)` and
        ``fourier_phase(kx, offsets_x, nx) * weights[:, None]`` `(Kx, gx)`, in the dtype of
        ``spectra``.
    freqs : sequence of array
        Per axis, the (signed) frequency indices of the spectrum's entries.
    sizes : sequence of int
        Per axis, the length of the full transform.
    xp : module
        Array module of ``spectra`` (2-D).

    Returns
    -------
    numpy.ndarray
        `(p, g)` or `(p, gy, gx)` float64 correlation values on the grids (times the
        transform size; unnormalised like ``irfft`` times ``n``).

    Notes
    -----
    The 1-D form applies each spectrum's phase to the spectrum, in float64; the 2-D form
    folds it into the kernels of the two axes (single precision, one batched product per
    axis, which is what a GPU does fast). The two round differently; each is the arithmetic
    its estimator has always used.

    Examples
    --------
    >>> import numpy as np
    >>> n = 32
    >>> x = np.exp(-0.5 * ((np.arange(n) - 10.3) / 2.0) ** 2)
    >>> spec = np.fft.rfft(x)[None, :]
    >>> k = np.arange(spec.shape[1], dtype=float)
    >>> off = subpixel_offsets(10)
    >>> ker = fourier_phase(k, off, n) * hermitian_weights(n)[:, None]
    >>> values = upsampled_dft(spec, (np.array([10.0]),), (ker,), (k,), (n,))
    >>> float(10.0 + off[values[0].argmax()])
    10.3
    """
    if spectra.ndim == 2:
        base = spectra * fourier_phase(whole[0], freqs[0], sizes[0])
        return to_numpy((base @ kernels[0]).real).astype(np.float64)
    by = fourier_phase(whole[0], freqs[0], sizes[0], xp).astype(spectra.dtype)
    bx = fourier_phase(whole[1], freqs[1], sizes[1], xp).astype(spectra.dtype)
    ey = kernels[0][None, :, :] * by[:, None, :]
    ex = kernels[1][None, :, :] * bx[:, :, None]
    return to_numpy(xp.matmul(xp.matmul(ey, spectra), ex).real).astype(np.float64)


def parabola_offset(cm: np.ndarray, c0: np.ndarray, cp: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Vertex offset (grid steps, within +-0.5) of the parabola through three samples.

    Parameters
    ----------
    cm, c0, cp : numpy.ndarray
        Samples at -1, 0 and +1 grid steps (``c0`` the largest).
    ok : numpy.ndarray of bool
        Where the three samples exist (not cut by the grid's edge); elsewhere 0.

    Returns
    -------
    numpy.ndarray
        Offsets of the maximum, 0 where ``ok`` is false or the samples are not concave.

    Examples
    --------
    >>> import numpy as np
    >>> parabola_offset(np.array([1.0]), np.array([2.0]), np.array([1.5]), np.array([True]))
    array([0.16666667])
    """
    den = cm - 2 * c0 + cp
    good = ok & (den < 0)
    off = np.where(good, 0.5 * (cm - cp) / np.where(good, den, -1.0), 0.0)
    return np.clip(off, -0.5, 0.5)


def refine_peak(
    values: np.ndarray, grids: Sequence[np.ndarray], upsample_factor: int
) -> np.ndarray:
    """Position of the maximum of values sampled on grids, refined by parabolas per axis.

    Parameters
    ----------
    values : numpy.ndarray
        `(p, g_1, ..., g_d)` samples of ``p`` functions of ``d`` variables.
    grids : sequence of numpy.ndarray
        Per axis, `(p, g_axis)` positions (pixels) of the samples.
    upsample_factor : int
        Samples per pixel: the grid step is ``1 / upsample_factor``; for 1 (whole pixels)
        there is no parabola.

    Returns
    -------
    numpy.ndarray
        `(p, d)` float64 positions of the maxima, pixels. Each axis's parabola is through
        the maximum and its two neighbours along that axis (none at a grid edge).

    Examples
    --------
    >>> import numpy as np
    >>> v = np.array([[0.0, 3.0, 4.0, 1.0]])
    >>> refine_peak(v, (np.array([[0.0, 0.5, 1.0, 1.5]]),), 2)
    array([[0.875]])
    """
    p, *shape = values.shape
    idx = np.unravel_index(values.reshape(p, -1).argmax(axis=1), tuple(shape))
    ar = np.arange(p)
    out = []
    for axis, (grid, i) in enumerate(zip(grids, idx, strict=True)):
        d = grid[ar, i]
        if upsample_factor > 1:
            j = np.clip(i, 1, shape[axis] - 2)
            at = [list(idx) for _ in range(3)]
            for step, where in zip((-1, 0, 1), at, strict=True):
                where[axis] = j + step
            cm, c0, cp = (values[(ar, *where)] for where in at)
            d = d + parabola_offset(cm, c0, cp, j == i) / upsample_factor
        out.append(d)
    return np.stack(out, axis=1)
