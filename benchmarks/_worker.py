"""Run ONE alignment (implementation, case, method) in this fresh process and write JSON.

Started by ``bench_align.py`` with the Python of the implementation's own environment:

* ``tomoalign``: the project's ``.venv``;
* ``tomoalign-lazy``: the same, on a memory-mapped MRC file, the result streamed to MRC (see
  :func:`_tomoalign_lazy`);
* ``etspy130`` / ``etspy111``: ``benchmarks/.venv-etspy130`` / ``.venv-etspy111`` (``make
  bench-venvs``), which do not have tomoalign. This file therefore imports only the standard
  library, NumPy and ``_common.py`` (standard library and NumPy too) at module level, and the
  implementation under test inside the run.

Modes
-----
``align`` (default)
    Load the case, build the implementation's stack with the tilts, warm up with one small
    call of the same method (15 projections, 96 x 96 px; pays lazy imports; ``--no-warmup``
    skips it), then time the whole align call (``time.perf_counter``) and measure the peak
    memory it ADDS (see ``_common.PeakRSS``). Writes seconds, memory, the found shifts
    (converted to tomoalign's convention, see ``SHIFT_SIGN``) or the error.
``floor`` (tomoalign only)
    Time ``tomoalign.estimate_shifts(data, "PC")`` alone and the "FFT floor" of a pairwise
    phase correlation on the same data: one batched real 2D FFT of every projection
    (``scipy.fft.rfft2``, float32, all cores) plus one batched inverse real FFT per neighbour
    pair (``irfft2`` of ``n - 1`` cross-power spectra). Medians of ``--repeats`` runs after a
    warm-up.
``sign``
    Align a tiny synthetic series with known shifts by PC and report whether the
    implementation's shifts have tomoalign's sign (see ``SHIFT_SIGN``).

Shift conventions (checked with ``--mode sign`` on both ETSpy versions)
---------------------------------------------------------------------
tomoalign: ``(n, 2)`` as ``(dy, dx)``, ``shifts[i]`` applied with ``scipy.ndimage.shift``'s sign
(content moves by ``+shift``) aligns projection ``i``.

ETSpy 1.3.0 and 1.1.1 use the same convention: column 0 is y (perpendicular to the tilt axis),
column 1 is x; their PC chains ``skimage.registration.phase_cross_correlation(reference,
moving)``, whose result registers ``moving`` onto ``reference`` with ``ndimage.shift``'s sign,
and their ``apply_shifts`` moves content by ``+shift`` (``ndimage.shift`` or the Fourier ramp
``exp(-2 pi i (v dy + u dx))``). The sign test finds ``found ~= -applied`` for both, so the
factor is +1; ``SHIFT_SIGN`` records it and the orchestrator re-checks it on each run.

Guards: the address space is limited with ``RLIMIT_AS`` (``--mem-limit-gb``, default 16) so a
runaway allocation raises ``MemoryError`` in here (recorded in the JSON) instead of taking the
machine down; the orchestrator adds a wall-clock timeout.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import (
    MB,
    RESULTS,
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

IMPLS = ("tomoalign", "tomoalign-lazy", "etspy130", "etspy111")
METHODS = ("PC", "COM", "COM-CL", "StackReg")

#: Factor that turns an implementation's shifts into tomoalign's (dy, dx) convention.
SHIFT_SIGN = {"tomoalign": 1.0, "tomoalign-lazy": 1.0, "etspy130": 1.0, "etspy111": 1.0}


# --- the implementations ---------------------------------------------------------------------
# Each returns (version, make_stack(data, tilts) -> stack, align(stack, method) -> shifts).


def _tomoalign() -> tuple[str, Any, Any]:
    import tomoalign

    def make(data: np.ndarray, tilts: np.ndarray) -> Any:
        return tomoalign.TomoStack(data, tilts=tilts)

    def align(stack: Any, method: str) -> np.ndarray:
        aligned = tomoalign.align_stack(stack, method, show_progressbar=False)
        return np.asarray(aligned.shifts) - np.asarray(stack.shifts)

    return tomoalign.__version__, make, align


def _etspy130() -> tuple[str, Any, Any]:
    import etspy
    from etspy.base import TomoStack

    def make(data: np.ndarray, tilts: np.ndarray) -> Any:
        # 1.3.0: TomoStack(data, tilts=ndarray) stores a TomoTilts signal; shifts start at 0.
        return TomoStack(data, tilts=tilts)

    def align(stack: Any, method: str) -> np.ndarray:
        before = np.array(stack.shifts.data, dtype=float)
        aligned = stack.stack_register(method, show_progressbar=False)
        return np.array(aligned.shifts.data, dtype=float) - before

    return getattr(etspy, "__version__", "1.3.0"), make, align


def _etspy111() -> tuple[str, Any, Any]:
    import etspy
    from etspy.base import TomoStack

    def make(data: np.ndarray, tilts: np.ndarray) -> Any:
        # 1.1.1 already has 1.3's signal layout: TomoStack(data, tilts=...) (its setter takes an
        # ndarray) with tilts and shifts kept as TomoTilts / TomoShifts signals.
        return TomoStack(data, tilts=tilts)

    def shifts_of(stack: Any) -> np.ndarray:
        shifts = getattr(stack, "shifts", None)
        if shifts is not None and hasattr(shifts, "data"):
            return np.array(shifts.data, dtype=float)
        return np.array(stack.metadata.Tomography.shifts, dtype=float)  # older layout

    def align(stack: Any, method: str) -> np.ndarray:
        before = shifts_of(stack)
        aligned = stack.stack_register(method, show_progressbar=False)
        return shifts_of(aligned) - before

    return getattr(etspy, "__version__", "1.1.1"), make, align


def _tomoalign_lazy() -> tuple[str, Any, Any]:
    """tomoalign on a memory-mapped MRC file (``load(lazy=True)``), the result streamed to MRC.

    ``make`` writes the case to an MRC file (untimed) and loads it lazily; ``align`` is the
    whole lazy call plus ``save`` of the aligned series to another MRC file, since a lazy result
    must be computed somewhere. The files live in a temporary folder under ``results/``, on
    disk (not a RAM-backed /tmp), removed when the worker exits.
    """
    import atexit
    import shutil
    import tempfile

    import tomoalign

    RESULTS.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=".lazy-", dir=RESULTS))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    count = iter(range(1_000_000))

    def make(data: np.ndarray, tilts: np.ndarray) -> Any:
        path = folder / f"in{next(count)}.mrc"
        tomoalign.TomoStack(data, tilts=tilts).save(path)
        return tomoalign.load(path, lazy=True)

    def align(stack: Any, method: str) -> np.ndarray:
        aligned = tomoalign.align_stack(stack, method, show_progressbar=False)
        aligned.save(folder / f"out{next(count)}.mrc")
        return np.asarray(aligned.shifts) - np.asarray(stack.shifts)

    return tomoalign.__version__, make, align


_LOADERS = {
    "tomoalign": _tomoalign,
    "tomoalign-lazy": _tomoalign_lazy,
    "etspy130": _etspy130,
    "etspy111": _etspy111,
}


# --- modes -----------------------------------------------------------------------------------


def run_align(impl: str, case: str, method: str, *, warmup: bool = True) -> dict[str, Any]:
    data, tilts, _ = load_case(case)
    record: dict[str, Any] = {
        "impl": impl,
        "method": method,
        "case": Path(case).stem,
        "shape": list(data.shape),
        "stack_mb": data.nbytes / MB,
    }
    try:
        version, make, align = _LOADERS[impl]()
        record["version"] = version
        stack = make(data, tilts)
    except Exception as exc:
        record.update(error_record(exc))
        return record
    if warmup:
        # Steady state: a small first call pays the lazy imports and one-off set-up (ETSpy
        # imports scikit-image, pystackreg... inside the call) so that neither is charged to
        # the measured call. A failing warm-up is recorded and does not stop the measurement.
        # Up to 15 evenly spread projections, central crop of at most 96 x 96 px (a copy).
        keep = spread(len(tilts))
        try:
            align(make(central_crop(data, 96, keep), tilts[keep]), method)
        except Exception as exc:
            record["warmup_error"] = short_error(exc)
    del data
    shifts, error, stats, meter = timed(
        lambda: align(stack, method), anonymous=impl == "tomoalign-lazy"
    )
    record.update(stats, ru_maxrss_added_mb=meter.ru_maxrss, baseline_rss_mb=meter.baseline_mb)
    if error is not None:
        record.update(error_record(error))
        return record
    record["shifts"] = (np.asarray(shifts, dtype=float) * SHIFT_SIGN[impl]).tolist()
    return record


def _median_time(func: Any, repeats: int) -> float:
    func()  # warm-up: lazy imports, FFT plans, page faults
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        func()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def run_floor(case: str, repeats: int) -> dict[str, Any]:
    import scipy.fft

    import tomoalign

    data, tilts, _ = load_case(case)
    workers = os.cpu_count() or 1
    n, ny, nx = data.shape
    spectra = scipy.fft.rfft2(data, workers=workers)
    cross = spectra[:-1] * np.conj(spectra[1:])  # the pairs' cross-power, outside the timing
    del spectra

    def fft_floor() -> None:
        scipy.fft.rfft2(data, workers=workers)
        scipy.fft.irfft2(cross, s=(ny, nx), workers=workers)

    record: dict[str, Any] = {
        "case": Path(case).stem,
        "shape": [n, ny, nx],
        "workers": workers,
        "repeats": repeats,
        "floor_seconds": _median_time(fft_floor, repeats),
    }
    try:
        record["estimate_seconds"] = _median_time(
            lambda: tomoalign.estimate_shifts(data, "PC", tilts=tilts), repeats
        )
        record["ratio"] = record["estimate_seconds"] / record["floor_seconds"]
    except Exception as exc:
        record.update(error_record(exc))
    return record


def _fourier_shift(image: np.ndarray, dy: float, dx: float) -> np.ndarray:
    """Move the content of ``image`` by ``(+dy, +dx)`` (scipy.ndimage.shift's sign)."""
    ky = np.fft.fftfreq(image.shape[0])[:, None]
    kx = np.fft.fftfreq(image.shape[1])[None, :]
    ramp = np.exp(-2j * np.pi * (ky * dy + kx * dx))
    return np.fft.ifft2(np.fft.fft2(image) * ramp).real


def run_sign(impl: str) -> dict[str, Any]:
    """PC on 9 copies of one image of blobs moved by known, distinct (dy, dx).

    The tilts are within +-4 degrees, so that an aligner that models the tilt (e.g. cosine
    stretching across the axis) still sees what is, to a fraction of a pixel, a pure
    translation. Each axis is decided on its own: the sign whose residual (after removing the
    common offset of the reference projection) is within 1.5 px and under a quarter of the
    other reading's.
    """
    rng = np.random.default_rng(0)
    size = 96
    # Compact Gaussian blobs on a zero background, well inside the frame: the Fourier shifts
    # below wrap nothing around, so the centre of mass moves with the content too.
    yy, xx = np.mgrid[:size, :size].astype(float)
    base = np.zeros((size, size))
    for cy, cx, sigma, height in zip(
        rng.uniform(30, 66, 12),
        rng.uniform(30, 66, 12),
        rng.uniform(1.5, 5, 12),
        rng.uniform(0.5, 2, 12),
        strict=True,
    ):
        base += height * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma**2))
    applied = np.round(rng.uniform(-6, 6, size=(9, 2)))
    applied[:, 0] += 3.0  # break the y/x symmetry
    data = np.stack([_fourier_shift(base, dy, dx) for dy, dx in applied]).astype(np.float32)
    tilts = np.linspace(-4.0, 4.0, len(applied))
    version, make, align = _LOADERS[impl]()
    raw = np.asarray(align(make(data, tilts), "PC"), dtype=float)

    def err(residual: np.ndarray) -> np.ndarray:  # per axis, common offset removed
        return np.abs(residual - residual.mean(axis=0)).max(axis=0)

    # A perfect aligner returns -applied up to a common offset (the reference projection).
    err_same, err_opposite = err(raw + applied), err(raw - applied)
    per_axis = []
    for same, opposite in zip(err_same, err_opposite, strict=True):
        if same < min(1.5, opposite / 4):
            per_axis.append(1.0)
        elif opposite < min(1.5, same / 4):
            per_axis.append(-1.0)
        else:
            per_axis.append(None)
    measured = per_axis[0] if per_axis[0] == per_axis[1] else None
    return {
        "impl": impl,
        "version": version,
        "tilts": tilts.tolist(),
        "applied": applied.tolist(),
        "raw_shifts": raw.tolist(),
        "max_err_if_same_sign_yx": err_same.tolist(),
        "max_err_if_opposite_sign_yx": err_opposite.tolist(),
        "max_err_if_axes_swapped": float(err(raw[:, ::-1] + applied).max()),
        "measured_sign_yx": per_axis,
        "measured_sign": measured,
        "assumed_sign": SHIFT_SIGN[impl],
        "agrees": measured == SHIFT_SIGN[impl],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run one benchmark job; see the docstring.")
    parser.add_argument("--impl", choices=IMPLS, required=True)
    parser.add_argument("--mode", choices=("align", "floor", "sign"), default="align")
    parser.add_argument("--case", help="path of the case .npz (align, floor)")
    parser.add_argument("--method", choices=METHODS, default="PC")
    parser.add_argument("--repeats", type=int, default=5, help="floor mode")
    parser.add_argument("--mem-limit-gb", type=float, default=16.0, help="RLIMIT_AS; 0: none")
    parser.add_argument("--no-warmup", action="store_true", help="align: measure a cold call")
    parser.add_argument("--out", required=True, help="JSON file to write")
    args = parser.parse_args(argv)
    set_memory_limit(args.mem_limit_gb)
    quiet()  # third-party chatter must not end up in the timings' logs
    if args.mode == "sign":
        record = run_sign(args.impl)
    elif args.case is None:
        parser.error("--case is needed for modes align and floor")
    elif args.mode == "floor":
        if args.impl != "tomoalign":
            parser.error("--mode floor runs with --impl tomoalign")
        record = run_floor(args.case, args.repeats)
    else:
        record = run_align(args.impl, args.case, args.method, warmup=not args.no_warmup)
    write_record(record, args.out, args.mem_limit_gb)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
