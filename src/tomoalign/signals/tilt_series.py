"""HyperSpy signal classes for tilt series: a thin shell over the array functions.

A tilt series is a :class:`hyperspy.signals.Signal2D` of shape ``(n_tilts, ny, nx)``: the
navigation axis enumerates the projections, the two signal axes are the image. The tilt axis
is parallel to x (array axis 2); y (array axis 1) is perpendicular to it.

Per-projection geometry lives in ``metadata.Tomography``:

``tilts``
    `(n_tilts,)` float64, tilt angles in degrees (all zero when unknown).
``shifts``
    `(n_tilts, 2)` float64, pixels. ``shifts[:, 0]`` along y (perpendicular to the tilt axis,
    array axis 1), ``shifts[:, 1]`` along x (parallel to it, array axis 2). ``shifts[i]`` is
    the translation that aligns projection ``i``, with :func:`scipy.ndimage.shift`'s sign
    (the content moves by ``+shift``). Alignment adds to them.
``tiltaxis``, ``xshift``, ``yshift``, ``cropped``
    Tilt-axis rotation (degrees), tilt-axis offsets (pixels) and whether the stack was cropped.

The per-projection entries are declared once, in :data:`PER_PROJECTION`, and sliced together
with the projections in one place (:meth:`TiltSeries._slicer`). Copies, deep copies,
``as_lazy``, ``compute`` and dtype changes carry the metadata as HyperSpy does.

The classes are registered with HyperSpy under class names and a ``signal_type`` of their own
(``TiltSeries`` / ``LazyTiltSeries``, ``signal_type="tomoalign_tilt_series"``) so that they
live beside ETSpy's ``TomoStack`` in one environment; they are exported as
``tomoalign.TomoStack`` and ``tomoalign.LazyTomoStack`` too.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hyperspy._signals.lazy import LazySignal
from hyperspy._signals.signal2d import Signal2D
from hyperspy.signal import BaseSignal

from tomoalign._backend import is_dask_array
from tomoalign._validation import (
    check_series_array,
    check_shifts,
    check_tilts,
    count_nonfinite,
)
from tomoalign._warnings import warn
from tomoalign.shifts import crop_area
from tomoalign.signals import _align, _reconstruct, _save, _tilt
from tomoalign.signals._carried import PER_PROJECTION, SCALAR_DEFAULTS, SIGNAL_TYPE

__all__ = ["PER_PROJECTION", "SIGNAL_TYPE", "LazyTiltSeries", "TiltSeries"]


def _source_geometry(signal: BaseSignal) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Tilts and shifts carried by another signal (ours, ETSpy 1.1 or ETSpy 1.3)."""
    tilts = shifts = None
    # ETSpy >= 1.2 keeps them as signals in attributes `tilts` and `shifts`.
    for name in ("tilts", "shifts"):
        value = getattr(type(signal), name, None)
        if isinstance(value, property):
            try:
                attr = getattr(signal, name)
            except Exception:  # pragma: no cover - a foreign property that fails
                continue
            arr = np.asarray(getattr(attr, "data", attr), dtype=float)
            if name == "tilts":
                tilts = arr.reshape(-1)
            else:
                shifts = arr.reshape(-1, 2)
    md = signal.metadata
    if tilts is None and md.has_item("Tomography.tilts"):
        value = md.get_item("Tomography.tilts")
        if value is not None:
            tilts = np.asarray(value, dtype=float).reshape(-1)
    if shifts is None and md.has_item("Tomography.shifts"):
        value = md.get_item("Tomography.shifts")
        if value is not None:
            shifts = np.asarray(value, dtype=float).reshape(-1, 2)
    return tilts, shifts


class TiltSeries(Signal2D):
    """A tilt series of projections, shape ``(n_tilts, ny, nx)``.

    Parameters
    ----------
    data : numpy.ndarray, dask.array.Array or hyperspy.signals.Signal2D
        The projections, `(n_tilts, ny, nx)`, any real numeric dtype. A HyperSpy signal
        (an ETSpy ``TomoStack`` included) keeps its axes and metadata, and its tilts and shifts
        unless new ones are given. The data is referenced, not copied, and never modified by
        tomoalign.
    tilts : array_like, optional
        `(n_tilts,)` tilt angles in degrees. Default: those of ``data`` when it is a signal
        that has them, else zeros (unknown).
    shifts : array_like, optional
        `(n_tilts, 2)` shifts in pixels as ``(dy, dx)``, see the module docstring. Default: those
        of ``data`` when it is a signal that has them, else zeros.
    **kwargs
        Passed to :class:`hyperspy.signals.Signal2D` (``axes``, ``metadata``,
        ``original_metadata``, ...).

    Raises
    ------
    ValueError
        When the data is not 3D, or tilts/shifts do not match the number of projections.
    TypeError
        When the data is not real and numeric.

    Warns
    -----
    RuntimeWarning
        When eager data contain NaN or infinite pixels. They are kept as they are; alignment
        raises on them, so crop or replace them first.

    Examples
    --------
    >>> import numpy as np
    >>> import tomoalign
    >>> stack = tomoalign.TomoStack(np.zeros((3, 8, 8), np.float32), tilts=[-10, 0, 10])
    >>> stack.tilts
    array([-10.,   0.,  10.])
    >>> stack.inav[1:].shifts.shape
    (2, 2)
    """

    _signal_type = SIGNAL_TYPE
    _signal_dimension = 2
    _lazy = False

    def __init__(
        self,
        data: Any,
        *args: Any,
        tilts: Any = None,
        shifts: Any = None,
        **kwargs: Any,
    ) -> None:
        if not kwargs.get("full_initialisation", True):
            # HyperSpy's own re-initialisation after a class change (_assign_subclass, e.g.
            # ``as_lazy``, ``compute`` or ``set_signal_type``): keep what is there.
            super().__init__(data, *args, **kwargs)
            if (
                not self.metadata.has_item("Tomography.tilts")
                and self.axes_manager.navigation_dimension <= 1
            ):
                self._init_tomography(None, None)
            return
        # HyperSpy re-creates signals from their dictionary (with ``axes``) when copying,
        # slicing and loading: trust that geometry, validate everything else.
        internal = "axes" in kwargs
        src_tilts = src_shifts = None
        if isinstance(data, BaseSignal):
            src_tilts, src_shifts = _source_geometry(data)
            dictionary = data._to_dictionary(add_learning_results=False, add_models=False)
            dictionary.pop("data")
            md = dictionary.get("metadata", {})
            md.setdefault("Signal", {}).pop("signal_type", None)
            md.pop("Tomography", None)
            for key, value in dictionary.items():
                kwargs.setdefault(key, value)
            data = data.data
        if not internal:
            # A user building a series: check the array before HyperSpy wraps it.
            check_series_array(data, what="data")
        super().__init__(data, *args, **kwargs)
        self.metadata.Signal.signal_type = SIGNAL_TYPE
        if not internal:
            names = ("Projections", "x", "y")
            am = self.axes_manager
            for axis, name in zip((*am.navigation_axes, *am.signal_axes), names, strict=False):
                if str(axis.name).startswith("<") or not axis.name:
                    axis.name = name
        self._init_tomography(
            tilts if tilts is not None else src_tilts,
            shifts if shifts is not None else src_shifts,
        )
        if is_dask_array(self.data) and not self._lazy:
            # A dask array makes a lazy series, as hs.signals.Signal2D(...).as_lazy() would.
            self._lazy = True
            self._assign_subclass()
        if not internal and not self._lazy:
            n_bad = count_nonfinite(self.data)
            if n_bad:
                warn(
                    f"the tilt series contains {n_bad} NaN or infinite pixel(s); they are kept "
                    "as they are, but alignment will refuse them: replace them (e.g. "
                    "np.nan_to_num) or crop them away first",
                    RuntimeWarning,
                )

    # -- geometry -----------------------------------------------------------------------------
    @property
    def n_tilts(self) -> int:
        """Number of projections (1 for a single projection)."""
        nav = self.axes_manager.navigation_shape
        return int(nav[0]) if nav else 1

    def _init_tomography(self, tilts: Any, shifts: Any) -> None:
        """Fill ``metadata.Tomography`` with validated defaults (the one place it is built)."""
        md = self.metadata
        n = self.n_tilts
        if tilts is None and md.has_item("Tomography.tilts"):
            tilts = md.get_item("Tomography.tilts")
        if shifts is None and md.has_item("Tomography.shifts"):
            shifts = md.get_item("Tomography.shifts")
        tilts = np.zeros(n) if tilts is None else check_tilts(tilts, n)
        shifts = np.zeros((n, 2)) if shifts is None else check_shifts(shifts, n)
        md.set_item("Tomography.tilts", tilts)
        md.set_item("Tomography.shifts", shifts)
        for key, default in SCALAR_DEFAULTS.items():
            if not md.has_item(f"Tomography.{key}"):
                md.set_item(f"Tomography.{key}", default)

    @property
    def tilts(self) -> np.ndarray:
        """Tilt angles in degrees, `(n_tilts,)` (a copy; assign to change them)."""
        return np.array(self.metadata.Tomography.tilts, dtype=float)

    @tilts.setter
    def tilts(self, value: Any) -> None:
        self.metadata.Tomography.tilts = check_tilts(value, self.n_tilts)

    @property
    def shifts(self) -> np.ndarray:
        """Accumulated alignment shifts `(n_tilts, 2)` as ``(dy, dx)`` in pixels (a copy)."""
        return np.array(self.metadata.Tomography.shifts, dtype=float)

    @shifts.setter
    def shifts(self, value: Any) -> None:
        self.metadata.Tomography.shifts = check_shifts(value, self.n_tilts)

    @property
    def has_tilts(self) -> bool:
        """True when tilt angles are known (not all zero)."""
        return bool(np.any(self.tilts != 0))

    # -- copies that never touch this signal ---------------------------------------------------
    def _deepcopy_with_new_data(
        self,
        data: Any = None,
        copy_variance: bool = False,
        copy_navigator: bool = False,
        copy_learning_results: bool = False,
    ) -> TiltSeries:
        """A deep copy of this series holding ``data``, built without modifying ``self``.

        HyperSpy's version sets ``self.data = None`` and deletes ``learning_results`` (and the
        variance and navigator) for the length of the copy, so another thread reading or
        aligning the same series meanwhile sees an object array or a missing attribute. Here
        the copy is built from a dictionary of ``self`` (metadata deep-copied, ``data``
        referenced, not copied), as :meth:`__deepcopy__` does, and ``self`` is only read.

        Parameters
        ----------
        data : array or None
            The new signal's data, referenced, not copied.
        copy_variance, copy_navigator, copy_learning_results : bool, default False
            Keep ``metadata.Signal.Noise_properties``, the navigator, the learning results.

        Returns
        -------
        TiltSeries or LazyTiltSeries
            Of this series' class, with its axes, metadata and original metadata.
        """
        import copy

        metadata = self.metadata.as_dictionary()  # new dicts at every level, leaves shared
        if not copy_variance:
            metadata.get("Signal", {}).pop("Noise_properties", None)
        if not copy_navigator:
            for key in ("navigator", "_sig_navigator"):
                metadata.get("_HyperSpy", {}).pop(key, None)
        dictionary: dict[str, Any] = {
            "data": data,
            "axes": self.axes_manager._get_axes_dicts(),
            "metadata": copy.deepcopy(metadata),
            "original_metadata": copy.deepcopy(self.original_metadata.as_dictionary()),
            "tmp_parameters": copy.deepcopy(self.tmp_parameters.as_dictionary()),
            "attributes": {"_lazy": self._lazy, "ragged": self.axes_manager._ragged},
        }
        if copy_learning_results and "learning_results" in self.__dict__:
            dictionary["learning_results"] = copy.deepcopy(self.learning_results.__dict__)
        out = type(self)(**dictionary)
        for source, target in zip(self.axes_manager._axes, out.axes_manager._axes, strict=True):
            target.navigate = source.navigate
        if out.metadata.has_item("Markers"):
            from hyperspy.misc._markers import markers_dict_to_markers

            markers = out.metadata.Markers.as_dictionary()
            out.metadata.Markers = {
                key: markers_dict_to_markers(value) for key, value in markers.items()
            }
        return out

    # -- the one constructor of derived series -------------------------------------------------
    def _derive(self, data: Any, *, add_shifts: Any = None, crop: bool = False) -> TiltSeries:
        """A new series derived from this one: ``data``, shifts added, optionally cropped.

        Every workflow function builds its result here, so that the metadata rules hold in
        one place: the copy keeps this series' axes and metadata (deep-copied; ``data`` is
        referenced), ``add_shifts`` `(n_tilts, 2)` are added to ``metadata.Tomography
        .shifts``, and ``crop`` cuts the images to the area that every shifted projection
        covers (:func:`tomoalign.shifts.crop_area`) and sets ``metadata.Tomography.cropped``.
        The crop counts the shifts that ``data`` carries since it was last cropped: all of
        them for a series not yet cropped, only ``add_shifts`` for one already cropped.

        Parameters
        ----------
        data : array
            `(n_tilts, ny, nx)` data of the new series (of this series' image shape).
        add_shifts : array_like, optional
            `(n_tilts, 2)` shifts ``(dy, dx)`` px applied to make ``data``.
        crop : bool, default False
            Crop to the common area of the shifts, as described above.

        Returns
        -------
        TiltSeries or LazyTiltSeries
            Of this series' class (lazy for dask ``data``).
        """
        out = self._deepcopy_with_new_data(data)
        if add_shifts is not None:
            out.shifts = self.shifts + np.asarray(add_shifts, dtype=float)
        if crop:
            cropped = bool(self.metadata.Tomography.cropped)
            added = np.zeros_like(out.shifts) if add_shifts is None else add_shifts
            since = np.asarray(added, dtype=float) if cropped else out.shifts
            ys, xs = crop_area(since, tuple(data.shape))
            out = out.isig[xs, ys]
            out.metadata.Tomography.cropped = True
        return out

    @staticmethod
    def _as_series(signal: Any) -> TiltSeries:
        """``signal`` itself when it is a tilt series, else a :class:`TiltSeries` wrapping it."""
        return signal if isinstance(signal, TiltSeries) else TiltSeries(signal)

    # -- the one place where per-projection metadata follows the projections ------------------
    def _slicer(self, slices: Any, isNavigation: bool | None = None, out: Any = None) -> Any:
        result = super()._slicer(slices, isNavigation=isNavigation, out=out)
        target = out if out is not None else result
        if isNavigation is False or self.axes_manager.navigation_dimension != 1:
            return result
        array_slices = self._get_array_slices(slices, isNavigation)
        index = np.arange(self.n_tilts)[array_slices[0]]
        index = np.atleast_1d(index)
        md = self.metadata.Tomography
        for key in PER_PROJECTION:
            value = md.get_item(key)
            if value is not None:
                target.metadata.Tomography.set_item(key, np.asarray(value)[index].copy())
        return result

    # -- alignment ----------------------------------------------------------------------------
    def stack_register(
        self,
        method: str = "PC",
        start: int | None = None,
        show_progressbar: bool = False,
        cuda: bool = False,
        crop: bool = False,
        shift_type: str = "fourier",
        **options: Any,
    ) -> TiltSeries:
        """Align the series and return an aligned copy (ETSpy's ``stack_register``).

        See :func:`tomoalign.align_stack` for the methods and options; ``metadata.Tomography
        .shifts`` of the result is this series' shifts plus those found.
        """
        return _align.stack_register(
            self,
            method,
            start=start,
            show_progressbar=show_progressbar,
            cuda=cuda,
            crop=crop,
            shift_type=shift_type,
            **options,
        )

    def tilt_align(
        self,
        method: str = "auto",
        *,
        slices: Any = None,
        nslices: int | None = None,
        limit: float = 10.0,
        delta: float = 0.1,
        plot_results: bool = False,
        also_shift: bool = False,
        shift_limit: float = 20.0,
        verify: bool = True,
        show_progressbar: bool = False,
    ) -> TiltSeries:
        """Find the tilt axis and return a corrected copy; see :func:`tomoalign.tilt_align`.

        The correction is refused (with a warning, the input kept) when the data do not
        support it, and with ``verify`` when it would raise the reprojection error.
        """
        return _tilt.tilt_align(
            self,
            method,
            slices=slices,
            nslices=nslices,
            limit=limit,
            delta=delta,
            plot_results=plot_results,
            also_shift=also_shift,
            shift_limit=shift_limit,
            verify=verify,
            show_progressbar=show_progressbar,
        )

    def align_other(self, other: Any, *, shift_type: str = "fourier") -> TiltSeries:
        """Apply this series' whole alignment to ``other``; see :func:`tomoalign.align_other`."""
        return _tilt.align_other(self, other, shift_type=shift_type)

    def shift_crop(self) -> TiltSeries:
        """Crop to the area every shifted projection covers; see :func:`tomoalign.shift_crop`."""
        return _tilt.shift_crop(self)

    # -- reconstruction -----------------------------------------------------------------------
    def reconstruct(
        self,
        method: str = "FBP",
        iterations: int = 50,
        constrain: bool = False,
        thickness: int | None = None,
        cuda: bool = False,
        show_progressbar: bool = False,
    ) -> Any:
        """Reconstruct the volume with astra-toolbox; see :func:`tomoalign.signals.reconstruct`.

        Returns a :class:`~tomoalign.RecStack` `(nz, ny, nx)`, float32, with this series'
        pixel size on its axes.
        """
        return _reconstruct.reconstruct(
            self,
            method,
            iterations=iterations,
            constrain=constrain,
            thickness=thickness,
            cuda=cuda,
            show_progressbar=show_progressbar,
        )

    # -- I/O ----------------------------------------------------------------------------------
    def save(self, filename: Any, overwrite: bool = False, **kwargs: Any) -> None:  # type: ignore[override]
        """Save the tilt series atomically, refusing to replace a file unless asked.

        Parameters
        ----------
        filename : str or path-like
            Output path. The format follows the extension: ``.mrc``, ``.st``, ``.ali``,
            ``.mrcs`` (MRC, with pixel size, and a ``.rawtlt`` beside it when tilts are known),
            ``.hspy`` (HyperSpy, with all metadata), ``.tif``/``.tiff``.
        overwrite : bool, default False
            Replace an existing file. Without it an existing file raises
            :class:`FileExistsError` and nothing is written.
        **kwargs
            Passed to the format's writer.

        See Also
        --------
        tomoalign.load
        """
        _save.save_series(self, filename, overwrite=overwrite, **kwargs)


class LazyTiltSeries(LazySignal, TiltSeries):
    """Lazy (dask-backed) :class:`TiltSeries`; ``compute()`` gives a :class:`TiltSeries`."""

    _lazy = True
