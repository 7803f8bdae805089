"""Seeded mutations of small MRC, ``.rawtlt`` and ``.mdoc`` files, and one loader run per case.

Shared by ``tests/test_io/test_fuzz.py`` (a short run) and ``benchmarks/fuzz_io.py`` (the
long one). A case mutates one base file (bit flips, extreme int32 values in MRC header fields,
byte overwrites, truncation, appended bytes, or text edits), writes it (with its companion
tilt file when it is one) into a folder, then loads it eagerly and lazily (computing the lazy
one). Only documented exceptions may come out: ``ValueError`` for bad content and ``OSError``
(``FileNotFoundError``, ``IsADirectoryError``, ``PermissionError``, ...) for the system.
"""

from __future__ import annotations

import resource
import time
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DOCUMENTED = (ValueError, OSError)

# int32 header words worth hitting: nx ny nz mode, nxstart.., mx my mz, cella, mapc.., dmin..,
# ispg nsymbt, extra (exttyp 104, nversion 108, imod 152-159 incl. nint/nreal at 128+..),
# origin, map 208, machst 212, rms, nlabl 220.
_HEADER_WORDS = (0, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40, 44, 48, 52, 64, 68, 72, 76, 80, 84, 88)
_HEADER_WORDS += (92, 96, 100, 104, 108, 128, 132, 136, 140, 144, 148, 152, 208, 212, 216, 220)
_EXTREMES = (0, 1, -1, 2, 3, 4, 6, 12, 101, 401, 2**31 - 1, -(2**31), 2**16, 65535, 1024, 131072)


@dataclass
class Outcome:
    """What one case did."""

    case: str
    result: str  # "ok", or the exception type name
    documented: bool
    seconds: float
    rss_growth_mb: float
    detail: str = ""


def _mrc_bytes(tmp: Path, *, dtype: str, ext: str, tilts: np.ndarray) -> bytes:
    import mrcfile
    from mrcfile.dtypes import get_ext_header_dtype

    n = tilts.size
    data = (np.arange(n * 16 * 16).reshape(n, 16, 16) % 251).astype(dtype)
    path = tmp / f"base_{dtype}_{ext or 'none'}.mrc"
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(data)
        mrc.set_image_stack()
        mrc.voxel_size = 3.4
        if ext == "FEI1":
            dt = get_ext_header_dtype(b"FEI1", "<")
            records = np.zeros(n, dt)
            records["Metadata size"] = dt.itemsize
            records["Alpha tilt"] = tilts
            records["Pixel size X"] = 3.36e-9
            mrc.set_extended_header(records)
            mrc.header.exttyp = b"FEI1"
        elif ext == "oldFEI":
            values = np.zeros((1024, 32), "<f4")
            values[:n, 0] = tilts
            values[:n, 11] = 3.36e-9
            mrc.set_extended_header(np.frombuffer(values.tobytes(), "V1"))
            mrc.header.map = b"\x00\x00\x00\x00"
        elif ext == "SERI":
            values = np.zeros((n, 2), "<i2")
            values[:, 0] = np.round(tilts * 100)
            mrc.set_extended_header(np.frombuffer(values.tobytes(), "V1"))
            mrc.header.exttyp = b"SERI"
            extra = bytearray(mrc.header.extra2.tobytes())
            extra[16:20] = np.array([4, 1], "<i2").tobytes()
            mrc.header.extra2 = bytes(extra)
    return path.read_bytes()


def base_files(tmp: Path) -> dict[str, bytes]:
    """Small valid files: name (with the suffix that picks the reader) -> bytes."""
    tilts = np.linspace(-60, 60, 5)
    files = {
        "plain.mrc": _mrc_bytes(tmp, dtype="float32", ext="", tilts=tilts),
        "int16_oldfei.mrc": _mrc_bytes(tmp, dtype="int16", ext="oldFEI", tilts=tilts),
        "fei1.mrc": _mrc_bytes(tmp, dtype="int16", ext="FEI1", tilts=tilts),
        "seri.mrc": _mrc_bytes(tmp, dtype="uint16", ext="SERI", tilts=tilts),
        "series.rawtlt": "".join(f"{t:10.4f}\n" for t in tilts).encode(),
        "series.mdoc": (
            "PixelSpacing = 7.88\nImageFile = series.mrc\n\n"
            "[T = SerialEM: test    Tilt axis angle = 85.3, binning = 1]\n\n"
            + "".join(
                f"[ZValue = {i}]\nTiltAngle = {t}\nPixelSpacing = 7.88\nExposureTime = 1\n\n"
                for i, t in enumerate(tilts)
            )
        ).encode(),
    }
    return files


def mutate(raw: bytes, rng: np.random.Generator, *, mrc: bool) -> tuple[bytes, str]:
    """One seeded mutation of ``raw``; returns the bytes and a short description."""
    data = bytearray(raw)
    kind = rng.choice(
        ["flip", "word", "overwrite", "truncate", "append", "text"]
        if not mrc
        else ["flip", "word", "word", "word", "overwrite", "truncate", "append"]
    )
    if kind == "flip":
        k = int(rng.integers(1, 9))
        limit = 1024 if mrc and rng.random() < 0.7 else len(data)
        for _ in range(k):
            i = int(rng.integers(0, max(1, min(limit, len(data)))))
            data[i] ^= 1 << int(rng.integers(0, 8))
        return bytes(data), f"flip {k} bit(s) in the first {limit} bytes"
    if kind == "word":
        offset = int(rng.choice(_HEADER_WORDS)) if mrc else int(rng.integers(0, len(data) - 3))
        value = int(rng.choice(_EXTREMES)) if rng.random() < 0.8 else int(rng.integers(-9, 2**20))
        order = "<" if rng.random() < 0.9 else ">"
        data[offset : offset + 4] = np.array([value], order + "i4").tobytes()
        return bytes(data), f"int32 {value} at byte {offset} ({order})"
    if kind == "overwrite":
        start = int(rng.integers(0, len(data)))
        length = int(rng.integers(1, 64))
        data[start : start + length] = rng.bytes(length)
        return bytes(data[: len(raw)]), f"{length} random bytes at {start}"
    if kind == "truncate":
        cut = int(rng.integers(0, len(data)))
        return bytes(data[:cut]), f"truncated to {cut} bytes"
    if kind == "append":
        extra = int(rng.choice([1, 7, 1024, 70_000]))
        return bytes(data) + rng.bytes(extra), f"{extra} bytes appended"
    # Text edits of tilt files: extreme numbers, garbage lines, repeated lines.
    lines = bytes(data).split(b"\n")
    i = int(rng.integers(0, len(lines)))
    choice = int(rng.integers(0, 5))
    if choice == 0:
        number = rng.choice([b"1e308", b"-1e308", b"nan", b"inf", b"-91", b"90.0001", b"-90"])
        parts = lines[i].split(b"=")
        lines[i] = parts[0] + b"= " + number if len(parts) == 2 else number
    elif choice == 1:
        lines.insert(i, rng.bytes(int(rng.integers(1, 40))))
    elif choice == 2:
        lines = lines[:i] + [lines[i]] * int(rng.integers(2, 2000)) + lines[i:]
    elif choice == 3:
        lines[i] = b"[ZValue = " + str(int(rng.choice(_EXTREMES))).encode() + b"]"
    else:
        lines[i] = b"TiltAngle = " + b"9" * int(rng.integers(1, 400))
    return b"\n".join(lines), f"text edit {choice} at line {i}"


def _max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_case(folder: Path, base: dict[str, bytes], seed: int) -> Outcome:
    """Mutate one base file with ``seed``, write the series beside it, load it both ways."""
    import tomoalign

    rng = np.random.default_rng(seed)
    names = sorted(base)
    name = names[int(rng.integers(0, len(names)))]
    mrc = name.endswith(".mrc")
    raw, how = mutate(base[name], rng, mrc=mrc)
    case_dir = folder / f"case{seed}"
    case_dir.mkdir()
    if mrc:
        target = case_dir / name
        target.write_bytes(raw)
    else:  # a mutated tilt file beside a valid MRC of 5 projections
        target = case_dir / "series.mrc"
        target.write_bytes(base["plain.mrc"])
        (case_dir / name).write_bytes(raw)
    label = f"seed {seed}: {name}, {how}"
    before = _max_rss_mb()
    start = time.perf_counter()
    result, documented, detail = "ok", True, ""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # any warning but our UserWarnings is a failure
            warnings.simplefilter("ignore", UserWarning)
            # tomoalign's own RuntimeWarning for NaN/inf pixels is expected for random bytes
            warnings.filterwarnings("ignore", category=RuntimeWarning, module="tomoalign")
            tomoalign.load(target)
            lazy = tomoalign.load(target, lazy=True)
            lazy.data.compute()
    except DOCUMENTED as exc:
        result, detail = type(exc).__name__, str(exc)
        if str(target.name) not in detail and name not in detail:
            documented, detail = False, f"message does not name the file: {detail}"
        elif "\n" in detail:
            documented, detail = False, f"message is not one line: {detail}"
    except Exception as exc:  # an undocumented exception: the failure we look for
        result, documented = type(exc).__name__, False
        detail = "".join(traceback.format_exception(exc))[-2000:]
    seconds = time.perf_counter() - start
    return Outcome(label, result, documented, seconds, _max_rss_mb() - before, detail)
