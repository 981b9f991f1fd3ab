"""The fused BatchNorm + ReLU: batch_norm_relu and batch_norm_relu_backward
against batch_norm then relu composed (to the bit: same kernels' formulas,
forward, running statistics and every gradient), against fastconv.reference
and PyTorch (float64, tight), by gradcheck, on every SIMD path with 1 and 2
threads; and the containers' pairing of BatchNorm{1,2,3}d with ReLU
(fastconv.nn) against the same layers run one by one."""
import copy

import numpy as np
import pytest

from conftest import assert_close
from helpers import non_contiguous

import fastconv
from fastconv import nn, reference

DTYPES = (np.float32, np.float64)
# 1-D (N, C) and (N, C, L), 2-D, 3-D; odd sizes and spatial runs below, at
# and above the kernels' 8 partial sums
SHAPES = [(5, 3), (4, 3, 7), (2, 3, 5, 6), (2, 3, 3, 4, 5), (3, 2, 11, 13), (2, 5, 1, 8),
          (3, 1, 17)]


def _case(rng, shape, dtype, offset=0.0):
    c = shape[1]
    return dict(input=(rng.standard_normal(shape) * 2 + offset).astype(dtype),
                running_mean=rng.standard_normal(c).astype(dtype),
                running_var=(rng.random(c) + 0.5).astype(dtype),
                weight=rng.standard_normal(c).astype(dtype),
                bias=rng.standard_normal(c).astype(dtype))


def _composed_and_fused(kw, gy, training, affine=True, stats=True, **extra):
    """((y, running stats, grads) of batch_norm then relu, the same of the
    fused ops), each on its own copies of the running statistics."""
    results = []
    for fused in (False, True):
        rm, rv = ((kw["running_mean"].copy(), kw["running_var"].copy()) if stats
                  else (None, None))
        w, b = (kw["weight"], kw["bias"]) if affine else (None, None)
        args = (kw["input"], rm, rv, w, b, training)
        if fused:
            y = fastconv.batch_norm_relu(*args, **extra)
            grads = fastconv.batch_norm_relu_backward(gy, y, kw["input"], rm, rv, w, training,
                                                      **extra)
        else:
            y = fastconv.relu(fastconv.batch_norm(*args, **extra))
            grads = fastconv.batch_norm_backward(fastconv.relu_backward(gy, y), kw["input"],
                                                 rm, rv, w, training, **extra)
        results.append((y, rm, rv) + tuple(grads))
    return results


def _assert_identical(composed, fused):
    for a, b in zip(composed, fused):
        if a is None:
            assert b is None
            continue
        assert b.dtype == a.dtype and b.flags.c_contiguous
        np.testing.assert_array_equal(b, a)


# ----------------------------------------------------------------- the ops
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("training", [False, True])
def test_equals_batch_norm_then_relu_to_the_bit(rng, shape, dtype, training):
    kw = _case(rng, shape, dtype, offset=0.5)
    gy = rng.standard_normal(shape).astype(dtype)
    composed, fused = _composed_and_fused(kw, gy, training, eps=1e-3)
    assert (fused[0] == 0).any() and (fused[0] > 0).any()    # the mask does something
    _assert_identical(composed, fused)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("affine,stats", [(False, True), (True, False), (False, False)])
def test_without_weight_or_running_statistics(rng, dtype, affine, stats):
    kw = _case(rng, (3, 4, 5, 2), dtype)
    gy = rng.standard_normal((3, 4, 5, 2)).astype(dtype)
    _assert_identical(*_composed_and_fused(kw, gy, True, affine, stats))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES[:5])
@pytest.mark.parametrize("training", [False, True])
def test_against_reference(rng, shape, dtype, training):
    kw = _case(rng, shape, dtype)
    gy = rng.standard_normal(shape).astype(dtype)
    ours, ref = [kw["running_mean"].copy(), kw["running_var"].copy()], \
        [kw["running_mean"].copy(), kw["running_var"].copy()]
    y = fastconv.batch_norm_relu(kw["input"], *ours, kw["weight"], kw["bias"], training,
                                 0.3, 1e-3)
    expected = reference.batch_norm_relu(kw["input"], *ref, kw["weight"], kw["bias"],
                                         training, 0.3, 1e-3)
    assert_close(y, expected, dtype)
    for a, b in zip(ours, ref):
        assert_close(a, b, dtype)
    args = (gy, y, kw["input"], kw["running_mean"], kw["running_var"], kw["weight"], training,
            1e-3)
    for got, want in zip(fastconv.batch_norm_relu_backward(*args),
                         reference.batch_norm_relu_backward(*args)):
        assert_close(got, want, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_any_memory_layout(rng, dtype):
    """Fortran-ordered, negatively strided and byte-swapped arrays give the
    C-ordered arrays' results, and no input is modified."""
    shape = (3, 4, 5, 6)
    kw = _case(rng, shape, dtype)
    gy = rng.standard_normal(shape).astype(dtype)
    rm, rv = kw["running_mean"].copy(), kw["running_var"].copy()
    y = fastconv.batch_norm_relu(kw["input"], rm, rv, kw["weight"], kw["bias"], True)
    want = fastconv.batch_norm_relu_backward(gy, y, kw["input"], None, None, kw["weight"],
                                             True)
    x = np.asfortranarray(kw["input"])
    rm2, rv2 = non_contiguous(kw["running_mean"]), non_contiguous(kw["running_var"])
    w_swapped = kw["weight"].astype(kw["weight"].dtype.newbyteorder())
    kept = [a.copy() for a in (x, gy, y, kw["weight"])]
    y2 = fastconv.batch_norm_relu(x, rm2, rv2, w_swapped, non_contiguous(kw["bias"]), True)
    np.testing.assert_array_equal(y2, y)
    np.testing.assert_array_equal(rm2, rm)
    np.testing.assert_array_equal(rv2, rv)
    got = fastconv.batch_norm_relu_backward(non_contiguous(gy), np.asfortranarray(y), x, None,
                                            None, w_swapped, True)
    for a, b in zip(got, want):
        assert a.flags.c_contiguous
        np.testing.assert_array_equal(a, b)
    for a, b in zip((x, gy, y, kw["weight"]), kept):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", DTYPES)
def test_empty_batch_and_no_channels(dtype):
    rm, rv = np.zeros(3, dtype), np.ones(3, dtype)
    x = np.zeros((0, 3, 4), dtype)
    y = fastconv.batch_norm_relu(x, rm, rv, training=True)
    assert y.shape == (0, 3, 4) and y.dtype == dtype
    assert (rm == 0).all() and (rv == 1).all()
    gx, gw, gb = fastconv.batch_norm_relu_backward(x, y, x, rm, rv, training=True)
    assert gx.shape == (0, 3, 4) and (gw == 0).all() and (gb == 0).all()
    empty = np.zeros(0, dtype)
    x = np.zeros((2, 0, 5), dtype)
    y = fastconv.batch_norm_relu(x, empty, empty)
    gx, gw, gb = fastconv.batch_norm_relu_backward(x, y, x, empty, empty)
    assert y.shape == gx.shape == (2, 0, 5) and gw.shape == gb.shape == (0,)


def test_nan_and_infinity_as_batch_norm_then_relu(rng):
    """NaN stays NaN forward and passes the gradient backward (relu's
    `output <= 0` mask), -inf clamps to 0: eval mode, where one value does
    not spoil its channel."""
    kw = _case(rng, (2, 3, 4), np.float64)
    kw["input"][0, 0, :3] = [np.nan, -np.inf, np.inf]
    gy = rng.standard_normal((2, 3, 4))
    composed, fused = _composed_and_fused(kw, gy, False)
    assert np.isnan(fused[0][0, 0, 0]) and fused[0][0, 0, 1] == 0
    _assert_identical(composed, fused)


@pytest.mark.parametrize("nthreads", [1, 2])
def test_every_simd_path_and_thread_count(rng, simd_path, nthreads):
    """Big enough to run threaded; spatial 1027 leaves a tail after the
    kernels' 8 partial sums."""
    before = fastconv.get_num_threads()
    fastconv.set_num_threads(nthreads)
    try:
        for dtype in DTYPES:
            kw = _case(rng, (8, 40, 1027), dtype, offset=0.5)
            gy = rng.standard_normal((8, 40, 1027)).astype(dtype)
            for training in (False, True):
                composed, fused = _composed_and_fused(kw, gy, training)
                _assert_identical(composed, fused)
                rm, rv = kw["running_mean"].copy(), kw["running_var"].copy()
                want = reference.batch_norm_relu(kw["input"], rm, rv, kw["weight"], kw["bias"],
                                                 training)
                assert_close(fused[0], want, dtype)
                args = (gy, fused[0], kw["input"], kw["running_mean"], kw["running_var"],
                        kw["weight"], training)
                for a, b in zip(fused[3:], reference.batch_norm_relu_backward(*args)):
                    assert_close(a, b, dtype)
    finally:
        fastconv.set_num_threads(before)


@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("shape", [(6, 3), (3, 2, 5), (2, 2, 3, 4), (2, 2, 2, 3, 2)])
def test_gradcheck(rng, shape, training):
    kw = _case(rng, shape, np.float64, offset=0.3)
    rm, rv = kw["running_mean"], kw["running_var"]

    def f(x, w, b):
        y = fastconv.batch_norm_relu(x, rm.copy(), rv.copy(), w, b, training)
        return y, lambda gy: fastconv.batch_norm_relu_backward(gy, y, x, rm, rv, w, training)

    fastconv.gradcheck(f, kw["input"], kw["weight"], kw["bias"])


def test_backward_checks_output():
    x = np.ones((2, 3, 4))
    stats = (np.zeros(3), np.ones(3))
    with pytest.raises(ValueError, match="batch_norm_relu_backward: output must have input's"):
        fastconv.batch_norm_relu_backward(x, x[:, :, :3], x, *stats)
    with pytest.raises(TypeError, match="batch_norm_relu_backward.*output"):
        fastconv.batch_norm_relu_backward(x, x.astype(np.float32), x, *stats)
    with pytest.raises(TypeError, match="batch_norm_relu_backward: output"):
        fastconv.batch_norm_relu_backward(x, None, x, *stats)
    with pytest.raises(ValueError, match="batch_norm_relu: training needs more than 1"):
        fastconv.batch_norm_relu(np.ones((1, 3)), None, None, training=True)


@pytest.mark.parametrize("shape", SHAPES[:4])
@pytest.mark.parametrize("training", [False, True])
def test_against_torch(rng, shape, training):
    torch = pytest.importorskip("torch")
    kw = _case(rng, shape, np.float64, offset=0.5)
    gy = rng.standard_normal(shape)
    rm, rv = kw["running_mean"].copy(), kw["running_var"].copy()
    y = fastconv.batch_norm_relu(kw["input"], rm, rv, kw["weight"], kw["bias"], training, 0.2,
                                 1e-4)
    xt = torch.tensor(kw["input"], requires_grad=True)
    wt = torch.tensor(kw["weight"], requires_grad=True)
    bt = torch.tensor(kw["bias"], requires_grad=True)
    rmt, rvt = torch.tensor(kw["running_mean"]), torch.tensor(kw["running_var"])
    yt = torch.relu(torch.nn.functional.batch_norm(xt, rmt, rvt, wt, bt, training, 0.2, 1e-4))
    yt.backward(torch.tensor(gy))
    tight = dict(rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(y, yt.detach().numpy(), **tight)
    np.testing.assert_allclose(rm, rmt.numpy(), **tight)
    np.testing.assert_allclose(rv, rvt.numpy(), **tight)
    gx, gw, gb = fastconv.batch_norm_relu_backward(gy, y, kw["input"], kw["running_mean"],
                                                   kw["running_var"], kw["weight"], training,
                                                   1e-4)
    for ours, theirs in ((gx, xt), (gw, wt), (gb, bt)):
        np.testing.assert_allclose(ours, theirs.grad.numpy(), **tight)
