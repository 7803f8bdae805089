"""``align_stack`` and ``stack_register``: estimate the shifts of a series and apply them.

``align_stack`` keeps the parameter names, order and defaults of ETSpy's documented
``etspy.align.align_stack`` (ETSpy 1.0-1.1.1); ``shift_type`` (ETSpy 1.1.1) is keyword-only
here so that the documented positional order holds. Options beyond the reference go in
``**options``; with the reference options the chosen method uses, they are built into the
method's options class (e.g. :class:`tomoalign.estimate.PhaseCorrelationOptions`) once,
before any work: an unknown name raises :class:`TypeError` listing the valid ones (ETSpy
silently ignores a misspelt option).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tomoalign._backend import is_cupy_array, is_dask_array, to_device, to_numpy
from tomoalign._progress import progress_bar
from tomoalign.estimate._dispatch import (
    AlignmentMethod,
    _ignored,
    _options_for,
    _progress_steps,
    _run,
)
from tomoalign.estimate._phase_correlation import _pc_align
from tomoalign.estimate._plausibility import warn_if_implausible
from tomoalign.shifts import apply_shifts, check_shift_type
from tomoalign.signals._carried import check_series

__all__ = ["align_stack", "stack_register"]


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
    check_series(stack, "align_stack")
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
    method_options = _options_for(member, options, start=start)
    shared = member is AlignmentMethod.PC and kind == "fourier" and not is_dask_array(data)
    steps = _progress_steps(member, stack.n_tilts)
    with progress_bar(show_progressbar, steps, f"{member.value} alignment") as update:
        if shared:
            # One Fourier transform per projection serves the estimate and the shift.
            shifts, aligned, rows, cols = _pc_align(data, method_options, update)
            warn_if_implausible(member.value, shifts, rows, cols)
        else:
            shifts = _run(member, data, method_options, tilts, update)
            aligned = apply_shifts(data, shifts, shift_type=kind)
    return _aligned_copy(stack, aligned, shifts, crop=crop)


def _aligned_copy(stack: Any, aligned: Any, shifts: np.ndarray, *, crop: bool) -> Any:
    """The aligned copy of ``stack`` holding ``aligned``, with accumulated shifts, cropped."""
    if is_cupy_array(aligned):  # computed on the GPU; the signal holds NumPy data
        aligned = to_numpy(aligned)
    return stack._derive(aligned, add_shifts=shifts, crop=crop)


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
