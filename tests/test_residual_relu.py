"""The sum of two arrays with ReLU fused (the C kernel behind nn.Residual and
nn.Add: functional._activation.sum_of) against NumPy's sum and maximum to
the bit, on every SIMD path and thread count; and Sequential's pairing of a
Residual with the ReLU after it (fastconv.nn), against the same layers run
one by one, by gradcheck, and in the cases where it must not fuse."""
import numpy as np
import pytest

from helpers import check_fused_pending_caches, check_pairs_match_one_by_one, hooked, relu_was_fused

import fastconv
from fastconv import nn
from fastconv.functional import _activation

DTYPES = (np.float32, np.float64)


def _numpy_sum(a, b, relu):
    y = a + b
    return np.maximum(y, y.dtype.type(0)) if relu else y


def _assert_bits(got, want):
    assert got.dtype == want.dtype and got.shape == want.shape and got.flags.c_contiguous
    np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))


# ------------------------------------------------------------- the kernel
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("n", [6, 15, 17, 70, 300007])   # 300007: past the threads' threshold
def test_sum_equals_numpy_to_the_bit(rng, simd_path, threads, relu, n):
    """NaN (of either operand), infinities, signed zeros and a sum of 0
    included: a + b then ReLU's select (NaN stays NaN, -0 stays -0 ... as
    fastconv.relu), and neither operand is written."""
    for dtype in DTYPES:
        a, b = rng.standard_normal((2, n)).astype(dtype)
        specials = np.array([np.nan, -np.inf, np.inf, -0.0, 0.0, 1.5], dtype)
        a[:6], b[:6] = specials, specials[::-1]
        b[-1] = -a[-1]
        a0, b0 = a.copy(), b.copy()
        _assert_bits(_activation.sum_of(a, b, relu), _numpy_sum(a0, b0, relu))
        if relu:
            _assert_bits(_activation.sum_of(a, b, True), fastconv.relu(a0 + b0))
        _assert_bits(a, a0)
        _assert_bits(b, b0)


@pytest.mark.parametrize("relu", [False, True])
def test_sum_of_any_layout_shape_and_mixed_dtypes(rng, relu):
    """Non-contiguous and byte-swapped operands, an empty batch, and mixed
    dtypes (NumPy's promotion, as `a + b`)."""
    x = rng.standard_normal((4, 3, 6, 5))
    cases = [(x[:, :, ::2], x[:, :, 1::2]), (x.transpose(0, 1, 3, 2), x.transpose(0, 1, 3, 2)),
             (x.astype(">f8"), x), (np.empty((0, 3, 4)), np.empty((0, 3, 4))),
             (x.astype(np.float32), x)]
    for a, b in cases:
        got = _activation.sum_of(a, b, relu)
        want = _numpy_sum(a, b, relu)
        assert got.dtype == want.dtype.newbyteorder("=")
        np.testing.assert_array_equal(got, want)


# ------------------------------------------------------------ nn: pairing
def _block(dtype, c, rng, shortcut):
    """A ResNet basic block's Residual (conv-BN-ReLU-conv-BN body; a 1x1
    conv + BN shortcut, or the identity), random BN affine parameters."""
    def bn():
        m = nn.BatchNorm2d(c, dtype=dtype)
        m.params["weight"][...] = rng.standard_normal(c)
        m.params["bias"][...] = rng.standard_normal(c)
        return m
    body = nn.Sequential(nn.Conv2d(c, c, 3, padding=1, dtype=dtype, rng=rng), bn(), nn.ReLU(),
                         nn.Conv2d(c, c, 3, padding=1, dtype=dtype, rng=rng), bn())
    skip = (nn.Sequential(nn.Conv2d(c, c, 1, dtype=dtype, rng=rng), bn()) if shortcut
            else None)
    return nn.Residual(body, skip)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shortcut", [False, True])
@pytest.mark.parametrize("inplace", [False, True])
def test_sequential_pair_equals_the_layers_one_by_one(rng, dtype, shortcut, inplace):
    """Two training steps and an eval step of Residual - ReLU - Residual -
    ReLU in a Sequential (fused pairs) and of the same layers called one at
    a time: outputs, input gradients, every parameter's gradient and the
    running statistics equal to the bit."""
    c = 3
    net = nn.Sequential(_block(dtype, c, rng, shortcut), nn.ReLU(inplace=inplace),
                        _block(dtype, c, rng, False), nn.ReLU())
    check_pairs_match_one_by_one(net, rng, (2, c, 5, 4), dtype)


class _OwnResidual(nn.Residual):
    pass


_UNFUSABLE = {
    "residual subclass": lambda res, relu: (_OwnResidual(res.body), relu),
    "hooked residual": lambda res, relu: (hooked(res), relu),
    "hooked relu": lambda res, relu: (res, hooked(relu)),
    "relu in eval, residual training": lambda res, relu: (res, relu.eval()),
    "relu on the reference backend": lambda res, relu: (res, relu.set_backend("reference")
                                                        or relu),
}


@pytest.mark.parametrize("kind", sorted(_UNFUSABLE))
def test_pairs_that_must_not_fuse_run_unfused_and_right(rng, kind):
    res, relu = _UNFUSABLE[kind](_block(np.float64, 2, rng, False), nn.ReLU())
    net = nn.Sequential(res, relu)
    x, gy = rng.standard_normal((2, 2, 4, 3)), rng.standard_normal((2, 2, 4, 3))
    y = net(x)
    assert not relu_was_fused(relu)
    gx = net.backward(gy)
    z = res(x)
    np.testing.assert_array_equal(y, np.maximum(z, 0))
    np.testing.assert_array_equal(gx, res.backward(np.where(z > 0, gy, 0)))


def test_no_grad_eval_fuses_and_keeps_nothing(rng):
    net = nn.Sequential(_block(np.float64, 2, rng, True), nn.ReLU()).eval()
    x = rng.standard_normal((2, 2, 4, 3))
    with nn.no_grad():
        y = net(x)
        z = net[0](x)
    assert not any(m._pending for m in net.modules())
    np.testing.assert_array_equal(y, np.maximum(z, 0))


def test_fused_pending_caches_deep_copy_pickle_and_check_grad_output(rng):
    net = nn.Sequential(_block(np.float64, 2, rng, False), nn.ReLU())
    check_fused_pending_caches(net, rng.standard_normal((2, 2, 4, 3)),
                               rng.standard_normal((2, 2, 4, 3)))


def test_fused_sequential_gradcheck(rng):
    block = _block(np.float64, 2, rng, True)
    net = nn.Sequential(block, nn.ReLU())
    conv = block.body[0]
    x = rng.standard_normal((2, 2, 4, 3)) + 0.1

    def f(x, w):
        net.zero_grad()
        y = net(x)
        return y, lambda gy: (net.backward(gy), conv.grads["weight"])

    fastconv.gradcheck(f, x, conv.params["weight"])


def test_add_layer_sums_with_the_kernel(rng):
    """nn.Add: the kernel's sum for two inputs, NumPy's for the rest."""
    a, b, c = rng.standard_normal((3, 2, 3, 4)).astype(np.float32)
    layer = nn.Add()
    _assert_bits(layer(a, b), a + b)
    _assert_bits(layer(a, b, c), (a + b) + c)
    gs = layer.backward(np.ones_like(a))
    assert len(gs) == 3 and all(np.array_equal(g, np.ones_like(a)) for g in gs)
