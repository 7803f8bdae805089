"""Neighbour phase correlation of a tilt series (draft)."""

from __future__ import annotations

import math
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

from tomoalign._backend import fft_kwargs, get_array_module, get_fft_module, to_numpy

__all__ = ["phase_correlation_shifts"]

_CHUNK_BYTES = 96 * 2**20
_LAGS = (1, 2)


def _tukey(n: int, frac: float) -> np.ndarray:
    w = np.ones(n)
    m = int(round(frac * n))
    if m > 0:
        ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(m) + 0.5) / m)
        w[:m] = ramp
        w[n - m :] = ramp[::-1]
    return w


def _overlap(w: np.ndarray, r: np.ndarray) -> np.ndarray:
    n = w.size
    p = np.abs(np.fft.rfft(w)) ** 2
    k = np.arange(p.size)
    c = np.full(p.size, 2.0)
    c[0] = 1.0
    if n % 2 == 0:
        c[-1] = 1.0
    o = (np.cos(2 * np.pi * r[..., None] * k / n) * (c * p)).sum(-1) / n
    return o / (w**2).sum()


def _crop_size(n: int, kmax: int) -> int:
    import scipy.fft

    m = scipy.fft.next_fast_len(2 * kmax + 2, real=True)
    return n if m >= n else m


def _band_weight(ny, nx, my, mxh, lo, hi):
    ky = np.fft.fftfreq(my) * my  # signed frequency indices of the cropped rows
    kx = np.arange(mxh)
    fy = ky / ny
    fx = kx / nx
    f = np.hypot(fy[:, None], fx[None, :])
    if hi >= 0.5 and lo <= 0:
        return np.ones_like(f), ky, kx
    w = np.where(f < hi, np.cos(0.5 * np.pi * np.minimum(f / hi, 1.0)) ** 2, 0.0)
    if lo > 0:
        w *= 1.0 - np.exp(-np.log(2.0) * (f / lo) ** 2)
    return w, ky, kx


def phase_correlation_shifts(
    data: Any,
    /,
    *,
    start: int | None = None,
    upsample_factor: int = 3,
    bandpass: tuple[float, float] | None = (0.01, 0.25),
    taper: float = 0.1,
    whiten: float = 0.5,
    max_jump: float | None = None,
    progress: Callable[[int], None] | None = None,
    _lags: tuple[int, ...] = _LAGS,
    _debug: dict | None = None,
    _xprof: bool = True,
) -> np.ndarray:
    """Draft."""
    xp = get_array_module(data)
    fft = get_fft_module(xp)
    fkw = fft_kwargs(xp)
    n, ny, nx = data.shape
    if start is None:
        start = n // 2
    lo, hi = bandpass if bandpass is not None else (0.0, 0.5)
    hi = min(hi, 0.5)
    kmy = min(int(math.ceil(hi * ny)), ny // 2)
    kmx = min(int(math.ceil(hi * nx)), nx // 2)
    my = _crop_size(ny, kmy)
    mx = _crop_size(nx, kmx)
    mxh = mx // 2 + 1
    w, ky, kx = _band_weight(ny, nx, my, mxh, lo, hi)
    sqrt_w = xp.asarray(np.sqrt(w), dtype=np.float32)
    wy, wx = _tukey(ny, taper), _tukey(nx, taper)
    win = xp.asarray(np.outer(wy, wx), dtype=np.float32)

    # --- transform every projection once (chunks) -------------------------------------
    spec = xp.empty((n, my, mxh), dtype=np.complex64)
    prof = xp.empty((n, nx), dtype=np.float32)
    chunk = max(1, _CHUNK_BYTES // (ny * nx * 8))
    ry = np.r_[0 : kmy + 1, my - kmy : my] if my < ny else np.arange(ny)
    sy = np.r_[0 : kmy + 1, ny - kmy : ny] if my < ny else np.arange(ny)
    for i0 in range(0, n, chunk):
        c = xp.asarray(data[i0 : i0 + chunk]).astype(np.float32)
        prof[i0 : i0 + chunk] = c.sum(axis=1)
        mean = c.mean(axis=(1, 2), keepdims=True)
        c -= mean
        c *= win
        f = fft.rfft2(c, axes=(-2, -1), **fkw)
        del c
        blk = spec[i0 : i0 + chunk]
        blk[...] = 0
        if my < ny:
            blk[:, ry, :] = f[:, sy, :mxh]
        else:
            blk[...] = f[:, :, :mxh]
        del f
        amp = xp.abs(blk)
        eps = 1e-3 * amp.mean(axis=(1, 2), keepdims=True) + np.float32(1e-30)
        if whiten == 0.5:
            amp = xp.sqrt(amp + eps)
        elif whiten != 0:
            amp = (amp + eps) ** np.float32(whiten)
        else:
            amp = 1
        blk *= sqrt_w / amp

    # --- pairs ------------------------------------------------------------------------
    pa = np.concatenate([np.arange(n - lag) for lag in _lags if lag < n])
    pb = np.concatenate([np.arange(lag, n) for lag in _lags if lag < n])
    npair = pa.size
    meas = np.zeros((npair, 2))
    psr = np.zeros(npair)
    uf = int(upsample_factor)
    sy_, sx_ = ny / my, nx / mx
    hw_y = max(1.5, 0.5 * sy_ + 1.0)
    hw_x = max(1.5, 0.5 * sx_ + 1.0)
    pchunk = max(1, _CHUNK_BYTES // (my * mx * 8))
    coef = np.full(mxh, 2.0)
    coef[0] = 1.0
    ky_x = xp.asarray(ky)
    kx_x = xp.asarray(kx)
    coef_x = xp.asarray(coef)
    for j0 in range(0, npair, pchunk):
        a = pa[j0 : j0 + pchunk]
        b = pb[j0 : j0 + pchunk]
        cross = spec[a] * spec[b].conj()
        corr = fft.irfft2(cross, s=(my, mx), axes=(-2, -1), **fkw)
        p = corr.shape[0]
        flat = corr.reshape(p, -1)
        idx = flat.argmax(axis=1)
        peak = xp.take_along_axis(flat, idx[:, None], axis=1)[:, 0]
        mu = flat.mean(axis=1)
        sd = flat.std(axis=1)
        psr[j0 : j0 + p] = to_numpy((peak - mu) / (sd + 1e-30))
        idx = to_numpy(idx)
        iy, ix = np.divmod(idx, mx)
        iy = np.where(iy > my // 2, iy - my, iy) * sy_
        ix = np.where(ix > mx // 2, ix - mx, ix) * sx_
        del corr, flat
        # grid centred on the rounded coarse peak, step 1/uf
        cy = np.round(iy)
        cx = np.round(ix)
        ny_pts = int(math.ceil(hw_y * uf))
        nx_pts = int(math.ceil(hw_x * uf))
        oy = np.arange(-ny_pts, ny_pts + 1) / uf
        ox = np.arange(-nx_pts, nx_pts + 1) / uf
        ry_ = cy[:, None] + oy[None, :]
        rx_ = cx[:, None] + ox[None, :]
        c2 = _dft_eval(cross, xp.asarray(ry_), xp.asarray(rx_), ky_x, kx_x, coef_x, ny, nx, xp)
        if taper > 0:
            c2 = c2 / (_overlap(wy, ry_)[:, :, None] * _overlap(wx, rx_)[:, None, :])
        dy, dx = _refine(c2, ry_, rx_, uf)
        meas[j0 : j0 + p, 0] = dy
        meas[j0 : j0 + p, 1] = dx
        del cross
    if _debug is not None:
        _debug.update(meas=meas.copy(), psr=psr.copy(), pa=pa, pb=pb)
    u = _solve(n, pa, pb, meas, psr, start, max_jump, _debug)
    if _xprof:
        ux = _profile_positions(to_numpy(prof), wx, lo, hi, whiten, uf)
        u[:, 1] = ux
    return -(u - u[start])


def _dft_eval(cross, ry, rx, ky, kx, coef, ny, nx, xp):
    ey = xp.exp((2j * np.pi / ny) * ry[:, :, None] * ky[None, None, :]).astype(np.complex64)
    ex = xp.exp((2j * np.pi / nx) * kx[None, :, None] * rx[:, None, :])
    ex = (ex * coef[None, :, None]).astype(np.complex64)
    return to_numpy(xp.matmul(xp.matmul(ey, cross), ex).real)


def _refine(c2, ry, rx, uf):
    p, my_, mx_ = c2.shape
    idx = c2.reshape(p, -1).argmax(axis=1)
    iy, ix = np.divmod(idx, mx_)
    dy = ry[np.arange(p), iy]
    dx = rx[np.arange(p), ix]
    if uf > 1:
        ar = np.arange(p)
        ok = (iy > 0) & (iy < my_ - 1)
        iyc = np.clip(iy, 1, my_ - 2)
        c0 = c2[ar, iyc, ix]
        cm = c2[ar, iyc - 1, ix]
        cp = c2[ar, iyc + 1, ix]
        den = cm - 2 * c0 + cp
        off = np.where(ok & (den < 0), 0.5 * (cm - cp) / np.where(den < 0, den, -1), 0.0)
        dy = dy + np.clip(off, -0.5, 0.5) / uf
        ok = (ix > 0) & (ix < mx_ - 1)
        ixc = np.clip(ix, 1, mx_ - 2)
        c0 = c2[ar, iy, ixc]
        cm = c2[ar, iy, ixc - 1]
        cp = c2[ar, iy, ixc + 1]
        den = cm - 2 * c0 + cp
        off = np.where(ok & (den < 0), 0.5 * (cm - cp) / np.where(den < 0, den, -1), 0.0)
        dx = dx + np.clip(off, -0.5, 0.5) / uf
    return dy, dx


def _solve(n, pa, pb, meas, psr, start, max_jump, debug):
    # unknown u (misalignment), u[a] - u[b] = meas
    npair = pa.size
    a_mat = np.zeros((npair, n))
    a_mat[np.arange(npair), pa] = 1.0
    a_mat[np.arange(npair), pb] = -1.0
    keep = np.ones(n, bool)
    keep[start] = False
    a_red = a_mat[:, keep]
    w0 = np.ones(npair)
    w = w0.copy()
    u = np.zeros((n, 2))
    for _ in range(20):
        aw = a_red * w[:, None]
        lhs = aw.T @ a_red + 1e-9 * np.eye(n - 1)
        rhs = aw.T @ meas
        u_red = np.linalg.solve(lhs, rhs)
        u = np.zeros((n, 2))
        u[keep] = u_red
        res = np.hypot(*(a_mat @ u - meas).T)
        if max_jump is None:
            cut = max(1.0, 6 * 1.4826 * np.median(res))
        else:
            cut = max_jump
        w_new = w0 * np.where(res < cut, (1 - (res / cut) ** 2) ** 2, 0.0) + 1e-6
        if np.allclose(w_new, w):
            break
        w = w_new
    if debug is not None:
        debug.update(w=w, res=res)
    return u


def _dft1(spec, r, k, n, coef):
    e = np.exp((2j * np.pi / n) * r[:, :, None] * k[None, None, :]) * coef
    return np.einsum("pmk,pk->pm", e, spec).real


def _peak1(spec, k, n, coef, uf, hw=1.5):
    corr = np.fft.irfft(spec, n=n, axis=-1)
    i = corr.argmax(axis=1)
    i = np.where(i > n // 2, i - n, i).astype(float)
    m = int(math.ceil(hw * uf))
    r = i[:, None] + np.arange(-m, m + 1)[None, :] / uf
    c = _dft1(spec, r, k, n, coef)
    j = c.argmax(axis=1)
    ar = np.arange(c.shape[0])
    d = r[ar, j]
    if uf > 1:
        jc = np.clip(j, 1, c.shape[1] - 2)
        cm, c0, cp = c[ar, jc - 1], c[ar, jc], c[ar, jc + 1]
        den = cm - 2 * c0 + cp
        ok = (j == jc) & (den < 0)
        off = np.where(ok, 0.5 * (cm - cp) / np.where(den < 0, den, -1), 0.0)
        d = d + np.clip(off, -0.5, 0.5) / uf
    return d


def _profile_positions(prof, wx, lo, hi, whiten, uf, n_iter=3):
    n, nx = prof.shape
    p = (prof - prof.mean(axis=1, keepdims=True)) * wx
    f = np.fft.rfft(p, axis=1)
    k = np.arange(f.shape[1])
    fr = k / nx
    w = np.where(fr < hi, np.cos(0.5 * np.pi * np.minimum(fr / hi, 1)) ** 2, 0.0)
    if lo > 0:
        w *= 1 - np.exp(-np.log(2) * (fr / lo) ** 2)
    coef = np.full(k.size, 2.0)
    coef[0] = 1.0
    amp = np.abs(f)
    g = f * np.sqrt(w) / (amp + 1e-3 * amp.mean(axis=1, keepdims=True) + 1e-30) ** whiten
    # chain (lag 1) then iterate against the mean of the aligned profiles
    d = _peak1(g[:-1] * g[1:].conj(), k, nx, coef, uf)
    u = np.concatenate([[0.0], -np.cumsum(d)])
    for _ in range(n_iter):
        ref = (g * np.exp(2j * np.pi * k * u[:, None] / nx)).mean(axis=0)
        d = _peak1(g * ref.conj()[None, :], k, nx, coef, uf)
        u = d - d.mean()
    return u
