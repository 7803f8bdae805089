"""The ``tomoalign`` command line: a thin, testable shell over the library.

``main(argv) -> int`` parses, calls the library, writes outputs and returns an exit code.
User mistakes (missing files, bad values) print one line to stderr and return 2, without a
traceback.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Sequence

import numpy as np

__all__ = ["main"]

USER_ERRORS = (
    FileNotFoundError,
    FileExistsError,
    IsADirectoryError,
    PermissionError,
    ValueError,
    TypeError,
)


def _describe(stack: object) -> str:
    from tomoalign.signal import TiltSeries

    assert isinstance(stack, TiltSeries)
    axis = stack.axes_manager.signal_axes[0]
    tilts = stack.tilts
    pixel = (
        f"{axis.scale:g} {axis.units}" if axis.units and axis.units != "<undefined>" else "unknown"
    )
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
    from tomoalign.io import load

    stack = load(args.path, tilts=args.tilts, lazy=True)
    print(_describe(stack))
    if args.list_tilts and stack.has_tilts:
        print("angles:     " + " ".join(f"{t:g}" for t in stack.tilts))
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    from tomoalign.io import load

    stack = load(args.input, tilts=args.tilts, lazy=True)
    stack.save(args.output, overwrite=args.overwrite)
    print(f"wrote {args.output}")
    return 0


def _cmd_align(args: argparse.Namespace) -> int:
    from tomoalign import align_stack
    from tomoalign.io import load
    from tomoalign.io._atomic import atomic_write, check_writable

    # Refuse an existing output before the work, not after it.
    check_writable(args.output, overwrite=args.overwrite)
    if args.shifts:
        check_writable(args.shifts, overwrite=args.overwrite)
    stack = load(args.input, tilts=args.tilts, lazy=args.lazy)
    start = time.perf_counter()
    aligned = align_stack(
        stack,
        args.method,
        start=args.start,
        show_progressbar=args.progress,
        shift_type=args.shift_type,
        crop=args.crop,
    )
    if args.tilt_axis:
        aligned = aligned.tilt_align()
        md = aligned.metadata.Tomography
        print(f"tilt axis: {md.tiltaxis:+.2f} degrees, offset {md.yshift:+.2f} px (corrected)")
    seconds = time.perf_counter() - start
    aligned.save(args.output, overwrite=args.overwrite)
    if args.shifts:
        from pathlib import Path

        def write(tmp: Path) -> None:
            np.savetxt(
                tmp, aligned.shifts, fmt="%.4f", header="dy dx (px, scipy.ndimage.shift sign)"
            )

        atomic_write(Path(args.shifts), write, overwrite=args.overwrite)
    print(f"{args.method}: aligned {stack.n_tilts} projections in {seconds:.2f} s -> {args.output}")
    return 0


def _shift_table(shifts: np.ndarray, tilts: np.ndarray, every: int) -> str:
    rows = ["    tilt (deg)   dy (px)   dx (px)"]
    for i in range(0, len(tilts), every):
        rows.append(f"    {tilts[i]:10.1f} {shifts[i, 0]:9.2f} {shifts[i, 1]:9.2f}")
    return "\n".join(rows)


def _cmd_demo(args: argparse.Namespace) -> int:
    from tomoalign import AlignmentMethod, align_stack, datasets

    start = time.perf_counter()
    stack = datasets.needle()
    print("Built-in needle series (real HAADF-STEM data, see datasets/data/PROVENANCE.md)")
    print(_describe(stack))
    print(f"loaded in {time.perf_counter() - start:.2f} s\n")
    for method in AlignmentMethod:
        start = time.perf_counter()
        aligned = align_stack(stack, method)
        seconds = time.perf_counter() - start
        shifts = aligned.shifts
        (dy_lo, dx_lo), (dy_hi, dx_hi) = shifts.min(axis=0), shifts.max(axis=0)
        print(
            f"{method.value:8s} aligned in {seconds:6.2f} s; shifts dy {dy_lo:+.1f}..{dy_hi:+.1f}"
            f" px, dx {dx_lo:+.1f}..{dx_hi:+.1f} px"
        )
        print(_shift_table(shifts, stack.tilts, every=args.every))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``tomoalign`` command."""
    parser = argparse.ArgumentParser(
        prog="tomoalign",
        description="Align electron-tomography tilt series.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    info = sub.add_parser("info", help="describe a tilt-series file")
    info.add_argument("path", help="MRC/ST/ALI, DM3/DM4, TIFF or HSPY file")
    info.add_argument("--tilts", help="tilt file (.rawtlt, .tlt, .mdoc); default: found beside")
    info.add_argument("--list-tilts", action="store_true", help="print every tilt angle")
    info.set_defaults(func=_cmd_info)

    convert = sub.add_parser("convert", help="convert a tilt series between formats")
    convert.add_argument("input")
    convert.add_argument("output", help="output file; its extension chooses the format")
    convert.add_argument("--tilts", help="tilt file for the input")
    convert.add_argument("--overwrite", action="store_true", help="replace an existing output")
    convert.set_defaults(func=_cmd_convert)

    align = sub.add_parser("align", help="align a tilt series and save the aligned copy")
    align.add_argument("input", help="tilt-series file")
    align.add_argument("output", help="aligned output; its extension chooses the format")
    align.add_argument(
        "--method", default="PC", choices=["PC", "COM", "COM-CL", "StackReg"], help="default PC"
    )
    align.add_argument("--tilts", help="tilt file for the input (default: found beside it)")
    align.add_argument("--start", type=int, help="reference projection (default: the central one)")
    align.add_argument("--shift-type", default="fourier", choices=["fourier", "interp"])
    align.add_argument("--crop", action="store_true", help="crop to the common area")
    align.add_argument(
        "--tilt-axis", action="store_true", help="then find and correct the tilt axis (auto)"
    )
    align.add_argument("--lazy", action="store_true", help="memory-map the input")
    align.add_argument("--shifts", help="also write the shifts (dy dx per line) to this file")
    align.add_argument("--progress", action="store_true", help="show a progress bar")
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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (0 ok, 2 user error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            warnings.showwarning = _show_warning
            return int(args.func(args))
    except USER_ERRORS as exc:
        print(f"tomoalign: error: {exc}", file=sys.stderr)
        return 2


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"tomoalign: warning: {message}", file=sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
