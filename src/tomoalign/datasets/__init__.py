"""Built-in data: a real STEM tilt series and simulated series with known ground truth.

``needle()`` is real data with no ground truth. ``phantom_series`` gives an aligned series of
a known 3D phantom; ``misalign`` shifts it by known amounts and ``add_noise`` degrades it, so
that an alignment can be scored against the truth with :mod:`tomoalign.metrics`::

    clean = phantom_series((128, 128), tilts=np.arange(-70, 71, 2))
    moved, true_shifts = misalign(clean, jitter=5, seed=1)
    noisy = add_noise(moved, kind="gaussian", level=0.5)
    found = tomoalign.estimate_shifts(noisy.data, "PC")
    tomoalign.metrics.rms_error(found, true_shifts, clean.tilts)

Conventions are those of :class:`tomoalign.TomoStack`: `(n_tilts, ny, nx)`, tilt axis
parallel to x through the image centre, shifts as ``(dy, dx)`` pixels with
:func:`scipy.ndimage.shift`'s sign.
"""

from __future__ import annotations

import warnings
from importlib import resources
from typing import Any

import numpy as np

from tomoalign.io import load
from tomoalign.shifts import apply_shifts
from tomoalign.signals import TiltSeries
from tomoalign.simulate import (
    add_noise_array,
    phantom_projections,
    random_misalignment,
)

__all__ = ["add_noise", "misalign", "needle", "phantom_series"]


def needle(lazy: bool = False) -> Any:
    """The experimental HAADF-STEM tilt series of a needle specimen (ETSpy's test data).

    77 projections of 256 x 256 px (int16 as stored), tilts -76..+76 degrees in 2 degree
    steps, 3.36 nm pixels (the standard MRC header holds IMOD's 1 Angstrom placeholder; the
    reader takes the size from the file's FEI extended header, as the acquisition log
    ``HAADF.txt`` has it). Real drift and wobble of tens of pixels, no ground truth. Provenance and
    licence: ``datasets/data/PROVENANCE.md`` in the package.

    Parameters
    ----------
    lazy : bool, default False
        Memory-map the file instead of reading it.

    Returns
    -------
    TomoStack
        `(77, 256, 256)`, signal axes in nm.
    """
    folder = resources.files("tomoalign.datasets") / "data"
    with resources.as_file(folder / "HAADF.mrc") as path, warnings.catch_warnings():
        # The file is an older FEI MRC without the MRC2014 "MAP " identifier; that is known.
        warnings.filterwarnings("ignore", message=".*permissive mode", category=UserWarning)
        stack = load(path, tilts=np.asarray(_read_rawtlt(folder)), lazy=lazy)
    stack.metadata.General.title = "needle (HAADF STEM)"
    return stack


def _read_rawtlt(folder: Any) -> list[float]:
    text = (folder / "HAADF.rawtlt").read_text()
    return [float(line) for line in text.split()]


def phantom_series(
    shape: tuple[int, int] = (256, 256),
    tilts: Any = None,
    thickness: float | None = None,
    beads: int = 0,
    seed: int = 0,
) -> Any:
    """An aligned tilt series of a known 3D phantom (the ground truth).

    Ellipsoids of varied size and density (and optionally small dense beads) inside a slab of
    ``thickness`` pixels, projected analytically (exact line integrals) about the tilt axis,
    which runs along x through the image centre.

    Parameters
    ----------
    shape : tuple of int, default (256, 256)
        ``(ny, nx)`` of each projection in pixels.
    tilts : array_like, optional
        Tilt angles in degrees. Default ``np.arange(-70, 71, 2)``.
    thickness : float, optional
        Slab thickness along the beam at zero tilt, pixels. Default: see
        :func:`tomoalign.simulate.phantom_projections`.
    beads : int, default 0
        Number of small dense spherical beads (fiducials).
    seed : int, default 0
        Random seed: the same seed gives the same phantom.

    Returns
    -------
    TomoStack
        float32 `(n_tilts, ny, nx)` with ``tilts`` set and zero shifts.
    """
    tilts = np.arange(-70, 71, 2, dtype=float) if tilts is None else np.asarray(tilts, float)
    data = phantom_projections(shape, tilts, thickness=thickness, beads=beads, seed=seed)
    stack = TiltSeries(data, tilts=tilts)
    stack.metadata.General.title = f"phantom (seed {seed})"
    return stack


def misalign(
    stack: Any, jitter: float = 5.0, drift: float = 0.0, seed: int = 0
) -> tuple[Any, np.ndarray]:
    """Misalign a series by known random shifts: jitter plus a smooth random-walk drift.

    Parameters
    ----------
    stack : TomoStack
        The series to misalign (not modified).
    jitter : float, default 5.0
        Independent uniform jitter in ``[-jitter, +jitter]`` px on each axis.
    drift : float, default 0.0
        Standard deviation of the per-step increments of the random-walk drift, px.
    seed : int, default 0
        Random seed.

    Returns
    -------
    misaligned : TomoStack
        A copy with projection ``i`` shifted by ``true_shifts[i]`` (Fourier shift, periodic
        boundary), float dtype kept (integer input becomes float32).
    true_shifts : numpy.ndarray
        `(n_tilts, 2)` as ``(dy, dx)`` px: the misalignment that was applied (content moved by
        ``+true_shifts``). The shifts that align the result are ``-true_shifts``, up to the
        rigid freedom that :func:`tomoalign.metrics.rms_error` removes.
    """
    true_shifts = random_misalignment(stack.n_tilts, jitter=jitter, drift=drift, seed=seed)
    moved = stack._derive(apply_shifts(stack.data, true_shifts))
    return moved, true_shifts


def add_noise(stack: Any, kind: str = "gaussian", level: float = 0.5, seed: int = 0) -> Any:
    """A copy of ``stack`` with noise.

    Parameters
    ----------
    stack : TomoStack
        The series (not modified).
    kind : {"gaussian", "poisson"}
        ``"gaussian"``: additive, standard deviation ``level`` x the standard deviation of the
        whole series. ``"poisson"``: shot noise at a mean dose of ``level`` counts per pixel,
        scaled back to the series' intensity range.
    level : float, default 0.5
        See ``kind``; must be > 0.
    seed : int, default 0
        Random seed.

    Returns
    -------
    TomoStack
        The noisy copy, same tilts and shifts.
    """
    noisy = add_noise_array(np.asarray(stack.data), kind=kind, level=level, seed=seed)
    return stack._derive(noisy)
