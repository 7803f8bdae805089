"""Atomic file writing: a temporary file in the same folder, then a rename.

A run that fails half-way (an exception, a full disk, a read-only folder) leaves no partial
output and no temporary file, and never replaces an existing file that it was not asked to
replace. A run that is killed (``SIGKILL``, power loss) cannot clean up after itself; its
temporary is named ``.{stem}.tomoalign-tmp-{pid}-{random}{suffix}`` so that the next write
into the same folder removes it once that process is gone (temporaries of a live process,
and any other file, are left alone). Process ids are those of this machine: on a folder
shared between machines, a temporary of a save running elsewhere could be taken for stale.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import os
import re
import shutil
import traceback
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

__all__ = [
    "TEMPORARY_PATTERN",
    "atomic_write",
    "check_writable",
    "remove_stale_temporaries",
    "temporary_name",
]

#: The names of our temporaries: ``.{stem}.tomoalign-tmp-{pid}-{12 hex digits}{suffix}``.
TEMPORARY_PATTERN = re.compile(r"^\..+\.tomoalign-tmp-(?P<pid>[0-9]+)-[0-9a-f]{12}(\.[^./]*)?$")

_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


class _PathError(OSError):
    """An ``OSError`` whose text is its one-line message (``filename`` is still set).

    ``OSError(errno, message, filename)`` would print as ``[Errno 17] message: 'file'``;
    the CLI reads ``.filename`` and ``.errno`` to word its own message.
    """

    def __str__(self) -> str:
        return str(self.strerror)

    def __reduce__(self) -> tuple:
        # Unpickles (across processes) as the plain builtin with the same errno and filename.
        return (OSError, (self.errno, self.strerror, self.filename))


class _FileExists(_PathError, FileExistsError):
    """``FileExistsError`` with ``errno``, ``filename`` and a one-line message."""


# Tracebacks and ``type(exc).__name__`` show the standard names (pickling gives the builtins).
for _cls, _name in ((_PathError, "OSError"), (_FileExists, "FileExistsError")):
    _cls.__name__ = _cls.__qualname__ = _name
    _cls.__module__ = "builtins"


def check_writable(path: str | os.PathLike[str], *, overwrite: bool) -> Path:
    """Check that ``path`` can be written; return it as a :class:`~pathlib.Path`.

    Raises
    ------
    FileExistsError
        When ``path`` exists and ``overwrite`` is false. Its ``filename`` attribute is the
        path and its ``errno`` is ``EEXIST``, so that a command-line tool can word its own
        message; ``str()`` gives the one-line message for Python users.
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
        raise _exists(path)
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


def temporary_name(path: Path) -> Path:
    """A fresh temporary path beside ``path``, with the same suffix (see the module doc)."""
    return path.with_name(
        f".{path.stem}.tomoalign-tmp-{os.getpid()}-{uuid.uuid4().hex[:12]}{path.suffix}"
    )


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (a zombie counts as gone)."""
    if pid == os.getpid() or os.name == "nt":
        return True  # on Windows os.kill(pid, 0) would terminate the process: never probe
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    except OSError:
        return True  # cannot tell: keep its files
    with contextlib.suppress(OSError, IndexError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat[stat.rindex(")") + 2 :].startswith("Z"):
            return False
    return True


def remove_stale_temporaries(folder: str | os.PathLike[str]) -> list[Path]:
    """Remove our temporaries in ``folder`` whose writing process is gone; return them.

    Only names matching :data:`TEMPORARY_PATTERN`, only regular files, only directly in
    ``folder``. Errors (a file removed meanwhile, no permission) are ignored.
    """
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = TEMPORARY_PATTERN.match(entry.name)
        if not match:
            continue
        with contextlib.suppress(OSError):
            if not entry.is_file(follow_symlinks=False) or _alive(int(match["pid"])):
                continue
            os.unlink(entry.path)
            removed.append(Path(entry.path))
    return removed


@contextlib.contextmanager
def _temporary_sibling(path: Path) -> Iterator[Path]:
    """Yield a fresh temporary path beside ``path``; remove it after, whatever happened."""
    tmp = temporary_name(path)
    try:
        yield tmp
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def _fsync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _is_disk_full(exc: BaseException) -> bool:
    text = str(exc)
    return isinstance(exc, OSError) and (
        exc.errno in _NO_SPACE
        or "No space left on device" in text
        or "Not enough free space" in text  # tifffile's own check
    )


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

    Raises
    ------
    OSError
        From the checks of :func:`check_writable`, or from ``writer``; a full disk raises
        ``OSError`` with errno ``ENOSPC`` and a message naming the final file. Every
        temporary is removed first.

    Notes
    -----
    Each file is renamed into place only after ``writer`` returned for all of them, so an
    exception leaves every final path as it was (except that an earlier rename of a group
    cannot be undone if a later rename itself fails, which needs a failing file system).
    Stale temporaries of killed runs in the target folders are removed first.
    """
    paths = [paths] if isinstance(paths, Path | str) else list(paths)
    paths = [check_writable(p, overwrite=overwrite) for p in paths]
    for folder in dict.fromkeys(p.parent for p in paths):
        remove_stale_temporaries(folder)
    full = None
    with contextlib.ExitStack() as stack:
        tmps = [stack.enter_context(_temporary_sibling(p)) for p in paths]
        try:
            writer(*tmps)
            _place_all(tmps, paths, overwrite=overwrite)
        except FileExistsError:
            raise
        except OSError as exc:
            # Judge "disk full" while the temporaries still take their space: some writers
            # (tifffile) say only "N requested and M written".
            if not (_is_disk_full(exc) or _little_space(paths[0].parent)):
                raise
            if any(str(p) in str(exc) for p in paths):
                raise  # already names the file (the MRC writer)
            # Drop the writer's frames now: h5py objects kept alive by the traceback crash
            # the interpreter when they are finalised at exit after a failed write.
            traceback.clear_frames(exc.__traceback__)
            full = _PathError(
                errno.ENOSPC,
                "no space left on device while writing "
                f"{', '.join(repr(str(p)) for p in paths)}; nothing was written. Free some "
                "space or save elsewhere",
                str(paths[0]),
            )
            del exc
            gc.collect()
    if full is not None:
        raise full
    for folder in dict.fromkeys(p.parent for p in paths):
        _fsync_folder(folder)


def _exists(path: Path) -> FileExistsError:
    return _FileExists(
        errno.EEXIST,
        f"{str(path)!r} already exists; pass overwrite=True to replace it, or choose another name",
        str(path),
    )


def _place_all(tmps: list[Path], paths: list[Path], *, overwrite: bool) -> None:
    """Rename the temporaries into place.

    Without ``overwrite`` each is hard-linked to its final name (which fails if a file
    appeared there since the check) and then unlinked, so a file created meanwhile by
    someone else is never replaced; the files placed so far are removed again when a later
    one fails. File systems without hard links fall back to a checked rename.
    """
    if overwrite:
        for tmp, final in zip(tmps, paths, strict=True):
            os.replace(tmp, final)
        return
    placed: list[Path] = []
    try:
        for tmp, final in zip(tmps, paths, strict=True):
            try:
                os.link(tmp, final)
            except FileExistsError:
                raise _exists(final) from None
            except OSError:  # no hard links here (FAT, some network file systems)
                if final.exists():
                    raise _exists(final) from None
                os.replace(tmp, final)
            placed.append(final)
    except BaseException:
        for final in placed:
            with contextlib.suppress(OSError):
                final.unlink()
        raise


def _little_space(folder: Path) -> bool:
    """Whether the file system of ``folder`` has under 1 MiB left for us."""
    try:
        return shutil.disk_usage(folder).free < 2**20
    except OSError:
        return False
