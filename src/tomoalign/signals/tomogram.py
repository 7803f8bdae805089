"""HyperSpy signal for a reconstructed volume (tomogram): a thin shell over a NumPy array.

A tomogram is a :class:`hyperspy.signals.Signal2D` of shape `(nz, ny, nx)` with the axes of
:mod:`tomoalign.reconstruction`: the navigation axis is z (the beam direction at tilt 0,
array axis 0, named ``"z"``), the signal axes are y (across the tilt axis, array axis 1) and
x (along the tilt axis, array axis 2). Browsing the navigator therefore steps through the
tomogram slice by slice (``plot()`` is HyperSpy's), and :meth:`Tomogram.plot_slices` shows
three orthogonal slices at once.

The classes are registered with HyperSpy under names and a ``signal_type`` of their own
(``Tomogram`` / ``LazyTomogram``, ``signal_type="tomoalign_tomogram"``): ETSpy registers a
class named ``RecStack`` (``signal_type="RecStack"``), and HyperSpy keys extension signals by
class name and matches them by signal type, so reusing either would replace or shadow
ETSpy's. ``RecStack`` / ``LazyRecStack`` are exported as aliases for ETSpy users.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from hyperspy._signals.lazy import LazySignal
from hyperspy._signals.signal2d import Signal2D

from tomoalign._backend import is_dask_array, to_numpy
from tomoalign.formats import MRC_SUFFIXES
from tomoalign.reconstruction import check_volume_array
from tomoalign.signals._save import save_volume

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["SIGNAL_TYPE", "LazyRecStack", "LazyTomogram", "RecStack", "Tomogram"]

#: The ``signal_type`` under which the tomogram classes are registered with HyperSpy.
SIGNAL_TYPE = "tomoalign_tomogram"

_AXIS_NAMES = ("z", "y", "x")  # navigation axis first, then the signal axes (y, x)


class Tomogram(Signal2D):
    """A reconstructed volume, shape `(nz, ny, nx)`, browsed slice by slice along z.

    Parameters
    ----------
    data : numpy.ndarray or dask.array.Array
        The volume `(nz, ny, nx)`, axes (z, y, x) as in :mod:`tomoalign.reconstruction`
        (z along the beam at tilt 0, x along the tilt axis), real numbers. A dask array
        gives a :class:`LazyTomogram`. Referenced, not copied.
    **kwargs
        Passed to :class:`hyperspy.signals.Signal2D` (``axes``, ``metadata``, ...). Give the
        voxel size as the axes' ``scale`` and ``units`` (the pixel size of the tilt series).

    Raises
    ------
    ValueError
        When the data is not 3D.
    TypeError
        When the data is not real and numeric.

    Examples
    --------
    >>> import numpy as np
    >>> from tomoalign.signals.tomogram import RecStack
    >>> vol = RecStack(np.zeros((16, 32, 24), np.float32))
    >>> vol.axes_manager.navigation_shape, vol.axes_manager.signal_shape
    ((16,), (24, 32))
    >>> [axis.name for axis in vol.axes_manager._axes]
    ['z', 'y', 'x']
    """

    _signal_type = SIGNAL_TYPE
    _signal_dimension = 2
    _lazy = False

    def __init__(self, data: Any, *args: Any, **kwargs: Any) -> None:
        if not kwargs.get("full_initialisation", True) or "axes" in kwargs:
            # HyperSpy's own re-creation (copy, slicing, loading, as_lazy, compute, a class
            # change): trust the geometry it carries.
            super().__init__(data, *args, **kwargs)
            return
        check_volume_array(data, what="data")
        super().__init__(data, *args, **kwargs)
        self.metadata.Signal.signal_type = SIGNAL_TYPE
        for axis, name in zip(self.axes_manager._axes, _AXIS_NAMES, strict=True):
            if not axis.name or str(axis.name).startswith("<"):
                axis.name = name
        if is_dask_array(self.data) and not self._lazy:
            # A dask array makes a lazy tomogram, as Signal2D(...).as_lazy() would.
            self._lazy = True
            self._assign_subclass()

    def save(  # type: ignore[override]
        self,
        filename: Any = None,
        overwrite: bool | None = None,
        extension: str | None = None,
        file_format: str | None = None,
        **kwargs: Any,
    ) -> None:
        """Save the volume; MRC names (``.mrc``, ``.rec``, ...) go through tomoalign's writer.

        An MRC file is written atomically as a volume `(nz, ny, nx)` (space group 1) with the
        voxel size of the x axis in Å, refusing to replace a file unless ``overwrite=True``
        (HyperSpy's MRC writer needs the optional ``mrcz`` package). Other formats are
        HyperSpy's :meth:`~hyperspy.signal.BaseSignal.save`.

        Parameters
        ----------
        filename : str or path-like, optional
            The output file.
        overwrite : bool or None
            Replace an existing file (MRC: None counts as False).
        extension, file_format : str, optional
            HyperSpy's; when given, HyperSpy saves.
        **kwargs
            For MRC only ``show_progressbar``; otherwise passed to HyperSpy.

        Raises
        ------
        FileExistsError
            When an MRC file exists and ``overwrite`` is not true.
        TypeError
            For an option that the MRC writer does not take.
        """
        suffix = Path(str(filename)).suffix.lower() if filename is not None else ""
        if extension is not None or file_format is not None or suffix not in MRC_SUFFIXES:
            super().save(
                filename,
                overwrite=overwrite,
                extension=extension,
                file_format=file_format,
                **kwargs,
            )
            return
        unknown = sorted(set(kwargs) - {"show_progressbar"})
        if unknown:
            raise TypeError(
                f"saving {str(filename)!r} as MRC takes no option {unknown[0]!r}; the only "
                "option is show_progressbar"
            )
        save_volume(
            self,
            filename,
            overwrite=bool(overwrite),
            show_progressbar=bool(kwargs.get("show_progressbar", False)),
        )

    def plot_slices(
        self, z: int | None = None, y: int | None = None, x: int | None = None
    ) -> Figure:
        """Show three orthogonal slices through the volume, for a quick look.

        Parameters
        ----------
        z, y, x : int or None
            Array indices of the slices: the (y, x) plane at ``z``, the (z, x) plane at
            ``y`` and the (z, y) plane at ``x``. Default: the central index of each axis.
            Negative indices count from the end, as in NumPy.

        Returns
        -------
        matplotlib.figure.Figure
            One row of three images in the axes' calibrated units, sharing one grey scale
            (the 0.5th to 99.5th percentile of the three slices). Only the three slices are
            read, also for a lazy tomogram.

        Raises
        ------
        ValueError
            For an index outside its axis.
        TypeError
            For an index that is not an integer.
        """
        import matplotlib.pyplot as plt

        if self.axes_manager.navigation_dimension != 1 or self.data.ndim != 3:
            raise ValueError(
                f"plot_slices needs a whole volume (nz, ny, nx); this tomogram has data of "
                f"shape {self.data.shape}. Plot a single slice with plot() instead"
            )
        shape = self.data.shape
        index = [
            _check_index(value, size, name)
            for value, size, name in zip((z, y, x), shape, _AXIS_NAMES, strict=True)
        ]
        planes = [
            to_numpy(self.data[index[0], :, :]),  # (y, x)
            to_numpy(self.data[:, index[1], :]),  # (z, x)
            to_numpy(self.data[:, :, index[2]]),  # (z, y)
        ]
        values = np.concatenate([p.ravel() for p in planes]).astype(np.float64)
        finite = values[np.isfinite(values)]
        vmin, vmax = np.percentile(finite, [0.5, 99.5]) if finite.size else (0.0, 1.0)
        axes_by_name = dict(zip(_AXIS_NAMES, self.axes_manager._axes, strict=True))

        def extent(horizontal: str, vertical: str) -> list[float]:
            h, v = axes_by_name[horizontal], axes_by_name[vertical]
            return [
                h.offset - h.scale / 2,
                h.offset + h.scale * (h.size - 0.5),
                v.offset + v.scale * (v.size - 0.5),
                v.offset - v.scale / 2,
            ]

        def label(name: str) -> str:
            units = axes_by_name[name].units
            units = "" if units is None or str(units).startswith("<") else str(units)
            return f"{name} ({units})" if units else name

        fig, axs = plt.subplots(1, 3, figsize=(12, 4), layout="constrained")
        views = (("x", "y", "z"), ("x", "z", "y"), ("y", "z", "x"))
        for ax, plane, (horizontal, vertical, fixed), k in zip(
            axs, planes, views, index, strict=True
        ):
            image = ax.imshow(
                plane,
                cmap="gray",
                vmin=vmin,
                vmax=vmax,
                extent=extent(horizontal, vertical),
                interpolation="nearest",
            )
            ax.set_xlabel(label(horizontal))
            ax.set_ylabel(label(vertical))
            ax.set_title(f"{fixed} = {k}")
        fig.colorbar(image, ax=axs, shrink=0.8)
        title = self.metadata.get_item("General.title", "")
        if title:
            fig.suptitle(str(title))
        return fig


def _check_index(value: Any, size: int, name: str) -> int:
    """The array index of a slice along ``name`` (default the central one), or raise."""
    if value is None:
        return size // 2
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(
            f"{name} must be an int slice index or None; got {type(value).__name__} {value!r}"
        )
    if not -size <= value < size:
        raise ValueError(
            f"{name}={value} is outside the volume's {size} {name}-slices; expected "
            f"{-size} <= {name} <= {size - 1}, or None for the central slice {size // 2}"
        )
    return int(value) % size


class LazyTomogram(LazySignal, Tomogram):
    """Lazy (dask-backed) :class:`Tomogram`; ``compute()`` gives a :class:`Tomogram`."""

    _lazy = True


#: ETSpy's name for the reconstructed-volume signal; the same class as :class:`Tomogram`.
RecStack = Tomogram
#: Lazy counterpart of :data:`RecStack`; the same class as :class:`LazyTomogram`.
LazyRecStack = LazyTomogram
