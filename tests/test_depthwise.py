"""Depthwise convolution (groups == C_in) on every SIMD path this CPU supports,
on shapes awkward for its staged, vectorised kernels: widths either side of
the vector widths (2..16 lanes), rows narrower than a vector, strides,
dilations, multipliers, 1-D and 3-D, both dtypes, against the reference."""
import numpy as np
import pytest

import fastconv
from conftest import check_conv_against_reference


CASES = [
    # (x shape, channel multiplier, kernel, keyword arguments)
    ((2, 3, 9, 56), 1, (3, 3), dict(padding=1)),                 # MobileNet-like rows
    ((1, 2, 5, 17), 1, (3, 3), dict(padding=1)),                 # one float vector + 1
    ((1, 2, 4, 15), 2, (3, 3), dict(padding=1)),                 # one float vector - 1
    ((2, 2, 3, 33), 3, (3, 3), dict(padding=1)),                 # multiplier 3
    ((1, 2, 1, 1), 1, (3, 3), dict(padding=1)),                  # 1x1 image
    ((1, 2, 3, 3), 1, (3, 3), {}),                               # kernel == image
    ((2, 2, 11, 37), 1, (3, 3), dict(stride=2, padding=1)),      # stride 2
    ((1, 2, 9, 40), 2, (3, 3), dict(stride=(1, 3), padding=(2, 0))),
    ((1, 2, 9, 41), 1, (3, 3), dict(padding=2, dilation=2)),     # dilation
    ((1, 2, 8, 23), 1, (5, 5), dict(padding="same")),
    ((1, 2, 6, 20), 1, (4, 2), dict(padding="same")),            # even kernel 'same'
    ((1, 3, 7, 19), 1, (7, 7), dict(padding=3)),                 # 49 taps
    ((2, 4, 3, 70), 1, (1, 1), {}),                              # 1x1 depthwise
    ((1, 2, 5, 30), 1, (3, 3), dict(padding=6)),                 # padding > kernel
    ((3, 2, 50), 1, (5,), dict(padding=2)),                      # 1-D
    ((2, 3, 129), 2, (3,), dict(stride=2, padding=1, dilation=3)),
    ((1, 2, 4, 5, 18), 1, (3, 3, 3), dict(padding=1)),           # 3-D
    ((1, 2, 5, 6, 21), 2, (2, 3, 3), dict(stride=(2, 1, 2), padding=(1, 1, 0))),
    # Rows narrower than a vector run as one wide row per plane (MobileNet's
    # 8x8 maps): stride 1 and 2, a multiplier of a block and more, odd sizes.
    ((2, 3, 8, 8), 1, (3, 3), dict(padding=1)),
    ((2, 3, 16, 16), 1, (3, 3), dict(stride=2, padding=1)),
    ((1, 2, 7, 5), 5, (3, 3), dict(padding=1)),
    ((1, 2, 9, 11), 1, (3, 3), dict(stride=(3, 2), padding=(2, 1), dilation=(1, 2))),
    ((1, 2, 3, 6, 7), 1, (3, 3, 3), dict(padding=1)),
    # Channels in the lanes (multiplier 1, at least half a vector of
    # channels, rows under four vectors): whole and partial blocks of planes,
    # strides, dilation, 3-D and 1-D.
    ((2, 19, 8, 8), 1, (3, 3), dict(padding=1)),
    ((2, 40, 16, 16), 1, (3, 3), dict(stride=2, padding=1)),
    ((1, 17, 11, 13), 1, (3, 5), dict(stride=(2, 3), padding=(2, 1), dilation=(2, 1))),
    ((1, 9, 3, 5, 7), 1, (3, 3, 3), dict(stride=(1, 1, 2), padding=1)),
    ((2, 33, 30), 1, (3,), dict(stride=2, padding=1)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,mult,kernel,kw", CASES)
def test_depthwise_matches_reference(simd_path, shape, mult, kernel, kw, dtype, rng):
    check_conv_against_reference(shape, shape[1], shape[1] * mult, kernel, kw, dtype, rng)


@pytest.mark.parametrize("size", [30, 8])   # rows of vectors; narrower than one (wide rows)
# depthwise (multiplier 2; 1: channels in the lanes), grouped
@pytest.mark.parametrize("c_in, c_in_group", [(16, 1), (32, 1), (32, 8)])
def test_depthwise_threads_agree(rng, c_in, c_in_group, size):
    """Two threads split (image, group) pairs (forward, input gradient) and
    the planes (weight gradient, summed per thread run): the result matches
    one thread's, depthwise and with several channels per group, on rows a
    vector wide and narrower (each thread its own wide-row scratch)."""
    groups = c_in // c_in_group
    x = rng.standard_normal((8, c_in, size, size)).astype(np.float32)
    w = rng.standard_normal((32, c_in_group, 3, 3)).astype(np.float32)
    gy = rng.standard_normal((8, 32, size, size)).astype(np.float32)
    before = fastconv.get_num_threads()
    try:
        results = []
        for n in (1, 2):
            fastconv.set_num_threads(n)
            results.append((fastconv.conv2d(x, w, padding=1, groups=groups),
                            fastconv.conv2d_backward(gy, x, w, padding=1, groups=groups)))
    finally:
        fastconv.set_num_threads(before)
    (y1, g1), (y2, g2) = results
    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_array_equal(g1[0], g2[0])
    np.testing.assert_allclose(g1[1], g2[1], rtol=1e-6)
