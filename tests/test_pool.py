"""Pooling (max/avg 1-D, 2-D, 3-D and adaptive avg 2-D) against the plain-NumPy
reference, PyTorch's rules one test each, and argument checking."""
import itertools
import threading

import numpy as np
import pytest

import fastconv
from fastconv import reference

MAX = {1: (fastconv.max_pool1d, fastconv.max_pool1d_backward),
       2: (fastconv.max_pool2d, fastconv.max_pool2d_backward),
       3: (fastconv.max_pool3d, fastconv.max_pool3d_backward)}
AVG = {1: (fastconv.avg_pool1d, fastconv.avg_pool1d_backward),
       2: (fastconv.avg_pool2d, fastconv.avg_pool2d_backward),
       3: (fastconv.avg_pool3d, fastconv.avg_pool3d_backward)}
REF_MAX = {1: (reference.max_pool1d, reference.max_pool1d_backward),
           2: (reference.max_pool2d, reference.max_pool2d_backward),
           3: (reference.max_pool3d, reference.max_pool3d_backward)}
REF_AVG = {1: (reference.avg_pool1d, reference.avg_pool1d_backward),
           2: (reference.avg_pool2d, reference.avg_pool2d_backward),
           3: (reference.avg_pool3d, reference.avg_pool3d_backward)}
TOL = {np.float32: dict(rtol=2e-5, atol=2e-5), np.float64: dict(rtol=1e-12, atol=1e-12)}
DTYPES = [np.float32, np.float64]


def _input(rng, shape, dtype, kind):
    """Random input: 'normal', 'ties' (few integer values: many ties) or
    'nan' (ties plus NaN and -inf planted)."""
    if kind == "normal":
        return rng.standard_normal(shape).astype(dtype)
    x = rng.integers(-3, 4, shape).astype(dtype)
    if kind == "nan":
        x[rng.random(shape) < 0.15] = np.nan
        x[rng.random(shape) < 0.1] = -np.inf
    return x


def _random_config(seed):
    """A random valid pooling geometry (PyTorch's constraints)."""
    rng = np.random.default_rng(seed)
    nd = int(rng.integers(1, 4))
    kernel = tuple(int(v) for v in rng.integers(1, 5, nd))
    # stride below, equal to and above the kernel
    stride = tuple(int(max(1, k + rng.integers(-2, 3))) for k in kernel)
    padding = tuple(int(rng.integers(0, k // 2 + 1)) for k in kernel)
    dilation = tuple(int(v) for v in rng.integers(1, 3, nd))
    size = tuple(int(max(1, d * (k - 1) + 1 - 2 * p + rng.integers(0, 6)))
                 for k, d, p in zip(kernel, dilation, padding))
    n, c = int(rng.integers(0, 3)), int(rng.integers(1, 3))
    return dict(nd=nd, shape=(n, c) + size, kernel=kernel, stride=stride,
                padding=padding, dilation=dilation, ceil_mode=bool(rng.integers(0, 2)),
                dtype=DTYPES[seed % 2], kind=("normal", "ties", "nan")[seed % 3],
                count_include_pad=bool(rng.integers(0, 2)),
                divisor_override=None if rng.random() < 0.7 else int(rng.integers(1, 5)))


def _check_max(x, nd, kw, gy_seed=1):
    """fastconv's max pool, indices and backward equal the reference's."""
    fwd, bwd = MAX[nd]
    ref_fwd, ref_bwd = REF_MAX[nd]
    y, ind = fwd(x, **kw, return_indices=True)
    y_ref, ind_ref = ref_fwd(x, **kw, return_indices=True)
    assert y.dtype == x.dtype and ind.dtype == np.int64
    assert y.flags.c_contiguous and ind.flags.c_contiguous
    np.testing.assert_array_equal(y, y_ref)        # NaN == NaN here
    np.testing.assert_array_equal(ind, ind_ref)
    np.testing.assert_array_equal(fwd(x, **kw), y)  # the no-index path agrees
    gy = np.random.default_rng(gy_seed).standard_normal(y.shape).astype(x.dtype)
    gx = bwd(gy, ind, x.shape)
    assert gx.dtype == x.dtype and gx.shape == x.shape
    np.testing.assert_allclose(gx, ref_bwd(gy, ind_ref, x.shape), **TOL[x.dtype.type])
    return y, ind


def _check_avg(x, nd, kw):
    fwd, bwd = AVG[nd]
    ref_fwd, ref_bwd = REF_AVG[nd]
    y = fwd(x, **kw)
    y_ref = ref_fwd(x.astype(np.float64), **kw)
    assert y.dtype == x.dtype and y.flags.c_contiguous
    np.testing.assert_allclose(y, y_ref, equal_nan=True, **TOL[x.dtype.type])
    gy = np.random.default_rng(2).standard_normal(y.shape).astype(x.dtype)
    gx = bwd(gy, x.shape, **kw)
    np.testing.assert_allclose(gx, ref_bwd(gy.astype(np.float64), x.shape, **kw),
                               **TOL[x.dtype.type])


@pytest.mark.parametrize("seed", range(120))
def test_random_configs_match_reference(seed):
    cfg = _random_config(seed)
    nd = cfg["nd"]
    x = _input(np.random.default_rng(seed), cfg["shape"], cfg["dtype"], cfg["kind"])
    kw = dict(kernel_size=cfg["kernel"], stride=cfg["stride"], padding=cfg["padding"],
              ceil_mode=cfg["ceil_mode"])
    try:
        _check_max(x, nd, dict(kw, dilation=cfg["dilation"]))
    except ValueError as exc:
        # only a window of padding only, whose index (PyTorch's) lies past
        # the plane: its backward refuses it
        assert "outside the input plane" in str(exc)
        one = np.zeros((1, 1) + cfg["shape"][2:])
        assert (REF_MAX[nd][0](one, **kw, dilation=cfg["dilation"],
                               return_indices=True)[1] >= one[0, 0].size).any()
    try:
        _check_avg(x, nd, dict(kw, count_include_pad=cfg["count_include_pad"],
                               divisor_override=cfg["divisor_override"]))
    except ValueError as exc:       # the undilated avg kernel may not fit
        assert "output would be empty" in str(exc)


# Every specialised kernel: the 2x2/2 fast path, the fused 3x3 (stride 1, 2)
# and 1-D 2/2, 3/1, 3/2 rows (with and without padding, rows wider than one
# chunk of 256 outputs, odd sizes leaving tail columns, ceil-mode overhang),
# the vectorised sweep rows (other kernels, dilation) and the kernel == stride
# average path, on every SIMD path (simd_path: each compiles them its own way).
FAST_2D = [
    ((2, 2), (2, 2), (0, 0), (1, 1), False, (7, 9)),
    ((2, 2), (2, 2), (0, 0), (1, 1), False, (6, 600)),
    ((2, 2), (2, 2), (0, 0), (1, 1), True, (7, 9)),        # ceil overhang: not tiled
    ((2, 2), (2, 2), (1, 1), (1, 1), True, (6, 7)),
    ((3, 3), (2, 2), (1, 1), (1, 1), False, (9, 11)),
    ((3, 3), (2, 2), (1, 1), (1, 1), True, (10, 550)),
    ((3, 3), (2, 2), (0, 0), (1, 1), False, (8, 40)),
    ((3, 3), (1, 1), (1, 1), (1, 1), False, (5, 300)),
    ((3, 3), (1, 1), (0, 0), (1, 1), True, (5, 23)),
    ((3, 3), (3, 3), (0, 0), (1, 1), False, (10, 11)),     # tiled, not fused
    ((4, 3), (4, 3), (0, 0), (1, 1), False, (9, 13)),
    ((3, 2), (2, 1), (1, 1), (2, 1), True, (9, 10)),       # sweeps with dilation
    ((5, 5), (3, 2), (2, 2), (1, 2), False, (12, 40)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["normal", "nan"])
@pytest.mark.parametrize("k,s,p,d,ceil,size", FAST_2D)
def test_2d_kernels_match_reference(simd_path, k, s, p, d, ceil, size, kind, dtype):
    x = _input(np.random.default_rng(hash((k, s, size)) % 1000), (2, 3) + size, dtype, kind)
    _check_max(x, 2, dict(kernel_size=k, stride=s, padding=p, dilation=d, ceil_mode=ceil))
    if d == (1, 1):
        for include in (True, False):
            _check_avg(x, 2, dict(kernel_size=k, stride=s, padding=p, ceil_mode=ceil,
                                  count_include_pad=include))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k,s,p,ceil,size", [
    (2, 2, 0, False, 601), (2, 2, 1, True, 8), (3, 1, 1, False, 517), (3, 2, 1, True, 12),
    (3, 2, 0, False, 9), (4, 4, 0, False, 17), (5, 2, 2, True, 21)])
def test_1d_kernels_match_reference(simd_path, k, s, p, ceil, size, dtype):
    x = _input(np.random.default_rng(size), (2, 2, size), dtype, "nan")
    _check_max(x, 1, dict(kernel_size=k, stride=s, padding=p, ceil_mode=ceil))
    _check_avg(x, 1, dict(kernel_size=k, stride=s, padding=p, ceil_mode=ceil))


@pytest.mark.parametrize("dtype", DTYPES)
def test_wide_kernels_match_reference(dtype):
    # kernels wider than 64 columns take the scalar int64 rows
    x = _input(np.random.default_rng(7), (2, 2, 3, 300), dtype, "nan")
    _check_max(x, 2, dict(kernel_size=(2, 70), stride=(1, 3), padding=(1, 35), ceil_mode=True))
    _check_max(x, 2, dict(kernel_size=(3, 66), stride=(2, 66), dilation=(1, 2)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k,s,p,ceil", [
    ((2, 2, 2), (2, 2, 2), 0, False), ((3, 3, 3), (2, 2, 2), 1, True),
    ((1, 3, 3), (1, 2, 2), (0, 1, 1), False), ((2, 3, 2), (1, 2, 3), (1, 1, 0), True)])
def test_3d_kernels_match_reference(k, s, p, ceil, dtype):
    x = _input(np.random.default_rng(3), (2, 2, 5, 6, 7), dtype, "ties")
    _check_max(x, 3, dict(kernel_size=k, stride=s, padding=p, ceil_mode=ceil))
    _check_avg(x, 3, dict(kernel_size=k, stride=s, padding=p, ceil_mode=ceil,
                          divisor_override=5))


# ---------------------------------------------------------------------------
# One test per rule of PyTorch's semantics
# ---------------------------------------------------------------------------

def test_stride_none_means_kernel_size():
    x = np.random.default_rng(0).standard_normal((1, 2, 8, 9))
    np.testing.assert_array_equal(fastconv.max_pool2d(x, 3), fastconv.max_pool2d(x, 3, 3))
    np.testing.assert_array_equal(fastconv.avg_pool2d(x, (2, 3)),
                                  fastconv.avg_pool2d(x, (2, 3), (2, 3)))
    assert fastconv.max_pool2d(x, 3).shape == (1, 2, 2, 3)


def test_per_axis_tuples():
    x = np.arange(4 * 6, dtype=np.float64).reshape(1, 1, 4, 6)
    y = fastconv.max_pool2d(x, (1, 2), (2, 3))
    np.testing.assert_array_equal(y, [[[[1, 4], [13, 16]]]])
    y = fastconv.avg_pool2d(x, (2, 1), (1, 2), padding=(1, 0))
    assert y.shape == (1, 1, 5, 3)
    np.testing.assert_array_equal(y[0, 0, 0], x[0, 0, 0, ::2] / 2)  # pad counts


def test_max_padding_counts_as_minus_infinity():
    x = -np.ones((1, 1, 3, 3)) - np.random.default_rng(0).random((1, 1, 3, 3))
    y, ind = fastconv.max_pool2d(x, 3, 1, padding=1, return_indices=True)
    assert (y < -1).all()            # zero padding would have made the border 0
    assert ((ind >= 0) & (ind < 9)).all()


@pytest.mark.parametrize("op", [fastconv.max_pool2d, fastconv.avg_pool2d])
def test_padding_above_half_kernel_is_refused(op):
    x = np.zeros((1, 1, 8, 8))
    with pytest.raises(ValueError, match=r"padding must be at most kernel_size // 2, "
                                         r"got padding=\(2, 2\) for kernel_size=\(3, 3\)"):
        op(x, 3, padding=2)
    op(x, 4, padding=2)              # 4 // 2 == 2 is fine


def test_max_dilation():
    x = np.array([[[3., 9., 1., 0., 5., 2., 7.]]])
    y, ind = fastconv.max_pool1d(x, 3, 1, dilation=2, return_indices=True)
    # windows {0, 2, 4}, {1, 3, 5}, {2, 4, 6}
    np.testing.assert_array_equal(y, [[[5., 9., 7.]]])
    np.testing.assert_array_equal(ind, [[[4, 1, 6]]])


def test_ceil_mode_adds_a_window_but_drops_one_starting_in_the_padding():
    x = np.arange(5.)[None, None]
    assert fastconv.max_pool1d(x, 2, ceil_mode=False).shape[-1] == 2
    np.testing.assert_array_equal(fastconv.max_pool1d(x, 2, ceil_mode=True), [[[1., 3., 4.]]])
    # in=5, k=3, s=3, p=1: ceil((5+2-3)/3)+1 = 3, but window 3 would start at
    # 5 = in + pad - 1 ... inside the right padding only: dropped (PyTorch)
    assert fastconv.max_pool1d(x, 3, 3, padding=1, ceil_mode=True).shape[-1] == 2
    assert fastconv.avg_pool1d(x, 3, 3, padding=1, ceil_mode=True).shape[-1] == 2


def test_count_include_pad():
    x = np.ones((1, 1, 3))
    np.testing.assert_allclose(fastconv.avg_pool1d(x, 3, 1, padding=1),
                               [[[2 / 3, 1, 2 / 3]]])
    np.testing.assert_allclose(fastconv.avg_pool1d(x, 3, 1, padding=1,
                                                   count_include_pad=False), [[[1, 1, 1]]])
    g = fastconv.avg_pool1d_backward(np.ones((1, 1, 3)), (1, 1, 3), 3, 1, padding=1,
                                     count_include_pad=False)
    np.testing.assert_allclose(g, [[[1 / 2 + 1 / 3, 1 / 2 + 1 / 3 + 1 / 2, 1 / 3 + 1 / 2]]])


def test_divisor_override():
    x = np.ones((1, 1, 4, 4))
    np.testing.assert_allclose(fastconv.avg_pool2d(x, 2, divisor_override=3), 4 / 3)
    g = fastconv.avg_pool2d_backward(np.ones((1, 1, 2, 2)), x.shape, 2, divisor_override=3)
    np.testing.assert_allclose(g, 1 / 3)
    with pytest.raises(ValueError, match="divisor_override must be a non-zero int.*, "
                                         "got divisor_override=0"):
        fastconv.avg_pool2d(x, 2, divisor_override=0)


def test_divisor_never_counts_the_ceil_overhang():
    x = np.ones((1, 1, 5))
    # k=2, s=2, ceil: last window [4, 6) hangs past the input: divisor 1, not 2
    np.testing.assert_allclose(fastconv.avg_pool1d(x, 2, ceil_mode=True), [[[1, 1, 1]]])
    # in=4, k=3, s=2, p=1, ceil: windows start -1, 1, 3; the last is clipped to
    # [3, 5) = input + padding: divisor 2 (with padding), 1 (without)
    x = np.ones((1, 1, 4))
    np.testing.assert_allclose(fastconv.avg_pool1d(x, 3, 2, padding=1, ceil_mode=True),
                               [[[2 / 3, 1, 1 / 2]]])
    np.testing.assert_allclose(fastconv.avg_pool1d(x, 3, 2, padding=1, ceil_mode=True,
                                                   count_include_pad=False), [[[1, 1, 1]]])


def test_nan_propagates_and_its_index_points_at_a_nan():
    x = np.array([[[[1., np.nan, 5., 2.], [7., 3., 9., np.nan]]]])
    for dtype in DTYPES:
        y, ind = fastconv.max_pool2d(x.astype(dtype), 2, return_indices=True)
        assert np.isnan(y).all()
        assert np.isnan(x.reshape(-1)[ind.reshape(-1)]).all()
    # a general (padded, overlapping) window too
    y, ind = fastconv.max_pool2d(x, 3, 1, padding=1, return_indices=True)
    assert np.isnan(y).all() and np.isnan(x.reshape(-1)[ind.reshape(-1)]).all()
    assert np.isnan(fastconv.avg_pool2d(x, 2)).all()


def test_first_maximum_wins_ties():
    x = np.array([[[[5., 5.], [5., 5.]]]])
    assert fastconv.max_pool2d(x, 2, return_indices=True)[1].item() == 0
    x = np.array([[[[1., 4., 4.], [4., 0., 4.], [4., 4., 4.]]]])
    for k, s, p in [(3, 1, 0), (3, 2, 1), (2, 1, 0)]:
        ind = fastconv.max_pool2d(x, k, s, padding=p, return_indices=True)[1]
        np.testing.assert_array_equal(
            ind, reference.max_pool2d(x, k, s, padding=p, return_indices=True)[1])
    assert fastconv.max_pool2d(x, 3, return_indices=True)[1].item() == 1


def test_backward_accumulates_over_overlapping_windows():
    x = np.array([[[0., 5., 0., 1.]]])
    y, ind = fastconv.max_pool1d(x, 2, 1, return_indices=True)
    np.testing.assert_array_equal(ind, [[[1, 1, 3]]])
    np.testing.assert_array_equal(
        fastconv.max_pool1d_backward(np.ones_like(y), ind, x.shape), [[[0., 2., 0., 1.]]])
    np.testing.assert_allclose(
        fastconv.avg_pool1d_backward(np.ones((1, 1, 3)), x.shape, 2, 1),
        [[[0.5, 1., 1., 0.5]]])


def test_indices_are_flat_per_plane():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 6, 5))
    y, ind = fastconv.max_pool2d(x, 2, return_indices=True)
    planes = x.reshape(6, -1)
    assert ((ind >= 0) & (ind < 30)).all()
    np.testing.assert_array_equal(np.take_along_axis(planes, ind.reshape(6, -1), 1),
                                  y.reshape(6, -1))
    h, w = ind // 5, ind % 5
    assert ((h // 2 == np.arange(3)[:, None]) & (w // 2 == np.arange(2))).all()
    x3 = rng.standard_normal((1, 2, 4, 3, 5))
    y3, i3 = fastconv.max_pool3d(x3, 2, return_indices=True)   # (1, 2, 2, 1, 2)
    np.testing.assert_array_equal(np.take_along_axis(x3.reshape(2, -1), i3.reshape(2, -1), 1),
                                  y3.reshape(2, -1))
    d, h, w = np.unravel_index(i3, (4, 3, 5))                 # i = d*H*W + h*W + w
    assert (d // 2 == np.arange(2)[:, None, None]).all() and (h // 2 == 0).all()
    assert (w // 2 == np.arange(2)).all()
    x1 = np.array([[[1., 9., 3., 7.]]])
    np.testing.assert_array_equal(fastconv.max_pool1d(x1, 2, return_indices=True)[1],
                                  [[[1, 3]]])


def test_index_is_never_minus_one():
    x = np.full((1, 1, 4, 4), -np.inf)
    y, ind = fastconv.max_pool2d(x, 3, 2, padding=1, return_indices=True)
    assert (y == -np.inf).all()
    # the first in-bounds element of each window, never -1 or a padding tap
    np.testing.assert_array_equal(ind, [[[[0, 1], [4, 5]]]])
    np.testing.assert_array_equal(ind, reference.max_pool2d(x, 3, 2, 1, return_indices=True)[1])
    g = fastconv.max_pool2d_backward(np.ones_like(y), ind, x.shape)
    assert g.sum() == 4
    x = np.full((1, 1, 4, 4), np.nan)
    ind = fastconv.max_pool2d(x, 3, 2, padding=1, return_indices=True)[1]
    assert ((ind >= 0) & (ind < 16)).all()


def _padding_only_configs():
    """Every small geometry (padding <= kernel // 2, as the contract allows)
    with a window that dilation steps over the whole input, per nd: the
    window's axis sizes are tiny, the others ordinary."""
    found = {1: [], 2: [], 3: []}
    for n, k, s, p, d, ceil in itertools.product(range(1, 5), range(2, 4), range(1, 3),
                                                 range(0, 2), range(2, 4), (False, True)):
        if p > k // 2:
            continue
        span = n + 2 * p - d * (k - 1) - 1
        if span < 0:
            continue
        starts = [o * s - p for o in range(span // s + 1 + ceil)]
        if any(t < 0 and t + -(t // d) * d >= n for t in starts):
            found[1].append(((n,), (k,), (s,), (p,), (d,), ceil))
    for cfg in found[1][:6]:
        (n,), (k,), (s,), (p,), (d,), ceil = cfg
        found[2].append(((n, 3), (k, 2), (s, 1), (p, 1), (d, 1), ceil))   # H empty
        found[2].append(((4, n), (2, k), (1, s), (0, p), (1, d), ceil))   # W empty
        found[3].append(((3, n, 2), (2, k, 2), (1, s, 1), (1, p, 0), (1, d, 1), ceil))
        found[3].append(((2, 3, n), (1, 2, k), (1, 1, s), (0, 1, p), (1, 1, d), ceil))
    return [(nd, cfg) for nd, cfgs in found.items() for cfg in cfgs]


@pytest.mark.parametrize("nd, cfg", _padding_only_configs())
def test_window_of_padding_only_gives_torchs_result(nd, cfg):
    """A window that dilation steps over the whole input has no element to
    pick: PyTorch returns -inf and the index of its first tap at or past 0 on
    each axis (inside the plane or past it).  fastconv and the reference
    return the same; the backward scatters as PyTorch's where that index
    lies inside the plane, and refuses an index past the plane (PyTorch
    writes outside the plane there, into the next plane's gradient)."""
    torch = pytest.importorskip("torch")
    size, kernel, stride, padding, dilation, ceil = cfg
    x = np.random.default_rng(0).standard_normal((2, 3) + size)
    kw = dict(kernel_size=kernel, stride=stride, padding=padding, dilation=dilation,
              ceil_mode=ceil)
    tx = torch.from_numpy(x).requires_grad_()
    t_max = {1: torch.nn.functional.max_pool1d, 2: torch.nn.functional.max_pool2d,
             3: torch.nn.functional.max_pool3d}[nd]
    ty, ti = t_max(tx, return_indices=True, **kw)
    assert torch.isinf(ty).any()           # the case this test is about
    y, ind = MAX[nd][0](x, return_indices=True, **kw)
    np.testing.assert_array_equal(y, ty.detach().numpy())
    np.testing.assert_array_equal(ind, ti.numpy())
    ry, rind = REF_MAX[nd][0](x, return_indices=True, **kw)
    np.testing.assert_array_equal(ry, y)
    np.testing.assert_array_equal(rind, ind)
    gy = np.random.default_rng(1).standard_normal(y.shape)
    if ind.max() < int(np.prod(size)):
        ty.backward(torch.from_numpy(gy))
        np.testing.assert_allclose(MAX[nd][1](gy, ind, x.shape), tx.grad.numpy(),
                                   rtol=1e-12, atol=1e-12)
    else:
        with pytest.raises(ValueError, match="outside the input plane"):
            MAX[nd][1](gy, ind, x.shape)


def test_backward_validates_indices_before_writing():
    x = np.random.default_rng(0).standard_normal((2, 2, 4, 4))
    y, ind = fastconv.max_pool2d(x, 2, return_indices=True)
    gy = np.ones_like(y)
    with pytest.raises(TypeError, match="indices must have dtype int64, got dtype int32"):
        fastconv.max_pool2d_backward(gy, ind.astype(np.int32), x.shape)
    with pytest.raises(ValueError, match="indices must have grad_output's shape"):
        fastconv.max_pool2d_backward(gy, ind[:, :, :1], x.shape)
    for bad in (16, -1, 2 ** 40):
        wrong = ind.copy()
        wrong[1, 1, 1, 0] = bad
        with pytest.raises(ValueError, match=rf"indices\[1, 1, 1, 0\] = {bad} is outside "
                                             r"the input plane of 16 elements"):
            fastconv.max_pool2d_backward(gy, wrong, x.shape)
    # hand-made indices anywhere in the plane are fine: scatter-add
    mine = np.zeros_like(ind)
    np.testing.assert_array_equal(fastconv.max_pool2d_backward(gy, mine, x.shape)[:, :, 0, 0], 4)
    with pytest.raises(ValueError, match="does not match input_shape"):
        fastconv.max_pool2d_backward(gy, ind, (2, 3, 4, 4))


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_empty_batch_and_channels(nd):
    for n, c in [(0, 3), (2, 0)]:
        x = np.zeros((n, c) + (5,) * nd, np.float32)
        y, ind = MAX[nd][0](x, 2, return_indices=True)
        assert y.shape == ind.shape == (n, c) + (2,) * nd and y.dtype == np.float32
        assert MAX[nd][1](y, ind, x.shape).shape == x.shape
        y = AVG[nd][0](x, 3, 1, padding=1)
        assert y.shape == x.shape
        assert AVG[nd][1](y, x.shape, 3, 1, padding=1).shape == x.shape
    x = np.zeros((0, 2, 6, 6))
    assert fastconv.adaptive_avg_pool2d(x, 3).shape == (0, 2, 3, 3)
    assert fastconv.adaptive_avg_pool2d_backward(np.zeros((0, 2, 3, 3)), x.shape).shape == x.shape


def test_non_contiguous_inputs_are_not_modified():
    rng = np.random.default_rng(0)
    base = rng.standard_normal((3, 4, 10, 12))
    x = base[:, ::2, ::-1, :]                      # strided, negative strides
    xf = np.asfortranarray(base)
    keep = base.copy()
    for inp in (x, xf):
        y, ind = fastconv.max_pool2d(inp, 3, 2, padding=1, return_indices=True)
        y_c, ind_c = fastconv.max_pool2d(np.ascontiguousarray(inp), 3, 2, 1,
                                         return_indices=True)
        np.testing.assert_array_equal(y, y_c)
        np.testing.assert_array_equal(ind, ind_c)
        gy = np.asfortranarray(np.ones_like(y))
        g = fastconv.max_pool2d_backward(gy, np.asfortranarray(ind), inp.shape)
        assert g.flags.c_contiguous
        np.testing.assert_allclose(fastconv.avg_pool2d(inp, 2),
                                   fastconv.avg_pool2d(np.ascontiguousarray(inp), 2))
        np.testing.assert_allclose(fastconv.adaptive_avg_pool2d(inp, (3, 5)),
                                   reference.adaptive_avg_pool2d(inp, (3, 5)))
    np.testing.assert_array_equal(base, keep)
    out = fastconv.avg_pool2d(base, 1)             # 1x1 pooling is a copy, not a view
    assert not np.shares_memory(out, base)


@pytest.mark.parametrize("op,args", [
    (fastconv.max_pool2d, (2,)), (fastconv.avg_pool2d, (2,)),
    (fastconv.adaptive_avg_pool2d, (2,)), (fastconv.max_pool1d, (2,))])
def test_dtype_rules(op, args):
    shape = (1, 1, 4) if op is fastconv.max_pool1d else (1, 1, 4, 4)
    for dtype in (np.int64, np.bool_, np.complex128, object):
        with pytest.raises(TypeError, match="dtype float32 or float64"):
            op(np.zeros(shape, dtype), *args)
    for dtype in DTYPES:
        assert op(np.zeros(shape, dtype), *args).dtype == dtype
    assert op(np.zeros(shape).tolist(), *args).dtype == np.float64  # float lists are fine
    with pytest.raises(TypeError, match="dtype float32 or float64"):
        op(np.zeros(shape, int).tolist(), *args)


def test_backward_dtype_and_shape_rules():
    gy = np.ones((1, 1, 2, 2), np.float32)
    assert fastconv.avg_pool2d_backward(gy, (1, 1, 4, 4), 2).dtype == np.float32
    with pytest.raises(TypeError, match="grad_output"):
        fastconv.avg_pool2d_backward(gy.astype(int), (1, 1, 4, 4), 2)
    with pytest.raises(ValueError, match=r"grad_output must have shape \(1, 1, 2, 2\), "
                                         r"got \(1, 1, 3, 2\)"):
        fastconv.avg_pool2d_backward(np.ones((1, 1, 3, 2)), (1, 1, 4, 4), 2)
    with pytest.raises(ValueError, match="input_shape must be a tuple of 4 ints"):
        fastconv.avg_pool2d_backward(gy, (4, 4), 2)
    with pytest.raises(ValueError, match="input_shape must be non-negative"):
        fastconv.max_pool2d_backward(gy, np.zeros(gy.shape, np.int64), (1, 1, -4, 4))


@pytest.mark.parametrize("kwargs,match", [
    (dict(kernel_size=0), "kernel_size must be positive"),
    (dict(kernel_size=2, stride=0), "stride must be positive"),
    (dict(kernel_size=2, padding=-1), "padding must be non-negative"),
    (dict(kernel_size=2, dilation=0), "dilation must be positive"),
    (dict(kernel_size=(2, 2, 2)), "kernel_size must be an int or a tuple of 1 or 2 ints"),
    (dict(kernel_size=9), r"output would be empty"),
    (dict(kernel_size=2, ceil_mode="yes"), "ceil_mode must be a bool"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError if "bool" not in match else TypeError, match=match):
        fastconv.max_pool2d(np.zeros((1, 1, 5, 5)), **kwargs)


def test_wrong_ndim():
    with pytest.raises(ValueError, match=r"max_pool2d: input must be 4-D \(N, C, H, W\)"):
        fastconv.max_pool2d(np.zeros((5, 5)), 2)
    with pytest.raises(ValueError, match=r"avg_pool3d: input must be 5-D"):
        fastconv.avg_pool3d(np.zeros((1, 5, 5)), 2)


# ---------------------------------------------------------------------------
# Adaptive average pooling
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("in_size,out_size", [
    ((7, 9), (3, 4)), ((5, 5), 5), ((4, 6), (7, 9)), ((10, 3), (1, 1)), ((6, 6), (None, 2))])
def test_adaptive_matches_reference(in_size, out_size, dtype):
    x = np.random.default_rng(0).standard_normal((2, 3) + in_size).astype(dtype)
    y = fastconv.adaptive_avg_pool2d(x, out_size)
    y_ref = reference.adaptive_avg_pool2d(x.astype(np.float64), out_size)
    np.testing.assert_allclose(y, y_ref, **TOL[np.dtype(dtype).type])
    gy = np.random.default_rng(1).standard_normal(y.shape).astype(dtype)
    np.testing.assert_allclose(fastconv.adaptive_avg_pool2d_backward(gy, x.shape),
                               reference.adaptive_avg_pool2d_backward(gy.astype(np.float64),
                                                                      x.shape),
                               **TOL[np.dtype(dtype).type])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nd,in_size,out_size", [
    (2, (40, 41), 1),            # global pooling: one run of a whole plane
    (2, (12, 45), (4, 1)),       # bins of whole rows: one run per bin
    (2, (45, 12), (2, 5)),       # neither: one run per row
    (2, (9, 70), (3, 2)),        # tiled backward (sizes divide), rows of 35
    (3, (3, 8, 9), (2, 1, 1)),   # bins of whole planes, overlapping in depth
    (3, (4, 6, 40), (2, 3, 1))])  # 3-D bins of whole rows
def test_adaptive_avg_long_runs_on_every_simd_path(simd_path, nd, in_size, out_size, dtype):
    """Bins read as long contiguous runs (the vectorised sums and fills) give
    the reference's answers on every SIMD path."""
    fwd = (fastconv.adaptive_avg_pool2d, fastconv.adaptive_avg_pool3d)[nd - 2]
    bwd = (fastconv.adaptive_avg_pool2d_backward, fastconv.adaptive_avg_pool3d_backward)[nd - 2]
    ref_fwd = (reference.adaptive_avg_pool2d, reference.adaptive_avg_pool3d)[nd - 2]
    ref_bwd = (reference.adaptive_avg_pool2d_backward,
               reference.adaptive_avg_pool3d_backward)[nd - 2]
    x = (np.random.default_rng(0).standard_normal((2, 3) + in_size) + 3).astype(dtype)
    y = fwd(x, out_size)
    np.testing.assert_allclose(y, ref_fwd(x.astype(np.float64), out_size),
                               **TOL[np.dtype(dtype).type])
    gy = np.random.default_rng(1).standard_normal(y.shape).astype(dtype)
    np.testing.assert_allclose(bwd(gy, x.shape), ref_bwd(gy.astype(np.float64), x.shape),
                               **TOL[np.dtype(dtype).type])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nd,shape", [
    (2, (2, 5, 7, 7)),        # ResNet's head; 10 planes: two blocks of planes and a partial one
    (2, (1, 3, 1, 1)),        # batch 1, one value per plane (no full vector)
    (2, (3, 1, 2, 4)),        # planes of exactly one float32 vector
    (1, (1, 9, 17)),          # 1-D, a vector and a tail
    (3, (2, 2, 3, 3, 5)),     # 3-D, planes of 45
    (2, (0, 4, 7, 7)),        # empty batch
    (2, (2, 0, 7, 7))])       # no channels
@pytest.mark.parametrize("threads", [1, 2])
def test_global_avg_pool_on_every_simd_path(simd_path, nd, shape, dtype, threads):
    """Output size 1 (global pooling, its own kernel) gives the reference's
    means on every SIMD path and thread count, for any plane count and plane
    size (whole blocks of planes, a partial block, vector tails)."""
    fwd = (fastconv.adaptive_avg_pool1d, fastconv.adaptive_avg_pool2d,
           fastconv.adaptive_avg_pool3d)[nd - 1]
    ref = (reference.adaptive_avg_pool1d, reference.adaptive_avg_pool2d,
           reference.adaptive_avg_pool3d)[nd - 1]
    x = (np.random.default_rng(0).standard_normal(shape) + 3).astype(dtype)
    before = fastconv.get_num_threads()
    fastconv.set_num_threads(threads)
    try:
        y = fwd(x, 1)
    finally:
        fastconv.set_num_threads(before)
    assert y.shape == shape[:2] + (1,) * nd and y.dtype == dtype and y.flags.c_contiguous
    np.testing.assert_allclose(y, ref(x.astype(np.float64), 1), **TOL[np.dtype(dtype).type])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("planes", [37, 70, 71])
@pytest.mark.parametrize("threads", [1, 2])
def test_global_avg_pool_with_prefetch_on_every_simd_path(simd_path, planes, dtype, threads):
    """With prefetching (the plan's choice for large inputs, forced here on
    small ones: plane counts past the prefetch distance) the kernel gives the
    same means as without, which are the reference's."""
    from fastconv import _kernels
    from fastconv.functional._pool import _sizes_geometry
    x = (np.random.default_rng(0).standard_normal((planes, 5, 7)) + 3).astype(dtype)
    geometry = _sizes_geometry(planes, (5, 7), (1, 1))
    with_prefetch, without = np.empty(planes, dtype), np.empty(planes, dtype)
    _kernels.global_avg_pool(x.reshape(-1), geometry, True, with_prefetch, threads)
    _kernels.global_avg_pool(x.reshape(-1), geometry, False, without, threads)
    np.testing.assert_array_equal(with_prefetch, without)
    np.testing.assert_allclose(with_prefetch, x.astype(np.float64).mean((1, 2)),
                               **TOL[np.dtype(dtype).type])


def test_global_avg_pool_of_a_strided_view():
    """A non-contiguous input (every other channel, Fortran order) pools the
    values the view shows, and stays unmodified."""
    base = np.random.default_rng(2).standard_normal((3, 10, 6, 5))
    x = np.asfortranarray(base[:, ::2])
    copy = x.copy()
    np.testing.assert_allclose(fastconv.adaptive_avg_pool2d(x, (1, 1)), x.mean((2, 3),
                               keepdims=True), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(x, copy)


def test_adaptive_bad_arguments():
    x = np.zeros((1, 1, 4, 4))
    with pytest.raises(ValueError, match="output_size must be positive"):
        fastconv.adaptive_avg_pool2d(x, 0)
    with pytest.raises(ValueError, match="output_size must be an int or a tuple of 2 ints"):
        fastconv.adaptive_avg_pool2d(x, (1, 2, 3))
    with pytest.raises(ValueError, match="input spatial size must be positive"):
        fastconv.adaptive_avg_pool2d(np.zeros((1, 1, 0, 4)), 2)
    with pytest.raises(ValueError, match="does not match input_shape"):
        fastconv.adaptive_avg_pool2d_backward(np.zeros((1, 2, 2, 2)), (1, 1, 4, 4))


# ---------------------------------------------------------------------------
# Threads
# ---------------------------------------------------------------------------

def test_thread_count_does_not_change_results():
    x = np.random.default_rng(0).standard_normal((4, 16, 33, 35)).astype(np.float32)
    saved = fastconv.get_num_threads()
    results = []
    try:
        for n in (1, 2):
            fastconv.set_num_threads(n)
            y, ind = fastconv.max_pool2d(x, 3, 2, padding=1, return_indices=True)
            results.append((y, ind, fastconv.max_pool2d_backward(y, ind, x.shape),
                            fastconv.avg_pool2d_backward(y, x.shape, 3, 2, 1)))
    finally:
        fastconv.set_num_threads(saved)
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_concurrent_calls():
    x = np.random.default_rng(0).standard_normal((8, 8, 32, 32))
    expected = fastconv.max_pool2d(x, 3, 2, padding=1, return_indices=True)
    errors = []

    def work():
        for _ in range(5):
            y, ind = fastconv.max_pool2d(x, 3, 2, padding=1, return_indices=True)
            if not (np.array_equal(y, expected[0]) and np.array_equal(ind, expected[1])):
                errors.append("mismatch")

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


# ---------------------------------------------------------------------------
# PyTorch: the reference (and so fastconv) follows it element by element
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(60))
def test_reference_and_fastconv_match_torch(seed):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    cfg = _random_config(1000 + seed)
    nd = cfg["nd"]
    x = _input(np.random.default_rng(seed), cfg["shape"], np.float64, cfg["kind"])
    kw = dict(kernel_size=cfg["kernel"], stride=cfg["stride"], padding=cfg["padding"],
              ceil_mode=cfg["ceil_mode"])
    t_max = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}[nd]
    try:
        y, ind = MAX[nd][0](x, **kw, dilation=cfg["dilation"], return_indices=True)
    except ValueError:
        return                                    # a window of padding only
    ty, ti = t_max(torch.from_numpy(x), **kw, dilation=cfg["dilation"], return_indices=True)
    np.testing.assert_array_equal(y, ty.numpy())
    np.testing.assert_array_equal(ind, ti.numpy())
    if x.shape[0]:
        t_avg = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}[nd]
        extra = {} if nd == 1 else dict(divisor_override=cfg["divisor_override"])
        try:
            ya = AVG[nd][0](x, **kw, count_include_pad=cfg["count_include_pad"], **extra)
        except ValueError:
            return
        if nd == 3 and any(n < k for n, k in zip(x.shape[2:], cfg["kernel"])):
            return    # torch's avg_pool3d alone refuses inputs smaller than the kernel
        xt = torch.from_numpy(x).requires_grad_()
        ta = t_avg(xt, **kw, count_include_pad=cfg["count_include_pad"], **extra)
        np.testing.assert_allclose(ya, ta.detach().numpy(), rtol=1e-12, atol=1e-12)
        gy = np.random.default_rng(seed).standard_normal(ya.shape)
        ta.backward(torch.from_numpy(gy))
        np.testing.assert_allclose(
            AVG[nd][1](gy, x.shape, **kw, count_include_pad=cfg["count_include_pad"], **extra),
            xt.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_adaptive_matches_torch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((2, 3, 11, 7))
    for out in [(3, 5), (11, 7), (4, 2), (13, 9), (1, 1)]:
        xt = torch.from_numpy(x).requires_grad_()
        t = torch.nn.functional.adaptive_avg_pool2d(xt, out)
        np.testing.assert_allclose(fastconv.adaptive_avg_pool2d(x, out), t.detach().numpy(),
                                   rtol=1e-12, atol=1e-12)
        gy = np.random.default_rng(1).standard_normal(t.shape)
        t.backward(torch.from_numpy(gy))
        np.testing.assert_allclose(fastconv.adaptive_avg_pool2d_backward(gy, x.shape),
                                   xt.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_backward_takes_indices_of_either_byte_order(nd):
    """Big-endian int64 indices (read from a file written elsewhere) mean the
    same numbers: accepted and converted, as big-endian floats are."""
    x = np.random.default_rng(0).standard_normal((2, 2) + (4,) * nd)
    y, ind = MAX[nd][0](x, 2, return_indices=True)
    gy = np.random.default_rng(1).standard_normal(y.shape)
    want = MAX[nd][1](gy, ind, x.shape)
    swapped = ind.astype(ind.dtype.newbyteorder(">" if ind.dtype.byteorder != ">" else "<"))
    np.testing.assert_array_equal(MAX[nd][1](gy.astype(">f8"), swapped, x.shape), want)
    adaptive = {1: fastconv.adaptive_max_pool1d_backward,
                2: fastconv.adaptive_max_pool2d_backward,
                3: fastconv.adaptive_max_pool3d_backward}[nd]
    np.testing.assert_array_equal(adaptive(gy, swapped, x.shape), want)


@pytest.mark.parametrize("value", [2**63, -2**63, 2**70])
def test_divisor_override_past_int64_is_a_value_error(value):
    x = np.ones((1, 1, 4, 4))
    for call in (lambda: fastconv.avg_pool2d(x, 2, divisor_override=value),
                 lambda: fastconv.avg_pool2d_backward(np.ones((1, 1, 2, 2)), x.shape, 2,
                                                      divisor_override=value)):
        with pytest.raises(ValueError, match=f"divisor_override={value}"):
            call()
    big = 2**63 - 1    # the largest the kernels take: fine
    assert fastconv.avg_pool2d(x, 2, divisor_override=big).max() == pytest.approx(4 / big)
