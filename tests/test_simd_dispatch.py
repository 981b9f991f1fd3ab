"""One switch (FASTCONV_SIMD, fastconv._simd.select, the simd_path fixture)
reaches every kernel family: each op's kernel calls are counted against the
instruction set whose table ran them."""
import ast
import os
import subprocess
import sys

import numpy as np
import pytest

import fastconv
from fastconv import _simd

RNG = np.random.default_rng(3)
X = RNG.standard_normal((2, 16, 8, 8)).astype(np.float32)
W3 = RNG.standard_normal((4, 16, 3, 3)).astype(np.float32)


def _ops():
    """One small call per kernel family (name -> thunk)."""
    x, w3 = X, W3
    w5 = RNG.standard_normal((4, 16, 5, 5)).astype(np.float32)
    wdw = RNG.standard_normal((16, 1, 3, 3)).astype(np.float32)
    y = fastconv.conv2d(x, w3, padding=1)
    idx = fastconv.max_pool2d(x, 2, return_indices=True)[1]
    cols = fastconv.im2col(x, 3)
    return {
        "conv implicit GEMM": lambda: fastconv.conv2d(x, w5, stride=2),
        "conv Winograd": lambda: fastconv.conv2d(x, w3, padding=1),
        "conv backward": lambda: fastconv.conv2d_backward(y, x, w3, padding=1),
        "strided conv backward": lambda: fastconv.conv2d_backward(
            fastconv.conv2d(x, w5, stride=2), x, w5, stride=2),
        "depthwise": lambda: fastconv.conv2d(x, wdw, groups=16),
        "small GEMM": lambda: fastconv.linear(x.reshape(32, 64), w3.reshape(4, 144)[:, :64]),
        "im2col": lambda: fastconv.im2col(x, 3),
        "col2im": lambda: fastconv.col2im(cols, (8, 8), 3),
        "max_pool2d": lambda: fastconv.max_pool2d(x, 2),
        "max_pool2d_backward": lambda: fastconv.max_pool2d_backward(
            np.ones((2, 16, 4, 4), np.float32), idx, x.shape),
        "avg_pool2d": lambda: fastconv.avg_pool2d(x, 3, 1, 1),
        "adaptive_avg_pool2d": lambda: fastconv.adaptive_avg_pool2d(x, 3),
        "avg_pool2d_backward": lambda: fastconv.avg_pool2d_backward(
            np.ones((2, 16, 4, 4), np.float32), x.shape, 2),
        "adaptive_avg_pool2d_backward": lambda: fastconv.adaptive_avg_pool2d_backward(
            np.ones((2, 16, 3, 3), np.float32), x.shape),
        "adaptive_max_pool2d": lambda: fastconv.adaptive_max_pool2d(x, 3),
        "interpolate": lambda: fastconv.interpolate(x, scale_factor=2, mode="bilinear",
                                                    align_corners=False),
        "deform_conv2d": lambda: fastconv.deform_conv2d(
            x, np.zeros((2, 18, 8, 8), np.float32), w3, padding=1),
        "batch_norm": lambda: fastconv.batch_norm(x, None, None, training=True),
        "activation": lambda: fastconv.gelu(x),
        "activation backward": lambda: fastconv.relu_backward(x, x),
        "prelu": lambda: fastconv.prelu_backward(x, x, np.ones(16, np.float32)),
        "softmax": lambda: fastconv.log_softmax(x, 1),
        "cross_entropy": lambda: fastconv.cross_entropy_backward(
            1.0, x, np.zeros((2, 8, 8), np.int64)),
    }


@pytest.mark.parametrize("op", sorted(_ops()))
def test_every_family_runs_the_selected_path(simd_path, op):
    thunk = _ops()[op]
    before = _simd.calls()
    thunk()
    after = _simd.calls()
    ran = {path: after[path] - before[path] for path in after}
    assert ran[simd_path] > 0, (op, ran)
    assert all(n == 0 for path, n in ran.items() if path != simd_path), (op, ran)


def test_environment_switch_reaches_pooling():
    """FASTCONV_SIMD=generic, read at import, sends pooling to the generic
    table (before, pooling picked its AVX2 copy itself)."""
    code = ("import numpy as np, fastconv, fastconv._simd as s\n"
            "c = s.calls(); fastconv.max_pool2d(np.ones((1, 1, 4, 4), np.float32), 2)\n"
            "print({k: v - c[k] for k, v in s.calls().items()})")
    env = dict(os.environ, FASTCONV_SIMD="generic")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    ran = ast.literal_eval(out.stdout.strip())
    assert ran["generic"] == 1 and sum(ran.values()) == 1, ran


def test_results_agree_on_every_path(simd_path):
    """The same op on each path: equal up to rounding (pooling exactly)."""
    _simd.select("generic")
    want_pool = fastconv.max_pool2d(X, 3, 2, 1)
    want_conv = fastconv.conv2d(X, W3, padding=1)
    _simd.select(simd_path)
    np.testing.assert_array_equal(fastconv.max_pool2d(X, 3, 2, 1), want_pool)
    np.testing.assert_allclose(fastconv.conv2d(X, W3, padding=1), want_conv, rtol=1e-4,
                               atol=1e-4)
