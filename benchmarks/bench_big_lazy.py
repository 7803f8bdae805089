"""Lazy alignment of a series larger than half the machine's memory, MRC file to MRC file.

``python benchmarks/bench_big_lazy.py --folder /tmp/big --shape 200 4096 4096 --methods PC
COM COM-CL`` writes a misaligned phantom series of that shape (float32 MRC, written a
projection at a time, never held whole) with its ``.rawtlt``, then for each method runs one
fresh process that loads it with ``tomoalign.load(path, lazy=True)``, aligns it with
``align_stack`` and saves the aligned series to another MRC file, and reports the seconds of
align + save, the peak anonymous memory the call added (``RssAnon``, as ``tomoalign-lazy`` in
``_worker.py``: file pages of the memory maps are not counted), and the RMS error against the
applied shifts. ``--keep`` keeps the files (default: removed at the end).

The phantom: ``tomoalign.datasets.phantom_series`` at a quarter of the size, each projection
moved by a quarter of its jitter (cubic spline) and zoomed 4x (linear), so the applied shift
is known at full size; the jitter is +-5 px at full size.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import MB, PeakRSS


def write_series(folder: Path, shape: tuple[int, int, int], *, factor: int = 4) -> Path:
    """Write the misaligned phantom to ``folder/big.mrc`` (+ ``big.rawtlt``, ``truth.npy``)."""
    import mrcfile
    from scipy import ndimage

    from tomoalign import datasets

    n, ny, nx = shape
    tilts = np.linspace(-60.0, 60.0, n)
    small = datasets.phantom_series(shape=(ny // factor, nx // factor), tilts=tilts)
    rng = np.random.default_rng(1)
    true = rng.uniform(-5.0, 5.0, size=(n, 2))  # applied misalignment at full size, px
    path = folder / "big.mrc"
    with mrcfile.new_mmap(path, shape=shape, mrc_mode=2, overwrite=True) as mrc:
        for i in range(n):
            moved = ndimage.shift(small.data[i].astype(np.float64), true[i] / factor, order=3)
            full = ndimage.zoom(moved, factor, order=1, grid_mode=True, mode="nearest")
            mrc.data[i] = full[:ny, :nx].astype(np.float32)
            if i % 16 == 15:
                mrc.flush()
    np.savetxt(folder / "big.rawtlt", tilts, fmt="%.4f")
    np.save(folder / "truth.npy", true)
    return path


def run_one(folder: Path, method: str) -> dict:
    """One method in this process: load lazily, align, save; time and peak RssAnon."""
    import tomoalign
    from tomoalign import datasets
    from tomoalign.metrics import rms_error

    source = folder / "big.mrc"
    target = folder / f"aligned-{method}.mrc"
    target.unlink(missing_ok=True)
    tilts = np.loadtxt(folder / "big.rawtlt")
    stack = tomoalign.load(source, tilts=tilts, lazy=True)
    # warm-up, as _worker.py does: lazy imports and one-off set-up outside the measurement
    small = datasets.phantom_series(shape=(96, 96), tilts=np.linspace(-60, 60, 15)).as_lazy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tomoalign.align_stack(small, method).save(folder / "warmup.mrc", overwrite=True)
    meter = PeakRSS(anonymous=True)
    with meter:
        t0 = time.perf_counter()
        aligned = tomoalign.align_stack(stack, method)
        t1 = time.perf_counter()
        aligned.save(target)
        t2 = time.perf_counter()
    found = aligned.shifts - stack.shifts
    true = np.load(folder / "truth.npy")
    err = rms_error(found, true, tilts)
    target.unlink(missing_ok=True)
    target.with_suffix(".rawtlt").unlink(missing_ok=True)
    return {
        "method": method,
        "shape": list(stack.data.shape),
        "file_mb": source.stat().st_size / MB,
        "align_s": t1 - t0,
        "save_s": t2 - t1,
        "seconds": t2 - t0,
        "peak_anon_added_mb": meter.peak_added,
        "baseline_anon_mb": meter.baseline_mb,
        "rms_y": float(err[0]),
        "rms_x": float(err[1]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=Path("/tmp/tomoalign-big"))
    parser.add_argument("--shape", type=int, nargs=3, default=(200, 4096, 4096))
    parser.add_argument("--methods", nargs="+", default=["PC", "COM", "COM-CL"])
    parser.add_argument("--keep", action="store_true", help="keep the files afterwards")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one method
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(run_one(args.folder, args.one)))
        return 0
    args.folder.mkdir(parents=True, exist_ok=True)
    try:
        if not (args.folder / "big.mrc").exists():
            t0 = time.perf_counter()
            write_series(args.folder, tuple(args.shape))
            print(f"wrote {tuple(args.shape)} in {time.perf_counter() - t0:.0f} s", flush=True)
        for method in args.methods:
            cmd = [sys.executable, __file__, "--folder", str(args.folder), "--one", method]
            out = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if out.returncode:
                print(f"{method}: failed ({out.returncode}): {out.stderr[-2000:]}", flush=True)
                continue
            record = json.loads(out.stdout.strip().splitlines()[-1])
            print(json.dumps(record), flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(args.folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
