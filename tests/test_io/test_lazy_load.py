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


def test_info_reads_nothing(big_mrc, capsys, monkeypatch):
    from tomoalign.cli import main
    from tomoalign.formats import _mrc

    reads = []
    real = _mrc._MrcChunks.__getitem__
    monkeypatch.setattr(
        _mrc._MrcChunks, "__getitem__", lambda self, key: reads.append(key) or real(self, key)
    )
    before = _rss_anon_mb()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["info", str(big_mrc)]) == 0
    grown = _rss_anon_mb() - before
    assert grown < 50, f"`tomoalign info` grew anonymous memory by {grown:.0f} MB"
    assert "(50, 1024, 1024)" in capsys.readouterr().out
    assert reads == []  # not one chunk of the data was read


def test_chunked_read_and_write_with_progress_bars(tmp_path, stack7, capsys, monkeypatch):
    from tomoalign.formats import _mrc

    monkeypatch.setattr(_mrc, "_CHUNK_BYTES", 1000)  # many small chunks, odd sizes
    stack7.save(tmp_path / "s.mrc", show_progressbar=True)
    assert "writing s.mrc" in capsys.readouterr().err
    back = tomoalign.load(tmp_path / "s.mrc", show_progressbar=True)
    assert "reading s.mrc" in capsys.readouterr().err
    np.testing.assert_array_equal(back.data, stack7.data)
    lazy = tomoalign.load(tmp_path / "s.mrc", lazy=True)
    assert lazy.data.numblocks[0] == 7
    np.testing.assert_array_equal(lazy.data.compute(), stack7.data)
    lazy.save(tmp_path / "copy.mrc")
    np.testing.assert_array_equal(tomoalign.load(tmp_path / "copy.mrc").data, stack7.data)
    stack7.save(tmp_path / "quiet.mrc")
    assert capsys.readouterr().err == ""
