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

Layers (imports run one way, down this list; see the README's "Architecture")
------------------------------------------------------------------------------
core
    ``_backend`` (NumPy/CuPy/dask), ``_validation``, ``_numerics``, ``_warnings``,
    ``_progress``, ``_paths``.
arrays (never import HyperSpy)
    :mod:`~tomoalign.shifts`, :mod:`~tomoalign.geometry`, :mod:`~tomoalign.estimate`,
    :mod:`~tomoalign.reconstruction`, :mod:`~tomoalign.metrics`, :mod:`~tomoalign.simulate`,
    :mod:`~tomoalign.formats`.
signals
    :mod:`~tomoalign.signals` (``TomoStack``, ``RecStack`` and their workflow) and
    :mod:`~tomoalign.align` (ETSpy's namespace).
files
    :mod:`~tomoalign.io` (``load``) and :mod:`~tomoalign.datasets`.
shell
    :mod:`~tomoalign.cli`.

The names below are imported on first use, so ``import tomoalign`` is quick and an
array-only user (``tomoalign.estimate_shifts`` on a NumPy array) never imports HyperSpy.

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
datasets, simulate
    The built-in needle series; simulated ground truth (signals and arrays).
metrics
    Ground-truth scoring of an alignment.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: Public name -> (module, attribute); attribute None for the module itself.
_EXPORTS: dict[str, tuple[str, str | None]] = {
    # arrays
    "apply_shifts": ("tomoalign.shifts", "apply_shifts"),
    "AlignmentMethod": ("tomoalign.estimate", "AlignmentMethod"),
    "estimate_shifts": ("tomoalign.estimate", "estimate_shifts"),
    "forward_project": ("tomoalign.reconstruction", "forward_project"),
    "reconstruct": ("tomoalign.reconstruction", "reconstruct"),
    "reprojection_error": ("tomoalign.reconstruction", "reprojection_error"),
    # signals
    "TiltSeries": ("tomoalign.signals", "TiltSeries"),
    "LazyTiltSeries": ("tomoalign.signals", "LazyTiltSeries"),
    "TomoStack": ("tomoalign.signals", "TiltSeries"),
    "LazyTomoStack": ("tomoalign.signals", "LazyTiltSeries"),
    "Tomogram": ("tomoalign.signals", "Tomogram"),
    "LazyTomogram": ("tomoalign.signals", "LazyTomogram"),
    "RecStack": ("tomoalign.signals", "RecStack"),
    "LazyRecStack": ("tomoalign.signals", "LazyRecStack"),
    "align_stack": ("tomoalign.signals", "align_stack"),
    "align_other": ("tomoalign.signals", "align_other"),
    "shift_crop": ("tomoalign.signals", "shift_crop"),
    "tilt_align": ("tomoalign.signals", "tilt_align"),
    # files
    "load": ("tomoalign.io", "load"),
    # subpackages and modules
    "align": ("tomoalign.align", None),
    "datasets": ("tomoalign.datasets", None),
    "estimate": ("tomoalign.estimate", None),
    "formats": ("tomoalign.formats", None),
    "geometry": ("tomoalign.geometry", None),
    "io": ("tomoalign.io", None),
    "metrics": ("tomoalign.metrics", None),
    "reconstruction": ("tomoalign.reconstruction", None),
    "shifts": ("tomoalign.shifts", None),
    "signals": ("tomoalign.signals", None),
    "simulate": ("tomoalign.simulate", None),
}

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str) -> Any:
    """Import a public name on first use (PEP 562)."""
    try:
        module_name, attribute = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'tomoalign' has no attribute {name!r}") from None
    module = importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
