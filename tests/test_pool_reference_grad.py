"""Numerical gradient checks of the plain-NumPy pooling reference: the oracle's
backward ops are the derivatives of its forward ops (central differences on
float64, with distinct input values so that max pooling is differentiable)."""
import numpy as np
import pytest

from fastconv import reference
from helpers import numerical_grad


def _distinct(shape, seed):
    """Distinct values, spaced well beyond eps: no ties, no kinks."""
    rng = np.random.default_rng(seed)
    return rng.permutation(np.prod(shape)).reshape(shape) * 0.1 + rng.random() * 0.01


MAX_CASES = [
    (1, dict(kernel_size=3, stride=2, padding=1, ceil_mode=True), (2, 2, 9)),
    (2, dict(kernel_size=3, stride=1, padding=1), (1, 2, 5, 6)),             # overlapping
    (2, dict(kernel_size=(2, 3), stride=(2, 1), dilation=(2, 1), ceil_mode=True), (1, 2, 7, 6)),
    (3, dict(kernel_size=2, stride=1, padding=1), (1, 1, 3, 4, 3)),
]


@pytest.mark.parametrize("nd,kw,shape", MAX_CASES)
def test_max_pool_reference_gradient(nd, kw, shape):
    fwd = getattr(reference, f"max_pool{nd}d")
    bwd = getattr(reference, f"max_pool{nd}d_backward")
    x = _distinct(shape, nd)
    y, ind = fwd(x, **kw, return_indices=True)
    gy = np.random.default_rng(0).standard_normal(y.shape)
    num = numerical_grad(lambda: float((fwd(x, **kw) * gy).sum()), x)
    np.testing.assert_allclose(bwd(gy, ind, x.shape), num, rtol=1e-6, atol=1e-6)


AVG_CASES = [
    (1, dict(kernel_size=3, stride=2, padding=1, ceil_mode=True), (2, 1, 8)),
    (1, dict(kernel_size=2, ceil_mode=True), (1, 2, 5)),                    # overhang
    (2, dict(kernel_size=3, stride=2, padding=1, count_include_pad=False), (1, 2, 6, 5)),
    (2, dict(kernel_size=(3, 2), stride=1, padding=(1, 1), divisor_override=3), (1, 1, 4, 5)),
    (2, dict(kernel_size=3, stride=2, padding=1, ceil_mode=True), (1, 1, 6, 6)),
    (3, dict(kernel_size=2, stride=(1, 2, 1), padding=1, count_include_pad=False), (1, 1, 3, 4, 3)),
]


@pytest.mark.parametrize("nd,kw,shape", AVG_CASES)
def test_avg_pool_reference_gradient(nd, kw, shape):
    fwd = getattr(reference, f"avg_pool{nd}d")
    bwd = getattr(reference, f"avg_pool{nd}d_backward")
    x = np.random.default_rng(1).standard_normal(shape)
    gy = np.random.default_rng(2).standard_normal(fwd(x, **kw).shape)
    num = numerical_grad(lambda: float((fwd(x, **kw) * gy).sum()), x)
    np.testing.assert_allclose(bwd(gy, x.shape, **kw), num, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("in_size,out_size", [((5, 7), (3, 4)), ((4, 4), (6, 3))])
def test_adaptive_avg_pool_reference_gradient(in_size, out_size):
    x = np.random.default_rng(3).standard_normal((1, 2) + in_size)
    gy = np.random.default_rng(4).standard_normal((1, 2) + out_size)
    f = reference.adaptive_avg_pool2d
    num = numerical_grad(lambda: float((f(x, out_size) * gy).sum()), x)
    np.testing.assert_allclose(reference.adaptive_avg_pool2d_backward(gy, x.shape), num,
                               rtol=1e-6, atol=1e-6)
