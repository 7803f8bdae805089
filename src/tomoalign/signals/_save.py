"""Saving series and volumes, atomically: the signal side of :mod:`tomoalign.formats`.

``save_series`` writes a tilt series (MRC with a ``.rawtlt`` beside it, HSPY, TIFF) and
``save_volume`` a reconstructed volume (MRC). Both write a temporary in the target folder and
rename it into place (:func:`tomoalign.formats.atomic_write`), so an interrupted save leaves
no partial file, and refuse to replace an existing file unless ``overwrite=True``.
"""

from __future__ import annotations

import errno
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from hyperspy.signal import BaseSignal

from tomoalign.formats import (
    DM_SUFFIXES,
    HSPY_SUFFIXES,
    MRC_SUFFIXES,
    SUPPORTED_SUFFIXES,
    atomic_write,
    check_writable,
    write_mrc,
    write_tilt_file,
)
from tomoalign.formats._atomic import _PathError

__all__ = ["save_series", "save_volume"]


def _pixel_size_angstrom(signal: Any) -> float | None:
    axis = signal.axes_manager.signal_axes[0]
    factor = {"nm": 10.0, "Å": 1.0, "A": 1.0, "µm": 1e4, "um": 1e4, "pm": 0.01}.get(str(axis.units))
    return float(axis.scale) * factor if factor else None


def save_series(
    signal: Any,
    path: str | os.PathLike[str],
    overwrite: bool = False,
    *,
    show_progressbar: bool = False,
    **kwargs: Any,
) -> None:
    """Save a tilt series atomically; see :meth:`tomoalign.TomoStack.save`.

    Parameters
    ----------
    signal : TomoStack or LazyTomoStack
        The series.
    path : str or path-like
        The output file; the format follows the extension.
    overwrite : bool, default False
        Replace an existing file (and its ``.rawtlt`` companion).
    show_progressbar : bool, default False
        Show a progress bar while an MRC file is written (chunk by chunk).
    **kwargs
        Passed to HyperSpy's writer for ``.hspy`` and TIFF files.

    Raises
    ------
    FileExistsError
        When ``path`` (or its ``.rawtlt`` companion) exists and ``overwrite`` is false; its
        ``filename`` attribute is the existing path.
    FileNotFoundError, PermissionError
        When the folder does not exist or is not writable.
    OSError
        When the disk is full (errno ``ENOSPC``, naming the file and the space needed), or
        for another system error; no partial file is left behind.
    ValueError
        For an unsupported extension.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES or suffix in DM_SUFFIXES:
        writable = [s for s in SUPPORTED_SUFFIXES if s not in DM_SUFFIXES]
        raise ValueError(
            f"cannot save to {str(path)!r}: unsupported extension {path.suffix!r}; use one of "
            f"{', '.join(writable)}"
        )
    check_writable(path, overwrite=overwrite)
    if suffix not in MRC_SUFFIXES:
        _check_space(path, signal.data)
    tilts = signal.tilts
    with_tilts = bool(np.any(tilts)) and suffix not in HSPY_SUFFIXES
    targets = [path] + ([path.with_suffix(".rawtlt")] if with_tilts else [])
    hyperspy_wrote = False

    def writer(tmp: Path, tmp_tilts: Path | None = None) -> None:
        nonlocal hyperspy_wrote
        if suffix in MRC_SUFFIXES:
            write_mrc(
                tmp,
                signal.data,
                pixel_size_angstrom=_pixel_size_angstrom(signal),
                display_name=str(path),
                show_progressbar=show_progressbar,
            )
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                hyperspy_wrote = True
                if suffix in HSPY_SUFFIXES:
                    kwargs.setdefault("show_progressbar", show_progressbar)
                BaseSignal.save(signal, tmp, overwrite=True, **kwargs)
        if tmp_tilts is not None:
            write_tilt_file(tmp_tilts, tilts)

    previous = signal.tmp_parameters.as_dictionary()
    try:
        atomic_write(targets, writer, overwrite=overwrite)
    except BaseException:
        if hyperspy_wrote:  # HyperSpy pointed the signal at the temporary: undo that
            _set_tmp_parameters(signal, previous)
        raise
    if hyperspy_wrote:  # HyperSpy names the temporary; name the final file instead
        _set_tmp_parameters(
            signal,
            {
                **previous,
                "folder": str(path.resolve().parent),
                "filename": path.stem,
                "extension": path.suffix,
            },
        )


def _check_space(path: Path, data: Any) -> None:
    """Refuse a HyperSpy/TIFF save that cannot fit: h5py crashes the process on a full disk.

    The uncompressed size is the bound (HSPY's gzip may need less); MRC writes reserve their
    space with ``posix_fallocate`` instead.
    """
    needed = int(np.prod(data.shape, dtype=object)) * np.dtype(data.dtype).itemsize + 2**20
    try:
        free = shutil.disk_usage(path.parent if str(path.parent) else ".").free
    except OSError:
        return
    if free < needed:
        raise _PathError(
            errno.ENOSPC,
            f"no space left on device for {str(path)!r} (needs up to {needed / 2**20:.1f} MB "
            f"uncompressed, {free / 2**20:.1f} MB free); nothing was written. Free some space "
            "or save elsewhere",
            str(path),
        )


def save_volume(
    volume: Any,
    path: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    show_progressbar: bool = False,
) -> None:
    """Save a reconstructed volume `(nz, ny, nx)` as an MRC volume, atomically.

    The file is marked as a volume (space group 1) with the voxel size of the x axis
    (converted to Å); used by :meth:`tomoalign.RecStack.save` for MRC file names.

    Raises
    ------
    FileExistsError
        When ``path`` exists and ``overwrite`` is false.
    OSError
        As :func:`save_series` (a full disk, a folder that is not writable).
    ValueError
        When the data is not 3D.
    """
    path = Path(path)
    if len(volume.data.shape) != 3:
        raise ValueError(
            f"cannot save {str(path)!r}: the volume has shape {volume.data.shape}; an MRC "
            "volume needs (nz, ny, nx)"
        )

    def writer(tmp: Path) -> None:
        write_mrc(
            tmp,
            volume.data,
            pixel_size_angstrom=_pixel_size_angstrom(volume),
            volume=True,
            display_name=str(path),
            show_progressbar=show_progressbar,
        )

    atomic_write(path, writer, overwrite=overwrite)


def _set_tmp_parameters(signal: Any, values: dict[str, Any]) -> None:
    for key in ("folder", "filename", "extension"):
        if key in values:
            signal.tmp_parameters.set_item(key, values[key])
        elif signal.tmp_parameters.has_item(key):
            delattr(signal.tmp_parameters, key)
