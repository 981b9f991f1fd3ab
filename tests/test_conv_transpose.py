"""conv_transpose1d/2d/3d forward and backward against the reference."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st, HealthCheck

import fastconv
from fastconv import _callcache, reference
from fastconv.functional import _plan
from conftest import assert_close
from helpers import non_contiguous, numerical_grad


@st.composite
def configs(draw):
    nd = draw(st.sampled_from([1, 2, 2, 3]))
    groups = draw(st.sampled_from([1, 1, 2]))
    c_in, c_out_g = groups * draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    out_pad = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
    size = tuple(draw(st.integers(1, 5)) for _ in range(nd))
    # Padding small enough that the output stays non-empty.
    padding = tuple(min(draw(st.integers(0, 2)),
                        ((i - 1) * s + d * (k - 1) + o) // 2)
                    for i, k, s, d, o in zip(size, kernel, stride, dilation, out_pad))
    return dict(nd=nd, x=(draw(st.integers(0, 3)), c_in) + size,
                w=(c_in, c_out_g) + kernel, bias=draw(st.booleans()),
                kw=dict(stride=stride, padding=padding, output_padding=out_pad, groups=groups,
                        dilation=dilation),
                dtype=draw(st.sampled_from([np.float32, np.float64])))


def _ops(nd):
    return (getattr(fastconv, f"conv_transpose{nd}d"),
            getattr(fastconv, f"conv_transpose{nd}d_backward"),
            getattr(reference, f"conv_transpose{nd}d"),
            getattr(reference, f"conv_transpose{nd}d_backward"))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs())
def test_matches_reference(cfg):
    fwd, bwd, ref_fwd, ref_bwd = _ops(cfg["nd"])
    rng = np.random.default_rng(0)
    x = rng.standard_normal(cfg["x"]).astype(cfg["dtype"])
    w = rng.standard_normal(cfg["w"]).astype(cfg["dtype"])
    b = rng.standard_normal(cfg["w"][1] * cfg["kw"]["groups"]).astype(cfg["dtype"]) \
        if cfg["bias"] else None
    f64 = lambda a: None if a is None else a.astype(np.float64)  # noqa: E731
    y = fwd(x, w, b, **cfg["kw"])
    assert_close(y, ref_fwd(f64(x), f64(w), f64(b), **cfg["kw"]), cfg["dtype"])
    gy = rng.standard_normal(y.shape).astype(cfg["dtype"])
    for got, want in zip(bwd(gy, x, w, **cfg["kw"]), ref_bwd(f64(gy), f64(x), f64(w), **cfg["kw"])):
        assert_close(got, want, cfg["dtype"])


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_reference_gradients_match_numerical(nd):
    rng = np.random.default_rng(nd)
    size = {1: (5,), 2: (3, 4), 3: (2, 3, 2)}[nd]
    kw = dict(stride=(2,) * nd, padding=(1,) * nd, output_padding=(1,) * nd, groups=2,
              dilation=(1,) * (nd - 1) + (2,))
    x = rng.standard_normal((2, 4) + size)
    w = rng.standard_normal((4, 3) + (3,) * nd)
    b = rng.standard_normal(6)
    _, _, fwd, bwd = _ops(nd)
    gy = rng.standard_normal(fwd(x, w, b, **kw).shape)
    loss = lambda: float(np.sum(fwd(x, w, b, **kw) * gy))  # noqa: E731
    gx, gw, gb = bwd(gy, x, w, **kw)
    np.testing.assert_allclose(gx, numerical_grad(loss, x), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(gw, numerical_grad(loss, w), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(gb, numerical_grad(loss, b), rtol=1e-6, atol=1e-7)


def test_is_the_adjoint_of_conv2d(rng):
    """<conv2d(x, w), y> == <x, conv_transpose2d(y, w)> for the same weight."""
    kw = dict(stride=2, padding=1, dilation=2)
    x = rng.standard_normal((2, 3, 11, 10))
    w = rng.standard_normal((4, 3, 3, 3))
    y = rng.standard_normal(fastconv.conv2d(x, w, **kw).shape)
    lhs = np.sum(fastconv.conv2d(x, w, **kw) * y)
    # output_padding recovers the input size lost to the stride floor.
    xt = fastconv.conv_transpose2d(y, w, output_padding=(0, 1), **kw)
    assert xt.shape == x.shape
    assert lhs == pytest.approx(np.sum(x * xt), rel=1e-12)


def test_output_size_formula_and_layouts(rng):
    x = rng.standard_normal((2, 4, 5, 6)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 2)).astype(np.float32)
    y = fastconv.conv_transpose2d(x, w, stride=(2, 3), padding=(1, 0), output_padding=(1, 2))
    assert y.shape == (2, 3, (5 - 1) * 2 - 2 + 2 + 1 + 1, (6 - 1) * 3 + 1 + 2 + 1)
    y2 = fastconv.conv_transpose2d(non_contiguous(x), np.asfortranarray(w), stride=(2, 3),
                                   padding=(1, 0), output_padding=(1, 2))
    np.testing.assert_array_equal(y, y2)


def test_matches_torch_when_installed(rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((2, 4, 5, 6))
    w = rng.standard_normal((4, 3, 3, 2))
    b = rng.standard_normal(6)
    kw = dict(stride=(2, 1), padding=(1, 0), output_padding=(1, 0), groups=2, dilation=(1, 2))
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    tb = torch.tensor(b, requires_grad=True)
    ty = torch.nn.functional.conv_transpose2d(tx, tw, tb, **kw)
    gy = rng.standard_normal(ty.shape)
    ty.backward(torch.tensor(gy))
    np.testing.assert_allclose(fastconv.conv_transpose2d(x, w, b, **kw), ty.detach().numpy(),
                               rtol=1e-10, atol=1e-12)
    for got, want in zip(fastconv.conv_transpose2d_backward(gy, x, w, **kw),
                         (tx.grad, tw.grad, tb.grad)):
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-10, atol=1e-12)


X = np.zeros((2, 4, 5, 5))
W = np.zeros((4, 3, 3, 3))


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(output_padding=1), ValueError, r"output_padding must be smaller than max\(stride, dilation\)"),
    (dict(stride=2, output_padding=2), ValueError, r"output_padding=\(2, 2\)"),
    (dict(output_padding=-1), ValueError, r"output_padding must be non-negative"),
    (dict(weight=np.zeros((3, 3, 3, 3))), ValueError, r"expects C_in=3"),
    (dict(groups=3, weight=np.zeros((4, 1, 3, 3))), ValueError, r"C_in=4 not divisible by groups=3"),
    (dict(padding=5), ValueError, r"output would be empty"),
    (dict(padding="same"), ValueError, r"padding must be an int or a tuple"),
    (dict(bias=np.zeros(4)), ValueError, r"bias must have shape \(3,\)"),
    (dict(input=np.zeros((5, 5))), ValueError, r"input must be 4-D"),
    (dict(weight=W.astype(np.float32)), TypeError, r"weight has dtype float32 but input has dtype float64"),
    (dict(input=X.astype(int)), TypeError, r"input must have dtype float32 or float64"),
])
def test_bad_arguments(kwargs, exc, match):
    args = dict(input=X, weight=W)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        fastconv.conv_transpose2d(**args)


def test_backward_checks_grad_output_shape():
    with pytest.raises(ValueError, match=r"grad_output must have shape \(2, 3, 7, 7\)"):
        fastconv.conv_transpose2d_backward(np.zeros((2, 3, 7, 6)), X, W)


# ------------------------------------------------ sub-pixel decomposition

@pytest.fixture
def subpixel_always(monkeypatch):
    """The sub-pixel decomposition wherever it applies, however much work its
    padded kernels waste (the plans are memoised: forget them around)."""
    monkeypatch.setattr(_plan, "SUBPIXEL_MIN_WORK_USE", 0.0)
    _callcache.clear()
    yield
    _callcache.clear()


def _torch_conv_transpose(nd, x, w, b, gy, kw):
    """PyTorch's output and (grad_input, grad_weight, grad_bias) in float64."""
    torch = pytest.importorskip("torch")
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    tb = torch.tensor(b, requires_grad=True)
    ty = getattr(torch.nn.functional, f"conv_transpose{nd}d")(tx, tw, tb, **kw)
    ty.backward(torch.tensor(gy))
    return ty.detach().numpy(), (tx.grad.numpy(), tw.grad.numpy(), tb.grad.numpy())


# nd, input size, kernel, stride, padding, output_padding, groups: kernels a
# multiple of the stride and not, strides per axis, padding past a phase
# (3 >= 2), output_padding past the kernel's reach (k=2, op=2 < s=3), odd
# sizes, grouped.
SUBPIXEL_CASES = [
    (2, (5, 4), (4, 4), (2, 2), (1, 1), (0, 0), 1),     # DCGAN's layer
    (2, (5, 7), (3, 5), (2, 3), (0, 2), (1, 2), 2),
    (2, (3, 3), (2, 2), (3, 3), (0, 0), (2, 1), 1),
    (2, (4, 5), (5, 3), (2, 1), (3, 1), (1, 0), 2),
    (1, (7,), (4,), (2,), (1,), (1,), 1),
    (1, (6,), (6,), (4,), (3,), (3,), 2),
    (3, (3, 2, 3), (4, 2, 3), (2, 2, 3), (1, 0, 1), (1, 1, 0), 1),
]


@pytest.mark.parametrize("nd, size, kernel, stride, padding, out_pad, groups", SUBPIXEL_CASES)
@pytest.mark.parametrize("batch", [0, 1, 3])
def test_subpixel_matches_torch_in_float64(subpixel_always, nd, size, kernel, stride,
                                           padding, out_pad, groups, batch):
    """The decomposition gives PyTorch's output and gradients (float64,
    tight), on non-contiguous arrays, for every batch size."""
    rng = np.random.default_rng(sum(size) + batch)
    kw = dict(stride=stride, padding=padding, output_padding=out_pad, groups=groups)
    x = rng.standard_normal((batch, 2 * groups) + size)
    w = rng.standard_normal((2 * groups, 3) + kernel)
    b = rng.standard_normal(3 * groups)
    fwd, bwd = _ops(nd)[:2]
    gy = rng.standard_normal(fwd(x, w, b, **kw).shape)
    want_y, want_grads = _torch_conv_transpose(nd, x, w, b, gy, kw)
    plans = [fastconv.explain(fwd.__name__, x, w, b, **kw),
             *fastconv.explain(bwd.__name__, gy, x, w, **kw)]
    assert [p.algorithm for p in plans] == [_plan.SUBPIXEL if batch else _plan.EMPTY_SUM] * 3
    y = fwd(non_contiguous(x), np.asfortranarray(w), b, **kw)
    assert y.flags.c_contiguous
    np.testing.assert_allclose(y, want_y, rtol=1e-10, atol=1e-12)
    for got, want in zip(bwd(non_contiguous(gy), x, w, **kw), want_grads):
        assert got.flags.c_contiguous
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("nd, size, kernel, stride, padding, out_pad, groups",
                         SUBPIXEL_CASES[:3])
def test_subpixel_float32_matches_reference_at_1_and_2_threads(
        subpixel_always, nd, size, kernel, stride, padding, out_pad, groups):
    rng = np.random.default_rng(5)
    kw = dict(stride=stride, padding=padding, output_padding=out_pad, groups=groups)
    x = rng.standard_normal((3, 4 * groups) + size).astype(np.float32)
    w = rng.standard_normal((4 * groups, 5) + kernel).astype(np.float32)
    b = rng.standard_normal(5 * groups).astype(np.float32)
    fwd, bwd, ref_fwd, ref_bwd = _ops(nd)
    f64 = [a.astype(np.float64) for a in (x, w, b)]
    want_y = ref_fwd(*f64, **kw)
    gy = rng.standard_normal(want_y.shape).astype(np.float32)
    want_grads = ref_bwd(gy.astype(np.float64), *f64[:2], **kw)
    before = fastconv.get_num_threads()
    try:
        for threads in (1, 2):
            fastconv.set_num_threads(threads)
            assert fastconv.explain(fwd.__name__, x, w, b, **kw).algorithm == _plan.SUBPIXEL
            y = fwd(x, w, b, **kw)
            assert y.dtype == np.float32
            assert_close(y, want_y, np.float32)
            for got, want in zip(bwd(gy, x, w, **kw), want_grads):
                assert got.dtype == np.float32
                assert_close(got, want, np.float32)
    finally:
        fastconv.set_num_threads(before)


def test_subpixel_gradients_pass_gradcheck(subpixel_always):
    rng = np.random.default_rng(3)
    kw = dict(stride=(2, 3), padding=(1, 0), output_padding=(1, 1), groups=2)

    def f(x, w, b):
        y = fastconv.conv_transpose2d(x, w, b, **kw)
        return y, lambda gy: fastconv.conv_transpose2d_backward(gy, x, w, **kw)

    x, w, b = (rng.standard_normal(s) for s in ((2, 4, 3, 4), (4, 2, 3, 4), (4,)))
    assert fastconv.explain("conv_transpose2d", x, w, b, **kw).algorithm == _plan.SUBPIXEL
    assert fastconv.gradcheck(f, x, w, b)


def test_subpixel_leaves_its_inputs_alone(subpixel_always):
    rng = np.random.default_rng(4)
    x, w, gy = (rng.standard_normal(s) for s in ((2, 2, 3, 3), (2, 3, 4, 4), (2, 3, 6, 6)))
    copies = [a.copy() for a in (x, w, gy)]
    fastconv.conv_transpose2d(x, w, stride=2, padding=1)
    fastconv.conv_transpose2d_backward(gy, x, w, stride=2, padding=1)
    for a, copy in zip((x, w, gy), copies):
        np.testing.assert_array_equal(a, copy)


def _transposed_plans(x_shape, w_shape, **kw):
    """The plans of a transposed conv's forward and backward."""
    x, w = np.zeros(x_shape, np.float32), np.zeros(w_shape, np.float32)
    y = fastconv.conv_transpose2d(x, w, **kw)
    return [fastconv.explain("conv_transpose2d", x, w, **kw)] + list(
        fastconv.explain("conv_transpose2d_backward", y, x, w, **kw))


DCGAN = dict(x_shape=(8, 128, 16, 16), w_shape=(128, 64, 4, 4), stride=2, padding=1)


def test_plan_keeps_dcgan_on_the_strided_kernels_by_default():
    """Measured slower (docs/performance.md), the decomposition is off unless
    SUBPIXEL_MIN_WORK_USE is lowered: DCGAN's passes run the strided conv's."""
    assert [p.algorithm for p in _transposed_plans(**DCGAN)] == [
        _plan.GEMM_COL2IM, _plan.GEMM_SIDE_BY_SIDE, _plan.WEIGHT_GRAD_GEMM]


def test_plan_decomposes_where_enough_of_the_phase_work_is_useful(monkeypatch):
    """With the threshold at 0.8, DCGAN's 4x4 stride 2 (89% of the phase
    conv's work useful) runs as one stride-1 conv over the four phases in all
    three passes, the phase conv's own plan as `via`; a 3x3 stride 2 (46%)
    keeps the strided path."""
    monkeypatch.setattr(_plan, "SUBPIXEL_MIN_WORK_USE", 0.8)
    _callcache.clear()
    try:
        plans = _transposed_plans(**DCGAN)
        assert [p.algorithm for p in plans] == [_plan.SUBPIXEL] * 3
        assert [p.via.computes for p in plans] == [_plan.GRAD_INPUT, _plan.OUTPUT,
                                                   _plan.GRAD_WEIGHT]
        assert "4 output phases as one stride-1 conv with (2, 2) kernels, 89% >= 80%" \
            in plans[0].reason
        assert "via grad_input: flipped_conv" in str(plans[0])
        assert _plan.SUBPIXEL not in [p.algorithm for p in _transposed_plans(
            (2, 8, 9, 9), (8, 4, 3, 3), stride=2)]
    finally:
        _callcache.clear()


@pytest.mark.parametrize("x_shape, w_shape, kw, why", [
    ((2, 8, 9, 9), (8, 4, 4, 4), dict(stride=1, padding=1), "stride 1: no phases"),
    ((2, 8, 9, 9), (8, 4, 4, 4), dict(stride=2, dilation=2), "dilated taps"),
    ((2, 8, 9, 9), (8, 1, 4, 4), dict(stride=2, groups=8), "depthwise: its own kernels"),
])
def test_plan_never_decomposes_where_phases_do_not_apply(subpixel_always, x_shape, w_shape,
                                                         kw, why):
    assert _plan.SUBPIXEL not in [p.algorithm for p in _transposed_plans(x_shape, w_shape,
                                                                         **kw)], why


def test_subpixel_can_be_forced_only_where_it_applies():
    win = fastconv.functional._conv_transpose.conv_transpose_window(
        "conv_transpose2d", 2, (2, 8, 9, 9), np.dtype(np.float32), (8, 4, 3, 3),
        np.dtype(np.float32), None, None, None, None, 2, 0, 0, 1, 1)[0]
    forced = _plan.plan_conv_transpose(_plan.GRAD_INPUT, 2, 4, 8, win, 1, np.float32,
                                       algorithm=_plan.SUBPIXEL)
    assert (forced.algorithm, forced.reason) == (_plan.SUBPIXEL, "forced by the caller")
    stride1 = fastconv.functional._conv_transpose.conv_transpose_window(
        "conv_transpose2d", 2, (2, 8, 9, 9), np.dtype(np.float32), (8, 4, 3, 3),
        np.dtype(np.float32), None, None, None, None, 1, 0, 0, 1, 1)[0]
    with pytest.raises(ValueError, match="subpixel cannot compute the grad_input of this convolution: it needs a stride > 1"):
        _plan.plan_conv_transpose(_plan.GRAD_INPUT, 2, 4, 8, stride1, 1, np.float32,
                                  algorithm=_plan.SUBPIXEL)


def test_subpixel_phase_conv_runs_winograd_only_on_values_it_keeps_finite(subpixel_always):
    """A 6x6 stride-2 kernel has 3x3 phase kernels, so the data gradient's
    phase conv is a Winograd candidate: the plan reads grad_output's values
    through the decomposition, and an inf in it takes the direct sum, whose
    result PyTorch's matches (inf where it reaches, finite elsewhere)."""
    rng = np.random.default_rng(6)
    x, w = rng.standard_normal((2, 4, 6, 6)), rng.standard_normal((4, 8, 6, 6))
    gy = rng.standard_normal(fastconv.conv_transpose2d(x, w, stride=2).shape)
    plan = fastconv.explain("conv_transpose2d_backward", gy, x, w, stride=2)[0]
    assert (plan.algorithm, plan.via.algorithm) == (_plan.SUBPIXEL, _plan.WINOGRAD_F2X2_3X3)
    gy[0, 0, 3, 3] = np.inf
    plan = fastconv.explain("conv_transpose2d_backward", gy, x, w, stride=2)[0]
    assert plan.algorithm == _plan.SUBPIXEL
    assert plan.via.algorithm != _plan.WINOGRAD_F2X2_3X3
    torch = pytest.importorskip("torch")
    want = torch.nn.functional.conv2d(torch.tensor(gy), torch.tensor(w), stride=2).numpy()
    got = fastconv.conv_transpose2d_backward(gy, x, w, stride=2)[0]
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_subpixel_forward_reads_values_two_plans_down(subpixel_always):
    """The forward's phase conv is a flipped conv, whose conv is the Winograd
    candidate (subpixel -> flipped_conv -> winograd): an inf in the input
    still keeps Winograd out."""
    rng = np.random.default_rng(7)
    x, w = rng.standard_normal((2, 16, 6, 6)), rng.standard_normal((16, 8, 6, 6))
    chain = lambda p: [p.algorithm] + (chain(p.via) if p.via else [])  # noqa: E731
    assert chain(fastconv.explain("conv_transpose2d", x, w, stride=2)) == [
        _plan.SUBPIXEL, _plan.FLIPPED_CONV, _plan.WINOGRAD_F2X2_3X3]
    x[1, 2, 3, 4] = np.inf
    assert _plan.WINOGRAD_F2X2_3X3 not in chain(fastconv.explain("conv_transpose2d", x, w,
                                                                 stride=2))
