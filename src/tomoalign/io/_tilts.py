"""Tilt-angle files: IMOD ``.rawtlt`` / ``.tlt``, SerialEM ``.mdoc``, and their discovery.

``.rawtlt`` and ``.tlt`` hold one angle in degrees per line, in stack order (IMOD). A SerialEM
``.mdoc`` has one ``[ZValue = n]`` section per image with ``TiltAngle`` (degrees) and
``PixelSpacing`` (Å); the tilt-axis angle is in a title line (``Tilt axis angle = 85.3``,
IMOD's convention: degrees from the image Y axis, counter-clockwise positive), parsed here
since ``mdocfile`` does not.
"""

from __future__ import annotations

import logging
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["MdocInfo", "find_tilt_file", "read_mdoc", "read_tilt_file", "write_tilt_file"]

TILT_SUFFIXES = (".rawtlt", ".tlt")


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
        When a line is not a number, or the file holds no angle.
    """
    path = Path(path)
    if path.suffix.lower() == ".mdoc":
        return read_mdoc(path).tilts
    if not path.is_file():
        raise FileNotFoundError(f"tilt file {str(path)!r} does not exist")
    angles = []
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
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
    return np.asarray(angles, dtype=float)


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
        When the file cannot be parsed or has no ``TiltAngle``.
    """
    import mdocfile

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"mdoc file {str(path)!r} does not exist")
    # mdocfile logs a note for every field it does not model; keep the user's log clean.
    logger = logging.getLogger("mdocfile")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            df = mdocfile.read(path)
    except Exception as exc:
        raise ValueError(f"could not parse {str(path)!r} as a SerialEM .mdoc: {exc}") from exc
    finally:
        logger.setLevel(level)
    if "TiltAngle" not in df.columns or len(df) == 0:
        raise ValueError(f"{str(path)!r} has no TiltAngle entries; is it a tilt-series .mdoc?")
    if "ZValue" in df.columns:
        df = df.sort_values("ZValue", kind="stable")
    tilts = df["TiltAngle"].to_numpy(dtype=float)
    pixel = None
    if "PixelSpacing" in df.columns:
        values = df["PixelSpacing"].dropna().to_numpy(dtype=float)
        if values.size and values[0] > 0:
            pixel = float(values[0]) / 10.0
    axis = None
    if "titles" in df.columns:
        for title in df["titles"].iloc[0] or []:
            match = re.search(r"Tilt axis angle\s*=\s*([-+0-9.eE]+)", str(title))
            if match:
                axis = float(match.group(1))
                break
    return MdocInfo(tilts=tilts, pixel_size_nm=pixel, tilt_axis_angle=axis)


def find_tilt_file(data_path: str | Path) -> Path | None:
    """Find a tilt file beside ``data_path`` with the same stem.

    Looks, in this order, for ``stem.rawtlt``, ``stem.tlt``, ``stem.mdoc`` and SerialEM's
    ``name.ext.mdoc``. Returns the first that exists, or None.
    """
    data_path = Path(data_path)
    candidates = [data_path.with_suffix(s) for s in (*TILT_SUFFIXES, ".mdoc")]
    candidates.append(data_path.with_name(data_path.name + ".mdoc"))
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    return None
