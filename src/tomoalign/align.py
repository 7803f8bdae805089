"""ETSpy's ``etspy.align`` namespace: alignment of tilt series.

``from tomoalign.align import align_stack`` works as ``from etspy.align import align_stack``
does. The functions live in :mod:`tomoalign.signals` (on series) and
:mod:`tomoalign.estimate` (on arrays); this module only gathers them under ETSpy's name.
"""

from tomoalign.estimate import AlignmentMethod, estimate_shifts
from tomoalign.signals import align_other, align_stack, shift_crop, stack_register, tilt_align

__all__ = [
    "AlignmentMethod",
    "align_other",
    "align_stack",
    "estimate_shifts",
    "shift_crop",
    "stack_register",
    "tilt_align",
]
