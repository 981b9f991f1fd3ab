"""Grouped convolution with few channels per group (ResNeXt's 32x4d: 8 input
and 8 output channels per group), which runs the depthwise kernels' direct
loops (plan DIRECT_GROUPED): every pass against the reference on every SIMD
path and 1 and 2 threads, for many channel counts per group (1, 2, 3, 4, 8,
16), odd sizes, strides, dilation and padding, 1-D to 3-D, both dtypes; the
direct kernels forced where the plan would run a GEMM; PyTorch and gradcheck
on a small ResNeXt layer.  (test_depthwise.py checks that 1 and 2 threads
agree, for both.)"""
import numpy as np
import pytest

import fastconv
from fastconv import reference
from fastconv.functional import _conv, _plan
from fastconv.functional._geometry import Window
from conftest import assert_close, check_conv_against_reference


# (x shape, groups, output channels per group, kernel, keyword arguments)
CASES = [
    ((2, 16, 7, 28), 2, 8, (3, 3), dict(padding=1)),             # ResNeXt-like, 8 per group
    ((1, 8, 5, 19), 4, 2, (3, 3), dict(padding=1)),              # 2 per group, odd width
    ((2, 9, 6, 17), 3, 3, (3, 3), dict(padding=1)),              # 3 per group
    ((1, 8, 9, 33), 2, 5, (3, 3), dict(padding=1)),              # 4 in, 5 out: block + rest
    ((1, 32, 4, 11), 2, 4, (3, 3), dict(padding=1)),             # 16 per group (GEMM)
    ((2, 6, 11, 37), 3, 4, (3, 3), dict(stride=2, padding=1)),   # stride 2
    ((1, 8, 9, 40), 2, 4, (3, 3), dict(stride=(1, 3), padding=(2, 0))),
    ((1, 8, 9, 41), 4, 4, (3, 3), dict(padding=2, dilation=2)),  # dilation
    ((1, 6, 8, 23), 2, 3, (5, 5), dict(padding="same")),
    ((1, 4, 5, 30), 2, 2, (3, 3), dict(padding=6)),              # padding > kernel
    ((1, 8, 3, 3), 2, 4, (3, 3), {}),                            # kernel == image
    ((1, 8, 1, 1), 2, 4, (3, 3), dict(padding=1)),               # 1x1 image
    ((2, 16, 4, 70), 4, 4, (1, 1), {}),                          # grouped 1x1
    ((3, 8, 50), 2, 4, (5,), dict(padding=2)),                   # 1-D
    ((2, 6, 129), 3, 2, (3,), dict(stride=2, padding=1, dilation=3)),
    ((1, 8, 4, 5, 18), 2, 4, (3, 3, 3), dict(padding=1)),        # 3-D
    ((0, 8, 5, 9), 2, 4, (3, 3), dict(padding=1)),               # empty batch
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,groups,per_group,kernel,kw", CASES)
def test_grouped_matches_reference(simd_path, threads, shape, groups, per_group, kernel, kw,
                                   dtype, rng):
    check_conv_against_reference(shape, groups, groups * per_group, kernel, kw, dtype, rng)


def _window(x_shape, kernel, stride, pad, dilation):
    nd = len(kernel)
    return Window(tuple(x_shape[2:]), kernel, (stride,) * nd, (pad,) * nd, (pad,) * nd,
                  (dilation,) * nd)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("c_in_group, c_out_group, groups, stride, pad, dilation", [
    (16, 16, 2, 1, 1, 1),     # past both thresholds: the plan would run a GEMM
    (12, 3, 2, 2, 0, 1),
    (5, 9, 3, 1, 2, 2),
    (1, 6, 4, 1, 1, 1),       # depthwise with a multiplier, as DIRECT_GROUPED
])
def test_direct_grouped_forced_on_any_grouping(simd_path, threads, c_in_group, c_out_group,
                                               groups, stride, pad, dilation, dtype, rng):
    """The direct kernels compute any grouping, not only the ones the plan
    sends them (so the thresholds can move): every pass, forced."""
    x = rng.standard_normal((2, c_in_group * groups, 7, 13))
    w = rng.standard_normal((c_out_group * groups, c_in_group, 3, 3))
    b = rng.standard_normal(c_out_group * groups)
    kw = dict(stride=stride, padding=pad, dilation=dilation, groups=groups)
    win = _window(x.shape, (3, 3), stride, pad, dilation)
    args = (x.shape[0], x.shape[1], w.shape[0], win, groups, dtype)
    forced = {computes: _plan.plan_conv(computes, *args, algorithm=_plan.DIRECT_GROUPED)
              for computes in (_plan.OUTPUT, _plan.GRAD_INPUT, _plan.GRAD_WEIGHT)}
    assert all(p.algorithm == _plan.DIRECT_GROUPED for p in forced.values())
    xd, wd, bd = (a.astype(dtype) for a in (x, w, b))
    want = reference.conv2d(x, w, b, **kw)
    y = _conv.conv_forward(xd, wd, bd, win, groups, plan=forced[_plan.OUTPUT])
    assert_close(y, want, dtype)
    gy = rng.standard_normal(want.shape)
    gx_want, gw_want, _ = reference.conv2d_backward(gy, x, w, **kw)
    gyd = gy.astype(dtype)
    assert_close(_conv.conv_grad_input(gyd, wd, win, groups, x.shape, plan=forced[_plan.GRAD_INPUT]),
           gx_want, dtype)
    assert_close(_conv.conv_grad_weight(xd, gyd, wd, win, groups, plan=forced[_plan.GRAD_WEIGHT]),
           gw_want, dtype)


def test_resnext_layer_is_planned_direct():
    """The benchmark's ResNeXt 32x4d layer runs the direct kernels in every
    pass (docs/performance.md, issue 16)."""
    x = np.zeros((16, 256, 28, 28), np.float32)
    w = np.zeros((256, 8, 3, 3), np.float32)
    plans = fastconv.explain("conv2d_backward", np.zeros_like(x), x, w, padding=1, groups=32)
    assert [p.algorithm for p in plans] == [_plan.DIRECT_GROUPED] * 2
    assert fastconv.explain("conv2d", x, w, padding=1, groups=32).algorithm == \
        _plan.DIRECT_GROUPED


def test_grouped_gradcheck(rng):
    x = rng.standard_normal((2, 8, 5, 6))
    w = rng.standard_normal((6, 4, 3, 3))
    b = rng.standard_normal(6)

    def f(x, w, b):
        y = fastconv.conv2d(x, w, b, padding=1, groups=2)
        return y, lambda gy: fastconv.conv2d_backward(gy, x, w, padding=1, groups=2)
    fastconv.gradcheck(f, x, w, b)


@pytest.mark.parametrize("stride, dilation", [(1, 1), (2, 1), (1, 2)])
def test_grouped_matches_torch(rng, stride, dilation):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((2, 32, 9, 12))
    w = rng.standard_normal((32, 8, 3, 3))
    b = rng.standard_normal(32)
    kw = dict(stride=stride, padding=1, dilation=dilation, groups=4)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = torch.nn.functional.conv2d(tx, tw, tb, **kw)
    gy = rng.standard_normal(tuple(ty.shape))
    ty.backward(torch.tensor(gy))
    y = fastconv.conv2d(x, w, b, **kw)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-12, atol=1e-12)
    for got, want in zip(fastconv.conv2d_backward(gy, x, w, **kw), (tx, tw, tb)):
        np.testing.assert_allclose(got, want.grad.numpy(), rtol=1e-12, atol=1e-11)


# Ungrouped stems (2..8 input channels into at most 32, rows >= 16 wide):
# forward and weight gradient planned on the direct loops (the data gradient
# stays GEMM + col2im).
STEMS = [
    ((2, 3, 9, 17), 16, (3, 3), dict(padding=1)),                # ResNet's stem, odd sizes
    ((2, 3, 11, 33), 32, (3, 3), dict(stride=2, padding=1)),     # strided, 17 wide
    ((1, 8, 5, 16), 32, (3, 3), dict(padding=1)),                # both limits
    ((2, 2, 7, 20), 5, (5, 5), dict(padding=2, dilation=1)),     # 5x5, odd outputs
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,c_out,kernel,kw", STEMS)
def test_ungrouped_stem_runs_direct_and_matches_reference(simd_path, threads, shape, c_out,
                                                          kernel, kw, dtype, rng):
    x = np.zeros(shape, dtype)
    w = np.zeros((c_out, shape[1]) + kernel, dtype)
    assert fastconv.explain("conv2d", x, w, **kw).algorithm == _plan.DIRECT_GROUPED
    grad_input, grad_weight = fastconv.explain("conv2d_backward", fastconv.conv2d(x, w, **kw),
                                               x, w, **kw)
    assert (grad_input.algorithm, grad_weight.algorithm) == (_plan.GEMM_COL2IM,
                                                             _plan.DIRECT_GROUPED)
    check_conv_against_reference(shape, 1, c_out, kernel, kw, dtype, rng)


@pytest.mark.parametrize("stride", [1, 2])
def test_ungrouped_stem_matches_torch_and_gradcheck(rng, stride):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((2, 3, 9, 35))
    w = rng.standard_normal((16, 3, 3, 3))
    b = rng.standard_normal(16)
    kw = dict(stride=stride, padding=1)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = torch.nn.functional.conv2d(tx, tw, tb, **kw)
    gy = rng.standard_normal(tuple(ty.shape))
    ty.backward(torch.tensor(gy))
    np.testing.assert_allclose(fastconv.conv2d(x, w, b, **kw), ty.detach().numpy(),
                               rtol=1e-12, atol=1e-12)
    for got, want in zip(fastconv.conv2d_backward(gy, x, w, **kw), (tx, tw, tb)):
        np.testing.assert_allclose(got, want.grad.numpy(), rtol=1e-12, atol=1e-11)

    def f(x, w, b):
        y = fastconv.conv2d(x, w, b, **kw)
        return y, lambda gy: fastconv.conv2d_backward(gy, x, w, **kw)
    fastconv.gradcheck(f, x[:1, :, :5, :17], w, b)
