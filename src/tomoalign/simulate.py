"""Ground-truth tilt series: an analytic phantom, known misalignments and noise.

Pure NumPy functions (no signals): build a tilt series whose geometry is known exactly,
misalign it with :func:`random_misalignment` and ``tomoalign.shifts.apply_shifts``, add
noise with :func:`add_noise_array`, and score an alignment with :mod:`tomoalign.metrics`.

Geometry
--------
The object lives in a right-handed frame ``(x, y, z)`` in pixels, centred on the tilt axis:
x runs along the tilt axis, y across it, z along the beam at tilt 0. A tilt series has shape
`(n_tilts, ny, nx)` (axis 1 is y, axis 2 is x) and the tilt axis runs through the image
centre, ``((ny - 1) / 2, (nx - 1) / 2)`` in 0-based pixel-centre coordinates (IMOD's
convention). At tilt angle ``theta`` (degrees, rotation about x) the point ``(x, y, z)``
projects to

* column ``x + (nx - 1) / 2`` (unchanged by the tilt), and
* row ``y * cos(theta) - z * sin(theta) + (ny - 1) / 2``,

i.e. the projection direction is ``d = (0, sin(theta), cos(theta))``. A point above the
centre plane (``z > 0``) therefore moves towards smaller rows at positive tilts. Pixel
values are line integrals of the density along ``d`` in pixel-length units, averaged over
the pixel's footprint on an ``s x s`` grid (``supersample``; ``s = 1`` samples the pixel
centre only).

The phantom is a set of uniform-density ellipsoids ``(p - c)^T A (p - c) <= 1`` and
optional dense spherical beads, all inside the slab ``|z| <= thickness / 2``, inside the
cylinder of radius ``(ny - 1) / 2 - margin`` around the tilt axis (so that nothing leaves the
field of view at any tilt angle), and at least ``margin`` pixels from the left and right
image edges. The projections are exact: for the ray ``o + t d`` the chord through an
ellipsoid is ``2 sqrt(B^2 - a C) / a`` with ``a = d^T A d``, ``B = d^T A (o - c)`` and
``C = (o - c)^T A (o - c) - 1``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from tomoalign._validation import validate_tilts

__all__ = [
    "DEFAULT_TILTS",
    "add_noise_array",
    "phantom_projections",
    "phantom_volume",
    "random_misalignment",
]

#: Default tilt angles of :func:`phantom_projections`: -70 to +70 degrees in 2 degree steps
#: (71 projections). Read-only.
DEFAULT_TILTS: np.ndarray = np.arange(-70.0, 71.0, 2.0)
DEFAULT_TILTS.flags.writeable = False

_SMALL_AXES = (3.0, 10.0)  # semi-axes of the small ellipsoids, px
_SMALL_DENSITY = (0.5, 2.0)  # uniform density ranges: small ellipsoids are denser,
_LARGE_DENSITY = (0.2, 1.0)  # so that they stand out in projection
_BEAD_RADIUS = (2.0, 3.0)  # px
_BEAD_DENSITY = 8.0  # 4 to 40 times the ellipsoids' densities
_DRIFT_WINDOW = 5  # moving-average width of the drift, projections
_NOISE_CHUNK = 2**22  # values per chunk when drawing noise
_NOISE_KINDS = ("gaussian", "poisson")
_DEFAULT_LEVEL = {"gaussian": 0.1, "poisson": 100.0}


@dataclass(frozen=True)
class _Phantom:
    """Objects of the phantom, in the object frame ``(x, y, z)``, pixels.

    ``centres`` is `(m, 3)`, ``quad`` `(m, 3, 3)` (the matrices ``A`` of
    ``(p - c)^T A (p - c) <= 1``), ``inv_quad`` `(m, 3, 3)` (``A^-1``) and ``densities``
    `(m,)`. The first ``n_ellipsoids`` objects are ellipsoids, the rest beads.
    """

    centres: np.ndarray
    quad: np.ndarray
    inv_quad: np.ndarray
    densities: np.ndarray
    n_ellipsoids: int


def _check_shape(shape: Any) -> tuple[int, int]:
    try:
        dims = tuple(int(v) for v in shape)
    except TypeError:
        raise TypeError(
            f"shape must be a pair of ints (ny, nx); got {type(shape).__name__} {shape!r}"
        ) from None
    if len(dims) != 2 or min(dims) < 16:
        raise ValueError(
            f"shape={tuple(shape)}; expected the image shape (ny, nx) of one projection, "
            "each at least 16 px"
        )
    return dims[0], dims[1]


def _check_count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an int; got {type(value).__name__} {value!r}")
    if value < 0:
        raise ValueError(f"{name}={value}; expected a count >= 0")
    return int(value)


def _check_nonnegative(value: Any, name: str) -> float:
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name}={value}; expected a finite number of pixels >= 0")
    return value


def _geometry(
    shape: Any, thickness: float | None, margin: float | None
) -> tuple[int, int, float, float, float]:
    """Validate and return ``(ny, nx, thickness, radius_yz, half_width_x)``."""
    ny, nx = _check_shape(shape)
    if thickness is None:
        thickness = float(ny // 4)
    thickness = float(thickness)
    if not math.isfinite(thickness) or thickness < 4:
        raise ValueError(
            f"thickness={thickness} px; expected a finite slab thickness of at least 4 px "
            f"(default: ny // 4 = {ny // 4})"
        )
    margins = []
    for n in (ny, nx):
        m = max(2.0, min(20.0, 0.15 * n)) if margin is None else float(margin)
        if not math.isfinite(m) or m < 0:
            raise ValueError(f"margin={margin}; expected a finite number of pixels >= 0")
        margins.append(m)
    radius = (ny - 1) / 2 - margins[0]
    half_x = (nx - 1) / 2 - margins[1]
    if min(radius, half_x) < 4:
        raise ValueError(
            f"margin={margin} leaves less than 4 px between the edge and the centre of a "
            f"{ny} x {nx} image; use a smaller margin or a larger image"
        )
    return ny, nx, thickness, radius, half_x


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    """Uniformly distributed 3D rotation matrix (QR of a Gaussian matrix)."""
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def _make_phantom(
    shape: Any,
    *,
    thickness: float | None,
    beads: int,
    n_ellipsoids: int,
    seed: int,
    margin: float | None,
) -> _Phantom:
    """Draw the phantom's objects; the same arguments always give the same objects."""
    ny, nx, thickness, radius, half_x = _geometry(shape, thickness, margin)
    n_ellipsoids = _check_count(n_ellipsoids, "n_ellipsoids")
    beads = _check_count(beads, "beads")
    half_t = thickness / 2
    large_max = max(12.0, 0.12 * min(ny, nx))
    # Independent streams: adding beads does not move the ellipsoids.
    rng_ell, rng_bead = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))

    centres, quads, inv_quads, densities = [], [], [], []
    for k in range(n_ellipsoids):
        small = k % 2 == 0
        lo, hi = _SMALL_AXES if small else (_SMALL_AXES[1], large_max)
        semi = rng_ell.uniform(lo, hi, size=3)
        rot = _random_rotation(rng_ell)
        density = rng_ell.uniform(*(_SMALL_DENSITY if small else _LARGE_DENSITY))
        inv_quad = rot @ np.diag(semi**2) @ rot.T
        # Half extents along x, along z, and the largest one in the (y, z) plane.
        h_x = math.sqrt(inv_quad[0, 0])
        h_z = math.sqrt(inv_quad[2, 2])
        h_yz = math.sqrt(np.linalg.eigvalsh(inv_quad[1:, 1:])[-1])
        scale = min(1.0, 0.9 * half_t / h_z, 0.5 * radius / h_yz, 0.5 * half_x / h_x)
        semi, inv_quad = semi * scale, inv_quad * scale**2
        h_x, h_z, h_yz = h_x * scale, h_z * scale, h_yz * scale
        room_yz = radius - h_yz
        z_max = min(half_t - h_z, room_yz)
        cz = rng_ell.uniform(-z_max, z_max)
        y_max = math.sqrt(max(room_yz**2 - cz**2, 0.0))
        cy = rng_ell.uniform(-y_max, y_max)
        cx = rng_ell.uniform(-(half_x - h_x), half_x - h_x)
        centres.append((cx, cy, cz))
        quads.append(rot @ np.diag(semi**-2.0) @ rot.T)
        inv_quads.append(inv_quad)
        densities.append(density)

    for _ in range(beads):
        r = min(rng_bead.uniform(*_BEAD_RADIUS), half_t)
        # Beads sit on the two slab surfaces, like gold fiducials on a support film.
        cz = min(half_t - r, radius - r) * (1.0 if rng_bead.random() < 0.5 else -1.0)
        y_max = math.sqrt(max((radius - r) ** 2 - cz**2, 0.0))
        cy = rng_bead.uniform(-y_max, y_max)
        cx = rng_bead.uniform(-(half_x - r), half_x - r)
        centres.append((cx, cy, cz))
        quads.append(np.eye(3) / r**2)
        inv_quads.append(np.eye(3) * r**2)
        densities.append(_BEAD_DENSITY)

    return _Phantom(
        centres=np.asarray(centres, dtype=float).reshape(-1, 3),
        quad=np.asarray(quads, dtype=float).reshape(-1, 3, 3),
        inv_quad=np.asarray(inv_quads, dtype=float).reshape(-1, 3, 3),
        densities=np.asarray(densities, dtype=float),
        n_ellipsoids=n_ellipsoids,
    )


def _check_float_dtype(dtype: DTypeLike) -> np.dtype:
    dt = np.dtype(dtype)
    if dt.kind != "f":
        raise TypeError(f"dtype={dt}; expected a float dtype such as np.float32 or np.float64")
    return dt


def phantom_projections(
    shape: tuple[int, int] = (256, 256),
    tilts: ArrayLike = DEFAULT_TILTS,
    *,
    thickness: float | None = None,
    beads: int = 0,
    n_ellipsoids: int = 24,
    seed: int = 0,
    margin: float | None = None,
    supersample: int = 3,
    dtype: DTypeLike = np.float32,
) -> np.ndarray:
    """Exact projections of a random 3D phantom of ellipsoids (and beads) at given tilts.

    The phantom (see the module docstring for the geometry) holds ``n_ellipsoids``
    uniform ellipsoids with random orientations and three independently drawn semi-axes: the
    even-numbered ones small (semi-axes 3 to 10 px, density 0.5 to 2), the odd-numbered ones
    larger (semi-axes 10 px to ``max(12, 0.12 * min(ny, nx))`` px, density 0.2 to 1), shrunk
    where needed to fit the slab and the field of view; plus ``beads`` spheres of radius 2 to
    3 px and density 8 on the two slab surfaces (``z = +-(thickness / 2 - radius)``). Every
    projection is textured, and at every tilt the background is exactly 0 outside the
    objects, in particular within ``margin - 1/2`` px of each image edge (the objects stay
    inside the projected cylinder of radius ``(ny - 1) / 2 - margin`` and ``margin`` px from
    the left and right edges; the half pixel is the footprint of a pixel).

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)`` of one projection, each at least 16 px.
    tilts : array_like
        Tilt angles in degrees, `(n_tilts,)`, rotation about the x (tilt) axis. Default:
        :data:`DEFAULT_TILTS` (-70 to +70 in 2 degree steps).
    thickness : float or None
        Slab thickness along z in pixels (the objects lie in ``|z| <= thickness / 2``), at
        least 4. Default: ``ny // 4``.
    beads : int
        Number of dense spherical beads (fiducials). Default 0.
    n_ellipsoids : int
        Number of ellipsoids. Default 24.
    seed : int
        Seed of the random phantom; the same seed, shape, thickness, margin and counts give
        the same objects here and in :func:`phantom_volume`.
    margin : float or None
        Empty border in pixels that no object enters at any tilt. Default: 15 % of the size
        along each axis, clipped to [2, 20] px (20 px from 134 px on), so the series
        tolerates shifts of up to ``margin`` px with periodic (Fourier) shifting.
    supersample : int
        Line integrals per pixel side, averaged over the pixel (an area-integrating
        detector). Default 3 (9 rays per pixel): point sampling (1) aliases the sharp edges
        of the uniform objects enough to bias the centre of mass of a 2-3 px bead by up to
        about 0.1 px, against about 0.02 px with 3. Cost grows as ``supersample**2``.
    dtype : dtype
        Float dtype of the result. Default float32 (the sums are done in float64).

    Returns
    -------
    numpy.ndarray
        `(n_tilts, ny, nx)` projections: axis 1 is y (across the tilt axis), axis 2 is x
        (along it). Pixel ``(i, j, k)`` is the mean line integral over the footprint of the
        pixel at row ``j``, column ``k`` (centre at ``y = j - (ny - 1) / 2``,
        ``x = k - (nx - 1) / 2``) at tilt ``tilts[i]``, in density x pixels.

    Raises
    ------
    ValueError
        For an image smaller than 16 px, a thickness below 4 px, an impossible margin,
        negative counts, ``supersample < 1`` or non-finite tilts.
    TypeError
        For a non-float ``dtype`` or non-integer counts.

    Notes
    -----
    Each ellipsoid is evaluated only over its bounding box on the detector. At tilt
    ``theta`` with ``e_u = (1, 0, 0)``, ``e_v = (0, cos, -sin)`` the squared-chord
    discriminant over the detector offset ``w = (du, dv)`` from the projected centre is
    ``a - w^T M w`` with ``M = a A_2 - g g^T``, ``A_2`` the (u, v) block of ``A`` and
    ``g = (e_u^T A d, e_v^T A d)``; its support is the shadow ellipse, whose half widths are
    ``sqrt(a (M^-1)_uu)`` and ``sqrt(a (M^-1)_vv)``.

    Examples
    --------
    >>> import numpy as np
    >>> from tomoalign.simulate import phantom_projections
    >>> stack = phantom_projections((64, 64), np.arange(-60, 61, 30), beads=2)
    >>> stack.shape, stack.dtype
    ((5, 64, 64), dtype('float32'))
    """
    dt = _check_float_dtype(dtype)
    supersample = _check_count(supersample, "supersample")
    if supersample < 1:
        raise ValueError(f"supersample={supersample}; expected at least 1 sample per pixel side")
    phantom = _make_phantom(
        shape,
        thickness=thickness,
        beads=beads,
        n_ellipsoids=n_ellipsoids,
        seed=seed,
        margin=margin,
    )
    ny, nx = _check_shape(shape)
    angles = validate_tilts(tilts, shape="a non-empty 1D array of angles in degrees", name="tilts")

    quad, rho = phantom.quad, phantom.densities
    out = np.zeros((angles.size, ny, nx), dtype=dt)
    buf = np.empty((ny, nx), dtype=np.float64)
    # Sample offsets inside a pixel: its centre, or an s x s grid over its footprint.
    sub = (np.arange(supersample) + 0.5) / supersample - 0.5
    half_px = 0.5 - 0.5 / supersample
    for t, theta in enumerate(np.deg2rad(angles)):
        c, s = math.cos(theta), math.sin(theta)
        d = np.array([0.0, s, c])
        e_v = np.array([0.0, c, -s])
        a_d = quad @ d  # (m, 3): A d
        a = a_d @ d  # d^T A d
        g_u, g_v = a_d[:, 0], a_d @ e_v
        m_uu = a * quad[:, 0, 0] - g_u**2
        m_uv = a * (quad[:, 0, :] @ e_v) - g_u * g_v
        m_vv = a * np.einsum("i,mij,j->m", e_v, quad, e_v) - g_v**2
        det = m_uu * m_vv - m_uv**2
        ext_u = np.sqrt(a * m_vv / det)
        ext_v = np.sqrt(a * m_uu / det)
        cu = phantom.centres[:, 0] + (nx - 1) / 2
        cv = phantom.centres[:, 1] * c - phantom.centres[:, 2] * s + (ny - 1) / 2
        peak = 2.0 * rho / np.sqrt(a)  # central chord x density
        buf.fill(0.0)
        for k in range(rho.size):
            # Pixels whose footprint [i - 1/2, i + 1/2] can meet the shadow ellipse.
            i0 = max(0, math.ceil(cu[k] - ext_u[k] - half_px))
            i1 = min(nx, math.floor(cu[k] + ext_u[k] + half_px) + 1)
            j0 = max(0, math.ceil(cv[k] - ext_v[k] - half_px))
            j1 = min(ny, math.floor(cv[k] + ext_v[k] + half_px) + 1)
            if i0 >= i1 or j0 >= j1:
                continue
            du = (np.arange(i0, i1)[:, None] + sub[None, :]).ravel() - cu[k]
            dv = (np.arange(j0, j1)[:, None] + sub[None, :]).ravel() - cv[k]
            # 1 - w^T M w / a, written as a completed square in du.
            beta = m_uv[k] / m_uu[k]
            frac = (m_uu[k] / a[k]) * (du[None, :] + beta * dv[:, None]) ** 2
            frac += ((det[k] / (m_uu[k] * a[k])) * dv**2 - 1.0)[:, None]
            np.negative(frac, out=frac)
            np.maximum(frac, 0.0, out=frac)
            np.sqrt(frac, out=frac)
            if supersample > 1:
                frac = frac.reshape(j1 - j0, supersample, i1 - i0, supersample).mean(axis=(1, 3))
            frac *= peak[k]
            buf[j0:j1, i0:i1] += frac
        out[t] = buf
    return out


def phantom_volume(
    shape: tuple[int, int] = (256, 256),
    *,
    thickness: float | None = None,
    beads: int = 0,
    n_ellipsoids: int = 24,
    seed: int = 0,
    margin: float | None = None,
    nz: int | None = None,
    dtype: DTypeLike = np.float32,
) -> np.ndarray:
    """Voxelise the phantom of :func:`phantom_projections` (same arguments, same objects).

    Each voxel holds the summed density of the objects that contain its centre (point
    sampling, no anti-aliasing). Voxel ``(k, j, i)`` has its centre at
    ``z = k - (nz - 1) / 2``, ``y = j - (ny - 1) / 2``, ``x = i - (nx - 1) / 2``, so
    ``volume.sum(axis=0)`` approximates the tilt-0 projection, and in general the tilt
    ``theta`` projection is the sum along ``(0, sin(theta), cos(theta))`` (see the module
    docstring).

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)`` of the projections, each at least 16 px.
    thickness, beads, n_ellipsoids, seed, margin
        As in :func:`phantom_projections`.
    nz : int or None
        Number of voxels along z (the beam at tilt 0). Default
        ``ceil(thickness) + 4``, which holds the whole slab with 2 voxels to spare on
        each side. Objects outside the volume are cut off.
    dtype : dtype
        Float dtype of the result. Default float32.

    Returns
    -------
    numpy.ndarray
        `(nz, ny, nx)` density volume, axes (z, y, x).

    Raises
    ------
    ValueError
        As :func:`phantom_projections`, and for ``nz < 1``.

    Examples
    --------
    >>> from tomoalign.simulate import phantom_volume
    >>> phantom_volume((64, 64), thickness=16).shape
    (20, 64, 64)
    """
    dt = _check_float_dtype(dtype)
    phantom = _make_phantom(
        shape,
        thickness=thickness,
        beads=beads,
        n_ellipsoids=n_ellipsoids,
        seed=seed,
        margin=margin,
    )
    ny, nx, thickness, _, _ = _geometry(shape, thickness, margin)
    if nz is None:
        nz = math.ceil(thickness) + 4
    nz = _check_count(nz, "nz")
    if nz < 1:
        raise ValueError(f"nz={nz}; expected at least 1 voxel along z")
    vol = np.zeros((nz, ny, nx), dtype=dt)
    offsets = ((nx - 1) / 2, (ny - 1) / 2, (nz - 1) / 2)  # x, y, z
    sizes = (nx, ny, nz)
    for k in range(phantom.densities.size):
        c, quad = phantom.centres[k], phantom.quad[k]
        half = np.sqrt(np.diag(phantom.inv_quad[k]))
        ranges = []
        for ax in range(3):
            lo = max(0, math.ceil(c[ax] + offsets[ax] - half[ax]))
            hi = min(sizes[ax], math.floor(c[ax] + offsets[ax] + half[ax]) + 1)
            ranges.append((lo, hi))
        if any(lo >= hi for lo, hi in ranges):
            continue
        (x0, x1), (y0, y1), (z0, z1) = ranges
        w = [
            (np.arange(lo, hi) - offsets[ax] - c[ax]).reshape(
                [-1 if axis == ax else 1 for axis in (2, 1, 0)]
            )
            for ax, (lo, hi) in enumerate(ranges)
        ]
        q = sum(quad[p, r] * w[p] * w[r] for p in range(3) for r in range(3))
        vol[z0:z1, y0:y1, x0:x1] += (phantom.densities[k] * (q <= 1.0)).astype(dt)
    return vol


def random_misalignment(
    n_tilts: int, *, jitter: float = 5.0, drift: float = 0.0, seed: int = 0
) -> np.ndarray:
    """Random shifts to misalign a tilt series: uniform jitter plus a smooth drift.

    ``shifts = J + D`` where, on each axis independently,

    * ``J`` is uniform in ``[-jitter, +jitter]`` px, independent per projection, and
    * ``D`` is a random walk: the cumulative sum of Gaussian steps of standard deviation
      ``drift`` px, smoothed by a centred moving average over 5 projections
      (``scipy.ndimage.uniform_filter1d(..., size=5, mode="nearest")``), minus its mean
      over the series. The smoothed steps then have a standard deviation of about
      ``drift / sqrt(5)``.

    Parameters
    ----------
    n_tilts : int
        Number of projections, at least 1.
    jitter : float
        Half-width of the uniform jitter in pixels, >= 0. Default 5.
    drift : float
        Standard deviation of the random-walk steps in pixels, >= 0. Default 0 (no drift).
    seed : int
        Random seed. The jitter and the drift use independent streams, so changing one
        amplitude does not change the other term.

    Returns
    -------
    numpy.ndarray
        `(n_tilts, 2)` float64 shifts in pixels as ``(dy, dx)`` (``[:, 0]`` along y, axis 1;
        ``[:, 1]`` along x, axis 2), in ``apply_shifts``' sign: applying them moves each
        projection's content by ``+shifts[i]``. An alignment that undoes them finds
        ``-shifts`` (up to a rigid translation of the object, see :mod:`tomoalign.metrics`).

    Raises
    ------
    ValueError
        For ``n_tilts < 1`` or a negative or non-finite amplitude.
    TypeError
        For a non-integer ``n_tilts``.

    Examples
    --------
    >>> from tomoalign.simulate import random_misalignment
    >>> shifts = random_misalignment(61, jitter=3.0, drift=0.5, seed=1)
    >>> shifts.shape
    (61, 2)
    """
    from scipy.ndimage import uniform_filter1d

    n_tilts = _check_count(n_tilts, "n_tilts")
    if n_tilts < 1:
        raise ValueError(f"n_tilts={n_tilts}; expected at least 1 projection")
    jitter = _check_nonnegative(jitter, "jitter")
    drift = _check_nonnegative(drift, "drift")
    rng_jitter, rng_drift = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2)
    )
    shifts = rng_jitter.uniform(-jitter, jitter, size=(n_tilts, 2))
    walk = np.cumsum(rng_drift.normal(0.0, drift, size=(n_tilts, 2)), axis=0)
    walk = uniform_filter1d(walk, size=_DRIFT_WINDOW, axis=0, mode="nearest")
    return shifts + (walk - walk.mean(axis=0))


def add_noise_array(
    data: ArrayLike,
    *,
    kind: str = "gaussian",
    level: float | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Return a noisy copy of an array (a tilt series or any other).

    Parameters
    ----------
    data : array_like
        Noise-free real data, any shape (a tilt series is `(n_tilts, ny, nx)`). Finite.
        Never modified.
    kind : {"gaussian", "poisson"}
        ``"gaussian"``: add zero-mean Gaussian noise of standard deviation
        ``level * data.std()`` (the std over the whole array). ``"poisson"``: ``level`` is
        the mean dose in counts per pixel; the data shifted to a minimum of 0 is scaled to
        a mean of ``level`` counts, Poisson-sampled, and mapped back to the original
        intensity scale and offset (so the mean is kept and the relative noise is about
        ``1 / sqrt(counts)``).
    level : float or None
        Noise level, > 0. Default: 0.1 for ``"gaussian"``, 100 counts per pixel for
        ``"poisson"``.
    seed : int
        Random seed.

    Returns
    -------
    numpy.ndarray
        Noisy array of the shape of ``data``: float64 for float64 input, float32 otherwise.

    Raises
    ------
    ValueError
        For an unknown ``kind``, ``level <= 0``, non-finite data or constant data (whose
        noise level is undefined).
    TypeError
        For non-real data.

    Examples
    --------
    >>> import numpy as np
    >>> from tomoalign.simulate import add_noise_array
    >>> clean = np.linspace(0, 1, 1000, dtype=np.float32).reshape(10, 10, 10)
    >>> noisy = add_noise_array(clean, kind="gaussian", level=0.5, seed=0)
    >>> noisy.dtype
    dtype('float32')
    """
    if not isinstance(kind, str) or kind.lower() not in _NOISE_KINDS:
        raise ValueError(
            f"kind={kind!r} is not a noise kind; expected one of "
            f"{', '.join(repr(k) for k in _NOISE_KINDS)}"
        )
    kind = kind.lower()
    if level is None:
        level = _DEFAULT_LEVEL[kind]
    level = float(level)
    if not math.isfinite(level) or level <= 0:
        unit = "x the data std" if kind == "gaussian" else "counts per pixel"
        raise ValueError(f"level={level}; expected a finite noise level > 0 ({unit})")
    arr = np.asarray(data)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"data has dtype {arr.dtype}; expected real numbers (integer or float)")
    if arr.size == 0:
        raise ValueError(f"data has shape {arr.shape} and no values; expected a non-empty array")
    out_dtype = np.float64 if arr.dtype == np.float64 else np.float32
    out = arr.astype(out_dtype, copy=True)
    flat = out.reshape(-1)
    if not np.all(np.isfinite(flat)):
        raise ValueError(
            f"data has {int(np.count_nonzero(~np.isfinite(flat)))} NaN or infinite value(s); "
            "replace them (np.nan_to_num) before adding noise"
        )
    rng = np.random.default_rng(seed)
    if kind == "gaussian":
        std = float(np.std(flat, dtype=np.float64))
        if std == 0:
            raise ValueError(
                "data is constant (std 0); Gaussian noise relative to its std would be zero. "
                "Add np.random.normal noise of an absolute std instead"
            )
        sigma = level * std
        for start in range(0, flat.size, _NOISE_CHUNK):
            part = flat[start : start + _NOISE_CHUNK]
            part += sigma * rng.standard_normal(part.size, dtype=out_dtype)
        return out
    low = float(flat.min())
    mean = float(np.mean(flat, dtype=np.float64)) - low
    if mean <= 0:
        raise ValueError(
            "data is constant; Poisson noise needs a non-constant array to set the dose scale"
        )
    scale = level / mean  # counts per intensity unit
    for start in range(0, flat.size, _NOISE_CHUNK):
        part = flat[start : start + _NOISE_CHUNK]
        counts = rng.poisson((part.astype(np.float64) - low) * scale)
        part[:] = counts / scale + low
    return out
