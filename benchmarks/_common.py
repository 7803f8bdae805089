"""Helpers shared by the benchmark scripts: paths, measuring, case files, records, reports.

Workers (``_worker.py``, ``_tilt_worker.py``) import this file in the ETSpy venvs too, which
do not have tomoalign: it imports only the standard library and NumPy.

Measuring
    :func:`set_memory_limit` (``RLIMIT_AS``), :class:`PeakRSS` (peak resident memory a block
    adds), :func:`cpu_seconds` (this process and its reaped children), :func:`timed` (one call:
    result or error, wall and optionally CPU seconds, peak memory).
Case files
    ``results/cases/*.npz``: :func:`cached` (a saved case whose recipe is unchanged),
    :func:`save_npz` (written atomically), :func:`load_case` (the arrays a worker needs),
    :func:`spread` and :func:`central_crop` (the small warm-up copies).
Worker records
    :func:`error_record`, :func:`short_error`, :func:`quiet`, :func:`write_record`.
Reports
    :func:`machine`, :func:`machine_line`, :func:`write_report` (and, in ``_runner.py``,
    ``warn_missing``, ``short``, ``run_worker``).
"""

from __future__ import annotations

import datetime
import gc
import json
import os
import platform
import resource
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
CASE_DIR = RESULTS / "cases"
MB = 2**20
_PAGE = os.sysconf("SC_PAGE_SIZE")


# --- measuring ---------------------------------------------------------------------------------


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
            self.sampled = (self._peak - self.baseline) / MB
        else:
            self.sampled = None
        self.hwm = None if hwm_kb is None else (hwm_kb * 1024 - self.rss_baseline) / MB
        maxrss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        self.ru_maxrss = (maxrss_after - self.maxrss_before) / 1024
        if self.anonymous:
            self.peak_added = self.sampled
        else:
            self.peak_added = max(
                (final - self.baseline) / MB,
                self.sampled if self.sampled is not None else 0.0,
                self.hwm if self.hwm is not None else 0.0,
            )
        self.baseline_mb = self.baseline / MB


def cpu_seconds() -> dict[str, float]:
    """User + system CPU seconds so far of this process (``self``) and its reaped children."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "self": me.ru_utime + me.ru_stime,
        "children": kids.ru_utime + kids.ru_stime,
    }


def timed(
    func: Callable[[], Any], *, anonymous: bool = False, cpu: bool = False
) -> tuple[Any, BaseException | None, dict[str, Any], PeakRSS]:
    """Run ``func()`` once under :class:`PeakRSS`: ``(result, error, stats, meter)``.

    An exception (``MemoryError`` included) is returned as ``error``, not raised. ``stats``:
    ``seconds`` (``time.perf_counter``); with ``cpu``, ``cpu_self_seconds``,
    ``cpu_children_seconds``, ``cpu_seconds`` and ``cores_used`` (CPU / wall); then
    ``peak_added_mb``, ``sampled_peak_added_mb``, ``hwm_peak_added_mb``.
    """
    result, error = None, None
    meter = PeakRSS(anonymous=anonymous)
    with meter:
        cpu0 = cpu_seconds() if cpu else None
        t0 = time.perf_counter()
        try:
            result = func()
        except Exception as exc:  # MemoryError included: record it and go on
            error = exc
        seconds = time.perf_counter() - t0
        cpu1 = cpu_seconds() if cpu else None
    stats: dict[str, Any] = {"seconds": seconds}
    if cpu0 is not None and cpu1 is not None:
        cpu_self = cpu1["self"] - cpu0["self"]
        cpu_children = cpu1["children"] - cpu0["children"]
        stats.update(
            cpu_self_seconds=cpu_self,
            cpu_children_seconds=cpu_children,
            cpu_seconds=cpu_self + cpu_children,
            cores_used=(cpu_self + cpu_children) / seconds if seconds > 0 else None,
        )
    stats.update(
        peak_added_mb=meter.peak_added,
        sampled_peak_added_mb=meter.sampled,
        hwm_peak_added_mb=meter.hwm,
    )
    return result, error, stats, meter


# --- case files --------------------------------------------------------------------------------


def cached(path: Path, spec_json: str) -> bool:
    """Whether ``path`` exists and was saved from the recipe ``spec_json``."""
    if not path.exists():
        return False
    with np.load(path) as saved:
        return "spec" in saved and str(saved["spec"]) == spec_json


def save_npz(path: Path, **arrays: Any) -> None:
    """``np.savez`` (uncompressed) to a temporary file beside ``path``, then renamed onto it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
    try:
        # Uncompressed: numpy reads it back in chunks, without a second full copy.
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_case(path: str | Path, *, truth: bool = True) -> tuple[np.ndarray, ...]:
    """``(data float32 C-contiguous, tilts float64[, true_shifts float64])`` of a case file."""
    with np.load(path) as saved:
        arrays = (
            np.ascontiguousarray(saved["data"], dtype=np.float32),
            np.asarray(saved["tilts"], dtype=float),
        )
        if truth:
            arrays += (np.asarray(saved["true_shifts"], dtype=float),)
    return arrays


def spread(n: int, count: int = 15) -> np.ndarray:
    """Indices of up to ``count`` of ``n`` projections, evenly spread, first and last kept."""
    return np.unique(np.linspace(0, n - 1, min(n, count)).round().astype(int))


def central_crop(data: np.ndarray, size: int = 96, index: Any = slice(None)) -> np.ndarray:
    """The central ``size`` x ``size`` px (at most) of projections ``index``, a contiguous copy."""
    _n, ny, nx = data.shape
    cy, cx = max(0, (ny - size) // 2), max(0, (nx - size) // 2)
    return np.ascontiguousarray(data[index, cy : cy + size, cx : cx + size])


# --- worker records ----------------------------------------------------------------------------


def error_record(exc: BaseException) -> dict[str, Any]:
    """``error`` (type: message), ``error_type`` and the end of the traceback."""
    return {
        "error": f"{type(exc).__name__}: {exc}"[:500],
        "error_type": type(exc).__name__,
        "traceback": "".join(traceback.format_exception(exc))[-4000:],
    }


def short_error(exc: BaseException, limit: int = 300) -> str:
    """``type: message`` cut to ``limit`` characters (a failed warm-up)."""
    return f"{type(exc).__name__}: {exc}"[:limit]


def quiet() -> None:
    """Ignore every warning: third-party chatter must not end up in the timings' logs."""
    import warnings

    warnings.simplefilter("ignore")


def write_record(record: dict[str, Any], out: str | Path, mem_limit_gb: float) -> None:
    """Add the interpreter, NumPy and the memory limit to ``record``; write it as JSON."""
    record["python"] = sys.version.split()[0]
    record["numpy"] = np.__version__
    record["mem_limit_gb"] = mem_limit_gb
    Path(out).write_text(json.dumps(record))


# --- reports -----------------------------------------------------------------------------------


def machine(argv: list[str] | None, *, load_avg: bool = False) -> dict[str, Any]:
    """Date, options, host, cores (and the load average now), memory, platform, Python."""
    meta: dict[str, Any] = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "argv": sys.argv[1:] if argv is None else argv,
        "host": platform.node(),
        "cpu_count": os.cpu_count(),
    }
    if load_avg:
        meta["load_avg_at_end"] = os.getloadavg()
    meta.update(
        memory_gb=os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30,
        platform=platform.platform(),
        python=platform.python_version(),
    )
    return meta


def machine_line(meta: Mapping[str, Any], labels: Mapping[str, str]) -> str:
    """The report's first line: machine, versions of the implementations run, options."""
    return (
        f"{meta['date']}, {meta['cpu_count']} cores, {meta['memory_gb']:.0f} GiB, "
        f"Python {meta['python']}; "
        + ", ".join(f"{labels[i]} {v}" for i, v in meta["versions"].items() if v)
        + f". Options: `{' '.join(meta['argv']) or '(defaults)'}`."
    )


def write_report(folder: Path, stem: str, markdown: str, payload: Any) -> tuple[Path, Path]:
    """Write ``folder/stem.md`` and ``folder/stem.json`` (indent 1); return both paths."""
    folder.mkdir(parents=True, exist_ok=True)
    md, js = folder / f"{stem}.md", folder / f"{stem}.json"
    md.write_text(markdown)
    js.write_text(json.dumps(payload, indent=1, default=str))
    return md, js
