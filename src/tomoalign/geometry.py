"""Tilt-axis geometry: rotate and offset a tilt series so that its tilt axis lies along x.

Conventions (the same everywhere in tomoalign):

* A tilt series has shape `(n_tilts, ny, nx)`, tilts in degrees, pixel-centre coordinates
  (pixel ``(row, col)`` has its centre at ``(row, col)``), ``y_c = (ny - 1) / 2`` and
  ``x_c = (nx - 1) / 2``.
* In an *aligned* series the tilt axis is parallel to x (array axis 2) and passes through
  row ``y_c``.
* A *raw* series whose tilt axis has ``angle`` ``a`` (degrees) and ``offset`` (pixels) has
  its axis on the line through ``(row, col) = (y_c + offset, x_c)`` with direction
  ``(d_row, d_col) = (sin a, cos a)``: a positive angle turns the axis from +x towards +y
  (towards larger row indices), a positive offset moves it to larger rows. ``offset`` is
  measured along the rows at the central column (the perpendicular distance of the axis
  from the image centre is ``offset * cos a``).
* The aligned pixel ``(y', x')``, with ``u = x' - x_c`` along the axis and
  ``v = y' - y_c`` across it, is found in the raw image at::

      row = y_c + offset + u sin a + v cos a
      col = x_c + u cos a - v sin a

  :func:`correct_tilt_axis` resamples a raw series on this grid (raw -> aligned);
  :func:`misalign_tilt_axis` is its inverse (aligned -> raw, for ground truth).

Resampling is by cubic B-spline interpolation (:func:`scipy.ndimage.affine_transform`, or
:mod:`cupyx.scipy.ndimage` for CuPy arrays) of each projection. :func:`correct_tilt_axis`
continues the image beyond its edges (``mode="nearest"``: a pixel from outside takes the
value of the nearest edge pixel), so the corners uncovered by a rotation hold the
background, whatever its level. ETSpy's ``trans_stack`` fills them with 0, which on real
data with a detector offset (the shipped needle's vacuum is at about -31,900 counts) adds a
frame 31,900 counts bright and makes the series less consistent. :func:`misalign_tilt_axis`,
which makes simulated ground truth from background-free phantoms, fills with 0.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from tomoalign._backend import get_array_module, ndimage
from tomoalign._validation import float_series, require_finite

__all__ = ["compose_tilt_axis", "correct_tilt_axis", "misalign_tilt_axis"]


def _check_number(value: Any, name: str, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{name} must be a real number ({what}); got {type(value).__name__} {value!r}"
        )
    out = float(value)
    if not math.isfinite(out):
        raise ValueError(f"{name}={out}; expected a finite number ({what})")
    return out


def _check_order(order: Any) -> int:
    if isinstance(order, bool) or not isinstance(order, int | np.integer) or not 0 <= order <= 5:
        raise ValueError(
            f"order={order!r}; expected an integer spline order from 0 to 5 "
            "(0 nearest, 1 linear, 3 cubic)"
        )
    return int(order)


def _prepare(data: Any) -> Any:
    """Validate a series and return it as float32 (float64 kept) on its device."""
    fdata = float_series(data, min_tilts=1, check_values=False)
    require_finite(fdata)
    return fdata


def _resample(
    fdata: Any, matrix: np.ndarray, shift: np.ndarray, order: int, mode: str = "constant"
) -> Any:
    """Apply ``out[p] = fdata[matrix @ p + shift]`` to every projection.

    Outside the input, ``mode="constant"`` reads 0 and ``mode="nearest"`` the nearest edge
    pixel (:func:`scipy.ndimage.affine_transform`'s modes).
    """
    xp = get_array_module(fdata)
    ndi = ndimage(xp)
    out = xp.empty(fdata.shape, dtype=fdata.dtype)
    mat = xp.asarray(matrix)
    off = xp.asarray(shift)
    for i in range(fdata.shape[0]):
        ndi.affine_transform(
            fdata[i],
            mat,
            offset=off,
            output=out[i],
            order=order,
            mode=mode,
            cval=0.0,
            prefilter=order > 1,
        )
    return out


def correct_tilt_axis(
    data: Any,
    angle: float,
    offset: float,
    /,
    *,
    xshift: float = 0.0,
    order: int = 3,
    mode: str = "nearest",
) -> Any:
    """Resample a raw tilt series so that its tilt axis lies along x through row ``y_c``.

    Parameters
    ----------
    data : array_like
        Raw tilt series, `(n_tilts, ny, nx)`, any real dtype (NumPy, CuPy or dask array; dask
        is computed). Not modified.
    angle : float
        Tilt-axis angle of the raw series, degrees: the axis has direction
        ``(d_row, d_col) = (sin a, cos a)`` (positive turns +x towards +y).
    offset : float
        Row offset of the raw tilt axis at the central column ``x_c``, pixels (positive:
        the axis lies below the centre, at larger row indices).
    xshift : float, default 0.0
        Extra translation along the axis after the correction, pixels; positive moves the
        content to larger x.
    order : int, default 3
        Spline order of the interpolation (0 to 5).
    mode : {"nearest", "constant"}, default "nearest"
        What pixels from outside the raw image hold: the nearest edge pixel, or 0
        (right for background-subtracted data, where 0 is the background).

    Returns
    -------
    array
        The aligned series, `(n_tilts, ny, nx)`, on the input's device: float32 for integer
        or float32 input, float64 for float64 input. The aligned pixel ``(y', x')`` holds the
        raw value at ``row = y_c + offset + u sin a + v cos a``,
        ``col = x_c + u cos a - v sin a`` with ``u = x' - xshift - x_c``, ``v = y' - y_c``;
        pixels that map outside the raw image take the value of the nearest edge pixel
        (``mode="nearest"``) or 0 (``mode="constant"``).

    Raises
    ------
    TypeError
        For a non-numeric series or a non-numeric ``angle``, ``offset`` or ``xshift``.
    ValueError
        For a series that is not 3D, NaN/inf pixels, non-finite parameters or an ``order``
        outside 0..5.

    See Also
    --------
    misalign_tilt_axis : the inverse mapping.
    tomoalign.estimate._tilt_axis.tilt_axis_auto : estimates ``(angle, offset)`` so that
        ``correct_tilt_axis(data, *tilt_axis_auto(data, tilts))`` aligns the series.

    Examples
    --------
    >>> import numpy as np
    >>> from tomoalign.geometry import correct_tilt_axis
    >>> raw = np.zeros((1, 33, 33), dtype=np.float32)
    >>> raw[0, 16 + 5, 16] = 1.0                       # a point on an axis offset by 5 px
    >>> out = correct_tilt_axis(raw, 0.0, 5.0, order=1)
    >>> np.unravel_index(int(out[0].argmax()), out[0].shape)
    (np.int64(16), np.int64(16))
    """
    a = math.radians(_check_number(angle, "angle", "tilt-axis angle in degrees"))
    off = _check_number(offset, "offset", "tilt-axis offset in pixels")
    dx = _check_number(xshift, "xshift", "shift along x in pixels")
    order = _check_order(order)
    if mode not in ("nearest", "constant"):
        raise ValueError(f"mode={mode!r}; expected 'nearest' or 'constant'")
    fdata = _prepare(data)
    _n, ny, nx = fdata.shape
    yc, xc = (ny - 1) / 2, (nx - 1) / 2
    c, s = math.cos(a), math.sin(a)
    # (row, col) = M (y', x') + t
    matrix = np.array([[c, s], [-s, c]])
    shift = np.array(
        [yc + off - s * (xc + dx) - c * yc, xc - c * (xc + dx) + s * yc],
    )
    return _resample(fdata, matrix, shift, order, mode=mode)


def misalign_tilt_axis(data: Any, angle: float, offset: float, /, *, order: int = 3) -> Any:
    """Make a raw series with the given tilt-axis angle and offset from an aligned one.

    The inverse of :func:`correct_tilt_axis` (with ``xshift=0``): the raw pixel
    ``(row, col)`` holds the aligned value at ``y' = y_c + v``, ``x' = x_c + u`` with
    ``u = (col - x_c) cos a + (row - y_c - offset) sin a`` and
    ``v = -(col - x_c) sin a + (row - y_c - offset) cos a``. Used to build ground truth.

    Parameters
    ----------
    data : array_like
        Aligned tilt series, `(n_tilts, ny, nx)` (tilt axis along x through ``y_c``).
    angle : float
        Tilt-axis angle to give the raw series, degrees (see :func:`correct_tilt_axis`).
    offset : float
        Row offset of the raw tilt axis at the central column, pixels.
    order : int, default 3
        Spline order of the interpolation (0 to 5).

    Returns
    -------
    array
        The raw series, `(n_tilts, ny, nx)`, float32 (float64 for float64 input), on the
        input's device; pixels that map outside the aligned image are 0.

    Raises
    ------
    TypeError
        For a non-numeric series or parameter.
    ValueError
        For a series that is not 3D, NaN/inf pixels, non-finite parameters or an ``order``
        outside 0..5.

    Examples
    --------
    >>> import numpy as np
    >>> from tomoalign.geometry import correct_tilt_axis, misalign_tilt_axis
    >>> from tomoalign.simulate import phantom_projections
    >>> truth = phantom_projections((64, 64), np.arange(-60, 61, 30))
    >>> back = correct_tilt_axis(misalign_tilt_axis(truth, 5.0, 3.0), 5.0, 3.0)
    >>> bool(np.abs(back - truth)[:, 16:-16, 16:-16].max() < 0.05 * truth.max())
    True
    """
    a = math.radians(_check_number(angle, "angle", "tilt-axis angle in degrees"))
    off = _check_number(offset, "offset", "tilt-axis offset in pixels")
    order = _check_order(order)
    fdata = _prepare(data)
    _n, ny, nx = fdata.shape
    yc, xc = (ny - 1) / 2, (nx - 1) / 2
    c, s = math.cos(a), math.sin(a)
    # (y', x') = M (row, col) + t, with M the transpose of the forward rotation
    matrix = np.array([[c, -s], [s, c]])
    shift = np.array([yc - c * (yc + off) + s * xc, xc - s * (yc + off) - c * xc])
    return _resample(fdata, matrix, shift, order)


def compose_tilt_axis(
    first: tuple[float, float, float], second: tuple[float, float, float]
) -> tuple[float, float, float]:
    """The single correction ``(angle, offset, xshift)`` equal to ``first`` then ``second``.

    ``first`` corrects a series; ``second`` corrects the result further. Both are rigid
    (a rotation about the image centre and a translation), so their composition is one.
    """
    a1, o1, x1 = first
    a2, o2, x2 = second
    r1 = math.radians(a1)
    # translation part: (o1, 0) + A(a1) (o2, -x1), with A(a) = [[cos, sin], [-sin, cos]]
    t_row = o1 + math.cos(r1) * o2 + math.sin(r1) * (-x1)
    t_col = -math.sin(r1) * o2 + math.cos(r1) * (-x1)
    angle = a1 + a2
    r = math.radians(angle)
    offset = t_row - math.tan(r) * t_col
    xshift = x2 + math.sin(r) * (offset - t_row) - math.cos(r) * t_col
    return angle, offset, xshift
