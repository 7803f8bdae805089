"""Apply per-projection translations to a tilt series.

Conventions (the same everywhere in tomoalign):

* A tilt series has shape `(n_tilts, ny, nx)`. The tilt axis is parallel to x (array
  axis 2); y (array axis 1) is perpendicular to it.
* Shifts have shape `(n_tilts, 2)`, in pixels: ``shifts[:, 0]`` along y (axis 1) and
  ``shifts[:, 1]`` along x (axis 2). The sign is that of :func:`scipy.ndimage.shift`:
  applying the shift ``s`` moves the image content by ``+s``, i.e. the output pixel at
  ``p`` holds the input value at ``p - s``.

The functions take NumPy, CuPy and dask arrays; NumPy and CuPy share one implementation
written against the array module ``xp`` of the input.
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import numpy as np

from tomoalign._backend import (
    fft_kwargs,
    get_array_module,
    get_fft_module,
    is_dask_array,
    ndimage,
    to_numpy,
)
from tomoalign._validation import check_series_array, check_shifts

__all__ = [
    "SHIFT_TYPES",
    "apply_shifts",
    "check_shift_type",
    "common_area",
    "crop_area",
    "output_dtype",
    "shift_spectra",
]

#: Valid values of ``shift_type`` for :func:`apply_shifts` (``"spline"`` is an alias of
#: ``"interp"``).
SHIFT_TYPES: tuple[str, ...] = ("fourier", "interp", "spline")

# Aim for about this many bytes of complex spectrum per chunk of projections.
_CHUNK_BYTES = 64 * 2**20


def output_dtype(dtype: Any) -> np.dtype:
    """Float dtype of the shifted stack: float64 stays, other floats and integers -> float32."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f" and dtype.itemsize >= 8:
        return np.dtype(np.float64)
    return np.dtype(np.float32)


def check_shift_type(shift_type: Any) -> str:
    """Return ``shift_type`` lower-cased; raise :class:`ValueError` unless it is valid."""
    if not isinstance(shift_type, str) or shift_type.lower() not in SHIFT_TYPES:
        raise ValueError(
            f"shift_type={shift_type!r} is not a valid shift type; expected one of "
            f"{', '.join(repr(t) for t in SHIFT_TYPES)} ('spline' is an alias of 'interp')"
        )
    kind = shift_type.lower()
    return "interp" if kind == "spline" else kind


def _check_chunk_size(chunk_size: Any) -> int | None:
    if chunk_size is None:
        return None
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int | np.integer):
        raise TypeError(
            f"chunk_size must be an int (projections per chunk) or None; got "
            f"{type(chunk_size).__name__} {chunk_size!r}"
        )
    if chunk_size < 1:
        raise ValueError(
            f"chunk_size={chunk_size}; expected at least 1 projection per chunk (or None to "
            "choose it from the image size)"
        )
    return int(chunk_size)


def _fourier_block(block: Any, shifts: np.ndarray, xp: ModuleType, out_dtype: np.dtype) -> Any:
    """Fourier-shift a small `(m, ny, nx)` block by `(m, 2)` float64 ``shifts``."""
    fft = get_fft_module(xp)
    spectrum = fft.rfft2(block.astype(out_dtype, copy=False), axes=(-2, -1), **fft_kwargs(xp))
    return shift_spectra(spectrum, shifts, block.shape[1:])


def shift_spectra(
    spectrum: Any, shifts: np.ndarray, size: tuple[int, int], workers: int | None = None
) -> Any:
    """Shifted images from their half spectra; ``spectrum`` is consumed (overwritten).

    Parameters
    ----------
    spectrum : array
        `(m, ny, nx // 2 + 1)` complex64 or complex128 ``rfft2`` of `(m, ny, nx)` images
        (NumPy or CuPy). Its contents are destroyed.
    shifts : numpy.ndarray
        `(m, 2)` float64 shifts ``(dy, dx)`` in pixels, :func:`scipy.ndimage.shift`'s sign.
    size : tuple of int
        The image size ``(ny, nx)``.
    workers : int or None
        CPU threads of the inverse FFT; ``None``: all cores. Ignored on the GPU.

    Returns
    -------
    array
        `(m, ny, nx)` float32 (complex64 spectrum) or float64 images.
    """
    ny, nx = size
    xp = get_array_module(spectrum)
    fft = get_fft_module(xp)
    kwargs = fft_kwargs(xp)
    if xp is np:
        if workers is not None:
            kwargs["workers"] = workers
        kwargs["overwrite_x"] = True  # the spectrum is ours to destroy: work in place
    s = xp.asarray(shifts, dtype=np.float64)
    # Phase ramps in float64 (their argument reaches pi * |shift|), then cast once.
    fy = xp.asarray(np.fft.fftfreq(ny))  # cycles per pixel, (ny,)
    fx = xp.asarray(np.fft.rfftfreq(nx))  # (nx // 2 + 1,)
    ramp_y = xp.exp(-2j * np.pi * s[:, 0:1] * fy[None, :])
    ramp_x = xp.exp(-2j * np.pi * s[:, 1:2] * fx[None, :])
    # An even size has a Nyquist bin that is its own negative frequency: its factor must be
    # real for the kernel to be Hermitian (a real output). cos(pi s) equals exp(-i pi s) for
    # integer s, so integer shifts stay exact rolls and s = 0 is the identity.
    if ny % 2 == 0:
        ramp_y[:, ny // 2] = xp.cos(np.pi * s[:, 0])
    if nx % 2 == 0:
        ramp_x[:, nx // 2] = xp.cos(np.pi * s[:, 1])
    spectrum *= ramp_y.astype(spectrum.dtype)[:, :, None]
    spectrum *= ramp_x.astype(spectrum.dtype)[:, None, :]
    # irfft2 as its two passes: in place along y, then complex-to-real along x (faster than
    # scipy.fft.irfft2, which copies its input first).
    half = fft.ifft(spectrum, axis=-2, **kwargs)
    return fft.irfft(half, n=nx, axis=-1, **kwargs)


def _interp_block(block: Any, shifts: np.ndarray, xp: ModuleType, out_dtype: np.dtype) -> Any:
    """Cubic-spline shift of a `(m, ny, nx)` block, zero outside the image."""
    ndi = ndimage(xp)
    out = xp.empty(block.shape, dtype=out_dtype)
    for i in range(block.shape[0]):
        ndi.shift(
            block[i].astype(out_dtype, copy=False),
            (float(shifts[i, 0]), float(shifts[i, 1])),
            output=out[i],
            order=3,
            mode="constant",
            cval=0.0,
            prefilter=True,
        )
    return out


def apply_shifts(
    data: Any,
    shifts: Any,
    /,
    *,
    shift_type: str = "fourier",
    chunk_size: int | None = None,
) -> Any:
    """Translate every projection of a tilt series by its own sub-pixel shift.

    Projection ``i`` is moved by ``shifts[i]``: its content moves by ``+shifts[i]``
    (:func:`scipy.ndimage.shift`'s sign), so the output pixel at ``p`` holds the input value
    at ``p - shifts[i]``.

    Parameters
    ----------
    data : array
        Tilt series of shape `(n_tilts, ny, nx)`: NumPy, CuPy or dask. Axis 1 is y
        (perpendicular to the tilt axis), axis 2 is x (parallel to it). Real numbers only.
        Never modified.
    shifts : array_like
        `(n_tilts, 2)` shifts in pixels as ``(dy, dx)``: ``shifts[:, 0]`` along y (axis 1),
        ``shifts[:, 1]`` along x (axis 2). Must be finite.
    shift_type : {"fourier", "interp", "spline"}
        ``"fourier"`` (default): multiply the 2D real FFT of each projection by a phase ramp.
        Exact for band-limited images; the boundary is periodic (content leaving one edge
        re-enters at the opposite edge). Integer shifts are exact rolls (:func:`numpy.roll`)
        and a zero shift returns the input to float precision, for odd and even sizes.
        ``"interp"`` (alias ``"spline"``): cubic B-spline interpolation
        (:func:`scipy.ndimage.shift`, ``order=3``, ``mode="constant"``, ``cval=0``; or
        :mod:`cupyx.scipy.ndimage` on the GPU); the pixels uncovered by the shift are 0
        and nothing wraps around.
    chunk_size : int or None
        Projections transformed together (bounds the memory of the complex spectra).
        Default: about 64 MiB of spectrum per chunk. For dask input this subdivides each
        dask block.

    Returns
    -------
    array
        New `(n_tilts, ny, nx)` array of the same kind as ``data`` (NumPy, CuPy, or a lazy
        dask array with the chunks of ``data`` along axis 0 and whole images along axes 1
        and 2). dtype: float64 for float64 input, float32 for any other float or integer
        input (integers are converted, never truncated). The Fourier path computes in
        complex64 for float32 output and complex128 for float64 output.

    Raises
    ------
    ValueError
        When ``data`` is not 3D, ``shifts`` is not `(n_tilts, 2)` or not finite,
        ``shift_type`` is unknown, or ``chunk_size < 1``.
    TypeError
        When ``data`` is not real-valued or ``chunk_size`` is not an int.

    See Also
    --------
    common_area : The region of the output covered by every shifted projection.

    Examples
    --------
    >>> import numpy as np
    >>> from tomoalign.shifts import apply_shifts
    >>> stack = np.zeros((2, 8, 8), dtype=np.float32)
    >>> stack[:, 4, 4] = 1.0
    >>> out = apply_shifts(stack, [[1.0, -2.0], [0.0, 0.0]])
    >>> [int(i) for i in np.unravel_index(np.argmax(out[0]), out[0].shape)]
    [5, 2]
    """
    kind = check_shift_type(shift_type)
    chunk_size = _check_chunk_size(chunk_size)
    if not hasattr(data, "shape") or not hasattr(data, "dtype"):
        data = np.asarray(data)
    check_series_array(data)
    n, ny, nx = (int(v) for v in data.shape)
    shifts = check_shifts(to_numpy(shifts), n)
    out_dtype = output_dtype(data.dtype)

    if is_dask_array(data):
        return _apply_shifts_dask(data, shifts, kind, chunk_size, out_dtype)

    xp = get_array_module(data)
    if chunk_size is None:
        itemsize = 8 if out_dtype == np.float32 else 16
        chunk_size = max(1, _CHUNK_BYTES // (ny * (nx // 2 + 1) * itemsize))
    block_fn = _fourier_block if kind == "fourier" else _interp_block
    out = xp.empty((n, ny, nx), dtype=out_dtype)
    for start in range(0, n, chunk_size):
        stop = min(start + chunk_size, n)
        out[start:stop] = block_fn(data[start:stop], shifts[start:stop], xp, out_dtype)
    return out


def _apply_shifts_dask(
    data: Any, shifts: np.ndarray, kind: str, chunk_size: int | None, out_dtype: np.dtype
) -> Any:
    """Lazy :func:`apply_shifts`: each block along axis 0 gets its slice of ``shifts``."""
    from dask.array.utils import meta_from_array

    data = data.rechunk({1: -1, 2: -1})  # each task needs whole projections

    def shift_block(block: Any, block_info: dict | None = None) -> Any:
        start, stop = block_info[0]["array-location"][0]
        return apply_shifts(block, shifts[start:stop], shift_type=kind, chunk_size=chunk_size)

    return data.map_blocks(
        shift_block, dtype=out_dtype, meta=meta_from_array(data, ndim=3, dtype=out_dtype)
    )


def common_area(shifts: Any, shape: tuple[int, ...]) -> tuple[slice, slice]:
    """Return the `(y, x)` slices of the region covered by every shifted projection.

    After :func:`apply_shifts` a shift ``s > 0`` along an axis leaves the first
    ``ceil(s)`` pixels of that axis without data of their own (zeros for ``"interp"``,
    wrapped-around content for ``"fourier"``); a shift ``s < 0`` leaves the last
    ``ceil(-s)``. The common area starts after the largest positive shift and stops before
    the most negative one, each axis by its own column of ``shifts``. The rule is exact, as
    for ``"interp"``, where a pixel whose source lies even 1e-10 px outside the image is 0:
    a shift of ``3 + 1e-10`` uncovers 4 pixels. Round shifts first to ignore round-off.

    Parameters
    ----------
    shifts : array_like
        `(n_tilts, 2)` shifts in pixels as ``(dy, dx)``, the sign of :func:`apply_shifts`.
    shape : tuple of int
        Shape of the stack, `(n_tilts, ny, nx)`, or of one image, `(ny, nx)`.

    Returns
    -------
    tuple of slice
        ``(rows, columns)``: ``stack[:, rows, columns]`` is the covered region, with y along
        axis 1 and x along axis 2.

    Raises
    ------
    ValueError
        When ``shape`` has neither 2 nor 3 entries, ``shifts`` does not match it or is not
        finite, or the common area is empty.

    Examples
    --------
    >>> from tomoalign.shifts import common_area
    >>> common_area([[2.0, -1.5], [-0.5, 0.0]], (2, 10, 10))
    (slice(2, 9, None), slice(0, 8, None))
    """
    shape = tuple(int(v) for v in shape)
    arr = np.asarray(to_numpy(shifts), dtype=float)
    if len(shape) == 3:
        n_tilts, ny, nx = shape
    elif len(shape) == 2:
        ny, nx = shape
        if arr.ndim != 2 or arr.shape[1] != 2:
            raise ValueError(
                f"shifts has shape {arr.shape}; expected (n_tilts, 2) as (dy, dx), one row "
                "per projection"
            )
        n_tilts = arr.shape[0]
    else:
        raise ValueError(
            f"shape={shape}; expected the stack shape (n_tilts, ny, nx) or an image shape (ny, nx)"
        )
    shifts = check_shifts(arr, n_tilts)
    if n_tilts == 0:
        raise ValueError("shifts is empty; expected one (dy, dx) row per projection")
    slices = []
    for axis, (size, name, unit) in enumerate(((ny, "y", "rows"), (nx, "x", "columns"))):
        high = float(shifts[:, axis].max())
        low = float(shifts[:, axis].min())
        start = max(0, math.ceil(high))
        stop = size - max(0, math.ceil(-low))
        if stop <= start:
            raise ValueError(
                f"the common area is empty along {name}: shifts[:, {axis}] range from "
                f"{low:.4g} to {high:.4g} px, which leaves no {unit[:-1]} of the {size} "
                f"{unit} covered by every projection; check the shifts (are they in pixels, "
                "with the (dy, dx) order and the sign of apply_shifts?)"
            )
        slices.append(slice(start, stop))
    return slices[0], slices[1]


def crop_area(shifts: Any, shape: tuple[int, ...]) -> tuple[slice, slice]:
    """The `(y, x)` slices that a crop keeps: the common area, centred across the tilt axis.

    Along x (the tilt axis) this is :func:`common_area`. Across it the rows are narrowed
    further to be symmetric about the centre row ``(ny - 1) / 2``: a crop must not move the
    tilt axis, which :func:`~tomoalign.reconstruct`, :func:`~tomoalign.reprojection_error`
    and ``tilt_align`` place at the centre row. Cropping the needle's PC alignment to its
    plain common area moved the axis 10.7 px off centre and raised the reprojection error
    from 0.077 to 0.124.

    Parameters
    ----------
    shifts : array_like
        `(n_tilts, 2)` shifts in pixels as ``(dy, dx)``, the sign of :func:`apply_shifts`.
    shape : tuple of int
        Shape of the stack, `(n_tilts, ny, nx)`, or of one image, `(ny, nx)`.

    Returns
    -------
    tuple of slice
        ``(rows, columns)``; ``rows.start + rows.stop == ny``.

    Raises
    ------
    ValueError
        As :func:`common_area`, and when the common area does not reach the centre row.

    Examples
    --------
    >>> from tomoalign.shifts import crop_area
    >>> crop_area([[2.0, -1.5], [-0.5, 0.0]], (2, 10, 10))
    (slice(2, 8, None), slice(0, 8, None))
    """
    rows, columns = common_area(shifts, shape)
    ny = int(shape[-2])
    start = max(rows.start, ny - rows.stop)
    if ny - start <= start:
        raise ValueError(
            f"the common area, rows {rows.start} to {rows.stop - 1} of {ny}, does not reach "
            f"the centre row {(ny - 1) / 2:g}, where the tilt axis lies; a crop about the "
            "axis would be empty. Check the shifts, or crop by hand (stack.isig[...])"
        )
    return slice(start, ny - start), columns
