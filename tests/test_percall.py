"""The whole typed calls of the per-call path (issue 15): conv's
ConvForward.forward and linear's LinearForward.forward take the arrays as
the user passed them and do the layout checks, copies and the result
themselves.  They must give what the general path gives, bit for bit, for
every layout, and raise what it raises."""
import numpy as np
import pytest

import fastconv
from fastconv import _kernels
from fastconv.functional import _conv, _linear
from helpers import non_contiguous

DTYPES = [np.float32, np.float64]


def _misaligned(a):
    """A copy of `a` whose data starts one byte past an item boundary."""
    raw = np.empty(a.nbytes + 1, np.uint8)[1:]
    out = raw.view(a.dtype).reshape(a.shape)
    out[...] = a
    assert not out.flags.aligned
    return out


def _read_only(a):
    a = a.copy()
    a.setflags(write=False)
    return a


# Every layout a native array can have; each must be read as its values.
FORMS = {"plain": lambda a: a,
         "fortran": np.asfortranarray,
         "negative strides": non_contiguous,
         "misaligned": _misaligned,
         "read-only": _read_only,
         "every other item": lambda a: np.repeat(a, 2, axis=-1)[..., ::2],
         "byte-swapped": lambda a: a.astype(a.dtype.newbyteorder(">"))}


class _Spy:
    """Stands in for a typed call object and counts its forward calls."""

    def __init__(self, real):
        self.real, self.calls = real, 0

    def forward(self, *args):
        self.calls += 1
        return self.real.forward(*args)


def _conv_entry(x, w, b, **kwargs):
    """The memo entry conv2d(x, w, b, **kwargs) uses (x, w, b native)."""
    key = _conv.forward_arrays("conv2d", x, w, b)[3]
    return _conv._conv_call("conv2d", 2, *key, kwargs.get("stride", 1),
                            kwargs.get("padding", 0), 1, 1, fastconv.get_num_threads())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("form", sorted(FORMS))
@pytest.mark.parametrize("with_bias", [True, False])
def test_conv2d_whole_call_equals_the_general_path(form, batch, dtype, with_bias, rng,
                                                   monkeypatch):
    x = rng.standard_normal((batch, 3, 7, 6)).astype(dtype)
    w = rng.standard_normal((5, 3, 3, 3)).astype(dtype)
    b = rng.standard_normal(5).astype(dtype) if with_bias else None
    entry = _conv_entry(x, w, b, padding=1, stride=2)
    assert entry.whole is not None          # the plain form takes the whole call
    spy = _Spy(entry.whole)
    monkeypatch.setattr(entry, "whole", spy)
    odd = [None if a is None else FORMS[form](a) for a in (x, w, b)]
    before = [None if a is None else a.copy() for a in odd]
    got = fastconv.conv2d(*odd, padding=1, stride=2)
    assert spy.calls == (0 if form == "byte-swapped" else 1)
    monkeypatch.setattr(entry, "whole", None)       # the general path
    expected = fastconv.conv2d(x, w, b, padding=1, stride=2)
    assert type(got) is np.ndarray and got.dtype == dtype and got.flags.c_contiguous
    assert got.flags.aligned and got.flags.writeable
    np.testing.assert_array_equal(got, expected)
    for a, kept in zip(odd, before):
        if a is not None:
            np.testing.assert_array_equal(a, kept)    # inputs untouched
    reference = fastconv.reference.conv2d(x, w, b, padding=1, stride=2)
    np.testing.assert_allclose(got, reference, rtol=1e-4 if dtype == np.float32 else 1e-12,
                               atol=1e-4 if dtype == np.float32 else 1e-12)


def test_conv2d_whole_call_returns_fresh_results(rng):
    x = rng.standard_normal((1, 2, 5, 5)).astype(np.float32)
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    assert _conv_entry(x, w, None).whole is not None
    first, second = fastconv.conv2d(x, w), fastconv.conv2d(x, w)
    assert not np.shares_memory(first, second)
    np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("bad", [np.int32, np.int64, bool, np.complex64, np.float16])
def test_conv2d_whole_call_hit_still_refuses_other_dtypes(bad, rng):
    """A memo hit for float arrays of these shapes admits no array of
    another dtype: the same TypeError as the first call's."""
    x = rng.standard_normal((1, 2, 5, 5)).astype(np.float32)
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    fastconv.conv2d(x, w)
    fastconv.conv2d(x, w)
    for args in ((x.astype(bad), w), (x, w.astype(bad))):
        name = "input" if args[0].dtype != np.float32 else "weight"
        with pytest.raises(TypeError, match=f"conv2d: {name} must have dtype float32 or "
                                            f"float64, got dtype {np.dtype(bad)}"):
            fastconv.conv2d(*args)
    with pytest.raises(TypeError, match="conv2d: weight has dtype float64 but input has "
                                        "dtype float32"):
        fastconv.conv2d(x, w.astype(np.float64))


def test_conv2d_whole_call_reports_a_failed_allocation_as_the_op(rng, monkeypatch):
    """When NumPy cannot allocate the result, the typed call asks the op's
    allocator, which retries and names the op and the output if it fails."""
    x = rng.standard_normal((1, 2, 5, 5)).astype(np.float32)
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    expected = fastconv.conv2d(x, w)

    def no_memory(*args):
        raise MemoryError("Unable to allocate")
    monkeypatch.setattr(_kernels, "_np_empty", no_memory)
    got = fastconv.conv2d(x, w)                 # the op's allocator succeeds
    np.testing.assert_array_equal(got, expected)
    assert got.flags.c_contiguous and got.flags.aligned
    monkeypatch.setattr(np, "empty", no_memory)
    with pytest.raises(MemoryError, match="conv2d: not enough memory for its output"):
        fastconv.conv2d(x, w)


def test_conv2d_whole_call_follows_the_thread_count(rng):
    """The thread count is in the memo's key: set_num_threads between two
    calls picks the entry (and typed call) planned for the new count."""
    # 16 input channels: the implicit GEMM (a stem's 2-8 run the direct loops)
    x = rng.standard_normal((2, 16, 40, 40))
    w = rng.standard_normal((8, 16, 3, 3))
    before = fastconv.get_num_threads()
    try:
        entries = {}
        for n in (1, 2, 1, 2):
            fastconv.set_num_threads(n)
            y = fastconv.conv2d(x, w, stride=2)
            entry = _conv_entry(x, w, None, stride=2)
            assert entry.whole is not None and entry.plan.threads == n
            entries.setdefault(n, entry)
            assert entries[n] is entry          # the memo's hit for that count
            np.testing.assert_allclose(y, fastconv.reference.conv2d(x, w, stride=2),
                                       rtol=1e-12, atol=1e-12)
        assert entries[1].whole is not entries[2].whole
    finally:
        fastconv.set_num_threads(before)


def test_conv2d_whole_call_is_interruptible(rng):
    """A stop requested before the call (what a Ctrl-C poll does) raises
    KeyboardInterrupt from the whole call too, and the next call is exact."""
    x = rng.standard_normal((1, 4, 6, 6))
    w = rng.standard_normal((4, 4, 3, 3))
    assert _conv_entry(x, w, None).whole is not None
    expected = fastconv.conv2d(x, w)
    _kernels.request_stop()
    with pytest.raises(KeyboardInterrupt):
        fastconv.conv2d(x, w)
    assert not _kernels.take_stop()
    np.testing.assert_array_equal(fastconv.conv2d(x, w), expected)


def test_conv_forward_whole_call_needs_whole_call():
    g = _kernels.Geometry(2, (1, 7, 7), (1, 5, 5), (1, 3, 3), (1, 1, 1), (0, 0, 0), (1, 1, 1))
    kernel = _kernels.ConvForward("f", g, 1, 4, per_image=True)
    x, w = np.ones((1, 2, 7, 7), np.float32), np.ones((4, 2, 3, 3), np.float32)
    ws_bytes = -(-_kernels.conv_workspace_size("f", g, 2, 4, True, 1) * 4 // 64) * 64
    scratch = np.zeros(ws_bytes + 2 * 9 * 8, np.uint8)     # then the offsets table
    with pytest.raises(ValueError, match="whole_call"):
        kernel.forward(x, w, None, scratch)
    plain = kernel.whole_call((1, 4, 5, 5), 1, False, np.ascontiguousarray, None)
    assert (plain.forward(x, w, None, scratch) == 18).all()
    with pytest.raises(ValueError, match="too small"):      # x of 1 image too few
        kernel.whole_call((2, 4, 5, 5), 1, False, np.ascontiguousarray, None).forward(
            x, w, None, scratch)
    aligned = kernel.whole_call((1, 4, 5, 5), 1, True, np.ascontiguousarray, None)
    for _ in range(4):
        y = aligned.forward(x, w, None, scratch)
        assert y.ctypes.data % 64 == 0 and (y == 18).all()


def _linear_entry(x, w, b):
    key = lambda a: None if a is None else fastconv._args.dtype_key(a.dtype)
    return _linear._check_shapes("linear", x.shape, key(x), w.shape, key(w),
                                 None if b is None else b.shape, key(b), None, None)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("form", sorted(FORMS))
@pytest.mark.parametrize("lead, fin, fout", [((1,), 64, 10), ((), 9, 1), ((2, 3), 8, 2),
                                             ((4,), 1, 5)])
@pytest.mark.parametrize("with_bias", [True, False])
def test_linear_whole_call_equals_the_general_path(lead, fin, fout, form, dtype, with_bias,
                                                   rng, monkeypatch):
    x = rng.standard_normal(lead + (fin,)).astype(dtype)
    w = rng.standard_normal((fout, fin)).astype(dtype)
    b = rng.standard_normal(fout).astype(dtype) if with_bias else None
    out_shape, whole = _linear_entry(x, w, b)
    assert whole is not None                # the plain form takes the whole call
    spy, checks = _Spy(whole), _linear._check_shapes

    def spied(*args):
        shape, kept = checks(*args)
        return shape, None if kept is None else spy
    monkeypatch.setattr(_linear, "_check_shapes", spied)
    odd = [None if a is None else FORMS[form](a) for a in (x, w, b)]
    before = [None if a is None else a.copy() for a in odd]
    got = fastconv.linear(*odd)
    assert spy.calls == (0 if form == "byte-swapped" else 1)
    monkeypatch.setattr(_linear, "_check_shapes", lambda *args: (checks(*args)[0], None))
    expected = fastconv.linear(x, w, b)
    assert type(got) is np.ndarray and got.dtype == dtype and got.flags.c_contiguous
    assert got.shape == lead + (fout,)
    np.testing.assert_array_equal(got, expected)
    for a, kept in zip(odd, before):
        if a is not None:
            np.testing.assert_array_equal(a, kept)
    np.testing.assert_allclose(got, fastconv.reference.linear(x, w, b),
                               rtol=1e-5 if dtype == np.float32 else 1e-13,
                               atol=1e-5 if dtype == np.float32 else 1e-13)


@pytest.mark.parametrize("lead, fin, fout", [((0,), 4, 3), ((5,), 0, 3), ((4,), 3, 0),
                                             ((3,), 4, 17), ((64,), 512, 64)])
def test_linear_takes_the_general_path_where_the_typed_call_does_not_fit(lead, fin, fout,
                                                                        rng):
    """Empty products, products the small GEMM would read with a copy of the
    weight (few inputs per output) and large ones take the general path."""
    x = rng.standard_normal(lead + (fin,))
    w = rng.standard_normal((fout, fin))
    b = rng.standard_normal(fout)
    assert _linear_entry(x, w, b)[1] is None
    np.testing.assert_allclose(fastconv.linear(x, w, b), fastconv.reference.linear(x, w, b),
                               rtol=1e-12, atol=1e-12)


def test_linear_whole_call_hit_still_refuses_other_dtypes(rng):
    x = rng.standard_normal((1, 64)).astype(np.float32)
    w = rng.standard_normal((10, 64)).astype(np.float32)
    fastconv.linear(x, w)
    fastconv.linear(x, w)
    with pytest.raises(TypeError, match="linear: input must have dtype float32 or float64, "
                                        "got dtype int64"):
        fastconv.linear(x.astype(np.int64), w)
    with pytest.raises(TypeError, match="linear: bias must have dtype float32 or float64, "
                                        "got dtype bool"):
        fastconv.linear(x, w, np.ones(10, bool))


def test_linear_forward_refuses_short_buffers():
    call = _kernels.LinearForward("d", 2, 3, 4, (2, 3), np.ascontiguousarray)
    x, w = np.ones((2, 4)), np.ones((3, 4))
    np.testing.assert_array_equal(call.forward(x, w, np.arange(3.0)),
                                  [[4, 5, 6], [4, 5, 6]])
    with pytest.raises(ValueError, match="too small"):
        call.forward(x[:1], w, None)
    with pytest.raises(ValueError, match="too small"):
        call.forward(x, w, np.ones(2))
    with pytest.raises(ValueError, match="LinearForward"):
        _kernels.LinearForward("d", 2, 3, 0, (2, 3), np.ascontiguousarray)
