"""Activations, PReLU, (log-)softmax and cross-entropy (csrc/activation_template.h):
each op and its backward against fastconv.reference and PyTorch 2.13 (float64
tight, float32 at its rounding), odd sizes, non-contiguous and empty arrays,
every SIMD path, 1 and 2 threads, in-place semantics and gradcheck."""
import numpy as np
import pytest

import fastconv
import fastconv.reference as R
from fastconv import _simd
from helpers import non_contiguous

F32, F64 = np.float32, np.float64
# (rtol, atol) against PyTorch in float64 on the same input values (float32
# results are compared with the exact values, not with PyTorch's float32
# rounding: GELU's 1 + erf(x / sqrt 2) loses digits for x < -2 there)
TOL = {F64: (1e-12, 1e-14), F32: (3e-6, 3e-7)}


def close(actual, expected, dtype, scale=1):
    rtol, atol = TOL[dtype]
    assert actual.dtype == dtype and actual.flags.c_contiguous
    np.testing.assert_allclose(actual, expected, rtol=rtol * scale, atol=atol * scale)


# name, kwargs, torch function name and kwargs, whether backward takes the output
ELEMENTWISE = [
    ("relu", {}, "relu", {}, True),
    ("leaky_relu", {"negative_slope": 0.2}, "leaky_relu", {"negative_slope": 0.2}, False),
    ("leaky_relu", {"negative_slope": -0.5}, "leaky_relu", {"negative_slope": -0.5}, False),
    ("elu", {"alpha": 0.7}, "elu", {"alpha": 0.7}, False),
    ("elu", {"alpha": -1.5}, "elu", {"alpha": -1.5}, False),
    ("gelu", {}, "gelu", {}, False),
    ("gelu", {"approximate": "tanh"}, "gelu", {"approximate": "tanh"}, False),
    ("silu", {}, "silu", {}, False),
    ("sigmoid", {}, "sigmoid", {}, True),
    ("tanh", {}, "tanh", {}, True),
]
ELEMENTWISE_IDS = [f"{n}-{'-'.join(map(str, kw.values()))}" for n, kw, *_ in ELEMENTWISE]
# 0-d, empty, odd sizes past every vector width and its tail
SHAPES = [(), (0, 3), (7,), (3, 5, 11), (2, 67)]


def _values(rng, shape, dtype):
    # wide enough to reach both sides of every kink and the saturated tails
    return (rng.standard_normal(shape) * 4).astype(dtype)


def _torch_elementwise(torch, name, kwargs, x, g):
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    yt = getattr(torch.nn.functional, name)(xt, **kwargs)
    yt.backward(torch.tensor(g, dtype=torch.float64))
    return yt.detach().numpy(), xt.grad.numpy()


@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name, kw, tname, tkw, from_output", ELEMENTWISE, ids=ELEMENTWISE_IDS)
def test_elementwise_matches_torch(rng, name, kw, tname, tkw, from_output, shape, dtype):
    torch = pytest.importorskip("torch")
    x, g = _values(rng, shape, dtype), rng.standard_normal(shape).astype(dtype)
    want_y, want_g = _torch_elementwise(torch, tname, tkw, x, g)
    before = x.copy()
    y = getattr(fastconv, name)(x, **kw)
    close(y, want_y, dtype)
    # from the float64 truth of what backward reads (y's rounding, for float32,
    # moves the derivative by a few ulps of y)
    saved = y if from_output else x
    if from_output:
        want_g = getattr(R, name + "_backward")(g.astype(F64), saved.astype(F64), **kw)
    gx = getattr(fastconv, name + "_backward")(g, saved, **kw)
    close(gx, want_g, dtype, scale=4)
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("name, kw, tname, tkw, from_output", ELEMENTWISE, ids=ELEMENTWISE_IDS)
def test_elementwise_matches_reference_on_any_layout(rng, name, kw, tname, tkw, from_output,
                                                     dtype):
    x = _values(rng, (4, 3, 9), dtype)
    g = rng.standard_normal(x.shape).astype(dtype)
    y = getattr(fastconv, name)(non_contiguous(x), **kw)
    close(y, getattr(R, name)(x, **kw), dtype, scale=10)
    saved = y if from_output else x
    gx = getattr(fastconv, name + "_backward")(non_contiguous(g), non_contiguous(saved), **kw)
    close(gx, getattr(R, name + "_backward")(g, saved, **kw), dtype, scale=10)


@pytest.mark.parametrize("name, kw, tname, tkw, from_output", ELEMENTWISE, ids=ELEMENTWISE_IDS)
def test_elementwise_gradcheck(rng, name, kw, tname, tkw, from_output):
    x = _values(rng, (3, 7), F64)
    x[np.abs(x) < 1e-3] = 0.5                 # away from the kinks

    def f(x):
        y = getattr(fastconv, name)(x, **kw)
        return y, lambda g: (getattr(fastconv, name + "_backward")(
            g, y if from_output else x, **kw),)
    fastconv.gradcheck(f, x)


def test_elementwise_on_every_simd_path(simd_path, rng):
    """Every kind on the selected table, lengths around the vector widths."""
    for n in (1, 7, 8, 9, 31, 33, 1001):
        for dtype in (F32, F64):
            x = _values(rng, (n,), dtype)
            g = rng.standard_normal(n).astype(dtype)
            for name, kw, _, _, from_output in ELEMENTWISE:
                before = _simd.calls()[simd_path]
                y = getattr(fastconv, name)(x, **kw)
                assert _simd.calls()[simd_path] > before
                close(y, getattr(R, name)(x, **kw), dtype, scale=10)
                saved = y if from_output else x
                close(getattr(fastconv, name + "_backward")(g, saved, **kw),
                      getattr(R, name + "_backward")(g, saved, **kw), dtype, scale=10)


def test_nan_and_infinities_as_torch():
    torch = pytest.importorskip("torch")
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e308, -1e308])
    g = np.ones_like(x)
    for name, kw, tname, tkw, from_output in ELEMENTWISE:
        want_y, want_g = _torch_elementwise(torch, tname, tkw, x, g)
        with np.errstate(all="ignore"):
            y = getattr(fastconv, name)(x, **kw)
            gx = getattr(fastconv, name + "_backward")(g, y if from_output else x, **kw)
        np.testing.assert_allclose(y, want_y, rtol=1e-12, err_msg=name)
        np.testing.assert_allclose(gx, want_g, rtol=1e-12, err_msg=name)


def test_threads_give_the_same_result(rng):
    """Past the parallel threshold (2**18 elements for ReLU, 16x fewer for
    the transcendental ones): 2 threads give 1 thread's results (up to the
    order of the one-slope PReLU gradient's partial sums)."""
    x = _values(rng, (3, 100003), F32)
    g = rng.standard_normal(x.shape).astype(F32)
    labels = rng.integers(0, 7, (3, 100003 // 7 + 1))
    logits = _values(rng, (3, 7, labels.shape[1]), F32)
    calls = [lambda: fastconv.relu(x), lambda: fastconv.gelu(x),
             lambda: fastconv.relu_backward(g, x), lambda: fastconv.silu_backward(g, x),
             lambda: fastconv.prelu_backward(g, x, np.array([0.1], F32)),
             lambda: fastconv.softmax(x, 0),
             lambda: fastconv.log_softmax_backward(g, x, 1),
             lambda: fastconv.cross_entropy(logits, labels, label_smoothing=0.1),
             lambda: fastconv.cross_entropy_backward(1.0, logits, labels)]
    threads = fastconv.get_num_threads()
    try:
        fastconv.set_num_threads(1)
        serial = [call() for call in calls]
        fastconv.set_num_threads(2)
        for call, want in zip(calls, serial):
            got = call()
            for a, b in zip(got if isinstance(got, tuple) else (got,),
                            want if isinstance(want, tuple) else (want,)):
                np.testing.assert_allclose(a, b, rtol=1e-6, atol=0)
    finally:
        fastconv.set_num_threads(threads)


# ------------------------------------------------------------------ in place

@pytest.mark.parametrize("name, kw", [("relu", {}), ("leaky_relu", {"negative_slope": 0.1}),
                                      ("elu", {}), ("silu", {})])
def test_inplace_writes_into_the_input(rng, name, kw):
    x = rng.standard_normal((3, 4))
    want = getattr(fastconv, name)(x, **kw)
    y = getattr(fastconv, name)(x, inplace=True, **kw)
    assert y is x
    np.testing.assert_array_equal(x, want)
    strided = np.zeros((3, 8))[:, ::2]              # non-contiguous: copied back
    strided[...] = rng.standard_normal((3, 4))
    want = getattr(fastconv, name)(strided, **kw)
    assert getattr(fastconv, name)(strided, inplace=True, **kw) is strided
    np.testing.assert_array_equal(strided, want)
    frozen = np.ones((2, 2))
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        getattr(fastconv, name)(frozen, inplace=True, **kw)
    with pytest.raises(TypeError, match="inplace"):
        getattr(fastconv, name)([1.0, -1.0], inplace=True, **kw)


def test_inplace_layers_give_the_gradients_of_the_plain_ones(rng):
    from fastconv import nn
    for make in (lambda: nn.ReLU(inplace=True), lambda: nn.LeakyReLU(0.1, inplace=True),
                 lambda: nn.ELU(inplace=True), lambda: nn.SiLU(inplace=True)):
        layer, plain = make(), make()
        plain.inplace = False
        x = rng.standard_normal((2, 5))
        g = rng.standard_normal((2, 5))
        want = plain(x)
        y = layer(x.copy())
        np.testing.assert_array_equal(y, want)
        y[...] = 9.0                                  # the caller reuses the buffer
        np.testing.assert_array_equal(layer.backward(g), plain.backward(g))
    ro = np.ones((2, 2))
    ro.flags.writeable = False
    np.testing.assert_array_equal(nn.ReLU(inplace=True)(ro), ro)   # falls back to fresh


# --------------------------------------------------------------------- PReLU

@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("shape, slopes", [((2, 3, 5), 3), ((2, 3, 5), 1), ((4, 3), 3),
                                           ((7,), 1), ((2, 5, 2, 3), 5), ((0, 3, 2), 3)],
                         ids=str)
def test_prelu_matches_torch(rng, shape, slopes, dtype):
    torch = pytest.importorskip("torch")
    x = _values(rng, shape, dtype)
    w = rng.uniform(-0.5, 0.5, slopes).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    yt = torch.nn.functional.prelu(xt, wt)
    yt.backward(torch.tensor(g))
    close(fastconv.prelu(non_contiguous(x), w), yt.detach().numpy(), dtype)
    gx, gw = fastconv.prelu_backward(g, non_contiguous(x), w)
    close(gx, xt.grad.numpy(), dtype)
    close(gw, wt.grad.numpy(), dtype, scale=100)
    rx, rw = R.prelu_backward(g, x, w)
    close(gw, rw, dtype, scale=100)


def test_prelu_gradcheck(rng):
    x, w = _values(rng, (2, 3, 4), F64), rng.uniform(-0.5, 0.5, 3)

    def f(x, w):
        return fastconv.prelu(x, w), lambda g: fastconv.prelu_backward(g, x, w)
    fastconv.gradcheck(f, x, w)


# ------------------------------------------------------------------- softmax

@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("shape, dim", [((5, 7), 1), ((5, 7), 0), ((2, 3, 67), -1),
                                        ((2, 70, 3), 1), ((3, 4, 5), 0), ((9,), 0), ((), 0),
                                        ((0, 4), 1), ((4, 0), 1)], ids=str)
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_matches_torch(rng, name, shape, dim, dtype):
    torch = pytest.importorskip("torch")
    x, g = _values(rng, shape, dtype), rng.standard_normal(shape).astype(dtype)
    xt = torch.tensor(x, requires_grad=True)
    yt = getattr(torch.nn.functional, name)(xt, dim)
    yt.backward(torch.tensor(g))
    y = getattr(fastconv, name)(non_contiguous(x) if x.ndim else x, dim)
    close(y, yt.detach().numpy(), dtype, scale=4)
    gx = getattr(fastconv, name + "_backward")(g, y, dim)
    close(gx, xt.grad.numpy(), dtype, scale=10)
    close(getattr(R, name)(x, dim), yt.detach().numpy(), dtype, scale=10)


def test_softmax_gradcheck_and_extremes(rng):
    x = rng.standard_normal((3, 4, 5))
    for name in ("softmax", "log_softmax"):
        def f(x, name=name):
            y = getattr(fastconv, name)(x, 1)
            return y, lambda g: (getattr(fastconv, name + "_backward")(g, y, 1),)
        fastconv.gradcheck(f, x)
    big = np.array([[1000.0, 0.0, -1000.0], [-np.inf, 0.0, -np.inf]])
    np.testing.assert_allclose(fastconv.softmax(big, 1), [[1, 0, 0], [0, 1, 0]])
    assert np.isnan(fastconv.softmax(np.array([[-np.inf, -np.inf]]), 1)).all()   # as torch
    assert np.isnan(fastconv.log_softmax(np.array([[np.nan, 1.0]]), 1)).all()


# ------------------------------------------------------------- cross-entropy

CE_CASES = [((6, 5), None, 0.0), ((6, 5), "w", 0.3), ((3, 4, 5, 2), None, 0.1),
            ((3, 4, 67), "w", 0.0), ((5,), "w", 0.2), ((2, 3, 0), None, 0.0),
            ((0, 3), "w", 0.1)]


@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape, weighted, smoothing", CE_CASES, ids=str)
def test_cross_entropy_matches_torch(rng, shape, weighted, smoothing, reduction, dtype):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    c = shape[0] if len(shape) == 1 else shape[1]
    per = () if len(shape) == 1 else (shape[0],) + shape[2:]
    logits = _values(rng, shape, dtype)
    target = rng.integers(0, c, per)
    if target.size > 1:
        target.reshape(-1)[::4] = -100
    weight = rng.uniform(0.5, 2, c).astype(dtype) if weighted else None
    kw = dict(reduction=reduction, label_smoothing=smoothing)
    xt = torch.tensor(logits, requires_grad=True)
    lt = F.cross_entropy(xt, torch.tensor(target),
                         None if weight is None else torch.tensor(weight), **kw)
    g = rng.standard_normal(per).astype(dtype) if reduction == "none" else 1.3
    lt.backward(torch.tensor(g, dtype=lt.dtype) if reduction == "none"
                else torch.tensor(g, dtype=lt.dtype))
    before = logits.copy()
    loss = fastconv.cross_entropy(non_contiguous(logits) if logits.ndim > 1 else logits,
                                  target, weight, **kw)
    want = lt.detach().numpy()
    if reduction == "mean" and not np.isfinite(want):
        assert np.isnan(loss) and loss.dtype == dtype
    else:
        close(np.asarray(loss), want, dtype, scale=10)
    grad = fastconv.cross_entropy_backward(g, logits, target, weight, **kw)
    close(grad, xt.grad.numpy(), dtype, scale=10)
    np.testing.assert_array_equal(logits, before)
    ref = R.cross_entropy_backward(g, logits, target, weight, **kw)
    if np.isfinite(ref).all():
        close(grad, ref, dtype, scale=100)


def test_cross_entropy_gradcheck_and_ignored(rng):
    x = rng.standard_normal((4, 3, 2))
    t = np.array([[0, 2], [-100, 1], [1, 1], [2, -100]])
    w = np.array([0.5, 1.0, 2.0])

    def f(x):
        kw = dict(label_smoothing=0.2, ignore_index=-100)
        loss = fastconv.cross_entropy(x, t, w, **kw)
        return loss, lambda g: (fastconv.cross_entropy_backward(g, x, t, w, **kw),)
    fastconv.gradcheck(f, x)
    g = fastconv.cross_entropy_backward(1.0, x, t, w)
    assert not g[1, :, 0].any() and not g[3, :, 1].any()
    every = np.full((4, 2), 7)
    assert np.isnan(fastconv.cross_entropy(x, every, ignore_index=7))
    assert not fastconv.cross_entropy_backward(1.0, x, every, ignore_index=7).any()
