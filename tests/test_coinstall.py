"""tomoalign and ETSpy in one environment: both packages' signals keep working.

CI installs ETSpy (the ``test`` extra) so these run; elsewhere they skip with the reason.
"""

import subprocess
import sys

import numpy as np
import pytest

etspy_base = pytest.importorskip(
    "etspy.base", reason="ETSpy is not installed (pip install 'tomoalign[test]')"
)

import hyperspy.api as hs  # noqa: E402
from hyperspy.extensions import ALL_EXTENSIONS  # noqa: E402

import tomoalign  # noqa: E402


def test_both_registrations_present():
    signals = ALL_EXTENSIONS["signals"]
    assert signals["TomoStack"]["signal_type"] == "TomoStack"
    assert signals["TomoStack"]["module"].startswith("etspy")
    assert signals["TiltSeries"]["signal_type"] == "tomoalign_tilt_series"
    assert signals["LazyTiltSeries"]["lazy"] is True


def test_set_signal_type_picks_the_right_package(array7):
    ours = hs.signals.Signal2D(array7)
    ours.set_signal_type("tomoalign_tilt_series")
    assert isinstance(ours, tomoalign.TomoStack)
    theirs = hs.signals.Signal2D(array7)
    theirs.set_signal_type("TomoStack")
    assert isinstance(theirs, etspy_base.TomoStack)


def test_hspy_files_reload_as_their_own_class(tmp_path, array7, tilts7):
    e = etspy_base.TomoStack(array7, tilts=tilts7)
    e.save(tmp_path / "e.hspy")
    tomoalign.TomoStack(array7, tilts=tilts7).save(tmp_path / "t.hspy")
    assert isinstance(hs.load(tmp_path / "e.hspy"), etspy_base.TomoStack)
    assert isinstance(hs.load(tmp_path / "t.hspy"), tomoalign.TomoStack)


def test_etspy_stack_converts_with_tilts_and_shifts(array7, tilts7):
    e = etspy_base.TomoStack(array7, tilts=tilts7)
    e.shifts = np.full((7, 2), 1.5)
    ours = tomoalign.TomoStack(e)
    np.testing.assert_array_equal(ours.tilts, tilts7)
    np.testing.assert_array_equal(ours.shifts, np.full((7, 2), 1.5))
    # ETSpy's stack still works as before, its slicing included
    np.testing.assert_array_equal(e.inav[1:3].tilts.data.ravel(), tilts7[1:3])


@pytest.mark.parametrize("order", ["etspy.base, tomoalign", "tomoalign, etspy.base"])
def test_import_order_does_not_matter(order):
    code = f"""
import numpy as np, hyperspy.api as hs
import {order}
import tomoalign, etspy.base
d = np.ones((3, 4, 4), np.float32)
a = hs.signals.Signal2D(d); a.set_signal_type("TomoStack")
b = hs.signals.Signal2D(d); b.set_signal_type("tomoalign_tilt_series")
assert type(a).__module__.startswith("etspy"), type(a)
assert type(b) is tomoalign.TomoStack, type(b)
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("ok")
