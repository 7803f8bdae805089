"""Fuzzed MRC, .rawtlt and .mdoc files: only documented exceptions, quickly, in bounded memory.

The long run (2,000 cases) is ``benchmarks/fuzz_io.py``; this one keeps the suite short.
"""

import time
import warnings

import pytest
from _io_fuzz import base_files, run_case

N_CASES = 200
SECONDS_PER_CASE = 5.0
RSS_GROWTH_MB = 1024.0


@pytest.fixture(scope="module")
def fuzz_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    return folder, base_files(folder)


def test_fuzzed_files_raise_only_documented_errors(fuzz_folder):
    folder, base = fuzz_folder
    start = time.perf_counter()
    bad = []
    for seed in range(N_CASES):
        outcome = run_case(folder, base, seed)
        if not outcome.documented:
            bad.append(f"{outcome.case}: {outcome.result}: {outcome.detail}")
        elif outcome.seconds > SECONDS_PER_CASE:
            bad.append(f"{outcome.case}: took {outcome.seconds:.1f} s")
        elif outcome.rss_growth_mb > RSS_GROWTH_MB:
            bad.append(f"{outcome.case}: max RSS grew by {outcome.rss_growth_mb:.0f} MB")
    assert not bad, "\n".join(bad[:5])
    assert time.perf_counter() - start < 60


def test_unmutated_base_files_load(fuzz_folder, tmp_path):
    import numpy as np

    import tomoalign

    _, base = fuzz_folder
    for name in ("plain.mrc", "int16_oldfei.mrc", "fei1.mrc", "seri.mrc"):
        path = tmp_path / name
        path.write_bytes(base[name])
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "no tilt angles", UserWarning)
            warnings.filterwarnings("ignore", ".*permissive mode", UserWarning)
            stack = tomoalign.load(path)
        assert stack.data.shape == (5, 16, 16)
        expected = np.zeros(5) if name == "plain.mrc" else np.linspace(-60, 60, 5)
        np.testing.assert_allclose(stack.tilts, expected, atol=0.01)
