"""Shift estimation and the reference ``align_stack`` API.

One small module per algorithm, each a pure function on arrays:
``_phase_correlation`` (PC), ``_center_of_mass`` (COM), ``_common_line`` (COM-CL) and
``_stackreg`` (StackReg); ``_api`` dispatches between them and wraps signals.
"""

from tomoalign.align._api import AlignmentMethod, align_stack, estimate_shifts, stack_register
from tomoalign.align._stack_ops import align_other, shift_crop, tilt_align

__all__ = [
    "AlignmentMethod",
    "align_other",
    "align_stack",
    "estimate_shifts",
    "shift_crop",
    "stack_register",
    "tilt_align",
]
