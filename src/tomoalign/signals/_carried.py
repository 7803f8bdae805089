"""What a tilt-series signal carries besides its data, declared once.

The workflow modules of this package (``_align``, ``_tilt``, ``_reconstruct``, ``_save``)
take a series and never import its class: they check it with :func:`check_series` and build
new series through the series' own constructors (``stack._derive``, ``stack._as_series``).
That keeps the imports of the signal layer one-way: this module and the workflow modules
below, the classes in :mod:`tomoalign.signals.tilt_series` above them.
"""

from __future__ import annotations

from typing import Any

from hyperspy.signal import BaseSignal

__all__ = ["PER_PROJECTION", "SCALAR_DEFAULTS", "SIGNAL_TYPE", "check_series", "is_series"]

#: The ``signal_type`` under which the tilt-series classes are registered with HyperSpy.
SIGNAL_TYPE = "tomoalign_tilt_series"

#: Entries of ``metadata.Tomography`` that hold one row per projection. They are sliced with
#: the navigation axis, and nowhere else.
PER_PROJECTION = ("tilts", "shifts")

#: The scalar entries of ``metadata.Tomography`` and their values for a new series:
#: tilt-axis angle (degrees), its offsets (px) and whether the series was cropped.
SCALAR_DEFAULTS: dict[str, Any] = {
    "tiltaxis": 0.0,
    "xshift": 0.0,
    "yshift": 0.0,
    "cropped": False,
}


def is_series(obj: Any) -> bool:
    """True for a tomoalign tilt series (eager or lazy)."""
    return isinstance(obj, BaseSignal) and getattr(obj, "_signal_type", None) == SIGNAL_TYPE


def check_series(obj: Any, function: str) -> None:
    """Raise :class:`TypeError` unless ``obj`` is a tomoalign tilt series."""
    if not is_series(obj):
        raise TypeError(
            f"{function} needs a tomoalign TomoStack, got {type(obj).__name__}; wrap it "
            "with tomoalign.TomoStack(data_or_signal, tilts=...)"
        )
