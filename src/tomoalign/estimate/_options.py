"""The options of each alignment method: one frozen dataclass per method, checked once.

Each class holds the keyword options of one estimator (:func:`phase_correlation_shifts`,
:func:`com_shifts`, :func:`com_cl_shifts`, :func:`stackreg_shifts`) with the same names and
defaults. Construction checks every value that can be checked without the data and raises
the estimator's own error; what depends on the size of the series (an index within the
image or the series, a range narrower than the image) is checked once against the data's
shape by the ``resolve`` method, which returns the values the estimator works with.
``from_kwargs`` builds an instance from keyword options and names the unknown ones.

The ``progress`` callback is not an option (it observes a run, it does not change the
result): every estimator takes it as a separate keyword, checked by :func:`check_progress`.

All the classes live in this one module, below the estimators and :mod:`._dispatch`, so that
the one protocol they share (``from_kwargs``, ``names``, the wording of the errors) is
written once, and :func:`tomoalign.estimate.estimate_shifts` and ``align_stack`` find every
method's options in one place.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any, ClassVar, Self

import numpy as np

from tomoalign._validation import check_start

__all__ = [
    "MAX_DIV_FACTOR",
    "MAX_SLICES",
    "MAX_UPSAMPLE_FACTOR",
    "PERIODIC",
    "CenterOfMassOptions",
    "CommonLineOptions",
    "PhaseCorrelationOptions",
    "StackRegOptions",
    "check_progress",
]

#: ``taper`` value selecting the periodic-plus-smooth decomposition instead of a window.
PERIODIC = "periodic"
#: Largest ``upsample_factor``: a 1/100 px grid is far finer than the precision a tilt series
#: supports, and the upsampled-DFT grid grows as its square (10**6 would ask for ~58 GiB).
MAX_UPSAMPLE_FACTOR = 100
#: Most x-slices tracked by COM: the robust fit of their centres of mass is a dense
#: least-squares problem of ``n_tilts * nslices`` rows by ``n_tilts + 2 * nslices`` columns
#: (nslices = 2048 on 61 projections would take 4 GB), and 100 slices already average the
#: noise well.
MAX_SLICES = 100
#: Largest ``cl_div_factor``: each step evaluates that many candidates per line, and one
#: step of 100 already reaches 0.01 px.
MAX_DIV_FACTOR = 100
#: Smallest width (pixels) of the window over which COM compares mass profiles.
_MIN_WINDOW = 8


def check_progress(progress: Any, what: str) -> None:
    """Raise ``TypeError`` unless ``progress`` is None or callable.

    ``what`` names what the callback counts, e.g. ``"projections read"``.
    """
    if progress is not None and not callable(progress):
        raise TypeError(
            f"progress is {progress!r}; expected a callable taking the number of newly "
            f"{what}, or None."
        )


def _is_int(value: Any) -> bool:
    """True for a Python or NumPy integer that is not a bool."""
    return not isinstance(value, bool) and isinstance(value, int | np.integer)


def _is_fraction(value: Any) -> bool:
    """True for a real number (not a bool) in [0, 0.5)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and 0 <= value < 0.5


def _check_start_type(start: Any) -> None:
    """Raise the ``TypeError`` of :func:`check_start` for a ``start`` that is no index."""
    if start is not None and not _is_int(start):
        check_start(start, 1)


def _check_int(value: Any, name: str) -> int:
    """Return ``value`` as an int, or raise ``TypeError`` for a non-integer."""
    if not _is_int(value):
        raise TypeError(f"{name} is {value!r} ({type(value).__name__}); expected an integer.")
    return int(value)


class _Options:
    """What the option classes share: the method's name, ``from_kwargs`` and ``names``."""

    #: The method's name in messages (the :class:`AlignmentMethod` value).
    method: ClassVar[str]

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The option names, in the order of the estimator's keyword parameters."""
        return tuple(field.name for field in dataclasses.fields(cls))  # type: ignore[arg-type]

    @classmethod
    def from_kwargs(cls, **options: Any) -> Self:
        """Build the options from keywords; an unknown name raises ``TypeError``.

        Raises
        ------
        TypeError
            Naming the unknown option(s) and listing the valid ones.
        ValueError, TypeError
            For an invalid value, as the constructor.
        """
        valid = cls.names()
        unknown = sorted(set(options) - set(valid))
        if unknown:
            raise TypeError(
                f"{cls.method} alignment got unknown option(s) "
                f"{', '.join(map(repr, unknown))}; valid options are {', '.join(valid)}"
            )
        return cls(**options)


@dataclasses.dataclass(frozen=True)
class PhaseCorrelationOptions(_Options):
    """Options of phase-correlation (PC) alignment; see :func:`phase_correlation_shifts`.

    Attributes
    ----------
    start : int or None
        Reference projection (shift 0); None: the central one. Checked against the number
        of projections by :meth:`resolve`.
    upsample_factor : int
        Subpixel grid of ``1 / upsample_factor`` px, in ``[1, 100]``.
    bandpass : tuple of float or None
        ``(low, high)`` cycles per pixel, ``0 <= low < high <= 0.5``; stored as floats.
        None: no band weighting.
    taper : {"periodic"} or float
        The periodic-plus-smooth decomposition, or a Tukey window's fraction in [0, 0.5).
    whiten : float
        Spectrum normalisation exponent in [0, 1].
    max_jump : float or None
        Pair outlier cut in pixels (> 0), or None for 6 robust standard deviations.
    com_sigma : float or None
        Width in projections of the centre-of-mass trend along y, in ``(0, n_tilts]``
        (checked by :meth:`resolve`), or None.

    Raises
    ------
    TypeError
        For a non-integer ``start`` or ``upsample_factor``.
    ValueError
        For an out-of-range value.

    Examples
    --------
    >>> from tomoalign.estimate import PhaseCorrelationOptions
    >>> PhaseCorrelationOptions(upsample_factor=10).band
    (0.01, 0.25)
    >>> PhaseCorrelationOptions.from_kwargs(upsampel_factor=10)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    TypeError: PC alignment got unknown option(s) 'upsampel_factor'; valid options are start, ...
    """

    method: ClassVar[str] = "PC"

    start: int | None = None
    upsample_factor: int = 3
    bandpass: tuple[float, float] | None = (0.01, 0.25)
    taper: float | str = PERIODIC
    whiten: float = 0.5
    max_jump: float | None = None
    com_sigma: float | None = 1.0

    def __post_init__(self) -> None:
        _check_start_type(self.start)
        self._check_upsample_factor()
        self._check_bandpass()
        taper = self.taper
        if not (taper == PERIODIC if isinstance(taper, str) else _is_fraction(taper)):
            raise ValueError(
                f"taper={taper!r}; expected {PERIODIC!r} (periodic-plus-smooth decomposition) "
                "or a fraction of the image size in [0, 0.5) tapered at each edge"
            )
        if not 0.0 <= self.whiten <= 1.0:
            raise ValueError(
                f"whiten={self.whiten}; expected an exponent in [0, 1] (1: phase only)"
            )
        if self.max_jump is not None and not self.max_jump > 0:
            raise ValueError(
                f"max_jump={self.max_jump}; expected a positive number of pixels or None"
            )

    def _check_upsample_factor(self) -> None:
        factor = self.upsample_factor
        if not _is_int(factor):
            raise TypeError(
                f"upsample_factor must be an int; got {type(factor).__name__} {factor!r}"
            )
        if not 1 <= factor <= MAX_UPSAMPLE_FACTOR:
            raise ValueError(
                f"upsample_factor={factor}; expected an integer in [1, "
                f"{MAX_UPSAMPLE_FACTOR}] (1: whole pixels, k: 1/k px grid refined by a "
                "parabola; the grid's memory and time grow as its square)"
            )
        object.__setattr__(self, "upsample_factor", int(factor))

    def _check_bandpass(self) -> None:
        bandpass = self.bandpass
        if bandpass is None:
            return
        try:
            lo, hi = (float(v) for v in bandpass)
        except (TypeError, ValueError):
            raise ValueError(
                f"bandpass={bandpass!r}; expected a pair (low, high) of frequencies in cycles "
                "per pixel, or None"
            ) from None
        if not (0.0 <= lo < hi <= 0.5) or not math.isfinite(lo + hi):
            raise ValueError(
                f"bandpass={bandpass!r}; expected 0 <= low < high <= 0.5 cycles per pixel "
                "(0.5 is the Nyquist frequency), e.g. (0.01, 0.25)"
            )
        object.__setattr__(self, "bandpass", (lo, hi))

    @property
    def band(self) -> tuple[float, float]:
        """``(low, high)`` cycles per pixel: ``bandpass``, or ``(0.0, 0.5)`` for None."""
        return (0.0, 0.5) if self.bandpass is None else self.bandpass

    @property
    def windowed(self) -> bool:
        """True when ``taper`` asks for a Tukey window (a positive fraction)."""
        return not isinstance(self.taper, str) and self.taper > 0

    def resolve(self, shape: tuple[int, int, int]) -> int:
        """Check the options against a series of ``shape``; return the ``start`` index.

        Raises
        ------
        ValueError
            For ``start`` outside the series, a ``bandpass`` high frequency that keeps fewer
            than 2 frequencies of an image, or ``com_sigma`` outside ``(0, n_tilts]``.
        """
        n = int(shape[0])
        start = check_start(self.start, n)
        hi = self.band[1]
        if self.bandpass is not None and hi * min(shape[1:]) < 2:
            raise ValueError(
                f"bandpass high={hi} keeps fewer than 2 frequencies of a {shape[1]} x "
                f"{shape[2]} image; raise it to at least {2 / min(shape[1:]):.3g}"
            )
        if self.com_sigma is not None and not 0 < self.com_sigma <= n:
            raise ValueError(
                f"com_sigma={self.com_sigma}; expected a width in projections in (0, {n}] "
                "(the number of projections; a wider low-pass is a constant), or None"
            )
        return start


@dataclasses.dataclass(frozen=True)
class CenterOfMassOptions(_Options):
    """Options of centre-of-mass (COM) alignment; see :func:`com_shifts`.

    Every bound of these options is the image width, so beyond the form of ``xrange`` they
    are checked against the data by :meth:`resolve`.

    Attributes
    ----------
    xrange : tuple of int or None
        Columns ``(start, stop)`` (px along x, stop exclusive) whose mass profiles are
        matched, compared over ``[start + p, stop - p)``; None: the central 3/5 of ``nx``.
    p : int
        Search range of the x shift in pixels, ``0 <= p < nx``.
    nslices : int
        Number of x-slices tracked for the y shift, ``1 <= nslices <= min(nx, 100)``.

    Raises
    ------
    ValueError
        For an ``xrange`` that is not two numbers.

    Examples
    --------
    >>> from tomoalign.estimate import CenterOfMassOptions
    >>> CenterOfMassOptions(p=10).resolve(96)
    (10, 19, 77)
    """

    method: ClassVar[str] = "COM"

    xrange: tuple[int, int] | None = None
    p: int = 20
    nslices: int = 20

    def __post_init__(self) -> None:
        if self.xrange is not None:
            self._columns()

    def _columns(self) -> tuple[int, int]:
        """``xrange`` rounded to whole columns, or raise ``ValueError``."""
        try:
            x0, x1 = (round(float(v)) for v in self.xrange)  # type: ignore[union-attr]
        except (TypeError, ValueError):
            raise ValueError(
                f"xrange is {self.xrange!r}; expected two column indices (start, stop)."
            ) from None
        return x0, x1

    def resolve(self, nx: int) -> tuple[int, int, int]:
        """Check the options against images ``nx`` px wide; return ``(p, lo, hi)``.

        ``[lo, hi)`` are the columns over which the mass profiles are compared.

        Raises
        ------
        ValueError
            For ``p`` outside ``[0, nx)``; ``nslices`` outside ``[1, min(nx, 100)]``; an
            ``xrange`` outside the image or too narrow for ``p``.
        """
        p, nslices = self.p, self.nslices
        if not _is_int(p) or not 0 <= p < nx:
            raise ValueError(
                f"p is {p!r}; expected an integer in [0, {nx - 1}] (search range in pixels, "
                "less than the image width)."
            )
        p = int(p)
        most = min(nx, MAX_SLICES)
        if not _is_int(nslices) or not 1 <= nslices <= most:
            why = (
                "the image width"
                if most == nx
                else f"at most {MAX_SLICES}; the fit grows as its square"
            )
            raise ValueError(f"nslices is {nslices!r}; expected an integer in [1, {most}] ({why}).")
        if self.xrange is None:
            # ETSpy's default: compare the central 3/5 directly (profiles are shifted
            # periodically, so the search range needs no margin inside it).
            lo, hi = round(nx / 5), round(4 * nx / 5)
            x0, x1 = lo - p, hi + p
        else:
            x0, x1 = self._columns()
            if not 0 <= x0 < x1 <= nx:
                raise ValueError(
                    f"xrange is {self.xrange!r}; expected 0 <= start < stop <= {nx} (image width)."
                )
            lo, hi = x0 + p, x1 - p
        if hi - lo < _MIN_WINDOW:
            raise ValueError(
                f"xrange {(x0, x1)} minus the search range p={p} at both ends leaves "
                f"{max(hi - lo, 0)} column(s); expected at least {_MIN_WINDOW}. Widen xrange "
                "or reduce p."
            )
        return p, lo, hi


@dataclasses.dataclass(frozen=True)
class CommonLineOptions(_Options):
    """Options of centre-of-mass plus common-line (COM-CL) alignment; see :func:`com_cl_shifts`.

    Attributes
    ----------
    com_ref_index : int or None
        Row (px along y) the centres of mass are moved to; None: ``ny // 2``. Checked
        against the image height by :meth:`resolve`.
    cl_ref_index : int or None
        Projection whose common line is the reference; None: ``n_tilts // 2``. Checked
        against the number of projections by :meth:`resolve`.
    cl_resolution : float
        Precision of the subpixel common-line search in pixels, in ``(0, 0.5)``; stored as
        a float.
    cl_div_factor : int
        Parts the search interval is divided into at each step, in ``[2, 100]``.

    Raises
    ------
    TypeError
        For a non-integer index or division factor, or a ``cl_resolution`` that is not a
        number.
    ValueError
        For ``cl_resolution`` or ``cl_div_factor`` out of range.

    Examples
    --------
    >>> from tomoalign.estimate import CommonLineOptions
    >>> CommonLineOptions(cl_ref_index=0).resolve((5, 64, 64))
    (32, 0)
    """

    method: ClassVar[str] = "COM-CL"

    com_ref_index: int | None = None
    cl_ref_index: int | None = None
    cl_resolution: float = 0.05
    cl_div_factor: int = 8

    def __post_init__(self) -> None:
        if self.com_ref_index is not None:
            object.__setattr__(
                self, "com_ref_index", _check_int(self.com_ref_index, "com_ref_index")
            )
        if self.cl_ref_index is not None:
            object.__setattr__(self, "cl_ref_index", _check_int(self.cl_ref_index, "cl_ref_index"))
        resolution = self.cl_resolution
        if isinstance(resolution, bool) or not isinstance(resolution, int | float):
            raise TypeError(f"cl_resolution is {resolution!r}; expected a float in (0, 0.5).")
        if not (math.isfinite(resolution) and 0 < resolution < 0.5):
            raise ValueError(
                f"cl_resolution is {resolution}; expected a precision in pixels in (0, 0.5), "
                "e.g. 0.05."
            )
        object.__setattr__(self, "cl_resolution", float(resolution))
        div = _check_int(self.cl_div_factor, "cl_div_factor")
        if not 2 <= div <= MAX_DIV_FACTOR:
            raise ValueError(
                f"cl_div_factor is {div}; expected an integer in [2, {MAX_DIV_FACTOR}], e.g. 8 "
                "(each step evaluates that many candidates per line)."
            )
        object.__setattr__(self, "cl_div_factor", div)

    def resolve(self, shape: tuple[int, int, int]) -> tuple[int, int]:
        """Check the indices against a series of ``shape``; return ``(com_ref, cl_ref)``.

        Raises
        ------
        ValueError
            For ``com_ref_index`` outside ``[0, ny)`` or ``cl_ref_index`` outside
            ``[0, n_tilts)``.
        """
        n, ny = int(shape[0]), int(shape[1])
        com_ref = ny // 2 if self.com_ref_index is None else self.com_ref_index
        if not 0 <= com_ref < ny:
            raise ValueError(
                f"com_ref_index is {com_ref}; expected a row index in [0, {ny - 1}] (the image "
                f"height is {ny}). It is the row the centers of mass are moved to."
            )
        cl_ref = n // 2 if self.cl_ref_index is None else self.cl_ref_index
        if not 0 <= cl_ref < n:
            raise ValueError(
                f"cl_ref_index is {cl_ref}; expected a projection index in [0, {n - 1}] "
                f"({n} projections)."
            )
        return com_ref, cl_ref


@dataclasses.dataclass(frozen=True)
class StackRegOptions(_Options):
    """Options of StackReg alignment; see :func:`stackreg_shifts`.

    Attributes
    ----------
    start : int or None
        Projection that stays in place (shift 0); None: ``n_tilts // 2``. Checked against
        the number of projections by :meth:`resolve`.
    drift_correction : bool
        Correct the drift that chaining accumulates; stored as ``bool(value)``.

    Raises
    ------
    TypeError
        For a non-integer ``start``.

    Examples
    --------
    >>> from tomoalign.estimate import StackRegOptions
    >>> StackRegOptions(start=2)
    StackRegOptions(start=2, drift_correction=True)
    """

    method: ClassVar[str] = "StackReg"

    start: int | None = None
    drift_correction: bool = True

    def __post_init__(self) -> None:
        _check_start_type(self.start)
        object.__setattr__(self, "drift_correction", bool(self.drift_correction))

    def resolve(self, shape: tuple[int, int, int]) -> int:
        """Check ``start`` against a series of ``shape``; return the ``start`` index.

        Raises
        ------
        ValueError
            For ``start`` outside ``[0, n_tilts)``.
        """
        return check_start(self.start, int(shape[0]))
