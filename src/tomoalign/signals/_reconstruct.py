"""``reconstruct``: a tilt series to a :class:`~tomoalign.signals.tomogram.Tomogram`."""

from __future__ import annotations

from typing import Any

from tomoalign._backend import to_numpy
from tomoalign._progress import progress_bar
from tomoalign._validation import require_tilts
from tomoalign.reconstruction import reconstruct as reconstruct_array
from tomoalign.signals._carried import check_series
from tomoalign.signals.tomogram import Tomogram

__all__ = ["reconstruct"]


def reconstruct(
    stack: Any,
    method: str = "FBP",
    iterations: int = 50,
    constrain: bool = False,
    thickness: int | None = None,
    cuda: bool = False,
    show_progressbar: bool = False,
) -> Tomogram:
    """Reconstruct a series with astra-toolbox (:func:`tomoalign.reconstruction.reconstruct`).

    Parameters
    ----------
    stack : TomoStack
        The aligned series, with tilts. Not modified.
    method : {"FBP", "SIRT", "SART"}
        Filtered back-projection, or the iterative SIRT / SART.
    iterations : int, default 50
        SIRT / SART iterations (ignored by FBP).
    constrain : bool, default False
        SIRT / SART: keep the volume non-negative.
    thickness : int, optional
        Number of slices along the beam (z), pixels; default ``ny``.
    cuda : bool, default False
        Reconstruct in 3D on the GPU when astra has CUDA; otherwise warn once and use
        the CPU (2D per sinogram, all cores).
    show_progressbar : bool, default False
        Show a tqdm bar over the x-slices.

    Returns
    -------
    RecStack
        `(nz, ny, nx)` float32 volume; the axes carry this series' pixel size.
    """
    check_series(stack, "reconstruct")
    tilts = require_tilts(
        stack.tilts if stack.has_tilts else None, stack.n_tilts, method="reconstruction"
    )
    nx = stack.data.shape[2]
    with progress_bar(show_progressbar, nx, f"{method} reconstruction") as update:
        volume = reconstruct_array(
            to_numpy(stack.data),
            tilts,
            method=method,
            iterations=iterations,
            constrain=constrain,
            thickness=thickness,
            cuda=cuda,
            progress=update,
        )
    rec = Tomogram(volume)
    source = stack.axes_manager.signal_axes
    for axis, name in zip(rec.axes_manager._axes, ("z", "y", "x"), strict=True):
        axis.name = name
        axis.scale, axis.units = source[0].scale, source[0].units
    rec.metadata.General.title = f"{stack.metadata.General.title} ({method})".strip()
    rec.metadata.set_item(
        "Reconstruction",
        {"method": method, "iterations": iterations, "constrain": constrain},
    )
    return rec
