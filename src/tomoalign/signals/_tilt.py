"""Signal-level geometry operations: ``tilt_align``, ``align_other`` and ``shift_crop``.

The whole alignment of a :class:`~tomoalign.TomoStack` is kept in ``metadata.Tomography``
and is applied in this canonical order, by :func:`align_other` as by the methods that made it:

1. ``shifts`` `(n_tilts, 2)`: per-projection translations ``(dy, dx)`` in pixels
   (:func:`scipy.ndimage.shift` sign), from :func:`tomoalign.align_stack`;
2. ``cropped``: when true, the crop to the area every shifted projection covers
   (:func:`shift_crop`);
3. the tilt-axis correction, from :meth:`TomoStack.tilt_align`:

   ``tiltaxis`` (degrees)
       angle of the tilt axis found in the shift-aligned series, measured from the +x
       direction (columns) towards +y (rows, downwards in a display with the origin at the
       top): the axis ran along ``(d_row, d_col) = (sin a, cos a)``. The correction rotates
       the images by ``-tiltaxis`` about the image centre.
   ``yshift`` (pixels)
       offset of the tilt axis across itself: it passed through row ``(ny - 1) / 2 + yshift``
       at the centre column. The correction moves the content by ``-yshift`` across the axis.
   ``xshift`` (pixels)
       translation of the content along the axis after the correction (+ = towards larger x).

   Together: aligned pixel (row, col), with ``u = col - xshift - (nx - 1) / 2`` and
   ``v = row - (ny - 1) / 2``, is read from the shift-aligned series at row
   ``(ny - 1) / 2 + yshift + u sin a + v cos a`` and column ``(nx - 1) / 2 + u cos a - v sin a``
   (:func:`tomoalign.geometry.correct_tilt_axis`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tomoalign._backend import is_dask_array, to_numpy
from tomoalign._progress import progress_bar
from tomoalign._validation import check_series_array, require_tilts
from tomoalign._warnings import warn
from tomoalign.estimate import _tilt_axis
from tomoalign.geometry import compose_tilt_axis, correct_tilt_axis
from tomoalign.reconstruction import reprojection_error
from tomoalign.shifts import apply_shifts, crop_area
from tomoalign.signals._carried import check_series as _check_series

__all__ = ["align_other", "shift_crop", "tilt_align"]

TILT_METHODS = ("auto", "CoM", "MaxImage")


def _geometry_of(stack: Any) -> tuple[float, float, float]:
    md = stack.metadata.Tomography
    return float(md.tiltaxis), float(md.yshift), float(md.xshift)


def _has_tilt_axis_correction(stack: Any) -> bool:
    return any(v != 0 for v in _geometry_of(stack))


def tilt_align(
    stack: Any,
    method: str = "auto",
    *,
    slices: Any = None,
    nslices: int | None = None,
    limit: float = 10.0,
    delta: float = 0.1,
    plot_results: bool = False,
    also_shift: bool = False,
    shift_limit: float = 20.0,
    verify: bool = True,
    show_progressbar: bool = False,
) -> Any:
    """Find the tilt axis (angle and offset) and return a corrected copy.

    The correction is applied only when the data support it. It is refused, with a
    ``UserWarning`` naming the value, and the input returned as an unchanged copy when

    * the offset puts the axis more than a quarter of the image height from the centre
      (``|offset| > ny / 4``: an axis that far off is a failed estimate, not a geometry a
      microscope produces), or the angle lies more than 1 degree beyond ``+-limit``, the
      range searched;
    * with ``verify`` (default), the corrected series is less consistent than the input:
      its :func:`~tomoalign.reprojection_error` (background subtracted, non-negative SIRT,
      16 x-columns) is higher, by more than 0.1 %. This costs two small reconstructions
      (a few seconds) and guarantees that ``tilt_align`` never makes a series worse by
      that measure.

    Parameters
    ----------
    stack : TomoStack
        A shift-aligned series with tilts. Not modified.
    method : {"auto", "CoM", "MaxImage"}
        ``"auto"``: joint estimate of angle and offset, coarse to fine (the default, and the
        most accurate). ``"CoM"``: ETSpy's centre-of-mass method (the sinusoidal centre-of-
        mass motion of several x-slices, then a line through their axis positions).
        ``"MaxImage"``: ETSpy's maximum-image method (edges of the maximum-intensity
        projection, Hough lines within ``limit`` degrees at ``delta`` steps); the offset only
        with ``also_shift``.
    slices : array_like of int, optional
        CoM: the x-slices (columns) to use.
    nslices : int, optional
        CoM: how many x-slices to pick when ``slices`` is not given.
    limit : float, default 10
        MaxImage and auto: largest axis angle searched, degrees.
    delta : float, default 0.1
        MaxImage: angular step of the Hough transform, degrees.
    plot_results : bool, default False
        MaxImage: plot the maximum image with the axis found.
    also_shift : bool, default False
        MaxImage: also find the offset, as the shift within ``shift_limit`` that minimises the
        summed non-negative SIRT reconstruction of the central slice.
    shift_limit : float, default 20
        MaxImage with ``also_shift``: largest offset searched, pixels.
    verify : bool, default True
        Keep the input when the correction raises the reprojection error (see above).
        ``False`` applies any plausible estimate, as ETSpy does.
    show_progressbar : bool, default False
        Show a tqdm bar over the steps (estimate, correction, the two checks).

    Returns
    -------
    TomoStack
        The corrected copy (float32 for integer input), with ``metadata.Tomography``
        ``tiltaxis``, ``yshift`` and ``xshift`` set as described in the module docstring
        (composed with any correction the input already had); or, when the correction is
        refused, an unchanged copy of the input.

    Warns
    -----
    UserWarning
        When the correction is refused; the message names the angle and offset found and
        why they were not applied.

    Raises
    ------
    ValueError
        For an unknown method, missing or all-zero tilts, fewer than 3 projections.
    """
    _check_series(stack, "tilt_align")
    names = {m.lower(): m for m in TILT_METHODS}
    if not isinstance(method, str) or method.lower() not in names:
        raise ValueError(
            f"unknown tilt-axis method {method!r}; valid methods are "
            f"{', '.join(map(repr, TILT_METHODS))}"
        )
    method = names[method.lower()]
    data = stack.data
    check_series_array(data, what="the tilt series", min_tilts=3)
    tilts = require_tilts(
        stack.tilts if stack.has_tilts else None, stack.n_tilts, method="tilt-axis alignment"
    )
    steps = 4 if verify else 2
    with progress_bar(show_progressbar, steps, f"tilt axis ({method})") as update:
        tick = update or (lambda _k: None)
        if method == "CoM":
            angle, offset = _tilt_axis.tilt_axis_com(data, tilts, slices=slices, nslices=nslices)
        elif method == "MaxImage":
            angle = _tilt_axis.tilt_axis_maximage(data, limit=limit, delta=delta)
            offset = 0.0
            if also_shift:
                offset = _tilt_axis.maximage_offset(
                    data, tilts, angle=angle, shift_limit=shift_limit
                )
            if plot_results:
                _plot_maximage(data, angle)
        else:
            angle, offset = _tilt_axis.tilt_axis_auto(data, tilts, limit=limit)
        tick(1)
        found = (float(angle), float(offset), 0.0)
        ny = int(data.shape[1])
        why = ""
        if abs(found[1]) > ny / 4:
            why = f"the offset is more than a quarter of the image height ({ny} px) from the centre"
        elif method != "CoM" and abs(found[0]) > limit + _ANGLE_MARGIN:
            why = f"the angle lies beyond the range searched (limit={limit:g} degrees)"
        if why:
            return _refuse(stack, method, found, why)
        corrected = _per_projection(correct_tilt_axis, data, found[0], found[1], xshift=found[2])
        tick(1)
        if verify:
            before = _consistency(data, tilts)
            tick(1)
            after = _consistency(corrected, tilts)
            tick(1)
            if after > before * (1.0 + _VERIFY_TOLERANCE):
                return _refuse(
                    stack,
                    method,
                    found,
                    f"the corrected series is less consistent than the input (reprojection "
                    f"error {after:.4f} against {before:.4f})",
                )
    out = stack._derive(corrected)
    total = compose_tilt_axis(_geometry_of(stack), found)
    md = out.metadata.Tomography
    md.tiltaxis, md.yshift, md.xshift = (float(v) for v in total)
    return out


#: x-columns reconstructed by the consistency check of :func:`tilt_align`.
_VERIFY_COLUMNS = 16
#: Degrees by which an angle may exceed ``limit`` (the centre-of-mass refinement of "auto" can
#: carry an axis at the limit a little beyond it) before it counts as outside the search.
_ANGLE_MARGIN = 1.0
#: Relative rise of that reprojection error below which a correction still counts as no
#: worse: a correction of ~0 (a second ``tilt_align``) moves it by about 1e-5 either way.
_VERIFY_TOLERANCE = 1e-3


def _consistency(data: Any, tilts: np.ndarray) -> float:
    """The reprojection error that :func:`tilt_align` compares (see there)."""
    return reprojection_error(to_numpy(data), tilts, nslices=_VERIFY_COLUMNS)


def _refuse(stack: Any, method: str, found: tuple[float, float, float], why: str) -> Any:
    """Warn that the tilt-axis correction ``found`` is not applied; return a copy."""
    warn(
        f"tilt_align({method!r}) found the tilt axis at {found[0]:+.2f} degrees, offset "
        f"{found[1]:+.2f} px, and did not apply it: {why}. The series is returned unchanged "
        "(metadata.Tomography.tiltaxis and yshift kept); check the alignment, or correct the "
        "axis by hand",
    )
    return stack.deepcopy()


def _per_projection(func: Any, data: Any, *args: Any, **kwargs: Any) -> Any:
    """``func(data, ...)`` on an array, or block by block along the tilts on a dask array."""
    if not is_dask_array(data):
        return func(data, *args, **kwargs)
    out_dtype = np.float64 if data.dtype == np.float64 else np.float32
    return data.rechunk({1: -1, 2: -1}).map_blocks(
        lambda block: func(block, *args, **kwargs), dtype=out_dtype
    )


def _plot_maximage(data: Any, angle: float) -> Any:
    import matplotlib.pyplot as plt

    image = to_numpy(data).max(axis=0)
    ny, nx = image.shape
    fig, ax = plt.subplots()
    ax.imshow(image, cmap="gray")
    x = np.array([0, nx - 1], dtype=float)
    ax.plot(x, (ny - 1) / 2 + (x - (nx - 1) / 2) * math.tan(math.radians(angle)), "r-")
    ax.set_title(f"maximum image; tilt axis at {angle:.2f} degrees")
    return fig


def shift_crop(stack: Any) -> Any:
    """Crop a shift-aligned series to the area that every shifted projection covers.

    Each axis is cropped by its own shifts: a shift of ``s > 0`` px along an axis leaves the
    first ``ceil(s)`` pixels uncovered, ``s < 0`` the last ``ceil(-s)``
    (:func:`tomoalign.shifts.common_area`); across the tilt axis the rows kept are then
    made symmetric about the centre row, so that the crop does not move the tilt axis
    (:func:`tomoalign.shifts.crop_area`). ETSpy 1.3.0 swaps the axes here and returns an
    empty stack when no shift is negative.

    Parameters
    ----------
    stack : TomoStack
        A series with ``shifts`` (not modified).

    Returns
    -------
    TomoStack
        The cropped copy, ``metadata.Tomography.cropped = True``. A series already cropped is
        returned as an unchanged copy, with a warning.

    Raises
    ------
    ValueError
        When the shifts leave no common area.
    """
    _check_series(stack, "shift_crop")
    if stack.metadata.Tomography.cropped:
        warn(
            "the series is already cropped to its common area (metadata.Tomography.cropped); "
            "returning an unchanged copy"
        )
        return stack.deepcopy()
    return stack._derive(stack.data, crop=True).deepcopy()


def align_other(stack: Any, other: Any, *, shift_type: str = "fourier") -> Any:
    """Apply ``stack``'s whole alignment to ``other``, a signal of the same geometry.

    For example an EDS or EELS map series acquired with a HAADF series: the shifts, the crop
    and the tilt-axis correction of ``stack`` are applied, in that order, to a copy of
    ``other``, which keeps its own tilts, dtype rules (integer data becomes float32) and
    metadata.

    Parameters
    ----------
    stack : TomoStack
        The aligned series whose alignment is applied.
    other : TomoStack or hyperspy Signal2D
        `(n_tilts, ny, nx)` with the same number of projections and image shape as the
        *unaligned* ``stack``. Not modified.
    shift_type : {"fourier", "interp"}
        How the shifts are applied.

    Returns
    -------
    TomoStack
        The aligned copy of ``other``, its ``metadata.Tomography`` carrying the alignment.

    Raises
    ------
    ValueError
        When ``stack`` holds no alignment, or ``other`` differs in shape or tilt count.
    """
    _check_series(stack, "align_other")
    target = stack._as_series(other)
    shifts = stack.shifts
    if not np.any(shifts) and not _has_tilt_axis_correction(stack):
        raise ValueError(
            "the stack has no alignment to give (zero shifts and no tilt-axis correction); "
            "align it first with stack_register/align_stack or tilt_align"
        )
    if target.n_tilts != stack.n_tilts:
        raise ValueError(
            f"other has {target.n_tilts} projection(s) but the aligned stack has "
            f"{stack.n_tilts}; they must be the same series"
        )
    shape = tuple(target.data.shape[1:])
    expected = tuple(stack.data.shape[1:])
    if stack.metadata.Tomography.cropped:
        ys, xs = crop_area(shifts, (len(shifts), *shape))
        cropped_shape = (ys.stop - ys.start, xs.stop - xs.start)
        if cropped_shape != expected:
            raise ValueError(
                f"other has images of {shape} px, which crop to {cropped_shape} with the "
                f"stack's shifts, but the aligned stack has {expected}; other must have the "
                "image shape of the stack before cropping"
            )
    elif shape != expected:
        raise ValueError(
            f"other has images of {shape} px but the stack has {expected}; they must be "
            "the same series"
        )
    aligned = apply_shifts(target.data, shifts, shift_type=shift_type)
    out = target._derive(aligned, add_shifts=shifts, crop=bool(stack.metadata.Tomography.cropped))
    angle, offset, xshift = _geometry_of(stack)
    if _has_tilt_axis_correction(stack):
        out.data = _per_projection(correct_tilt_axis, out.data, angle, offset, xshift=xshift)
    md = out.metadata.Tomography
    md.tiltaxis, md.yshift, md.xshift = angle, offset, xshift
    return out
