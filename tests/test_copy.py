"""Threaded strided copies (fastconv._copy over the C kernel fc_strided_copy):
against NumPy's assignment for random shapes, strides (negative, broadcast),
ranks and dtypes, at 1 and 2 threads; the layouts NumPy keeps (overlap, other
dtypes, too many dims, tiny copies); the bridge's refusals; Ctrl-C; and the
Winograd compositions with every copy forced through the kernel equal to
their NumPy copies bit for bit."""
import numpy as np
import pytest

import fastconv
from fastconv import _callcache, _copy, _kernels
from fastconv.functional import _plan

DTYPES = [np.float32, np.float64]


@pytest.fixture
def kernel_always(monkeypatch):
    """Every copy_into/fill_zero of a kernel dtype runs the kernel (not only
    large ones), and the calls are counted."""
    calls = []
    real = _kernels.strided_copy

    def counted(*args):
        calls.append(args)
        return real(*args)
    monkeypatch.setattr(_copy, "KERNEL_MIN_ELEMENTS", 0)
    monkeypatch.setattr(_copy, "KERNEL_MIN_THREADS", 1)
    monkeypatch.setattr(_kernels, "strided_copy", counted)
    return calls


def random_view(rng, dtype, rank, big=False):
    """A view of a fresh random array with random sizes, steps (negative
    ones included), a transposition and an offset."""
    sizes = [int(rng.integers(1, 6)) for _ in range(rank)]
    if big:   # past the kernel's parallel threshold (2**18 elements), middle dims small
        sizes = [1000] + [int(rng.integers(1, 3)) for _ in range(rank - 2)] + \
                [300 + int(rng.integers(0, 40))]
        sizes = sizes[-rank:]
    steps = [int(rng.choice([1, 1, 2, -1, -2, 3])) for _ in range(rank)]
    base = rng.standard_normal([n * abs(s) + 1 for n, s in zip(sizes, steps)]).astype(dtype)
    view = base[tuple(slice(1, None, s) if s > 0 else slice(None, 0, s)
                      for s in steps)]
    view = view[tuple(slice(0, n) for n in sizes)]
    return view.transpose(rng.permutation(rank)) if rng.random() < 0.5 else view


@pytest.mark.parametrize("dtype", DTYPES)
def test_copy_into_equals_numpy_assignment(kernel_always, dtype, threads):
    rng = np.random.default_rng(1)
    for trial in range(40):
        rank = int(rng.integers(1, 8))
        src = random_view(rng, dtype, rank, big=trial % 10 == 0)
        dst_base = np.full(src.shape, 7, dtype)
        # destinations: C order, or a strided view of a larger array
        dst = dst_base if trial % 3 else np.full(src.shape[::-1], 7, dtype).T
        want = np.array(src)
        _copy.copy_into(dst, src)
        assert np.array_equal(dst, want), (trial, src.shape, src.strides, dst.strides)
    assert kernel_always


@pytest.mark.parametrize("dtype", DTYPES)
def test_fill_zero_writes_zeros_and_nothing_else(kernel_always, dtype, threads):
    rng = np.random.default_rng(2)
    for trial in range(30):
        base = rng.standard_normal((700 if trial % 10 == 0 else 7, 6, 5, 9)).astype(dtype) + 10
        index = (slice(None, None, int(rng.choice([1, -1, 2]))), slice(1, 5),
                 int(rng.integers(0, 5)), slice(None, None, int(rng.choice([1, 3, -2]))))
        want = base.copy()
        want[index] = 0
        _copy.fill_zero(base[index])
        assert np.array_equal(base, want) and not np.signbit(base[index]).any()
    assert kernel_always


@pytest.mark.parametrize("dtype", DTYPES)
def test_large_copy_at_two_threads_runs_the_kernel(monkeypatch, dtype):
    """Past the threshold at 2 threads, with the default cut-over: one kernel
    call, the merged layout of a transposed source, and the result exact."""
    calls = []
    real = _kernels.strided_copy
    monkeypatch.setattr(_kernels, "strided_copy", lambda *a: (calls.append(a), real(*a))[1])
    before = fastconv.get_num_threads()
    fastconv.set_num_threads(2)
    try:
        src = np.arange(64 * 70 * 80, dtype=dtype).reshape(64, 70, 80).swapaxes(0, 1)
        dst = np.empty(src.shape, dtype)
        _copy.copy_into(dst, src)
    finally:
        fastconv.set_num_threads(before)
    assert np.array_equal(dst, src)
    assert len(calls) == 1
    _, _, _, shape, dst_strides, src_strides, nthreads = calls[0]
    assert shape == [70, 64, 80] and dst_strides == [64 * 80, 80, 1]
    assert src_strides == [80, 70 * 80, 1] and nthreads == 2
    # on one thread (and below the threshold) NumPy copies
    fastconv.set_num_threads(1)
    try:
        _copy.copy_into(dst, src[::-1])
    finally:
        fastconv.set_num_threads(before)
    _copy.copy_into(dst[:10], src[:10])
    assert len(calls) == 1 and np.array_equal(dst[10:], src[::-1][10:])


def test_broadcast_source_and_bias_rows(kernel_always, threads):
    rng = np.random.default_rng(3)
    b = rng.standard_normal(5)
    dst = np.zeros((3, 5, 4, 6))[:, :, ::2]
    _copy.copy_into(dst, b[:, None, None])
    assert np.array_equal(dst, np.broadcast_to(b[:, None, None], dst.shape))
    with pytest.raises(ValueError):
        _copy.copy_into(dst, np.ones(4))


def test_empty_and_one_element(kernel_always):
    for shape in [(0,), (3, 0, 2), (0, 5)]:
        dst = np.empty(shape, np.float32)
        _copy.copy_into(dst, np.ones(shape, np.float32))
        _copy.fill_zero(dst)
    dst = np.empty((1, 1), np.float64)
    _copy.copy_into(dst, np.full((1, 1), 2.5))
    assert dst[0, 0] == 2.5


def test_numpy_keeps_what_the_kernel_does_not_take(kernel_always):
    """Overlapping operands (NumPy buffers them), a cast, an integer dtype,
    a non-native byte order and more dims than COPY_MAX_RANK after merging:
    NumPy's result, the kernel not called."""
    a = np.arange(40.0)
    want = a.copy()
    want[1:] = want[:-1].copy()
    _copy.copy_into(a[1:], a[:-1])
    assert np.array_equal(a, want)
    dst = np.empty(6, np.float32)
    _copy.copy_into(dst, np.arange(6.0))
    assert np.array_equal(dst, np.arange(6.0, dtype=np.float32))
    ints = np.empty(6, np.int64)
    _copy.copy_into(ints, np.arange(6))
    assert np.array_equal(ints, np.arange(6))
    swapped = np.empty(6, ">f8")
    _copy.copy_into(swapped, np.arange(6.0))
    assert np.array_equal(swapped, np.arange(6.0))
    rank = _kernels.COPY_MAX_RANK + 1
    src = np.arange(2.0 ** rank).reshape((2,) * rank).T   # reversed dims: nothing merges
    dst = np.empty(src.shape)
    _copy.copy_into(dst, src)
    assert np.array_equal(dst, src)
    assert not kernel_always


def test_fresh_copy_is_private_c_contiguous_and_exact(kernel_always, threads):
    x = np.random.default_rng(4).standard_normal((6, 5, 7)).astype(np.float32)[:, ::-1]
    y = _copy.fresh_copy(x)
    assert y.flags.c_contiguous and not np.shares_memory(x, y) and np.array_equal(x, y)
    assert kernel_always


def test_bridge_refuses_geometries_outside_its_arrays():
    dst, src = np.zeros(10), np.ones(10)
    with pytest.raises(ValueError, match="outside"):
        _kernels.strided_copy("d", dst, src, [11], [1], [1], 1)
    with pytest.raises(ValueError, match="outside"):
        _kernels.strided_copy("d", dst, src, [5], [1], [-1], 1)
    with pytest.raises(ValueError, match="outside"):
        _kernels.strided_copy("d", dst, None, [2, 5], [6, 1], None, 1)
    with pytest.raises(ValueError, match="8-byte elements"):
        _kernels.strided_copy("f", dst, src, [10], [1], [1], 1)
    with pytest.raises(ValueError, match="aligned"):
        unaligned = np.zeros(81, np.uint8)[1:].view(np.float64)
        _kernels.strided_copy("d", unaligned, None, [10], [1], None, 1)
    with pytest.raises(ValueError, match="rank"):
        _kernels.strided_copy("d", dst, src, [1] * (_kernels.COPY_MAX_RANK + 1),
                              [1] * (_kernels.COPY_MAX_RANK + 1),
                              [1] * (_kernels.COPY_MAX_RANK + 1), 1)
    with pytest.raises(ValueError, match="empty"):
        _kernels.strided_copy("d", dst, src, [0], [1], [1], 1)
    with pytest.raises((ValueError, BufferError), match="read-only"):
        _kernels.strided_copy("d", np.broadcast_to(dst, (10,)), src, [10], [1], [1], 1)
    assert np.array_equal(dst, np.zeros(10))


@pytest.mark.parametrize("threads", [1, 2])
def test_a_stopped_copy_raises_and_writes_nothing(kernel_always, threads):
    before = fastconv.get_num_threads()
    src = np.ones((600, 700), np.float32)
    dst = np.full(src.shape, 7, np.float32)
    try:
        fastconv.set_num_threads(threads)
        _kernels.request_stop()
        with pytest.raises(KeyboardInterrupt):
            _copy.copy_into(dst, src)
        assert not _kernels.take_stop()
        assert (dst == 7).all()
        _copy.copy_into(dst, src)
    finally:
        fastconv.set_num_threads(before)
    assert (dst == 1).all()


# One case per composition and pass, at sizes small enough for the default
# suite: the NumPy-copy and kernel-copy runs must agree exactly.
COMPOSED = [
    ((2, 16, 12, 11), (8, 16, 3, 3), dict(padding=2, dilation=2), _plan.WINOGRAD_DILATED_PHASES),
    ((1, 16, 10, 10), (6, 16, 3, 3), dict(padding=(3, 0), dilation=3),
     _plan.WINOGRAD_DILATED_PHASES),
    ((2, 8, 5, 9, 10), (8, 8, 3, 3, 3), dict(padding=1), _plan.WINOGRAD_DEPTH_STACKED),
    ((2, 16, 4, 8, 9), (6, 8, 3, 3, 3), dict(padding=(2, 1, 1), groups=2),
     _plan.WINOGRAD_DEPTH_STACKED),
]


@pytest.mark.parametrize("xs, ws, kwargs, algorithm", COMPOSED)
def test_compositions_copy_through_the_kernel_exactly(monkeypatch, xs, ws, kwargs, algorithm,
                                                      threads):
    rng = np.random.default_rng(5)
    x = rng.standard_normal(xs)
    w = rng.standard_normal(ws)
    conv = fastconv.conv2d if len(xs) == 4 else fastconv.conv3d
    backward = fastconv.conv2d_backward if len(xs) == 4 else fastconv.conv3d_backward
    _callcache.clear()
    assert fastconv.explain(conv.__name__, x, w, **kwargs).algorithm == algorithm
    b = rng.standard_normal(ws[0])
    y_numpy = conv(x, w, b, **kwargs)
    gy = rng.standard_normal(y_numpy.shape)
    grads_numpy = backward(gy, x, w, **kwargs)
    calls = []
    real = _kernels.strided_copy
    monkeypatch.setattr(_copy, "KERNEL_MIN_ELEMENTS", 0)
    monkeypatch.setattr(_copy, "KERNEL_MIN_THREADS", 1)
    monkeypatch.setattr(_kernels, "strided_copy", lambda *a: (calls.append(a), real(*a))[1])
    y = conv(x, w, b, **kwargs)
    grads = backward(gy, x, w, **kwargs)
    assert calls
    assert np.array_equal(y, y_numpy)
    for g, g_numpy in zip(grads, grads_numpy):
        assert np.array_equal(g, g_numpy)
