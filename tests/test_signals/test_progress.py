"""``show_progressbar=True`` advances in steps, monotone, for every method."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest

import tomoalign
import tomoalign._backend as backend
import tomoalign.estimate._phase_correlation as pc_module

METHODS = ("PC", "COM", "COM-CL", "StackReg")


class RecordingBar:
    """Stands in for tqdm: records every ``update`` and the total."""

    bars: ClassVar[list[RecordingBar]] = []

    def __init__(self, total: int, **_: object) -> None:
        self.total = total
        self.n = 0
        self.updates: list[int] = []
        self.closed = False
        RecordingBar.bars.append(self)

    def update(self, k: int) -> None:
        self.updates.append(int(k))
        self.n += int(k)

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def recorded(monkeypatch):
    import tqdm.auto

    RecordingBar.bars = []
    monkeypatch.setattr(tqdm.auto, "tqdm", RecordingBar)
    monkeypatch.setattr(backend, "BLOCK_BYTES", 64 * 64 * 4 * 5)  # blocks of 5 projections
    monkeypatch.setattr(pc_module, "_CHUNK_BYTES", 64 * 64 * 4 * 5)
    return RecordingBar.bars


@pytest.fixture(scope="module")
def series(misaligned):
    return misaligned((64, 64), np.arange(-60.0, 61.0, 4.0), jitter=3, seed=1)[0]


@pytest.mark.parametrize("method", METHODS)
def test_bar_advances_in_steps(recorded, series, method, lazy):
    stack = series.as_lazy() if lazy else series
    tomoalign.align_stack(stack, method, show_progressbar=True)
    (bar,) = recorded
    assert bar.closed
    assert all(k >= 0 for k in bar.updates)  # monotone
    done = np.cumsum(bar.updates)
    assert done[-1] == bar.total
    # in steps: most of the bar is filled before the method ends, never in one jump
    steps = [k for k in bar.updates if k > 0]
    assert len(steps) >= 4
    assert max(steps) <= bar.total // 2
    expected = {"COM": 2 * series.n_tilts, "StackReg": series.n_tilts - 1}
    assert bar.total == expected.get(method, series.n_tilts)
