"""Aligning one series from several threads: the input is only read, never touched."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import tomoalign

METHODS = ("PC", "COM", "COM-CL")


@pytest.fixture(scope="module")
def series(misaligned):
    moved, _ = misaligned((48, 48), np.arange(-60, 61, 10), jitter=2, seed=1)
    return moved


def test_threads_align_one_stack(series):
    """4 threads align the same stack (PC, COM, COM-CL), each result as in one thread."""
    expected = {m: tomoalign.align_stack(series, m) for m in METHODS}
    jobs = [METHODS[i % len(METHODS)] for i in range(12)]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda m: (m, tomoalign.align_stack(series, m)), jobs))
    for method, out in results:
        np.testing.assert_array_equal(out.shifts, expected[method].shifts)
        np.testing.assert_array_equal(out.data, expected[method].data)
        assert out.data.dtype == np.float32


def test_input_never_touched(series):
    """A spy on the input records every attribute set or deleted during alignment: none."""
    events: list[tuple[str, str]] = []
    base = type(series)

    class Spy(base):  # type: ignore[misc, valid-type]
        def __setattr__(self, name, value):
            if self is watched:
                events.append(("set", name))
            super().__setattr__(name, value)

        def __delattr__(self, name):
            if self is watched:
                events.append(("del", name))
            super().__delattr__(name)

    Spy.__name__ = base.__name__
    watched = series.deepcopy()
    watched.__class__ = Spy
    before = watched.metadata.as_dictionary()
    data = watched.data
    for method in METHODS:
        out = tomoalign.align_stack(watched, method, crop=True)
        assert type(out) is Spy
    assert events == []
    assert watched.data is data
    after = watched.metadata.as_dictionary()
    assert after.keys() == before.keys()
    np.testing.assert_array_equal(after["Tomography"]["shifts"], before["Tomography"]["shifts"])


def test_data_stays_readable_during_alignment(series):
    """Another thread reading ``stack.data`` during alignment always sees the input array."""
    data = series.data
    stop = threading.Event()
    seen: list[object] = []

    def watch() -> None:
        while not stop.is_set():
            current = series.data
            if current is not data or not hasattr(series, "learning_results"):
                seen.append(current)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for _ in range(3):
            for method in METHODS:
                tomoalign.align_stack(series, method)
    finally:
        stop.set()
        watcher.join()
    assert seen == []


def test_deepcopy_with_new_data_keeps_everything(series):
    """The copy has the class, axes, metadata and geometry of the input, and the new data."""
    new = np.zeros_like(series.data)
    out = series._deepcopy_with_new_data(new)
    assert type(out) is type(series)
    assert out.data is new
    np.testing.assert_array_equal(out.tilts, series.tilts)
    np.testing.assert_array_equal(out.shifts, series.shifts)
    assert out.metadata.General.title == series.metadata.General.title
    assert out.axes_manager[1].scale == series.axes_manager[1].scale
    out.metadata.Tomography.shifts[0, 0] = 99.0  # metadata deep-copied
    assert series.metadata.Tomography.shifts[0, 0] != 99.0


def test_deepcopy_with_new_data_lazy(series):
    """A lazy series copies to a lazy one around the new dask data."""
    lazy = series.as_lazy()
    out = lazy._deepcopy_with_new_data(lazy.data + 1)
    assert out._lazy
    np.testing.assert_allclose(np.asarray(out.data), series.data + 1)
    np.testing.assert_array_equal(out.tilts, series.tilts)
