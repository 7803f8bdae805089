"""DigitalMicrograph, TIFF and HyperSpy files through RosettaSciIO / HyperSpy.

A DigitalMicrograph series may be one ``.dm3``/``.dm4`` stack, or a list of files with one
projection each; these are sorted by their stage alpha tilt (``Microscope Info > Stage
Position > Stage Alpha``, degrees).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from tomoalign.formats._record import SeriesRecord

__all__ = ["DM_SUFFIXES", "TIFF_SUFFIXES", "read_dm", "read_dm_series", "read_tiff"]

DM_SUFFIXES = (".dm3", ".dm4")
TIFF_SUFFIXES = (".tif", ".tiff")

_TO_NM = {"nm": 1.0, "µm": 1e3, "um": 1e3, "Å": 0.1, "A": 0.1, "pm": 1e-3, "m": 1e9, "mm": 1e6}


def _pixel_nm(axes: list[dict[str, Any]]) -> tuple[float | None, str]:
    """Pixel size of the last (x) image axis, in nm when the unit is known."""
    if not axes:
        return None, "px"
    axis = axes[-1]
    scale = float(axis.get("scale", 1.0))
    units = str(axis.get("units", "") or "")
    if units in _TO_NM:
        return scale * _TO_NM[units], "nm"
    return (scale, units) if units else (None, "px")


def _read(reader: Any, path: Path, lazy: bool) -> dict[str, Any]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            results = reader(str(path), lazy=lazy)
    except Exception as exc:
        raise ValueError(
            f"could not read {str(path)!r} ({type(exc).__name__}: {exc}); the file may be "
            "truncated or not in the format its extension says"
        ) from exc
    images = [r for r in results if np.ndim(r["data"]) >= 2]
    if not images:
        raise ValueError(f"{str(path)!r} holds no image")
    return images[0]


def _stage_alpha(original_metadata: dict[str, Any]) -> float | None:
    try:
        tags = original_metadata["ImageList"]["TagGroup0"]["ImageTags"]
        return float(tags["Microscope Info"]["Stage Position"]["Stage Alpha"])
    except (KeyError, TypeError, ValueError):
        return None


def read_dm(path: Path, *, lazy: bool = False) -> SeriesRecord:
    """Read a DigitalMicrograph file holding a whole tilt series (or one image)."""
    from rsciio.digitalmicrograph import file_reader

    result = _read(file_reader, path, lazy)
    pixel, unit = _pixel_nm(result["axes"])
    return SeriesRecord(
        data=result["data"],
        pixel_size=pixel,
        pixel_unit=unit,
        title=path.stem,
        original_metadata=result.get("original_metadata", {}),
    )


def read_dm_series(paths: list[Path]) -> SeriesRecord:
    """Read one DigitalMicrograph image per tilt and stack them sorted by stage tilt.

    Raises
    ------
    ValueError
        When the images differ in shape, or a file has no stage tilt.
    """
    from rsciio.digitalmicrograph import file_reader

    images, tilts, metas = [], [], []
    for path in paths:
        result = _read(file_reader, path, False)
        data = np.asarray(result["data"])
        if data.ndim != 2:
            raise ValueError(
                f"{str(path)!r} holds an array of shape {data.shape}; a list of DM files must "
                "hold one 2D projection each"
            )
        alpha = _stage_alpha(result.get("original_metadata", {}))
        if alpha is None:
            raise ValueError(
                f"{str(path)!r} has no stage alpha tilt in its metadata; load the files in "
                "tilt order and pass tilts=[...] explicitly"
            )
        if images and data.shape != images[0].shape:
            raise ValueError(
                f"{str(path)!r} has shape {data.shape} but {str(paths[0])!r} has "
                f"{images[0].shape}; all projections of a series must have the same shape"
            )
        images.append(data)
        tilts.append(alpha)
        metas.append(result)
    order = np.argsort(np.asarray(tilts), kind="stable")
    pixel, unit = _pixel_nm(metas[0]["axes"])
    return SeriesRecord(
        data=np.stack([images[i] for i in order]),
        tilts=np.asarray(tilts, dtype=float)[order],
        tilts_source="the DigitalMicrograph stage alpha of each file",
        pixel_size=pixel,
        pixel_unit=unit,
        title=paths[0].stem,
        original_metadata={
            "files": [str(paths[i]) for i in order],
            "DM": [metas[i].get("original_metadata", {}) for i in order],
        },
    )


def read_tiff(path: Path, *, lazy: bool = False) -> SeriesRecord:
    """Read a multi-page TIFF stack."""
    from rsciio.tiff import file_reader

    result = _read(file_reader, path, lazy)
    pixel, unit = _pixel_nm(result["axes"])
    return SeriesRecord(
        data=result["data"],
        pixel_size=pixel,
        pixel_unit=unit,
        title=path.stem,
        original_metadata=result.get("original_metadata", {}),
    )
