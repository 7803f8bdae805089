"""A lazy load reads nothing: anonymous memory stays flat until chunks are computed."""

import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest

import tomoalign

STATUS = Path("/proc/self/status")


def _rss_anon_mb() -> float:
    for line in STATUS.read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    pytest.skip("/proc/self/status has no RssAnon")


@pytest.fixture
def big_mrc(tmp_path):
    """A ~200 MB float32 MRC written without holding it in memory."""
    if not STATUS.exists():
        pytest.skip("needs /proc/self/status to measure anonymous memory")
    import mrcfile

    path = tmp_path / "big.mrc"
    mrc = mrcfile.new_mmap(path, shape=(50, 1024, 1024), mrc_mode=2)
    for i in range(50):
        mrc.data[i] = i
    mrc.close()
    return path


def test_lazy_load_reads_nothing(big_mrc):
    before = _rss_anon_mb()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stack = tomoalign.load(big_mrc, lazy=True)
    grown = _rss_anon_mb() - before
    assert grown < 50, f"a lazy load of a 200 MB file grew anonymous memory by {grown:.0f} MB"
    assert stack.data.shape == (50, 1024, 1024)
    before = _rss_anon_mb()
    assert float(stack.data[7, 3, 5].compute()) == 7.0  # reads one chunk, on demand
    assert _rss_anon_mb() - before < 100
    np.testing.assert_array_equal(stack.data[[0, 49], 0, 0].compute(), [0, 49])


def test_lazy_array_pickles_small(big_mrc):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stack = tomoalign.load(big_mrc, lazy=True)
    blob = pickle.dumps(stack.data)
    assert len(blob) < 100_000  # the graph holds the path, not the data
    assert float(pickle.loads(blob)[3].mean().compute()) == 3.0


def test_info_reads_nothing(big_mrc, capsys):
    from tomoalign.cli import main

    before = _rss_anon_mb()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["info", str(big_mrc)]) == 0
    grown = _rss_anon_mb() - before
    assert grown < 50, f"`tomoalign info` grew anonymous memory by {grown:.0f} MB"
    assert "(50, 1024, 1024)" in capsys.readouterr().out


def test_eager_load_with_progress_bar(tmp_path, stack7, capsys):
    stack7.save(tmp_path / "s.mrc", show_progressbar=True)
    back = tomoalign.load(tmp_path / "s.mrc", show_progressbar=True)
    np.testing.assert_array_equal(back.data, stack7.data)
