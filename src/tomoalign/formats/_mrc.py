"""MRC / IMOD stacks (``.mrc``, ``.st``, ``.ali``, ``.mrcs``) through :mod:`mrcfile`.

Reading: the 1024-byte header is parsed first (with :mod:`mrcfile`'s header dtype) and every
field that sizes an allocation is checked against the file size in Python integers, so a
corrupt or hostile header is refused with a ``ValueError`` naming the file before anything
large is allocated. Only then does :mod:`mrcfile` validate the header (strict, else
permissive with a warning). The data block is then read chunk by chunk (eager) or through a
small picklable getter that memory-maps one chunk at a time (``lazy=True``), so a lazy load
reads nothing until computed.

Writing: the header is written by hand (MRC2014, little-endian), then the data chunk by chunk
with ordinary file writes after ``posix_fallocate`` has reserved the space, so a full disk
raises ``OSError`` (never ``SIGBUS``) and the caller's atomic write removes the temporary.

Pixel size: the MRC header's voxel size is in Å; it is converted to nm on load and back on
save. When it is 0 or IMOD's 1 Å placeholder, an FEI extended header's pixel size (metres)
is used. Tilts: read from an FEI (``FEI1``/``FEI2``, or the older untyped 128-byte records)
or SerialEM/Agard (``SERI``/``AGAR``) extended header when present.
"""

from __future__ import annotations

import errno
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tomoalign._backend import is_dask_array, to_numpy
from tomoalign._progress import progress_bar
from tomoalign._validation import validate_tilts
from tomoalign._warnings import warn
from tomoalign.formats._atomic import _PathError
from tomoalign.formats._record import SeriesRecord

__all__ = ["MRC_SUFFIXES", "read_mrc", "write_mrc"]

MRC_SUFFIXES = (".mrc", ".st", ".ali", ".mrcs", ".preali", ".rec", ".map")

_HEADER_BYTES = 1024
#: MRC modes of real-valued images: int8, int16, float32, uint16, float16.
_REAL_MODES = (0, 1, 2, 6, 12)
#: Bytes read or written per chunk by the chunked reader and writer.
_CHUNK_BYTES = 64 * 2**20

# The older, untyped FEI extended header: 1024 records of 32 float32 values per section.
# Verified on the needle file (HAADF.mrc, HAADF.txt): index 0 = alpha tilt (degrees),
# 8 = exposure time, 9 = mean intensity, 10 = tilt axis, 11 = pixel size (metres),
# 12 = magnification, 13 = high tension (volts).
_FEI_OLD_RECORD = 128
_FEI_OLD_TILT = 0
_FEI_OLD_PIXEL = 11


def _corrupt(path: Path, exc: Exception | str) -> ValueError:
    return ValueError(
        f"{str(path)!r} is not a readable MRC file ({exc}). It may be truncated or not an MRC "
        "file; check the download/copy, or convert it with IMOD's newstack."
    )


@dataclass
class _Layout:
    """Where the parts of an MRC file lie, checked against the file size."""

    header: Any  # numpy recarray with mrcfile's HEADER_DTYPE in the file's byte order
    dtype: np.dtype
    shape: tuple[int, ...]
    offset: int  # byte offset of the data block
    nsymbt: int
    size: int  # file size in bytes
    data_bytes: int


def _byte_order(raw: bytes) -> str:
    """The file's byte order from the machine stamp (little-endian when unrecognised).

    As mrcfile's permissive mode, the opposite order is taken when only it gives a valid mode.
    """
    import mrcfile.utils

    try:
        order = mrcfile.utils.byte_order_from_machine_stamp(np.frombuffer(raw[212:216], "u1"))
    except ValueError:
        order = "<"  # mrcfile's permissive default
    order = mrcfile.utils.normalise_byte_order(order)
    mode = int(np.frombuffer(raw[12:16], order + "i4")[0])
    if mode not in (*_REAL_MODES, 3, 4):
        other = ">" if order == "<" else "<"
        if int(np.frombuffer(raw[12:16], other + "i4")[0]) in (*_REAL_MODES, 3, 4):
            return other
    return order


def _layout(path: Path) -> _Layout:
    """Parse the 1024-byte header and check it against the file size; allocate nothing big.

    Raises
    ------
    ValueError
        Naming the file and the field, for any header that does not fit the file.
    """
    import mrcfile.utils
    from mrcfile.dtypes import HEADER_DTYPE

    size = path.stat().st_size
    with open(path, "rb") as f:
        raw = f.read(_HEADER_BYTES)
    if len(raw) < _HEADER_BYTES:
        raise _corrupt(path, f"it has {size} bytes; an MRC file starts with a 1024-byte header")
    order = _byte_order(raw)
    header = (
        np.frombuffer(raw, dtype=HEADER_DTYPE.newbyteorder(order)).reshape(()).view(np.recarray)
    )
    mode = int(header.mode)
    if mode in (3, 4):
        raise ValueError(
            f"{str(path)!r} holds complex numbers (MRC mode {mode}); a tilt series needs real "
            "images (modes 0, 1, 2, 6, 12). Convert it first, e.g. with IMOD's newstack."
        )
    if mode not in _REAL_MODES:
        raise _corrupt(path, f"the header's mode is {mode}; expected one of 0, 1, 2, 6, 12")
    nx, ny, nz = int(header.nx), int(header.ny), int(header.nz)
    if min(nx, ny, nz) < 1:
        raise _corrupt(path, f"the header says nx={nx}, ny={ny}, nz={nz}; each must be at least 1")
    nsymbt = int(header.nsymbt)
    if nsymbt < 0:
        raise _corrupt(path, f"the header's extended-header size nsymbt={nsymbt} is negative")
    dtype = mrcfile.utils.data_dtype_from_header(header)
    data_bytes = nx * ny * nz * dtype.itemsize  # Python ints: no overflow
    needed = _HEADER_BYTES + nsymbt + data_bytes
    if size < needed:
        raise _corrupt(
            path,
            f"the header promises {needed} bytes ({_HEADER_BYTES} header + {nsymbt} extended "
            f"header + {nx} x {ny} x {nz} x {dtype.itemsize} data), the file has {size}",
        )
    if mrcfile.utils.spacegroup_is_volume_stack(header.ispg):
        mz = int(header.mz)
        if mz < 1 or nz % mz:
            raise _corrupt(
                path, f"the header marks a volume stack with mz={mz}, which does not divide nz={nz}"
            )
    shape = tuple(int(s) for s in mrcfile.utils.data_shape_from_header(header))
    if size > needed:
        warn(
            f"{str(path)!r} is {size - needed} bytes larger than its header says ({needed} "
            "bytes); the extra bytes are ignored. Check that the file is what you expect.",
            UserWarning,
        )
    return _Layout(
        header=header.copy(),
        dtype=dtype,
        shape=shape,
        offset=_HEADER_BYTES + nsymbt,
        nsymbt=nsymbt,
        size=size,
        data_bytes=data_bytes,
    )


def _validate_with_mrcfile(path: Path) -> bool:
    """Let mrcfile check the header (strict, else permissive); return whether permissive.

    Called only after :func:`_layout` has bounded every size, so it allocates little. The
    warnings of permissive mode reach the user as one ``UserWarning`` naming the file.
    """
    import mrcfile

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with mrcfile.open(path, mode="r", header_only=True, permissive=False):
                pass
        return False
    except Exception as strict_error:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                with mrcfile.open(path, mode="r", header_only=True, permissive=True) as mrc:
                    if mrc.header is None:
                        raise ValueError("no header could be read")
            except Exception as exc:
                raise _corrupt(path, exc) from exc
        reasons = [str(w.message) for w in caught] or [str(strict_error)]
        reason = "; ".join(dict.fromkeys(reasons))
        warn(
            f"{str(path)!r} does not follow the MRC2014 standard ({reason}); it was read "
            "with mrcfile's permissive mode. Check the result; rewrite it with "
            "stack.save(...) to get a standard file.",
            UserWarning,
        )
        return True


def _fei_records(header: Any, ext: bytes, n: int) -> np.ndarray | None:
    """The `(n,)` FEI1/FEI2 extended-header records (mrcfile's dtype), or None."""
    from mrcfile.dtypes import get_ext_header_dtype

    exttyp = bytes(header.exttyp).strip(b"\x00 ")
    dtype = get_ext_header_dtype(exttyp, header.mode.dtype.byteorder)
    if len(ext) < dtype.itemsize:
        return None
    first = np.frombuffer(ext[: dtype.itemsize], dtype=dtype)[0]
    stride = int(first["Metadata size"])
    if stride < dtype.itemsize:
        stride = dtype.itemsize
    if len(ext) < stride * (n - 1) + dtype.itemsize:
        return None
    return np.ndarray(shape=(n,), dtype=dtype, buffer=ext, strides=(stride,))


def _old_fei_records(header: Any, ext: bytes, n: int) -> np.ndarray | None:
    """`(n, 32)` float32 values of the older untyped FEI extended header, or None."""
    exttyp = bytes(header.exttyp).strip(b"\x00 ")
    if exttyp or len(ext) < _FEI_OLD_RECORD * n or len(ext) % _FEI_OLD_RECORD:
        return None
    order = header.mode.dtype.byteorder + "f4"
    return np.frombuffer(ext[: _FEI_OLD_RECORD * n], dtype=order).reshape(n, 32)


def _tilts_from_extended_header(header: Any, ext: bytes, n: int) -> np.ndarray | None:
    """Tilt angles (degrees) from an FEI or SerialEM extended header, or None."""
    if not ext or n < 1:
        return None
    exttyp = bytes(header.exttyp).strip(b"\x00 ")
    tilts = None
    try:
        if exttyp in (b"FEI1", b"FEI2"):
            records = _fei_records(header, ext, n)
            tilts = None if records is None else records["Alpha tilt"].astype(float)
        elif exttyp in (b"SERI", b"AGAR"):
            # IMOD: nint = bytes per section, nreal = flags; bit 0 = tilt angle x 100 (int16).
            extra = bytes(header.extra2.tobytes())
            order = header.mode.dtype.byteorder + "i2"
            nint, nreal = (int(v) for v in np.frombuffer(extra[16:20], dtype=order))
            if nreal & 1 and nint >= 2 and len(ext) >= nint * n:
                values = np.ndarray(shape=(n,), dtype=order, buffer=ext, strides=(nint,))
                tilts = values.astype(float) / 100.0
        else:
            records = _old_fei_records(header, ext, n)
            tilts = None if records is None else records[:, _FEI_OLD_TILT].astype(float)
    except Exception:
        return None
    try:  # n finite angles, not all 0 (a header without tilts stores zeros), within +-90
        tilts = validate_tilts(tilts, n, required="the extended header")
    except ValueError:
        return None
    return None if np.any(np.abs(tilts) > 90) else tilts


def _pixel_nm_from_extended_header(header: Any, ext: bytes, n: int) -> float | None:
    """Pixel size in nm from an FEI extended header (stored in metres), or None.

    ``FEI1``/``FEI2``: the ``Pixel size X`` field of the first record (when its bitmask says
    it is set, or it is plausible); older untyped FEI records: value 11 of the first record.
    """
    if not ext or n < 1:
        return None
    exttyp = bytes(header.exttyp).strip(b"\x00 ")
    try:
        if exttyp in (b"FEI1", b"FEI2"):
            records = _fei_records(header, ext, 1)
            metres = None if records is None else float(records[0]["Pixel size X"])
        else:
            records = _old_fei_records(header, ext, min(n, len(ext) // _FEI_OLD_RECORD))
            metres = None if records is None else float(records[0, _FEI_OLD_PIXEL])
    except Exception:
        return None
    # Plausible pixel sizes only: 1 pm to 1 mm. Anything else is not a pixel size.
    if metres is None or not np.isfinite(metres) or not 1e-12 <= metres <= 1e-3:
        return None
    # The older records are float32: keep the digits that float32 holds (3.36, not 3.3600001).
    return float(f"{metres * 1e9:.7g}")


class _MrcChunks:
    """Picklable array-like for :func:`dask.array.from_array`: one memory map per read.

    Holding no memory map itself, it costs nothing until a chunk is computed; each
    ``__getitem__`` maps the file, copies the requested slab out and drops the map.
    """

    def __init__(self, path: str, dtype: np.dtype, offset: int, shape: tuple[int, ...]):
        self.path = path
        self.dtype = np.dtype(dtype)
        self.offset = int(offset)
        self.shape = tuple(shape)
        self.ndim = len(self.shape)

    def __getitem__(self, key: Any) -> np.ndarray:
        mm = np.memmap(self.path, dtype=self.dtype, mode="r", offset=self.offset, shape=self.shape)
        try:
            return np.array(mm[key])
        finally:
            del mm


def _chunk_length(shape: tuple[int, ...], itemsize: int) -> int:
    per_item = max(1, itemsize * int(np.prod(shape[1:], dtype=object)))
    return int(max(1, min(shape[0], _CHUNK_BYTES // per_item)))


def _lazy_data(path: Path, layout: _Layout) -> Any:
    import dask.array as da
    from dask.base import tokenize

    getter = _MrcChunks(str(path.resolve()), layout.dtype, layout.offset, layout.shape)
    stat = path.stat()
    name = "mrc-" + tokenize(getter.path, stat.st_size, stat.st_mtime_ns, layout.offset)
    chunks = (_chunk_length(layout.shape, layout.dtype.itemsize),) + (-1,) * (len(layout.shape) - 1)
    return da.from_array(
        getter,
        chunks=chunks,
        name=name,
        meta=np.empty((0,) * len(layout.shape), dtype=layout.dtype),
    )


def _eager_data(path: Path, layout: _Layout, show_progressbar: bool) -> np.ndarray:
    out = np.empty(layout.shape, dtype=layout.dtype)
    flat = out.reshape(-1).view(np.uint8)
    total = flat.size
    with (
        open(path, "rb") as f,
        progress_bar(
            show_progressbar and total > _CHUNK_BYTES,
            -(-total // _CHUNK_BYTES),
            f"reading {path.name}",
        ) as update,
    ):
        f.seek(layout.offset)
        done = 0
        while done < total:
            got = f.readinto(memoryview(flat[done : done + _CHUNK_BYTES]))
            if not got:
                raise _corrupt(path, f"the file ended after {layout.offset + done} bytes")
            done += got
            if update is not None:
                update(1)
    return out


def read_mrc(path: Path, *, lazy: bool = False, show_progressbar: bool = False) -> SeriesRecord:
    """Read an MRC stack; ``lazy=True`` gives a dask array that reads chunks on compute.

    Raises
    ------
    ValueError
        For a truncated or corrupt file, naming the file and the header field.

    Warns
    -----
    UserWarning
        Naming the file: when it is larger than its header says, or does not follow MRC2014
        (read with mrcfile's permissive mode).
    """
    layout = _layout(path)
    _validate_with_mrcfile(path)
    header = layout.header
    with open(path, "rb") as f:
        f.seek(_HEADER_BYTES)
        ext = f.read(layout.nsymbt)  # bounded by the file size (checked in _layout)
    data = _lazy_data(path, layout) if lazy else _eager_data(path, layout, show_progressbar)
    mx, cella_x = int(header.mx), float(header.cella.x)
    voxel = cella_x / mx if mx > 0 and np.isfinite(cella_x) else 0.0
    n = int(layout.shape[0]) if len(layout.shape) == 3 else 0
    tilts = _tilts_from_extended_header(header, ext, n)
    # 0 Å is "unset" in MRC2014, and exactly 1 Å is IMOD's placeholder for unknown.
    pixel = voxel / 10.0 if np.isfinite(voxel) and voxel > 0 and voxel != 1.0 else None
    pixel_source = "header" if pixel is not None else ""
    if pixel is None:
        pixel = _pixel_nm_from_extended_header(header, ext, n)
        pixel_source = "FEI extended header" if pixel is not None else ""
    nlabl = min(max(int(header.nlabl), 0), 10)
    labels = [bytes(lbl).decode("ascii", "replace").strip() for lbl in header.label[:nlabl]]
    return SeriesRecord(
        data=data,
        tilts=tilts,
        tilts_source="the MRC extended header" if tilts is not None else "",
        pixel_size=pixel,
        pixel_unit="nm",
        title=path.stem,
        original_metadata={
            "MRC": {
                "mode": int(header.mode),
                "nx": int(header.nx),
                "ny": int(header.ny),
                "nz": int(header.nz),
                "voxel_size_angstrom": voxel,
                "pixel_size_source": pixel_source,
                "exttyp": bytes(header.exttyp).decode("ascii", "replace").strip("\x00 "),
                "labels": labels,
            }
        },
    )


# MRC modes hold int8, int16, uint16, float16, float32 (and complex): other dtypes convert.
_LOSSLESS = {np.dtype(t) for t in ("int8", "int16", "uint8", "uint16", "float16", "float32")}


def _target_dtype(data: Any) -> np.dtype:
    """The dtype written to MRC: lossless when possible, else float32 with a warning."""
    dtype = np.dtype(data.dtype)
    if dtype in _LOSSLESS:
        return np.dtype(np.uint16) if dtype == np.uint8 else dtype
    if dtype.kind in "iub" and not is_dask_array(data):
        lo, hi = (int(data.min()), int(data.max())) if data.size else (0, 0)
        for target in (np.int16, np.uint16):
            info = np.iinfo(target)
            if info.min <= lo and hi <= info.max:
                return np.dtype(target)
    warn(
        f"MRC cannot store {dtype}; writing float32 (values may lose precision). Save as .hspy "
        "to keep the dtype.",
        UserWarning,
    )
    return np.dtype(np.float32)


def _new_header(
    shape: tuple[int, int, int], dtype: np.dtype, voxel: float | None, volume: bool
) -> Any:
    """A little-endian MRC2014 header for ``shape`` `(n, ny, nx)` (statistics filled later)."""
    import mrcfile.utils
    from mrcfile.constants import MAP_ID
    from mrcfile.dtypes import HEADER_DTYPE

    header = np.zeros(shape=(), dtype=HEADER_DTYPE).view(np.recarray)
    n, ny, nx = shape
    header.map = MAP_ID
    header.nversion = 20141
    header.machst = mrcfile.utils.machine_stamp_from_byte_order("<")
    header.mode = mrcfile.utils.mode_from_dtype(dtype)
    header.nx, header.ny, header.nz = nx, ny, n
    header.mx, header.my = nx, ny
    header.mz = n if volume else 1
    header.ispg = 1 if volume else 0
    header.cellb.alpha = header.cellb.beta = header.cellb.gamma = 90.0
    header.mapc, header.mapr, header.maps = 1, 2, 3
    size = float(voxel) if voxel else 1.0  # mrcfile's convention: 1 Å when unknown
    header.cella.x = size * nx
    header.cella.y = size * ny
    header.cella.z = size * int(header.mz)
    header.dmin, header.dmax, header.dmean, header.rms = 0.0, -1.0, -2.0, -1.0
    header.label[0] = "{:40s}{:>39s} ".format("tomoalign", "")
    header.nlabl = 1
    return header


def _no_space(display: str, needed: int, folder: Path) -> OSError:
    try:
        stat = os.statvfs(folder)
        free = f", {stat.f_bavail * stat.f_frsize / 2**20:.1f} MB free"
    except OSError:
        free = ""
    return _PathError(
        errno.ENOSPC,
        f"no space left on device while writing {display!r} (needed {needed / 2**20:.1f} MB"
        f"{free}); nothing was written. Free some space or save elsewhere",
        display,
    )


def _add_sums(block: np.ndarray, s1: float, s2: float) -> tuple[float, float]:
    """Add the sum and the sum of squares of ``block`` in float64, 1 Mi values at a time."""
    flat = block.reshape(-1)
    for start in range(0, flat.size, 2**20):
        piece = flat[start : start + 2**20].astype(np.float64)
        s1 += float(piece.sum())
        s2 += float(np.dot(piece, piece))
    return s1, s2


def write_mrc(
    path: Path,
    data: Any,
    *,
    pixel_size_angstrom: float | None,
    volume: bool = False,
    display_name: str | None = None,
    show_progressbar: bool = False,
) -> None:
    """Write ``data`` `(n, ny, nx)` as an MRC image stack or volume (not atomic: see ``io.save``).

    The space is reserved first (``posix_fallocate``) and the data written chunk by chunk
    with ordinary writes (a dask array is computed one chunk at a time), so a full disk
    raises ``OSError`` with errno ``ENOSPC`` naming ``display_name`` (default ``path``).

    Parameters
    ----------
    path : Path
        The file to write (the caller's temporary).
    data : array
        `(n, ny, nx)` NumPy, CuPy or dask array.
    pixel_size_angstrom : float or None
        The voxel size in Å (None: unknown, written as mrcfile's 1 Å default).
    volume : bool, default False
        Mark the file as a volume (space group 1) instead of an image stack (0).
    display_name : str, optional
        The name for messages (the final file rather than the temporary).
    show_progressbar : bool, default False
        Show a tqdm progress bar over the chunks.
    """
    display = display_name or str(path)
    shape = tuple(int(s) for s in data.shape)
    if len(shape) != 3:
        raise ValueError(f"cannot write {display!r}: data has shape {shape}; expected 3D")
    target = _target_dtype(data)
    out_dtype = target.newbyteorder("<")
    header = _new_header(shape, target, pixel_size_angstrom, volume)
    step = _chunk_length(shape, out_dtype.itemsize)
    data_bytes = int(np.prod(shape, dtype=object)) * out_dtype.itemsize
    total = _HEADER_BYTES + data_bytes
    lazy = is_dask_array(data)
    lo, hi, s1, s2, count = np.inf, -np.inf, 0.0, 0.0, 0
    starts = range(0, shape[0], step)
    try:
        with open(path, "wb") as f:
            fallocate = getattr(os, "posix_fallocate", None)  # not on macOS or Windows
            try:
                if fallocate is not None:
                    fallocate(f.fileno(), 0, total)
            except OSError as exc:
                if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                    raise
                # Not supported by this file system: the writes below report a full disk.
            f.write(header.tobytes())
            with progress_bar(
                show_progressbar, len(starts), f"writing {Path(display).name}"
            ) as update:
                for start in starts:
                    block = data[start : start + step]
                    block = np.asarray(block.compute() if lazy else to_numpy(block))
                    block = block.astype(out_dtype, copy=False)
                    if block.size:
                        lo, hi = min(lo, float(block.min())), max(hi, float(block.max()))
                        s1, s2 = _add_sums(block, s1, s2)
                        count += block.size
                    f.write(np.ascontiguousarray(block).data)
                    if update is not None:
                        update(1)
            if count:
                mean = s1 / count
                header.dmin, header.dmax, header.dmean = lo, hi, mean
                header.rms = float(np.sqrt(max(s2 / count - mean * mean, 0.0)))
            f.seek(0)
            f.write(header.tobytes())
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise _no_space(display, total, path.parent) from exc
        raise
