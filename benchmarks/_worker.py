"""Run ONE alignment (implementation, case, method) in this fresh process and write JSON.

Started by ``bench_align.py`` with the Python of the implementation's own environment:

* ``tomoalign``: the project's ``.venv``;
* ``tomoalign-lazy``: the same, on a memory-mapped MRC file, the result streamed to MRC (see
  :func:`_tomoalign_lazy`);
* ``etspy130`` / ``etspy111``: ``benchmarks/.venv-etspy130`` / ``.venv-etspy111`` (``make
  bench-venvs``), which do not have tomoalign. This file therefore imports only the standard
  library and NumPy at module level, and the implementation under test inside the run.

Modes
-----
``align`` (default)
    Load the case, build the implementation's stack with the tilts, warm up with one small
    call of the same method (15 projections, 96 x 96 px; pays lazy imports; ``--no-warmup``
    skips it), then time the whole align call (``time.perf_counter``) and measure the peak
    memory it ADDS (see :class:`PeakRSS`). Writes seconds, memory, the found shifts
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
import gc
import json
import os
import resource
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

IMPLS = ("tomoalign", "tomoalign-lazy", "etspy130", "etspy111")
METHODS = ("PC", "COM", "COM-CL", "StackReg")

#: Factor that turns an implementation's shifts into tomoalign's (dy, dx) convention.
SHIFT_SIGN = {"tomoalign": 1.0, "tomoalign-lazy": 1.0, "etspy130": 1.0, "etspy111": 1.0}

_PAGE = os.sysconf("SC_PAGE_SIZE")
_RESULTS = Path(__file__).resolve().parent / "results"
_MB = 2**20


def set_memory_limit(gigabytes: float) -> None:
    """Cap this process's address space so a huge allocation fails with MemoryError."""
    if gigabytes <= 0:
        return
    limit = int(gigabytes * 2**30)
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def rss_bytes() -> int:
    """Current resident set size from /proc/self/statm (second field, pages)."""
    with open("/proc/self/statm", "rb") as f:
        return int(f.read().split()[1]) * _PAGE


def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_hwm() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) to the current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


class PeakRSS:
    """Peak resident memory added by a block of code.

    Three readings of the same quantity:

    * ``sampled`` (only where the ``hwm`` reset is not permitted): a daemon thread reads RSS
      from ``/proc/self/statm`` every ``interval`` seconds; peak during the block minus the
      RSS just before it. Can miss a spike shorter than the interval (or made while the GIL
      is held for longer).
    * ``hwm``: the kernel's exact peak (``VmHWM``), reset to the current RSS just before the
      block by writing ``5`` to ``/proc/self/clear_refs``; after minus before. ``None`` where
      the reset is not permitted.
    * ``ru_maxrss``: the delta of ``getrusage(RUSAGE_SELF).ru_maxrss`` over the block. Linux
      derives it from the same mark, so after a successful reset it is a second reading of the
      exact peak; without the reset it is a lower bound (zero if the block stays under an
      earlier peak of the process).

    ``peak_added`` is the larger of ``sampled`` and ``hwm``.

    The sampling thread runs only where the reset is not permitted (``sampled`` is then
    the fallback; otherwise it is ``None``): waking every millisecond, it competes for the
    GIL and a core with the code being timed, which slowed a 0.5 s multithreaded call
    measurably on 2 cores.

    ``anonymous=True`` (for code that reads and writes memory-mapped files, whose pages count
    in the RSS but are the page cache's to drop): the thread always runs and samples
    ``RssAnon`` (``/proc/self/status``) instead, and ``peak_added`` is the peak of the
    anonymous memory minus its level just before the block (``hwm`` and ``ru_maxrss`` still
    include the file pages).
    """

    def __init__(self, interval: float = 0.001, *, anonymous: bool = False) -> None:
        self.interval = interval
        self.anonymous = anonymous
        self._stop = threading.Event()
        self._peak = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _read(self) -> int:
        if self.anonymous:
            return (_status_kb("RssAnon") or 0) * 1024
        return rss_bytes()

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = self._read()
            if rss > self._peak:
                self._peak = rss
            time.sleep(self.interval)

    def __enter__(self) -> PeakRSS:
        gc.collect()
        self.baseline = self._read()
        self.rss_baseline = rss_bytes() if self.anonymous else self.baseline
        self._peak = self.baseline
        self.hwm_reset = _reset_hwm()
        # Read after the reset, which also lowers ru_maxrss (Linux takes it from the same mark).
        self.maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
        if self.anonymous or not self.hwm_reset:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        final = self._read()
        hwm_kb = _status_kb("VmHWM") if self.hwm_reset else None
        if self._thread.is_alive():  # sampling: anonymous memory, or no resettable mark
            self._stop.set()
            self._thread.join()
            self._peak = max(self._peak, final)
            self.sampled = (self._peak - self.baseline) / _MB
        else:
            self.sampled = None
        self.hwm = None if hwm_kb is None else (hwm_kb * 1024 - self.rss_baseline) / _MB
        maxrss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        self.ru_maxrss = (maxrss_after - self.maxrss_before) / 1024
        if self.anonymous:
            self.peak_added = self.sampled
        else:
            self.peak_added = max(
                (final - self.baseline) / _MB,
                self.sampled if self.sampled is not None else 0.0,
                self.hwm if self.hwm is not None else 0.0,
            )
        self.baseline_mb = self.baseline / _MB


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

    _RESULTS.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=".lazy-", dir=_RESULTS))
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


def _load_case(path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with np.load(path) as saved:
        return (
            np.ascontiguousarray(saved["data"], dtype=np.float32),
            np.asarray(saved["tilts"], dtype=float),
            np.asarray(saved["true_shifts"], dtype=float),
        )


def _error_record(exc: BaseException) -> dict[str, Any]:
    return {
        "error": f"{type(exc).__name__}: {exc}"[:500],
        "error_type": type(exc).__name__,
        "traceback": "".join(traceback.format_exception(exc))[-4000:],
    }


def _warmup_data(data: np.ndarray) -> np.ndarray:
    """Up to 15 evenly spread projections, central crop of at most 96 x 96 px (a copy)."""
    n, ny, nx = data.shape
    keep = np.unique(np.linspace(0, n - 1, min(n, 15)).round().astype(int))
    cy, cx = max(0, (ny - 96) // 2), max(0, (nx - 96) // 2)
    return np.ascontiguousarray(data[keep, cy : cy + 96, cx : cx + 96])


def _warmup_tilts(tilts: np.ndarray) -> np.ndarray:
    n = len(tilts)
    return tilts[np.unique(np.linspace(0, n - 1, min(n, 15)).round().astype(int))]


def run_align(impl: str, case: str, method: str, *, warmup: bool = True) -> dict[str, Any]:
    data, tilts, _ = _load_case(case)
    record: dict[str, Any] = {
        "impl": impl,
        "method": method,
        "case": Path(case).stem,
        "shape": list(data.shape),
        "stack_mb": data.nbytes / _MB,
    }
    try:
        version, make, align = _LOADERS[impl]()
        record["version"] = version
        stack = make(data, tilts)
    except Exception as exc:
        record.update(_error_record(exc))
        return record
    if warmup:
        # Steady state: a small first call pays the lazy imports and one-off set-up (ETSpy
        # imports scikit-image, pystackreg... inside the call) so that neither is charged to
        # the measured call. A failing warm-up is recorded and does not stop the measurement.
        try:
            align(make(_warmup_data(data), _warmup_tilts(tilts)), method)
        except Exception as exc:
            record["warmup_error"] = f"{type(exc).__name__}: {exc}"[:300]
    del data
    shifts, error = None, None
    meter = PeakRSS(anonymous=impl == "tomoalign-lazy")
    with meter:
        t0 = time.perf_counter()
        try:
            shifts = align(stack, method)
        except Exception as exc:  # MemoryError included: record it and go on
            error = exc
        seconds = time.perf_counter() - t0
    record.update(
        seconds=seconds,
        peak_added_mb=meter.peak_added,
        sampled_peak_added_mb=meter.sampled,
        hwm_peak_added_mb=meter.hwm,
        ru_maxrss_added_mb=meter.ru_maxrss,
        baseline_rss_mb=meter.baseline_mb,
    )
    if error is not None:
        record.update(_error_record(error))
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

    data, tilts, _ = _load_case(case)
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
        record.update(_error_record(exc))
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

    import warnings

    warnings.simplefilter("ignore")  # third-party chatter must not end up in the timings' logs
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
    record["python"] = sys.version.split()[0]
    record["numpy"] = np.__version__
    record["mem_limit_gb"] = args.mem_limit_gb
    Path(args.out).write_text(json.dumps(record))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
