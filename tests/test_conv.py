"""conv1d/conv2d/conv3d forward and backward against the plain-NumPy reference."""
import threading

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st, HealthCheck

import fastconv
from fastconv import reference
from conftest import assert_close
from helpers import non_contiguous, numerical_grad

OPS = {1: (fastconv.conv1d, fastconv.conv1d_backward, reference.conv1d, reference.conv1d_backward),
       2: (fastconv.conv2d, fastconv.conv2d_backward, reference.conv2d, reference.conv2d_backward),
       3: (fastconv.conv3d, fastconv.conv3d_backward, reference.conv3d, reference.conv3d_backward)}


@st.composite
def conv_configs(draw, nd=None):
    nd = nd or draw(st.sampled_from([1, 2, 2, 2, 3]))
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    c_in = groups * draw(st.integers(1, 3))
    c_out = groups * draw(st.integers(1, 3))
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    same = draw(st.booleans()) and all(s == 1 for s in stride)
    padding = "same" if same else tuple(draw(st.integers(0, 2)) for _ in range(nd))
    min_size = [d * (k - 1) + 1 - (0 if same else 2 * p) for k, d, p in
                zip(kernel, dilation, (0,) * nd if same else padding)]
    size = tuple(max(1, m) + draw(st.integers(0, 4)) for m in min_size)
    n = draw(st.integers(0, 3))
    bias = draw(st.booleans())
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    return dict(nd=nd, x=(n, c_in) + size, w=(c_out, c_in // groups) + kernel, bias=bias,
                kw=dict(stride=stride, padding=padding, dilation=dilation, groups=groups),
                dtype=dtype)


def _arrays(cfg, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(cfg["x"]).astype(cfg["dtype"])
    w = rng.standard_normal(cfg["w"]).astype(cfg["dtype"])
    b = rng.standard_normal(cfg["w"][0]).astype(cfg["dtype"]) if cfg["bias"] else None
    return x, w, b


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conv_configs())
def test_forward_and_backward_match_reference(cfg):
    fwd, bwd, ref_fwd, ref_bwd = OPS[cfg["nd"]]
    x, w, b = _arrays(cfg)
    y = fwd(x, w, b, **cfg["kw"])
    # The reference computes in float64: the oracle for both dtypes.
    y_ref = ref_fwd(x.astype(np.float64), w.astype(np.float64),
                    None if b is None else b.astype(np.float64), **cfg["kw"])
    assert_close(y, y_ref, cfg["dtype"])
    assert y.flags.c_contiguous
    gy = np.random.default_rng(1).standard_normal(y.shape).astype(cfg["dtype"])
    grads = bwd(gy, x, w, **cfg["kw"])
    grads_ref = ref_bwd(gy.astype(np.float64), x.astype(np.float64), w.astype(np.float64),
                        **cfg["kw"])
    for got, want in zip(grads, grads_ref):
        assert_close(got, want, cfg["dtype"])


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_reference_gradients_match_numerical(nd):
    """The oracle itself is checked against central differences."""
    rng = np.random.default_rng(nd)
    size = {1: (9,), 2: (6, 7), 3: (4, 5, 4)}[nd]
    kernel = {1: (3,), 2: (3, 2), 3: (2, 3, 2)}[nd]
    kw = dict(stride=(2,) + (1,) * (nd - 1), padding=(1,) * nd, dilation=(1,) * (nd - 1) + (2,),
              groups=2)
    x = rng.standard_normal((2, 4) + size)
    w = rng.standard_normal((4, 2) + kernel)
    b = rng.standard_normal(4)
    _, _, fwd, bwd = OPS[nd]
    gy = rng.standard_normal(fwd(x, w, b, **kw).shape)
    loss = lambda: float(np.sum(fwd(x, w, b, **kw) * gy))  # noqa: E731
    gx, gw, gb = bwd(gy, x, w, **kw)
    np.testing.assert_allclose(gx, numerical_grad(loss, x), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(gw, numerical_grad(loss, w), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(gb, numerical_grad(loss, b), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", [
    dict(x=(2, 3, 5, 5), w=(4, 3, 1, 1), kw={}),                        # 1x1 shortcut
    dict(x=(2, 3, 5, 5), w=(4, 3, 1, 1), kw=dict(stride=2)),             # 1x1 strided: no shortcut
    dict(x=(2, 3, 5, 5), w=(4, 3, 1, 1), kw=dict(padding=1)),            # 1x1 padded: no shortcut
    dict(x=(2, 3, 5, 5), w=(4, 3, 1, 1), kw=dict(dilation=2, padding=1)),
    dict(x=(2, 3, 5, 6), w=(4, 3, 5, 6), kw={}),                        # kernel == input
    dict(x=(2, 3, 9, 9), w=(4, 3, 2, 2), kw=dict(stride=4)),             # stride > kernel
    dict(x=(1, 2, 7, 11), w=(2, 2, 3, 5), kw=dict(stride=(1, 3), padding=(2, 0), dilation=(2, 1))),
    dict(x=(2, 2, 6, 7), w=(3, 2, 4, 2), kw=dict(padding="same")),       # even kernel 'same'
    dict(x=(2, 2, 6, 7), w=(3, 2, 4, 3), kw=dict(padding="same", dilation=(1, 2))),
    dict(x=(2, 2, 6, 7), w=(3, 2, 3, 3), kw=dict(padding="valid")),
    dict(x=(2, 6, 8, 8), w=(6, 1, 3, 3), kw=dict(groups=6, padding=1)),  # depthwise
    dict(x=(2, 4, 8, 8), w=(8, 1, 3, 3), kw=dict(groups=4, padding=1)),  # depthwise multiplier
    dict(x=(0, 3, 5, 5), w=(4, 3, 3, 3), kw={}),                        # empty batch
    dict(x=(2, 0, 5, 5), w=(4, 0, 3, 3), kw={}),                        # no input channels
    dict(x=(2, 3, 5, 5), w=(0, 3, 3, 3), kw={}),                        # no output channels
    dict(x=(1, 1, 1, 1), w=(1, 1, 1, 1), kw={}),
    dict(x=(3, 2, 1, 40), w=(2, 2, 1, 7), kw=dict(padding=(0, 3), stride=(1, 2))),
    # >= 1024 output positions per image: one GEMM per image, output in place
    dict(x=(3, 4, 34, 33), w=(6, 2, 3, 3), kw=dict(padding=1, groups=2)),
    dict(x=(2, 3, 40, 30), w=(5, 3, 2, 3), kw=dict(padding=(0, 1))),
    # stride 1 with padding within, at, and past the dilated kernel's reach
    dict(x=(2, 4, 7, 9), w=(6, 2, 3, 2), kw=dict(padding=(2, 1), dilation=(1, 3), groups=2)),
    dict(x=(2, 3, 34, 32), w=(4, 3, 3, 3), kw=dict(padding=(0, 2))),
    dict(x=(2, 3, 6, 6), w=(4, 3, 2, 2), kw=dict(padding=2)),
    dict(x=(2, 3, 6, 6), w=(4, 3, 3, 3), kw=dict(padding=(1, 3))),
])
def test_edge_cases(case, dtype, rng):
    x = rng.standard_normal(case["x"]).astype(dtype)
    w = rng.standard_normal(case["w"]).astype(dtype)
    b = rng.standard_normal(case["w"][0]).astype(dtype)
    y = fastconv.conv2d(x, w, b, **case["kw"])
    y_ref = reference.conv2d(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64),
                             **case["kw"])
    assert_close(y, y_ref, dtype)
    gy = rng.standard_normal(y.shape).astype(dtype)
    for got, want in zip(fastconv.conv2d_backward(gy, x, w, **case["kw"]),
                         reference.conv2d_backward(gy.astype(np.float64), x.astype(np.float64),
                                                   w.astype(np.float64), **case["kw"])):
        assert_close(got, want, dtype)


def test_same_padding_keeps_size_and_puts_extra_pad_bottom_right():
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 0, 0] = 1.0   # top-left pixel
    w = np.zeros((1, 1, 2, 2))
    w[0, 0, 0, 0] = 1.0   # top-left tap: with the pad after, y[i, j] = x[i, j]
    y = fastconv.conv2d(x, w, padding="same")
    assert y.shape == (1, 1, 4, 4)
    assert y[0, 0, 0, 0] == 1.0 and y.sum() == 1.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_chunking_does_not_change_results(dtype, rng):
    """Batches cut into several side-by-side chunks (the last one short)
    give the same answer as one chunk."""
    import dataclasses
    from fastconv.functional import _conv, _plan
    x = rng.standard_normal((7, 3, 9, 9)).astype(dtype)
    w = rng.standard_normal((5, 3, 3, 3)).astype(dtype)
    b = rng.standard_normal(5).astype(dtype)
    plan = fastconv.explain("conv2d", x, w, b, padding=1)
    assert (plan.algorithm, plan.chunk) == (_plan.GEMM_SIDE_BY_SIDE, 7)
    whole = fastconv.conv2d(x, w, b, padding=1)
    *_, win, groups = _conv.parse_conv_args("test", 2, x, w, b, 1, 1, 1, 1)
    for chunk in (1, 2, 3):
        chunked = _conv.conv_forward(x, w, b, win, groups,
                                     plan=dataclasses.replace(plan, chunk=chunk))
        np.testing.assert_allclose(chunked, whole, rtol=1e-5 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("xs, ws, kw", [
    ((5, 4, 9, 9), (7, 4, 3, 3), dict(stride=2, padding=1)),           # L 25: tiles span images
    ((3, 6, 13, 11), (9, 6, 3, 3), dict(stride=3, padding=2)),         # L 30, stride > 2
    ((4, 4, 12, 15), (6, 2, 3, 3), dict(stride=2, padding=1, groups=2)),
    ((3, 3, 11, 17), (5, 3, 3, 2), dict(stride=(2, 3), dilation=(2, 1), padding=(1, 0))),
    ((6, 2, 3, 3), (4, 2, 3, 3), dict(stride=2, padding=1)),           # L 4
    ((3, 16, 32, 32), (32, 16, 3, 3), dict(stride=2, padding=1)),      # ResNet's downsampling
])
def test_side_by_side_writes_every_image_in_place(simd_path, threads, dtype, stream, xs, ws,
                                                   kw):
    """Images side by side in one GEMM write its tiles straight into the
    output, including the tiles whose columns span two images (output
    sizes that are no multiple of the micro-tile), with and without
    streaming stores; every SIMD table, 1 and 2 threads, against the
    reference and PyTorch (float64, tight)."""
    import dataclasses
    from fastconv.functional import _conv, _plan
    rng = np.random.default_rng(5)
    x = rng.standard_normal(xs)
    w = rng.standard_normal(ws)
    b = rng.standard_normal(ws[0])
    groups = kw.get("groups", 1)
    *_, win, _ = _conv.parse_conv_args("test", 2, x, w, b, kw.get("stride", 1),
                                        kw.get("padding", 0), kw.get("dilation", 1), groups)
    plan = _plan.plan_conv(_plan.OUTPUT, xs[0], xs[1], ws[0], win, groups, np.dtype(dtype),
                           algorithm=_plan.GEMM_SIDE_BY_SIDE)
    plan = dataclasses.replace(plan, stream_stores=stream)
    got = _conv.conv_forward(x.astype(dtype), w.astype(dtype), b.astype(dtype), win, groups,
                             plan=plan)
    assert_close(got, reference.conv2d(x, w, b, **kw), dtype)
    torch = pytest.importorskip("torch")
    want = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w),
                                      torch.from_numpy(b), **kw).numpy()
    assert_close(got, want, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_any_memory_layout_accepted_and_inputs_untouched(dtype, rng):
    x = rng.standard_normal((2, 3, 6, 7)).astype(dtype)
    w = rng.standard_normal((4, 3, 3, 3)).astype(dtype)
    b = rng.standard_normal(4).astype(dtype)
    gy = rng.standard_normal((2, 4, 6, 7)).astype(dtype)
    expected = fastconv.conv2d(x, w, b, padding=1), fastconv.conv2d_backward(gy, x, w, padding=1)
    layouts = [non_contiguous, np.asfortranarray, lambda a: a.astype(a.dtype.newbyteorder(">"))]
    for layout in layouts:
        xs, ws, bs, gys = (layout(a) for a in (x, w, b, gy))
        copies = [a.copy() for a in (xs, ws, bs, gys)]
        y = fastconv.conv2d(xs, ws, bs, padding=1)
        grads = fastconv.conv2d_backward(gys, xs, ws, padding=1)
        np.testing.assert_array_equal(y, expected[0])
        for got, want in zip(grads, expected[1]):
            np.testing.assert_allclose(got, want, rtol=1e-5)
            assert got.flags.c_contiguous
        for before, after in zip(copies, (xs, ws, bs, gys)):
            np.testing.assert_array_equal(before, after)


def test_lists_of_floats_are_accepted():
    y = fastconv.conv1d([[[1.0, 2.0, 3.0]]], [[[1.0, -1.0]]])
    np.testing.assert_array_equal(y, [[[-1.0, -1.0]]])


def test_results_do_not_alias_workspace(rng):
    """Outputs are fresh arrays: a later call must not overwrite an earlier result."""
    x = rng.standard_normal((2, 3, 6, 6))
    w = rng.standard_normal((4, 3, 3, 3))
    gy = rng.standard_normal((2, 4, 4, 4))
    first = [g.copy() for g in fastconv.conv2d_backward(gy, x, w)]
    kept = fastconv.conv2d_backward(gy, x, w)
    fastconv.conv2d_backward(-gy, x * 2, w * 3)
    fastconv.conv2d(x * 5, w)
    for a, b in zip(first, kept):
        np.testing.assert_array_equal(a, b)


def test_concurrent_calls_match_serial(rng):
    x = rng.standard_normal((4, 8, 20, 20)).astype(np.float32)
    w = rng.standard_normal((8, 4, 3, 3)).astype(np.float32)
    gy = rng.standard_normal((4, 8, 20, 20)).astype(np.float32)
    kw = dict(padding=1, groups=2)
    serial = fastconv.conv2d(x, w, **kw), fastconv.conv2d_backward(gy, x, w, **kw)
    results, errors = [], []

    def work():
        try:
            for _ in range(5):
                results.append((fastconv.conv2d(x, w, **kw),
                                fastconv.conv2d_backward(gy, x, w, **kw)))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 40
    for y, grads in results:
        np.testing.assert_allclose(y, serial[0], rtol=1e-5, atol=1e-5)
        for got, want in zip(grads, serial[1]):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_thread_count_does_not_change_results(rng):
    x = rng.standard_normal((3, 6, 17, 17))
    w = rng.standard_normal((4, 6, 3, 3))
    old = fastconv.get_num_threads()
    try:
        fastconv.set_num_threads(1)
        one = fastconv.conv2d(x, w, padding=1), fastconv.conv2d_backward(
            np.ones((3, 4, 17, 17)), x, w, padding=1)
        fastconv.set_num_threads(2)
        assert fastconv.get_num_threads() == 2
        two = fastconv.conv2d(x, w, padding=1), fastconv.conv2d_backward(
            np.ones((3, 4, 17, 17)), x, w, padding=1)
    finally:
        fastconv.set_num_threads(old)
    np.testing.assert_allclose(one[0], two[0], rtol=1e-12)
    for a, b in zip(one[1], two[1]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_matches_torch_when_installed(rng):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = rng.standard_normal((2, 4, 9, 8))
    w = rng.standard_normal((6, 2, 3, 2))
    b = rng.standard_normal(6)
    kw = dict(stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    tb = torch.tensor(b, requires_grad=True)
    ty = F.conv2d(tx, tw, tb, **kw)
    gy = rng.standard_normal(ty.shape)
    ty.backward(torch.tensor(gy))
    np.testing.assert_allclose(fastconv.conv2d(x, w, b, **kw), ty.detach().numpy(), rtol=1e-10)
    for got, want in zip(fastconv.conv2d_backward(gy, x, w, **kw), (tx.grad, tw.grad, tb.grad)):
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-10, atol=1e-12)


# With >= 16 input channels per group, a stride-1 conv's data gradient runs as
# a convolution of grad_output with the flipped kernel; these shapes reach it
# and its fallbacks (strides, padding past the dilated kernel) to GEMM + col2im.
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("nd, x, w, kw, flipped", [
    (2, (2, 16, 9, 11), (5, 16, 3, 3), dict(padding=1), True),
    (2, (2, 32, 8, 9), (6, 16, 2, 3), dict(padding="same", groups=2), True),
    (2, (1, 17, 7, 7), (3, 17, 3, 3), dict(padding=(0, 2), dilation=(2, 1)), True),
    (1, (2, 16, 23), (5, 16, 5), dict(padding=4), True),
    (3, (1, 16, 5, 6, 7), (3, 16, 3, 2, 3), dict(padding=(1, 0, 2)), True),
    (2, (2, 16, 8, 10), (3, 16, 1, 1), {}, True),                      # 1x1
    (2, (1, 16, 6, 6), (3, 16, 2, 2), dict(padding=2), False),        # pad past the kernel
    (2, (2, 16, 11, 12), (7, 16, 3, 3), dict(stride=2, padding=1), False),
    (2, (2, 32, 12, 12), (8, 16, 3, 3), dict(stride=(1, 2), groups=2), False),
])
def test_data_gradient_as_a_convolution(nd, x, w, kw, flipped, dtype, rng):
    x = rng.standard_normal(x).astype(dtype)
    w = rng.standard_normal(w).astype(dtype)
    fwd, bwd, ref_fwd, ref_bwd = OPS[nd]
    gy = rng.standard_normal(fwd(x, w, **kw).shape).astype(dtype)
    data_plan, _ = fastconv.explain(f"conv{nd}d_backward", gy, x, w, **kw)
    assert data_plan.algorithm == ("flipped_conv" if flipped else "gemm_col2im")
    got = bwd(gy, x, w, **kw)
    want = ref_bwd(gy.astype(np.float64), x.astype(np.float64), w.astype(np.float64), **kw)
    for g, r in zip(got, want):
        assert_close(g, r, dtype)


@pytest.mark.parametrize("path", fastconv._simd.supported())
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("xs, ws, padding", [
    ((5, 3, 64, 64), (40, 3, 3, 3), 1),       # >= 4 MiB out, K = 27: streamed stores
    ((4, 70, 64, 64), (72, 70, 1, 1), 0),     # pointwise, read in place, streamed
    ((5, 3, 63, 61), (40, 3, 3, 3), 1),       # rows off the cache line: plain stores
])
def test_large_outputs_written_with_streaming_stores(path, dtype, xs, ws, padding):
    """Outputs past a few MiB skip the cache (non-temporal stores) on the
    tiles that are cache-line aligned; every SIMD path, 1 and 2 threads."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[0]).astype(dtype)
    want = reference.conv2d(x, w, b, 1, padding)
    before = (fastconv._simd.active(), fastconv.get_num_threads())
    try:
        fastconv._simd.select(path)
        for threads in (1, 2):
            fastconv.set_num_threads(threads)
            y = fastconv.conv2d(x, w, b, 1, padding)
            assert y.ctypes.data % 64 == 0
            assert_close(y, want, dtype)
    finally:
        fastconv._simd.select(before[0])
        fastconv.set_num_threads(before[1])


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x, w, kw", [
    ((2, 3, 13, 21), (3, 1, 3, 3), dict(stride=2, padding=1)),            # MobileNet's downsampling
    ((2, 2, 12, 20), (4, 1, 3, 3), dict(stride=2, padding=1)),            # even sizes, multiplier 2
    ((1, 2, 11, 35), (2, 1, 3, 5), dict(stride=(3, 2), padding=(2, 1), dilation=(1, 2))),
    ((1, 2, 9, 9), (2, 1, 2, 2), dict(stride=3)),                          # stride > kernel
])
def test_strided_depthwise_backward(simd_path, threads, dtype, x, w, kw, rng):
    """Strided depthwise input gradients run the staged SIMD rows on the
    output gradient upsampled by the stride; every table, 1 and 2 threads,
    against the reference and PyTorch (float64, tight)."""
    xa, wa = rng.standard_normal(x).astype(dtype), rng.standard_normal(w).astype(dtype)
    kw = dict(kw, groups=x[1])
    before = fastconv.get_num_threads()
    fastconv.set_num_threads(threads)
    try:
        y = fastconv.conv2d(xa, wa, **kw)
        gy = rng.standard_normal(y.shape).astype(dtype)
        got = fastconv.conv2d_backward(gy, xa, wa, **kw)
    finally:
        fastconv.set_num_threads(before)
    want = reference.conv2d_backward(*(a.astype(np.float64) for a in (gy, xa, wa)), **kw)
    for g, r in zip(got, want):
        assert_close(g, r, dtype)
    torch = pytest.importorskip("torch")
    if dtype is np.float64:
        t = [torch.from_numpy(a).requires_grad_() for a in (xa, wa)]
        torch.nn.functional.conv2d(*t, **kw).backward(torch.from_numpy(gy))
        for g, ta in zip(got, t):
            np.testing.assert_allclose(g, ta.grad.numpy(), rtol=1e-12, atol=1e-12)
