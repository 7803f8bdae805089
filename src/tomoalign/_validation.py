"""Input checks shared by the signal, the I/O layer and the algorithms.

Each check raises with a message that says what was seen, what was expected and what to do.
Tilt angles are checked by one function, :func:`validate_tilts`, whose options cover every
use (count, shape, finite, the range of a tilt file, known tilts); :func:`check_tilts` and
:func:`require_tilts` are its two common forms.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tomoalign._backend import get_array_module, is_cupy_array, is_dask_array, to_numpy

__all__ = [
    "check_profiles",
    "check_series_array",
    "check_shifts",
    "check_start",
    "check_tilts",
    "constant_error",
    "count_nonfinite",
    "float_series",
    "format_indices",
    "nonfinite_error",
    "require_finite",
    "require_tilts",
    "validate_tilts",
]

#: How to give tilt angles, appended to the messages of :func:`validate_tilts` for a method
#: that needs them (``required``).
_HOW_TO_GIVE_TILTS = (
    "Give the tilt angles in degrees: TomoStack(data, tilts=...), stack.tilts = ..., or "
    "a .rawtlt/.tlt/.mdoc file beside the data for tomoalign.load"
)


def check_series_array(data: Any, *, what: str = "data", min_tilts: int = 1) -> None:
    """Check that ``data`` is a real numeric array of shape `(n_tilts, ny, nx)`.

    Parameters
    ----------
    data : array_like
        The candidate tilt series.
    what : str
        How to name it in messages.
    min_tilts : int
        Smallest acceptable number of projections.

    Raises
    ------
    TypeError
        For a non-numeric or complex dtype.
    ValueError
        For any number of dimensions other than 3, an empty image or too few projections.
    """
    dtype = np.dtype(data.dtype) if hasattr(data, "dtype") else np.asarray(data).dtype
    if dtype.kind not in "biuf":
        raise TypeError(
            f"{what} has dtype {dtype}; a tilt series needs real numbers (integer or float). "
            "Convert it first, e.g. data.astype(np.float32), or take np.abs() of complex data."
        )
    shape = tuple(getattr(data, "shape", np.shape(data)))
    if len(shape) == 2:
        raise ValueError(
            f"{what} is a single 2D image of shape {shape}; a tilt series has shape "
            "(n_tilts, ny, nx). For one projection use data[np.newaxis]."
        )
    if len(shape) != 3:
        raise ValueError(
            f"{what} has {len(shape)} dimensions, shape {shape}; a tilt series has shape "
            "(n_tilts, ny, nx). Select one series first (e.g. data[..., 0] or s.inav[...])."
        )
    if shape[1] < 2 or shape[2] < 2:
        raise ValueError(f"{what} has images of shape {shape[1:]}; each needs at least 2 x 2 px.")
    if shape[0] < min_tilts:
        raise ValueError(
            f"{what} has {shape[0]} projection(s); at least {min_tilts} are needed "
            "(n_tilts, ny, nx)"
        )


def validate_tilts(
    tilts: Any,
    n_tilts: int | None = None,
    *,
    shape: str | None = None,
    source: str | None = None,
    required: str | None = None,
    name: str = "tilt angles",
) -> np.ndarray:
    """Return tilt angles as a new float64 `(n,)` array of degrees, or raise.

    The checks run in this order, each only when its option asks for it: known
    (``required``), shape (``shape``), count (``n_tilts``), range (``source``), finite
    (always), not all zero (``required``).

    Parameters
    ----------
    tilts : array_like
        Angles in degrees (NumPy, CuPy or dask, list, ...). ``None`` only with ``required``.
    n_tilts : int, optional
        The number of projections: exactly one angle each, in stack order.
    shape : str, optional
        Refuse anything but a non-empty 1-D array (before flattening); the text says what
        was expected (``"tilts has shape (2, 3); expected <shape>"``).
    source : str, optional
        The tilts were read from this file (named in the message, e.g. quoted): refuse
        angles outside (-90, 90] degrees. A single-axis tilt series lies within that
        range, and a value outside is a sign of a wrong column, radians/degrees confusion
        or a corrupt file. Tilts given in memory are not limited.
    required : str, optional
        The method that needs the tilt angles: refuse ``None`` and all-zero tilts (a
        series loaded without tilts has zeros), and tell how to give them.
    name : str
        How the finite check names the angles.

    Returns
    -------
    numpy.ndarray
        float64 `(n,)` degrees, never the caller's array.

    Raises
    ------
    ValueError
        For missing tilts, a wrong shape or count, angles outside the range of a tilt file,
        NaN or infinite angles, or all-zero tilts.

    Examples
    --------
    >>> validate_tilts([-60, 0, 60], 3)
    array([-60.,   0.,  60.])
    >>> validate_tilts([0.0, 0.0], 2, required="tilt_axis_auto")
    Traceback (most recent call last):
        ...
    ValueError: tilt_axis_auto needs the tilt angles, but all tilts are 0. Give the tilt ...
    """
    if required is not None and tilts is None:
        raise ValueError(
            f"{required} needs the tilt angles, but none were given. {_HOW_TO_GIVE_TILTS}"
        )
    arr = np.asarray(
        to_numpy(tilts) if is_cupy_array(tilts) or is_dask_array(tilts) else tilts, dtype=float
    )
    if shape is not None and (arr.ndim != 1 or arr.size == 0):
        raise ValueError(f"tilts has shape {arr.shape}; expected {shape}")
    arr = arr.reshape(-1)
    if n_tilts is not None and arr.size != n_tilts:
        if required is not None:
            raise ValueError(
                f"got {arr.size} tilt angle(s) for {n_tilts} projection(s); expected one per "
                f"projection. {_HOW_TO_GIVE_TILTS}"
            )
        raise ValueError(
            f"got {arr.size} tilt angle(s) for {n_tilts} projection(s); give exactly one angle "
            "(degrees) per projection, in stack order"
        )
    if source is not None:
        bad = np.flatnonzero(~(np.isfinite(arr) & (arr > -90) & (arr <= 90)))
        if bad.size:
            i = int(bad[0])
            raise ValueError(
                f"tilt angle {arr[i]:g} (entry {i + 1} of {arr.size}) in {source} is outside "
                f"(-90, 90] degrees; {bad.size} angle(s) are. Fix the file (angles in degrees, "
                "one per projection)"
            )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite; got {arr[~np.isfinite(arr)][:5]}")
    if required is not None and np.all(arr == 0):
        raise ValueError(
            f"{required} needs the tilt angles, but all tilts are 0. {_HOW_TO_GIVE_TILTS}"
        )
    return arr.copy()


def check_tilts(tilts: Any, n_tilts: int) -> np.ndarray:
    """Return ``tilts`` as a float64 `(n_tilts,)` array, or raise (:func:`validate_tilts`).

    Raises
    ------
    ValueError
        When the count does not match ``n_tilts`` or a tilt is not finite.
    """
    return validate_tilts(tilts, n_tilts)


def check_shifts(shifts: Any, n_tilts: int, *, name: str = "shifts") -> np.ndarray:
    """Return ``shifts`` as a float64 `(n_tilts, 2)` array, or raise.

    Raises
    ------
    ValueError
        When the shape is not `(n_tilts, 2)` or a value is not finite.
    """
    arr = np.asarray(shifts, dtype=float)
    if arr.shape != (n_tilts, 2):
        raise ValueError(
            f"{name} has shape {arr.shape}; expected ({n_tilts}, 2) as (dy, dx) for a stack of "
            f"{n_tilts} projections"
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite; found NaN or infinite values")
    return arr.copy()


def count_nonfinite(data: Any) -> int:
    """Number of NaN or infinite pixels in eager ``data`` (0 for integer or dask data)."""
    if is_dask_array(data):
        return 0
    xp = get_array_module(data)
    if data.dtype.kind not in "fc":
        return 0
    return int(xp.count_nonzero(~xp.isfinite(data)))


def format_indices(indices: Any, limit: int = 10) -> str:
    """``[i, j, ...]`` with at most ``limit`` indices shown."""
    idx = [int(i) for i in np.asarray(indices).reshape(-1)]
    shown = ", ".join(str(i) for i in idx[:limit])
    return f"[{shown}{', ...' if len(idx) > limit else ''}]"


def nonfinite_error(per_tilt_counts: Any, *, what: str = "the tilt series") -> ValueError:
    """The error for NaN/inf pixels, given the count of bad pixels per projection."""
    counts = np.asarray(per_tilt_counts).reshape(-1)
    return ValueError(
        f"{what} has {int(counts.sum())} NaN or infinite pixel(s) in projection(s) "
        f"{format_indices(np.flatnonzero(counts))}; replace them (e.g. np.nan_to_num) or "
        "remove those projections (stack.inav[...]) first"
    )


def constant_error(indices: Any) -> ValueError:
    """The error for constant (zero-variance) projections."""
    return ValueError(
        f"projection(s) {format_indices(indices)} are constant (zero variance); alignment "
        "needs images with contrast. Remove those projections and their tilts first "
        "(stack.inav[...])"
    )


def require_finite(data: Any, *, what: str = "the tilt series") -> None:
    """Raise ``ValueError`` naming the projections that hold NaN or infinite pixels."""
    xp = get_array_module(data)
    if data.dtype.kind not in "fc":
        return
    bad = ~xp.isfinite(data)
    per_tilt = bad.reshape(bad.shape[0], -1).sum(axis=1)
    if hasattr(per_tilt, "compute"):
        per_tilt = per_tilt.compute()
    per_tilt = np.asarray(per_tilt.get() if hasattr(per_tilt, "get") else per_tilt)
    if per_tilt.any():
        raise nonfinite_error(per_tilt, what=what)


def check_start(start: Any, n_tilts: int) -> int:
    """Return the reference projection index (default the central one), or raise.

    Raises
    ------
    TypeError
        When ``start`` is not an integer or None.
    ValueError
        When ``start`` is outside ``[0, n_tilts)``.
    """
    if start is None:
        return n_tilts // 2
    if isinstance(start, bool) or not isinstance(start, int | np.integer):
        raise TypeError(f"start must be an int or None; got {type(start).__name__} {start!r}")
    if not 0 <= start < n_tilts:
        raise ValueError(
            f"start={start} is out of range for {n_tilts} projections; expected "
            f"0 <= start <= {n_tilts - 1}, or None for the central projection {n_tilts // 2}"
        )
    return int(start)


def require_tilts(tilts: Any, n_tilts: int, *, method: str) -> np.ndarray:
    """Return known tilt angles as float64 `(n_tilts,)` degrees, or raise.

    :func:`validate_tilts` with ``required=method``.

    Raises
    ------
    ValueError
        When tilts are missing, all zero, of the wrong count or not finite.
    """
    return validate_tilts(tilts, n_tilts, required=method)


def check_profiles(data: Any, *profiles: Any) -> None:
    """Raise for NaN/inf pixels or constant projections, using sums already computed.

    Parameters
    ----------
    data : array
        `(n_tilts, ny, nx)`; read again only for the projections that the profiles flag.
    *profiles : array
        `(n_tilts, m)` sums of ``data`` over one image axis (rows or columns), exact or
        computed through an FFT (flat to 1e-4 of their magnitude counts as constant). A NaN
        or infinite pixel makes its projection's sums non-finite; a constant projection has
        constant profiles. Candidates are then checked exactly, so this costs no pass over
        the stack.

    Raises
    ------
    ValueError
        As :func:`require_finite` and :func:`float_series` do.
    """
    xp = get_array_module(profiles[0])
    if not all(bool(xp.isfinite(p).all()) for p in profiles):
        require_finite(data)  # raises, naming the projections
    flat = np.ones(profiles[0].shape[0], dtype=bool)
    for p in profiles:
        flat &= to_numpy(p.max(axis=1) - p.min(axis=1) <= 1e-4 * xp.abs(p).max(axis=1))
    const = [int(i) for i in np.flatnonzero(flat) if bool(data[int(i)].max() == data[int(i)].min())]
    if const:
        raise constant_error(const)


def float_series(data: Any, *, min_tilts: int = 3, check_values: bool = True) -> Any:
    """Validate a tilt series for alignment and return it as a float array on its device.

    Parameters
    ----------
    data : array
        `(n_tilts, ny, nx)`, any real dtype, NumPy, CuPy or dask (dask is computed).
    min_tilts : int, default 3
        Fewest projections accepted.
    check_values : bool, default True
        Also check for NaN/inf pixels and constant projections (two passes over the data).
        Callers that compute profiles anyway pass False and call :func:`check_profiles`.

    Returns
    -------
    array
        float32 (float64 input stays float64); the input itself when already so. Callers
        never write to it.

    Raises
    ------
    TypeError
        For a non-numeric dtype.
    ValueError
        When the array is not 3D, has too few projections, NaN/inf pixels or constant
        projections.
    """
    check_series_array(data, min_tilts=min_tilts)
    if is_dask_array(data):
        data = to_numpy(data)
    xp = get_array_module(data)
    data = xp.asarray(data)
    fdata = data if data.dtype == np.float64 else data.astype(np.float32, copy=False)
    if not check_values:
        return fdata
    require_finite(fdata)
    ptp = to_numpy(xp.max(fdata, axis=(1, 2)) - xp.min(fdata, axis=(1, 2)))
    flat = np.flatnonzero(ptp == 0)
    if flat.size:
        raise constant_error(flat)
    return fdata
