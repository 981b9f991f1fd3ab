"""The fused BatchNorm + ReLU: batch_norm_relu and batch_norm_relu_backward
against batch_norm then relu composed (to the bit: same kernels' formulas,
forward, running statistics and every gradient), against fastconv.reference
and PyTorch (float64, tight), by gradcheck, on every SIMD path with 1 and 2
threads; and the containers' pairing of BatchNorm{1,2,3}d with ReLU
(fastconv.nn) against the same layers run one by one."""
import numpy as np
import pytest

from conftest import assert_close
from helpers import (assert_same_state, batch_norm_case as _case, check_fused_pending_caches,
                     check_pairs_match_one_by_one, hooked, layers_one_by_one, non_contiguous,
                     relu_was_fused)

import fastconv
from fastconv import nn, reference

DTYPES = (np.float32, np.float64)
# 1-D (N, C) and (N, C, L), 2-D, 3-D; odd sizes and spatial runs below, at
# and above the kernels' 8 partial sums
SHAPES = [(5, 3), (4, 3, 7), (2, 3, 5, 6), (2, 3, 3, 4, 5), (3, 2, 11, 13), (2, 5, 1, 8),
          (3, 1, 17)]


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


def test_every_simd_path_and_thread_count(rng, simd_path, threads):
    """Big enough to run threaded; spatial 1027 leaves a tail after the
    kernels' 8 partial sums: fused equals composed to the bit, and both the
    reference."""
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


# ------------------------------------------------- nn: Sequential's pairing
_NORM_CASES = [(nn.BatchNorm1d, (6, 4)), (nn.BatchNorm1d, (3, 4, 7)),
               (nn.BatchNorm2d, (3, 4, 5, 3)), (nn.BatchNorm3d, (2, 4, 3, 2, 5))]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("norm,shape", _NORM_CASES)
@pytest.mark.parametrize("inplace", [False, True])
@pytest.mark.parametrize("options", [{}, {"affine": False, "momentum": None},
                                     {"track_running_stats": False}])
def test_sequential_pairs_equal_the_layers_one_by_one(rng, dtype, norm, shape, inplace, options):
    """Two training steps and an eval step of Linear/identity - BN - ReLU -
    BN - ReLU in a Sequential (fused pairs) and of the same layers called
    one at a time: outputs, input gradients, every parameter's gradient,
    running statistics and num_batches_tracked equal to the bit."""
    c = shape[1]
    net = nn.Sequential(norm(c, dtype=dtype, **options), nn.ReLU(inplace=inplace),
                        norm(c, dtype=dtype, **options), nn.ReLU())
    for m in net.layers[::2]:
        if "weight" in m.params:
            m.params["weight"][...] = rng.standard_normal(c)
            m.params["bias"][...] = rng.standard_normal(c)
    check_pairs_match_one_by_one(net, rng, shape, dtype, offset=0.3)


class _OwnReLU(nn.ReLU):
    pass


class _OwnBatchNorm2d(nn.BatchNorm2d):
    pass


def _unfusable(kind):
    """(Sequential, the ReLU) where the BatchNorm + ReLU must not fuse."""
    bn, relu = nn.BatchNorm2d(3, dtype=np.float64), nn.ReLU()
    if kind == "relu subclass":
        relu = _OwnReLU()
    elif kind == "batch norm subclass":
        bn = _OwnBatchNorm2d(3, dtype=np.float64)
    elif kind == "hooked relu":
        relu = hooked(relu)
    elif kind == "hooked batch norm":
        bn = hooked(bn)
    elif kind == "relu in eval, batch norm training":
        relu.eval()
    elif kind == "batch norm in eval, relu training":
        bn.eval()
    elif kind == "relu on the reference backend":
        relu.set_backend("reference")
    layers = [bn, relu]
    if kind == "relu not right after":
        layers = [bn, nn.Identity(), relu]
    elif kind == "relu before":
        layers = [relu, bn]
    return nn.Sequential(*layers), relu


_UNFUSABLE = ["relu subclass", "batch norm subclass", "hooked relu", "hooked batch norm",
              "relu in eval, batch norm training", "batch norm in eval, relu training",
              "relu on the reference backend", "relu not right after", "relu before"]


@pytest.mark.parametrize("kind", _UNFUSABLE)
def test_pairs_that_must_not_fuse_run_unfused_and_right(rng, kind):
    net, relu = _unfusable(kind)
    alone = _unfusable(kind)[0]      # (a deep copy's hook would call the original)
    x, gy = rng.standard_normal((2, 3, 4, 5)) + 0.2, rng.standard_normal((2, 3, 4, 5))
    y = net(x)
    assert not relu_was_fused(relu)
    gx = net.backward(gy)
    y_alone, gx_alone = layers_one_by_one(alone.layers, x, gy)
    np.testing.assert_array_equal(y, y_alone)
    np.testing.assert_array_equal(gx, gx_alone)
    assert_same_state(net, alone)
    for m in net.layers:
        if "calls" in vars(m):
            assert m.calls == [x.shape]      # the hook saw its call


def test_layers_of_a_fused_pair_still_work_alone(rng):
    """After a fused Sequential step, each layer called by itself runs its
    own unfused forward and backward."""
    bn, relu = nn.BatchNorm2d(3, dtype=np.float64), nn.ReLU()
    net = nn.Sequential(bn, relu)
    x, gy = rng.standard_normal((2, 3, 4, 5)), rng.standard_normal((2, 3, 4, 5))
    net(x)
    net.backward(gy)
    z = bn(x)
    np.testing.assert_array_equal(relu(z), np.maximum(z, 0))
    assert not relu_was_fused(relu)
    g = relu.backward(gy)
    np.testing.assert_array_equal(g, np.where(z > 0, gy, 0))
    np.testing.assert_array_equal(bn.backward(g), fastconv.batch_norm_backward(
        g, x, None, None, bn.params["weight"], True)[0])
    assert not relu._pending and not bn._pending


def test_no_grad_eval_fuses_and_keeps_nothing(rng):
    net = nn.Sequential(nn.BatchNorm2d(3, dtype=np.float64), nn.ReLU()).eval()
    net[0].running_mean[...] = rng.standard_normal(3)
    x = rng.standard_normal((2, 3, 4, 5))
    with nn.no_grad():
        y = net(x)
    assert not net[0]._pending and not net[1]._pending
    np.testing.assert_array_equal(y, fastconv.relu(fastconv.batch_norm(
        x, net[0].running_mean, net[0].running_var, net[0].params["weight"],
        net[0].params["bias"])))


def test_fused_pending_caches_deep_copy_pickle_and_check_grad_output(rng):
    net = nn.Sequential(nn.BatchNorm2d(3, dtype=np.float64), nn.ReLU())
    check_fused_pending_caches(net, rng.standard_normal((2, 3, 4, 5)),
                               rng.standard_normal((2, 3, 4, 5)))


def test_fused_sequential_gradcheck(rng):
    net = nn.Sequential(nn.BatchNorm1d(3, dtype=np.float64), nn.ReLU())
    net[0].params["weight"][...] = rng.standard_normal(3)
    x = rng.standard_normal((4, 3, 5)) + 0.3

    def f(x, w, b):
        net.zero_grad()
        y = net(x)
        return y, lambda gy: (net.backward(gy), net[0].grads["weight"], net[0].grads["bias"])

    fastconv.gradcheck(f, x, net[0].params["weight"], net[0].params["bias"])


@pytest.mark.parametrize("norm,shape", _NORM_CASES)
def test_fused_pair_against_torch(rng, norm, shape):
    """Three training steps and an eval step of BN + ReLU in a Sequential
    against torch.nn's, float64."""
    torch = pytest.importorskip("torch")
    c = shape[1]
    ours = nn.Sequential(norm(c, dtype=np.float64), nn.ReLU())
    theirs = torch.nn.Sequential(getattr(torch.nn, norm.__name__)(c), torch.nn.ReLU()).double()
    w = rng.standard_normal(c)
    ours[0].params["weight"][...] = w
    with torch.no_grad():
        theirs[0].weight.copy_(torch.tensor(w))
    tight = dict(rtol=1e-10, atol=1e-12)
    for step in range(4):
        if step == 3:
            ours.eval()
            theirs.eval()
        x, gy = rng.standard_normal(shape) + 0.3, rng.standard_normal(shape)
        xt = torch.tensor(x, requires_grad=True)
        yt = theirs(xt)
        yt.backward(torch.tensor(gy))
        np.testing.assert_allclose(ours(x), yt.detach().numpy(), **tight)
        assert relu_was_fused(ours[1])
        np.testing.assert_allclose(ours.backward(gy), xt.grad.numpy(), **tight)
        np.testing.assert_allclose(ours[0].grads["weight"], theirs[0].weight.grad.numpy(),
                                   **tight)
        np.testing.assert_allclose(ours[0].grads["bias"], theirs[0].bias.grad.numpy(), **tight)
        np.testing.assert_allclose(ours[0].running_mean, theirs[0].running_mean.numpy(),
                                   **tight)
        np.testing.assert_allclose(ours[0].running_var, theirs[0].running_var.numpy(), **tight)
