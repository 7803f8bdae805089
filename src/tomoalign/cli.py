"""The ``tomoalign`` command line: a thin, testable shell over the library.

``main(argv) -> int`` parses, calls the library, writes outputs and returns an exit code:

* 0: done;
* 1: the system failed (an ``OSError`` while reading or writing: a full disk, a file
  system that turned read-only, an I/O error), reported with the file concerned;
* 2: a user mistake (bad arguments, missing files, an output that exists or would replace
  the input, a folder that does not exist or is not writable, bad values);
* 130: interrupted (Ctrl-C).

Every error is one line on stderr, ``tomoalign: error: ...``, without a traceback; warnings
are ``tomoalign: warning: ...``, each shown once. Messages speak of options (``--overwrite``,
``--tilts FILE``), not of the Python API.

Commands that write (``align``, ``convert``) check every output before loading anything:
an output may not be the input or one of its tilt files, however spelled (symlink, hard link,
``./``, ``..``), two outputs may not share a name, and each must be writable, new unless
``--overwrite`` is given, with a supported extension.
"""

from __future__ import annotations

import argparse
import errno
import inspect
import os
import re
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import tomoalign
from tomoalign._paths import PathConflictError, Role, check_no_clobber, tilt_file_names
from tomoalign.estimate import AlignmentMethod
from tomoalign.formats import (
    DM_SUFFIXES,
    HSPY_SUFFIXES,
    SUPPORTED_SUFFIXES,
    atomic_write,
    check_writable,
)

__all__ = ["EXIT_INTERRUPTED", "EXIT_OK", "EXIT_SYSTEM_ERROR", "EXIT_USER_ERROR", "main"]

EXIT_OK = 0
EXIT_SYSTEM_ERROR = 1
EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130

USER_ERRORS = (
    FileNotFoundError,
    FileExistsError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
    ValueError,
    TypeError,
)

#: Library wording (Python API) -> command-line wording. Applied to every message printed.
_API_TO_CLI = (
    (r"pass overwrite=True", "add --overwrite"),
    (
        r"Give the tilt angles in degrees: TomoStack\(.*?for tomoalign\.load",
        "Give them with --tilts FILE (.rawtlt, .tlt or .mdoc), or put such a file beside the data",
    ),
    (r"tomoalign\.load\(path, tilts=\[\.\.\.\][^)]*\)", "--tilts FILE"),
    (r"pass tilts=\[\.\.\.\] explicitly", "give --tilts FILE"),
    (r"(?:tomoalign\.)?TomoStack\(data(?:_or_signal)?, tilts=\.\.\.\)", "--tilts FILE"),
    (r"(?:set )?stack\.tilts = \.\.\.", "--tilts FILE"),
    (r"rewrite it with stack\.save\(\.\.\.\)", "rewrite it with 'tomoalign convert IN OUT'"),
    (r" \(e\.g\. np\.nan_to_num\)", ""),
    (r"projections \(stack\.inav\[\.\.\.\]\) first", "projections from the file first"),
    (r"tilts first \(stack\.inav\[\.\.\.\]\)", "tilts from the file first"),
    (
        r"Select one series first \(e\.g\. data\[\.\.\., 0\] or s\.inav\[\.\.\.\]\)\.",
        "Give a file that holds one series.",
    ),
    (r" For one projection use data\[np\.newaxis\]\.", ""),
    (
        r"Convert it first, e\.g\. data\.astype\(np\.float32\), or take np\.abs\(\) of "
        r"complex data\.",
        "Convert the file to integers or floats first (e.g. IMOD's newstack -mode 2).",
    ),
)


class _CommandError(Exception):
    """A failure already worded for the shell, with its exit code."""

    def __init__(self, message: str, code: int = EXIT_USER_ERROR) -> None:
        super().__init__(message)
        self.code = code


class _UsageError(Exception):
    """A command-line parsing error (argparse's, kept to one line)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageError(f"{message} (see '{self.prog} --help')")


def cli_wording(message: str) -> str:
    """Rewrite a library message for shell users, on one line.

    Parameters
    ----------
    message : str
        A library error or warning text.

    Returns
    -------
    str
        The text with Python API advice (``overwrite=True``, ``tilts=[...]``,
        ``stack.tilts = ...``) replaced by the options that do the same, and line breaks
        replaced by spaces.

    Examples
    --------
    >>> cli_wording("'a.mrc' already exists; pass overwrite=True to replace it")
    "'a.mrc' already exists; add --overwrite to replace it"
    """
    for pattern, replacement in _API_TO_CLI:
        message = re.sub(pattern, replacement, message)
    return " ".join(message.split())


def _accepts(func: Callable[..., Any], name: str) -> bool:
    """Whether ``func`` takes a parameter called ``name`` (not merely ``**kwargs``)."""
    try:
        parameter = inspect.signature(func).parameters.get(name)
    except (TypeError, ValueError):
        return False
    return parameter is not None and parameter.kind is not inspect.Parameter.VAR_KEYWORD


def _progress_kwargs(func: Callable[..., Any], progress: bool) -> dict[str, bool]:
    return {"show_progressbar": progress} if _accepts(func, "show_progressbar") else {}


# -- paths ------------------------------------------------------------------------------------
def _writable_suffixes() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(suffixes that can be written, those written without a ``.rawtlt`` companion)."""
    writable = tuple(s for s in SUPPORTED_SUFFIXES if s not in DM_SUFFIXES)
    return writable, tuple(HSPY_SUFFIXES)


def _series_outputs(output: str) -> list[Role]:
    """The output and the ``.rawtlt`` that saving writes beside it (MRC, TIFF)."""
    writable, no_companion = _writable_suffixes()
    stem, suffix = os.path.splitext(output)
    if suffix.lower() not in writable:
        raise _CommandError(
            f"cannot write {output!r}: unsupported extension {suffix!r}; use one of "
            f"{', '.join(writable)}"
        )
    roles = [Role(output, "the output {path}")]
    if suffix.lower() not in no_companion:
        # Saving writes the tilts here when the series has them; count it as always written.
        label = "the tilt file {path} written beside the output " + _braces(repr(output))
        roles.append(Role(stem + ".rawtlt", label))
    return roles


def _braces(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def _tilt_file_roles(input_path: str) -> list[Role]:
    """The input's tilt files, and, when it has one, the other names loading looks for.

    Writing ``in.rawtlt`` beside ``in.mrc`` that has ``in.mdoc`` would change the tilts that
    loading ``in.mrc`` reads (``.rawtlt`` comes first), so those names are inputs too.
    """
    names = tilt_file_names(input_path)
    existing = [name for name in names if name.is_file()]
    roles = [Role(name, "the input's tilt file {path}") for name in existing]
    if existing:
        first = names.index(existing[0])
        source, found = _braces(repr(input_path)), _braces(repr(str(existing[0])))
        for rank, name in enumerate(names):
            if name in existing:
                continue
            if rank < first:
                label = f"{{path}}, which loading {source} would then read instead of {found}"
            else:
                label = f"{{path}}, a tilt-file name of the input {source} (which has {found})"
            roles.append(Role(name, label, fix="choose another output name"))
    return roles


def _check_paths(
    input_path: str, tilts: str | None, outputs: Sequence[Role], *, overwrite: bool
) -> None:
    """Refuse, before any work, an output that would replace an input or another output.

    Also checks that the input (and ``--tilts`` file) exist, and that every output is new
    (unless ``overwrite``) and in a writable folder.
    """
    source = Path(input_path)
    if not source.exists():
        raise FileNotFoundError(f"no such file: {input_path!r}")
    if source.is_dir():
        raise IsADirectoryError(f"{input_path!r} is a folder; give the tilt-series file inside it")
    inputs = [Role(input_path, "the input {path}"), *_tilt_file_roles(input_path)]
    if tilts is not None:
        if not Path(tilts).is_file():
            raise FileNotFoundError(f"no such tilt file: {tilts!r} (--tilts)")
        inputs.append(Role(tilts, "the --tilts file {path}"))
    check_no_clobber(inputs, outputs)
    for out in outputs:
        path = Path(out.path)
        if not overwrite and (path.exists() or path.is_symlink()):
            raise _CommandError(
                f"{out.describe()} already exists; add --overwrite to replace it, or choose "
                "another name"
            )
        check_writable(path, overwrite=True)  # folder exists, is writable; path is no folder


# -- library calls ----------------------------------------------------------------------------
def _load(path: str, *, tilts: str | None, lazy: bool, progress: bool = False) -> Any:
    """Load a series; say in command-line words when it has no tilts."""
    io = tomoalign.io  # read at call time: tests replace io.load / io.save

    with warnings.catch_warnings():
        # The library's warning tells Python users what to call; the CLI says it below.
        warnings.filterwarnings("ignore", message="no tilt angles found", category=UserWarning)
        stack = io.load(path, tilts=tilts, lazy=lazy, **_progress_kwargs(io.load, progress))
    if not stack.has_tilts:
        *others, last = (name.name for name in tilt_file_names(path))
        warnings.warn(
            f"no tilt angles found for {path!r} (no {', '.join(others)} or {last} beside it, "
            "none in the file); it is read with zero tilts. Give them with --tilts FILE.",
            UserWarning,
            stacklevel=2,
        )
    return stack


def _system_error(path: str, exc: OSError, *, also: Sequence[str] = ()) -> _CommandError:
    """Word an ``OSError`` from writing ``path`` (and the files ``also`` written with it)."""
    reason = str(exc.strerror or exc or type(exc).__name__)
    code = f" ({errno.errorcode[exc.errno]})" if exc.errno in errno.errorcode else ""
    other = os.fspath(exc.filename) if exc.filename else ""
    ours = {os.path.realpath(p): p for p in (path, *also)}
    name = os.path.basename(other)
    if other and os.path.realpath(other) in ours:
        path = ours[os.path.realpath(other)]  # the file that failed, as the user spelled it
    elif other and not (name.startswith(".") and "tmp-" in name):
        # Neither an output nor a temporary of one: e.g. the memory-mapped input failing to
        # read during a lazy save.
        code += f" on {other!r}"
    if repr(str(path)) in reason:  # the library's message already names the file
        return _CommandError(f"{reason}{code}", EXIT_SYSTEM_ERROR)
    return _CommandError(f"could not write {str(path)!r}: {reason}{code}", EXIT_SYSTEM_ERROR)


def _save(stack: Any, path: str, *, overwrite: bool, progress: bool = False) -> None:
    """Save through :func:`tomoalign.io.save`; an OS failure names the file, exit code 1."""
    io = tomoalign.io  # read at call time: tests replace io.load / io.save

    try:
        io.save(stack, path, overwrite=overwrite, **_progress_kwargs(io.save, progress))
    except FileExistsError:
        raise  # appeared since the check: a user error, reworded in main
    except OSError as exc:
        companion = os.path.splitext(path)[0] + ".rawtlt"
        raise _system_error(path, exc, also=[companion]) from exc


def _write_shifts(shifts: np.ndarray, path: str, *, overwrite: bool) -> None:
    def write(tmp: Path) -> None:
        np.savetxt(tmp, shifts, fmt="%.4f", header="dy dx (px, scipy.ndimage.shift sign)")

    try:
        atomic_write(Path(path), write, overwrite=overwrite)
    except FileExistsError:
        raise
    except OSError as exc:
        raise _system_error(path, exc) from exc


# -- commands ---------------------------------------------------------------------------------
def _describe(stack: object) -> str:
    assert isinstance(stack, tomoalign.TiltSeries)
    axis = stack.axes_manager.signal_axes[0]
    tilts = stack.tilts
    units = axis.units
    # HyperSpy's unset units are traits' Undefined ("<undefined>"), not a string; "px" is
    # no physical size either.
    known = isinstance(units, str) and units.strip() not in ("", "<undefined>", "px", "pixel")
    pixel = f"{axis.scale:g} {units}" if known else "unknown"
    lines = [
        f"title:      {stack.metadata.General.title}",
        f"shape:      {stack.data.shape} (n_tilts, ny, nx), dtype {stack.data.dtype}",
        f"pixel size: {pixel}",
    ]
    if stack.has_tilts:
        steps = np.diff(tilts)
        step = f", step {np.median(steps):g}" if steps.size else ""
        lines.append(
            f"tilts:      {tilts.min():g} .. {tilts.max():g} degrees, {tilts.size} angles{step}"
        )
    else:
        lines.append("tilts:      unknown (all zero)")
    return "\n".join(lines)


def _cmd_info(args: argparse.Namespace) -> int:
    stack = _load(args.path, tilts=args.tilts, lazy=True)
    print(_describe(stack))
    if args.list_tilts and stack.has_tilts:
        print("angles:     " + " ".join(f"{t:g}" for t in stack.tilts))
    return EXIT_OK


def _cmd_convert(args: argparse.Namespace) -> int:
    outputs = _series_outputs(args.output)
    _check_paths(args.input, args.tilts, outputs, overwrite=args.overwrite)
    stack = _load(args.input, tilts=args.tilts, lazy=True, progress=args.progress)
    _save(stack, args.output, overwrite=args.overwrite, progress=args.progress)
    print(f"wrote {args.output}")
    return EXIT_OK


def _cmd_align(args: argparse.Namespace) -> int:
    outputs = _series_outputs(args.output)
    if args.shifts:
        outputs.append(Role(args.shifts, "the --shifts file {path}"))
    # Everything that can be refused is refused here, before loading or computing.
    _check_paths(args.input, args.tilts, outputs, overwrite=args.overwrite)
    stack = _load(args.input, tilts=args.tilts, lazy=args.lazy, progress=args.progress)
    start = time.perf_counter()
    aligned = tomoalign.align_stack(
        stack,
        args.method,
        start=args.start,
        show_progressbar=args.progress,
        shift_type=args.shift_type,
        crop=args.crop,
    )
    if args.tilt_axis:
        aligned = aligned.tilt_align(**_progress_kwargs(aligned.tilt_align, args.progress))
        md = aligned.metadata.Tomography
        print(f"tilt axis: {md.tiltaxis:+.2f} degrees, offset {md.yshift:+.2f} px (corrected)")
    seconds = time.perf_counter() - start
    _save(aligned, args.output, overwrite=args.overwrite, progress=args.progress)
    if args.shifts:
        _write_shifts(aligned.shifts, args.shifts, overwrite=args.overwrite)
    print(f"{args.method}: aligned {stack.n_tilts} projections in {seconds:.2f} s -> {args.output}")
    return EXIT_OK


def _shift_table(shifts: np.ndarray, tilts: np.ndarray, every: int) -> str:
    rows = ["    tilt (deg)   dy (px)   dx (px)"]
    for i in range(0, len(tilts), every):
        rows.append(f"    {tilts[i]:10.1f} {shifts[i, 0]:9.2f} {shifts[i, 1]:9.2f}")
    return "\n".join(rows)


def _cmd_demo(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    stack = tomoalign.datasets.needle()
    print("Built-in needle series (real HAADF-STEM data, see datasets/data/PROVENANCE.md)")
    print(_describe(stack))
    print(f"loaded in {time.perf_counter() - start:.2f} s\n")
    for method in AlignmentMethod:
        start = time.perf_counter()
        aligned = tomoalign.align_stack(stack, method)
        seconds = time.perf_counter() - start
        shifts = aligned.shifts
        (dy_lo, dx_lo), (dy_hi, dx_hi) = shifts.min(axis=0), shifts.max(axis=0)
        print(
            f"{method.value:8s} aligned in {seconds:6.2f} s; shifts dy {dy_lo:+.1f}..{dy_hi:+.1f}"
            f" px, dx {dx_lo:+.1f}..{dx_hi:+.1f} px"
        )
        print(_shift_table(shifts, stack.tilts, every=args.every))
    return 0


def _method(text: str) -> str:
    """Argparse ``type`` for ``--method``: any case, as :func:`tomoalign.align_stack` takes."""
    try:
        return AlignmentMethod.parse(text).value
    except (ValueError, TypeError):
        return text  # argparse then reports it with the list of choices


_OUTPUTS_EPILOG = (
    "Every output is checked before any work: it may not be the input or one of its tilt "
    "files (however spelled: links, ./, ..), two outputs may not share a name, and an "
    "existing one is replaced only with --overwrite. MRC and TIFF outputs also write "
    "OUT.rawtlt. Exit codes: 0 done, 1 system error (disk full, I/O), 2 user error."
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``tomoalign`` command."""
    parser = _Parser(
        prog="tomoalign",
        description="Align electron-tomography tilt series.",
        epilog="Exit codes: 0 done, 1 system error (disk full, I/O), 2 user error.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    info = sub.add_parser("info", help="describe a tilt-series file")
    info.add_argument("path", help="MRC/ST/ALI, DM3/DM4, TIFF or HSPY file")
    info.add_argument(
        "--tilts", metavar="FILE", help="tilt file (.rawtlt, .tlt, .mdoc); default: found beside"
    )
    info.add_argument("--list-tilts", action="store_true", help="print every tilt angle")
    info.set_defaults(func=_cmd_info)

    convert = sub.add_parser(
        "convert", help="convert a tilt series between formats", epilog=_OUTPUTS_EPILOG
    )
    convert.add_argument("input")
    convert.add_argument(
        "output", help="output file; its extension chooses the format (MRC/TIFF: + .rawtlt)"
    )
    convert.add_argument("--tilts", metavar="FILE", help="tilt file for the input")
    convert.add_argument("--progress", action="store_true", help="show progress bars")
    convert.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    convert.set_defaults(func=_cmd_convert)

    methods = [m.value for m in AlignmentMethod]
    align = sub.add_parser(
        "align", help="align a tilt series and save the aligned copy", epilog=_OUTPUTS_EPILOG
    )
    align.add_argument("input", help="tilt-series file")
    align.add_argument(
        "output", help="aligned output; its extension chooses the format (MRC/TIFF: + .rawtlt)"
    )
    align.add_argument(
        "--method",
        default="PC",
        type=_method,
        choices=methods,
        help=f"alignment method: {', '.join(methods)} (any case; default PC)",
    )
    align.add_argument(
        "--tilts", metavar="FILE", help="tilt file for the input (default: found beside it)"
    )
    align.add_argument(
        "--start", type=int, metavar="INDEX", help="reference projection (default: the central one)"
    )
    align.add_argument("--shift-type", default="fourier", choices=["fourier", "interp"])
    align.add_argument("--crop", action="store_true", help="crop to the common area")
    align.add_argument(
        "--tilt-axis", action="store_true", help="then find and correct the tilt axis (auto)"
    )
    align.add_argument("--lazy", action="store_true", help="memory-map the input")
    align.add_argument(
        "--shifts", metavar="FILE", help="also write the shifts (dy dx per line) to this file"
    )
    align.add_argument("--progress", action="store_true", help="show progress bars")
    align.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    align.set_defaults(func=_cmd_align)

    demo = sub.add_parser(
        "demo", help="align the built-in needle series with each method; print shifts and times"
    )
    demo.add_argument(
        "--every", type=int, default=8, help="print the shifts of every N-th projection"
    )
    demo.set_defaults(func=_cmd_demo)
    return parser


def _exists_message(exc: FileExistsError) -> str:
    if exc.filename:
        return (
            f"{os.fspath(exc.filename)!r} already exists; add --overwrite to replace it, or "
            "choose another name"
        )
    return cli_wording(str(exc))


def _error(message: str) -> None:
    print(f"tomoalign: error: {cli_wording(message)}", file=sys.stderr)


class _WarningPrinter:
    """``warnings.showwarning`` for the CLI: one line each, each text once."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def __call__(
        self,
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: Any = None,
        line: str | None = None,
    ) -> None:
        text = cli_wording(str(message))
        if text not in self.seen:
            self.seen.add(text)
            print(f"tomoalign: warning: {text}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return the exit code.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments after the program name; default ``sys.argv[1:]``.

    Returns
    -------
    int
        0 done, 1 system error (OS error while reading or writing), 2 user error, 130
        interrupted. Errors are printed as one line on stderr.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except _UsageError as exc:
        _error(str(exc))
        return EXIT_USER_ERROR
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else EXIT_USER_ERROR
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.showwarning = _WarningPrinter()
            return int(args.func(args))
    except _CommandError as exc:
        _error(str(exc))
        return exc.code
    except PathConflictError as exc:
        _error(str(exc))
        return EXIT_USER_ERROR
    except FileExistsError as exc:
        _error(_exists_message(exc))
        return EXIT_USER_ERROR
    except USER_ERRORS as exc:
        _error(str(exc))
        return EXIT_USER_ERROR
    except OSError as exc:
        where = f" {os.fspath(exc.filename)!r}" if exc.filename else ""
        _error(f"system error{where}: {exc.strerror or exc}")
        return EXIT_SYSTEM_ERROR
    except KeyboardInterrupt:
        _error("interrupted")
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
