"""File formats on arrays: MRC, DigitalMicrograph, TIFF, tilt files, atomic writes.

Everything here reads files into plain records (:class:`SeriesRecord`: an array, tilts, pixel
size, the source's metadata) and writes arrays, without HyperSpy signals: the signal layer
(:mod:`tomoalign.signals`) saves through it and :mod:`tomoalign.io` builds signals from its
records.
"""

from tomoalign.formats._atomic import atomic_write, check_writable
from tomoalign.formats._mrc import MRC_SUFFIXES, read_mrc, write_mrc
from tomoalign.formats._record import SeriesRecord
from tomoalign.formats._rsciio import (
    DM_SUFFIXES,
    TIFF_SUFFIXES,
    read_dm,
    read_dm_series,
    read_tiff,
)
from tomoalign.formats._tilts import find_tilt_file, read_mdoc, read_tilt_file, write_tilt_file

#: HyperSpy's own format, read and written through HyperSpy.
HSPY_SUFFIXES = (".hspy",)
#: Every extension :func:`tomoalign.load` reads.
SUPPORTED_SUFFIXES = (*MRC_SUFFIXES, *DM_SUFFIXES, *TIFF_SUFFIXES, *HSPY_SUFFIXES)

__all__ = [
    "DM_SUFFIXES",
    "HSPY_SUFFIXES",
    "MRC_SUFFIXES",
    "SUPPORTED_SUFFIXES",
    "TIFF_SUFFIXES",
    "SeriesRecord",
    "atomic_write",
    "check_writable",
    "find_tilt_file",
    "read_dm",
    "read_dm_series",
    "read_mdoc",
    "read_mrc",
    "read_tiff",
    "read_tilt_file",
    "write_mrc",
    "write_tilt_file",
]
