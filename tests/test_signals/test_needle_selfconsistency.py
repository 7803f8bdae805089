"""Real data without ground truth: the needle series is aligned, moved by known shifts and
aligned again; the second alignment must recover the known shifts (self-consistency)."""

import numpy as np
import pytest

import tomoalign
from tomoalign import datasets, metrics


@pytest.fixture(scope="module")
def aligned_needle():
    return datasets.needle().stack_register("COM-CL")


@pytest.mark.parametrize("method", ["PC", "COM-CL", "StackReg"])
def test_known_shifts_are_recovered(aligned_needle, method):
    known = np.random.default_rng(3).uniform(-4, 4, size=(aligned_needle.n_tilts, 2))
    moved = tomoalign.TomoStack(
        tomoalign.apply_shifts(aligned_needle.data, known), tilts=aligned_needle.tilts
    )
    found = moved.stack_register(method).shifts
    ry, rx = metrics.rms_error(found, known, aligned_needle.tilts)
    assert ry < 0.5 and rx < 0.5, (ry, rx)


def test_alignment_lowers_the_reprojection_error():
    raw = datasets.needle()
    aligned = raw.stack_register("PC")
    kwargs = {"nslices": 8, "iterations": 20, "thickness": 128}
    assert tomoalign.reprojection_error(aligned, **kwargs) < tomoalign.reprojection_error(
        raw, **kwargs
    )
