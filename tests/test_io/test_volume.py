"""RecStack (Tomogram) volumes saved as MRC through tomoalign's atomic writer."""

import mrcfile
import numpy as np
import pytest

from tomoalign.signals.tomogram import RecStack


@pytest.fixture
def volume():
    data = np.random.default_rng(3).random((6, 20, 12), dtype=np.float32)
    vol = RecStack(data)
    for axis in vol.axes_manager._axes:
        axis.scale, axis.units = 0.5, "nm"
    return vol


@pytest.mark.parametrize("name", ["rec.mrc", "rec.rec"])
def test_volume_round_trip(tmp_path, volume, lazy, name):
    vol = volume.as_lazy() if lazy else volume
    path = tmp_path / name
    vol.save(path)
    with mrcfile.open(path) as mrc:  # strict mode: a standard file
        np.testing.assert_array_equal(mrc.data, volume.data)
        assert mrc.is_volume()
        assert mrc.voxel_size.x == pytest.approx(5.0)
        assert mrc.voxel_size.z == pytest.approx(5.0)
        assert int(mrc.header.mz) == 6
        assert float(mrc.header.dmax) == pytest.approx(float(volume.data.max()))
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_volume_refuses_to_overwrite(tmp_path, volume):
    path = tmp_path / "rec.mrc"
    volume.save(path)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        volume.save(path)
    volume.save(path, overwrite=True, show_progressbar=True)


def test_volume_unknown_mrc_option(tmp_path, volume):
    with pytest.raises(TypeError, match="no option 'compression'"):
        volume.save(tmp_path / "rec.mrc", compression="gzip")


def test_volume_hspy_still_saves_through_hyperspy(tmp_path, volume):
    volume.save(tmp_path / "rec.hspy")
    assert (tmp_path / "rec.hspy").is_file()
