"""Tilt-angle files: IMOD ``.rawtlt`` / ``.tlt``, SerialEM ``.mdoc``, and their discovery.

``.rawtlt`` and ``.tlt`` hold one angle in degrees per line, in stack order (IMOD). A SerialEM
``.mdoc`` has one ``[ZValue = n]`` section per image with ``TiltAngle`` (degrees) and
``PixelSpacing`` (Å); the tilt-axis angle is in a title line (``Tilt axis angle = 85.3``,
IMOD's convention: degrees from the image Y axis, counter-clockwise positive), parsed here
since ``mdocfile`` does not.

Tilt files are small (a few bytes per angle for ``.rawtlt``, a few kB per image for an
``.mdoc``): files over :data:`MAX_TILT_FILE_BYTES` are refused before they are read, and
angles outside (-90, 90] degrees are refused naming the value and the file.
"""

from __future__ import annotations

import logging
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tomoalign._paths import tilt_file_names
from tomoalign._validation import validate_tilts

__all__ = ["MdocInfo", "find_tilt_file", "read_mdoc", "read_tilt_file", "write_tilt_file"]

TILT_SUFFIXES = (".rawtlt", ".tlt")

#: Largest tilt file read (16 MiB): a real ``.mdoc`` holds a few kB per image, so this allows
#: thousands of images, while a corrupt or wrong file is refused before it is parsed.
MAX_TILT_FILE_BYTES = 16 * 2**20


def _check_size(path: Path, what: str) -> None:
    if path.is_dir():
        raise IsADirectoryError(f"{what} {str(path)!r} is a folder; give the file inside it")
    if not path.is_file():
        raise FileNotFoundError(f"{what} {str(path)!r} does not exist")
    size = path.stat().st_size
    if size > MAX_TILT_FILE_BYTES:
        raise ValueError(
            f"{what} {str(path)!r} is {size / 2**20:.1f} MiB; tilt files over "
            f"{MAX_TILT_FILE_BYTES // 2**20} MiB are refused (a real one holds a few kB per "
            "image). Is it the right file?"
        )


@dataclass(frozen=True)
class MdocInfo:
    """What a SerialEM ``.mdoc`` tells about a tilt series.

    Attributes
    ----------
    tilts : numpy.ndarray
        `(n,)` tilt angles in degrees, in ``ZValue`` order.
    pixel_size_nm : float or None
        Pixel spacing in nm (the mdoc gives Å).
    tilt_axis_angle : float or None
        Tilt-axis angle in degrees from the image Y axis, CCW positive (IMOD convention).
    """

    tilts: np.ndarray
    pixel_size_nm: float | None
    tilt_axis_angle: float | None


def read_tilt_file(path: str | Path) -> np.ndarray:
    """Read a ``.rawtlt`` / ``.tlt`` file (one angle in degrees per line) or a ``.mdoc``.

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    ValueError
        When a line is not a number, the file is not text, holds no angle, holds an angle
        outside (-90, 90] degrees, or is larger than :data:`MAX_TILT_FILE_BYTES`.
    """
    path = Path(path)
    if path.suffix.lower() == ".mdoc":
        return read_mdoc(path).tilts
    _check_size(path, "tilt file")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"tilt file {str(path)!r} is not text (undecodable byte at offset {exc.start}); a "
            ".tlt/.rawtlt file holds one angle in degrees per line"
        ) from None
    angles = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            angles.append(float(text.split()[0]))
        except ValueError:
            raise ValueError(
                f"{str(path)!r} line {lineno}: {text!r} is not a tilt angle; a .tlt/.rawtlt "
                "file holds one angle in degrees per line"
            ) from None
    if not angles:
        raise ValueError(f"tilt file {str(path)!r} holds no angle")
    return validate_tilts(angles, source=repr(str(path)))


def write_tilt_file(path: Path, tilts: np.ndarray) -> None:
    """Write ``tilts`` (degrees) one per line, IMOD style (not atomic: see ``io.save``)."""
    path.write_text("".join(f"{t:10.4f}\n" for t in np.asarray(tilts, dtype=float)))


def read_mdoc(path: str | Path) -> MdocInfo:
    """Read tilt angles, pixel spacing and tilt-axis angle from a SerialEM ``.mdoc``.

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    ValueError
        When the file cannot be parsed, has no ``TiltAngle``, holds an angle outside
        (-90, 90] degrees, or is larger than :data:`MAX_TILT_FILE_BYTES`.
    """
    import mdocfile

    path = Path(path)
    _check_size(path, "mdoc file")
    # mdocfile logs a note for every field it does not model; keep the user's log clean.
    logger = logging.getLogger("mdocfile")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            df = mdocfile.read(path)
    except Exception as exc:
        raise ValueError(
            f"could not parse {str(path)!r} as a SerialEM .mdoc: {_one_line(exc)}"
        ) from exc
    finally:
        logger.setLevel(level)
    try:
        if "TiltAngle" not in df.columns or len(df) == 0:
            raise ValueError("no TiltAngle entries; is it a tilt-series .mdoc?")
        if "ZValue" in df.columns:
            df = df.sort_values("ZValue", kind="stable")
        tilts = df["TiltAngle"].to_numpy(dtype=float)
        pixel = None
        if "PixelSpacing" in df.columns:
            values = df["PixelSpacing"].dropna().to_numpy(dtype=float)
            if values.size and np.isfinite(values[0]) and values[0] > 0:
                pixel = float(values[0]) / 10.0
        axis = None
        if "titles" in df.columns:
            for title in df["titles"].iloc[0] or []:
                match = re.search(r"Tilt axis angle\s*=\s*([-+0-9.eE]+)", str(title))
                if match:
                    value = float(match.group(1))
                    axis = value if np.isfinite(value) else None
                    break
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise ValueError(f"{str(path)!r}: {_one_line(exc)}") from None
    tilts = validate_tilts(tilts, source=repr(str(path)))
    return MdocInfo(tilts=tilts, pixel_size_nm=pixel, tilt_axis_angle=axis)


def _one_line(exc: Exception) -> str:
    """A one-line summary of a parser's error (pydantic's are several lines long)."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            first = errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            value = first.get("input")
            return f"{first.get('msg', exc)} (field {where or '?'}, value {value!r:.60})"
        except Exception:
            pass
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:200]}"


def find_tilt_file(data_path: str | Path) -> Path | None:
    """Find a tilt file beside ``data_path`` with the same stem.

    Looks, in this order, for ``stem.rawtlt``, ``stem.tlt``, ``stem.mdoc`` and SerialEM's
    ``name.ext.mdoc``. Returns the first that exists, or None.
    """
    for candidate in tilt_file_names(data_path):
        if candidate.is_file():
            return candidate
    return None
