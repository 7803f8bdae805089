"""``estimate_shifts``: one entry point to the shift estimators, on arrays.

The method is an :class:`AlignmentMethod` (ETSpy's strings); its options are built into the
method's options class (:mod:`._options`) once, so an unknown name raises
:class:`TypeError` listing the valid ones (ETSpy silently ignores a misspelt option) and a
bad value raises before any work.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any

import numpy as np

from tomoalign._backend import to_numpy
from tomoalign._warnings import warn
from tomoalign.estimate._center_of_mass import _com
from tomoalign.estimate._common_line import _com_cl
from tomoalign.estimate._options import (
    CenterOfMassOptions,
    CommonLineOptions,
    PhaseCorrelationOptions,
    StackRegOptions,
    _Options,
)
from tomoalign.estimate._phase_correlation import _pc
from tomoalign.estimate._plausibility import warn_if_implausible
from tomoalign.estimate._stackreg import _stackreg

__all__ = ["AlignmentMethod", "estimate_shifts"]


class AlignmentMethod(StrEnum):
    """The alignment methods of the reference API (values are ETSpy's strings).

    PC
        Phase correlation between neighbours with upsampled-DFT subpixel refinement
        (Guizar-Sicairos et al. 2008), band-pass filtered, edges removed by the
        periodic-plus-smooth decomposition, guarded against implausible jumps.
    COM
        Center-of-mass tracking (Sanders 2015): conservation of mass along the tilt axis, then
        the sinusoidal center-of-mass motion across it. Needs tilts.
    COM_CL
        Center of mass across the tilt axis and common-line alignment along it
        (Scott et al. 2012).
    STACK_REG
        Rigid translation by intensity (Thevenaz et al. 1998, via pystackreg) between
        neighbours.
    """

    PC = "PC"
    COM = "COM"
    COM_CL = "COM-CL"
    STACK_REG = "StackReg"

    @classmethod
    def parse(cls, method: Any) -> AlignmentMethod:
        """Return the member for ``method`` (a member or its string, case-insensitive)."""
        if isinstance(method, cls):
            return method
        if isinstance(method, str):
            for member in cls:
                if method.strip().lower() in (member.value.lower(), member.name.lower()):
                    return member
        valid = ", ".join(repr(m.value) for m in cls)
        raise ValueError(f"unknown alignment method {method!r}; valid methods are {valid}")


#: Each method's options class, and its estimator in the private form that takes the options
#: and the ``progress`` callback and also returns the row and column profiles it read (for
#: the plausibility check). COM's takes the tilts after the data.
_ESTIMATORS: dict[AlignmentMethod, tuple[type[_Options], Callable[..., Any]]] = {
    AlignmentMethod.PC: (PhaseCorrelationOptions, _pc),
    AlignmentMethod.COM: (CenterOfMassOptions, _com),
    AlignmentMethod.COM_CL: (CommonLineOptions, _com_cl),
    AlignmentMethod.STACK_REG: (StackRegOptions, _stackreg),
}


def estimate_shifts(
    data: Any,
    method: AlignmentMethod | str = "PC",
    *,
    tilts: Any = None,
    start: int | None = None,
    progress: Callable[[int], None] | None = None,
    **options: Any,
) -> np.ndarray:
    """Estimate the shifts that align a tilt series.

    Parameters
    ----------
    data : array
        `(n_tilts, ny, nx)` NumPy, CuPy or dask array, any real dtype. Not modified. A dask
        array is read a block of projections at a time (twice by COM), never whole.
    method : AlignmentMethod or str, default "PC"
        ``"PC"``, ``"COM"``, ``"COM-CL"`` or ``"StackReg"``.
    tilts : array_like, optional
        `(n_tilts,)` degrees; needed by COM.
    start : int, optional
        Reference projection of the neighbour chain (PC, StackReg); default the central one.
    progress : callable, optional
        Called with the number of projections newly read (PC, COM-CL; COM reads the series
        twice, so its calls add up to ``2 * n_tilts``) or neighbour pairs newly registered
        (StackReg), tqdm ``update`` style, a block of projections at a time.
    **options
        The chosen method's own keyword options, the fields of its options class other than
        ``start``: :class:`PhaseCorrelationOptions` (PC: ``upsample_factor``, ``bandpass``,
        ...), :class:`CenterOfMassOptions` (COM: ``xrange``, ``p``, ``nslices``),
        :class:`CommonLineOptions` (COM-CL: ``com_ref_index``, ``cl_ref_index``,
        ``cl_resolution``, ``cl_div_factor``), :class:`StackRegOptions` (StackReg:
        ``drift_correction``).

    Returns
    -------
    numpy.ndarray
        `(n_tilts, 2)` float64 shifts in pixels as ``(dy, dx)``: ``[:, 0]`` along y
        (perpendicular to the tilt axis), ``[:, 1]`` along x (parallel to it); applying
        ``shifts[i]`` with :func:`scipy.ndimage.shift`'s sign aligns projection ``i``.

    Raises
    ------
    ValueError
        For an unknown method, or bad data or option values.
    TypeError
        For an option the method does not take (naming it and listing the valid ones), a
        non-integer index or a ``progress`` that is not callable.

    Examples
    --------
    >>> import numpy as np
    >>> from tomoalign import apply_shifts, estimate_shifts
    >>> from tomoalign.simulate import phantom_projections
    >>> data = phantom_projections((64, 64), np.arange(-60, 61, 10))
    >>> moved = apply_shifts(data, np.tile([2.0, -1.0], (13, 1)))
    >>> shifts = estimate_shifts(moved, "PC")
    >>> shifts.shape
    (13, 2)
    """
    member = AlignmentMethod.parse(method)
    return _run(member, data, _options_for(member, options, start=start), tilts, progress)


def _options_for(member: AlignmentMethod, options: dict[str, Any], *, start: int | None) -> Any:
    """The method's options class built from ``options`` and ``start``.

    ``start`` goes to the methods that have a reference projection (PC, StackReg); for the
    others a ``start`` other than None is ignored with a warning.

    Raises
    ------
    TypeError
        For an option the method does not take, naming it and listing the valid ones.
    """
    cls = _ESTIMATORS[member][0]
    if "start" in cls.names():
        return cls.from_kwargs(start=start, **options)
    built = cls.from_kwargs(**options)
    if start is not None:
        _ignored(member, "start")
    return built


def _run(
    member: AlignmentMethod,
    data: Any,
    options: Any,
    tilts: Any,
    progress: Callable[[int], None] | None,
) -> np.ndarray:
    """Run the method with its ``options`` (an instance of its class); check the result."""
    run = _ESTIMATORS[member][1]
    args = (data, tilts) if member is AlignmentMethod.COM else (data,)
    shifts, rows, cols = run(*args, options, progress)
    shifts = np.asarray(shifts, dtype=float)
    warn_if_implausible(member.value, shifts, to_numpy(rows), to_numpy(cols))
    return shifts


def _ignored(member: AlignmentMethod, name: str) -> None:
    warn(f"{name!r} is not used by the {member.value} method and was ignored", UserWarning)


def _progress_steps(member: AlignmentMethod, n_tilts: int) -> int:
    """What the method's ``progress`` calls add up to: projections read, or pairs registered.

    PC and COM-CL read the series once, COM twice (the profiles, then the tracked slices), a
    block of projections at a time; StackReg reports each neighbour pair registered.
    """
    if member is AlignmentMethod.COM:
        return 2 * n_tilts
    if member is AlignmentMethod.STACK_REG:
        return n_tilts - 1
    return n_tilts
