import inspect
import warnings

import numpy as np
import pytest

import tomoalign
from tomoalign import AlignmentMethod, align_stack, datasets, estimate_shifts, metrics

REFERENCE = [
    ("stack", inspect.Parameter.empty),
    ("method", inspect.Parameter.empty),
    ("start", None),
    ("show_progressbar", False),
    ("xrange", None),
    ("p", 20),
    ("nslices", 20),
    ("cuda", False),
    ("upsample_factor", 3),
    ("com_ref_index", None),
    ("cl_ref_index", None),
    ("cl_resolution", 0.05),
    ("cl_div_factor", 8),
]
METHODS = ["PC", "COM", "COM-CL", "StackReg"]


@pytest.fixture(scope="module")
def truth():
    return datasets.phantom_series((64, 64), tilts=np.arange(-60, 61, 4), seed=3)


@pytest.fixture(scope="module")
def moved(truth):
    return datasets.misalign(truth, jitter=4.0, seed=5)


def test_signature_is_the_reference_to_the_letter():
    params = list(inspect.signature(align_stack).parameters.values())
    positional = [(p.name, p.default) for p in params[: len(REFERENCE)]]
    assert positional == REFERENCE
    assert all(p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for p in params[: len(REFERENCE)])
    rest = {p.name: p for p in params[len(REFERENCE) :]}
    assert rest["shift_type"].kind is inspect.Parameter.KEYWORD_ONLY
    assert rest["shift_type"].default == "fourier"
    assert any(p.kind is inspect.Parameter.VAR_KEYWORD for p in rest.values())


def test_stack_register_signature():
    sig = inspect.signature(tomoalign.TomoStack.stack_register)
    expected = [
        ("method", "PC"),
        ("start", None),
        ("show_progressbar", False),
        ("cuda", False),
        ("crop", False),
        ("shift_type", "fourier"),
    ]
    got = [(p.name, p.default) for p in list(sig.parameters.values())[1:7]]
    assert got == expected


def test_enum_values_and_strings():
    assert [m.value for m in AlignmentMethod] == METHODS
    assert AlignmentMethod.parse("com-cl") is AlignmentMethod.COM_CL
    assert AlignmentMethod.parse(AlignmentMethod.PC) is AlignmentMethod.PC
    assert AlignmentMethod.parse("stackreg") is AlignmentMethod.STACK_REG


def test_unknown_method_lists_valid_ones(moved):
    with pytest.raises(ValueError, match=r"unknown alignment method 'XC'.*'PC', 'COM', 'COM-CL'"):
        align_stack(moved[0], "XC")


def test_misspelt_option_raises(moved):
    stack = moved[0]
    with pytest.raises(TypeError, match=r"unknown option\(s\) 'upsampel_factor'.*upsample_factor"):
        stack.stack_register("PC", upsampel_factor=50)
    with pytest.raises(TypeError, match="unknown option"):
        estimate_shifts(stack.data, "COM-CL", bogus=1)


def test_bad_option_value_raises_before_any_work(moved, monkeypatch):
    import tomoalign.signals._align as align_module

    def estimated(*args, **kwargs):
        raise AssertionError("the estimate ran")

    monkeypatch.setattr(align_module, "_run", estimated)
    monkeypatch.setattr(align_module, "_pc_align", estimated)
    with pytest.raises(ValueError, match=r"bandpass=\(0.3, 0.2\); expected 0 <= low < high"):
        align_stack(moved[0], "PC", bandpass=(0.3, 0.2))
    with pytest.raises(ValueError, match=r"upsample_factor=0; expected an integer in \[1, 100\]"):
        align_stack(moved[0], "PC", upsample_factor=0)
    with pytest.raises(ValueError, match=r"cl_div_factor is 1; expected an integer in \[2, 100\]"):
        moved[0].stack_register("COM-CL", cl_div_factor=1)
    with pytest.raises(TypeError, match=r"StackReg alignment got unknown option\(s\) 'drift'"):
        moved[0].stack_register("StackReg", drift=False)


def test_option_of_another_method_warns(moved):
    with pytest.warns(UserWarning, match="'xrange' is not used by the PC method"):
        align_stack(moved[0], "PC", xrange=(10, 50))


@pytest.mark.parametrize("method", METHODS)
def test_every_method_aligns_ground_truth(moved, truth, method):
    stack, true = moved
    aligned = align_stack(stack, method)
    rms = metrics.rms_error(aligned.shifts, true, truth.tilts)
    assert max(rms) < 0.5, rms
    assert isinstance(aligned, tomoalign.TomoStack)
    assert aligned is not stack
    np.testing.assert_array_equal(aligned.tilts, stack.tilts)


@pytest.mark.parametrize("method", [AlignmentMethod.PC, AlignmentMethod.COM_CL])
def test_enum_and_string_give_the_same(moved, method):
    a = align_stack(moved[0], method).shifts
    b = align_stack(moved[0], method.value).shifts
    np.testing.assert_array_equal(a, b)


def test_input_untouched_and_shifts_accumulate(moved):
    stack, _ = moved
    before = stack.data.copy()
    first = stack.stack_register("PC")
    np.testing.assert_array_equal(stack.data, before)
    np.testing.assert_array_equal(stack.shifts, np.zeros((stack.n_tilts, 2)))
    second = first.stack_register("PC")
    extra = second.shifts - first.shifts
    assert np.abs(extra - extra.mean(axis=0)).max() < 0.35  # already aligned: little left
    np.testing.assert_allclose(
        second.shifts, first.shifts + estimate_shifts(first.data, "PC"), atol=1e-9
    )


@pytest.mark.parametrize("method", ["PC", "COM-CL"])  # PC shares its FFTs with the shift
def test_data_matches_apply_shifts(moved, method):
    stack, _ = moved
    aligned = stack.stack_register(method)
    expected = tomoalign.apply_shifts(stack.data, aligned.shifts)
    np.testing.assert_allclose(aligned.data, expected, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16, np.uint16])
def test_dtype(moved, dtype):
    stack, _ = moved
    data = stack.data * (1000 if np.dtype(dtype).kind in "iu" else 1)
    if np.dtype(dtype).kind == "u":
        data = np.clip(data, 0, None)  # the Fourier shift's ringing would wrap around
    typed = tomoalign.TomoStack(data.astype(dtype), tilts=stack.tilts)
    aligned = typed.stack_register("PC")
    expected = np.dtype(dtype) if np.dtype(dtype).kind == "f" else np.dtype(np.float32)
    assert aligned.data.dtype == expected
    reference = tomoalign.apply_shifts(typed.data, aligned.shifts)
    scale = np.abs(reference).max()
    tolerance = 1e-12 if expected == np.float64 else 1e-6
    np.testing.assert_allclose(aligned.data / scale, reference / scale, atol=tolerance)


def test_crop_keeps_the_common_area_centred_on_the_axis(moved):
    stack, _ = moved
    aligned = stack.stack_register("PC", crop=True)
    s = aligned.shifts
    ny, nx = stack.data.shape[1:]
    # rows: symmetric about the centre row, the tilt axis (tomoalign.shifts.crop_area)
    exp_y = ny - 2 * max(int(np.ceil(max(s[:, 0].max(), 0))), int(np.ceil(max(-s[:, 0].min(), 0))))
    exp_x = nx - int(np.ceil(max(s[:, 1].max(), 0))) - int(np.ceil(max(-s[:, 1].min(), 0)))
    assert aligned.data.shape == (stack.n_tilts, exp_y, exp_x)
    assert aligned.metadata.Tomography.cropped is True


def test_progressbar(moved, capsys):
    moved[0].stack_register("PC", show_progressbar=True)
    err = capsys.readouterr().err
    assert "PC alignment" in err and "100%" in err


def test_cuda_falls_back_with_one_warning(moved, monkeypatch):
    import tomoalign._backend as backend

    monkeypatch.setattr(backend, "cupy_available", lambda: False)
    monkeypatch.setattr(backend, "_cuda_warned", set())
    with pytest.warns(RuntimeWarning, match="computing the same result on the CPU"):
        gpu = moved[0].stack_register("PC", cuda=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = moved[0].stack_register("PC", cuda=True)  # warned once only
    cpu = moved[0].stack_register("PC")
    np.testing.assert_array_equal(gpu.shifts, cpu.shifts)
    np.testing.assert_array_equal(again.data, cpu.data)


@pytest.mark.parametrize("method", METHODS)
def test_lazy_stack(moved, method):
    stack, _ = moved
    lazy = stack.as_lazy()
    out = align_stack(lazy, method)
    assert isinstance(out, tomoalign.LazyTomoStack)
    eager = align_stack(stack, method)
    np.testing.assert_allclose(out.shifts, eager.shifts, atol=1e-9)
    out.compute(show_progressbar=False)
    np.testing.assert_allclose(out.data, eager.data, atol=1e-5)


# -- bad input ------------------------------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
def test_fewer_than_three_projections(moved, method):
    with pytest.raises(ValueError, match="at least 3"):
        align_stack(moved[0].inav[:2], method)


@pytest.mark.parametrize("method", METHODS)
def test_constant_projection(moved, method):
    data = moved[0].data.copy()
    data[4] = 1.0
    with pytest.raises(ValueError, match=r"\[4\].*(zero variance|constant)"):
        align_stack(tomoalign.TomoStack(data, tilts=moved[0].tilts), method)


@pytest.mark.parametrize("method", METHODS)
def test_nan_pixels(moved, method):
    data = moved[0].data.copy()
    data[2, 5, 5] = np.nan
    with pytest.warns(RuntimeWarning):
        stack = tomoalign.TomoStack(data, tilts=moved[0].tilts)
    with pytest.raises(ValueError, match=r"NaN or infinite.*\b2\b"):
        align_stack(stack, method)


@pytest.mark.parametrize("method", ["PC", "StackReg"])
@pytest.mark.parametrize("start", [-1, 31, 100])
def test_start_out_of_range(moved, method, start):
    with pytest.raises(ValueError, match=r"start.*0.*30"):
        align_stack(moved[0], method, start=start)


@pytest.mark.parametrize("value", [0.5, 0.7, 0.0, -0.1])
def test_cl_resolution_range(moved, value):
    with pytest.raises(ValueError, match="cl_resolution"):
        align_stack(moved[0], "COM-CL", cl_resolution=value)


def test_com_needs_tilts(moved):
    no_tilts = tomoalign.TomoStack(moved[0].data)
    with pytest.raises(ValueError, match="tilt"):
        align_stack(no_tilts, "COM")


def test_wrong_shift_shape_in_apply_shifts(moved):
    with pytest.raises(ValueError, match=r"shifts has shape \(30, 2\); expected \(31, 2\)"):
        tomoalign.apply_shifts(moved[0].data, np.zeros((30, 2)))


def test_not_a_tomostack():
    with pytest.raises(TypeError, match="needs a tomoalign TomoStack"):
        align_stack(np.zeros((5, 8, 8)), "PC")
