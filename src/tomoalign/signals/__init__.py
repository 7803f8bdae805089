"""The signal layer: HyperSpy signals for tilt series and volumes, and their workflow.

Modules, imported one way (each only from those above it in this list):

``_carried``
    What a series carries besides its data (``PER_PROJECTION``, ``SIGNAL_TYPE``) and the
    check that an object is a series.
``tomogram``
    :class:`Tomogram` (``RecStack``), a reconstructed volume.
``_save``
    Atomic saving of series and volumes through :mod:`tomoalign.formats`.
``_align``, ``_tilt``, ``_reconstruct``
    The workflow functions (``align_stack``, ``tilt_align``, ``align_other``, ``shift_crop``,
    ``reconstruct``): validate, call the array functions, and build the result with the
    series' own constructor ``stack._derive``. They take a series and never import its class.
``tilt_series``
    :class:`TiltSeries` (``TomoStack``): a thin shell whose methods call the workflow
    functions.
"""

from tomoalign.signals._align import align_stack, stack_register
from tomoalign.signals._carried import PER_PROJECTION, SIGNAL_TYPE
from tomoalign.signals._reconstruct import reconstruct
from tomoalign.signals._save import save_series, save_volume
from tomoalign.signals._tilt import TILT_METHODS, align_other, shift_crop, tilt_align
from tomoalign.signals.tilt_series import LazyTiltSeries, TiltSeries
from tomoalign.signals.tomogram import LazyRecStack, LazyTomogram, RecStack, Tomogram

__all__ = [
    "PER_PROJECTION",
    "SIGNAL_TYPE",
    "TILT_METHODS",
    "LazyRecStack",
    "LazyTiltSeries",
    "LazyTomogram",
    "RecStack",
    "TiltSeries",
    "Tomogram",
    "align_other",
    "align_stack",
    "reconstruct",
    "save_series",
    "save_volume",
    "shift_crop",
    "stack_register",
    "tilt_align",
]
