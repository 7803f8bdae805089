"""MRC / IMOD stacks (``.mrc``, ``.st``, ``.ali``, ``.mrcs``) through :mod:`mrcfile`.

Pixel size: the MRC header's voxel size is in Å; it is converted to nm on load and back on
save. Tilts: read from an FEI (``FEI1``/``FEI2``, or the older untyped 128-byte records) or
SerialEM/Agard (``SERI``/``AGAR``) extended header when present.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from tomoalign.io._record import SeriesRecord

__all__ = ["MRC_SUFFIXES", "read_mrc", "write_mrc"]

MRC_SUFFIXES = (".mrc", ".st", ".ali", ".mrcs", ".preali", ".rec", ".map")


def _corrupt(path: Path, exc: Exception) -> ValueError:
    return ValueError(
        f"{str(path)!r} is not a readable MRC file ({exc}). It may be truncated or not an MRC "
        "file; check the download/copy, or convert it with IMOD's newstack."
    )


def _open_header(path: Path) -> tuple[Any, bytes, bool]:
    """Read the header strictly; fall back to mrcfile's permissive mode with a warning.

    Returns the header, the extended header bytes, and whether permissive mode was needed
    (older FEI files, for example, lack the ``MAP`` identifier of MRC2014).
    """
    import mrcfile

    def read(permissive: bool) -> tuple[Any, bytes]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with mrcfile.open(path, mode="r", header_only=True, permissive=permissive) as mrc:
                if mrc.header is None:
                    raise ValueError("no header could be read")
                ext = mrc.extended_header
                return mrc.header.copy(), bytes(ext.tobytes()) if ext is not None else b""

    try:
        header, ext = read(False)
        return header, ext, False
    except Exception as strict_error:
        try:
            header, ext = read(True)
        except Exception as exc:
            raise _corrupt(path, exc) from exc
        if int(header.mode) not in (0, 1, 2, 6, 12) or min(header.nx, header.ny, header.nz) < 1:
            raise _corrupt(path, strict_error) from strict_error
        warnings.warn(
            f"{str(path)!r} does not follow the MRC2014 standard ({strict_error}); it was read "
            "with mrcfile's permissive mode. Check the result; rewrite it with "
            "stack.save(...) to get a standard file.",
            UserWarning,
            stacklevel=5,
        )
        return header, ext, True


def _tilts_from_extended_header(header: Any, ext: bytes, n: int) -> np.ndarray | None:
    """Tilt angles (degrees) from an FEI or SerialEM extended header, or None."""
    if not ext or n < 1:
        return None
    exttyp = bytes(header.exttyp).strip(b"\x00 ")
    tilts = None
    try:
        if exttyp in (b"FEI1", b"FEI2"):
            from mrcfile.dtypes import get_ext_header_dtype

            dtype = get_ext_header_dtype(exttyp, header.mode.dtype.byteorder)
            records = np.frombuffer(ext[: dtype.itemsize * n], dtype=dtype)
            tilts = records["Alpha tilt"].astype(float)
        elif exttyp in (b"SERI", b"AGAR"):
            # IMOD: nint = bytes per section, nreal = flags; bit 0 = tilt angle x 100 (int16).
            extra = bytes(header.extra2.tobytes())
            nint, nreal = np.frombuffer(extra[16:20], dtype=header.mode.dtype.byteorder + "i2")
            if nreal & 1 and nint >= 2 and len(ext) >= nint * n:
                order = header.mode.dtype.byteorder + "i2"
                tilts = (
                    np.array(
                        [
                            np.frombuffer(ext[i * nint : i * nint + 2], dtype=order)[0]
                            for i in range(n)
                        ],
                        dtype=float,
                    )
                    / 100.0
                )
        elif not exttyp and len(ext) >= 128 * n and len(ext) % 128 == 0:
            # Older FEI files: 128-byte records of float32, the first being the alpha tilt.
            order = header.mode.dtype.byteorder + "f4"
            records = np.frombuffer(ext[: 128 * n], dtype=order).reshape(n, 32)
            tilts = records[:, 0].astype(float)
    except Exception:
        return None
    if tilts is None or tilts.size != n or not np.all(np.isfinite(tilts)):
        return None
    if np.all(tilts == 0) or np.any(np.abs(tilts) > 90):
        return None
    return tilts


def read_mrc(path: Path, *, lazy: bool = False) -> SeriesRecord:
    """Read an MRC stack; ``lazy=True`` memory-maps it into a dask array.

    Raises
    ------
    ValueError
        For a truncated or corrupt file.
    """
    import mrcfile
    import mrcfile.utils

    header, ext, permissive = _open_header(path)
    shape = mrcfile.utils.data_shape_from_header(header)
    dtype = mrcfile.utils.data_dtype_from_header(header)
    offset = header.nbytes + int(header.nsymbt)
    needed = offset + int(np.prod(shape)) * dtype.itemsize
    size = path.stat().st_size
    if size < needed:
        raise _corrupt(path, ValueError(f"the header promises {needed} bytes, the file has {size}"))
    if lazy:
        import dask.array as da

        mm = np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape)
        per_tilt = max(1, int(shape[-1]) * int(shape[-2]) * dtype.itemsize)
        chunk = max(1, min(shape[0], (64 * 2**20) // per_tilt)) if len(shape) == 3 else -1
        data = da.from_array(mm, chunks=(chunk, -1, -1) if len(shape) == 3 else -1)
    else:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with mrcfile.open(path, mode="r", permissive=permissive) as mrc:
                    data = np.array(mrc.data)
        except Exception as exc:
            raise _corrupt(path, exc) from exc
    voxel = float(header.cella.x) / max(int(header.mx), 1) if int(header.mx) else 0.0
    n = int(shape[0]) if len(shape) == 3 else 0
    tilts = _tilts_from_extended_header(header, ext, n)
    labels = [
        bytes(lbl).decode("ascii", "replace").strip() for lbl in header.label[: int(header.nlabl)]
    ]
    return SeriesRecord(
        data=data,
        tilts=tilts,
        tilts_source="the MRC extended header" if tilts is not None else "",
        # 0 Å is "unset" in MRC2014, and exactly 1 Å is IMOD's placeholder for unknown.
        pixel_size=voxel / 10.0 if voxel > 0 and voxel != 1.0 else None,
        pixel_unit="nm",
        title=path.stem,
        original_metadata={
            "MRC": {
                "mode": int(header.mode),
                "nx": int(header.nx),
                "ny": int(header.ny),
                "nz": int(header.nz),
                "voxel_size_angstrom": voxel,
                "exttyp": bytes(header.exttyp).decode("ascii", "replace").strip("\x00 "),
                "labels": labels,
            }
        },
    )


# MRC modes hold int8, int16, uint16, float16, float32 (and complex): other dtypes convert.
_LOSSLESS = {np.dtype(t) for t in ("int8", "int16", "uint8", "uint16", "float16", "float32")}


def _mrc_array(data: np.ndarray) -> np.ndarray:
    dtype = np.dtype(data.dtype)
    if dtype in _LOSSLESS:
        return data
    if dtype.kind in "iub":
        lo, hi = (int(data.min()), int(data.max())) if data.size else (0, 0)
        for target in (np.int16, np.uint16):
            info = np.iinfo(target)
            if info.min <= lo and hi <= info.max:
                return data.astype(target)
    warnings.warn(
        f"MRC cannot store {dtype}; writing float32 (values may lose precision). Save as .hspy "
        "to keep the dtype.",
        UserWarning,
        stacklevel=4,
    )
    return data.astype(np.float32)


def write_mrc(path: Path, data: Any, *, pixel_size_angstrom: float | None) -> None:
    """Write ``data`` `(n, ny, nx)` as an MRC image stack (not atomic: see ``io.save``)."""
    import mrcfile
    import mrcfile.utils

    from tomoalign._backend import is_dask_array, to_numpy

    if is_dask_array(data):
        # Stream chunk by chunk into a memory-mapped file: never the whole stack in memory.
        import dask.array as da

        target = np.dtype(data.dtype)
        if target not in _LOSSLESS:
            target = np.dtype(np.float32)
            _mrc_array(np.zeros(1, data.dtype))  # same warning as the eager path
        mrc = mrcfile.new_mmap(
            path, shape=data.shape, mrc_mode=mrcfile.utils.mode_from_dtype(target), overwrite=True
        )
        with mrc:
            da.store(data.astype(target), mrc.data, lock=True)
            _finish_header(mrc, pixel_size_angstrom)
        return
    array = _mrc_array(to_numpy(data))
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(array)
        _finish_header(mrc, pixel_size_angstrom)


def _finish_header(mrc: Any, pixel_size_angstrom: float | None) -> None:
    mrc.set_image_stack()
    if pixel_size_angstrom:
        mrc.voxel_size = pixel_size_angstrom
    mrc.update_header_stats()
    mrc.add_label("tomoalign")
