"""What touching fresh memory costs on this machine (context for the alignment timings).

A virtual machine may hand memory that a process freed back to its host (virtio-balloon free
page reporting); the next first write to such memory then waits for the host. This script
allocates a float32 array of ``--mb`` MB, writes it once and frees it, first in the fresh
process, then at once again, then after each idle time of ``--idle`` seconds, and prints the
milliseconds of each write (median of ``--repeats`` rounds, each round in a fresh process).

    .venv/bin/python benchmarks/fresh_memory.py --mb 130 --idle 0 1 2 4 8 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np


def _touch_ms(mb: int) -> float:
    t = time.perf_counter()
    a = np.empty(mb * 2**20 // 4, dtype=np.float32)
    a[...] = 1.0
    del a
    return (time.perf_counter() - t) * 1e3


def _one_round(mb: int, idle: list[float]) -> dict[str, float]:
    out = {"first in a fresh process": _touch_ms(mb), "again at once": _touch_ms(mb)}
    for s in idle:
        time.sleep(s)
        out[f"after {s:g} s idle"] = _touch_ms(mb)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=130, help="array size in MB (default 130)")
    parser.add_argument("--idle", type=float, nargs="*", default=[0.5, 1, 2, 4, 8])
    parser.add_argument("--repeats", type=int, default=3, help="rounds, one process each")
    parser.add_argument("--round", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.round:
        print(json.dumps(_one_round(args.mb, args.idle)))
        return 0
    rounds = []
    for _ in range(args.repeats):
        cmd = [sys.executable, __file__, "--round", "--mb", str(args.mb), "--idle"]
        cmd += [str(s) for s in args.idle]
        rounds.append(json.loads(subprocess.run(cmd, check=True, capture_output=True).stdout))
    print(f"| write of {args.mb} MB | ms (median of {args.repeats}) | ms per MB |")
    print("|---|---|---|")
    for key in rounds[0]:
        ms = float(np.median([r[key] for r in rounds]))
        print(f"| {key} | {ms:.0f} | {ms / args.mb:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
