"""Every long kernel polls a stop flag (csrc/stop.c): a stop requested on this
thread (as the poll does when a signal handler raises) makes the op raise
KeyboardInterrupt without returning anything, leaves no flag behind, and the
next call is exact.  The SIGINT cases, timed, are in test_process.py."""
import numpy as np
import pytest

import fastconv
from fastconv import _kernels

rng = np.random.default_rng(3)
x = rng.standard_normal((2, 4, 9, 10))
w = rng.standard_normal((6, 4, 3, 3))
w5 = rng.standard_normal((6, 4, 5, 5))
gy = rng.standard_normal((2, 6, 9, 10))
y_max, idx = fastconv.max_pool2d(x, 3, 2, 1, return_indices=True)
offset = 0.3 * rng.standard_normal((2, 18, 9, 10))

# One op per kernel family that polls (each name says which).
OPS = {
    "conv2d_implicit_gemm": lambda: fastconv.conv2d(x, w5, padding=2),
    "conv2d_winograd": lambda: fastconv.conv2d(x, w, padding=1),
    "conv2d_depthwise": lambda: fastconv.conv2d(x, w[:4, :1], padding=1, groups=4),
    "conv2d_backward_weight_and_col2im": lambda: fastconv.conv2d_backward(
        gy[:, :, :5, :5], x, w, stride=2, padding=1),
    "conv2d_backward_winograd": lambda: fastconv.conv2d_backward(gy, x, w, padding=1),
    "conv2d_backward_depthwise": lambda: fastconv.conv2d_backward(
        gy[:, :4], x, w[:4, :1], padding=1, groups=4),
    "conv_transpose2d": lambda: fastconv.conv_transpose2d(x, w.swapaxes(0, 1), stride=2),
    "max_pool2d": lambda: fastconv.max_pool2d(x, 3, 2, 1, return_indices=True),
    "max_pool2d_backward": lambda: fastconv.max_pool2d_backward(np.ones_like(y_max), idx,
                                                                x.shape),
    "avg_pool2d": lambda: fastconv.avg_pool2d(x, 3, 1, 1),
    "avg_pool2d_backward": lambda: fastconv.avg_pool2d_backward(np.ones((2, 4, 9, 10)),
                                                                x.shape, 3, 1, 1),
    "adaptive_avg_pool2d": lambda: fastconv.adaptive_avg_pool2d(x, (4, 3)),
    "adaptive_avg_pool2d_backward": lambda: fastconv.adaptive_avg_pool2d_backward(
        np.ones((2, 4, 4, 3)), x.shape),
    "adaptive_max_pool2d": lambda: fastconv.adaptive_max_pool2d(x, (4, 3)),
    "interpolate": lambda: fastconv.interpolate(x, scale_factor=2, mode="bilinear",
                                                align_corners=False),
    "interpolate_backward": lambda: fastconv.interpolate_backward(
        np.ones((2, 4, 18, 20)), x.shape, scale_factor=2, mode="bilinear",
        align_corners=False),
    "deform_conv2d": lambda: fastconv.deform_conv2d(x, offset, w, padding=1),
    "deform_conv2d_backward": lambda: fastconv.deform_conv2d_backward(gy, x, offset, w,
                                                                      padding=1),
    "unfold": lambda: fastconv.unfold(x, 3, padding=1),
    "fold": lambda: fastconv.fold(fastconv.unfold(x, 3, padding=1), (9, 10), 3, padding=1),
}


def _arrays(result):
    if isinstance(result, np.ndarray):
        return [result]
    return [a for a in result if a is not None]


@pytest.fixture(autouse=True)
def _no_stop_left():
    _kernels.take_stop()
    yield
    assert not _kernels.take_stop(), "a stop request outlived its op"


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("name", sorted(OPS))
def test_a_stopped_op_raises_and_the_next_call_is_exact(name, threads):
    before = fastconv.get_num_threads()
    try:
        fastconv.set_num_threads(threads)
        want = _arrays(OPS[name]())
        _kernels.request_stop()
        with pytest.raises(KeyboardInterrupt):
            OPS[name]()
        assert not _kernels.take_stop()
        got = _arrays(OPS[name]())
    finally:
        fastconv.set_num_threads(before)
    assert len(got) == len(want)
    for g, wnt in zip(got, want):
        assert g.shape == wnt.shape and np.array_equal(g, wnt), name
