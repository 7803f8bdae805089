"""Guard the input of a command against its outputs, before any work is done.

A command that reads a tilt series and writes files (``tomoalign align``, ``tomoalign convert``)
must never replace its input or the input's tilt file, and must not write two outputs under
one name. "The same file" is decided by ``(st_dev, st_ino)`` when both paths exist (so a hard
link, a symlink, ``./in.mrc`` or ``dir/../in.mrc`` all count), else by the resolved path.

Only ``os`` and ``pathlib``: nothing here reads data.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "PathConflictError",
    "Role",
    "check_no_clobber",
    "same_file",
    "tilt_companions",
    "tilt_file_names",
]

#: Tilt files looked for beside a data file, as ``tomoalign.formats._tilts.find_tilt_file`` does:
#: ``stem.rawtlt``, ``stem.tlt``, ``stem.mdoc`` (suffix replaced), and SerialEM's
#: ``name.ext.mdoc`` (suffix appended).
_REPLACED_SUFFIXES = (".rawtlt", ".tlt", ".mdoc")
_APPENDED_SUFFIXES = (".mdoc",)


class PathConflictError(ValueError):
    """An output would replace an input, or two outputs share one file."""


@dataclass(frozen=True)
class Role:
    """A path and what it is, for messages.

    Attributes
    ----------
    path : str or path-like
        The path as the user spelled it (or as the writer will build it); shown as given.
    label : str
        What the path is, with ``{path}`` where the quoted path goes, e.g.
        ``"the input {path}"`` or ``"the tilt file {path} written beside the output 'a.mrc'"``.
    fix : str
        For an input: what to do when an output would be this file, ending the message.
    """

    path: str | os.PathLike[str]
    label: str
    fix: str = "an input is never replaced: choose another output name"

    def describe(self) -> str:
        """The label with the quoted path filled in."""
        return self.label.format(path=repr(os.fspath(self.path)))


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Return whether ``a`` and ``b`` name the same file, however spelled.

    Parameters
    ----------
    a, b : str or path-like
        Two paths; either may not exist yet.

    Returns
    -------
    bool
        ``(st_dev, st_ino)`` equality when both exist (symlinks followed, hard links
        included); otherwise equality of the fully resolved paths (``..`` and symlinked
        folders resolved).

    Examples
    --------
    >>> same_file("in.mrc", "./in.mrc")
    True
    """
    try:
        sa, sb = os.stat(a), os.stat(b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def tilt_file_names(data_path: str | os.PathLike[str]) -> list[Path]:
    """Return the tilt-file names that loading looks for beside ``data_path``, in its order.

    Parameters
    ----------
    data_path : str or path-like
        A tilt-series file.

    Returns
    -------
    list of Path
        ``stem.rawtlt``, ``stem.tlt``, ``stem.mdoc`` and ``name.ext.mdoc``, whether or not
        they exist; loading takes the first that exists.
    """
    path = Path(data_path)
    names = [path.with_suffix(s) for s in _REPLACED_SUFFIXES]
    return names + [path.with_name(path.name + s) for s in _APPENDED_SUFFIXES]


def tilt_companions(data_path: str | os.PathLike[str]) -> list[Path]:
    """Return the existing tilt files beside ``data_path`` that loading may read.

    Parameters
    ----------
    data_path : str or path-like
        A tilt-series file.

    Returns
    -------
    list of Path
        Those of :func:`tilt_file_names` that exist (all of them, not only the first that
        loading takes).
    """
    return [name for name in tilt_file_names(data_path) if name.is_file()]


def check_no_clobber(inputs: Sequence[Role], outputs: Sequence[Role]) -> None:
    """Raise when an output is an input, or two outputs are one file.

    Parameters
    ----------
    inputs : sequence of Role
        Files that are read (the data file, its tilt files).
    outputs : sequence of Role
        Files that will be written, in the order they are listed to the user.

    Raises
    ------
    PathConflictError
        Naming both paths and what each is, on one line.

    Examples
    --------
    >>> check_no_clobber([Role("in.mrc", "the input {path}")],
    ...                  [Role("./in.mrc", "the output {path}")])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    tomoalign._paths.PathConflictError: the output './in.mrc' is the input 'in.mrc'; ...
    """
    for out in outputs:
        for inp in inputs:
            if same_file(out.path, inp.path):
                raise PathConflictError(f"{out.describe()} is {inp.describe()}; {inp.fix}")
    for i, first in enumerate(outputs):
        for second in outputs[i + 1 :]:
            if same_file(first.path, second.path):
                raise PathConflictError(
                    f"{second.describe()} is also {first.describe()}; give each output its own name"
                )
