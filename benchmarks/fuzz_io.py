"""Fuzz the readers: 2,000 seeded mutations of small MRC, ``.rawtlt`` and ``.mdoc`` files.

Each case loads the mutated file eagerly and lazily (computing the lazy one) in one worker
process per batch; a case passes when it raises only a documented exception (``ValueError``
or ``OSError``) with a one-line message naming the file, within 5 s, and grows the worker's
peak RSS by less than 1 GB. A crashed worker (a signal, e.g. SIGSEGV or SIGBUS) is reported
with its batch. The mutations are those of ``tests/test_io/_io_fuzz.py`` (the suite runs the
first 200 seeds).

Usage::

    .venv/bin/python benchmarks/fuzz_io.py [--cases 2000] [--batch 250] [--first-seed 0]

Prints a summary and writes ``benchmarks/results/fuzz_io.json``.
"""

from __future__ import annotations

import argparse
import collections
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS, ROOT

FUZZ = ROOT / "tests" / "test_io"

_WORKER = """
import json, sys, tempfile
from pathlib import Path
sys.path.insert(0, {fuzz!r})
from _io_fuzz import base_files, run_case
first, count = int(sys.argv[1]), int(sys.argv[2])
with tempfile.TemporaryDirectory() as tmp:
    folder = Path(tmp)
    base = base_files(folder)
    for seed in range(first, first + count):
        o = run_case(folder, base, seed)
        print(json.dumps(o.__dict__), flush=True)
"""


def run_batch(first: int, count: int, timeout: float) -> tuple[list[dict], str]:
    """Run seeds ``first .. first + count - 1`` in a fresh worker; return outcomes, crash."""
    code = _WORKER.format(fuzz=str(FUZZ))
    try:
        done = subprocess.run(
            [sys.executable, "-c", code, str(first), str(count)],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        outcomes = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        return outcomes, f"batch from seed {first} timed out after {timeout:.0f} s"
    outcomes = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    crash = ""
    if done.returncode:
        seed = first + len(outcomes)
        crash = f"worker exited {done.returncode} at seed {seed}: {done.stderr[-500:]}"
    return outcomes, crash


def main(argv: list[str] | None = None) -> int:
    """Run the fuzz campaign; return 0 when every case passed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=250)
    parser.add_argument("--first-seed", type=int, default=0)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    outcomes, crashes = [], []
    for first in range(args.first_seed, args.first_seed + args.cases, args.batch):
        count = min(args.batch, args.first_seed + args.cases - first)
        got, crash = run_batch(first, count, timeout=count * 10.0)
        outcomes += got
        if crash:
            crashes.append(crash)
        print(f"seeds {first}..{first + count - 1}: {len(got)} run", file=sys.stderr)
    results = collections.Counter(o["result"] for o in outcomes)
    undocumented = [o for o in outcomes if not o["documented"]]
    slow = [o for o in outcomes if o["seconds"] > 5.0]
    heavy = [o for o in outcomes if o["rss_growth_mb"] > 1024]
    summary = {
        "cases": len(outcomes),
        "results": dict(results),
        "undocumented": len(undocumented),
        "crashes": crashes,
        "slower_than_5s": len(slow),
        "rss_growth_over_1GB": len(heavy),
        "max_seconds": max((o["seconds"] for o in outcomes), default=0.0),
        "max_rss_growth_mb": max((o["rss_growth_mb"] for o in outcomes), default=0.0),
        "wall_seconds": time.perf_counter() - start,
        "examples": [
            f"{o['case']}: {o['result']}: {o['detail'][:300]}"
            for o in (undocumented + slow + heavy)[:10]
        ],
    }
    out = RESULTS / "fuzz_io.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    ok = not (undocumented or crashes or slow or heavy) and len(outcomes) == args.cases
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
