"""Tests of tomoalign._numerics, each against an independent computation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize, stats

from tomoalign._numerics import (
    HUBER_EFFICIENCY,
    HUBER_K,
    MAD_TO_SIGMA,
    difference_sigma,
    fourier_phase,
    hermitian_weights,
    huber_location,
    huber_weights,
    parabola_offset,
    refine_peak,
    remove_end_ramp,
    robust_sigma,
    subpixel_offsets,
    upsampled_dft,
)


# -- robust statistics ------------------------------------------------------------------
def test_mad_to_sigma_is_the_inverse_normal_quartile():
    assert MAD_TO_SIGMA == pytest.approx(1.0 / stats.norm.ppf(0.75), rel=2e-6)


def test_robust_sigma_of_normal_data_with_outliers():
    x = np.random.default_rng(0).normal(3.0, 2.0, size=200_001)
    x[:1000] = 1e6  # 0.5 % gross outliers barely move the median
    assert float(robust_sigma(x)) == pytest.approx(2.0, rel=0.02)


def test_robust_sigma_centres_axes_and_nans():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 101))
    expected = MAD_TO_SIGMA * np.median(np.abs(x - np.median(x, axis=1)[:, None]), axis=1)
    np.testing.assert_array_equal(robust_sigma(x, axis=1), expected)
    assert robust_sigma(x, axis=1, keepdims=True).shape == (4, 1)
    assert robust_sigma(x, center=None) == MAD_TO_SIGMA * np.median(np.abs(x))
    assert robust_sigma(x, center=0.5) == MAD_TO_SIGMA * np.median(np.abs(x - 0.5))
    y = x.copy()
    y[:, ::2] = np.nan
    assert robust_sigma(y, ignore_nan=True) == robust_sigma(x[:, 1::2])
    with pytest.raises(ValueError, match="center='mean'"):
        robust_sigma(x, center="mean")


def test_difference_sigma_ignores_a_smooth_signal():
    n = 400_000
    x = np.random.default_rng(2).normal(scale=0.7, size=n) + 30 * np.sin(np.arange(n) / 5e3)
    assert difference_sigma(np.diff(x)) == pytest.approx(0.7, rel=0.01)


# -- Huber ------------------------------------------------------------------------------
def test_huber_efficiency_matches_the_tuning_constant():
    # asymptotic efficiency at the normal: (2 Phi(k) - 1)**2 / E[psi(Z)**2]
    k = HUBER_K
    p = 2 * stats.norm.cdf(k) - 1
    e_psi2 = p - 2 * k * stats.norm.pdf(k) + 2 * k**2 * stats.norm.sf(k)
    assert p**2 / e_psi2 == pytest.approx(HUBER_EFFICIENCY, abs=5e-4)


def test_huber_weights():
    r = np.array([-3.0, -1.0, 0.0, 0.5, 2.0, 8.0])
    np.testing.assert_array_equal(huber_weights(r, 2.0), [2 / 3, 1, 1, 1, 1, 0.25])
    assert np.all(np.abs(r * huber_weights(r, 2.0)) <= 2.0)


def test_huber_location_minimises_the_huber_loss():
    rng = np.random.default_rng(3)
    values = rng.normal(size=(5, 60))
    values[:, :4] += 40.0  # outliers on one side
    scale = 1.1

    def loss(c: float, row: np.ndarray) -> float:
        r = np.abs(row - c)
        cut = HUBER_K * scale
        return float(np.sum(np.where(r <= cut, 0.5 * r**2, cut * r - 0.5 * cut**2)))

    expected = [
        optimize.minimize_scalar(loss, args=(row,), bracket=(-1, 1), tol=1e-12).x for row in values
    ]
    with_nan = np.concatenate([values, np.full((5, 3), np.nan)], axis=1)
    found = huber_location(with_nan, np.median(values, axis=1), scale)
    np.testing.assert_allclose(found, expected, atol=1e-6)


# -- real FFT helpers -------------------------------------------------------------------
@pytest.mark.parametrize("n", [7, 8, 33, 64])
def test_hermitian_weights_give_the_full_spectrum_energy(n):
    x = np.random.default_rng(n).normal(size=(3, n))
    full = np.sum(np.abs(np.fft.fft(x, axis=1)) ** 2, axis=1)
    half = np.abs(np.fft.rfft(x, axis=1)) ** 2 @ hermitian_weights(n)
    np.testing.assert_allclose(half, full, rtol=1e-12)


def test_hermitian_weights_cropped_and_without_nyquist():
    np.testing.assert_array_equal(hermitian_weights(16, 5), [1, 2, 2, 2, 2])
    np.testing.assert_array_equal(hermitian_weights(8, nyquist=False), [1, 2, 2, 2, 2])
    np.testing.assert_array_equal(hermitian_weights(8), [1, 2, 2, 2, 1])
    with pytest.raises(ValueError, match="1 to 5 columns"):
        hermitian_weights(8, 6)


def test_remove_end_ramp():
    x = np.arange(40.0)
    line = 2.5 * x - 7.0
    np.testing.assert_allclose(remove_end_ramp(line[None, :]), 0.0, atol=1e-12)
    bumped = line + np.exp(-0.5 * ((x - 20) / 3) ** 2)
    out = remove_end_ramp(bumped, edge=4)
    assert abs(out[:4].mean()) < 1e-9 and abs(out[-4:].mean()) < 1e-9
    assert out.argmax() == 20


# -- subpixel DFT peak search -----------------------------------------------------------
def test_fourier_phase():
    a, b = np.array([0.25, -1.5]), np.arange(5.0)
    expected = np.exp(2j * np.pi * np.outer(a, b) / 9)
    np.testing.assert_allclose(fourier_phase(a, b, 9), expected, rtol=1e-14)


def _band_limited(spec: np.ndarray, n: int, x: np.ndarray) -> np.ndarray:
    """Real inverse DFT of half spectra `(p, K)` at arbitrary positions `(p, g)`, directly."""
    k = np.arange(spec.shape[1])
    w = hermitian_weights(n, spec.shape[1])
    return np.einsum("pk,pgk->pg", spec * w, np.exp(2j * np.pi * x[:, :, None] * k / n)).real


def test_upsampled_dft_1d_is_the_inverse_dft_on_the_grid():
    n = 30
    rng = np.random.default_rng(5)
    spec = np.fft.rfft(rng.normal(size=(4, n)), axis=1)
    k = np.arange(spec.shape[1], dtype=float)
    whole = np.array([0.0, 3.0, -7.0, 12.0])
    off = subpixel_offsets(4)
    kernel = fourier_phase(k, off, n) * hermitian_weights(n)[:, None]
    values = upsampled_dft(spec, (whole,), (kernel,), (k,), (n,))
    expected = _band_limited(spec, n, whole[:, None] + off[None, :])
    np.testing.assert_allclose(values, expected, atol=1e-9)
    # at whole pixels (offset 0): n times irfft
    at_whole = n * np.fft.irfft(spec, n, axis=1)[np.arange(4), whole.astype(int)]
    np.testing.assert_allclose(values[:, 6], at_whole, atol=1e-9)


def _gaussian(shape: tuple[int, ...], centre: tuple[float, ...], width: float) -> np.ndarray:
    grids = np.meshgrid(*(np.arange(m) for m in shape), indexing="ij")
    return np.exp(-0.5 * sum(((g - c) / width) ** 2 for g, c in zip(grids, centre, strict=True)))


def test_dft_peak_search_finds_a_known_subpixel_shift_1d():
    n, uf, shift = 64, 20, 3.37
    a = _gaussian((n,), (30.0,), 3.0)
    b = _gaussian((n,), (30.0 + shift,), 3.0)
    cross = (np.fft.rfft(b) * np.fft.rfft(a).conj())[None, :]
    whole = np.array([float(np.argmax(np.fft.irfft(cross[0], n)))])
    off = subpixel_offsets(uf)
    k = np.arange(cross.shape[1], dtype=float)
    kernel = fourier_phase(k, off, n) * hermitian_weights(n)[:, None]
    values = upsampled_dft(cross, (whole,), (kernel,), (k,), (n,))
    found = refine_peak(values, (whole[:, None] + off[None, :],), uf)
    assert found.shape == (1, 1)
    assert found[0, 0] == pytest.approx(shift, abs=0.01)


def test_dft_peak_search_finds_a_known_subpixel_shift_2d():
    ny, nx, uf, shift = 48, 40, 10, (-2.63, 4.18)
    a = _gaussian((ny, nx), (24.0, 20.0), 2.5)
    b = _gaussian((ny, nx), (24.0 + shift[0], 20.0 + shift[1]), 2.5)
    cross = (np.fft.rfft2(b) * np.fft.rfft2(a).conj())[None].astype(np.complex64)
    iy, ix = np.unravel_index(np.argmax(np.fft.irfft2(cross[0], (ny, nx))), (ny, nx))
    cy = np.array([float(iy - ny if iy > ny // 2 else iy)])
    cx = np.array([float(ix - nx if ix > nx // 2 else ix)])
    ky = np.fft.fftfreq(ny) * ny
    kx = np.arange(nx // 2 + 1, dtype=float)
    off = subpixel_offsets(uf)
    ker_y = fourier_phase(off, ky, ny).astype(np.complex64)
    ker_x = (fourier_phase(kx, off, nx) * hermitian_weights(nx)[:, None]).astype(np.complex64)
    values = upsampled_dft(cross, (cy, cx), (ker_y, ker_x), (ky, kx), (ny, nx), xp=np)
    assert values.shape == (1, off.size, off.size) and values.dtype == np.float64
    found = refine_peak(values, (cy[:, None] + off, cx[:, None] + off), uf)
    np.testing.assert_allclose(found[0], shift, atol=0.02)


def test_subpixel_offsets():
    np.testing.assert_allclose(subpixel_offsets(4, 1.5), np.arange(-6, 7) / 4)
    np.testing.assert_allclose(subpixel_offsets(3, 2.2), np.arange(-7, 8) / 3)
    np.testing.assert_array_equal(subpixel_offsets(1), [-2.0, -1.0, 0.0, 1.0, 2.0])


def test_parabola_offset_is_the_vertex():
    vertex = np.array([0.3, -0.2, 0.0])
    c = [-((s - vertex) ** 2) + 5 for s in (-1.0, 0.0, 1.0)]
    np.testing.assert_allclose(parabola_offset(*c, np.ones(3, bool)), vertex, atol=1e-14)
    assert parabola_offset(*c, np.zeros(3, bool)).tolist() == [0.0, 0.0, 0.0]
    flat = np.ones(1)
    assert parabola_offset(flat, flat, flat, np.ones(1, bool))[0] == 0.0  # not concave


def test_refine_peak_on_a_quadratic_and_at_an_edge():
    g = np.arange(9) / 4.0  # grid step 1/4
    grid = np.stack([g, g])
    values = np.stack([-((g - 1.13) ** 2), -((g + 0.1) ** 2)])  # second peaks beyond the edge
    found = refine_peak(values, (grid,), 4)[:, 0]
    assert found[0] == pytest.approx(1.13, abs=1e-12)
    assert found[1] == 0.0  # the edge sample, no parabola
    assert refine_peak(values, (grid,), 1)[0, 0] == 1.25  # the nearest sample only


def test_difference_sigma_is_float64_for_float32_data():
    # the scale is formed in float64 from the median, as every caller has always done
    d = np.diff(np.random.default_rng(6).normal(size=(5, 64)).astype(np.float32)).ravel()
    med = float(np.median(np.abs(d - np.median(d))))
    assert difference_sigma(d) == 1.4826 * med / np.sqrt(2.0)
    assert robust_sigma(d).dtype == np.float32  # robust_sigma keeps the data's dtype
