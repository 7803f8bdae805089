"""Shifts of a tilt series by phase correlation of neighbouring projections.

The estimate and the application of shifts are separate steps: this module only
estimates; ``tomoalign.shifts.apply_shifts`` applies. Conventions: a tilt series is
`(n_tilts, ny, nx)` with the tilt axis parallel to x (array axis 2); shifts are
`(n_tilts, 2)` float64 pixels as ``(dy, dx)`` in :func:`scipy.ndimage.shift`'s sign
(applying ``s`` moves the content by ``+s``), and are the shifts that *align* the series.

The options are a :class:`PhaseCorrelationOptions`, checked once; the estimate runs in
three steps (:func:`_estimate`): transform every projection once, measure every pair of
neighbours, solve the positions.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from types import ModuleType
from typing import Any, NamedTuple

import numpy as np

from tomoalign._backend import (
    fft_kwargs,
    get_array_module,
    get_fft_module,
    n_workers,
    to_numpy,
)
from tomoalign._profiles import (
    band_weight,
    com_trend,
    parabola_offset,
    profile_positions,
)
from tomoalign._validation import (
    check_profiles,
    check_series_array,
    require_finite,
)
from tomoalign.estimate._options import (
    MAX_UPSAMPLE_FACTOR,
    PERIODIC,
    PhaseCorrelationOptions,
    check_progress,
)
from tomoalign.shifts import apply_shifts, output_dtype, shift_spectra

__all__ = [
    "MAX_UPSAMPLE_FACTOR",
    "PERIODIC",
    "phase_correlation_align",
    "phase_correlation_shifts",
]

# Bytes of float32 projections (and of cropped cross-power spectra) handled per chunk.
_CHUNK_BYTES = 96 * 2**20
# Bytes of float32 projections that one core takes through a stage at a time (CPU).
_GROUP_BYTES = 4 * 2**20
# Pair groups per core in each round of the pair stage (CPU): bounds the buffer of
# cross-power spectra to a few groups per core.
_ROUND_GROUPS_PER_CORE = 2
# Tilt-index lags of the correlated pairs: neighbours and next-but-one neighbours.
_LAGS = (1, 2)
# Robust-solve settings: Tukey biweight cut = max(_MIN_CUT px, _MAD_CUTS robust sigmas).
_MIN_CUT = 1.0
_MAD_CUTS = 6.0
_IRLS_ITERATIONS = 20
#: A projection whose best normalised correlation peak with a neighbour is below this
#: fraction of the median projection's is not trusted for the centre-of-mass trend.
_MIN_RELATIVE_PEAK = 0.3
#: Highest frequency (cycles/px) of the coarse correlation that locates each peak to the
#: nearest few pixels; the upsampled DFT then evaluates the full band around it.
_COARSE = 0.125


def _tukey(n: int, frac: float) -> np.ndarray:
    """Tukey (cosine-tapered) window of length ``n``, ``frac`` of ``n`` tapered at each end."""
    w = np.ones(n)
    m = round(frac * n)
    if m > 0:
        ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(m) + 0.5) / m)
        w[:m] = ramp
        w[n - m :] = ramp[::-1]
    return w


class _Overlap:
    """Circular autocorrelation of a window at real lags, 1 at lag 0, with a cache.

    The correlation of two tapered images is the correlation of the untapered ones times
    this overlap, which pulls peaks towards zero shift; dividing by it removes the pull.
    """

    def __init__(self, w: np.ndarray) -> None:
        self._n = w.size
        power = np.abs(np.fft.rfft(w)) ** 2
        c = np.full(power.size, 2.0)
        c[0] = 1.0
        if self._n % 2 == 0:
            c[-1] = 1.0
        self._weights = c * power / (self._n * (w**2).sum())
        self._k = np.arange(power.size)

    def __call__(self, r: np.ndarray) -> np.ndarray:
        # The lags of all pairs are few distinct values (whole pixels plus a fixed grid).
        values, inverse = np.unique(r, return_inverse=True)
        o = np.cos(2 * np.pi * values[:, None] * self._k / self._n) @ self._weights
        return o[inverse].reshape(r.shape)


def _crop(full: Any, kmy: int, my: int, mxh: int, xp: ModuleType, out: Any = None) -> Any:
    """Rows ``|ky| <= kmy`` (negative ones at the end of ``my`` rows) and columns ``< mxh``."""
    ny = full.shape[-2]
    if out is None:
        out = xp.empty((*full.shape[:-2], my, mxh), dtype=np.complex64)
    if my >= ny:
        out[...] = full[..., :mxh]
        return out
    out[..., : kmy + 1, :] = full[..., : kmy + 1, :mxh]
    out[..., kmy + 1 : my - kmy, :] = 0
    out[..., my - kmy :, :] = full[..., ny - kmy :, :mxh]
    return out


def _group_size(xp: ModuleType, ny: int, nx: int) -> int:
    """Projections of `(ny, nx)` per group: a few MB per CPU core, about 100 MB on a GPU."""
    return max(1, (_GROUP_BYTES if xp is np else _CHUNK_BYTES) // (ny * nx * 4))


def _crop_size(n: int, kmax: int) -> int:
    """FFT-friendly length holding frequencies ``|k| <= kmax`` (``n`` if no gain)."""
    import scipy.fft  # next_fast_len only: a size, not a transform

    m = scipy.fft.next_fast_len(2 * kmax + 2, real=True)
    return n if m >= n else m


def phase_correlation_shifts(
    data: Any,
    /,
    *,
    start: int | None = None,
    upsample_factor: int = 3,
    bandpass: tuple[float, float] | None = (0.01, 0.25),
    taper: float | str = PERIODIC,
    whiten: float = 0.5,
    max_jump: float | None = None,
    com_sigma: float | None = 1.0,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Estimate the shifts that align a tilt series by neighbour phase correlation.

    Every projection is Fourier transformed once, its edges kept out of the spectrum by the
    periodic-plus-smooth decomposition (or a window); neighbours ``(i, i + 1)``
    and next-but-one neighbours ``(i, i + 2)`` are cross-correlated in one batch with a
    band-passed, partially whitened cross-power spectrum; each peak is refined to
    subpixel precision by an upsampled matrix DFT (Guizar-Sicairos et al. 2008), and the
    positions are solved from all pairs by robust least squares (so one bad projection or
    pair does not derail the chain). Along x, where a tilt about x leaves the column sums
    of a projection unchanged, the shifts come from band-passed (unwhitened) correlation of
    those x profiles against their common aligned mean (no chaining). Along y, the
    correlation chain is combined with the first-moment consistency of the projections
    (their centre of mass moves rigidly with the tilt).

    Parameters
    ----------
    data : array
        Tilt series `(n_tilts, ny, nx)`, tilt axis parallel to x (axis 2); NumPy or CuPy,
        any real dtype (computed in float32). At least 3 projections of 8 x 8 px. Not
        modified.
    start : int or None
        Reference projection, whose shift is 0 (negative values count from the end).
        Default ``None``: the central projection ``n_tilts // 2``. The result for another
        ``start`` differs only by a constant.
    upsample_factor : int
        Subpixel refinement: the full-band correlation is evaluated on a
        ``1 / upsample_factor`` px grid around the coarse peak (within 1 px beyond the coarse
        sampling interval, at least 1.5 px), and the grid maximum refined by a parabola.
        1 gives whole pixels; at most 100 (``MAX_UPSAMPLE_FACTOR``: the grid grows as its
        square, and 1/100 px is finer than any tilt series supports). Default 3.
    bandpass : tuple of float or None
        ``(low, high)`` spatial frequencies in cycles per pixel (Nyquist = 0.5) of the
        weight on the cross-power spectrum: a Gaussian high-pass reaching one half at
        ``low`` (removes background and edge gradients) times a raised-cosine low-pass
        falling to zero at ``high`` (removes noise-dominated frequencies; the spectra are
        cropped there, which makes the correlations cheaper). ``None``: no weighting.
        Default ``(0.01, 0.25)``.
    taper : {"periodic"} or float
        How the image edges are kept out of the spectrum (an image's wrap-around edges put a
        bright cross in it that correlates at zero shift). ``"periodic"`` (default): the
        periodic-plus-smooth decomposition (Moisan 2011) -- the smooth part, fixed by the
        jumps across the image borders, is subtracted in Fourier space, so every pixel keeps
        its full weight and the raw projections' transforms can be shared with the Fourier
        shift that applies the result (:func:`phase_correlation_align`). A fraction in
        (0, 0.5): that fraction of the width and height is tapered by a cosine (Tukey
        window) at each edge after subtracting the mean, and the window's own pull towards
        zero shift is divided out. 0: neither (only the mean is removed).
    whiten : float
        Exponent ``p`` of the spectrum normalisation ``F / |F|**p`` of each projection:
        0 is plain cross-correlation, 1 full phase correlation. Partial whitening (the
        default 0.5) keeps the sharpness of phase correlation and most of the
        noise robustness of cross-correlation. The x profiles are not whitened.
    max_jump : float or None
        Largest disagreement in pixels between a pair's measured shift and the shift
        implied by all the other pairs; pairs beyond it get no weight. ``None`` (default):
        6 robust standard deviations (1.4826 MAD) of the disagreements, at least 1 px.
    com_sigma : float or None
        Along y, the low-frequency part (a Gaussian low-pass of width ``com_sigma``
        projections) of the difference between the projections' centres of mass and the
        correlation chain is added to the chain. This removes the drift that chained
        correlations accumulate as projections deform with the tilt (foreshortening);
        it assumes the object stays in the field of view on a roughly uniform background
        (the 5th percentile of each row profile is subtracted as background).
        At most ``n_tilts`` (a wider low-pass is a constant). ``None``: pure correlation
        chain. Default 1.0.
    progress : callable or None
        Called with the number of projections transformed since the previous call (so
        ``tqdm.update`` can be passed); the calls add up to ``n_tilts``. Default ``None``.

    Returns
    -------
    numpy.ndarray
        `(n_tilts, 2)` float64 shifts in pixels, ``[:, 0]`` along y (axis 1) and
        ``[:, 1]`` along x (axis 2), in :func:`scipy.ndimage.shift`'s sign: applying
        ``shifts[i]`` to projection ``i`` aligns it; ``shifts[start]`` is ``(0, 0)``.

    Raises
    ------
    ValueError
        For data that is not 3D, has fewer than 3 projections, non-finite pixels or a
        constant projection; for ``start`` out of range, ``upsample_factor`` outside
        [1, 100], ``com_sigma`` outside (0, n_tilts] or other out-of-range options.
    TypeError
        For a non-integer ``start`` or ``upsample_factor`` or a complex dtype.

    Notes
    -----
    Cost: one ``rfft2`` per projection at full size; per pair, one inverse FFT of the
    cross-power spectrum cropped at ``min(bandpass[1], 0.125)`` cycles/px (a sixteenth of
    the full size) to locate the peak to a few pixels, then matrix products that evaluate
    the full band (up to ``bandpass[1]``) on the subpixel grid around it. On the CPU each
    core takes its own projections (and pairs) through these steps a few at a time; the
    matrix products run batched on BLAS's threads, so the whole estimate costs about as much
    as an ``rfft2`` of every projection plus an ``irfft2`` per neighbour pair.
    :func:`phase_correlation_align` shares the transforms with the Fourier shift that
    applies the result.
    Extra memory: the cropped spectra (at most about the size of the float32 stack), the
    cropped cross-power spectra of all pairs (about twice that), plus chunks of about
    100 MB.

    The pair measurements are combined by iteratively reweighted least squares with
    Tukey's biweight on the residuals; a projection replaced by noise or shifted far off
    loses its pairs' weight while the lag-2 pairs bridge over it.

    References
    ----------
    .. [1] M. Guizar-Sicairos, S. T. Thurman and J. R. Fienup, "Efficient subpixel image
       registration algorithms", Opt. Lett. 33, 156-158 (2008).
       https://doi.org/10.1364/OL.33.000156
    .. [2] C. D. Kuglin and D. C. Hines, "The phase correlation image alignment method",
       Proc. IEEE Int. Conf. Cybernetics and Society, 163-165 (1975).
    .. [3] L. Moisan, "Periodic plus smooth image decomposition", J. Math. Imaging Vis. 39,
       161-179 (2011). https://doi.org/10.1007/s10851-010-0227-1
    .. [4] S. Helgason, "The Radon transform on Euclidean spaces, compact two-point
       homogeneous spaces and Grassmann manifolds", Acta Math. 113, 153-180 (1965).
       https://doi.org/10.1007/BF02391776

    Examples
    --------
    >>> import numpy as np
    >>> from tomoalign.estimate._phase_correlation import phase_correlation_shifts
    >>> rng = np.random.default_rng(0)
    >>> stack = np.repeat(rng.random((1, 64, 64), dtype=np.float32), 5, axis=0)
    >>> stack[3] = np.roll(stack[3], (2, -3), axis=(0, 1))
    >>> phase_correlation_shifts(stack, bandpass=None, com_sigma=None).round(2)[3]
    array([-2.,  3.])
    """
    options = PhaseCorrelationOptions(
        start=start,
        upsample_factor=upsample_factor,
        bandpass=bandpass,
        taper=taper,
        whiten=whiten,
        max_jump=max_jump,
        com_sigma=com_sigma,
    )
    shifts, _, _ = _pc(data, options, progress)
    return shifts


def _pc(
    data: Any, options: PhaseCorrelationOptions, progress: Callable[[int], None] | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`phase_correlation_shifts` and the row and column profiles it read (float64)."""
    check_progress(progress, "projections read")
    with _thread_pool(data) as pool:
        result = _estimate(data, options, progress, pool=pool)
    return result.shifts, result.rows, result.cols


@contextmanager
def _thread_pool(data: Any) -> Iterator[ThreadPoolExecutor | None]:
    """Threads for the elementwise and per-projection work: one per core (CPU data only)."""
    workers = n_workers()
    if get_array_module(data) is not np or workers < 2:
        yield None
        return
    with ThreadPoolExecutor(workers) as pool:
        yield pool


def phase_correlation_align(
    data: Any,
    /,
    *,
    start: int | None = None,
    upsample_factor: int = 3,
    bandpass: tuple[float, float] | None = (0.01, 0.25),
    taper: float | str = PERIODIC,
    whiten: float = 0.5,
    max_jump: float | None = None,
    com_sigma: float | None = 1.0,
    progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, Any]:
    """Estimate the shifts by :func:`phase_correlation_shifts` and Fourier-shift the series.

    The result equals ``phase_correlation_shifts(data, ...)`` followed by
    ``apply_shifts(data, shifts, shift_type="fourier")``, but each projection is Fourier
    transformed only once for both steps when the estimate uses the spectra of the raw
    projections (``taper="periodic"``, the default, or ``taper=0``): the half spectra are
    kept in one buffer, then multiplied by the phase ramps and inverted a few projections at
    a time, the shifted images written into the memory of spectra already consumed. With a
    window (``taper > 0``) the two steps run one after the other.

    Parameters
    ----------
    data : array
        Tilt series `(n_tilts, ny, nx)`, tilt axis parallel to x; NumPy or CuPy, any real
        dtype. Not modified.
    start, upsample_factor, bandpass, taper, whiten, max_jump, com_sigma, progress
        As for :func:`phase_correlation_shifts`.

    Returns
    -------
    shifts : numpy.ndarray
        `(n_tilts, 2)` float64 shifts ``(dy, dx)`` in pixels, as
        :func:`phase_correlation_shifts` returns them.
    aligned : array
        `(n_tilts, ny, nx)` new array of the kind of ``data`` (NumPy or CuPy): float64 for
        float64 input, float32 otherwise, as :func:`tomoalign.apply_shifts` returns it.

    Notes
    -----
    Extra memory: the half spectra of the whole series (complex64 for float32 output), into
    whose memory the output is written as they are consumed (so the output adds nothing:
    the returned array is a view of the first ``n_tilts * ny * nx`` elements of that
    buffer, which is larger by the factor ``2 (nx // 2 + 1) / nx``), plus the cropped
    spectra of the estimate.
    """
    options = PhaseCorrelationOptions(
        start=start,
        upsample_factor=upsample_factor,
        bandpass=bandpass,
        taper=taper,
        whiten=whiten,
        max_jump=max_jump,
        com_sigma=com_sigma,
    )
    shifts, aligned, _, _ = _pc_align(data, options, progress)
    return shifts, aligned


def _pc_align(
    data: Any, options: PhaseCorrelationOptions, progress: Callable[[int], None] | None
) -> tuple[np.ndarray, Any, np.ndarray, np.ndarray]:
    """:func:`phase_correlation_align` and the row and column profiles it read (float64)."""
    check_progress(progress, "projections read")
    windowed = options.windowed
    with _thread_pool(data) as pool:
        result = _estimate(data, options, progress, keep=not windowed, pool=pool)
        shifts, rows, cols = result.shifts, result.rows, result.cols
        if windowed:
            return shifts, apply_shifts(data, shifts, shift_type="fourier"), rows, cols
        workers = n_workers() if pool is not None else 1
        aligned = _shift_in_place(result.kept, shifts, data.shape[-1], pool, workers)
    return shifts, aligned, rows, cols


def _shift_in_place(
    spectra: Any,
    shifts: np.ndarray,
    nx: int,
    pool: ThreadPoolExecutor | None,
    workers: int,
) -> Any:
    """Fourier-shift the images of half spectra into the spectra's own memory.

    ``spectra`` `(n, ny, nx // 2 + 1)` complex64 or complex128 (contiguous; consumed) are the
    ``rfft2`` of `(n, ny, nx)` images; returns the shifted images `(n, ny, nx)` float32 or
    float64, a view of the first bytes of that buffer (image ``j`` takes the bytes
    ``[j A, (j + 1) A)`` with ``A`` an image's size, never past the end of spectrum ``j``,
    whose size is ``B >= A``). Projections go in small groups, each core taking a
    contiguous range in increasing order (:class:`_InPlaceShift`), so a group's images only
    overwrite spectra already shifted -- except where they reach below the core's first
    spectrum, into the range of the core before it: those images are written once every
    core has finished.
    """
    xp = get_array_module(spectra)
    n, ny, nxh = spectra.shape
    real = np.finfo(spectra.dtype).dtype  # float32 for complex64, float64 for complex128
    group = _group_size(xp, ny, nx)
    job = _InPlaceShift(
        spectra=spectra,
        shifts=shifts,
        size=(ny, nx),
        aligned=spectra.reshape(-1).view(real)[: n * ny * nx].reshape(n, ny, nx),
        ratio=2 * nxh / nx,  # B / A >= 1
        group=group,
        firsts=list(range(0, n, group)),
        deferred=[],
    )
    _in_parts(pool, workers, job.run, len(job.firsts))
    for j0, images in job.deferred:
        job.aligned[j0 : j0 + images.shape[0]] = images
    return job.aligned


@dataclass(frozen=True, eq=False)
class _InPlaceShift:
    """The work of :func:`_shift_in_place`: ``run(sl)`` shifts the groups ``firsts[sl]``.

    Group ``j0`` (projections ``j0`` to ``j0 + group``) is written into ``aligned`` when its
    bytes lie in spectra this core has already shifted (``j0 >= own * ratio``), else
    appended to ``deferred`` as ``(j0, images)`` for the caller to write at the end.
    """

    spectra: Any
    shifts: np.ndarray
    size: tuple[int, int]
    aligned: Any
    ratio: float
    group: int
    firsts: list[int]
    deferred: list[tuple[int, Any]]

    def run(self, sl: slice) -> None:
        xp = get_array_module(self.spectra)
        fft_workers = 1 if xp is np else None
        n = self.spectra.shape[0]
        own = self.firsts[sl.start]  # this core's first spectrum
        for j0 in self.firsts[sl]:
            j1 = min(n, j0 + self.group)
            images = shift_spectra(self.spectra[j0:j1], self.shifts[j0:j1], self.size, fft_workers)
            if j0 >= own * self.ratio:  # only bytes of spectra this core has already shifted
                self.aligned[j0:j1] = images
            else:
                self.deferred.append((j0, images))  # list.append is atomic


@dataclass(frozen=True, eq=False)
class _Estimate:
    """What :func:`_estimate` returns (see there)."""

    shifts: np.ndarray
    kept: Any
    rows: np.ndarray
    cols: np.ndarray


def _estimate(
    data: Any,
    options: PhaseCorrelationOptions,
    progress: Callable[[int], None] | None,
    *,
    keep: bool = False,
    pool: ThreadPoolExecutor | None = None,
) -> _Estimate:
    """The shifts of :func:`phase_correlation_shifts`, the half spectra, the profiles.

    Three steps: transform every projection once (:func:`_transform_series`), measure the
    relative shift of every neighbour pair (:func:`_measure_pairs`), solve the positions
    from the pairs and the profiles (:func:`_positions`).

    ``keep`` (only for ``taper="periodic"`` or 0) returns the full ``rfft2`` of the raw
    projections in the output dtype, one `(n_tilts, ny, nx // 2 + 1)` array (else None).
    ``rows`` and ``cols`` are the row and column profiles `(n, ny)`, `(n, nx)` (sums over
    x and over y), float64 NumPy.
    ``pool``: threads that share the per-projection work (None: this thread only).
    """
    start = _check_series(data, options)
    if keep and options.windowed:
        raise ValueError("the spectra of a windowed estimate cannot be shared with the shift")
    xp = get_array_module(data)
    layout = _Layout.of(data.shape[1:], options.band[1])
    edges = _Edges.of(options, layout, xp)
    spectra = _transform_series(data, layout, edges, options, progress, keep=keep, pool=pool)
    pairs = _Pairs.of(data.shape[0])
    meas, peak = _measure_pairs(
        spectra.spec, pairs, layout, edges.overlap, options.upsample_factor, pool
    )
    shifts, rows, cols = _positions(spectra, pairs, meas, peak, start, options)
    return _Estimate(shifts, spectra.kept, rows, cols)


def _check_series(data: Any, options: PhaseCorrelationOptions) -> int:
    """Check ``data`` and the options that depend on its shape; return ``start``."""
    check_series_array(data, min_tilts=3)
    shape = data.shape
    if min(shape[1:]) < 8:
        raise ValueError(f"data has images of {shape[1]} x {shape[2]} px; expected at least 8 x 8")
    return options.resolve(shape)


@dataclass(frozen=True, eq=False)
class _Layout:
    """The cropped spectrum layout of `(ny, nx)` images for a band up to ``hi`` cycles/px.

    Rows ``|ky| <= kmy`` (negative ones at the end of ``my`` rows) and columns
    ``kx <= kmx`` of ``mxh = mx // 2 + 1`` (a half spectrum of ``mx`` columns) are kept.
    """

    size: tuple[int, int]
    kmy: int
    kmx: int
    my: int
    mx: int
    mxh: int
    ky: np.ndarray  # signed frequency indices of the stored rows, float
    kx: np.ndarray  # frequency indices of the stored columns, float
    coef: np.ndarray  # Hermitian half spectrum: the kx > 0 columns count twice

    @classmethod
    def of(cls, size: tuple[int, int], hi: float) -> _Layout:
        ny, nx = size
        kmy = min(math.ceil(hi * ny), ny // 2)
        kmx = min(math.ceil(hi * nx), nx // 2)
        my, mx = _crop_size(ny, kmy), _crop_size(nx, kmx)
        mxh = mx // 2 + 1
        coef = np.full(mxh, 2.0)
        coef[0] = 1.0
        return cls(
            size=(ny, nx),
            kmy=kmy,
            kmx=kmx,
            my=my,
            mx=mx,
            mxh=mxh,
            ky=np.fft.fftfreq(my) * my,
            kx=np.arange(mxh, dtype=float),
            coef=coef,
        )

    @property
    def crop(self) -> tuple[int, int, int]:
        """``(kmy, my, mxh)``, the arguments of :func:`_crop`."""
        return self.kmy, self.my, self.mxh


@dataclass(frozen=True, eq=False)
class _Edges:
    """How the image edges are kept out of the spectra (see ``taper``).

    A window: ``window`` (float32 image), its cropped spectrum ``window_spec`` and
    ``overlap``, the window's autocorrelation along y and x (whose pull towards zero shift
    the pair correlations are divided by). The periodic-plus-smooth decomposition:
    ``smooth_kernels`` of :func:`_smooth_kernels`. The unused ones are None.
    """

    window: Any
    window_spec: Any
    overlap: tuple[_Overlap, _Overlap] | None
    smooth_kernels: tuple[Any, Any] | None

    @classmethod
    def of(cls, options: PhaseCorrelationOptions, layout: _Layout, xp: ModuleType) -> _Edges:
        ny, nx = layout.size
        window = window_spec = overlap = None
        if options.windowed:
            wy, wx = _tukey(ny, options.taper), _tukey(nx, options.taper)
            window = xp.asarray(np.outer(wy, wx), dtype=np.float32)
            overlap = (_Overlap(wy), _Overlap(wx))
            spectrum = get_fft_module(xp).rfft2(window, **fft_kwargs(xp))
            window_spec = _crop(spectrum, *layout.crop, xp)
        smooth_kernels = (
            _smooth_kernels(layout.size, layout.kmy, layout.ky, layout.mxh, xp)
            if options.taper == PERIODIC
            else None
        )
        return cls(window, window_spec, overlap, smooth_kernels)


@dataclass(frozen=True, eq=False)
class _Spectra:
    """Step 1's output for `n` projections, on the data's device.

    ``spec`` `(n, my, mxh)` complex64: the filtered, whitened, cropped spectra;
    ``energy`` `(n,)` float32: their zero-shift autocorrelations; ``col_profiles``
    `(n, nx)` and ``row_profiles`` `(n, ny)` float32: the sums over y and over x; ``kept``:
    the full half spectra `(n, ny, nx // 2 + 1)` of the raw projections, or None.
    """

    spec: Any
    energy: Any
    col_profiles: Any
    row_profiles: Any
    kept: Any


def _transform_series(
    data: Any,
    layout: _Layout,
    edges: _Edges,
    options: PhaseCorrelationOptions,
    progress: Callable[[int], None] | None,
    *,
    keep: bool,
    pool: ThreadPoolExecutor | None,
) -> _Spectra:
    """Step 1: transform every projection once, in chunks; raise for bad pixels.

    Edges: a window (the mean removed in Fourier space, FFT(w (d - m)) = FFT(w d) -
    m FFT(w)), or the periodic-plus-smooth decomposition (Moisan 2011), whose smooth part
    follows from the image borders alone, so the raw projections are transformed and can
    be shared with the Fourier shift. On the CPU each core takes its own projections
    through the whole step a few at a time, so they stay in cache from the profiles to
    the filtered spectrum.
    """
    xp = get_array_module(data)
    n, ny, nx = data.shape
    weight = band_weight(
        np.hypot((layout.ky / ny)[:, None], (layout.kx / nx)[None, :]), *options.band
    )
    kept_dtype = np.result_type(output_dtype(data.dtype), np.complex64)  # of the full spectra
    out = _Spectra(
        spec=xp.empty((n, layout.my, layout.mxh), dtype=np.complex64),
        energy=xp.empty(n, dtype=np.float32),
        col_profiles=xp.empty((n, nx), dtype=np.float32),  # sums over y, invariant in tilt
        row_profiles=xp.empty((n, ny), dtype=np.float32),  # sums over x
        kept=xp.empty((n, ny, nx // 2 + 1), dtype=kept_dtype) if keep else None,
    )
    stage = _Transform(
        xp=xp,
        layout=layout,
        edges=edges,
        fft_dtype=output_dtype(data.dtype) if keep else np.dtype(np.float32),
        sqrt_w=xp.asarray(np.sqrt(weight), dtype=np.float32),
        whiten=options.whiten,
        energy_coef=xp.asarray(np.repeat(layout.coef, 2), dtype=np.float32),
        group=min(n, _group_size(xp, ny, nx)),
        out=out,
    )
    workers = n_workers() if pool is not None else 1
    chunk = min(n, max(1, _CHUNK_BYTES // (ny * nx * 4)))
    for i0 in range(0, n, chunk):
        raw = xp.asarray(data[i0 : i0 + chunk])
        k = raw.shape[0]
        _in_parts(pool, workers, partial(stage.run, raw, i0), k)
        del raw
        if not bool(xp.isfinite(out.col_profiles[i0 : i0 + k].sum(axis=1)).all()):
            require_finite(data)  # raises, naming the projections
        if progress is not None:
            progress(k)
    check_profiles(data, out.col_profiles, out.row_profiles)
    return out


@dataclass(frozen=True, eq=False)
class _Pairs:
    """The correlated pairs ``(a[j], b[j])``, ``b = a + lag``, lag by lag (see ``_LAGS``)."""

    lags: tuple[int, ...]
    a: np.ndarray
    b: np.ndarray

    @classmethod
    def of(cls, n: int) -> _Pairs:
        lags = tuple(lag for lag in _LAGS if lag < n)
        a = np.concatenate([np.arange(n - lag) for lag in lags])
        b = np.concatenate([np.arange(lag, n) for lag in lags])
        return cls(lags, a, b)

    @property
    def size(self) -> int:
        return int(self.a.size)


class _Group(NamedTuple):
    """Pairs ``(a, a + lag)`` for ``a0 <= a < a1``: rows ``j0`` on of the measurements."""

    lag: int
    a0: int
    a1: int
    j0: int


def _pair_groups(pairs: _Pairs, n: int, size: int) -> list[_Group]:
    """The pairs in groups of up to ``size`` consecutive ones of a lag, in row order."""
    groups = []
    j0 = 0
    for lag in pairs.lags:
        for a0 in range(0, n - lag, size):
            a1 = min(n - lag, a0 + size)
            groups.append(_Group(lag, a0, a1, j0))
            j0 += a1 - a0
    return groups


@dataclass(frozen=True, eq=False)
class _CoarseGrid:
    """The coarse correlation that locates each peak to the nearest few pixels.

    Frequencies up to ``_COARSE`` cycles/px (rows ``|ky| <= kcy``), smoothly tapered
    (``taper``, None when the cropped spectra are no larger), in a `size` = ``(cy_n, cx_n)``
    correlation whose samples are ``step`` = ``(ny / cy_n, nx / cx_n)`` px apart.
    """

    kcy: int
    size: tuple[int, int]
    cxh: int
    taper: Any
    step: tuple[float, float]

    @classmethod
    def of(cls, layout: _Layout, xp: ModuleType) -> _CoarseGrid:
        ny, nx = layout.size
        kcy, kcx = (
            min(layout.kmy, math.ceil(_COARSE * ny)),
            min(layout.kmx, math.ceil(_COARSE * nx)),
        )
        if (kcy, kcx) == (layout.kmy, layout.kmx):
            cy_n, cx_n = layout.my, layout.mx
        else:
            cy_n, cx_n = _crop_size(ny, kcy), _crop_size(nx, kcx)
        cxh = cx_n // 2 + 1
        taper = None
        if (cy_n, cx_n) != (layout.my, layout.mx):
            cky = np.fft.fftfreq(cy_n) * cy_n
            taper = xp.asarray(
                band_weight(
                    np.hypot((cky / ny)[:, None], (np.arange(cxh) / nx)[None, :]), 0.0, _COARSE
                ),
                dtype=np.float32,
            )
        return cls(kcy, (cy_n, cx_n), cxh, taper, (ny / cy_n, nx / cx_n))


@dataclass(frozen=True, eq=False)
class _SubpixelGrid:
    """The ``1 / uf`` px grid around each whole-pixel peak and its upsampled-DFT kernels.

    The grid reaches 1 px beyond half the coarse sampling interval (at least 1.5 px) on
    either side: offsets ``off_y``, ``off_x`` px. ``ker_y`` `(len(off_y), my)` and ``ker_x``
    `(mxh, len(off_x))` are the DFT kernels at the offsets, shared by all pairs (``ker_x``
    with the Hermitian column weights); ``ky``, ``kx`` are the frequency indices on the
    data's device, for the per-pair phase factors of the whole-pixel part (see
    :func:`_dft_eval`).
    """

    uf: int
    off_y: np.ndarray
    off_x: np.ndarray
    ker_y: Any
    ker_x: Any
    ky: Any
    kx: Any

    @classmethod
    def of(cls, layout: _Layout, coarse: _CoarseGrid, uf: int, xp: ModuleType) -> _SubpixelGrid:
        ny, nx = layout.size
        ky, kx = layout.ky, layout.kx
        step_y, step_x = coarse.step
        half_y = math.ceil(max(1.5, 0.5 * step_y + 1.0) * uf)
        half_x = math.ceil(max(1.5, 0.5 * step_x + 1.0) * uf)
        off_y = np.arange(-half_y, half_y + 1) / uf
        off_x = np.arange(-half_x, half_x + 1) / uf
        ker_y = xp.asarray(np.exp((2j * np.pi / ny) * off_y[:, None] * ky[None, :]), np.complex64)
        ker_x = xp.asarray(
            np.exp((2j * np.pi / nx) * kx[:, None] * off_x[None, :]) * layout.coef[:, None],
            np.complex64,
        )
        return cls(uf, off_y, off_x, ker_y, ker_x, xp.asarray(ky), xp.asarray(kx))

    def nbytes(self, layout: _Layout) -> int:
        """Bytes per pair of the kernels, products and values of the grid."""
        return 8 * self.off_y.size * (layout.my + layout.mxh + 3 * self.off_x.size)


def _measure_pairs(
    spec: Any,
    pairs: _Pairs,
    layout: _Layout,
    overlap: tuple[_Overlap, _Overlap] | None,
    uf: int,
    pool: ThreadPoolExecutor | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Step 2: the relative shift `(n_pairs, 2)` px and correlation peak of every pair.

    Each pair's cross-power spectrum gets one cropped inverse FFT, whose maximum is the
    whole-pixel peak (:class:`_Locate`), then the upsampled DFT evaluates the full band
    around it (:func:`_refine_pairs`). Pairs go in groups of consecutive ones of a lag; on
    the CPU each core takes its own groups (one core per inverse FFT), on the GPU a group
    is large. The groups go in rounds: the cores locate the peaks of a round's groups in
    parallel, then this thread evaluates the round's upsampled DFT, which is matrix
    products (on BLAS's threads, which then have the cores to themselves). The cross-power
    spectra of a round live in one buffer that every round reuses: fresh memory is slow to
    touch. ``overlap``: the window's, divided out of the correlations (None: no window).
    """
    xp = get_array_module(spec)
    n = spec.shape[0]
    my, mx, mxh = layout.my, layout.mx, layout.mxh
    coarse = _CoarseGrid.of(layout, xp)
    grid = _SubpixelGrid.of(layout, coarse, uf, xp)
    workers = n_workers() if pool is not None else 1
    group_bytes = _GROUP_BYTES if xp is np else _CHUNK_BYTES
    pgroup = min(n - 1, max(1, group_bytes // (my * mx * 4)))
    groups = _pair_groups(pairs, n, pgroup)
    per_round = _ROUND_GROUPS_PER_CORE * workers if xp is np else len(groups)
    cross = xp.empty((min(pairs.size, per_round * pgroup), my, mxh), dtype=np.complex64)
    locate = _Locate(spec, coarse, np.empty(pairs.size), np.empty(pairs.size))
    # Pairs per upsampled-DFT batch: about _CHUNK_BYTES of cross-power spectra, and of the
    # kernels, products and values of the grids (which grow as upsample_factor squared).
    pchunk = max(1, min(_CHUNK_BYTES // (my * mx * 4), _CHUNK_BYTES // grid.nbytes(layout)))
    meas = np.empty((pairs.size, 2))
    peak = np.empty(pairs.size)
    for r0 in range(0, len(groups), per_round):
        round_groups = groups[r0 : r0 + per_round]
        first = round_groups[0].j0
        last = round_groups[-1].j0 + round_groups[-1].a1 - round_groups[-1].a0
        _in_parts(pool, workers, partial(locate.run, cross, round_groups, first), len(round_groups))
        for j0 in range(first, last, pchunk):
            j1 = min(last, j0 + pchunk)
            meas[j0:j1], peak[j0:j1] = _refine_pairs(
                cross[j0 - first : j1 - first],
                locate.cy[j0:j1],
                locate.cx[j0:j1],
                grid,
                layout.size,
                overlap,
            )
    return meas, peak


@dataclass(frozen=True, eq=False)
class _Locate:
    """Whole-pixel peaks of pair correlations: ``run`` writes rows of ``cy``, ``cx`` (px).

    ``run(cross, groups, first, sl)`` forms the cross-power spectra of ``groups[sl]`` from
    ``spec`` into ``cross`` (whose row 0 is row ``first`` of the measurements) and finds
    the maximum of each one's coarse correlation, one core per inverse FFT on the CPU.
    """

    spec: Any
    coarse: _CoarseGrid
    cy: np.ndarray
    cx: np.ndarray

    def run(self, cross: Any, groups: list[_Group], first: int, sl: slice) -> None:
        spec, coarse_grid = self.spec, self.coarse
        xp = get_array_module(spec)
        fft = get_fft_module(xp)
        pair_fkw = {"workers": 1} if xp is np else {}
        cy_n, cx_n = coarse_grid.size
        step_y, step_x = coarse_grid.step
        for lag, a0, a1, j0 in groups[sl]:
            p = a1 - a0
            c = xp.conjugate(spec[a0 + lag : a1 + lag], out=cross[j0 - first : j0 - first + p])
            c *= spec[a0:a1]
            if coarse_grid.taper is None:
                coarse = c
            else:
                coarse = _crop(c, coarse_grid.kcy, cy_n, coarse_grid.cxh, xp)
                coarse *= coarse_grid.taper
            corr = fft.irfft2(coarse, s=(cy_n, cx_n), axes=(-2, -1), **pair_fkw)
            iy, ix = np.divmod(to_numpy(corr.reshape(p, -1).argmax(axis=1)), cx_n)
            self.cy[j0 : j0 + p] = np.round(np.where(iy > cy_n // 2, iy - cy_n, iy) * step_y)
            self.cx[j0 : j0 + p] = np.round(np.where(ix > cx_n // 2, ix - cx_n, ix) * step_x)


def _refine_pairs(
    cross: Any,
    cy: np.ndarray,
    cx: np.ndarray,
    grid: _SubpixelGrid,
    size: tuple[int, int],
    overlap: tuple[_Overlap, _Overlap] | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Subpixel shifts `(p, 2)` and peak values `(p,)` of cross-power spectra `(p, my, mxh)`.

    The correlation is evaluated on the grid around the whole-pixel peaks ``(cy, cx)``
    (divided by the window's ``overlap`` unless None) and its maximum refined by parabolas.
    """
    xp = get_array_module(cross)
    values = _dft_eval(cross, cy, cx, grid.ker_y, grid.ker_x, grid.ky, grid.kx, size, xp)
    grid_y = cy[:, None] + grid.off_y[None, :]
    grid_x = cx[:, None] + grid.off_x[None, :]
    if overlap is not None:
        overlap_y, overlap_x = overlap
        values /= overlap_y(grid_y)[:, :, None] * overlap_x(grid_x)[:, None, :]
    return _refine_peak(values, grid_y, grid_x, grid.uf), values.reshape(cy.size, -1).max(axis=1)


def _positions(
    spectra: _Spectra,
    pairs: _Pairs,
    meas: np.ndarray,
    peak: np.ndarray,
    start: int,
    options: PhaseCorrelationOptions,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Step 3: the aligning shifts `(n, 2)`, and the row and column profiles (float64).

    Along y the positions are solved from the pair measurements (``u[a] - u[b] = meas``)
    and corrected by the centre-of-mass trend of the trusted projections; along x they
    come from the column profiles, which a tilt about x leaves unchanged.
    """
    n = int(spectra.energy.shape[0])
    energy = to_numpy(spectra.energy).astype(np.float64)
    u, pair_w = _solve_positions(n, pairs.a, pairs.b, meas, start, options.max_jump)
    chain_ok, com_ok = _trusted(n, pairs, pair_w, peak, energy)
    cols = to_numpy(spectra.col_profiles).astype(np.float64)
    rows = to_numpy(spectra.row_profiles).astype(np.float64)
    u[:, 1] = profile_positions(
        cols,
        bandpass=options.band,
        whiten=0.0,  # plain correlation: profiles are sums of many rows, noise is white
        upsample_factor=options.upsample_factor,
    )
    if options.com_sigma is not None:
        u[:, 0] += com_trend(
            rows, u[:, 0], chain_ok=chain_ok & com_ok, com_ok=com_ok, sigma=options.com_sigma
        )
    return -(u - u[start]), rows, cols


def _trusted(
    n: int, pairs: _Pairs, pair_w: np.ndarray, peak: np.ndarray, energy: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Which projections' chained positions and centres of mass are trusted, `(n,)` bool.

    A projection's chained position is trusted when at least two of its pairs agree with
    the solution (one pair always fits: it alone can set the position of a noise frame).
    Its centre of mass is trusted when it correlates with some neighbour about as well as
    projections usually do: a blank or pure-noise frame's normalised peak is far below.
    """
    support_w = np.zeros(n)
    np.add.at(support_w, pairs.a, pair_w)
    np.add.at(support_w, pairs.b, pair_w)
    chain_ok = support_w > 1.5
    ncc = peak / np.sqrt(np.maximum(energy[pairs.a] * energy[pairs.b], 1e-300))
    best = np.zeros(n)
    np.maximum.at(best, pairs.a, ncc)
    np.maximum.at(best, pairs.b, ncc)
    com_ok = best >= _MIN_RELATIVE_PEAK * np.median(best)
    return chain_ok, com_ok


def _in_parts(
    pool: ThreadPoolExecutor | None, workers: int, fn: Callable[[slice], None], k: int
) -> None:
    """Run ``fn`` on ``workers`` contiguous slices of ``range(k)`` in ``pool``."""
    if pool is None or k < 2:
        fn(slice(0, k))
        return
    bounds = [k * j // workers for j in range(workers + 1)]
    parts = [slice(lo, hi) for lo, hi in itertools.pairwise(bounds) if lo < hi]
    for future in [pool.submit(fn, sl) for sl in parts]:
        future.result()


@dataclass(frozen=True, eq=False)
class _Transform:
    """The work of step 1: profiles and filtered, cropped spectra of projections.

    ``run(raw, i0, sl)`` handles projections ``sl`` of the chunk ``raw`` that starts at
    projection ``i0``, ``group`` at a time, and writes rows ``i0 + sl`` of ``out``.
    """

    xp: ModuleType
    layout: _Layout
    edges: _Edges
    fft_dtype: np.dtype
    sqrt_w: Any  # square root of the band weight, on the cropped layout
    whiten: float
    energy_coef: Any  # Hermitian weights of the real and imaginary parts
    group: int
    out: _Spectra

    def run(self, raw: Any, i0: int, sl: slice) -> None:
        # A NaN or infinite pixel is reported after the chunk (from its profiles); until
        # then it only spreads through its own projection's spectrum, silently.
        with np.errstate(invalid="ignore"):
            for g0 in range(sl.start, sl.stop, self.group):
                self._transform(raw[g0 : min(sl.stop, g0 + self.group)], i0 + g0)

    def _transform(self, images: Any, j0: int) -> None:
        xp, out, edges = self.xp, self.out, self.edges
        (ny, nx), (kmy, my, mxh) = self.layout.size, self.layout.crop
        fft = get_fft_module(xp)
        # One core per group on the CPU (the groups run in parallel); all of the GPU.
        fkw = {"workers": 1} if xp is np else {}
        rows = slice(j0, j0 + images.shape[0])
        if edges.window is not None:
            out.col_profiles[rows] = cols = images.sum(axis=1, dtype=np.float32)
            out.row_profiles[rows] = images.sum(axis=2, dtype=np.float32)
            src = (images * edges.window).astype(np.float32, copy=False)
        else:
            src = images.astype(self.fft_dtype, copy=False)
        full = fft.rfft2(src, axes=(-2, -1), **fkw)
        if edges.window is None:
            # The sums over y and over x are the inverse transforms of the zero-frequency
            # row and column of the spectrum: no pass over the images.
            out.col_profiles[rows] = fft.irfft(full[:, 0, :], n=nx, axis=-1, **fkw)
            out.row_profiles[rows] = fft.ifft(full[:, :, 0], axis=-1, **fkw).real
        p = _crop(full, kmy, my, mxh, xp, out=out.spec[rows])
        if out.kept is not None:
            out.kept[rows] = full
        del full
        if edges.window is not None:
            mean = cols.sum(axis=1) / np.float32(ny * nx)
            p -= mean[:, None, None] * edges.window_spec
        elif edges.smooth_kernels is not None:
            _subtract_smooth_part(_border_spectra(src, kmy, my, mxh, xp), edges.smooth_kernels, p)
        else:
            p[:, 0, 0] = 0
        _normalise(p, self.sqrt_w, self.whiten, self.energy_coef, out.energy[rows], xp)


def _smooth_kernels(
    size: tuple[int, int], kmy: int, ky: np.ndarray, mxh: int, xp: ModuleType
) -> tuple[Any, Any]:
    """Factors that turn border spectra into the cropped spectrum of the smooth part.

    In the periodic-plus-smooth decomposition ``u = p + s`` of an image (Moisan 2011), the
    smooth part ``s`` solves ``laplacian(s) = v`` on the torus, where ``v`` is non-zero only
    on the image border: the jumps ``a = u[-1, :] - u[0, :]`` on the first and last rows
    (``+a`` and ``-a``) and ``b = u[:, -1] - u[:, 0]`` on the first and last columns. With
    ``A = rfft(a)`` and ``B = fft(b)``::

        S[q, r] = (A[r] (1 - exp(2 pi i q / ny)) + B[q] (1 - exp(2 pi i r / nx)))
                  / (2 cos(2 pi q / ny) + 2 cos(2 pi r / nx) - 4),   S[0, 0] = 0.

    Returns ``(ky_factor, kx_factor)``, both `(my, mxh)` complex64, such that
    ``S = A[None, :] * ky_factor + B_cropped[:, None] * kx_factor``; rows ``|ky| > kmy``
    (the zero padding of the crop) and the zero frequency are 0.
    """
    ny, nx = size
    q = ky[:, None] / ny
    r = np.arange(mxh)[None, :] / nx
    den = 2 * np.cos(2 * np.pi * q) + 2 * np.cos(2 * np.pi * r) - 4
    inv = np.zeros_like(den)
    valid = (np.abs(ky) <= kmy)[:, None] & (den != 0)
    inv[valid] = 1 / den[valid]
    ky_factor = (1 - np.exp(2j * np.pi * q)) * inv
    kx_factor = (1 - np.exp(2j * np.pi * r)) * inv
    return xp.asarray(ky_factor, np.complex64), xp.asarray(kx_factor, np.complex64)


def _border_spectra(images: Any, kmy: int, my: int, mxh: int, xp: ModuleType) -> tuple[Any, Any]:
    """``A`` `(k, mxh)` and cropped ``B`` `(k, my)` of :func:`_smooth_kernels` for `(k, ny, nx)`."""
    fft = get_fft_module(xp)
    a = fft.rfft(images[:, -1, :] - images[:, 0, :], axis=-1)[:, :mxh]
    b = fft.fft(images[:, :, -1] - images[:, :, 0], axis=-1)
    b = _crop(b[:, :, None], kmy, my, 1, xp)[:, :, 0]  # the rows of the cropped layout
    return a.astype(np.complex64), b


def _subtract_smooth_part(border: tuple[Any, Any], kernels: tuple[Any, Any], p: Any) -> None:
    """Remove the smooth part (and the mean) from cropped spectra ``p`` `(k, my, mxh)`.

    ``border`` is :func:`_border_spectra` of the same `k` images, ``kernels`` is
    :func:`_smooth_kernels`.
    """
    a, b = border
    ky_factor, kx_factor = kernels
    p -= a[:, None, :] * ky_factor
    p -= b[:, :, None] * kx_factor
    p[:, 0, 0] = 0


def _normalise(
    p: Any, sqrt_w: Any, whiten: float, energy_coef: Any, energy: Any, xp: ModuleType
) -> None:
    """Filter and whiten cropped spectra ``p`` `(k, my, mxh)` in place; store their energy.

    Each spectrum is weighted by ``sqrt_w / |F| ** whiten``. The energy (the zero-shift
    autocorrelation of the filtered projection) normalises the correlation peaks.
    """
    amp = xp.abs(p)
    amp += 1e-3 * amp.mean(axis=(1, 2), keepdims=True) + np.float32(1e-30)
    if whiten == 0.5:
        xp.sqrt(amp, out=amp)
    elif whiten != 1:
        amp **= np.float32(whiten)
    xp.divide(sqrt_w, amp, out=amp)
    p *= amp
    flat = p.view(np.float32)
    energy[...] = ((flat * flat) @ energy_coef).sum(axis=1)


def _dft_eval(
    cross: Any,
    cy: np.ndarray,
    cx: np.ndarray,
    ker_y: Any,
    ker_x: Any,
    ky: Any,
    kx: Any,
    size: tuple[int, int],
    xp: ModuleType,
) -> np.ndarray:
    """Correlation of half spectra `(p, my, mxh)` on grids around whole-pixel peaks.

    The grid of pair ``j`` is ``cy[j] + off_y`` by ``cx[j] + off_x`` px; ``ker_y``
    `(len(off_y), my)` and ``ker_x`` `(mxh, len(off_x))` are the DFT kernels at the offsets
    (``ker_x`` with the Hermitian column weights), so only the whole-pixel phase factors
    differ from pair to pair.
    """
    ny, nx = size
    by = xp.exp((2j * np.pi / ny) * xp.asarray(cy)[:, None] * ky[None, :]).astype(np.complex64)
    bx = xp.exp((2j * np.pi / nx) * xp.asarray(cx)[:, None] * kx[None, :]).astype(np.complex64)
    ey = ker_y[None, :, :] * by[:, None, :]
    ex = ker_x[None, :, :] * bx[:, :, None]
    return to_numpy(xp.matmul(xp.matmul(ey, cross), ex).real).astype(np.float64)


def _refine_peak(values: np.ndarray, grid_y: np.ndarray, grid_x: np.ndarray, uf: int) -> np.ndarray:
    """Maximum of `(p, my, mx)` samples on the grids, refined by separable parabolas."""
    p, my, mx = values.shape
    iy, ix = np.divmod(values.reshape(p, -1).argmax(axis=1), mx)
    ar = np.arange(p)
    dy, dx = grid_y[ar, iy], grid_x[ar, ix]
    if uf > 1:
        jy, jx = np.clip(iy, 1, my - 2), np.clip(ix, 1, mx - 2)
        dy = (
            dy
            + parabola_offset(
                values[ar, jy - 1, ix], values[ar, jy, ix], values[ar, jy + 1, ix], jy == iy
            )
            / uf
        )
        dx = (
            dx
            + parabola_offset(
                values[ar, iy, jx - 1], values[ar, iy, jx], values[ar, iy, jx + 1], jx == ix
            )
            / uf
        )
    return np.stack([dy, dx], axis=1)


def _solve_positions(
    n: int,
    pair_a: np.ndarray,
    pair_b: np.ndarray,
    meas: np.ndarray,
    start: int,
    max_jump: float | None,
) -> np.ndarray:
    """Robust least squares for `(n, 2)` positions ``u`` with ``u[a] - u[b] = meas``."""
    rows = np.arange(pair_a.size)
    design = np.zeros((pair_a.size, n))
    design[rows, pair_a] = 1.0
    design[rows, pair_b] = -1.0
    free = np.arange(n) != start
    reduced = design[:, free]
    weights = np.ones(pair_a.size)
    u = np.zeros((n, 2))
    for _ in range(_IRLS_ITERATIONS):
        lhs = (reduced * weights[:, None]).T @ reduced + 1e-9 * np.eye(n - 1)
        u[free] = np.linalg.solve(lhs, (reduced * weights[:, None]).T @ meas)
        res = np.hypot(*(design @ u - meas).T)
        cut = (
            max_jump
            if max_jump is not None
            else max(_MIN_CUT, _MAD_CUTS * 1.4826 * float(np.median(res)))
        )
        new = np.where(res < cut, (1 - (res / cut) ** 2) ** 2, 0.0) + 1e-6
        if np.allclose(new, weights, atol=1e-4):
            break
        weights = new
    return u, weights
