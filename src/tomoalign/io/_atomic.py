"""Atomic file writing: a temporary file in the same folder, then a rename.

A run that fails half-way leaves no partial output and never replaces an existing file
that it was not asked to replace.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

__all__ = ["atomic_write", "check_writable"]


def check_writable(path: str | os.PathLike[str], *, overwrite: bool) -> Path:
    """Check that ``path`` can be written; return it as a :class:`~pathlib.Path`.

    Raises
    ------
    FileExistsError
        When ``path`` exists and ``overwrite`` is false.
    FileNotFoundError
        When the folder of ``path`` does not exist.
    NotADirectoryError
        When the "folder" of ``path`` is a file.
    PermissionError
        When the folder of ``path`` is not writable.
    IsADirectoryError
        When ``path`` is an existing folder.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"cannot write to {str(path)!r}: it is a folder; give a file name")
    if path.exists() and not overwrite:
        raise FileExistsError(
            f"{str(path)!r} already exists; pass overwrite=True to replace it, or choose "
            "another name"
        )
    parent = path.parent if str(path.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        raise NotADirectoryError(
            f"cannot write {str(path)!r}: {str(parent)!r} is a file, not a folder"
        )
    if not parent.is_dir():
        raise FileNotFoundError(
            f"cannot write {str(path)!r}: the folder {str(parent)!r} does not exist; "
            "create it first"
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(
            f"cannot write {str(path)!r}: the folder {str(parent)!r} is not writable; choose "
            "another folder or fix its permissions"
        )
    return path


@contextlib.contextmanager
def _temporary_sibling(path: Path) -> Iterator[Path]:
    """Yield a fresh temporary path beside ``path`` with the same suffix; remove it after."""
    tmp = path.with_name(f".{path.stem}.tmp-{uuid.uuid4().hex[:12]}{path.suffix}")
    try:
        yield tmp
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def atomic_write(
    paths: Path | list[Path],
    writer: Callable[..., None],
    *,
    overwrite: bool,
) -> None:
    """Write one or several files atomically.

    Parameters
    ----------
    paths : Path or list of Path
        The final paths. All are checked before anything is written.
    writer : callable
        Called with the temporary paths (same order, same suffixes, same folders) and
        must write them completely.
    overwrite : bool
        Whether existing final paths may be replaced.

    Notes
    -----
    Each file is renamed into place only after ``writer`` returned for all of them, so an
    exception leaves every final path as it was (except that an earlier rename of a group
    cannot be undone if a later rename itself fails, which needs a failing file system).
    """
    paths = [paths] if isinstance(paths, Path | str) else list(paths)
    paths = [check_writable(p, overwrite=overwrite) for p in paths]
    with contextlib.ExitStack() as stack:
        tmps = [stack.enter_context(_temporary_sibling(p)) for p in paths]
        writer(*tmps)
        for tmp, final in zip(tmps, paths, strict=True):
            os.replace(tmp, final)
