"""Ground-truth cases for the alignment benchmark, built with tomoalign.datasets.

Each case is an aligned series -- a phantom (``datasets.phantom_series``) or ETSpy's own
catalyst model, the simulated 90 x 600 x 600 HAADF series that ETSpy ships with its tests
(``etspy/tests/test_data/Catalyst3DModel_TiltSeries180.hspy``, read from the ETSpy install in
``.venv`` or in a benchmark venv) -- misaligned by known shifts (``datasets.misalign``) and
optionally degraded (``datasets.add_noise``). It is saved once as an
uncompressed ``.npz`` in ``benchmarks/results/cases/`` holding

* ``data``: float32 `(n_tilts, ny, nx)`, the misaligned (noisy) series the aligners get,
* ``tilts``: float64 `(n_tilts,)` degrees,
* ``true_shifts``: float64 `(n_tilts, 2)` as ``(dy, dx)`` px, the APPLIED misalignment (content
  moved by ``+true_shifts``, ``scipy.ndimage.shift``'s sign); a perfect aligner returns
  ``-true_shifts`` up to the rigid freedom that ``tomoalign.metrics.rms_error`` removes,
* ``spec``: the JSON of the case's recipe; a cached file whose recipe differs is rebuilt.

Usage (tomoalign's venv)::

    .venv/bin/python benchmarks/cases.py                 # build every full-size case
    .venv/bin/python benchmarks/cases.py --small clean   # 128 x 128 versions, in seconds
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import CASE_DIR, HERE, cached, save_npz
from _common import load_case as load_case  # the workers' case reader, importable from here too

#: Edge length of the projections in ``--small`` mode (tilts unchanged).
SMALL_SIZE = 128


@dataclass(frozen=True)
class CaseSpec:
    """The recipe of one case: geometry, misalignment and noise, all seeded."""

    name: str
    shape: tuple[int, int]
    tilts: tuple[float, ...]
    jitter: float = 5.0
    drift: float = 0.0
    noise: str | None = None  # "gaussian" | "poisson" | None
    noise_level: float = 0.0
    memory_only: bool = False  # scored for time and memory; accuracy printed but not the aim
    source: str = "phantom"  # "phantom" | "catalyst" (ETSpy's catalyst model)
    phantom_seed: int = 0
    misalign_seed: int = 1
    noise_seed: int = 2

    @property
    def n_tilts(self) -> int:
        return len(self.tilts)

    def describe(self) -> str:
        ny, nx = self.shape
        text = "ETSpy catalyst model, " if self.source == "catalyst" else ""
        text += (
            f"{self.n_tilts} x {ny} x {nx}, tilts {self.tilts[0]:g}..{self.tilts[-1]:g}, "
            f"jitter {self.jitter:g} px"
        )
        if self.drift:
            text += f", drift {self.drift:g} px/step"
        if self.noise == "gaussian":
            text += f", gaussian noise {self.noise_level:g} x data std"
        elif self.noise == "poisson":
            text += f", Poisson noise at {self.noise_level:g} counts/px"
        return text


def _tilts(start: float, stop: float, step: float) -> tuple[float, ...]:
    return tuple(float(t) for t in np.arange(start, stop, step))


_FULL_TILTS = _tilts(0, 180, 2)  # 90 projections over a full half-turn
_LIMITED_TILTS = _tilts(-60, 61, 2)  # 61 projections, -60..+60

CASES: dict[str, CaseSpec] = {
    "clean": CaseSpec("clean", (600, 600), _FULL_TILTS, jitter=5.0),
    "noisy": CaseSpec(
        "noisy", (600, 600), _FULL_TILTS, jitter=5.0, noise="gaussian", noise_level=0.5
    ),
    "drift": CaseSpec(
        "drift",
        (600, 600),
        _FULL_TILTS,
        jitter=0.0,
        drift=1.5,
        noise="gaussian",
        noise_level=0.3,
    ),
    "lowdose": CaseSpec(
        "lowdose", (600, 600), _LIMITED_TILTS, jitter=5.0, noise="poisson", noise_level=2.0
    ),
    "large": CaseSpec("large", (2048, 2048), _LIMITED_TILTS, jitter=5.0, memory_only=True),
}
# The same recipes on ETSpy's catalyst model instead of the phantom.
for _name, _base in (
    ("catalyst", "clean"),
    ("catalyst-noisy", "noisy"),
    ("catalyst-drift", "drift"),
):
    CASES[_name] = replace(CASES[_base], name=_name, source="catalyst")
CASES["large"] = CASES.pop("large")  # the slow memory case runs last


def get_spec(name: str, *, small: bool = False) -> CaseSpec:
    """The recipe of case ``name``; ``small`` keeps everything but uses 128 x 128 projections."""
    if name not in CASES:
        raise ValueError(f"unknown case {name!r}; valid cases are {', '.join(CASES)}")
    spec = CASES[name]
    if small:
        spec = replace(spec, name=f"{name}-small", shape=(SMALL_SIZE, SMALL_SIZE))
    return spec


def case_path(spec: CaseSpec) -> Path:
    return CASE_DIR / f"{spec.name}.npz"


def _spec_json(spec: CaseSpec) -> str:
    return json.dumps(asdict(spec), sort_keys=True)


CATALYST = Path("etspy", "tests", "test_data", "Catalyst3DModel_TiltSeries180.hspy")


def catalyst_path() -> Path:
    """ETSpy's catalyst model in an installed ETSpy (``.venv`` or a benchmark venv)."""
    import importlib.util

    roots = []
    found = importlib.util.find_spec("etspy")  # locates the package without importing it
    if found is not None and found.submodule_search_locations:
        roots += [Path(p).parent for p in found.submodule_search_locations]
    for venv in sorted(HERE.glob(".venv-etspy*")):
        roots += sorted(venv.glob("lib/python*/site-packages"))
    for root in roots:
        if (root / CATALYST).is_file():
            return root / CATALYST
    raise FileNotFoundError(
        f"ETSpy's catalyst model ({CATALYST}) was not found in an installed ETSpy; run "
        "`make venv` (installs ETSpy 1.3.0 for the co-installation test) or `make bench-venvs`"
    )


def _catalyst(spec: CaseSpec, tilts: np.ndarray):  # -> TomoStack
    import hyperspy.api as hs
    from scipy.ndimage import zoom

    import tomoalign

    data = np.asarray(hs.load(catalyst_path()).data, dtype=np.float32)
    if data.shape != (len(tilts), 600, 600):
        raise ValueError(f"the catalyst model is {data.shape}; expected ({len(tilts)}, 600, 600)")
    if data.shape[1:] != spec.shape:  # --small: resampled, tilts unchanged
        factors = (1.0, spec.shape[0] / data.shape[1], spec.shape[1] / data.shape[2])
        data = zoom(data, factors, order=1).astype(np.float32)
    stack = tomoalign.TomoStack(data)
    stack.metadata.set_item("Tomography.tilts", tilts)
    return stack


def build(spec: CaseSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Build a case in memory: ``(data float32, tilts, true_shifts)``."""
    from tomoalign import datasets

    tilts = np.asarray(spec.tilts, dtype=float)
    if spec.source == "catalyst":
        truth = _catalyst(spec, tilts)
    else:
        truth = datasets.phantom_series(spec.shape, tilts=tilts, seed=spec.phantom_seed)
    moved, true_shifts = datasets.misalign(
        truth, jitter=spec.jitter, drift=spec.drift, seed=spec.misalign_seed
    )
    del truth
    if spec.noise is not None:
        moved = datasets.add_noise(
            moved, kind=spec.noise, level=spec.noise_level, seed=spec.noise_seed
        )
    data = np.ascontiguousarray(moved.data, dtype=np.float32)
    return data, tilts, np.asarray(true_shifts, dtype=float)


def ensure_case(spec: CaseSpec, *, rebuild: bool = False, verbose: bool = True) -> Path:
    """The path of the case's ``.npz``, building and saving it first when needed."""
    path = case_path(spec)
    if path.exists() and not rebuild:
        if cached(path, _spec_json(spec)):
            return path
        if verbose:
            print(f"[cases] {path.name}: recipe changed, rebuilding", file=sys.stderr)
    if verbose:
        print(f"[cases] building {spec.name}: {spec.describe()}", file=sys.stderr)
    t0 = time.perf_counter()
    data, tilts, true_shifts = build(spec)
    save_npz(path, data=data, tilts=tilts, true_shifts=true_shifts, spec=_spec_json(spec))
    if verbose:
        print(
            f"[cases] saved {path.name} ({data.nbytes / 2**20:.0f} MiB) in "
            f"{time.perf_counter() - t0:.1f} s",
            file=sys.stderr,
        )
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", default=list(CASES), help="default: all")
    parser.add_argument("--small", action="store_true", help="128 x 128 projections")
    parser.add_argument("--rebuild", action="store_true", help="ignore the cache")
    args = parser.parse_args(argv)
    try:
        specs = [get_spec(name, small=args.small) for name in args.cases]
    except ValueError as exc:
        print(f"cases.py: {exc}", file=sys.stderr)
        return 2
    for spec in specs:
        print(ensure_case(spec, rebuild=args.rebuild))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
