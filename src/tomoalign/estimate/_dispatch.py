"""``estimate_shifts``: one entry point to the shift estimators, on arrays.

The method is an :class:`AlignmentMethod` (ETSpy's strings); its options are checked against
the estimator's keyword-only parameters, so an unknown name raises :class:`TypeError` listing
the valid ones (ETSpy silently ignores a misspelt option).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from enum import StrEnum
from typing import Any

import numpy as np

from tomoalign._backend import to_numpy
from tomoalign._warnings import warn
from tomoalign.estimate._center_of_mass import _com, com_shifts
from tomoalign.estimate._common_line import _com_cl, com_cl_shifts
from tomoalign.estimate._phase_correlation import _pc, phase_correlation_shifts
from tomoalign.estimate._plausibility import warn_if_implausible
from tomoalign.estimate._stackreg import _stackreg, stackreg_shifts

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


#: Each method's public estimator, and the private form that also returns the row and
#: column profiles it read (for the plausibility check).
_ESTIMATORS: dict[AlignmentMethod, tuple[Callable[..., Any], Callable[..., Any]]] = {
    AlignmentMethod.PC: (phase_correlation_shifts, _pc),
    AlignmentMethod.COM: (com_shifts, _com),
    AlignmentMethod.COM_CL: (com_cl_shifts, _com_cl),
    AlignmentMethod.STACK_REG: (stackreg_shifts, _stackreg),
}


def _estimator(method: AlignmentMethod) -> Callable[..., np.ndarray]:
    return _ESTIMATORS[method][0]


def _with_profiles(method: AlignmentMethod) -> Callable[..., tuple[np.ndarray, Any, Any]]:
    """The estimator's private form that also returns the row and column profiles it read."""
    return _ESTIMATORS[method][1]


def _keyword_options(func: Callable[..., Any]) -> list[str]:
    return [
        name
        for name, par in inspect.signature(func).parameters.items()
        if par.kind is inspect.Parameter.KEYWORD_ONLY
    ]


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
        The chosen method's own keyword options (e.g. ``upsample_factor``, ``bandpass`` for
        PC; ``xrange``, ``p``, ``nslices`` for COM; ``com_ref_index``, ``cl_ref_index``,
        ``cl_resolution``, ``cl_div_factor`` for COM-CL).

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
        For an option the method does not take.

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
    options = _method_options(member, _estimator(member), options, start=start, progress=progress)
    full = _with_profiles(member)
    args = (data, tilts) if member is AlignmentMethod.COM else (data,)
    shifts, rows, cols = full(*args, **_all_options(member, options))
    shifts = np.asarray(shifts, dtype=float)
    warn_if_implausible(member.value, shifts, to_numpy(rows), to_numpy(cols))
    return shifts


def _all_options(member: AlignmentMethod, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` with the public function's defaults for those not given."""
    params = inspect.signature(_estimator(member)).parameters
    return {
        name: options.get(name, par.default)
        for name, par in params.items()
        if par.kind is inspect.Parameter.KEYWORD_ONLY
    }


def _method_options(
    member: AlignmentMethod,
    func: Callable[..., Any],
    options: dict[str, Any],
    *,
    start: int | None,
    progress: Callable[[int], None] | None,
) -> dict[str, Any]:
    """``options`` checked against ``func``'s keywords, with ``start`` and ``progress``."""
    accepted = _keyword_options(func)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise TypeError(
            f"{member.value} alignment got unknown option(s) {', '.join(map(repr, unknown))}; "
            f"valid options are {', '.join(accepted)}"
        )
    options = dict(options)
    if "start" in accepted:
        options["start"] = start
    elif start is not None:
        _ignored(member, "start")
    if "progress" in accepted:
        options["progress"] = progress
    return options


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
