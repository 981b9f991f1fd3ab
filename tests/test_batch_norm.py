"""batch_norm and batch_norm_backward (1-D/2-D/3-D, train and eval): against
fastconv.reference, against PyTorch 2.13 (forward, running statistics and
every gradient via autograd, float64 tight, when torch is installed), by
gradcheck in float64, on every SIMD path with 1 and 2 threads; and the
BatchNorm layers built on them against torch.nn."""
import numpy as np
import pytest

from conftest import assert_close
from helpers import batch_norm_case as _case, non_contiguous

import fastconv
from fastconv import nn, reference

DTYPES = (np.float32, np.float64)
SHAPES = [(5, 3), (4, 3, 7), (2, 3, 5, 6), (2, 3, 3, 4, 5), (3, 2, 11, 13)]


def _both(fn, kw, **extra):
    """fn on copies of kw's arrays (the running statistics are written)."""
    return fn(**{k: v.copy() if isinstance(v, np.ndarray) else v for k, v in kw.items()},
              **extra)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("training", [False, True])
def test_against_reference(rng, shape, dtype, training):
    kw = _case(rng, shape, dtype)
    gy = rng.standard_normal(shape).astype(dtype)
    ours_stats = (kw["running_mean"].copy(), kw["running_var"].copy())
    ref_stats = (kw["running_mean"].copy(), kw["running_var"].copy())
    y = fastconv.batch_norm(kw["input"], *ours_stats, kw["weight"], kw["bias"], training,
                            0.3, 1e-3)
    expected = reference.batch_norm(kw["input"], *ref_stats, kw["weight"], kw["bias"],
                                    training, 0.3, 1e-3)
    assert_close(y, expected, dtype)
    for ours, ref in zip(ours_stats, ref_stats):
        assert_close(ours, ref, dtype)
    assert y.flags.c_contiguous
    args = (gy, kw["input"], kw["running_mean"], kw["running_var"], kw["weight"], training,
            1e-3)
    for got, want in zip(fastconv.batch_norm_backward(*args),
                         reference.batch_norm_backward(*args)):
        assert_close(got, want, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_non_contiguous_inputs_and_no_weight(rng, dtype):
    kw = _case(rng, (3, 4, 5, 6), dtype)
    gy = rng.standard_normal((3, 4, 5, 6)).astype(dtype)
    rm, rv = non_contiguous(kw["running_mean"]), non_contiguous(kw["running_var"])
    rm_ref, rv_ref = kw["running_mean"].copy(), kw["running_var"].copy()
    x = np.asfortranarray(kw["input"])
    y = fastconv.batch_norm(x, rm, rv, training=True)
    assert_close(y, reference.batch_norm(kw["input"], rm_ref, rv_ref, training=True), dtype)
    assert_close(rm, rm_ref, dtype)
    assert_close(rv, rv_ref, dtype)
    got = fastconv.batch_norm_backward(non_contiguous(gy), x, None, None, training=True)
    want = reference.batch_norm_backward(gy, kw["input"], None, None, training=True)
    for a, b in zip(got, want):
        assert_close(a, b, dtype)


def test_statistics_far_from_zero_keep_their_precision(rng):
    """float32 data at 1e4 with std 1: the textbook one-pass E[x^2] - E[x]^2
    in float32 would lose the variance entirely."""
    x64 = rng.standard_normal((16, 3, 20, 20)) + 1e4
    x = x64.astype(np.float32)
    rm, rv = np.zeros(3, np.float32), np.ones(3, np.float32)
    y = fastconv.batch_norm(x, rm, rv, training=True, momentum=1.0)
    xd = x.astype(np.float64)
    axes = (0, 2, 3)
    np.testing.assert_allclose(rm, xd.mean(axes), rtol=1e-7)
    np.testing.assert_allclose(rv, xd.var(axes, ddof=1), rtol=1e-5)
    assert abs(float(y.std()) - 1) < 1e-2


@pytest.mark.parametrize("dtype", DTYPES)
def test_empty_batch_and_no_channels(dtype):
    rm, rv = np.zeros(3, dtype), np.ones(3, dtype)
    y = fastconv.batch_norm(np.zeros((0, 3, 4), dtype), rm, rv, training=True)
    assert y.shape == (0, 3, 4) and y.dtype == dtype
    assert (rm == 0).all() and (rv == 1).all()      # as PyTorch: nothing to average
    gx, gw, gb = fastconv.batch_norm_backward(np.zeros((0, 3, 4), dtype),
                                              np.zeros((0, 3, 4), dtype), rm, rv,
                                              training=True)
    assert gx.shape == (0, 3, 4) and (gw == 0).all() and (gb == 0).all()
    empty = np.zeros(0, dtype)
    y = fastconv.batch_norm(np.zeros((2, 0, 5), dtype), empty, empty, training=False)
    assert y.shape == (2, 0, 5)
    gx, gw, gb = fastconv.batch_norm_backward(np.zeros((2, 0, 5), dtype),
                                              np.zeros((2, 0, 5), dtype), empty, empty)
    assert gx.shape == (2, 0, 5) and gw.shape == (0,) and gb.shape == (0,)


def test_training_needs_two_values_per_channel():
    with pytest.raises(ValueError, match="batch_norm: training needs more than 1 value"):
        fastconv.batch_norm(np.ones((1, 3)), None, None, training=True)
    fastconv.batch_norm(np.ones((1, 3)), np.zeros(3), np.ones(3))   # eval: fine


def test_read_only_arrays_in_eval(rng):
    kw = _case(rng, (2, 3, 4), np.float64)
    for v in kw.values():
        v.flags.writeable = False
    y = fastconv.batch_norm(**kw)
    assert_close(y, reference.batch_norm(**kw), np.float64)
    fastconv.batch_norm_backward(y, kw["input"], kw["running_mean"], kw["running_var"],
                                 kw["weight"])


def test_inputs_other_than_running_stats_are_not_modified(rng):
    kw = _case(rng, (2, 3, 4, 4), np.float64)
    before = {k: v.copy() for k, v in kw.items()}
    fastconv.batch_norm(**kw, training=True)
    for k in ("input", "weight", "bias"):
        np.testing.assert_array_equal(kw[k], before[k])
    assert not np.array_equal(kw["running_mean"], before["running_mean"])


@pytest.mark.parametrize("nthreads", [1, 2])
def test_every_simd_path_and_thread_count(rng, simd_path, nthreads):
    """Big enough to run threaded; spatial 1027 leaves a tail after the
    sums' blocks of vectors."""
    before = fastconv.get_num_threads()
    fastconv.set_num_threads(nthreads)
    try:
        for dtype in DTYPES:
            kw = _case(rng, (8, 40, 1027), dtype, offset=3.0)
            gy = rng.standard_normal((8, 40, 1027)).astype(dtype)
            for training in (False, True):
                got = _both(fastconv.batch_norm, kw, training=training)
                assert_close(got, _both(reference.batch_norm, kw, training=training), dtype)
                args = (gy, kw["input"], kw["running_mean"], kw["running_var"], kw["weight"],
                        training)
                for a, b in zip(fastconv.batch_norm_backward(*args),
                                reference.batch_norm_backward(*args)):
                    assert_close(a, b, dtype)
    finally:
        fastconv.set_num_threads(before)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(4, 131, 520), (2, 5, 40000), (5, 70), (2, 65, 3, 3)])
def test_channel_blocks_and_threads_give_the_same_bits(rng, dtype, shape):
    """The kernels sweep blocks of channels (at most 64, at least one block
    per thread, as many as keep a block's inputs within FC_BN_CACHE_BYTES);
    each channel's sums add its runs in image order whatever the blocks, so
    1 and 2 threads give the same bits, forward and backward, and both match
    the reference.  The first two shapes are big enough to run on 2 threads
    (the kernels' parallel threshold is 2**18 values): the first cuts 131
    channels into blocks of 63 or 31 and a short last one; the second's
    channels (320 KB in float32) go one a block, or past the budget into
    the wide blocks of channels that cannot stay in cache."""
    kw = _case(rng, shape, dtype, offset=2.0)
    gy = rng.standard_normal(shape).astype(dtype)
    before = fastconv.get_num_threads()
    results = []
    try:
        for nthreads in (1, 2):
            fastconv.set_num_threads(nthreads)
            y = _both(fastconv.batch_norm, kw, training=True)
            grads = fastconv.batch_norm_backward(gy, kw["input"], None, None, kw["weight"],
                                                 True)
            results.append((y, *grads))
    finally:
        fastconv.set_num_threads(before)
    for one, two in zip(*results):
        np.testing.assert_array_equal(one, two)
    assert_close(results[0][0], _both(reference.batch_norm, kw, training=True), dtype)
    want = reference.batch_norm_backward(gy, kw["input"], None, None, kw["weight"], True)
    for got, expected in zip(results[0][1:], want):
        assert_close(got, expected, dtype)


@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("shape", [(6, 3), (3, 2, 5), (2, 2, 3, 4), (2, 2, 2, 3, 2)])
def test_gradcheck(rng, shape, training):
    kw = _case(rng, shape, np.float64)
    rm, rv = kw["running_mean"], kw["running_var"]

    def f(x, w, b):
        y = fastconv.batch_norm(x, rm.copy(), rv.copy(), w, b, training)
        return y, lambda gy: fastconv.batch_norm_backward(gy, x, rm, rv, w, training)

    fastconv.gradcheck(f, kw["input"], kw["weight"], kw["bias"])


# ------------------------------------------------------------------ PyTorch
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("affine", [False, True])
def test_against_torch(rng, shape, training, affine):
    torch = pytest.importorskip("torch")
    kw = _case(rng, shape, np.float64, offset=5.0)
    gy = rng.standard_normal(shape)
    w, b = (kw["weight"], kw["bias"]) if affine else (None, None)
    rm, rv = kw["running_mean"].copy(), kw["running_var"].copy()
    y = fastconv.batch_norm(kw["input"], rm, rv, w, b, training, 0.2, 1e-4)
    xt = torch.tensor(kw["input"], requires_grad=True)
    wt = torch.tensor(kw["weight"], requires_grad=True) if affine else None
    bt = torch.tensor(kw["bias"], requires_grad=True) if affine else None
    rmt, rvt = torch.tensor(kw["running_mean"]), torch.tensor(kw["running_var"])
    yt = torch.nn.functional.batch_norm(xt, rmt, rvt, wt, bt, training, 0.2, 1e-4)
    yt.backward(torch.tensor(gy))
    tight = dict(rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(y, yt.detach().numpy(), **tight)
    np.testing.assert_allclose(rm, rmt.numpy(), **tight)
    np.testing.assert_allclose(rv, rvt.numpy(), **tight)
    gx, gw, gb = fastconv.batch_norm_backward(gy, kw["input"], kw["running_mean"],
                                              kw["running_var"], w, training, 1e-4)
    np.testing.assert_allclose(gx, xt.grad.numpy(), **tight)
    if affine:
        np.testing.assert_allclose(gw, wt.grad.numpy(), **tight)
        np.testing.assert_allclose(gb, bt.grad.numpy(), **tight)


@pytest.mark.parametrize("cls,shape", [("BatchNorm1d", (6, 3)), ("BatchNorm1d", (4, 3, 5)),
                                       ("BatchNorm2d", (3, 3, 4, 5)),
                                       ("BatchNorm3d", (2, 3, 3, 2, 4))])
@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("track", [True, False])
def test_layers_against_torch(rng, cls, shape, momentum, track):
    """Three training steps (running statistics, num_batches_tracked, the
    gradients accumulated) then an eval step, float64."""
    torch = pytest.importorskip("torch")
    ours = getattr(nn, cls)(3, momentum=momentum, track_running_stats=track, dtype=np.float64)
    theirs = getattr(torch.nn, cls)(3, momentum=momentum, track_running_stats=track).double()
    w = rng.standard_normal(3)
    ours.params["weight"][...] = w
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(w))
    tight = dict(rtol=1e-10, atol=1e-12)
    for step in range(4):
        if step == 3:
            ours.eval()
            theirs.eval()
        x = rng.standard_normal(shape) * 3 + 2
        gy = rng.standard_normal(shape)
        xt = torch.tensor(x, requires_grad=True)
        yt = theirs(xt)
        yt.backward(torch.tensor(gy))
        np.testing.assert_allclose(ours.forward(x), yt.detach().numpy(), **tight)
        np.testing.assert_allclose(ours.backward(gy), xt.grad.numpy(), **tight)
        np.testing.assert_allclose(ours.grads["weight"], theirs.weight.grad.numpy(), **tight)
        np.testing.assert_allclose(ours.grads["bias"], theirs.bias.grad.numpy(), **tight)
        if track:
            np.testing.assert_allclose(ours.running_mean, theirs.running_mean.numpy(), **tight)
            np.testing.assert_allclose(ours.running_var, theirs.running_var.numpy(), **tight)
            assert int(ours.num_batches_tracked) == int(theirs.num_batches_tracked)


class _TwoRankBatchNorm2d(nn.BatchNorm2d):
    """SyncBatchNorm's recipe on the layer's hooks, in one process: this
    batch's statistics and gradient sums combined with those of another
    rank's batch (other_x, other_gy)."""
    other_x = other_gy = None

    def _normalize_batch(self, x, weight, bias):
        from fastconv.functional import _batch_norm as bn
        parts = [(x.size // x.shape[1],) + bn._batch_statistics(x)
                 for x in (x, self.other_x)]
        count = sum(n for n, _, _ in parts)
        mean = sum(n * m for n, m, _ in parts) / count
        var = sum(n * (v + (m - mean) ** 2) for n, m, v in parts) / count
        return bn._normalize(x, weight, bias, self.eps, mean, var)[0], mean, var, count

    def _grad_sums(self, grad_output, x, mean):
        from fastconv.functional import _batch_norm as bn
        local = bn._grad_sums(grad_output, x, mean)
        other = bn._grad_sums(self.other_gy, self.other_x, mean)
        count = (x.size + self.other_x.size) // x.shape[1]
        return local, (local[0] + other[0], local[1] + other[1]), count


def test_layer_hooks_reduce_statistics_and_gradient_sums_as_sync_batch_norm(rng):
    """Rank 0's half of a batch normalised over the whole batch: output,
    input gradient and running statistics equal the plain layer's on the
    whole batch; weight and bias gradients are rank 0's own share."""
    x, gy = rng.standard_normal((2, 6, 3, 4, 5)) * 2 + 1, rng.standard_normal((2, 6, 3, 4, 5))
    whole, half = nn.BatchNorm2d(3, dtype=np.float64), _TwoRankBatchNorm2d(3, dtype=np.float64)
    half.params["weight"][...] = whole.params["weight"][...] = rng.standard_normal(3)
    half.other_x, half.other_gy = x[1], gy[1]
    y_whole = whole.forward(np.concatenate(x))
    gx_whole = whole.backward(np.concatenate(gy))
    tight = dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(half.forward(x[0]), y_whole[:6], **tight)
    np.testing.assert_allclose(half.backward(gy[0]), gx_whole[:6], **tight)
    np.testing.assert_allclose(half.running_mean, whole.running_mean, **tight)
    np.testing.assert_allclose(half.running_var, whole.running_var, **tight)
    xhat = (y_whole[:6] - whole.params["bias"][:, None, None]) \
        / whole.params["weight"][:, None, None]
    np.testing.assert_allclose(half.grads["weight"], (gy[0] * xhat).sum((0, 2, 3)), **tight)
    np.testing.assert_allclose(half.grads["bias"], gy[0].sum((0, 2, 3)), **tight)
