"""conv_transpose1d/2d/3d forward and backward against the reference."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st, HealthCheck

import fastconv
from fastconv import reference
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
