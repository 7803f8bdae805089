"""Pixel size from FEI extended headers when the standard header has none."""

import mrcfile
import numpy as np
import pytest
from mrcfile.dtypes import get_ext_header_dtype

import tomoalign


def test_real_needle_pixel_size_from_the_old_fei_header(shared_data):
    # HAADF.txt: "Image pixel size [nm]: 3.36"; the standard header holds the 1 Å placeholder.
    with pytest.warns(UserWarning, match="permissive mode"):
        stack = tomoalign.load(shared_data / "needle" / "HAADF.mrc", lazy=True)
    for axis in stack.axes_manager.signal_axes:
        assert axis.scale == pytest.approx(3.36, rel=1e-6)
        assert axis.units == "nm"
    assert stack.original_metadata.MRC.pixel_size_source == "FEI extended header"


def _fei1_file(path, voxel, pixel_m):
    dt = get_ext_header_dtype(b"FEI1", "<")
    records = np.zeros(3, dt)
    records["Metadata size"] = dt.itemsize
    records["Alpha tilt"] = [-30, 0, 30]
    records["Pixel size X"] = pixel_m
    with mrcfile.new(path) as mrc:
        mrc.set_data(np.ones((3, 8, 8), np.float32))
        mrc.set_image_stack()
        mrc.set_extended_header(records)
        mrc.header.exttyp = b"FEI1"
        if voxel is not None:
            mrc.voxel_size = voxel


@pytest.mark.parametrize(("voxel", "expected"), [(None, 0.25), (1.0, 0.25), (5.0, 0.5)])
def test_fei1_pixel_size_only_when_the_header_has_none(tmp_path, voxel, expected):
    path = tmp_path / "fei1.mrc"
    _fei1_file(path, voxel, 0.25e-9)
    stack = tomoalign.load(path)
    np.testing.assert_array_equal(stack.tilts, [-30, 0, 30])
    assert stack.axes_manager.signal_axes[0].scale == pytest.approx(expected)
    assert stack.axes_manager.signal_axes[0].units == "nm"


@pytest.mark.parametrize("pixel_m", [0.0, -1e-9, 5.0, np.inf])
def test_implausible_fei_pixel_size_is_ignored(tmp_path, pixel_m):
    path = tmp_path / "fei1.mrc"
    _fei1_file(path, None, pixel_m)
    stack = tomoalign.load(path)
    assert stack.axes_manager.signal_axes[0].scale == 1.0
