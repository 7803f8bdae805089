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

import errno
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tomoalign._validation import check_series_array, check_tilts
from tomoalign.io._atomic import atomic_write, check_writable
from tomoalign.io._mrc import MRC_SUFFIXES, read_mrc, write_mrc
from tomoalign.io._record import SeriesRecord
from tomoalign.io._rsciio import DM_SUFFIXES, TIFF_SUFFIXES, read_dm, read_dm_series, read_tiff
from tomoalign.io._tilts import (
    find_tilt_file,
    read_mdoc,
    read_tilt_file,
    write_tilt_file,
)

if TYPE_CHECKING:
    from tomoalign.signal import TiltSeries

__all__ = ["SUPPORTED_SUFFIXES", "load", "read_tilt_file", "save", "save_volume"]

HSPY_SUFFIXES = (".hspy",)
SUPPORTED_SUFFIXES = (*MRC_SUFFIXES, *DM_SUFFIXES, *TIFF_SUFFIXES, *HSPY_SUFFIXES)
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
    from tomoalign.signal import LazyTiltSeries, TiltSeries

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
        warnings.warn(
            f"no tilt angles found for {name!r} (looked for {base.stem}.rawtlt, "
            f"{base.stem}.tlt and {base.stem}.mdoc beside it, and in the file itself); the "
            "series loads with zero tilts. Give them with tomoalign.load(path, tilts=[...] or "
            "tilts='file.rawtlt'), or set stack.tilts = ... before aligning.",
            UserWarning,
            stacklevel=2,
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


def _pixel_size_angstrom(signal: TiltSeries) -> float | None:
    axis = signal.axes_manager.signal_axes[0]
    factor = {"nm": 10.0, "Å": 1.0, "A": 1.0, "µm": 1e4, "um": 1e4, "pm": 0.01}.get(str(axis.units))
    return float(axis.scale) * factor if factor else None


def save(
    signal: TiltSeries,
    path: PathLike,
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
    from hyperspy.signal import BaseSignal

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
    import shutil

    from tomoalign.io._atomic import _PathError

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
    volume: Any, path: PathLike, *, overwrite: bool = False, show_progressbar: bool = False
) -> None:
    """Save a reconstructed volume `(nz, ny, nx)` as an MRC volume, atomically.

    The file is marked as a volume (space group 1) with the voxel size of the x axis
    (converted to Å); used by :meth:`tomoalign.RecStack.save` for MRC file names.

    Raises
    ------
    FileExistsError
        When ``path`` exists and ``overwrite`` is false.
    OSError
        As :func:`save` (a full disk, a folder that is not writable).
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


def _set_tmp_parameters(signal: TiltSeries, values: dict[str, Any]) -> None:
    for key in ("folder", "filename", "extension"):
        if key in values:
            signal.tmp_parameters.set_item(key, values[key])
        elif signal.tmp_parameters.has_item(key):
            delattr(signal.tmp_parameters, key)
