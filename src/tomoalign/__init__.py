"""tomoalign: alignment of electron-tomography tilt series.

Conventions (everywhere in the package)
---------------------------------------
* A tilt series is an array or signal of shape `(n_tilts, ny, nx)`: the navigation axis
  enumerates projections, the signal axes are the image (y = rows = array axis 1,
  x = columns = array axis 2).
* The tilt axis is parallel to x (array axis 2) and runs through the image centre
  ``(ny - 1) / 2`` in 0-based pixel-centre coordinates (IMOD's convention).
* Shifts are `(n_tilts, 2)` float arrays in pixels: ``shifts[:, 0]`` along y (perpendicular
  to the tilt axis), ``shifts[:, 1]`` along x (parallel to it). ``shifts[i]`` is the
  translation that aligns projection ``i``, with :func:`scipy.ndimage.shift`'s sign: the
  content moves by ``+shift``. They are kept in ``metadata.Tomography.shifts`` and
  ``stack.shifts``.
* Tilt angles are in degrees (``metadata.Tomography.tilts``, ``stack.tilts``). Pixel sizes
  are in nm on the signal axes when known.

Public API
----------
TomoStack, LazyTomoStack
    The tilt-series signals (HyperSpy class names ``TiltSeries`` / ``LazyTiltSeries``).
load
    Read MRC, DigitalMicrograph, TIFF and HyperSpy files, with tilt discovery.
align_stack, AlignmentMethod
    ETSpy's reference alignment API (PC, COM, COM-CL, StackReg) on a TomoStack.
estimate_shifts, apply_shifts
    The building blocks on NumPy, CuPy and dask arrays, no HyperSpy needed.
tilt_align, align_other, shift_crop
    Tilt-axis correction, transfer of a whole alignment to another signal, and cropping.
RecStack (Tomogram), reconstruct, forward_project, reprojection_error
    Reconstruction with astra-toolbox to check an alignment (``stack.reconstruct``).
datasets
    The built-in needle series and simulated ground truth.
metrics
    Ground-truth scoring of an alignment.
"""

from tomoalign import datasets, metrics, reconstruction
from tomoalign._shift import apply_shifts
from tomoalign.align import (
    AlignmentMethod,
    align_other,
    align_stack,
    estimate_shifts,
    shift_crop,
    tilt_align,
)
from tomoalign.io import load
from tomoalign.reconstruction import forward_project, reconstruct, reprojection_error
from tomoalign.recstack import LazyRecStack, LazyTomogram, RecStack, Tomogram
from tomoalign.signal import LazyTiltSeries, TiltSeries

#: ETSpy's name for the tilt-series signal; the same class as :class:`TiltSeries`.
TomoStack = TiltSeries
#: ETSpy-style name for the lazy tilt-series signal; the same class as :class:`LazyTiltSeries`.
LazyTomoStack = LazyTiltSeries

__version__ = "0.1.0"

__all__ = [
    "AlignmentMethod",
    "LazyRecStack",
    "LazyTiltSeries",
    "LazyTomoStack",
    "LazyTomogram",
    "RecStack",
    "TiltSeries",
    "TomoStack",
    "Tomogram",
    "__version__",
    "align_other",
    "align_stack",
    "apply_shifts",
    "datasets",
    "estimate_shifts",
    "forward_project",
    "load",
    "metrics",
    "reconstruct",
    "reconstruction",
    "reprojection_error",
    "shift_crop",
    "tilt_align",
]
