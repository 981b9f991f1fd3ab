"""The per-call fast path (fastconv/_callcache.py): memoised shape-only work
must never let a call skip a check it would fail, nor share results."""
import sys

import numpy as np
import pytest

import fastconv
from fastconv import _callcache
from fastconv.functional import _plan


@pytest.fixture
def arrays(rng):
    x = rng.standard_normal((2, 4, 6, 6)).astype(np.float32)
    w = rng.standard_normal((4, 4, 3, 3)).astype(np.float32)
    return x, w


@pytest.mark.parametrize("bad, error", [
    ({"padding": True}, TypeError),          # True == 1 and hash(True) == hash(1)
    ({"stride": (1, True)}, TypeError),
    ({"groups": True}, TypeError),
    ({"groups": 1.0}, TypeError),
    ({"dilation": (1, 1.0)}, TypeError),
])
def test_a_cached_call_does_not_admit_an_equal_value_of_another_type(arrays, bad, error):
    x, w = arrays
    good = {"padding": 1, "stride": (1, 1), "groups": 1, "dilation": (1, 1)}
    expected = fastconv.conv2d(x, w, **good)    # now in the cache
    with pytest.raises(error, match="conv2d"):
        fastconv.conv2d(x, w, **{**good, **bad})
    np.testing.assert_array_equal(fastconv.conv2d(x, w, **good), expected)


def test_numpy_ints_and_lists_take_the_full_checks_and_agree(arrays):
    x, w = arrays
    expected = fastconv.conv2d(x, w, padding=1)
    np.testing.assert_array_equal(fastconv.conv2d(x, w, padding=np.int64(1)), expected)
    np.testing.assert_array_equal(fastconv.conv2d(x, w, padding=[1, 1]), expected)
    with pytest.raises(TypeError, match="padding"):
        fastconv.conv2d(x, w, padding=np.bool_(True))


def test_errors_are_raised_on_every_call(arrays):
    x, w = arrays
    for _ in range(3):
        with pytest.raises(ValueError, match="groups"):
            fastconv.conv2d(x, w, groups=3)
    for _ in range(3):   # a cached shape check must not pass an int array
        with pytest.raises(TypeError, match="dtype"):
            fastconv.conv2d(x.astype(np.int32), w)
        fastconv.conv2d(x, w)


def test_each_call_returns_a_fresh_array(arrays):
    x, w = arrays
    first, second = fastconv.conv2d(x, w), fastconv.conv2d(x, w)
    assert not np.shares_memory(first, second)
    pooled = fastconv.max_pool2d(x, 2), fastconv.max_pool2d(x, 2)
    assert not np.shares_memory(*pooled)
    up = [fastconv.interpolate(x, size=(9, 9), mode="bilinear") for _ in range(2)]
    assert not np.shares_memory(*up)
    np.testing.assert_array_equal(*up)


def test_the_plan_follows_the_thread_count(arrays):
    x, w = arrays
    before = fastconv.get_num_threads()
    try:
        for n in (1, 2, 1):
            fastconv.set_num_threads(n)
            assert fastconv.explain("conv2d", x, w).threads == n
    finally:
        fastconv.set_num_threads(before)


def test_a_byte_swapped_input_equals_the_native_one(arrays):
    x, w = arrays
    expected = fastconv.conv2d(x, w)
    swapped = x.astype(x.dtype.newbyteorder(">"))
    np.testing.assert_array_equal(fastconv.conv2d(swapped, w), expected)


def test_memoize_keeps_at_most_max_entries(monkeypatch):
    calls = []

    @_callcache.memoize
    def square(n):
        calls.append(n)
        return n * n

    monkeypatch.setattr(_callcache, "MAX_ENTRIES", 3)
    assert [square(n) for n in (1, 2, 3, 4, 1)] == [1, 4, 9, 16, 1]
    assert calls == [1, 2, 3, 4, 1]          # 1 was evicted by 4, so computed again
    assert len(square.cache) == 3
    square(4)
    assert calls == [1, 2, 3, 4, 1]          # 4 still cached
    _callcache.clear()
    assert not square.cache


def test_eviction_from_several_threads_at_once_raises_nothing(monkeypatch):
    """Ops run concurrently: threads evicting from one full cache at once
    must neither raise nor return another call's result."""
    import threading

    @_callcache.memoize
    def square(n):
        return n * n

    monkeypatch.setattr(_callcache, "MAX_ENTRIES", 2)
    errors = []

    def work(offset):
        try:
            for n in range(offset, offset + 3000):
                assert square(n) == n * n
        except BaseException as error:   # reported below, not lost in the thread
            errors.append(error)

    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)          # switch threads as often as possible
    try:
        threads = [threading.Thread(target=work, args=(k * 1000,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old_interval)
    assert not errors, errors
    assert len(square.cache) <= 2


def test_clear_makes_a_changed_threshold_take_effect(arrays, monkeypatch):
    x, w = arrays
    assert fastconv.explain("conv2d", x, w).algorithm == _plan.GEMM_SIDE_BY_SIDE
    monkeypatch.setattr(_plan, "PER_IMAGE_MIN_POSITIONS", 1)
    _callcache.clear()
    try:
        assert fastconv.explain("conv2d", x, w).algorithm == _plan.GEMM_PER_IMAGE
    finally:
        monkeypatch.undo()
        _callcache.clear()


class _Subclass(np.ndarray):
    pass


def _read_only(a):
    a = a.copy()
    a.setflags(write=False)
    return a


@pytest.mark.parametrize("batch", [1, 2])      # one GEMM per image; side by side
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("form", ["non-contiguous", "subclass", "byte-swapped", "empty batch",
                                  "read-only"])
def test_the_typed_call_equals_the_general_path(form, dtype, batch, rng):
    """conv2d's kept implicit-GEMM kernel (a ConvForward typed once per call,
    fed C-contiguous native arrays) gives bit for bit what the general path
    gives the same values in other forms, which take the full checks and
    copies first."""
    x = rng.standard_normal((batch, 3, 7, 6)).astype(dtype)
    w = rng.standard_normal((5, 3, 3, 3)).astype(dtype)
    b = rng.standard_normal(5).astype(dtype)
    if form == "empty batch":
        x = x[:0]
    call = fastconv.functional._conv._conv_call(
        "conv2d", 2, x.shape, np.dtype(dtype).char, w.shape, np.dtype(dtype).char, b.shape,
        np.dtype(dtype).char, 1, 1, 1, 1, fastconv.get_num_threads())
    if form != "empty batch":
        assert call.kernel is not None        # the typed path runs for the plain form
    expected = fastconv.conv2d(x, w, b, padding=1)
    odd = {"non-contiguous": lambda a: np.asfortranarray(a),
           "subclass": lambda a: a.view(_Subclass),
           "byte-swapped": lambda a: a.astype(a.dtype.newbyteorder(">")),
           "empty batch": lambda a: a.copy(),
           "read-only": _read_only}[form]
    got = fastconv.conv2d(odd(x), odd(w), odd(b), padding=1)
    assert type(got) is np.ndarray and got.dtype == dtype and got.flags.c_contiguous
    np.testing.assert_array_equal(got, expected)
    reference = fastconv.reference.conv2d(x, w, b, padding=1)
    np.testing.assert_allclose(expected, reference, rtol=1e-4 if dtype == np.float32 else 1e-12,
                               atol=1e-4 if dtype == np.float32 else 1e-12)


def test_the_typed_call_refuses_buffers_too_small():
    """ConvForward.run checks every length against the geometry: a short
    output or scratch is a ValueError, never a write past it."""
    from fastconv import _kernels
    g = _kernels.Geometry(2, (1, 7, 7), (1, 5, 5), (1, 3, 3), (1, 1, 1), (0, 0, 0), (1, 1, 1))
    kernel = _kernels.ConvForward("f", g, 1, 4, per_image=True)
    x, w = np.ones(2 * 49, np.float32), np.ones(4 * 2 * 9, np.float32)
    ws_bytes = -(-_kernels.conv_workspace_size("f", g, 1, 4, True, 1) * 4 // 64) * 64
    scratch = np.zeros(ws_bytes + 2 * 9 * 8, np.uint8)     # then the offsets table
    y = np.zeros(4 * 25, np.float32)
    kernel.run(x, 1, w, None, y, scratch, 1)
    assert (y == 18).all()
    with pytest.raises(ValueError, match="too small"):
        kernel.run(x, 1, w, None, y[:-1], scratch, 1)
    with pytest.raises(ValueError, match="too small"):
        kernel.run(x, 1, w, None, y, scratch[:-1], 1)
    with pytest.raises(ValueError, match="too small"):
        kernel.run(x[:-1], 1, w, None, y, scratch, 1)


_ODD_FORMS = {"non-contiguous": np.asfortranarray,
              "reversed": lambda a: a[..., ::-1].copy()[..., ::-1],
              "subclass": lambda a: a.view(_Subclass),
              "byte-swapped": lambda a: a.astype(a.dtype.newbyteorder(">")),
              "read-only": _read_only}

# Pooling calls with the options the typed call must carry: (op, args, kwargs).
_POOL_CALLS = [
    ("max_pool2d", (2,), {}),
    ("max_pool2d", (3, 2, 1), {"ceil_mode": True, "return_indices": True}),
    ("max_pool2d", ((2, 3),), {"dilation": 2, "return_indices": True}),
    ("max_pool1d", (3, 2), {"return_indices": True}),
    ("max_pool3d", (2,), {"ceil_mode": True}),
    ("avg_pool2d", (3, 2, 1), {"count_include_pad": False, "ceil_mode": True}),
    ("avg_pool2d", (2,), {"divisor_override": 3}),
    ("avg_pool1d", (3, 1, 1), {}),
    ("avg_pool3d", (2, 1), {"count_include_pad": False}),
]


def _pool_input(op, dtype, batch, rng):
    nd = int(op[-2])
    return rng.standard_normal((batch, 3) + (7, 6, 5)[3 - nd:]).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op, args, kwargs", _POOL_CALLS)
def test_the_typed_pool_call_equals_the_reference(op, args, kwargs, dtype, rng):
    """A pooling forward's kept PoolForward (built once per distinct call,
    run on every call after) gives the reference's results, in every option,
    on the first call and on the memo's hits, and each call fresh arrays."""
    x = _pool_input(op, dtype, 2, rng)
    expected = getattr(fastconv.reference, op)(x, *args, **kwargs)
    first, second = (getattr(fastconv, op)(x, *args, **kwargs) for _ in range(2))
    for got in (first, second):
        for g, e in zip(*((got, expected) if isinstance(got, tuple) else ((got,), (expected,)))):
            assert type(g) is np.ndarray and g.dtype == e.dtype and g.flags.c_contiguous
            np.testing.assert_allclose(g, e, rtol=1e-6 if dtype == np.float32 else 1e-14)
    for a, b in zip(*((first, second) if isinstance(first, tuple) else ((first,), (second,)))):
        assert not np.shares_memory(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("form", sorted(_ODD_FORMS) + ["empty batch", "unbatched"])
@pytest.mark.parametrize("op, args, kwargs", [_POOL_CALLS[1], _POOL_CALLS[5]])
def test_the_typed_pool_call_takes_every_form(op, args, kwargs, form, dtype, rng):
    """The pooling path with its typed call gives bit for bit the same for
    the plain form (C-contiguous native ndarray: the typed call reads it as
    it is) and for every other form (copied first), and leaves the input
    untouched."""
    x = _pool_input(op, dtype, 2, rng)
    call = getattr(fastconv, op)
    expected = call(x, *args, **kwargs)
    if form == "empty batch":
        x = x[:0]
        expected = tuple(e[:0] for e in expected) if isinstance(expected, tuple) else \
            expected[:0]
    elif form == "unbatched":
        x = x[1]
        expected = tuple(e[1] for e in expected) if isinstance(expected, tuple) else \
            expected[1]
    odd = x if form in ("empty batch", "unbatched") else _ODD_FORMS[form](x)
    before = np.array(odd, copy=True)
    got = call(odd, *args, **kwargs)
    np.testing.assert_array_equal(np.asarray(odd), before)
    got, expected = (got, expected) if isinstance(got, tuple) else ((got,), (expected,))
    for g, e in zip(got, expected):
        assert type(g) is np.ndarray and g.flags.c_contiguous and g.shape == e.shape
        np.testing.assert_array_equal(g, e)


def test_the_pool_call_reads_the_thread_count_on_every_call(monkeypatch, rng):
    """The pooling memo holds no thread count: each call asks for it, so
    set_num_threads and threadpoolctl take effect on the memo's hits too."""
    from fastconv import _threads
    asked = []
    real = _threads.get_num_threads
    monkeypatch.setattr(_threads, "get_num_threads", lambda: asked.append(1) or real())
    x = rng.standard_normal((1, 2, 4, 4))
    for _ in range(3):
        fastconv.max_pool2d(x, 2)
        fastconv.avg_pool2d(x, 2)
    assert len(asked) == 6


def test_the_typed_pool_call_refuses_buffers_too_small():
    """PoolForward.run checks the input's length against its geometry: a
    short one is a ValueError, never a read past it."""
    from fastconv import _kernels
    g = _kernels.Geometry(2, (1, 4, 4), (1, 2, 2), (1, 2, 2), (1, 2, 2), (0, 0, 0), (1, 1, 1))
    call = _kernels.PoolForward("f", g, (1, 2, 2, 2), "max", with_indices=True)
    x = np.arange(32, dtype=np.float32)
    out, indices = call.run(x, 1)
    np.testing.assert_array_equal(out.reshape(-1), [5, 7, 13, 15, 21, 23, 29, 31])
    np.testing.assert_array_equal(indices.reshape(-1), [5, 7, 13, 15] * 2)
    with pytest.raises(ValueError, match="input holds"):
        call.run(x[:-1], 1)
    with pytest.raises(ValueError, match="out_shape"):
        _kernels.PoolForward("f", g, (1, 2, 2, 3), "max")
    with pytest.raises(ValueError, match="no indices"):
        _kernels.PoolForward("f", g, (1, 2, 2, 2), "avg", with_indices=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("form", sorted(_ODD_FORMS) + ["empty batch"])
def test_the_typed_transposed_call_equals_the_general_path(form, dtype, rng):
    """conv_transpose2d's kept GEMM + col2im kernel (a ConvDataGrad typed
    once per call) gives bit for bit what the same values in other forms
    give (full checks and copies first), and the reference's result."""
    x = rng.standard_normal((2, 3, 5, 4)).astype(dtype)
    w = rng.standard_normal((3, 4, 3, 3)).astype(dtype)
    b = rng.standard_normal(4).astype(dtype)
    kwargs = {"stride": 2, "padding": 1, "output_padding": 1}
    if form == "empty batch":
        x = x[:0]
    call = fastconv.functional._conv_transpose._conv_transpose_call(
        "conv_transpose2d", 2, x.shape, np.dtype(dtype).char, w.shape, np.dtype(dtype).char,
        b.shape, np.dtype(dtype).char, 2, 1, 1, 1, 1, fastconv.get_num_threads())
    if form != "empty batch":
        assert call.kernel is not None      # the typed path runs for the plain form
    expected = fastconv.conv_transpose2d(x, w, b, **kwargs)
    odd = (lambda a: a.copy()) if form == "empty batch" else _ODD_FORMS[form]
    got = fastconv.conv_transpose2d(odd(x), odd(w), odd(b), **kwargs)
    assert type(got) is np.ndarray and got.dtype == dtype and got.flags.c_contiguous
    np.testing.assert_array_equal(got, expected)
    reference = fastconv.reference.conv_transpose2d(x, w, b, **kwargs)
    np.testing.assert_allclose(expected, reference, rtol=1e-4 if dtype == np.float32 else 1e-12,
                               atol=1e-4 if dtype == np.float32 else 1e-12)


def test_the_transposed_plan_follows_the_thread_count(rng):
    """conv_transpose's memo is keyed by the thread count: no stale plan
    after set_num_threads."""
    x, w = rng.standard_normal((2, 4, 6, 6)), rng.standard_normal((4, 4, 3, 3))
    before = fastconv.get_num_threads()
    try:
        for n in (1, 2, 1):
            fastconv.set_num_threads(n)
            fastconv.conv_transpose2d(x, w, stride=2)
            assert fastconv.explain("conv_transpose2d", x, w, stride=2).threads == n
    finally:
        fastconv.set_num_threads(before)


@pytest.mark.parametrize("op", ["max_pool2d", "avg_pool2d", "conv_transpose2d"])
def test_the_typed_calls_follow_a_simd_change(op, rng):
    """A typed call kept in the memo dispatches on every run: after a SIMD
    change its next call (a memo hit) runs the newly selected level."""
    from fastconv import _kernels
    x, w = rng.standard_normal((1, 4, 6, 6)), rng.standard_normal((4, 4, 3, 3))
    run = {"max_pool2d": lambda: fastconv.max_pool2d(x, 2),
           "avg_pool2d": lambda: fastconv.avg_pool2d(x, 2),
           "conv_transpose2d": lambda: fastconv.conv_transpose2d(x, w, stride=2)}[op]
    expected = run()
    before = _kernels.simd_active()
    try:
        for level in _kernels.simd_supported(None):
            _kernels.simd_select(level)
            calls = _kernels.simd_calls()[level]
            got = run()
            assert _kernels.simd_calls()[level] > calls, level
            np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    finally:
        _kernels.simd_select(before)
