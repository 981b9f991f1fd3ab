"""linear and linear_backward: against fastconv.reference and PyTorch (float64,
tight), on odd sizes around the GEMMs' tiles, on both GEMM kernels (packed and
small), any memory layout, 1 and 2 threads, empty batches, gradcheck; and
nn.Linear runs on them, not on NumPy's matmul."""
import numpy as np
import pytest

import fastconv
from fastconv import nn, reference
from conftest import assert_close
from helpers import non_contiguous

DTYPES = [np.float32, np.float64]
# (leading shape, in_features, out_features): odd sizes around the micro-tiles
# (MR 4..8 rows, NR 8..48 columns) and the KC=256 block, 1-D input, no rows.
CASES = [((7,), 13, 5), ((3, 5), 257, 49), ((), 9, 1), ((1,), 1, 1), ((2, 3, 2), 6, 97),
         ((0,), 4, 3), ((2, 0), 3, 5), ((5,), 0, 3), ((4,), 3, 0),
         ((64,), 256, 10), ((33,), 17, 3), ((3,), 33, 17), ((17, 1), 1, 33)]


def _problem(rng, lead, fin, fout, dtype):
    x = rng.standard_normal(lead + (fin,)).astype(dtype)
    w = rng.standard_normal((fout, fin)).astype(dtype)
    b = rng.standard_normal(fout).astype(dtype)
    g = rng.standard_normal(lead + (fout,)).astype(dtype)
    return x, w, b, g


def _check_all(x, w, b, g, dtype):
    for bias in (b, None):
        y = fastconv.linear(x, w, bias)
        assert y.flags.c_contiguous
        assert_close(y, reference.linear(x, w, bias), dtype)
    got = fastconv.linear_backward(g, x, w)
    for a, want, like in zip(got, reference.linear_backward(g, x, w), (x, w, b)):
        assert a.flags.c_contiguous and a.shape == like.shape
        assert_close(a, want, dtype)


@pytest.mark.parametrize("nthreads", [1, 2])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lead, fin, fout", CASES)
def test_matches_reference(rng, gemm_kernel, lead, fin, fout, dtype, nthreads):
    before = fastconv.get_num_threads()
    fastconv.set_num_threads(nthreads)
    try:
        x, w, b, g = _problem(rng, lead, fin, fout, dtype)
        _check_all(x, w, b, g, dtype)
    finally:
        fastconv.set_num_threads(before)


@pytest.mark.parametrize("dtype", DTYPES)
def test_any_memory_layout_and_inputs_untouched(rng, simd_path, gemm_kernel, dtype):
    x, w, b, g = _problem(rng, (6, 2), 37, 11, dtype)
    layouts = [non_contiguous, np.asfortranarray,
               lambda a: a.astype(a.dtype.newbyteorder(">")),
               lambda a: np.broadcast_to(a[:1], a.shape).copy() * 0 + a]
    for layout in layouts:
        xs, ws, bs, gs = (layout(a) for a in (x, w, b, g))
        copies = [a.copy() for a in (xs, ws, bs, gs)]
        _check_all(xs, ws, bs, gs, dtype)
        for a, c in zip((xs, ws, bs, gs), copies):
            np.testing.assert_array_equal(a, c)
    # the weight as the transposed view of an (in, out) array; rows of a wider array
    wt = np.ascontiguousarray(w.T).T
    xw = np.zeros((6, 2, 40), dtype)[..., 1:38]
    xw[...] = x
    _check_all(xw, wt, b, g, dtype)


@pytest.mark.parametrize("lead, fin, fout", [((3, 4), 29, 17), ((64,), 256, 10)])
def test_matches_torch_float64(rng, gemm_kernel, lead, fin, fout):
    torch = pytest.importorskip("torch")
    x, w, b, g = _problem(rng, lead, fin, fout, np.float64)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = torch.nn.functional.linear(tx, tw, tb)
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(fastconv.linear(x, w, b), ty.detach().numpy(),
                               rtol=1e-12, atol=1e-12)
    for got, want in zip(fastconv.linear_backward(g, x, w), (tx.grad, tw.grad, tb.grad)):
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-12, atol=1e-12)
    # a 1-D input is one row, as in PyTorch
    first = (0,) * len(lead)
    np.testing.assert_allclose(fastconv.linear(x[first], w, b),
                               torch.nn.functional.linear(tx[first], tw, tb).detach().numpy(),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("lead", [(5,), (2, 3)])
def test_gradcheck(rng, lead):
    x, w, b, _ = _problem(rng, lead, 7, 4, np.float64)

    def f(x, w, b):
        return fastconv.linear(x, w, b), lambda gy: fastconv.linear_backward(gy, x, w)

    fastconv.gradcheck(f, x, w, b)


def test_errors_name_the_argument():
    x, w = np.ones((2, 3)), np.ones((4, 3))
    with pytest.raises(ValueError, match="linear: input .*in_features = 3"):
        fastconv.linear(np.ones((2, 5)), w)
    with pytest.raises(ValueError, match="linear: weight must be 2-D"):
        fastconv.linear(x, np.ones(3))
    with pytest.raises(ValueError, match="linear: bias must have shape \\(4,\\)"):
        fastconv.linear(x, w, np.ones(3))
    with pytest.raises(TypeError, match="linear: weight has dtype float32"):
        fastconv.linear(x, w.astype(np.float32))
    with pytest.raises(ValueError, match="linear_backward: grad_output .*\\(2, 4\\)"):
        fastconv.linear_backward(np.ones((2, 3)), x, w)


def test_nn_linear_runs_on_the_ops(rng, monkeypatch):
    """nn.Linear composes linear/linear_backward of its backend (fastconv's GEMM,
    never NumPy's matmul and so never OpenBLAS's thread pool)."""
    layer = nn.Linear(6, 3, dtype=np.float64, rng=0)
    x = rng.standard_normal((4, 6))
    calls = []
    for name in ("linear", "linear_backward"):
        op = getattr(fastconv.functional, name)
        monkeypatch.setattr(fastconv.functional, name,
                            lambda *a, op=op, name=name: calls.append(name) or op(*a))
    y = layer(x)
    gx = layer.backward(np.ones_like(y))
    assert calls == ["linear", "linear_backward"]
    w, b = layer.params["weight"], layer.params["bias"]
    np.testing.assert_allclose(y, x @ w.T + b, rtol=1e-12)
    np.testing.assert_allclose(gx, np.ones((4, 3)) @ w, rtol=1e-12)
    np.testing.assert_allclose(layer.grads["weight"], np.ones((3, 4)) @ x, rtol=1e-12)
    np.testing.assert_allclose(layer.grads["bias"], np.full(3, 4.0), rtol=1e-12)
