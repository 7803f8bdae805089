"""Tilt-axis estimators and reconstruction: tomoalign against ETSpy 1.3.0 and 1.1.1.

Run with tomoalign's venv (``make bench-tilt`` or ``.venv/bin/python
benchmarks/bench_tilt_axis.py``); the ETSpy baselines run in their own venvs (``make
bench-venvs``). Every job runs in a fresh ``_tilt_worker.py`` process under a memory limit and
a timeout; repeats of the implementations are interleaved; times are medians.

Part 1, tilt axis: on simulated series with a known tilt axis (``phantom_series`` ->
``misalign_tilt_axis(angle, offset)`` -> Gaussian noise), each estimator's ``tilt_align``
returns a corrected copy and the correction it applied (``metadata.Tomography``). That
correction is converted to tomoalign's convention (for ETSpy: :func:`etspy_to_tomoalign`,
derived from ETSpy's ``trans_stack`` and checked pixel by pixel on a noise-free case, see
:func:`check_conversion`) and scored by the RESIDUAL tilt axis of the corrected stack (where
the true axis lies after the correction; 0, 0 is perfect). Part 2, reconstruction: FBP and
SIRT of the same aligned series, seconds and the cores used.

Examples::

    .venv/bin/python benchmarks/bench_tilt_axis.py                       # everything (long)
    .venv/bin/python benchmarks/bench_tilt_axis.py --small --repeats 1   # smoke run
    .venv/bin/python benchmarks/bench_tilt_axis.py --parts tilt --cases full-a3-o5 check
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    CASE_DIR,
    HERE,
    RESULTS,
    cached,
    machine,
    machine_line,
    save_npz,
    write_report,
)
from _runner import available, run_worker, short, warn_missing

WORKER = HERE / "_tilt_worker.py"

IMPLS = ("tomoalign", "etspy130", "etspy111")
LABEL = {"tomoalign": "tomoalign", "etspy130": "ETSpy 1.3.0", "etspy111": "ETSpy 1.1.1"}
#: Estimators per implementation. MaxImage runs with also_shift=True (ETSpy finds no offset
#: without it); MaxImage-angle is MaxImage without it: the angle alone, in a second, where
#: also_shift costs ETSpy minutes (its offset error is then the whole offset).
ESTIMATORS = {
    "tomoalign": ("auto", "CoM", "MaxImage", "MaxImage-angle"),
    "etspy130": ("CoM", "MaxImage", "MaxImage-angle"),
    "etspy111": ("CoM", "MaxImage", "MaxImage-angle"),
}
REFERENCE = ("tomoalign", "auto")  # the summary's ratios are to this estimator
#: Reconstruction variants: (key, implementation, ETSpy ncores; None = ETSpy's default,
#: min(nx, int(0.9 * cpu_count)), which is ONE core on a 2-core machine; 0 = os.cpu_count()).
RECON_VARIANTS = {
    "tomoalign": ("tomoalign", None),
    "etspy130": ("etspy130", None),
    "etspy130-allcores": ("etspy130", 0),
    "etspy111": ("etspy111", None),
}
RECON_DEFAULT = ("tomoalign", "etspy130", "etspy130-allcores")
RECON_BASELINE = "etspy130"


# --- cases -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TiltCase:
    """Recipe of one tilt-axis case: aligned phantom, known raw axis, noise; all seeded."""

    name: str
    shape: tuple[int, int]
    tilt_range: tuple[float, float, float]  # start, stop (inclusive), step; degrees
    angle: float  # true raw tilt-axis angle, degrees (tomoalign.geometry convention)
    offset: float  # true raw tilt-axis row offset at the centre column, px
    noise_level: float = 0.5  # Gaussian, x the data's std; 0 = none
    phantom_seed: int = 0
    noise_seed: int = 2

    @property
    def tilts(self) -> np.ndarray:
        start, stop, step = self.tilt_range
        return np.arange(start, stop + step / 2, step)

    def describe(self) -> str:
        ny, nx = self.shape
        start, stop, step = self.tilt_range
        noise = f"Gaussian noise {self.noise_level:g} x std" if self.noise_level else "no noise"
        return (
            f"{len(self.tilts)} x {ny} x {nx}, tilts {start:g}..{stop:g} step {step:g}, "
            f"true axis angle {self.angle:g} deg, offset {self.offset:g} px, {noise}"
        )


@dataclass(frozen=True)
class ReconCase:
    name: str
    shape: tuple[int, int]
    tilt_range: tuple[float, float, float]
    thickness: int
    phantom_seed: int = 0

    @property
    def tilts(self) -> np.ndarray:
        start, stop, step = self.tilt_range
        return np.arange(start, stop + step / 2, step)

    def describe(self) -> str:
        ny, nx = self.shape
        return f"{len(self.tilts)} x {ny} x {nx}, thickness {self.thickness}, aligned phantom"


FULL, LIMITED = (-70.0, 70.0, 2.0), (-60.0, 60.0, 2.0)
GEOMETRIES = ((3.0, 5.0), (-7.5, -12.0), (9.5, 18.0), (-1.2, -3.0), (10.0, 20.0), (-10.0, -20.0))
SIZE, SMALL_SIZE = 256, 96
#: The issue's accuracy target for the tilt axis (degrees, pixels), counted in the summary.
TARGET_ANGLE, TARGET_OFFSET = 0.2, 0.3


def _name(prefix: str, angle: float, offset: float) -> str:
    return f"{prefix}-a{angle:g}-o{offset:g}"


#: Further phantoms (seeds of ``phantom_series``) for the ``seeds`` group: the same
#: geometries on other objects, to see how the accuracy varies with the specimen.
EXTRA_SEEDS = (3, 5)
#: Further noise draws (``noise_seed``; the cases without a suffix use TiltCase's 2) for the
#: ``noise`` group: every geometry on every phantom again, so that the count of cases within
#: the target is not the luck of one draw.
EXTRA_NOISE_SEEDS = (0, 1)

CASES: dict[str, TiltCase] = {}
for _seed in (0, *EXTRA_SEEDS):
    for _prefix, _range in (("full", FULL), ("limited", LIMITED)):
        for _a, _o in GEOMETRIES:
            for _noise in (None, *EXTRA_NOISE_SEEDS):
                _n = _name(_prefix, _a, _o) + (f"-p{_seed}" if _seed else "")
                _n += f"-n{_noise}" if _noise is not None else ""
                _draw = {} if _noise is None else {"noise_seed": _noise}
                CASES[_n] = TiltCase(_n, (SIZE, SIZE), _range, _a, _o, phantom_seed=_seed, **_draw)
#: The noise-free case on which the ETSpy conversion is verified (not in the summary).
CHECK = TiltCase("check", (SIZE, SIZE), FULL, -7.5, -12.0, noise_level=0.0)
CASES["check"] = CHECK
_NOISE = [n for n in CASES if n.endswith(tuple(f"-n{s}" for s in EXTRA_NOISE_SEEDS))]
_SEED0 = [
    n for n in CASES if n not in _NOISE and not n.endswith(tuple(f"-p{s}" for s in EXTRA_SEEDS))
]
GROUPS = {
    "all": _SEED0,  # phantom seed 0 and the check case
    "full": [n for n in _SEED0 if n.startswith("full")],
    "limited": [n for n in _SEED0 if n.startswith("limited")],
    "seeds": [n for n in CASES if n not in _SEED0 and n not in _NOISE],
    "noise": _NOISE,
}
RECON = ReconCase("recon", (SIZE, SIZE), (-89.0, 89.0, 2.0), thickness=128)  # 90 tilts


def small(case: Any) -> Any:
    """The ``--small`` version: 96 x 96 projections, same tilts and geometry."""
    changes: dict[str, Any] = {"name": f"{case.name}-small", "shape": (SMALL_SIZE, SMALL_SIZE)}
    if isinstance(case, ReconCase):
        changes["thickness"] = case.thickness * SMALL_SIZE // SIZE
    return replace(case, **changes)


def _spec_json(case: Any) -> str:
    return json.dumps({"kind": type(case).__name__, **asdict(case)}, sort_keys=True)


def ensure_case(case: Any) -> Path:
    """Build (or reuse) ``results/cases/tilt-NAME.npz``: ``data`` float32, ``tilts``, ``spec``."""
    from tomoalign import datasets

    path = CASE_DIR / f"tilt-{case.name}.npz"
    if cached(path, _spec_json(case)):
        return path
    t0 = time.perf_counter()
    tilts = case.tilts
    truth = datasets.phantom_series(case.shape, tilts=tilts, seed=case.phantom_seed)
    if isinstance(case, TiltCase):
        from tomoalign import TomoStack
        from tomoalign.geometry import misalign_tilt_axis

        raw = TomoStack(misalign_tilt_axis(truth.data, case.angle, case.offset), tilts=tilts)
        if case.noise_level:
            raw = datasets.add_noise(
                raw, kind="gaussian", level=case.noise_level, seed=case.noise_seed
            )
        data = raw.data
    else:
        data = truth.data
    data = np.ascontiguousarray(data, dtype=np.float32)
    save_npz(path, data=data, tilts=tilts, spec=_spec_json(case))
    print(
        f"[cases] built {path.name}: {case.describe()} ({time.perf_counter() - t0:.1f} s)",
        file=sys.stderr,
    )
    return path


# --- conventions -----------------------------------------------------------------------------


def etspy_to_tomoalign(tiltaxis: float, yshift: float, xshift: float) -> tuple[float, float, float]:
    """The tomoalign correction ``(angle, offset, xshift)`` equal to ETSpy's ``trans_stack``.

    ETSpy (1.1.1 and 1.3.0 alike) corrects with ``trans_stack(xshift, yshift, angle)``: a
    scikit-image ``AffineTransform`` applied with ``warp(image, tform.inverse)``, so the
    content moves by the FORWARD transform. In (x, y) = (col, row) pixel-centre coordinates,
    with the centre ``c = (nx/2, ny/2)`` (not ``(n - 1)/2``) and ``R(t) = [[cos t, -sin t],
    [sin t, cos t]]``::

        p_out = c + R(theta) (p_in - c) + (xshift_e, -yshift_e)

    ``metadata.Tomography`` accumulates ``tiltaxis += angle``, ``yshift += yshift``, ``xshift
    += xshift`` over calls, and a rotation followed by a translation is exactly one
    ``trans_stack`` with both, so the stored totals (from a zero start) describe the whole
    correction. tomoalign's ``correct_tilt_axis(a, o, xshift=x)`` moves the raw point
    ``(row, col) = (y_c + o, x_c)`` on the axis (``y_c = (ny-1)/2``, ``x_c = (nx-1)/2``) to
    ``(y_c, x_c + x)`` and turns the direction ``(sin a, cos a)`` to ``(0, 1)``. Matching
    the linear parts gives ``a = -theta``. Writing ``(x_c, y_c + o) - c = (-1/2, o - 1/2)``
    and asking that its image have row ``y_c = ny/2 - 1/2`` gives
    ``(o - 1/2) cos(theta) = yshift_e - 1/2 + sin(theta)/2``; its column gives ``x``::

        a = -theta
        o = 1/2 + (yshift_e - 1/2 + sin(theta)/2) / cos(theta)
        x = xshift_e + (1 - cos(theta))/2 - (o - 1/2) sin(theta)

    (``theta = 0``: ``o = yshift_e``, ``x = xshift_e``: a positive ETSpy yshift moves the
    content up, as a positive tomoalign offset does.) Verified on the noise-free ``check``
    case by comparing ETSpy's corrected stack with ``correct_tilt_axis(raw, a, o, xshift=x,
    order=1)`` pixel by pixel (:func:`check_conversion`).
    """
    theta = math.radians(tiltaxis)
    cos, sin = math.cos(theta), math.sin(theta)
    offset = 0.5 + (yshift - 0.5 + 0.5 * sin) / cos
    along = xshift + 0.5 * (1.0 - cos) - (offset - 0.5) * sin
    return -tiltaxis, offset, along


def correction_of(impl: str, geometry: dict[str, float]) -> tuple[float, float, float]:
    """The applied correction in tomoalign's ``(angle, offset, xshift)`` convention."""
    values = (geometry["tiltaxis"], geometry["yshift"], geometry["xshift"])
    return values if impl == "tomoalign" else etspy_to_tomoalign(*values)


def residual_axis(
    true_angle: float, true_offset: float, correction: tuple[float, float, float]
) -> tuple[float, float]:
    """Where the true raw axis lies in the corrected stack: ``(angle, offset)``; (0, 0) ideal.

    ``correct_tilt_axis(a_e, o_e, x_e)`` sends raw ``(row, col)`` to ``y' = y_c + v``,
    ``x' = x_c + u + x_e`` with ``(v, u) = [[cos, -sin], [sin, cos]] (row - y_c - o_e,
    col - x_c)`` (``a_e``'s cos, sin). The true axis through ``(y_c + o, x_c)`` with direction
    ``(sin a, cos a)`` becomes the line through ``(y_c + cos(a_e) d, x_c + sin(a_e) d + x_e)``,
    ``d = o - o_e``, with direction ``(sin(a - a_e), cos(a - a_e))``; the residual offset is
    its row at the centre column minus ``y_c``.
    """
    a_e, o_e, x_e = correction
    rad_e = math.radians(a_e)
    res_angle = true_angle - a_e
    d = true_offset - o_e
    res_offset = math.cos(rad_e) * d - math.tan(math.radians(res_angle)) * (
        math.sin(rad_e) * d + x_e
    )
    return res_angle, res_offset


def check_conversion(raw: np.ndarray, corrected: np.ndarray, geometry: dict[str, float]) -> dict:
    """Compare ETSpy's corrected stack with tomoalign's resampling of the converted values.

    The relative RMS difference over the central half of every projection, for the
    conversion of :func:`etspy_to_tomoalign` and for the same with one sign flipped (angle,
    offset); with the right conversion only interpolation differences remain.
    """
    from tomoalign.geometry import correct_tilt_axis

    a, o, x = etspy_to_tomoalign(geometry["tiltaxis"], geometry["yshift"], geometry["xshift"])
    _n, ny, nx = raw.shape
    crop = np.s_[:, ny // 4 : 3 * ny // 4, nx // 4 : 3 * nx // 4]
    ref = corrected[crop].astype(np.float64)
    scale = float(np.sqrt(np.mean(ref**2))) or 1.0

    def rel_rms(angle: float, offset: float, xshift: float) -> float:
        mine = correct_tilt_axis(raw, angle, offset, xshift=xshift, order=1)[crop]
        return float(np.sqrt(np.mean((mine - ref) ** 2)) / scale)

    return {
        "converted": {"angle": a, "offset": o, "xshift": x},
        "rel_rms_converted": rel_rms(a, o, x),
        "rel_rms_angle_sign_flipped": rel_rms(-a, o, x),
        "rel_rms_offset_sign_flipped": rel_rms(a, -o, x),
        "rel_rms_identity": rel_rms(0.0, 0.0, 0.0),
    }


# --- workers ---------------------------------------------------------------------------------


def _too_slow_to_repeat(done: list[dict], limit: float) -> bool:
    """A job whose first run took more than ``limit`` seconds (or failed) runs only once."""
    return bool(done) and (done[0].get("error") is not None or done[0]["seconds"] > limit)


# --- part 1: tilt axis -----------------------------------------------------------------------


def est_label(impl: str, method: str) -> str:
    if method == "MaxImage-angle":
        return f"{LABEL[impl]} MaxImage (angle only)"
    return f"{LABEL[impl]} {method}{'+shift' if method == 'MaxImage' else ''}"


def score_tilt(case: TiltCase, impl: str, runs: list[dict]) -> dict[str, Any]:
    ok = [r for r in runs if not r.get("error")]
    out: dict[str, Any] = {"n_runs": len(runs), "n_ok": len(ok)}
    if not ok:
        out["error"] = runs[0]["error"] if runs else "no runs"
        return out
    out["seconds"] = float(np.median([r["seconds"] for r in ok]))
    out["peak_added_mb"] = float(max(r["peak_added_mb"] for r in ok))
    nonzero = [k for k, v in ok[0].get("input_geometry", {}).items() if v]
    if nonzero:
        out["note"] = f"input metadata not zero: {nonzero}"
    correction = correction_of(impl, ok[0]["geometry"])
    out["stored"] = ok[0]["geometry"]
    out["correction"] = dict(zip(("angle", "offset", "xshift"), correction, strict=True))
    out["angle_err"], out["offset_err"] = residual_axis(case.angle, case.offset, correction)
    spreads = [
        max(abs(r["geometry"][k] - ok[0]["geometry"][k]) for k in ("tiltaxis", "yshift"))
        for r in ok
    ]
    out["max_spread_between_repeats"] = float(max(spreads))
    if len(ok) < len(runs):
        out["error"] = next(r["error"] for r in runs if r.get("error"))
    return out


TILT_HEAD = (
    "| case | estimator | angle err (deg) | offset err (px) | seconds (median) | "
    "correction found (angle, offset) | note |\n|---|---|---|---|---|---|---|"
)


def tilt_rows(case_name: str, by_est: dict[str, dict]) -> list[str]:
    rows = []
    for label, s in by_est.items():
        notes = [short(s["error"])] if s.get("error") else []
        if s.get("note"):
            notes.append(s["note"])
        if "angle_err" in s:
            c = s["correction"]
            rows.append(
                f"| {case_name} | {label} | {s['angle_err']:+.3f} | {s['offset_err']:+.2f} | "
                f"{s['seconds']:.3g} | ({c['angle']:.2f}, {c['offset']:.2f}) | "
                f"{'; '.join(notes)} |"
            )
        else:
            rows.append(f"| {case_name} | {label} | — | — | — | — | {'; '.join(notes)} |")
    return rows


def tilt_summary(results: dict[str, dict], labels: list[str]) -> list[str]:
    """Mean |error| and mean seconds per estimator over the noisy cases; ratios to auto."""
    stats = {}
    for label in labels:
        scored = [
            r["summary"][label]
            for name, r in results.items()
            if not r["check"] and "angle_err" in r["summary"].get(label, {})
        ]
        n_all = sum(1 for r in results.values() if not r["check"] and label in r["summary"])
        if scored:
            stats[label] = {
                "n": len(scored),
                "n_failed": n_all - len(scored),
                "angle": float(np.mean([abs(s["angle_err"]) for s in scored])),
                "offset": float(np.mean([abs(s["offset_err"]) for s in scored])),
                "angle_max": float(np.max([abs(s["angle_err"]) for s in scored])),
                "offset_max": float(np.max([abs(s["offset_err"]) for s in scored])),
                "within": sum(
                    abs(s["angle_err"]) <= TARGET_ANGLE and abs(s["offset_err"]) <= TARGET_OFFSET
                    for s in scored
                ),
                "seconds": float(np.mean([s["seconds"] for s in scored])),
            }
    ref = stats.get(est_label(*REFERENCE))
    lines = [
        "| estimator | cases | mean abs angle err (deg) | x auto | max | mean abs offset err (px) "
        f"| x auto | max | within {TARGET_ANGLE:g} deg and {TARGET_OFFSET:g} px | mean seconds "
        "| x auto |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def ratio(value: float, key: str) -> str:
        return f"{value / ref[key]:.1f}x" if ref and ref[key] > 0 else "—"

    for label, s in stats.items():
        failed = f" ({s['n_failed']} failed)" if s["n_failed"] else ""
        lines.append(
            f"| {label} | {s['n']}{failed} | {s['angle']:.3f} | {ratio(s['angle'], 'angle')} | "
            f"{s['angle_max']:.3f} | {s['offset']:.2f} | {ratio(s['offset'], 'offset')} | "
            f"{s['offset_max']:.2f} | {s['within']} of {s['n']} | {s['seconds']:.3g} | "
            f"{ratio(s['seconds'], 'seconds')} |"
        )
    return lines


def run_tilt_part(args: argparse.Namespace, guard: dict) -> dict[str, Any]:
    estimators = [
        (impl, m)
        for impl in args.impls
        if available(impl)
        for m in ESTIMATORS[impl]
        if m in args.methods
    ]
    results: dict[str, Any] = {}
    for name in args.cases:
        case = small(CASES[name]) if args.small else CASES[name]
        path = ensure_case(case)
        is_check = name == "check"
        runs: dict[str, list[dict]] = {est_label(*e): [] for e in estimators}
        saved: dict[str, Path] = {}
        for rep in range(args.repeats):
            for impl, method in estimators:  # interleaved, so that load drift hits all alike
                label = est_label(impl, method)
                if rep and _too_slow_to_repeat(runs[label], args.single_run_above):
                    continue
                wargs = ["--mode", "tilt", "--case", str(path), "--method", method]
                if is_check and rep == 0:
                    saved[label] = RESULTS / f".corrected-{impl}-{method}.npy"
                    wargs += ["--save-corrected", str(saved[label])]
                rec = run_worker(WORKER, impl, wargs, **guard)
                rec["repeat"] = rep
                runs[label].append(rec)
                what = (
                    f"error: {short(rec['error'], 120)}"
                    if rec.get("error")
                    else f"{rec['seconds']:.3g} s, stored {rec['geometry']}"
                )
                print(
                    f"[tilt] {case.name} {label} {rep + 1}/{args.repeats}: {what}", file=sys.stderr
                )
        summary = {
            est_label(impl, m): score_tilt(case, impl, runs[est_label(impl, m)])
            for impl, m in estimators
        }
        checks = {}
        if is_check:
            with np.load(path) as f:
                raw = np.asarray(f["data"], dtype=np.float32)
            for (impl, _method), label in ((e, est_label(*e)) for e in estimators):
                file = saved.get(label)
                if impl == "tomoalign" or file is None or not file.exists():
                    continue
                ok = [r for r in runs[label] if not r.get("error")]
                if ok:
                    checks[label] = check_conversion(raw, np.load(file), ok[0]["geometry"])
                file.unlink(missing_ok=True)
        results[case.name] = {
            "spec": asdict(case),
            "spec_text": case.describe(),
            "check": is_check,
            "summary": summary,
            "conversion_checks": checks,
            "runs": runs,
        }
        print("\n".join(["", TILT_HEAD, *tilt_rows(case.name, summary)]))
        for label, c in checks.items():
            print(_check_line(label, c))
    return {"estimators": [est_label(*e) for e in estimators], "cases": results}


def _check_line(label: str, c: dict) -> str:
    return (
        f"* {label}: relative RMS difference to `correct_tilt_axis(raw, converted)` "
        f"{c['rel_rms_converted']:.1e}; angle sign flipped {c['rel_rms_angle_sign_flipped']:.3f}"
        f", offset sign flipped {c['rel_rms_offset_sign_flipped']:.3f}, no correction "
        f"{c['rel_rms_identity']:.3f}"
    )


def tilt_markdown(part: dict) -> list[str]:
    lines = [
        "## Tilt-axis estimators",
        "",
        "Errors: the residual tilt axis of the corrected stack each estimator returns (angle "
        "in degrees, row offset at the centre column in px, tomoalign's convention); 0 is "
        "perfect. ETSpy's stored correction is converted with `etspy_to_tomoalign` (see the "
        "README). Seconds: median of the whole `tilt_align` call (estimate + corrected copy). "
        "MaxImage runs with `also_shift=True` (SIRT search of the offset); MaxImage (angle "
        "only) without it, so its offset error is the whole offset.",
        "",
    ]
    for name, r in part["cases"].items():
        lines += [f"### {name}: {r['spec_text']}", "", TILT_HEAD]
        lines += tilt_rows(name, r["summary"])
        if r["conversion_checks"]:
            lines += ["", "Conversion check (noise-free, known geometry):", ""]
            lines += [_check_line(k, c) for k, c in r["conversion_checks"].items()]
        lines.append("")
    lines += [
        "### Summary over the noisy cases",
        "",
        *tilt_summary(part["cases"], part["estimators"]),
        "",
    ]
    return lines


# --- part 2: reconstruction ------------------------------------------------------------------


def run_recon_part(args: argparse.Namespace, guard: dict) -> dict[str, Any]:
    case = small(RECON) if args.small else RECON
    path = ensure_case(case)
    variants = [v for v in args.recon_impls if available(RECON_VARIANTS[v][0])]
    runs: dict[str, dict[str, list[dict]]] = {m: {v: [] for v in variants} for m in args.recon}
    for method in args.recon:
        for rep in range(args.repeats):
            for v in variants:
                impl, ncores = RECON_VARIANTS[v]
                if rep and _too_slow_to_repeat(runs[method][v], args.single_run_above):
                    continue
                wargs = ["--mode", "recon", "--case", str(path), "--method", method]
                wargs += ["--iterations", str(args.iterations), "--thickness", str(case.thickness)]
                if ncores is not None:
                    wargs += ["--ncores", str(ncores or os.cpu_count() or 1)]
                rec = run_worker(WORKER, impl, wargs, **guard)
                rec["repeat"] = rep
                runs[method][v].append(rec)
                what = (
                    f"error: {short(rec['error'], 120)}"
                    if rec.get("error")
                    else f"{rec['seconds']:.3g} s, {rec['cores_used']:.2f} cores"
                )
                print(f"[recon] {method} {v} {rep + 1}/{args.repeats}: {what}", file=sys.stderr)
    summary: dict[str, dict[str, dict]] = {}
    for method in args.recon:
        summary[method] = {}
        for v in variants:
            ok = [r for r in runs[method][v] if not r.get("error")]
            s: dict[str, Any] = {"n_runs": len(runs[method][v]), "n_ok": len(ok)}
            if ok:
                s["seconds"] = float(np.median([r["seconds"] for r in ok]))
                s["cpu_seconds"] = float(np.median([r["cpu_seconds"] for r in ok]))
                s["cores_used"] = float(np.median([r["cores_used"] for r in ok]))
                s["cpu_children_seconds"] = float(
                    np.median([r["cpu_children_seconds"] for r in ok])
                )
                s["peak_added_mb"] = float(max(r["peak_added_mb"] for r in ok))
                s["volume_shape"] = ok[0].get("volume_shape")
            if len(ok) < len(runs[method][v]):
                s["error"] = next(r["error"] for r in runs[method][v] if r.get("error"))
            summary[method][v] = s
    part = {"spec": asdict(case), "spec_text": case.describe(), "summary": summary, "runs": runs}
    print("\n".join(["", *recon_table(part, args.iterations)]))
    return part


def recon_label(v: str) -> str:
    impl, ncores = RECON_VARIANTS[v]
    if impl == "tomoalign":
        return "tomoalign"
    return f"{LABEL[impl]} ({'ncores = all' if ncores == 0 else 'default ncores'})"


def recon_table(part: dict, iterations: int) -> list[str]:
    lines = [
        "| method | impl | seconds (median) | speed-up vs ETSpy 1.3.0 | CPU s (self + children) "
        "| cores used (CPU / wall) | peak added MB (this process) | note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for method, by_v in part["summary"].items():
        base = by_v.get(RECON_BASELINE, {}).get("seconds")
        name = f"SIRT {iterations} it." if method == "SIRT" else method
        for v, s in by_v.items():
            note = short(s["error"]) if s.get("error") else ""
            if "seconds" not in s:
                lines.append(f"| {name} | {recon_label(v)} | — | — | — | — | — | {note} |")
                continue
            speed = f"{base / s['seconds']:.2f}x" if base else "—"
            cpu = f"{s['cpu_seconds']:.3g} ({s['cpu_children_seconds']:.3g} in children)"
            lines.append(
                f"| {name} | {recon_label(v)} | {s['seconds']:.3g} | {speed} | {cpu} | "
                f"{s['cores_used']:.2f} | {s['peak_added_mb']:.0f} | {note} |"
            )
    return lines


# --- main ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", default=["tilt", "recon"], choices=["tilt", "recon"])
    parser.add_argument(
        "--cases",
        nargs="+",
        default=["all"],
        help=f"tilt cases or groups ({', '.join(GROUPS)}); names: {', '.join(CASES)}",
    )
    parser.add_argument("--impls", nargs="+", default=list(IMPLS), choices=IMPLS)
    parser.add_argument(
        "--methods",
        nargs="+",
        default=["auto", "CoM", "MaxImage"],
        choices=ESTIMATORS["tomoalign"],
    )
    parser.add_argument("--recon", nargs="+", default=["FBP", "SIRT"], choices=["FBP", "SIRT"])
    parser.add_argument(
        "--recon-impls", nargs="+", default=list(RECON_DEFAULT), choices=list(RECON_VARIANTS)
    )
    parser.add_argument("--iterations", type=int, default=50, help="SIRT iterations (50)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per job (default 3)")
    parser.add_argument(
        "--single-run-above",
        type=float,
        default=120,
        help="a job whose first run takes longer (s) is not repeated (default 120)",
    )
    parser.add_argument("--small", action="store_true", help="96 x 96 projections, smoke runs")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per worker")
    parser.add_argument("--mem-limit-gb", type=float, default=16, help="RLIMIT_AS per worker")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for tilt_axis.md/.json")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    cases: list[str] = []
    for item in args.cases:
        if item not in GROUPS and item not in CASES:
            parser.error(f"unknown case {item!r}; valid: {', '.join([*GROUPS, *CASES])}")
        cases += [c for c in GROUPS.get(item, [item]) if c not in cases]
    args.cases = cases
    guard = {"timeout": args.timeout, "mem_limit_gb": args.mem_limit_gb}
    warn_missing(sorted({*args.impls, *(RECON_VARIANTS[v][0] for v in args.recon_impls)}), LABEL)

    out: dict[str, Any] = {}
    if "tilt" in args.parts:
        out["tilt"] = run_tilt_part(args, guard)
    if "recon" in args.parts:
        out["recon"] = run_recon_part(args, guard)

    versions: dict[str, str] = {}
    for rec in _all_records(out):
        if rec.get("version"):
            versions.setdefault(rec["impl"], rec["version"])
    meta = machine(argv, load_avg=True)
    meta["versions"] = versions
    lines = ["# Tilt-axis and reconstruction benchmark", "", machine_line(meta, LABEL), ""]
    if "tilt" in out:
        lines += tilt_markdown(out["tilt"])
        print("\n".join(["", *tilt_summary(out["tilt"]["cases"], out["tilt"]["estimators"])]))
    if "recon" in out:
        r = out["recon"]
        lines += [
            "## Reconstruction",
            "",
            f"{r['spec_text']}; CPU. Seconds: median of the whole `stack.reconstruct` call in "
            "a fresh process after a tiny warm-up. Cores used: (user + sys CPU seconds of the "
            "worker and its reaped children, `getrusage`) / wall seconds.",
            "",
            *recon_table(r, args.iterations),
            "",
        ]
    md, _ = write_report(args.out, "tilt_axis", "\n".join(lines), {"meta": meta, **out})
    print(f"[bench] wrote {md} and tilt_axis.json", file=sys.stderr)
    return 0


def _all_records(out: dict) -> list[dict]:
    recs: list[dict] = []
    for case in out.get("tilt", {}).get("cases", {}).values():
        for runs in case["runs"].values():
            recs += runs
    for by_v in out.get("recon", {}).get("runs", {}).values():
        for runs in by_v.values():
            recs += runs
    return recs


if __name__ == "__main__":
    raise SystemExit(main())
