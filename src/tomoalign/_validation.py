"""Input checks shared by the signal, the I/O layer and the algorithms.

Each check raises with a message that says what was seen, what was expected and what to do.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tomoalign._backend import get_array_module, is_dask_array

__all__ = [
    "check_series_array",
    "check_shifts",
    "check_tilts",
    "count_nonfinite",
    "require_finite",
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
            f"{what} has {shape[0]} projection(s); at least {min_tilts} are needed."
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


def require_finite(data: Any, *, what: str = "the tilt series") -> None:
    """Raise ``ValueError`` naming the projections that hold NaN or infinite pixels."""
    xp = get_array_module(data)
    if data.dtype.kind not in "fc":
        return
    bad = ~xp.isfinite(data)
    per_tilt = np.asarray(bad.reshape(bad.shape[0], -1).sum(axis=1))
    if hasattr(per_tilt, "compute"):
        per_tilt = np.asarray(per_tilt.compute())
    if per_tilt.any():
        idx = np.flatnonzero(per_tilt)
        raise ValueError(
            f"{what} has {int(per_tilt.sum())} NaN or infinite pixel(s) in projection(s) "
            f"{idx[:10].tolist()}{' ...' if idx.size > 10 else ''}; replace them "
            "(e.g. np.nan_to_num) or remove those projections (stack.inav[...]) first"
        )
