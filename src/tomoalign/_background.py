"""The background level of each projection of a tilt series (array level, no HyperSpy).

Real detectors store data with an offset: the shipped needle series, int16 HAADF, has its
vacuum at about -31,900 counts and the specimen up to +25,000. Estimators that weigh pixels
by their value (centres of mass across the tilt axis, the common line, a non-negative
reconstruction) need the vacuum at 0, and a resampling that fills the corners with 0 adds a
bright frame to such data. :func:`background_level` finds the level from the rows that hold
no object.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tomoalign._backend import get_array_module, to_numpy
from tomoalign._numerics import difference_sigma
from tomoalign._profiles import series_background, support

__all__ = ["background_level", "subtract_background"]


def background_level(data: Any, /) -> np.ndarray:
    """Background level of each projection, in pixel units, `(n_tilts,)` float64.

    The row profiles (each projection summed along x, the tilt axis) locate the object
    across the axis (:func:`~tomoalign._profiles.support`); the level is the
    Huber M-estimate of the rows outside it, pooled over the series by random effects
    (:func:`~tomoalign._profiles.series_background`), divided by the number of
    columns. A series whose object fills every row has no background rows: the level is 0
    (nothing is subtracted).

    Parameters
    ----------
    data : array_like
        Tilt series `(n_tilts, ny, nx)`, real, finite (NumPy, CuPy or dask; dask is read
        once, row sums only). Not modified.

    Returns
    -------
    numpy.ndarray
        `(n_tilts,)` level of each projection, per pixel.

    Examples
    --------
    >>> import numpy as np
    >>> from tomoalign._background import background_level
    >>> data = np.full((3, 40, 30), -500.0)
    >>> data[:, 15:25, :] += 100.0  # an object across rows 15..24, on a -500 background
    >>> np.round(background_level(data), 6)
    array([-500., -500., -500.])
    """
    rows = data.sum(axis=2, dtype=np.float64)
    rows = np.asarray(to_numpy(rows.compute() if hasattr(rows, "compute") else rows))
    _c, lo, hi = support(rows)
    return np.asarray(series_background(rows, lo, hi), dtype=np.float64) / data.shape[2]


def subtract_background(data: Any, /) -> Any:
    """``data`` less its :func:`background_level` where that level stands out of the noise.

    The level is subtracted when it differs from 0 by more than the pixel noise (robust
    standard deviation of the differences of neighbouring pixels along x, over
    ``sqrt(2)``): a detector offset is thousands of noise units, while the estimate of a
    background that is already 0 is a fraction of one, and subtracting it would only add
    its noise. Otherwise ``data`` is returned as a float array unchanged.

    Returns
    -------
    array
        float32 for integer or float32 input, float64 for float64 input, of ``data``'s
        array kind (NumPy, CuPy, dask). The input is not modified.
    """
    dtype = np.float64 if np.dtype(data.dtype) == np.float64 else np.float32
    out = data.astype(dtype)
    level = background_level(data)
    d = out[:, :, 1:] - out[:, :, :-1]
    d = d.compute() if hasattr(d, "compute") else d
    d = np.asarray(to_numpy(d)).ravel()
    noise = difference_sigma(d)
    if not np.max(np.abs(level)) > noise:
        return out
    if hasattr(out, "dask"):
        return out - level.astype(dtype)[:, None, None]
    xp = get_array_module(out)
    return out - xp.asarray(level.astype(dtype)[:, None, None])
