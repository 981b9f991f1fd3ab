"""The fused weight gradient (im2col packed inside the GEMM) on every SIMD
path, 1 and 2 threads, on awkward shapes: against the NumPy reference."""
import numpy as np
import pytest

import fastconv
from fastconv import _threads
from fastconv import reference

# (x shape, w shape, kwargs): K and positions off every vector width and NR,
# tiny images, images that split inside a position block, a channel count
# past one packed block, strides/dilation/asymmetric padding, groups, 1-D/3-D.
CASES = [
    ((3, 5, 9, 11), (7, 5, 3, 3), dict(padding=1)),
    ((5, 3, 1, 1), (4, 3, 1, 1), {}),                                   # 1x1 image
    ((9, 2, 3, 2), (3, 2, 3, 3), dict(padding=(2, 1))),                 # all-padding taps
    ((2, 7, 13, 17), (300, 7, 2, 3), dict(stride=(2, 3), dilation=(2, 1))),  # m > A block
    ((2, 130, 6, 5), (9, 130, 3, 3), dict(padding=1)),                  # K = 1170 rows
    ((3, 4, 8, 8), (6, 4, 4, 4), dict(padding="same")),                 # asymmetric pad
    ((4, 6, 11, 9), (8, 3, 3, 2), dict(stride=(2, 1), padding=1, groups=2)),
    ((3, 3, 37), (5, 3, 4), dict(padding=2, stride=3)),                 # 1-D
    # Stride 2 along W (vector gather): rows past and short of a vector,
    # padding past the kernel with dilation, a tiny image, 1-D.
    ((3, 5, 9, 37), (6, 5, 3, 3), dict(stride=2, padding=1)),
    ((2, 3, 6, 70), (4, 3, 2, 3), dict(stride=(1, 2), padding=(0, 4), dilation=(1, 3))),
    ((5, 2, 3, 5), (3, 2, 1, 3), dict(stride=2)),
    ((2, 3, 75), (4, 3, 5), dict(stride=2, padding=1)),
    ((2, 3, 5, 6, 7), (4, 3, 2, 3, 2), dict(padding=1, dilation=(1, 2, 1))),  # 3-D
    # A stem: 27 rows, one narrow panel packed and computed 2 vectors wide on
    # AVX-512 (of NR's 3), 16 outputs (2 MR panels).
    ((3, 3, 10, 12), (16, 3, 3, 3), dict(padding=1)),
]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("xs, ws, kw", CASES)
def test_weight_grad_matches_reference(simd_path, threads, xs, ws, kw):
    nd = len(xs) - 2
    fwd, bwd = getattr(fastconv, f"conv{nd}d"), getattr(fastconv, f"conv{nd}d_backward")
    ref_bwd = getattr(reference, f"conv{nd}d_backward")
    rng = np.random.default_rng(len(xs) * 100 + ws[0])
    before = _threads.get_num_threads()
    _threads.set_num_threads(threads)
    try:
        for dtype in (np.float32, np.float64):
            x = rng.standard_normal(xs).astype(dtype)
            w = rng.standard_normal(ws).astype(dtype)
            gy = rng.standard_normal(fwd(x, w, **kw).shape).astype(dtype)
            _, gw, _ = bwd(gy, x, w, **kw)
            want = ref_bwd(gy.astype(np.float64), x.astype(np.float64),
                                    w.astype(np.float64), **kw)[1]
            tol = 1e-4 if dtype == np.float32 else 1e-11
            np.testing.assert_allclose(gw, want, rtol=tol, atol=tol * np.abs(want).max())
    finally:
        _threads.set_num_threads(before)


def test_weight_grad_parallel_split_matches_serial():
    """Work big enough for 2 threads to split positions: same result (to
    rounding) as 1 thread, and the same bits on a repeat."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 40, 20, 20)).astype(np.float32)
    w = rng.standard_normal((70, 40, 3, 3)).astype(np.float32)
    gy = rng.standard_normal((6, 70, 20, 20)).astype(np.float32)
    before = _threads.get_num_threads()
    try:
        _threads.set_num_threads(1)
        one = fastconv.conv2d_backward(gy, x, w, padding=1)[1]
        _threads.set_num_threads(2)
        two = fastconv.conv2d_backward(gy, x, w, padding=1)[1]
        again = fastconv.conv2d_backward(gy, x, w, padding=1)[1]
    finally:
        _threads.set_num_threads(before)
    np.testing.assert_allclose(two, one, rtol=1e-4, atol=1e-3)
    assert np.array_equal(two, again)
