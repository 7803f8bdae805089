"""What a format reader hands to :func:`tomoalign.load`: an array and what the file said."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["SeriesRecord"]


@dataclass
class SeriesRecord:
    """A tilt series as read from a file, before it becomes a signal.

    Attributes
    ----------
    data : array
        `(n_tilts, ny, nx)` NumPy array, memory map or dask array, dtype as stored.
    tilts : numpy.ndarray or None
        Tilt angles in degrees when the file holds them.
    tilts_source : str
        Where the tilts came from (for messages).
    pixel_size : float or None
        Pixel size in ``pixel_unit``.
    pixel_unit : str
        Unit of ``pixel_size`` (``"nm"`` when converted).
    title : str
        A title for the signal.
    tilt_axis_angle : float or None
        Acquisition tilt-axis angle in degrees (IMOD convention), when the file says it.
    original_metadata : dict
        The file's own metadata.
    metadata : dict
        Extra HyperSpy metadata (e.g. from a ``.hspy`` file).
    """

    data: Any
    tilts: np.ndarray | None = None
    tilts_source: str = ""
    pixel_size: float | None = None
    pixel_unit: str = "nm"
    title: str = ""
    tilt_axis_angle: float | None = None
    original_metadata: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
