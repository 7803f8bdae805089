"""Shift and tilt-axis estimators: pure functions on arrays (NumPy, CuPy, dask).

Nothing here imports HyperSpy. Data come in as `(n_tilts, ny, nx)` arrays, positional;
options are keyword-only; results are `(n_tilts, 2)` float64 shifts ``(dy, dx)`` in pixels
(:func:`scipy.ndimage.shift` sign) or tilt-axis angles (degrees) and offsets (pixels).

One small module per algorithm: ``_phase_correlation`` (PC), ``_center_of_mass`` (COM),
``_common_line`` (COM-CL), ``_stackreg`` (StackReg), ``_tilt_axis`` (the tilt axis); with
``_profiles`` (row and column profiles shared by them), ``_background`` (background level),
``_plausibility`` (the check after every method), ``_options`` (each method's options, one
frozen dataclass per method, checked once) and ``_dispatch`` (:func:`estimate_shifts`).
"""

from tomoalign._background import background_level, subtract_background
from tomoalign.estimate._center_of_mass import com_shifts
from tomoalign.estimate._common_line import com_cl_shifts
from tomoalign.estimate._dispatch import AlignmentMethod, estimate_shifts
from tomoalign.estimate._options import (
    CenterOfMassOptions,
    CommonLineOptions,
    PhaseCorrelationOptions,
    StackRegOptions,
)
from tomoalign.estimate._phase_correlation import phase_correlation_align, phase_correlation_shifts
from tomoalign.estimate._plausibility import profile_offsets, warn_if_implausible
from tomoalign.estimate._stackreg import stackreg_shifts
from tomoalign.estimate._tilt_axis import (
    maximage_offset,
    tilt_axis_auto,
    tilt_axis_com,
    tilt_axis_maximage,
)

__all__ = [
    "AlignmentMethod",
    "CenterOfMassOptions",
    "CommonLineOptions",
    "PhaseCorrelationOptions",
    "StackRegOptions",
    "background_level",
    "com_cl_shifts",
    "com_shifts",
    "estimate_shifts",
    "maximage_offset",
    "phase_correlation_align",
    "phase_correlation_shifts",
    "profile_offsets",
    "stackreg_shifts",
    "subtract_background",
    "tilt_axis_auto",
    "tilt_axis_com",
    "tilt_axis_maximage",
    "warn_if_implausible",
]
