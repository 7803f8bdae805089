import numpy as np
import pytest

from tomoalign.metrics import alignment_residual, rms_error

TILTS = np.arange(-60.0, 61.0, 4.0)  # 31 tilts


def rigid(tilts, a, b, c, tx):
    """Shifts that a rigid translation of the object (plus a tilt-axis offset a) produces."""
    theta = np.deg2rad(tilts)
    return np.stack([a + b * np.cos(theta) + c * np.sin(theta), np.full(theta.shape, tx)], 1)


@pytest.fixture
def true_shifts():
    return np.random.default_rng(0).uniform(-5, 5, (TILTS.size, 2))


def test_perfect_alignment_scores_zero(true_shifts):
    assert rms_error(-true_shifts, true_shifts, TILTS) == (0.0, 0.0)
    np.testing.assert_array_equal(alignment_residual(-true_shifts, true_shifts, TILTS), 0.0)


@pytest.mark.parametrize(("a", "b", "c", "tx"), [(1.5, 0, 0, 0), (0, -2, 3, 0), (0.3, 4, -1, 7)])
def test_rigid_translation_scores_zero(true_shifts, a, b, c, tx):
    found = -true_shifts + rigid(TILTS, a, b, c, tx)
    residual = alignment_residual(found, true_shifts, TILTS)
    np.testing.assert_allclose(residual, 0.0, atol=1e-12)
    rms_y, rms_x = rms_error(found, true_shifts, TILTS)
    assert rms_y < 1e-12 and rms_x < 1e-12
    assert isinstance(rms_y, float) and isinstance(rms_x, float)


def test_random_error_scores_above_zero(true_shifts):
    error = np.random.default_rng(1).normal(0, 0.5, true_shifts.shape)
    rms_y, rms_x = rms_error(-true_shifts + error, true_shifts, TILTS)
    # 3 of 31 degrees of freedom removed along y, 1 along x: RMS close to 0.5
    assert 0.3 < rms_y < 0.7 and 0.3 < rms_x < 0.7


def test_residual_removes_exactly_the_rigid_part(true_shifts):
    error = np.random.default_rng(2).normal(0, 1, true_shifts.shape)
    found = -true_shifts + error + rigid(TILTS, 2.0, -1.0, 0.5, 3.0)
    residual = alignment_residual(found, true_shifts, TILTS)
    theta = np.deg2rad(TILTS)
    design = np.stack([np.ones_like(theta), np.cos(theta), np.sin(theta)], 1)
    # what remains is orthogonal to the removed models...
    np.testing.assert_allclose(design.T @ residual[:, 0], 0.0, atol=1e-10)
    np.testing.assert_allclose(residual[:, 1].sum(), 0.0, atol=1e-10)
    # ...and equals the error with its own rigid part removed
    coef = np.linalg.lstsq(design, error[:, 0], rcond=None)[0]
    np.testing.assert_allclose(residual[:, 0], error[:, 0] - design @ coef, atol=1e-10)
    np.testing.assert_allclose(residual[:, 1], error[:, 1] - error[:, 1].mean(), atol=1e-10)
    rms = np.sqrt((residual**2).mean(axis=0))
    np.testing.assert_allclose(rms_error(found, true_shifts, TILTS), rms, rtol=1e-12)


def test_all_equal_tilts_remove_only_the_mean():
    residual = np.array([[1.0, 2.0], [3.0, 2.0], [-1.0, 5.0], [5.0, 3.0]])
    out = alignment_residual(residual, np.zeros((4, 2)), np.full(4, 10.0))
    np.testing.assert_allclose(out, residual - residual.mean(axis=0), atol=1e-12)


def test_inputs_not_modified_and_lists_accepted(true_shifts):
    found = -true_shifts + 0.1
    copy = found.copy()
    alignment_residual(found, true_shifts, TILTS)
    np.testing.assert_array_equal(found, copy)
    assert rms_error(found.tolist(), true_shifts.tolist(), TILTS.tolist())[1] < 1e-12


@pytest.mark.parametrize(
    ("found", "true", "tilts", "match"),
    [
        (
            np.zeros((30, 2)),
            np.zeros((31, 2)),
            TILTS,
            r"found_shifts has shape \(30, 2\); expected \(31, 2\) as \(dy, dx\) for a stack of "
            r"31 projections",
        ),
        (np.zeros((31, 2)), np.zeros((31, 3)), TILTS, r"true_shifts has shape \(31, 3\)"),
        (np.zeros((31, 2)), np.zeros((31, 2)), TILTS[:-1], r"true_shifts|found_shifts"),
        (np.zeros((31, 2)), np.zeros((31, 2)), TILTS.reshape(1, -1), r"tilts has shape \(1, 31\)"),
        (np.zeros((2, 2)), np.zeros((2, 2)), [0.0, np.nan], "tilts must be finite"),
        (np.full((2, 2), np.inf), np.zeros((2, 2)), [0.0, 1.0], "finite"),
    ],
)
def test_bad_inputs_raise(found, true, tilts, match):
    with pytest.raises(ValueError, match=match):
        rms_error(found, true, tilts)
