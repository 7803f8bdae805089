r"""Ground-truth scoring of an alignment.

A simulated series is misaligned by known shifts ``true_shifts`` (content of projection
``i`` moved by ``+true_shifts[i]``, :func:`scipy.ndimage.shift`'s sign); an alignment
method then returns ``found_shifts``, the shifts that align the series, in the same
convention. A perfect result undoes the misalignment, ``found = -true``, so the error is the
residual ``r = found + true``, shape `(n_tilts, 2)` as ``(dy, dx)`` pixels.

Why part of the residual is not an error
----------------------------------------
The projections define the object only up to a rigid 3D translation: moving the object by
``(tx, ty, tz)`` (x along the tilt axis, y across it, z along the beam at tilt 0) moves
projection ``i`` at tilt ``theta_i`` by

* ``tx`` along x (the tilt axis), the same for every projection, and
* ``ty cos(theta_i) - tz sin(theta_i)`` along y (row ``y cos - z sin`` in the convention of
  :mod:`tomoalign.simulate`),

and the translated object is an equally valid reconstruction. A shift of every projection
by the same ``a`` across the axis moves the tilt axis off the image centre instead; a
translation-only alignment cannot see it either (it is the job of tilt-axis estimation), so
it is also not scored here. The residual is therefore scored after removing

* along x (column 1): its mean, and
* along y (column 0): its least-squares fit by ``a + b cos(theta) + c sin(theta)``.

What remains is the part of the error that no rigid translation (and no tilt-axis offset)
explains: the misalignment that blurs a reconstruction.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tomoalign._backend import to_numpy
from tomoalign._validation import check_shifts, validate_tilts

__all__ = ["alignment_residual", "rms_error"]

# Relative singular-value cutoff below which the y-model's columns count as dependent.
_RANK_RTOL = 1e-9


def _check_inputs(
    found_shifts: Any, true_shifts: Any, tilts: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    angles = validate_tilts(
        tilts,
        shape="a non-empty 1D array with one angle (degrees) per projection",
        name="tilts",
    )
    n = angles.size
    found = check_shifts(to_numpy(found_shifts), n, name="found_shifts")
    true = check_shifts(to_numpy(true_shifts), n, name="true_shifts")
    return found, true, angles


def alignment_residual(found_shifts: Any, true_shifts: Any, tilts: Any) -> np.ndarray:
    r"""Alignment error per projection, after removing what a rigid translation explains.

    With ``r = found_shifts + true_shifts`` (zero for a perfect alignment, which undoes the
    applied misalignment), returns

    * ``r[:, 1] - mean(r[:, 1])`` along x (the tilt axis), and
    * ``r[:, 0]`` minus its least-squares fit by ``a + b cos(theta) + c sin(theta)`` along y,

    with ``theta = deg2rad(tilts)``. These are exactly the residual's components that a
    rigid 3D translation of the object (and a shift of the tilt axis across the image) cannot
    produce; see the module docstring for the derivation. Technically the y column is
    projected onto the orthogonal complement of the span of ``(1, cos theta, sin theta)``.
    When the tilts do not span three independent columns (e.g. all tilts equal, or only
    two distinct angles) the complement of their actual span is used: with all tilts equal
    only the mean is removed.

    Parameters
    ----------
    found_shifts : array_like
        `(n_tilts, 2)` shifts in pixels as ``(dy, dx)`` that an alignment found (the shifts
        that align the series; content moves by ``+shift``).
    true_shifts : array_like
        `(n_tilts, 2)` shifts in pixels as ``(dy, dx)`` that were applied to misalign the
        aligned ground truth, same sign convention.
    tilts : array_like
        `(n_tilts,)` tilt angles in degrees, in stack order.

    Returns
    -------
    numpy.ndarray
        `(n_tilts, 2)` float64 residual in pixels as ``(dy, dx)``: column 0 along y (across
        the tilt axis, array axis 1), column 1 along x (along it, array axis 2).

    Raises
    ------
    ValueError
        When the shapes do not match `(n_tilts, 2)` and `(n_tilts,)`, or a value is not
        finite.

    Examples
    --------
    >>> import numpy as np
    >>> from tomoalign.metrics import alignment_residual
    >>> tilts = np.arange(-60.0, 61.0, 20.0)
    >>> true = np.zeros((7, 2))
    >>> found = np.stack([1 + 2 * np.cos(np.deg2rad(tilts)), np.full(7, 3.0)], axis=1)
    >>> bool(np.allclose(alignment_residual(found, true, tilts), 0))
    True
    """
    found, true, angles = _check_inputs(found_shifts, true_shifts, tilts)
    residual = found + true
    residual[:, 1] -= residual[:, 1].mean()
    theta = np.deg2rad(angles)
    design = np.stack([np.ones_like(theta), np.cos(theta), np.sin(theta)], axis=1)
    # Orthonormal basis of the columns' span from the SVD (rank-aware), then project out.
    u, sv, _ = np.linalg.svd(design, full_matrices=False)
    basis = u[:, sv > _RANK_RTOL * sv[0]]
    residual[:, 0] -= basis @ (basis.T @ residual[:, 0])
    return residual


def rms_error(found_shifts: Any, true_shifts: Any, tilts: Any) -> tuple[float, float]:
    """Root-mean-square alignment error per axis, in pixels.

    The RMS over projections of :func:`alignment_residual`: 0 for an alignment that is
    perfect up to a rigid translation of the object.

    Parameters
    ----------
    found_shifts : array_like
        `(n_tilts, 2)` shifts in pixels as ``(dy, dx)`` that an alignment found.
    true_shifts : array_like
        `(n_tilts, 2)` shifts in pixels as ``(dy, dx)`` that misaligned the ground truth.
    tilts : array_like
        `(n_tilts,)` tilt angles in degrees.

    Returns
    -------
    tuple of float
        ``(rms_y, rms_x)`` in pixels: across the tilt axis (array axis 1) and along it
        (array axis 2).

    Raises
    ------
    ValueError
        As :func:`alignment_residual`.

    Examples
    --------
    >>> import numpy as np
    >>> from tomoalign.metrics import rms_error
    >>> true = np.array([[1.0, 2.0], [-1.0, 0.5], [0.0, -3.0], [2.0, 1.0]])
    >>> rms_error(-true, true, [-40.0, -10.0, 20.0, 50.0])
    (0.0, 0.0)
    """
    residual = alignment_residual(found_shifts, true_shifts, tilts)
    rms = np.sqrt(np.mean(residual**2, axis=0))
    return float(rms[0]), float(rms[1])
