"""Kill a 1 GB save at random points, and fill a small disk: no partial output may remain.

Part 1 saves a lazy 1 GiB float32 series `(256, 1024, 1024)` to MRC in a worker process:
once uninterrupted (timed), then ``--kills`` times killed with SIGKILL at a random point of the
write. After each kill there must be no ``big.mrc`` (or a complete one, when the save won the
race) and no ``big.rawtlt``; killed runs leave their temporary, which the next save into the
folder must remove.

Part 2 (root only) mounts a small tmpfs (``--disk-mb``, default 64) and saves into it, each in
its own worker: the lazy 1 GiB series and an eager 100 MB one (random, so that HSPY's
gzip cannot shrink it) as MRC, and the eager one as
TIFF and HSPY. Each must fail with one ``OSError`` line naming the file and leave the folder
empty.

Usage::

    sudo .venv/bin/python benchmarks/kill_save.py [--folder /tmp] [--kills 10] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tomoalign.formats._atomic import TEMPORARY_PATTERN

_SAVER = """
import sys, warnings
warnings.simplefilter("ignore")
import numpy as np, dask.array as da, tomoalign
path, n, lazy = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "lazy"
if lazy:
    data = da.ones((n, 1024, 1024), dtype=np.float32, chunks=(16, -1, -1))
    stack = tomoalign.LazyTomoStack(data, tilts=np.linspace(-60, 60, n))
else:
    data = np.random.default_rng(0).random((n, 1024, 1024), dtype=np.float32)
    stack = tomoalign.TomoStack(data, tilts=np.linspace(-60, 60, n))
try:
    stack.save(path)
except OSError as exc:
    print(f"{type(exc).__name__} errno={exc.errno}: {exc}", flush=True)
    sys.exit(3)
print("saved", flush=True)
"""


def _temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if TEMPORARY_PATTERN.match(p.name)]


def _start(path: Path, n: int, lazy: bool) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", _SAVER, str(path), str(n), "lazy" if lazy else "eager"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait(proc: subprocess.Popen) -> tuple[int, float]:
    """Exit status and peak RSS (MB) of a worker."""
    if proc.returncode is not None:  # already reaped by poll()
        return proc.returncode, float("nan")
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    except ChildProcessError:
        return proc.wait(), float("nan")
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_maxrss / 1024


def kill_runs(folder: Path, kills: int, seed: int, n: int = 256) -> dict:
    """Part 1: one timed save, then ``kills`` saves killed at random points of the write."""
    target = folder / "big.mrc"
    expected = 1024 + n * 1024 * 1024 * 4
    start = time.perf_counter()
    proc = _start(target, n, lazy=True)
    code, rss = _wait(proc)
    full_seconds = time.perf_counter() - start
    assert code == 0 and target.stat().st_size == expected, (code, proc.stderr.read())
    target.unlink()
    target.with_suffix(".rawtlt").unlink()
    rng = np.random.default_rng(seed)
    runs = []
    for _ in range(kills):
        proc = _start(target, n, lazy=True)
        t0 = time.perf_counter()
        while proc.poll() is None and not _temporaries(folder):
            time.sleep(0.005)
        began = time.perf_counter() - t0
        delay = float(rng.uniform(0.0, max(full_seconds - began, 0.5)))
        time.sleep(delay)
        tmp_sizes = [p.stat().st_size for p in _temporaries(folder) if p.exists()]
        killed = proc.poll() is None
        if killed:
            proc.send_signal(signal.SIGKILL)
        code, _ = _wait(proc)
        final = target.exists()
        complete = final and target.stat().st_size == expected
        runs.append(
            {
                "killed": killed,
                "seconds_into_write": round(delay, 2),
                "temporary_bytes_at_kill": tmp_sizes,
                "final_exists": final,
                "final_complete": complete,
                "rawtlt_exists": target.with_suffix(".rawtlt").exists(),
                "stale_temporaries": len(_temporaries(folder)),
            }
        )
        if final:
            target.unlink()
            target.with_suffix(".rawtlt").unlink(missing_ok=True)
    stale_before = len(_temporaries(folder))
    proc = _start(folder / "next.mrc", 4, lazy=False)
    _wait(proc)
    stale_after = len(_temporaries(folder))
    partial = [r for r in runs if (r["final_exists"] and not r["final_complete"])]
    partial += [r for r in runs if r["rawtlt_exists"] and not r["final_exists"]]
    return {
        "uninterrupted_save_seconds": round(full_seconds, 2),
        "uninterrupted_save_peak_rss_mb": round(rss, 1),
        "kills": sum(r["killed"] for r in runs),
        "partial_outputs": len(partial),
        "stale_temporaries_before_next_save": stale_before,
        "stale_temporaries_after_next_save": stale_after,
        "runs": runs,
    }


def small_disk(size_mb: int) -> dict:
    """Part 2: saves into a ``size_mb`` tmpfs must fail cleanly."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return {"skipped": "needs root to mount a tmpfs"}
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        disk = Path(tmp) / "disk"
        disk.mkdir()
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(disk)],
            capture_output=True,
            text=True,
        )
        if done.returncode:
            return {"skipped": f"mount failed: {done.stderr.strip()}"}
        try:
            for name, n, lazy in [
                ("lazy_1GiB.mrc", 256, True),
                ("eager_100MB.mrc", 25, False),
                ("eager_100MB.tif", 25, False),
                ("eager_100MB.hspy", 25, False),
            ]:
                proc = _start(disk / name, n, lazy)
                start = time.perf_counter()
                code, rss = _wait(proc)
                out = proc.stdout.read().strip().splitlines()
                err = proc.stderr.read().strip().splitlines()
                results[name] = {
                    "exit_code": code,
                    "seconds": round(time.perf_counter() - start, 2),
                    "peak_rss_mb": round(rss, 1),
                    "message": out[-1] if out else "",
                    "stderr_tail": err[-1][:300] if err else "",
                    "left_in_folder": sorted(p.name for p in disk.iterdir()),
                }
        finally:
            subprocess.run(["umount", str(disk)], check=False)
    return results


def main(argv: list[str] | None = None) -> int:
    """Run both parts and print a JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", default=tempfile.gettempdir())
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--disk-mb", type=int, default=64)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=args.folder) as tmp:
        report = {"kill": kill_runs(Path(tmp), args.kills, args.seed)}
    report["small_disk"] = small_disk(args.disk_mb)
    print(json.dumps(report, indent=2))
    kill = report["kill"]
    ok = kill["partial_outputs"] == 0 and kill["stale_temporaries_after_next_save"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
