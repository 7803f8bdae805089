"""The option classes: one frozen dataclass per method, checked once, names checked."""

import dataclasses
import inspect
import math

import numpy as np
import pytest

from tomoalign import estimate_shifts
from tomoalign.estimate import (
    CenterOfMassOptions,
    CommonLineOptions,
    PhaseCorrelationOptions,
    StackRegOptions,
    com_cl_shifts,
    com_shifts,
    phase_correlation_align,
    phase_correlation_shifts,
    stackreg_shifts,
)

CLASSES = [
    (PhaseCorrelationOptions, phase_correlation_shifts, "PC"),
    (PhaseCorrelationOptions, phase_correlation_align, "PC"),
    (CenterOfMassOptions, com_shifts, "COM"),
    (CommonLineOptions, com_cl_shifts, "COM-CL"),
    (StackRegOptions, stackreg_shifts, "StackReg"),
]


def _keyword_defaults(func):
    """The function's keyword-only parameters and defaults, less ``progress``."""
    return {
        name: par.default
        for name, par in inspect.signature(func).parameters.items()
        if par.kind is inspect.Parameter.KEYWORD_ONLY and name != "progress"
    }


@pytest.mark.parametrize(("cls", "func", "method"), CLASSES)
def test_fields_and_defaults_are_the_functions(cls, func, method):
    defaults = _keyword_defaults(func)
    assert cls.names() == tuple(defaults)
    assert {f.name: f.default for f in dataclasses.fields(cls)} == defaults
    assert dataclasses.asdict(cls()) == defaults
    assert cls.method == method


@pytest.mark.parametrize(("cls", "func", "method"), CLASSES)
def test_frozen(cls, func, method):
    options = cls()
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.__setattr__(cls.names()[0], 1)
    assert options == cls() and hash(options) == hash(cls())


@pytest.mark.parametrize(("cls", "func", "method"), CLASSES)
def test_unknown_names_list_the_valid_ones(cls, func, method):
    valid = ", ".join(cls.names())
    expected = f"{method} alignment got unknown option(s) 'bogus', 'zzz'; valid options are {valid}"
    with pytest.raises(TypeError) as info:
        cls.from_kwargs(zzz=1, bogus=2)
    assert str(info.value) == expected
    assert cls.from_kwargs() == cls()


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"start": 1.5}, TypeError, r"start must be an int or None; got float 1.5"),
        ({"start": True}, TypeError, r"start must be an int or None; got bool True"),
        ({"upsample_factor": 2.5}, TypeError, r"upsample_factor must be an int; got float 2.5"),
        ({"upsample_factor": True}, TypeError, r"upsample_factor must be an int; got bool"),
        (
            {"upsample_factor": 0},
            ValueError,
            r"upsample_factor=0; expected an integer in \[1, 100\]",
        ),
        ({"upsample_factor": 101}, ValueError, r"upsample_factor=101; expected"),
        ({"bandpass": (0.3, 0.2)}, ValueError, r"bandpass=\(0.3, 0.2\); expected 0 <= low < high"),
        ({"bandpass": (0.1, 0.6)}, ValueError, r"bandpass=\(0.1, 0.6\); .*Nyquist"),
        ({"bandpass": (-0.1, 0.2)}, ValueError, r"bandpass=\(-0.1, 0.2\)"),
        ({"bandpass": (0.1, math.nan)}, ValueError, r"bandpass=\(0.1, nan\)"),
        ({"bandpass": "ab"}, ValueError, r"bandpass='ab'; expected a pair \(low, high\)"),
        ({"bandpass": (0.1, 0.2, 0.3)}, ValueError, r"bandpass=\(0.1, 0.2, 0.3\); expected a pair"),
        ({"taper": 0.5}, ValueError, r"taper=0.5; expected 'periodic'"),
        ({"taper": -0.1}, ValueError, r"taper=-0.1"),
        ({"taper": "hann"}, ValueError, r"taper='hann'; expected 'periodic'"),
        ({"taper": True}, ValueError, r"taper=True"),
        ({"whiten": 1.5}, ValueError, r"whiten=1.5; expected an exponent in \[0, 1\]"),
        ({"whiten": -0.5}, ValueError, r"whiten=-0.5"),
        ({"max_jump": 0}, ValueError, r"max_jump=0; expected a positive number of pixels"),
        ({"max_jump": math.nan}, ValueError, r"max_jump=nan"),
    ],
)
def test_phase_correlation_invalid_values(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        PhaseCorrelationOptions(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "shape", "exc", "match"),
    [
        ({"start": 5}, (5, 16, 16), ValueError, r"start=5 is out of range.*0 <= start <= 4"),
        ({"start": -1}, (5, 16, 16), ValueError, r"start=-1 is out of range"),
        ({"com_sigma": 0}, (5, 16, 16), ValueError, r"com_sigma=0; expected .* in \(0, 5\]"),
        ({"com_sigma": 6}, (5, 16, 16), ValueError, r"com_sigma=6; expected"),
        ({"com_sigma": math.inf}, (5, 16, 16), ValueError, r"com_sigma=inf"),
        ({"bandpass": (0.01, 0.1)}, (5, 16, 40), ValueError, r"bandpass high=0.1 keeps fewer"),
    ],
)
def test_phase_correlation_invalid_for_the_series(kwargs, shape, exc, match):
    options = PhaseCorrelationOptions(**kwargs)  # valid on its own
    with pytest.raises(exc, match=match):
        options.resolve(shape)


def test_phase_correlation_normalised_values():
    options = PhaseCorrelationOptions(upsample_factor=np.int64(7), bandpass=[0, np.float32(0.25)])
    assert type(options.upsample_factor) is int and options.upsample_factor == 7
    assert options.bandpass == (0.0, 0.25) and all(type(v) is float for v in options.bandpass)
    assert PhaseCorrelationOptions(bandpass=None).band == (0.0, 0.5)
    assert PhaseCorrelationOptions().resolve((5, 16, 16)) == 2
    assert PhaseCorrelationOptions(start=np.int64(4)).resolve((5, 16, 16)) == 4
    assert not PhaseCorrelationOptions().windowed
    assert not PhaseCorrelationOptions(taper=0).windowed
    assert PhaseCorrelationOptions(taper=0.1).windowed


def test_center_of_mass_invalid_values():
    with pytest.raises(ValueError, match=r"xrange is 'abc'; expected two column indices"):
        CenterOfMassOptions(xrange="abc")
    with pytest.raises(ValueError, match=r"xrange is \(1, 2, 3\); expected two column indices"):
        CenterOfMassOptions(xrange=(1, 2, 3))


@pytest.mark.parametrize(
    ("kwargs", "nx", "match"),
    [
        ({"p": -1}, 96, r"p is -1; expected an integer in \[0, 95\]"),
        ({"p": 96}, 96, r"p is 96; expected an integer in \[0, 95\]"),
        ({"p": 2.5}, 96, r"p is 2.5; expected an integer in \[0, 95\]"),
        ({"p": True}, 96, r"p is True; expected an integer"),
        ({"nslices": 0}, 96, r"nslices is 0; expected an integer in \[1, 96\] \(the image width"),
        ({"nslices": 101}, 200, r"nslices is 101; expected .*\[1, 100\] \(at most 100"),
        ({"nslices": 2.0}, 96, r"nslices is 2.0; expected an integer"),
        ({"xrange": (-5, 50)}, 96, r"xrange is \(-5, 50\); expected 0 <= start < stop <= 96"),
        ({"xrange": (40, 30)}, 96, r"xrange is \(40, 30\); expected 0 <= start < stop <= 96"),
        ({"xrange": (30, 60), "p": 12}, 96, r"leaves 6 column\(s\); expected at least 8"),
    ],
)
def test_center_of_mass_invalid_for_the_series(kwargs, nx, match):
    options = CenterOfMassOptions(**kwargs)
    with pytest.raises(ValueError, match=match):
        options.resolve(nx)


def test_center_of_mass_window():
    assert CenterOfMassOptions().resolve(100) == (20, 20, 80)
    assert CenterOfMassOptions(xrange=(10.4, 60), p=5).resolve(100) == (5, 15, 55)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"com_ref_index": 1.5}, TypeError, r"com_ref_index is 1.5 \(float\); expected an integer"),
        ({"cl_ref_index": "0"}, TypeError, r"cl_ref_index is '0' \(str\); expected an integer"),
        ({"cl_resolution": "fine"}, TypeError, r"cl_resolution is 'fine'; expected a float"),
        ({"cl_resolution": True}, TypeError, r"cl_resolution is True; expected a float"),
        ({"cl_resolution": 0.5}, ValueError, r"cl_resolution is 0.5; expected .* in \(0, 0.5\)"),
        ({"cl_resolution": 0}, ValueError, r"cl_resolution is 0; expected"),
        ({"cl_resolution": math.nan}, ValueError, r"cl_resolution is nan; expected"),
        (
            {"cl_div_factor": 1},
            ValueError,
            r"cl_div_factor is 1; expected an integer in \[2, 100\]",
        ),
        ({"cl_div_factor": 101}, ValueError, r"cl_div_factor is 101; expected"),
        ({"cl_div_factor": 2.5}, TypeError, r"cl_div_factor is 2.5 \(float\); expected an integer"),
    ],
)
def test_common_line_invalid_values(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        CommonLineOptions(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"com_ref_index": -1}, r"com_ref_index is -1; expected a row index in \[0, 63\]"),
        ({"com_ref_index": 64}, r"com_ref_index is 64; expected a row index"),
        ({"cl_ref_index": 5}, r"cl_ref_index is 5; expected a projection index in \[0, 4\]"),
    ],
)
def test_common_line_invalid_for_the_series(kwargs, match):
    options = CommonLineOptions(**kwargs)
    with pytest.raises(ValueError, match=match):
        options.resolve((5, 64, 32))


def test_common_line_normalised_values():
    options = CommonLineOptions(com_ref_index=np.int32(3), cl_div_factor=np.int64(4))
    assert type(options.com_ref_index) is int and type(options.cl_div_factor) is int
    assert options.resolve((5, 64, 32)) == (3, 2)
    assert CommonLineOptions().resolve((5, 64, 32)) == (32, 2)


def test_stackreg_options():
    with pytest.raises(TypeError, match=r"start must be an int or None; got float 1.5"):
        StackRegOptions(start=1.5)
    with pytest.raises(ValueError, match=r"start=5 is out of range.*0 <= start <= 4"):
        StackRegOptions(start=5).resolve((5, 8, 8))
    assert StackRegOptions().resolve((5, 8, 8)) == 2
    assert StackRegOptions(drift_correction=0).drift_correction is False


@pytest.mark.parametrize(
    ("func", "args"),
    [
        (phase_correlation_shifts, ()),
        (phase_correlation_align, ()),
        (com_shifts, (np.linspace(-60, 60, 5),)),
        (com_cl_shifts, ()),
        (stackreg_shifts, ()),
    ],
)
def test_progress_that_is_not_callable(func, args):
    data = np.random.default_rng(0).random((5, 32, 32))
    with pytest.raises(TypeError, match=r"progress is 3; expected a callable"):
        func(data, *args, progress=3)


def test_bad_value_fails_before_the_data_is_read():
    class Unreadable:
        shape, dtype, ndim = (5, 32, 32), np.dtype(np.float32), 3

        def __getitem__(self, key):
            raise AssertionError("read")

    with pytest.raises(ValueError, match="upsample_factor=0"):
        estimate_shifts(Unreadable(), "PC", upsample_factor=0)
    with pytest.raises(ValueError, match=r"cl_resolution is 0\.7"):
        estimate_shifts(Unreadable(), "COM-CL", cl_resolution=0.7)


@pytest.mark.filterwarnings("ignore:.*look implausible")
def test_estimate_shifts_passes_start_only_where_used():
    data = np.random.default_rng(0).random((5, 32, 32))
    with pytest.raises(ValueError, match=r"start=7 is out of range"):
        estimate_shifts(data, "PC", start=7)
    with pytest.warns(UserWarning, match="'start' is not used by the COM-CL method"):
        estimate_shifts(data, "COM-CL", start=2)
