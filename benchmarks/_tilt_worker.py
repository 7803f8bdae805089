"""Run ONE tilt-axis estimate or ONE reconstruction in this fresh process and write JSON.

Started by ``bench_tilt_axis.py`` with the Python of the implementation's own environment
(tomoalign: the project's ``.venv``; ``etspy130`` / ``etspy111``: ``benchmarks/.venv-etspy130``
/ ``.venv-etspy111``, which do not have tomoalign). This file therefore imports only the
standard library, NumPy and ``_common.py``'s helpers (standard library and NumPy too) at module
level, and the implementation under test inside the run. It never converts conventions: it
records what the implementation stored, and the orchestrator converts and scores.

Modes
-----
``tilt``
    Load the case, build the implementation's stack with the tilts, warm up with one small
    call of the same estimator (central 96 x 96 px; MaxImage with ``shift_limit=4``; pays
    lazy imports such as scikit-image and astra), then time the whole ``stack.tilt_align``
    call (estimate + resampled corrected copy) with ``time.perf_counter``. Records the
    ``metadata.Tomography`` ``tiltaxis``, ``yshift``, ``xshift`` of the input and of the
    returned stack, and optionally saves the returned (corrected) data as ``.npy``
    (``--save-corrected``; for the orchestrator's check of the ETSpy conversion).
``recon``
    Load the (aligned) case, warm up with a tiny reconstruction of the same method, then time
    ``stack.reconstruct(method, iterations, thickness)`` on the CPU. Records wall seconds and
    the CPU seconds (user + sys) of this process and of its reaped children
    (``resource.getrusage(RUSAGE_SELF / RUSAGE_CHILDREN)``) over the call: tomoalign runs large
    jobs in forked worker processes, ETSpy in dask threads, so both counters are needed.
    ``cores_used = cpu_seconds / wall_seconds``.

Both modes measure the peak resident memory the call adds (``_common.PeakRSS``; this process
only, not forked children) and run under ``RLIMIT_AS`` (``--mem-limit-gb``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    central_crop,
    error_record,
    load_case,
    quiet,
    set_memory_limit,
    short_error,
    spread,
    timed,
    write_record,
)

IMPLS = ("tomoalign", "etspy130", "etspy111")
TILT_METHODS = ("auto", "CoM", "MaxImage", "MaxImage-angle")
RECON_METHODS = ("FBP", "SIRT")


# --- the implementations ---------------------------------------------------------------------


def _make_stack(impl: str, data: np.ndarray, tilts: np.ndarray) -> tuple[str, Any]:
    if impl == "tomoalign":
        import tomoalign

        return tomoalign.__version__, tomoalign.TomoStack(data, tilts=tilts)
    import etspy
    from etspy.base import TomoStack

    default = "1.3.0" if impl == "etspy130" else "1.1.1"
    return getattr(etspy, "__version__", default), TomoStack(data, tilts=tilts)


def _geometry(stack: Any) -> dict[str, float]:
    md = stack.metadata.Tomography
    out = {}
    for key in ("tiltaxis", "yshift", "xshift"):
        try:
            out[key] = float(getattr(md, key))
        except (AttributeError, TypeError):
            out[key] = 0.0
    return out


def _tilt_align(impl: str, stack: Any, method: str, *, shift_limit: int = 20) -> Any:
    if method == "MaxImage-angle":  # the angle alone (Hough lines), no offset search
        return stack.tilt_align("MaxImage")
    if impl == "tomoalign":
        if method == "MaxImage":
            return stack.tilt_align("MaxImage", also_shift=True, shift_limit=shift_limit)
        return stack.tilt_align(method)
    if method == "auto":
        raise ValueError("ETSpy has no 'auto' tilt-axis method")
    if method == "MaxImage":
        # ETSpy finds the offset only with also_shift (SIRT of the shifted central sinogram)
        return stack.tilt_align("MaxImage", also_shift=True, shift_limit=shift_limit)
    return stack.tilt_align("CoM")


def _reconstruct(impl: str, stack: Any, method: str, iterations: int, thickness: int, ncores):
    if impl == "tomoalign":
        rec = stack.reconstruct(method, iterations=iterations, thickness=thickness, cuda=False)
    else:
        rec = stack.reconstruct(
            method,
            iterations=iterations,
            thickness=thickness,
            cuda=False,
            show_progressbar=False,
            ncores=ncores,  # None: ETSpy's default, min(nx, int(0.9 * cpu_count))
        )
    return rec.data


# --- modes -----------------------------------------------------------------------------------


def run_tilt(impl: str, case: str, method: str, *, save_corrected: str | None) -> dict[str, Any]:
    data, tilts = load_case(case, truth=False)
    record: dict[str, Any] = {
        "mode": "tilt",
        "impl": impl,
        "method": method,
        "case": Path(case).stem,
        "shape": list(data.shape),
    }
    try:
        record["version"], stack = _make_stack(impl, data, tilts)
        record["input_geometry"] = _geometry(stack)
    except Exception as exc:
        record.update(error_record(exc))
        return record
    try:
        _v, small = _make_stack(impl, central_crop(data), tilts)
        _tilt_align(impl, small, method, shift_limit=4)
    except Exception as exc:
        record["warmup_error"] = short_error(exc)
    del data
    out, error, stats, _meter = timed(lambda: _tilt_align(impl, stack, method), cpu=True)
    record.update(stats)
    if error is not None:
        record.update(error_record(error))
        return record
    record["geometry"] = _geometry(out)
    if save_corrected:
        np.save(save_corrected, np.asarray(out.data, dtype=np.float32))
    return record


def run_recon(
    impl: str, case: str, method: str, *, iterations: int, thickness: int, ncores: int | None
) -> dict[str, Any]:
    data, tilts = load_case(case, truth=False)
    record: dict[str, Any] = {
        "mode": "recon",
        "impl": impl,
        "method": method,
        "case": Path(case).stem,
        "shape": list(data.shape),
        "iterations": iterations,
        "thickness": thickness,
        "ncores_asked": ncores,
    }
    try:
        record["version"], stack = _make_stack(impl, data, tilts)
    except Exception as exc:
        record.update(error_record(exc))
        return record
    try:  # lazy imports (astra, dask), astra's plugin scan; not charged to the measurement
        keep = spread(len(tilts))
        _v, small = _make_stack(impl, central_crop(data, 32, keep), tilts[keep])
        _reconstruct(impl, small, method, 2, 16, ncores)
    except Exception as exc:
        record["warmup_error"] = short_error(exc)
    del data
    volume, error, stats, _meter = timed(
        lambda: _reconstruct(impl, stack, method, iterations, thickness, ncores), cpu=True
    )
    record.update(stats)
    if error is not None:
        record.update(error_record(error))
        return record
    volume = np.asarray(volume)
    record["volume_shape"] = list(volume.shape)
    record["volume_sum"] = float(volume.sum(dtype=np.float64))
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run one tilt-axis/recon job; see docstring.")
    parser.add_argument("--impl", choices=IMPLS, required=True)
    parser.add_argument("--mode", choices=("tilt", "recon"), required=True)
    parser.add_argument("--case", required=True, help="path of the case .npz")
    parser.add_argument("--method", required=True, choices=TILT_METHODS + RECON_METHODS)
    parser.add_argument("--save-corrected", help="tilt: save the corrected data here (.npy)")
    parser.add_argument("--iterations", type=int, default=50, help="recon: SIRT iterations")
    parser.add_argument("--thickness", type=int, default=128, help="recon: slices along z")
    parser.add_argument("--ncores", type=int, default=None, help="recon, ETSpy: ncores")
    parser.add_argument("--mem-limit-gb", type=float, default=16.0, help="RLIMIT_AS; 0: none")
    parser.add_argument("--out", required=True, help="JSON file to write")
    args = parser.parse_args(argv)
    set_memory_limit(args.mem_limit_gb)
    quiet()  # third-party chatter must not end up in the logs
    if args.mode == "tilt":
        if args.method not in TILT_METHODS:
            parser.error(f"--mode tilt takes --method {' | '.join(TILT_METHODS)}")
        record = run_tilt(args.impl, args.case, args.method, save_corrected=args.save_corrected)
    else:
        if args.method not in RECON_METHODS:
            parser.error(f"--mode recon takes --method {' | '.join(RECON_METHODS)}")
        record = run_recon(
            args.impl,
            args.case,
            args.method,
            iterations=args.iterations,
            thickness=args.thickness,
            ncores=args.ncores,
        )
    write_record(record, args.out, args.mem_limit_gb)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
