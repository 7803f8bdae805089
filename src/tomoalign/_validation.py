"""Input checks shared by the signal, the I/O layer and the algorithms.

Each check raises with a message that says what was seen, what was expected and what to do.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tomoalign._backend import get_array_module, is_dask_array, to_numpy

__all__ = [
    "check_profiles",
    "check_series_array",
    "check_shifts",
    "check_start",
    "check_tilt_range",
    "check_tilts",
    "constant_error",
    "count_nonfinite",
    "float_series",
    "format_indices",
    "nonfinite_error",
    "require_finite",
    "require_tilts",
]


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


def check_tilts(tilts: Any, n_tilts: int) -> np.ndarray:
    """Return ``tilts`` as a float64 `(n_tilts,)` array, or raise.

    Raises
    ------
    ValueError
        When the count does not match ``n_tilts`` or a tilt is not finite.
    """
    arr = np.asarray(tilts, dtype=float).reshape(-1)
    if arr.size != n_tilts:
        raise ValueError(
            f"got {arr.size} tilt angle(s) for {n_tilts} projection(s); give exactly one angle "
            "(degrees) per projection, in stack order"
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"tilt angles must be finite; got {arr[~np.isfinite(arr)][:5]}")
    return arr.copy()


def check_tilt_range(tilts: Any, *, source: str) -> np.ndarray:
    """Return ``tilts`` as float64 degrees, refusing angles outside (-90, 90].

    For tilts read from acquisition files (``.rawtlt``, ``.tlt``, ``.mdoc``): a
    single-axis tilt series lies within (-90, 90] degrees, and a value outside is a sign of
    a wrong column, radians/degrees confusion or a corrupt file. Tilts given in memory
    (``TomoStack(data, tilts=...)``) are not limited.

    Parameters
    ----------
    tilts : array_like
        Angles in degrees.
    source : str
        Where they came from, for the message (e.g. the file name, quoted).

    Raises
    ------
    ValueError
        Naming the first bad value, its position and ``source``.
    """
    arr = np.asarray(tilts, dtype=float).reshape(-1)
    bad = np.flatnonzero(~(np.isfinite(arr) & (arr > -90) & (arr <= 90)))
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"tilt angle {arr[i]:g} (entry {i + 1} of {arr.size}) in {source} is outside "
            f"(-90, 90] degrees; {bad.size} angle(s) are. Fix the file (angles in degrees, one "
            "per projection)"
        )
    return arr


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

    Raises
    ------
    ValueError
        When tilts are missing, all zero, of the wrong count or not finite.
    """
    how = (
        "Give the tilt angles in degrees: TomoStack(data, tilts=...), stack.tilts = ..., or "
        "a .rawtlt/.tlt/.mdoc file beside the data for tomoalign.load"
    )
    if tilts is None:
        raise ValueError(f"{method} needs the tilt angles, but none were given. {how}")
    arr = np.asarray(tilts.get() if hasattr(tilts, "get") else tilts, dtype=float).reshape(-1)
    if arr.size != n_tilts:
        raise ValueError(
            f"got {arr.size} tilt angle(s) for {n_tilts} projection(s); expected one per "
            f"projection. {how}"
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"tilt angles must be finite; got {arr[~np.isfinite(arr)][:5]}")
    if np.all(arr == 0):
        raise ValueError(f"{method} needs the tilt angles, but all tilts are 0. {how}")
    return arr


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
