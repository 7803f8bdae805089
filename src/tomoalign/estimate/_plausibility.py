"""A check, after any alignment method, that the shifts found are plausible.

Two facts of an aligned tilt series about an axis parallel to x hold whatever the method:

* along x, the column profile (sum over y) of every projection is the same (the projection
  onto the tilt axis does not change with the tilt), so after the found shifts each aligned
  column profile lines up with their mean;
* along y, the row profile (sum over x) changes slowly with the tilt, so neighbouring aligned
  row profiles line up with each other (their offset is the centre-of-mass motion of one
  tilt step, a pixel or two).

An alignment that failed (a search range too small for the jitter, a broken neighbour chain)
leaves offsets of many pixels there. The check measures those offsets as the whole-pixel
peak of the cross-correlation of the profiles that the method read anyway, so it costs no
pass over the data. A projection is flagged where its offset exceeds
``_TOLERANCE_PX + _MEDIAN_FACTOR * median(|offsets|)`` px (the median term allows for series
whose row profiles move by more than a few pixels per tilt step, e.g. coarse tilt steps).
Measured (``tests/test_align/test_plausibility.py``): 0 px, at most 1 px, for every method on
the built-in needle and on 256 px phantom series jittered by 5 px (clean, noisy, drifting);
with a 30 px jitter, up to 10 px along x for COM (``p=20`` cannot reach the shifts) and
51 px along y for StackReg (a broken chain), while PC and COM-CL stay at 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.fft

from tomoalign._profiles import shift_lines
from tomoalign._validation import format_indices
from tomoalign._warnings import warn

__all__ = ["profile_offsets", "warn_if_implausible"]

#: Offsets (px) of aligned profiles tolerated on top of the series' typical offset.
_TOLERANCE_PX = 3.0
#: Times the median absolute offset of the series added to the tolerance.
_MEDIAN_FACTOR = 2.0


def _lags(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Whole-pixel offsets ``d`` `(p,)` with ``a[i](x) ~ b[i](x - d[i])``, rows of `(p, m)`.

    Each line less the straight line through its end points and its mean, zero-padded to
    twice its length, so neither a background level nor the periodic wrap makes a peak.
    """
    m = a.shape[1]
    x = np.arange(m) / max(m - 1, 1)

    def flat(lines: np.ndarray) -> np.ndarray:
        out = lines - (lines[:, :1] + (lines[:, -1:] - lines[:, :1]) * x)
        return out - out.mean(axis=1, keepdims=True)

    size = 2 * m
    corr = scipy.fft.irfft(
        scipy.fft.rfft(flat(a), size, axis=1) * np.conj(scipy.fft.rfft(flat(b), size, axis=1)),
        size,
        axis=1,
    )
    k = corr.argmax(axis=1)
    return np.where(k > m, k - size, k).astype(float)


def profile_offsets(
    shifts: np.ndarray, rows: np.ndarray, cols: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Offsets left after alignment: of neighbouring row profiles, of column profiles.

    Parameters
    ----------
    shifts : numpy.ndarray
        `(n_tilts, 2)` shifts ``(dy, dx)`` that align the series (px).
    rows, cols : numpy.ndarray
        `(n_tilts, ny)` sums over x and `(n_tilts, nx)` sums over y of the unaligned series.

    Returns
    -------
    dy : numpy.ndarray
        `(n_tilts - 1,)` whole-pixel offsets along y between aligned projections ``i`` and
        ``i + 1``.
    dx : numpy.ndarray
        `(n_tilts,)` whole-pixel offsets along x of each aligned column profile from their
        mean.
    """
    fft = scipy.fft
    rows = shift_lines(np, fft, np.asarray(rows, dtype=float), shifts[:, 0])
    cols = shift_lines(np, fft, np.asarray(cols, dtype=float), shifts[:, 1])
    dy = _lags(rows[1:], rows[:-1])
    dx = _lags(cols, np.broadcast_to(cols.mean(axis=0), cols.shape))
    return dy, dx


def _flagged(offsets: np.ndarray) -> np.ndarray:
    """Indices whose |offset| exceeds the tolerance of the series."""
    size = np.abs(offsets)
    return np.flatnonzero(size > _TOLERANCE_PX + _MEDIAN_FACTOR * float(np.median(size)))


def warn_if_implausible(method: str, shifts: Any, rows: Any, cols: Any) -> bool:
    """Warn (``UserWarning``, one line) when the shifts found leave the profiles misaligned.

    Parameters
    ----------
    method : str
        The method's name, for the message.
    shifts : array_like
        `(n_tilts, 2)` shifts found, ``(dy, dx)`` px.
    rows, cols : array_like
        `(n_tilts, ny)` and `(n_tilts, nx)` profiles of the unaligned series.

    Returns
    -------
    bool
        True when it warned.
    """
    shifts = np.asarray(shifts, dtype=float)
    dy, dx = profile_offsets(shifts, np.asarray(rows), np.asarray(cols))
    pairs, columns = _flagged(dy), _flagged(dx)
    if pairs.size == 0 and columns.size == 0:
        return False
    projections = np.union1d(np.union1d(pairs, pairs + 1), columns).astype(int)
    parts = []
    if pairs.size:
        parts.append(f"{np.abs(dy).max():.0f} px along y between neighbouring row profiles")
    if columns.size:
        parts.append(f"{np.abs(dx).max():.0f} px along x between column profiles")
    warn(
        f"{method} alignment: the shifts found look implausible for projection(s) "
        f"{format_indices(projections)} ({projections.size} of {shifts.shape[0]}): the "
        f"aligned series still has offsets of up to {' and '.join(parts)} (a few px at most "
        "when aligned); check the result, or try another method (PC is the most robust to "
        "large shifts)",
    )
    return True
