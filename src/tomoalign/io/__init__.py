"""File I/O: :func:`load` tilt series and :func:`save` them, atomically.

Supported formats
-----------------
======================================  ==========================================================
``.mrc .st .ali .mrcs .preali .rec``    MRC via :mod:`mrcfile` (``lazy=True`` reads chunk by
                                        chunk from the file on compute, nothing before), pixel
                                        size from the header (Å → nm) or, when it has none, from
                                        an FEI extended header; tilts from an FEI or SerialEM
                                        extended header when present
``.dm3 .dm4``                           DigitalMicrograph via RosettaSciIO: one stack, or a list
                                        of files with one projection each, sorted by stage tilt
``.tif .tiff``                          TIFF stacks via RosettaSciIO
``.hspy``                               HyperSpy files (all metadata, tilts and shifts included)
======================================  ==========================================================

Tilt angles are taken, in this order, from the ``tilts`` argument; a file beside the data
with the same stem (``.rawtlt``, ``.tlt``, ``.mdoc`` or SerialEM's ``name.mrc.mdoc``); the
file itself (``.hspy`` metadata, MRC extended header, DM stage tilt). When none is found
the series loads with zero tilts and a warning that says how to give them. Tilt files must
hold angles in (-90, 90] degrees and be under 16 MiB.

Bad files are refused before anything large is allocated: an MRC header is checked against
the file size first. Exceptions: ``ValueError`` for bad content, ``FileNotFoundError``,
``IsADirectoryError`` and ``PermissionError`` for paths, ``OSError`` for the system; every
message is one line naming the file.

Loading never changes the dtype or values. Saving writes a temporary file in the target
folder and renames it into place, so an interrupted save leaves no partial file (a killed
one leaves a temporary ``.{stem}.tomoalign-tmp-{pid}-{random}{suffix}``, removed by the next
save into that folder), a full disk raises ``OSError`` (``ENOSPC``) naming the file, and it
refuses to replace an existing file unless ``overwrite=True``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tomoalign._validation import check_series_array, check_tilts
from tomoalign._warnings import warn
from tomoalign.formats import (
    DM_SUFFIXES,
    HSPY_SUFFIXES,
    MRC_SUFFIXES,
    SUPPORTED_SUFFIXES,
    TIFF_SUFFIXES,
    SeriesRecord,
    find_tilt_file,
    read_dm,
    read_dm_series,
    read_mdoc,
    read_mrc,
    read_tiff,
    read_tilt_file,
)
from tomoalign.signals import LazyTiltSeries, TiltSeries, save_volume
from tomoalign.signals import save_series as save

__all__ = ["SUPPORTED_SUFFIXES", "load", "read_tilt_file", "save", "save_volume"]

_TILT_FILE_SUFFIXES = (".rawtlt", ".tlt", ".mdoc")

PathLike = str | os.PathLike[str]


def _existing(path: PathLike) -> Path:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {str(path)!r}")
    if path.is_dir():
        raise IsADirectoryError(f"{str(path)!r} is a folder; give the tilt-series file inside it")
    return path


def _unsupported(path: Path) -> ValueError:
    return ValueError(
        f"cannot load {str(path)!r}: unknown extension {path.suffix!r}; supported are "
        f"{', '.join(SUPPORTED_SUFFIXES)}"
    )


def _read_record(
    path: PathLike | Sequence[PathLike], lazy: bool, show_progressbar: bool = False
) -> SeriesRecord:
    if isinstance(path, list | tuple):
        paths = [_existing(p) for p in path]
        if not paths:
            raise ValueError("got an empty list of files; give at least one file")
        if len(paths) > 1:
            bad = [str(p) for p in paths if p.suffix.lower() not in DM_SUFFIXES]
            if bad:
                raise ValueError(
                    f"a list of files must be DigitalMicrograph images (.dm3/.dm4), one per "
                    f"tilt; got {bad[:3]}"
                )
            return read_dm_series(paths)
        path = paths[0]
    path = _existing(path)
    suffix = path.suffix.lower()
    if suffix in MRC_SUFFIXES:
        return read_mrc(path, lazy=lazy, show_progressbar=show_progressbar)
    if suffix in DM_SUFFIXES:
        return read_dm(path, lazy=lazy)
    if suffix in TIFF_SUFFIXES:
        return read_tiff(path, lazy=lazy)
    if suffix in HSPY_SUFFIXES:
        return _read_hspy(path, lazy)
    raise _unsupported(path)


def _read_hspy(path: Path, lazy: bool) -> SeriesRecord:
    import hyperspy.api as hs

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            signal = hs.load(path, lazy=lazy)
    except Exception as exc:
        raise ValueError(f"could not read {str(path)!r} as a HyperSpy file: {exc}") from exc
    if isinstance(signal, list):
        raise ValueError(
            f"{str(path)!r} holds {len(signal)} signals; save one tilt series per file"
        )
    md = signal.metadata.as_dictionary()
    tomo = md.pop("Tomography", {})
    tilts = tomo.get("tilts")
    tilts = None if tilts is None or not np.any(np.asarray(tilts)) else np.asarray(tilts, float)
    axes = signal.axes_manager.signal_axes
    record = SeriesRecord(
        data=signal.data,
        tilts=tilts,
        tilts_source="the .hspy metadata" if tilts is not None else "",
        pixel_size=float(axes[0].scale) if axes else None,
        pixel_unit=str(axes[0].units) if axes and axes[0].units else "px",
        title=signal.metadata.General.get_item("title", path.stem) or path.stem,
        original_metadata=signal.original_metadata.as_dictionary(),
        metadata=md,
    )
    record.metadata["Tomography"] = {k: v for k, v in tomo.items() if k != "tilts"}
    return record


def _resolve_tilts(
    path: PathLike | Sequence[PathLike], tilts: Any, record: SeriesRecord, n: int
) -> tuple[np.ndarray | None, str]:
    """Return the tilts and where they came from; see the module docstring for the order."""
    if tilts is not None:
        if isinstance(tilts, str | os.PathLike):
            tilt_path = _existing(tilts)
            return read_tilt_file(tilt_path), repr(str(tilt_path))
        return np.asarray(tilts, dtype=float), "the tilts argument"
    if not isinstance(path, list | tuple):
        sibling = find_tilt_file(path)
        if sibling is not None and record.tilts_source != "the .hspy metadata":
            if sibling.suffix.lower() == ".mdoc":
                info = read_mdoc(sibling)
                if info.pixel_size_nm is not None:
                    record.pixel_size, record.pixel_unit = info.pixel_size_nm, "nm"
                record.tilt_axis_angle = info.tilt_axis_angle
                return info.tilts, repr(str(sibling))
            return read_tilt_file(sibling), repr(str(sibling))
    if record.tilts is not None:
        return record.tilts, record.tilts_source
    return None, ""


def load(
    path: PathLike | Sequence[PathLike],
    tilts: Any = None,
    lazy: bool = False,
    *,
    show_progressbar: bool = False,
) -> TiltSeries:
    """Load a tilt series from a file (or a list of DigitalMicrograph files).

    Parameters
    ----------
    path : str, path-like, or list of them
        The file; see the module docstring for formats. A list of ``.dm3``/``.dm4`` files
        with one projection each is stacked in order of stage tilt.
    tilts : array_like, str or path-like, optional
        Tilt angles in degrees, one per projection, or the path of a ``.rawtlt``, ``.tlt`` or
        ``.mdoc`` file. Default: found automatically (see the module docstring).
    lazy : bool, default False
        Return a :class:`~tomoalign.LazyTomoStack` backed by dask; MRC files are
        read chunk by chunk from the file when computed, so nothing is read until needed.
    show_progressbar : bool, default False
        Show a progress bar while an MRC file is read (eager loads of large files).

    Returns
    -------
    TomoStack or LazyTomoStack
        `(n_tilts, ny, nx)` in the file's dtype, with signal axes in nm when the pixel size
        is known, and ``metadata.Tomography`` filled.

    Raises
    ------
    FileNotFoundError, IsADirectoryError, PermissionError
        When a file does not exist, is a folder, or cannot be read.
    ValueError
        For an unknown extension, a corrupt or truncated file (an MRC header that does not
        fit the file size is refused before anything is allocated), data that is not a 3D
        series, a tilt file that is not text, larger than 16 MiB or holds angles outside
        (-90, 90] degrees, or a tilt count that does not match the projections. The message
        names the file.
    OSError
        For other system errors.

    Warns
    -----
    UserWarning
        When no tilt angles are found; when an MRC file does not follow MRC2014 (read with
        mrcfile's permissive mode, with mrcfile's reasons) or is larger than its header says.

    Examples
    --------
    >>> import tomoalign
    >>> stack = tomoalign.load("HAADF.mrc")  # doctest: +SKIP
    >>> stack = tomoalign.load("HAADF.mrc", tilts="HAADF.rawtlt", lazy=True)  # doctest: +SKIP
    """
    record = _read_record(path, lazy, show_progressbar)
    name = str(path if not isinstance(path, list | tuple) else path[0])
    try:
        check_series_array(record.data, what=f"the data in {name!r}")
    except ValueError as exc:
        raise ValueError(f"{exc} (while loading {name!r})") from None
    n = int(record.data.shape[0])
    found, source = _resolve_tilts(path, tilts, record, n)
    if found is not None:
        try:
            found = check_tilts(found, n)
        except ValueError as exc:
            raise ValueError(
                f"tilts from {source} do not fit {name!r}: {exc}; fix or remove that tilt file, "
                "or pass tilts=[...] explicitly"
            ) from None
    else:
        base = Path(name)
        warn(
            f"no tilt angles found for {name!r} (looked for {base.stem}.rawtlt, "
            f"{base.stem}.tlt and {base.stem}.mdoc beside it, and in the file itself); the "
            "series loads with zero tilts. Give them with tomoalign.load(path, tilts=[...] or "
            "tilts='file.rawtlt'), or set stack.tilts = ... before aligning.",
            UserWarning,
        )
    metadata = dict(record.metadata)
    metadata.setdefault("General", {})["title"] = record.title
    metadata["General"]["original_filename"] = Path(name).name
    if record.tilt_axis_angle is not None:
        metadata.setdefault("Tomography", {})["acquisition_tilt_axis"] = record.tilt_axis_angle
    cls = LazyTiltSeries if lazy else TiltSeries
    data = record.data
    if lazy and not hasattr(data, "dask"):
        import dask.array as da

        data = da.from_array(data, chunks=(1, -1, -1))
    if not lazy and hasattr(data, "dask"):
        data = data.compute()
    signal = cls(
        data,
        tilts=found,
        shifts=metadata.get("Tomography", {}).pop("shifts", None),
        metadata=metadata,
        original_metadata=record.original_metadata,
    )
    for axis, label in zip(signal.axes_manager.signal_axes, ("x", "y"), strict=True):
        axis.name = label
        if record.pixel_size:
            axis.scale = record.pixel_size
            axis.units = record.pixel_unit
    return signal
