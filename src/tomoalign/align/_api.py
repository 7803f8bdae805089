"""Dispatch: ``estimate_shifts`` / ``apply_shifts`` on arrays, ``align_stack`` on signals.

``align_stack`` keeps the parameter names, order and defaults of ETSpy's documented
``etspy.align.align_stack`` (ETSpy 1.0-1.1.1); ``shift_type`` (ETSpy 1.1.1) is keyword-only
here so that the documented positional order holds. Options beyond the reference go in
``**options`` and are checked against the chosen method's function: an unknown name raises
:class:`TypeError` listing the valid ones (ETSpy silently ignores a misspelt option).
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from enum import StrEnum
from typing import Any

import numpy as np

from tomoalign._backend import is_cupy_array, is_dask_array, to_device, to_numpy
from tomoalign._progress import progress_bar
from tomoalign._shift import apply_shifts, check_shift_type, crop_area
from tomoalign.align._plausibility import warn_if_implausible

__all__ = ["AlignmentMethod", "align_stack", "estimate_shifts", "stack_register"]


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


def _estimator(method: AlignmentMethod) -> Callable[..., np.ndarray]:
    if method is AlignmentMethod.PC:
        from tomoalign.align._phase_correlation import phase_correlation_shifts

        return phase_correlation_shifts
    if method is AlignmentMethod.COM:
        from tomoalign.align._center_of_mass import com_shifts

        return com_shifts
    if method is AlignmentMethod.COM_CL:
        from tomoalign.align._common_line import com_cl_shifts

        return com_cl_shifts
    from tomoalign.align._stackreg import stackreg_shifts

    return stackreg_shifts


def _with_profiles(method: AlignmentMethod) -> Callable[..., tuple[np.ndarray, Any, Any]]:
    """The estimator's private form that also returns the row and column profiles it read."""
    if method is AlignmentMethod.PC:
        from tomoalign.align._phase_correlation import _pc

        return _pc
    if method is AlignmentMethod.COM:
        from tomoalign.align._center_of_mass import _com

        return _com
    if method is AlignmentMethod.COM_CL:
        from tomoalign.align._common_line import _com_cl

        return _com_cl
    from tomoalign.align._stackreg import _stackreg

    return _stackreg


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
    >>> from tomoalign.datasets._simulate import phantom_projections
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
    warnings.warn(
        f"{name!r} is not used by the {member.value} method and was ignored",
        UserWarning,
        stacklevel=4,
    )


# The reference parameters, their defaults, and which methods use them.
_REFERENCE_OPTIONS: dict[str, tuple[Any, tuple[AlignmentMethod, ...]]] = {
    "xrange": (None, (AlignmentMethod.COM,)),
    "p": (20, (AlignmentMethod.COM,)),
    "nslices": (20, (AlignmentMethod.COM,)),
    "upsample_factor": (3, (AlignmentMethod.PC,)),
    "com_ref_index": (None, (AlignmentMethod.COM_CL,)),
    "cl_ref_index": (None, (AlignmentMethod.COM_CL,)),
    "cl_resolution": (0.05, (AlignmentMethod.COM_CL,)),
    "cl_div_factor": (8, (AlignmentMethod.COM_CL,)),
}


def align_stack(
    stack: Any,
    method: AlignmentMethod | str,
    start: int | None = None,
    show_progressbar: bool = False,
    xrange: tuple[int, int] | None = None,
    p: int = 20,
    nslices: int = 20,
    cuda: bool = False,
    upsample_factor: int = 3,
    com_ref_index: int | None = None,
    cl_ref_index: int | None = None,
    cl_resolution: float = 0.05,
    cl_div_factor: int = 8,
    *,
    shift_type: str = "fourier",
    crop: bool = False,
    **options: Any,
) -> Any:
    """Align a tilt series and return an aligned copy (ETSpy's ``align_stack``).

    Parameters
    ----------
    stack : TomoStack or LazyTomoStack
        The series `(n_tilts, ny, nx)`; not modified.
    method : AlignmentMethod or str
        ``"PC"``, ``"COM"``, ``"COM-CL"`` or ``"StackReg"`` (see :class:`AlignmentMethod`).
    start : int, optional
        Reference projection for the neighbour chain of PC and StackReg; default the central
        projection.
    show_progressbar : bool, default False
        Show a tqdm progress bar; it advances as blocks of projections are read (twice for
        COM) or neighbour pairs registered (StackReg).
    xrange : tuple of int, optional
        COM: the x range (px) used for conservation of mass; default the central 3/5.
    p : int, default 20
        COM: search range (px) of the conservation-of-mass shift along the tilt axis, less
        than the image width.
    nslices : int, default 20
        COM: number of x-slices used for the center-of-mass fit, at most 100.
    cuda : bool, default False
        Run the array code on the GPU with CuPy; without CuPy or a GPU, warn once and compute
        the same result on the CPU.
    upsample_factor : int, default 3
        PC: subpixel precision is ``1 / upsample_factor`` px; 1 to 100.
    com_ref_index : int, optional
        COM-CL: the image row (px) onto which each projection's center of mass is moved;
        default the central row ``ny // 2``.
    cl_ref_index : int, optional
        COM-CL: reference projection of the common-line alignment; default ``n_tilts // 2``.
    cl_resolution : float, default 0.05
        COM-CL: subpixel precision (px) of the common-line search; must be < 0.5.
    cl_div_factor : int, default 8
        COM-CL: number of parts each search interval is divided into per iteration; 2 to 100.
    shift_type : {"fourier", "interp"}, default "fourier"
        How shifts are applied: Fourier shift (periodic boundary) or cubic-spline
        interpolation (zero outside).
    crop : bool, default False
        Crop the result to the area that every shifted projection covers.
    **options
        Further options of the chosen method (see :func:`estimate_shifts`).

    Returns
    -------
    TomoStack or LazyTomoStack
        The aligned copy: float dtype kept (integer input becomes float32), and
        ``metadata.Tomography.shifts`` = the input's shifts + the shifts found here.

    References
    ----------
    Guizar-Sicairos, Thurman & Fienup, Opt. Lett. 33, 156 (2008), doi:10.1364/OL.33.000156.
    Sanders et al., Adv. Struct. Chem. Imaging 1, 4 (2015), doi:10.1186/s40679-015-0005-7.
    Scott et al., Nature 483, 444 (2012), doi:10.1038/nature10934.
    Thevenaz, Ruttimann & Unser, IEEE Trans. Image Process. 7, 27 (1998),
    doi:10.1109/83.650848.
    """
    from tomoalign.signal import TiltSeries

    if not isinstance(stack, TiltSeries):
        raise TypeError(
            f"align_stack needs a tomoalign TomoStack, got {type(stack).__name__}; wrap it "
            "with tomoalign.TomoStack(data_or_signal, tilts=...)"
        )
    member = AlignmentMethod.parse(method)
    given = {
        "xrange": xrange,
        "p": p,
        "nslices": nslices,
        "upsample_factor": upsample_factor,
        "com_ref_index": com_ref_index,
        "cl_ref_index": cl_ref_index,
        "cl_resolution": cl_resolution,
        "cl_div_factor": cl_div_factor,
    }
    for name, value in given.items():
        default, users = _REFERENCE_OPTIONS[name]
        if member in users:
            options[name] = value
        elif value is not default and value != default:
            _ignored(member, name)
    if stack.axes_manager.navigation_dimension != 1:
        raise ValueError(
            f"align_stack needs a tilt series (n_tilts, ny, nx); got data of shape "
            f"{stack.data.shape}"
        )
    tilts = stack.tilts if stack.has_tilts else None
    data = to_device(stack.data, cuda)
    kind = check_shift_type(shift_type)  # before any work: a typo fails at once
    shared = member is AlignmentMethod.PC and kind == "fourier" and not is_dask_array(data)
    steps = _progress_steps(member, stack.n_tilts)
    with progress_bar(show_progressbar, steps, f"{member.value} alignment") as update:
        if shared:
            # One Fourier transform per projection serves the estimate and the shift.
            from tomoalign.align._phase_correlation import _pc_align, phase_correlation_align

            kwargs = _method_options(
                member, phase_correlation_align, options, start=start, progress=update
            )
            shifts, aligned, rows, cols = _pc_align(data, **_all_options(member, kwargs))
            warn_if_implausible(member.value, shifts, rows, cols)
        else:
            shifts = estimate_shifts(
                data, member, tilts=tilts, start=start, progress=update, **options
            )
            aligned = apply_shifts(data, shifts, shift_type=kind)
    return _aligned_copy(stack, aligned, shifts, crop=crop)


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


def _aligned_copy(stack: Any, aligned: Any, shifts: np.ndarray, *, crop: bool) -> Any:
    """The aligned copy of ``stack`` holding ``aligned``, with accumulated shifts, cropped."""
    if is_cupy_array(aligned):  # computed on the GPU; the signal holds NumPy data
        aligned = to_numpy(aligned)
    out = stack._deepcopy_with_new_data(aligned)
    total = stack.shifts + shifts
    out.shifts = total
    if crop:
        area = total if not stack.metadata.Tomography.cropped else shifts
        ys, xs = crop_area(area, stack.data.shape)
        out = out.isig[xs, ys]
        out.metadata.Tomography.cropped = True
    return out


def stack_register(
    stack: Any,
    method: AlignmentMethod | str = "PC",
    start: int | None = None,
    show_progressbar: bool = False,
    cuda: bool = False,
    crop: bool = False,
    shift_type: str = "fourier",
    **options: Any,
) -> Any:
    """ETSpy's ``TomoStack.stack_register``: :func:`align_stack` with keyword options."""
    return align_stack(
        stack,
        method,
        start=start,
        show_progressbar=show_progressbar,
        cuda=cuda,
        shift_type=shift_type,
        crop=crop,
        **options,
    )
