"""Side-by-side alignment benchmark: tomoalign against ETSpy 1.3.0 and 1.1.1.

Run with tomoalign's venv (``make bench`` or ``.venv/bin/python benchmarks/bench_align.py``);
the ETSpy baselines run in their own venvs (``make bench-venvs``). For every case x method x
implementation, ``_worker.py`` aligns the case ``--repeats`` times, each in a fresh process
under a memory limit and a timeout; this script scores the found shifts against the truth with
``tomoalign.metrics.rms_error`` and writes ``benchmarks/results/align.md`` and ``align.json``.
See ``benchmarks/README.md`` for what is measured and how.

Examples::

    .venv/bin/python benchmarks/bench_align.py                      # everything (long)
    .venv/bin/python benchmarks/bench_align.py --small --repeats 1  # a smoke run in seconds
    .venv/bin/python benchmarks/bench_align.py --cases noisy --methods PC --impls tomoalign etspy130
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import HERE, RESULTS, machine, machine_line, write_report
from _runner import available, run_worker, short, warn_missing
from cases import CASES, ensure_case, get_spec

WORKER = HERE / "_worker.py"

METHODS = ("PC", "COM", "COM-CL", "StackReg")
IMPLS = ("tomoalign", "tomoalign-lazy", "etspy130", "etspy111")
LABEL = {
    "tomoalign": "tomoalign",
    "tomoalign-lazy": "tomoalign, lazy (MRC in, MRC out)",
    "etspy130": "ETSpy 1.3.0",
    "etspy111": "ETSpy 1.1.1",
}
#: Notes on rows whose measurement differs from the plain align call.
IMPL_NOTES = {
    "tomoalign-lazy": "memory-mapped MRC in, aligned series streamed to MRC; time includes the "
    "write; peak: anonymous memory",
}
BASELINE = "etspy130"


def check_signs(impls: list[str], *, timeout: float, mem_limit_gb: float) -> dict[str, dict]:
    """Re-check each implementation's shift sign on a tiny known case (``--mode sign``)."""
    checks = {}
    for impl in impls:
        if not available(impl):
            continue
        rec = run_worker(
            WORKER, impl, ["--mode", "sign"], timeout=timeout, mem_limit_gb=mem_limit_gb
        )
        checks[impl] = rec
        if rec.get("error"):
            print(f"[sign] {LABEL[impl]}: check failed: {rec['error']}", file=sys.stderr)
        elif not rec.get("agrees"):
            print(
                f"[sign] WARNING {LABEL[impl]}: measured sign {rec.get('measured_sign')} differs "
                f"from the assumed {rec.get('assumed_sign')}; shifts are corrected by the measured "
                "sign where it is decisive",
                file=sys.stderr,
            )
    return checks


def _sign_correction(check: dict | None) -> float:
    if not check or check.get("error") or check.get("agrees"):
        return 1.0
    measured = check.get("measured_sign")
    return float(measured * check["assumed_sign"]) if measured else 1.0


def summarise(
    runs: list[dict], *, tilts: np.ndarray, true_shifts: np.ndarray, sign: float
) -> dict[str, Any]:
    """Median seconds, max peak memory, accuracy of the first successful run, failures."""
    from tomoalign.metrics import rms_error

    ok = [r for r in runs if not r.get("error")]
    failed = [r for r in runs if r.get("error")]
    out: dict[str, Any] = {"n_runs": len(runs), "n_ok": len(ok)}
    if ok:
        out["seconds"] = float(np.median([r["seconds"] for r in ok]))
        out["peak_added_mb"] = float(max(r["peak_added_mb"] for r in ok))
        found = np.asarray(ok[0]["shifts"], dtype=float) * sign
        try:
            rms_y, rms_x = rms_error(found, true_shifts, tilts)
            out["rms_y"], out["rms_x"] = float(rms_y), float(rms_x)
        except Exception as exc:
            out["score_error"] = f"{type(exc).__name__}: {exc}"
        spread = [np.abs(np.asarray(r["shifts"]) - np.asarray(ok[0]["shifts"])).max() for r in ok]
        out["max_shift_spread_between_repeats"] = float(max(spread))
    elif failed and "peak_added_mb" in failed[0]:
        out["failed_after_seconds"] = failed[0].get("seconds")
        out["failed_peak_added_mb"] = failed[0].get("peak_added_mb")
    if failed:
        out["error"] = failed[0]["error"]
    return out


def _fmt_row(method: str, impl: str, summ: dict, base: dict | None, stack_mb: float) -> str:
    notes = []
    if "seconds" in summ:
        secs = f"{summ['seconds']:.3g}"
        if impl == BASELINE:
            speed = "1.00x"
        elif base and "seconds" in base:
            speed = f"{base['seconds'] / summ['seconds']:.2f}x"
        else:
            speed = "—"
        mem = summ["peak_added_mb"]
        peak = f"{mem:.0f} ({mem / stack_mb:.2f}x)"
        rms_y = f"{summ['rms_y']:.3f}" if "rms_y" in summ else "—"
        rms_x = f"{summ['rms_x']:.3f}" if "rms_x" in summ else "—"
        if summ.get("score_error"):
            notes.append(short(summ["score_error"]))
        if summ["n_ok"] < summ["n_runs"]:
            notes.append(f"{summ['n_runs'] - summ['n_ok']}/{summ['n_runs']} runs failed")
    else:
        secs = speed = peak = rms_y = rms_x = "—"
        if summ.get("failed_peak_added_mb") is not None:
            fmb = summ["failed_peak_added_mb"]
            notes.append(f"failed after {summ['failed_after_seconds']:.3g} s, {fmb:.0f} MB added")
    if summ.get("error"):
        notes.append(short(summ["error"]))
    if summ.get("note"):
        notes.append(summ["note"])
    if impl in IMPL_NOTES:
        notes.append(IMPL_NOTES[impl])
    return (
        f"| {method} | {LABEL[impl]} | {secs} | {speed} | {peak} | {rms_y} | {rms_x} | "
        f"{'; '.join(notes)} |"
    )


TABLE_HEAD = (
    "| method | impl | seconds (median) | speed-up vs ETSpy 1.3.0 | peak added MB (x stack) "
    "| RMS y (px) | RMS x (px) | note |\n"
    "|---|---|---|---|---|---|---|---|"
)


def case_markdown(name: str, result: dict) -> str:
    spec = result["spec_text"]
    lines = [f"### {name}: {spec}", ""]
    if result.get("memory_only"):
        lines += ["Memory case: the point is the peak memory column.", ""]
    lines.append(TABLE_HEAD)
    stack_mb = result["stack_mb"]
    for method, by_impl in result["summary"].items():
        base = by_impl.get(BASELINE)
        for impl, summ in by_impl.items():
            lines.append(_fmt_row(method, impl, summ, base, stack_mb))
    floor = result.get("floor")
    if floor:
        lines.append("")
        if floor.get("floor_seconds") is None:
            lines.append(f"PC FFT floor: not measured ({short(floor.get('error', '?'))}).")
        elif floor.get("estimate_seconds") is not None:
            lines.append(
                f"PC FFT floor ({floor['workers']} workers): {floor['floor_seconds']:.3g} s; "
                f"tomoalign `estimate_shifts(..., 'PC')` alone: {floor['estimate_seconds']:.3g} s "
                f"= **{floor['ratio']:.2f}x the floor**."
            )
        else:
            lines.append(
                f"PC FFT floor ({floor['workers']} workers): {floor['floor_seconds']:.3g} s; "
                f"tomoalign estimate failed: {short(floor.get('error', '?'))}."
            )
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--impls", nargs="+", default=list(IMPLS), choices=IMPLS)
    parser.add_argument("--repeats", type=int, default=3, help="runs per job (default 3)")
    parser.add_argument("--small", action="store_true", help="128 x 128 cases, for smoke runs")
    parser.add_argument("--floor-repeats", type=int, default=5, help="FFT floor runs (median)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per worker")
    parser.add_argument("--mem-limit-gb", type=float, default=16, help="RLIMIT_AS per worker")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for align.md/.json")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.floor_repeats < 1:
        parser.error("--repeats and --floor-repeats must be at least 1")
    guard = {"timeout": args.timeout, "mem_limit_gb": args.mem_limit_gb}

    missing = warn_missing(args.impls, LABEL)
    signs = check_signs(args.impls, **guard)

    results: dict[str, Any] = {}
    for name in args.cases:
        spec = get_spec(name, small=args.small)
        path = ensure_case(spec)
        with np.load(path) as saved:  # the small arrays only; the stack is read by the workers
            tilts, true_shifts = saved["tilts"], saved["true_shifts"]
        stack_mb = len(tilts) * spec.shape[0] * spec.shape[1] * 4 / 2**20
        repeats = 1 if spec.memory_only else args.repeats
        runs: dict[str, dict[str, list[dict]]] = {
            m: {i: [] for i in args.impls} for m in args.methods
        }
        for method in args.methods:
            for rep in range(repeats):
                for impl in args.impls:  # interleaved, so that load drift hits all alike
                    if impl in missing:
                        continue
                    rec = run_worker(
                        WORKER, impl, ["--case", str(path), "--method", method], **guard
                    )
                    rec["repeat"] = rep
                    runs[method][impl].append(rec)
                    what = (
                        f"error: {short(rec['error'], 120)}"
                        if rec.get("error")
                        else f"{rec['seconds']:.3g} s, +{rec['peak_added_mb']:.0f} MB"
                    )
                    print(
                        f"[bench] {spec.name} {method} {LABEL[impl]} {rep + 1}/{repeats}: {what}",
                        file=sys.stderr,
                    )
        summary: dict[str, dict[str, dict]] = {}
        for method in args.methods:
            summary[method] = {}
            for impl in args.impls:
                if impl in missing:
                    summary[method][impl] = {
                        "n_runs": 0,
                        "n_ok": 0,
                        "note": "not installed: run make bench-venvs",
                    }
                    continue
                sign = _sign_correction(signs.get(impl))
                summ = summarise(
                    runs[method][impl], tilts=tilts, true_shifts=true_shifts, sign=sign
                )
                if sign != 1.0:
                    summ["note"] = "shifts sign-corrected (see sign check)"
                summary[method][impl] = summ
        floor = None
        if "PC" in args.methods and "tomoalign" in args.impls:
            floor = run_worker(
                WORKER,
                "tomoalign",
                ["--mode", "floor", "--case", str(path), "--repeats", str(args.floor_repeats)],
                **guard,
            )
            print(f"[bench] {spec.name} FFT floor: {floor}", file=sys.stderr)
        results[spec.name] = {
            "spec": {k: v for k, v in vars(spec).items() if k != "tilts"},
            "spec_text": spec.describe(),
            "memory_only": spec.memory_only,
            "stack_mb": stack_mb,
            "summary": summary,
            "floor": floor,
            "runs": runs,
        }
        print("\n" + case_markdown(spec.name, results[spec.name]))

    meta = machine(argv)
    meta["versions"] = {
        impl: next(
            (
                r["version"]
                for m in args.methods
                for c in results.values()
                for r in c["runs"][m].get(impl, [])
                if r.get("version")
            ),
            None,
        )
        for impl in args.impls
    }
    header = [
        "# Alignment benchmark",
        "",
        machine_line(meta, LABEL),
        "",
        "Seconds: median over repeats of the whole align call in a fresh process (after a small "
        "warm-up call). Peak added MB: the most over repeats of the resident memory the call "
        "added (x the float32 stack size). RMS: `tomoalign.metrics.rms_error` of the found "
        "shifts against the truth, rigid freedom removed.",
        "",
    ]
    sign_lines = []
    for impl, check in signs.items():
        if check.get("error"):
            sign_lines.append(f"* {LABEL[impl]}: sign check failed ({short(check['error'])})")
        else:
            sign_lines.append(
                f"* {LABEL[impl]}: measured shift sign {check['measured_sign']} vs tomoalign's "
                f"(assumed {check['assumed_sign']}; {'agrees' if check['agrees'] else 'DIFFERS'})"
            )
    markdown = "\n".join(
        header
        + ["Sign check:", "", *sign_lines, ""]
        + [case_markdown(name, res) for name, res in results.items()]
    )
    md, js = write_report(
        args.out, "align", markdown, {"meta": meta, "sign_checks": signs, "cases": results}
    )
    print(f"[bench] wrote {md} and {js}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
