# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False
"""Thin typed bridge from Python to the C kernels in csrc/.

Arguments are assumed validated by fastconv.functional; the only checks here
are the ones that keep a wrong call from touching memory it does not own.
Every kernel call releases the GIL.
"""
from libc.stdint cimport int64_t
from libc.string cimport memcpy
from fastconv._csrc cimport *

ctypedef fused real:
    float
    double


# ---------------------------------------------------------------------------
# Ctrl-C.  The long kernels poll a stop flag (fc_set_poll in csrc/fastconv.h);
# their calling thread runs _poll_signals at each check.  On Python's main
# thread it takes the GIL every _POLL_SECONDS at most and runs Python's signal
# handlers: a handler that raises (SIGINT's default raises KeyboardInterrupt)
# stops the kernel, and its exception stays pending until _raise_if_stopped,
# after the kernel returns, hands it on.  A handler that returns lets the
# kernel run on.  Other threads never take the GIL here (Python runs signal
# handlers on the main thread only).
from cpython.exc cimport PyErr_Occurred
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE, \
    PyBUF_WRITABLE, PyBUF_STRIDES

cdef extern from "Python.h":
    int PyErr_CheckSignals() noexcept
    unsigned long PyThread_get_thread_ident() noexcept nogil

cdef extern from *:
    """
    #ifdef _WIN32
    #include <windows.h>
    static double fc_monotonic_seconds(void) { return (double)GetTickCount64() * 1e-3; }
    #else
    #include <time.h>
    static double fc_monotonic_seconds(void)
    {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        return (double)now.tv_sec + (double)now.tv_nsec * 1e-9;
    }
    #endif
    """
    double fc_monotonic_seconds() noexcept nogil

# Between two signal checks: short enough that Ctrl-C lands at once for a
# person, long enough that taking the GIL (up to Python's switch interval,
# 5 ms, while another thread runs Python) costs a kernel at most a few percent.
cdef double _POLL_SECONDS = 0.05
cdef double _next_poll = 0
cdef unsigned long _main_thread = 0


cdef int _poll_signals() noexcept nogil:
    global _next_poll
    cdef double t
    if PyThread_get_thread_ident() != _main_thread:
        return 0
    t = fc_monotonic_seconds()
    if t < _next_poll:
        return 0
    _next_poll = t + _POLL_SECONDS
    with gil:
        return PyErr_CheckSignals() != 0


cdef int _raise_if_stopped() except -1:
    """After a kernel call: when it stopped early (its outputs hold garbage),
    raise the exception a signal handler left pending, or KeyboardInterrupt
    for a stop requested without one (request_stop)."""
    if not fc_stop_take():
        return 0
    if PyErr_Occurred() == NULL:
        raise KeyboardInterrupt("fastconv: kernel call stopped (request_stop)")
    return -1


def _note_main_thread():
    """Python's main thread is the one that polls for signals (in a forked
    child: the thread that forked)."""
    global _main_thread
    _main_thread = PyThread_get_thread_ident()


def request_stop():
    """Stop the next long kernel call on this thread at its first check, as a
    Ctrl-C would (it raises KeyboardInterrupt): for tests."""
    fc_stop_request()


def take_stop():
    """Clear this thread's stop flag; True when it was set (for tests)."""
    return bool(fc_stop_take())


import os as _os
import threading as _threading
_main_thread = _threading.main_thread().ident
if hasattr(_os, "register_at_fork"):
    _os.register_at_fork(after_in_child=_note_main_thread)
fc_set_poll(_poll_signals)


# ---------------------------------------------------------------------------
# The memo's hit path (fastconv/_callcache.py: the rules, the miss path and
# the eviction live there).  A memoised call is looked up on every op call,
# so its key is built here, in a C loop, rather than in Python.
from cpython.tuple cimport PyTuple_New, PyTuple_SET_ITEM
from cpython.ref cimport Py_INCREF

cdef object _MISSING = object()


cdef object _memo_key(tuple args, set plain):
    """(args, the type of each), or None when an argument is not plain:
    its type is not in `plain`, or it is a tuple holding anything but ints
    and None (so equal keys always mean interchangeable arguments)."""
    cdef Py_ssize_t i, n = len(args)
    cdef tuple types = PyTuple_New(n)
    cdef object value, kind, item
    for i in range(n):
        value = args[i]
        kind = type(value)
        if kind is tuple:
            for item in <tuple>value:
                if type(item) is not int and item is not None:
                    return None
        elif kind not in plain:
            return None
        Py_INCREF(kind)
        PyTuple_SET_ITEM(types, i, kind)
    return (args, types)


cdef class Memo:
    """A memoised function's hit path: calling it looks the arguments' key
    up in `cache` and returns the kept result; on a miss (or an argument
    that is not plain) it returns miss(args, key), key None for arguments
    that must not be kept."""
    cdef readonly dict cache
    cdef set plain
    cdef object miss
    cdef readonly object __wrapped__

    def __init__(self, fn, dict cache, set plain, miss):
        self.__wrapped__ = fn
        self.cache, self.plain, self.miss = cache, plain, miss

    def __call__(self, *args):
        key = _memo_key(args, self.plain)
        if key is not None:
            result = self.cache.get(key, _MISSING)
            if result is not _MISSING:
                return result
        return self.miss(args, key)

    def __repr__(self):
        return f"<memoised {self.__wrapped__!r}>"


cdef inline fc_dtype _dtype(real zero) noexcept nogil:
    """The C kernels' name for the fused type `real` (pass <real>0)."""
    return FC_FLOAT32 if real is float else FC_FLOAT64


cdef inline fc_dtype _dtype_of_char(str dtype_char) except *:
    """'f' -> float32, 'd' -> float64 (NumPy's dtype.char)."""
    if dtype_char == "f":
        return FC_FLOAT32
    if dtype_char == "d":
        return FC_FLOAT64
    raise ValueError(f"dtype must be 'f' or 'd', got {dtype_char!r}")


cdef tuple _triple(const int64_t *v):
    return (v[0], v[1], v[2])


cdef class Geometry:
    """The window geometry of one kernel call (the C kernels' fc_geometry),
    built once per call: `channels` (planes for pooling) and 3-D sizes, 1-D
    and 2-D ops lifted with leading 1s (kernel, stride, dilation 1, pad 0).
    `pad` is the leading padding (pooling: each side's)."""
    cdef fc_geometry g

    def __init__(self, int64_t channels, in_size, out_size, kernel, stride, pad, dilation):
        cdef int i
        for name, value in (("in_size", in_size), ("out_size", out_size), ("kernel", kernel),
                            ("stride", stride), ("pad", pad), ("dilation", dilation)):
            if len(value) != 3:
                raise ValueError(f"Geometry: {name} needs 3 sizes, got {value!r}")
        self.g.channels = channels
        for i in range(3):
            self.g.in_[i] = in_size[i]
            self.g.out[i] = out_size[i]
            self.g.kernel[i] = kernel[i]
            self.g.stride[i] = stride[i]
            self.g.pad[i] = pad[i]
            self.g.dilation[i] = dilation[i]

    def sizes(self):
        """{field: value} of the geometry, 3-tuples for the per-axis ones."""
        return {"channels": self.g.channels, "in_size": _triple(self.g.in_),
                "out_size": _triple(self.g.out), "kernel": _triple(self.g.kernel),
                "stride": _triple(self.g.stride), "pad": _triple(self.g.pad),
                "dilation": _triple(self.g.dilation)}

    def __repr__(self):
        return "Geometry(" + ", ".join(f"{k}={v}" for k, v in self.sizes().items()) + ")"


cdef int64_t _prod3(const int64_t *v) noexcept nogil:
    return v[0] * v[1] * v[2]


cdef int _check_col_bounds(Py_ssize_t col_size, int64_t batch, const fc_geometry *g,
                           fc_col_layout layout) except -1:
    # Highest element touched: last image, last row, last column.
    cdef int64_t rows = g.channels * _prod3(g.kernel)
    cdef int64_t last = ((batch - 1) * layout.batch_stride
                         + (rows - 1) * layout.row_stride + _prod3(g.out))
    if last > col_size:
        raise ValueError(f"column buffer holds {col_size} elements, needs {last}")
    return 0


def im2col(const real[::1] im, int64_t batch, Geometry geom not None, int64_t batch_stride,
           int64_t row_stride, real[::1] col, int nthreads):
    """Gather the windows of `batch` images into the column buffer `col`."""
    cdef fc_geometry g = geom.g
    cdef fc_col_layout layout = fc_col_layout(batch_stride, row_stride)
    if batch <= 0 or g.channels == 0 or _prod3(g.out) == 0:
        return
    if im.shape[0] < batch * g.channels * _prod3(g.in_):
        raise ValueError("image buffer too small")
    _check_col_bounds(col.shape[0], batch, &g, layout)
    with nogil:
        fc_im2col(_dtype(<real>0), &im[0], batch, &g, layout, &col[0], nthreads)
    _raise_if_stopped()


def col2im(const real[::1] col, int64_t batch, Geometry geom not None, int64_t batch_stride,
           int64_t row_stride, real[::1] im, int nthreads):
    """Scatter-add the column buffer `col` into `batch` images (overwritten)."""
    cdef fc_geometry g = geom.g
    cdef fc_col_layout layout = fc_col_layout(batch_stride, row_stride)
    if batch <= 0 or g.channels == 0 or _prod3(g.in_) == 0:
        return
    if im.shape[0] < batch * g.channels * _prod3(g.in_):
        raise ValueError("image buffer too small")
    if _prod3(g.out) == 0:
        with nogil:
            for i in range(batch * g.channels * _prod3(g.in_)):
                im[i] = 0
        return
    _check_col_bounds(col.shape[0], batch, &g, layout)
    with nogil:
        fc_col2im(_dtype(<real>0), &col[0], batch, &g, layout, &im[0], nthreads)
    _raise_if_stopped()


cdef int _check_depthwise(Py_ssize_t x_size, Py_ssize_t w_size, Py_ssize_t y_size,
                          Py_ssize_t ws_size, int64_t batch, const fc_geometry *g,
                          int64_t multiplier, int64_t group_channels, int nthreads,
                          fc_dtype dtype) except -1:
    if group_channels < 1 or g.channels % group_channels:
        raise ValueError(f"depthwise group_channels={group_channels} does not divide "
                         f"{g.channels} channels")
    cdef int64_t c_out = g.channels // group_channels * multiplier
    cdef int64_t need = fc_depthwise_workspace(dtype, g, multiplier, group_channels, nthreads)
    if (x_size < batch * g.channels * _prod3(g.in_)
            or w_size < c_out * group_channels * _prod3(g.kernel)
            or y_size < batch * c_out * _prod3(g.out) or ws_size < need):
        raise ValueError("depthwise buffer too small")
    return 0


def depthwise_workspace_size(dtype_char, Geometry geom not None, int64_t multiplier,
                             int64_t group_channels, int nthreads):
    """Elements of scratch the depthwise kernels need ('f' or 'd')."""
    cdef fc_geometry g = geom.g
    return fc_depthwise_workspace(_dtype_of_char(dtype_char), &g, multiplier, group_channels,
                                  nthreads)


def depthwise_forward(const real[::1] x, const real[::1] w, const real[::1] bias,
                      int64_t batch, Geometry geom not None, int64_t multiplier,
                      int64_t group_channels, real[::1] y, real[::1] ws, int nthreads):
    """Depthwise (group_channels 1) or grouped conv forward into y
    (overwritten), plus bias per output channel unless `bias` is empty."""
    cdef fc_geometry g = geom.g
    cdef const real *bias_ptr = NULL
    if y.shape[0] == 0:
        return
    _check_depthwise(x.shape[0], w.shape[0], y.shape[0], ws.shape[0], batch, &g, multiplier,
                     group_channels, nthreads, _dtype(<real>0))
    if bias.shape[0]:
        if bias.shape[0] < g.channels // group_channels * multiplier:
            raise ValueError("depthwise bias too small")
        bias_ptr = &bias[0]
    with nogil:
        fc_depthwise_forward(_dtype(<real>0), &x[0], &w[0], bias_ptr, batch, &g, multiplier,
                             group_channels, &y[0], &ws[0], nthreads)
    _raise_if_stopped()


def depthwise_backward_input(const real[::1] gy, const real[::1] w, int64_t batch,
                             Geometry geom not None, int64_t multiplier, int64_t group_channels,
                             real[::1] gx, real[::1] ws, int nthreads):
    """Depthwise or grouped conv input gradient into gx (overwritten)."""
    cdef fc_geometry g = geom.g
    if gx.shape[0] == 0:
        return
    _check_depthwise(gx.shape[0], w.shape[0], gy.shape[0], ws.shape[0], batch, &g, multiplier,
                     group_channels, nthreads, _dtype(<real>0))
    with nogil:
        fc_depthwise_backward_input(_dtype(<real>0), &gy[0], &w[0], batch, &g, multiplier,
                                    group_channels, &gx[0], &ws[0], nthreads)
    _raise_if_stopped()


def depthwise_backward_weight(const real[::1] gy, const real[::1] x, int64_t batch,
                              Geometry geom not None, int64_t multiplier,
                              int64_t group_channels, real[::1] gw, real[::1] ws,
                              int nthreads):
    """Depthwise or grouped conv weight gradient into gw (overwritten)."""
    cdef fc_geometry g = geom.g
    if gw.shape[0] == 0:
        return
    if batch == 0 or gy.shape[0] == 0:
        gw[:] = 0
        return
    _check_depthwise(x.shape[0], gw.shape[0], gy.shape[0], ws.shape[0], batch, &g, multiplier,
                     group_channels, nthreads, _dtype(<real>0))
    with nogil:
        fc_depthwise_backward_weight(_dtype(<real>0), &gy[0], &x[0], batch, &g, multiplier,
                                     group_channels, &gw[0], &ws[0], nthreads)
    _raise_if_stopped()


SIMD_LEVELS = ("generic", "avx2", "avx512")


def gemm_workspace_size(dtype_char, int nthreads):
    """Elements of workspace gemm() needs for `nthreads` ('f' or 'd')."""
    return fc_gemm_workspace(_dtype_of_char(dtype_char), nthreads)


cdef bint _gemm_shapes_ok(const real[:, :] a, const real[:, :] b, real[:, :] c) except -1:
    """Check a @ b -> c's shapes and c's unit column stride; False when c is
    empty (nothing to compute)."""
    cdef int64_t m = c.shape[0], n = c.shape[1]
    if a.shape[0] != m or b.shape[0] != a.shape[1] or b.shape[1] != n:
        raise ValueError(f"gemm shapes {(a.shape[0], a.shape[1])} @ "
                         f"{(b.shape[0], b.shape[1])} -> {(m, n)} do not match")
    if m == 0 or n == 0:
        return False
    if n > 1 and c.strides[1] != sizeof(real):
        raise ValueError("gemm output must have unit column stride")
    return True


def gemm(const real[:, :] a, const real[:, :] b, real[:, :] c, bint accumulate,
         real[::1] ws, int nthreads):
    """c = a @ b, or c += a @ b: a and b of any strides, c with unit column
    stride (fastconv's GEMM)."""
    cdef int64_t m = c.shape[0], n = c.shape[1], k = a.shape[1]
    cdef int64_t item = sizeof(real)
    cdef const real *pa = NULL
    cdef const real *pb = NULL
    cdef int64_t ws_needed
    ws_needed = fc_gemm_workspace(_dtype(<real>0), nthreads)
    if ws.shape[0] < ws_needed:
        raise ValueError("gemm workspace too small")
    if not _gemm_shapes_ok(a, b, c):
        return
    if k > 0:
        pa, pb = &a[0, 0], &b[0, 0]
    with nogil:
        fc_gemm(_dtype(<real>0), m, n, k, pa, a.strides[0] // item, a.strides[1] // item,
                pb, b.strides[0] // item, b.strides[1] // item, &c[0, 0], c.strides[0] // item,
                accumulate, &ws[0], nthreads)
    _raise_if_stopped()


def gemm_small(const real[:, :] a, const real[:, :] b, real[:, :] c, bint accumulate):
    """As gemm(), for small products: no packing, no workspace, this thread
    only (fc_gemm_small)."""
    cdef int64_t m = c.shape[0], n = c.shape[1], k = a.shape[1]
    cdef int64_t item = sizeof(real)
    cdef const real *pa = NULL
    cdef const real *pb = NULL
    if not _gemm_shapes_ok(a, b, c):
        return
    if k > 0:
        pa, pb = &a[0, 0], &b[0, 0]
    with nogil:
        fc_gemm_small(_dtype(<real>0), m, n, k, pa, a.strides[0] // item,
                      a.strides[1] // item, pb, b.strides[0] // item, b.strides[1] // item,
                      &c[0, 0], c.strides[0] // item, accumulate)


cdef class LinearForward:
    """linear's whole call, y = x @ w.T + bias with fc_gemm_small, as a
    typed call object kept by the op's memoised checks (as ConvForward):
    x (*, k) holding m rows, w (n, k), bias (n,) or None, all native arrays
    of the object's dtype in any layout (copy(arr) gives the C-contiguous
    aligned copy of another); the result is a fresh C-contiguous
    `out_shape` array.  Only for products the small GEMM reads in place
    with these layouts (the op's plan decides)."""
    cdef fc_dtype dtype
    cdef Py_ssize_t item
    cdef int64_t m, n, k
    cdef tuple out_shape
    cdef object out_dtype, copy

    def __init__(self, dtype_char, int64_t m, int64_t n, int64_t k, tuple out_shape, copy):
        self.dtype = _dtype_of_char(dtype_char)
        self.item = sizeof(float) if self.dtype == FC_FLOAT32 else sizeof(double)
        if m <= 0 or n <= 0 or k <= 0 or _prod_tuple(out_shape) != m * n:
            raise ValueError(f"LinearForward: out_shape {out_shape} is not a non-empty "
                             f"({m}, {n}) product of k={k} > 0")
        self.m, self.n, self.k = m, n, k
        self.out_shape, self.copy = out_shape, copy
        self.out_dtype = __import__("numpy").dtype(dtype_char)

    def forward(self, x, w, bias):
        """The fresh linear(x, w, bias)."""
        cdef Py_buffer views[4]
        cdef int held = 0
        cdef Py_ssize_t item = self.item, row_bytes = self.n * self.item
        cdef int64_t i
        cdef char *y
        out = _np_empty(self.out_shape, self.out_dtype)
        try:
            _acquire(views, &held, out, PyBUF_WRITABLE)
            _acquire_input(views, &held, x, item, self.copy)
            _acquire_input(views, &held, w, item, self.copy)
            if bias is not None:
                _acquire_input(views, &held, bias, item, self.copy)
            if (views[0].len < self.m * row_bytes or views[1].len < self.m * self.k * item
                    or views[2].len < self.n * self.k * item
                    or (held == 4 and views[3].len < row_bytes)):
                raise ValueError("LinearForward: buffer too small")
            y = <char *>views[0].buf
            with nogil:
                if held == 4:   # the bias in every row, then the product added
                    for i in range(self.m):
                        memcpy(y + i * row_bytes, views[3].buf, row_bytes)
                fc_gemm_small(self.dtype, self.m, self.n, self.k, views[1].buf, self.k, 1,
                              views[2].buf, 1, self.k, y, self.n, held == 4)
        finally:
            _release(views, held)
        return out


cdef fc_conv_schedule _schedule(bint per_image, bint threads_over_images,
                               bint stream_stores, bint pointwise) noexcept:
    cdef fc_conv_schedule s
    s.per_image = per_image
    s.threads_over_images = threads_over_images
    s.stream_stores = stream_stores
    s.pointwise = pointwise
    return s


def conv_workspace_size(dtype_char, Geometry geom not None, int64_t batch, int64_t c_out,
                        bint per_image, int nthreads):
    """Elements of scratch conv_forward needs ('f' or 'd')."""
    cdef fc_geometry g = geom.g
    cdef fc_conv_schedule s = _schedule(per_image, False, False, False)
    return fc_conv_workspace(_dtype_of_char(dtype_char), &g, batch, c_out, &s, nthreads)


cdef int _check_conv_buffers(str op, fc_geometry *g, int64_t batch, int64_t groups,
                             int64_t c_out, Py_ssize_t x_len, Py_ssize_t w_len,
                             Py_ssize_t bias_len, Py_ssize_t y_len) except -1:
    """The checks both conv forward bridges make, before sizing their scratch
    (which divides by groups): groups divide the channels; x, w, bias (empty
    or C_out values) and y (batch, C_out, L) hold what the kernel reads and
    writes."""
    if groups <= 0 or g.channels % groups or c_out % groups:
        raise ValueError(f"{op}: channels not divisible by groups")
    if (x_len < batch * g.channels * _prod3(g.in_)
            or w_len < c_out * (g.channels // groups) * _prod3(g.kernel)
            or y_len < batch * c_out * _prod3(g.out)
            or (bias_len != 0 and bias_len < c_out)):
        raise ValueError(f"{op}: buffer too small")
    return 0


cdef int _run_conv_forward(fc_dtype dtype, Geometry geom, fc_conv_schedule *s,
                           int64_t batch, int64_t groups, int64_t c_out,
                           const void *x, Py_ssize_t x_len, const void *w, Py_ssize_t w_len,
                           const void *bias, Py_ssize_t bias_len, void *y, Py_ssize_t y_len,
                           void *ws, Py_ssize_t ws_len, int64_t *offsets,
                           Py_ssize_t offsets_len, int nthreads) except -1:
    """The implicit-GEMM conv ConvForward.run runs, with its checks: buffer
    lengths in elements, bias_len 0 for no bias."""
    cdef fc_geometry g = geom.g
    cdef int status
    cdef int64_t taps = _prod3(g.kernel), l = _prod3(g.out)
    cdef int64_t need
    if batch <= 0 or l == 0 or c_out == 0 or g.channels == 0:
        return 0
    _check_conv_buffers("conv_forward", &g, batch, groups, c_out, x_len, w_len, bias_len,
                        y_len)
    need = fc_conv_workspace(dtype, &g, batch, c_out, s, nthreads)
    if ws_len < need or offsets_len < g.channels * taps:
        raise ValueError("conv_forward: buffer too small")
    if bias_len == 0:
        bias = NULL
    with nogil:
        status = fc_conv_forward(dtype, x, batch, &g, groups, w, bias, c_out, y, s, ws,
                                 offsets, nthreads)
    _raise_if_stopped()
    if status < 0:
        raise ValueError(f"conv_forward: pointwise schedule for a geometry that is not "
                         f"pointwise: {geom}")
    return 0


_np_empty = __import__("numpy").empty
_ndarray = __import__("numpy").ndarray
_UINT8 = __import__("numpy").dtype("uint8")
# The results' alignment (fastconv._workspace.ALIGNMENT): a cache line, so
# the kernels write whole aligned vectors.
cdef Py_ssize_t _RESULT_ALIGNMENT = 64


cdef int _acquire(Py_buffer *views, int *held, object arr, int flags) except -1:
    """Hold arr's buffer in views[held] (a C-contiguous ndarray: NumPy
    refuses any other layout a simple buffer) and count it in held."""
    PyObject_GetBuffer(arr, &views[held[0]], flags)
    held[0] += 1
    return 0


cdef bint _c_contiguous_aligned(const Py_buffer *view, Py_ssize_t item) noexcept:
    """Whether a strided buffer is what the kernels read: items of `item`
    bytes, C-contiguous (a stride along an axis of length 1 never matters)
    and aligned to its item."""
    cdef int i
    cdef Py_ssize_t expected = item
    if view.itemsize != item or <size_t>view.buf % <size_t>item:
        return False
    for i in range(view.ndim - 1, -1, -1):
        if view.shape[i] == 0:
            return True
        if view.shape[i] != 1 and view.strides[i] != expected:
            return False
        expected *= view.shape[i]
    return True


cdef int _acquire_input(Py_buffer *views, int *held, object arr, Py_ssize_t item,
                        object copy) except -1:
    """Hold the ndarray arr's buffer in views[held] as the kernels read it;
    an array of any other layout or alignment is replaced by copy(arr) (a
    C-contiguous aligned copy, held by the buffer).  Its dtype is the
    caller's to check (the ops' memoised checks): only native float arrays
    reach here."""
    PyObject_GetBuffer(arr, &views[held[0]], PyBUF_STRIDES)
    if _c_contiguous_aligned(&views[held[0]], item):
        held[0] += 1
        return 0
    PyBuffer_Release(&views[held[0]])
    return _acquire(views, held, copy(arr), PyBUF_SIMPLE)


cdef class KernelCall:
    """What every typed call object shares (ConvForward, ConvDataGrad,
    PoolForward): the ops build one per distinct call and keep it with their
    memoised shape-only work, so the dtype, geometry and schedule are typed
    once and run() does no fused-type dispatch, keyword parsing or buffer
    format parsing.  run() takes C-contiguous arrays of the object's dtype
    (the ops' memoised checks made them so) and checks their lengths."""
    cdef fc_dtype dtype
    cdef Py_ssize_t item
    cdef Geometry geom

    def __init__(self, dtype_char, Geometry geom not None):
        self.dtype = _dtype_of_char(dtype_char)
        self.item = sizeof(float) if self.dtype == FC_FLOAT32 else sizeof(double)
        self.geom = geom


cdef void _release(Py_buffer *views, int held) noexcept:
    cdef int i
    for i in range(held):
        PyBuffer_Release(&views[i])


cdef class ConvForward(KernelCall):
    """The implicit-GEMM conv forward (fc_conv_forward) as a call object
    (KernelCall), with its schedule: one GEMM per image or the images side
    by side; per image, whether each thread takes whole images, writes with
    streaming stores, reads a pointwise conv's images in place
    (fc_conv_schedule in csrc/fastconv.h).  run() checks every length
    against the geometry before the kernel runs."""
    cdef fc_conv_schedule s
    cdef int64_t groups, c_out
    # forward()'s: what the memoised call decided, and the op's fallbacks.
    cdef tuple result_shape
    cdef object result_dtype, copy, allocate
    cdef Py_ssize_t result_bytes
    cdef int nthreads
    cdef bint aligned_result

    def __init__(self, dtype_char, Geometry geom not None, int64_t groups, int64_t c_out, *,
                 bint per_image, bint threads_over_images=False, bint stream_stores=False,
                 bint pointwise=False):
        KernelCall.__init__(self, dtype_char, geom)
        self.groups, self.c_out = groups, c_out
        self.s = _schedule(per_image, threads_over_images, stream_stores, pointwise)
        self.result_shape = None

    def whole_call(self, tuple result_shape, int nthreads, bint aligned_result, copy,
                   allocate):
        """Let forward() run whole calls: into a fresh result of
        result_shape (N, C_out, *out) on nthreads threads, starting on a
        cache line when aligned_result (else NumPy's alignment); copy(arr)
        gives the C-contiguous aligned copy of an input of another layout,
        allocate() the result when NumPy could not (it raises the op's
        MemoryError, or succeeds on a retry)."""
        self.result_shape, self.nthreads = result_shape, nthreads
        self.aligned_result = aligned_result
        self.result_dtype = __import__("numpy").dtype(
            "f" if self.dtype == FC_FLOAT32 else "d")
        self.result_bytes = _prod_tuple(result_shape) * self.item
        self.copy, self.allocate = copy, allocate
        return self

    def forward(self, x, w, bias, scratch):
        """A whole conv forward (after whole_call): the fresh aligned
        C-contiguous result of x (result_shape's batch of images) and w,
        plus bias (None for none), all native arrays of the object's dtype
        in any layout (others are copied first).  `scratch` as in run()."""
        cdef Py_buffer views[5]
        cdef int held = 0
        cdef Py_ssize_t item = self.item
        if self.result_shape is None:
            raise ValueError("ConvForward.forward: whole_call() was not made")
        out = self._result()
        try:
            _acquire(views, &held, out, PyBUF_WRITABLE)
            _acquire_input(views, &held, x, item, self.copy)
            _acquire_input(views, &held, w, item, self.copy)
            _acquire(views, &held, scratch, PyBUF_WRITABLE)
            if bias is not None:
                _acquire_input(views, &held, bias, item, self.copy)
            self._run(views, held == 5, self.result_shape[0], self.nthreads)
        finally:
            _release(views, held)
        return out

    cdef object _result(self):
        """forward()'s fresh result: from a cache line (aligned_result), or
        as NumPy allocates it, aligned to its items (the kernels stream only
        tiles that start on a cache line; every other store takes any
        address)."""
        try:
            if not self.aligned_result:
                return _np_empty(self.result_shape, self.result_dtype)
            raw = _np_empty(self.result_bytes + _RESULT_ALIGNMENT, _UINT8)
        except MemoryError:
            return self.allocate()
        return aligned_view(raw, self.result_shape, self.result_dtype, self.result_bytes,
                            _RESULT_ALIGNMENT)

    cdef int _run(self, Py_buffer *views, bint with_bias, int64_t batch,
                  int nthreads) except -1:
        """The kernel on held buffers: views[0] y, [1] x, [2] w, [3] the
        scratch, [4] the bias when with_bias."""
        cdef Py_ssize_t item = self.item, ws_bytes
        cdef fc_geometry g = self.geom.g
        ws_bytes = fc_conv_workspace(self.dtype, &g, batch, self.c_out, &self.s, nthreads)
        ws_bytes = (ws_bytes * item + 63) // 64 * 64
        if ws_bytes > views[3].len:
            raise ValueError("conv_forward: buffer too small")
        return _run_conv_forward(self.dtype, self.geom, &self.s, batch, self.groups, self.c_out,
                                 views[1].buf, views[1].len // item,
                                 views[2].buf, views[2].len // item,
                                 views[4].buf if with_bias else NULL,
                                 views[4].len // item if with_bias else 0,
                                 views[0].buf, views[0].len // item,
                                 views[3].buf, ws_bytes // item,
                                 <int64_t *>(<char *>views[3].buf + ws_bytes),
                                 (views[3].len - ws_bytes) // <Py_ssize_t>sizeof(int64_t),
                                 nthreads)

    def run(self, x, int64_t batch, w, bias, y, scratch, int nthreads):
        """Convolve `batch` images x into y (batch, C_out, L), plus bias per
        output channel (None for none), on nthreads threads.  `scratch`
        (bytes) holds the workspace, then, from the next 64-byte boundary,
        the offsets table."""
        cdef Py_buffer views[5]
        cdef int held = 0
        try:
            _acquire(views, &held, y, PyBUF_WRITABLE)
            _acquire(views, &held, x, PyBUF_SIMPLE)
            _acquire(views, &held, w, PyBUF_SIMPLE)
            _acquire(views, &held, scratch, PyBUF_WRITABLE)
            if bias is not None:
                _acquire(views, &held, bias, PyBUF_SIMPLE)
            self._run(views, held == 5, batch, nthreads)
        finally:
            _release(views, held)


cdef int _check_winograd(int64_t status, str op, Geometry geom) except -1:
    """The Winograd kernels (and their workspace sizes) return -1, writing
    nothing, for a geometry their transforms are not written for."""
    if status < 0:
        raise ValueError(f"{op}: Winograd computes a 2-D 3x3 kernel, stride 1, dilation 1 "
                         f"only; got geometry {geom}")
    return 0


def conv_winograd_workspace_size(dtype_char, Geometry geom not None, int64_t groups,
                                 int64_t c_out, int nthreads):
    """Elements of scratch conv_winograd needs ('f' or 'd')."""
    cdef fc_geometry g = geom.g
    cdef int64_t need = fc_conv_winograd_workspace(_dtype_of_char(dtype_char), &g, groups,
                                                   c_out, nthreads)
    _check_winograd(need, "conv_winograd", geom)
    return need


def conv_winograd(const real[::1] x, int64_t batch, Geometry geom not None, int64_t groups,
                  const real[::1] w, const real[::1] bias, int64_t c_out, real[::1] y,
                  real[::1] ws, int nthreads):
    """Winograd F(2x2, 3x3) conv of `batch` images into y (batch, C_out, L),
    plus bias per output channel unless `bias` is empty; 2-D, 3x3 kernel,
    stride 1 and dilation 1 only."""
    cdef fc_geometry g = geom.g
    cdef int64_t l = _prod3(g.out)
    cdef int64_t need
    cdef const real *bias_ptr = NULL
    cdef int status
    if batch <= 0 or l == 0 or c_out == 0 or g.channels == 0:
        return
    _check_conv_buffers("conv_winograd", &g, batch, groups, c_out, x.shape[0], w.shape[0],
                        bias.shape[0], y.shape[0])
    need = fc_conv_winograd_workspace(_dtype(<real>0), &g, groups, c_out, nthreads)
    _check_winograd(need, "conv_winograd", geom)
    if ws.shape[0] < need:
        raise ValueError("conv_winograd: buffer too small")
    if bias.shape[0]:
        bias_ptr = &bias[0]
    with nogil:
        status = fc_conv_winograd(_dtype(<real>0), &x[0], batch, &g, groups, &w[0], bias_ptr,
                                  c_out, &y[0], &ws[0], nthreads)
    _raise_if_stopped()
    _check_winograd(status, "conv_winograd", geom)


def conv_data_grad_workspace_size(dtype_char, Geometry geom not None, int nthreads):
    """Elements of scratch conv_data_grad needs ('f' or 'd')."""
    cdef fc_geometry g = geom.g
    return fc_conv_data_grad_workspace(_dtype_of_char(dtype_char), &g, nthreads)


cdef int _run_conv_data_grad(fc_dtype dtype, Geometry geom, fc_conv_schedule *s,
                             int64_t batch, int64_t groups, int64_t c_out,
                             const void *gout, Py_ssize_t gout_len, const void *w,
                             Py_ssize_t w_len, void *gx, Py_ssize_t gx_len, void *ws,
                             Py_ssize_t ws_len, int nthreads) except -1:
    """The GEMM + col2im data gradient both entries (conv_data_grad,
    ConvDataGrad.run) run, with their checks: buffer lengths in elements."""
    cdef fc_geometry g = geom.g
    cdef int64_t taps = _prod3(g.kernel), l = _prod3(g.out), need
    if batch <= 0 or g.channels == 0 or _prod3(g.in_) == 0:
        return 0
    if groups <= 0 or g.channels % groups or c_out % groups:
        raise ValueError("conv_data_grad: channels not divisible by groups")
    need = fc_conv_data_grad_workspace(dtype, &g, nthreads)
    if (gout_len < batch * c_out * l or w_len < c_out * (g.channels // groups) * taps
            or gx_len < batch * g.channels * _prod3(g.in_) or ws_len < need
            or (c_out and (gout_len == 0 or w_len == 0))):
        raise ValueError("conv_data_grad: buffer too small")
    with nogil:
        fc_conv_data_grad(dtype, gout if c_out else NULL, batch, &g, groups,
                          w if c_out else NULL, c_out, gx, s, ws, nthreads)
    _raise_if_stopped()
    return 0


def conv_data_grad(const real[::1] gout, int64_t batch, Geometry geom not None,
                   int64_t groups, const real[::1] w, int64_t c_out, real[::1] gx,
                   real[::1] ws, int nthreads, *, bint threads_over_images=False):
    """grad_input (batch, C_in, in) of a conv by GEMM + col2im, image by image
    (each thread whole images when threads_over_images).  (ConvDataGrad is
    the same call for an op's per-call path.)"""
    cdef fc_conv_schedule s = _schedule(True, threads_over_images, False, False)
    _run_conv_data_grad(_dtype(<real>0), geom, &s, batch, groups, c_out,
                        &gout[0] if gout.shape[0] else NULL, gout.shape[0],
                        &w[0] if w.shape[0] else NULL, w.shape[0],
                        &gx[0] if gx.shape[0] else NULL, gx.shape[0],
                        &ws[0] if ws.shape[0] else NULL, ws.shape[0], nthreads)


cdef class ConvDataGrad(KernelCall):
    """conv_data_grad as a call object (KernelCall): a transposed conv's
    forward."""
    cdef fc_conv_schedule s
    cdef int64_t groups, c_out

    def __init__(self, dtype_char, Geometry geom not None, int64_t groups, int64_t c_out, *,
                 bint threads_over_images=False):
        KernelCall.__init__(self, dtype_char, geom)
        self.groups, self.c_out = groups, c_out
        self.s = _schedule(True, threads_over_images, False, False)

    def run(self, gout, int64_t batch, w, gx, scratch, int nthreads):
        """conv_data_grad(gout, batch, geom, groups, w, c_out, gx, ws,
        nthreads) with this object's schedule; `scratch` (bytes) is the
        workspace."""
        cdef Py_buffer views[4]
        cdef int held = 0
        cdef Py_ssize_t item = self.item
        try:
            _acquire(views, &held, gout, PyBUF_SIMPLE)
            _acquire(views, &held, w, PyBUF_SIMPLE)
            _acquire(views, &held, gx, PyBUF_WRITABLE)
            _acquire(views, &held, scratch, PyBUF_WRITABLE)
            _run_conv_data_grad(self.dtype, self.geom, &self.s, batch, self.groups, self.c_out,
                                views[0].buf, views[0].len // item,
                                views[1].buf, views[1].len // item,
                                views[2].buf, views[2].len // item,
                                views[3].buf, views[3].len // item, nthreads)
        finally:
            _release(views, held)


def conv_weight_grad_workspace_size(dtype_char, int64_t m, int64_t n, int nthreads):
    """Elements of workspace conv_weight_grad needs for an m x n gradient."""
    return fc_conv_weight_grad_workspace(_dtype_of_char(dtype_char), m, n, nthreads)


def conv_winograd_weight_grad_workspace_size(dtype_char, Geometry geom not None, int64_t m,
                                             int nthreads):
    """Elements of workspace conv_weight_grad(..., winograd=True) needs."""
    cdef fc_geometry g = geom.g
    cdef int64_t need = fc_conv_winograd_weight_grad_workspace(_dtype_of_char(dtype_char), &g,
                                                               m, nthreads)
    _check_winograd(need, "conv_weight_grad", geom)
    return need


def conv_weight_grad(const real[::1] x, int64_t x_offset, int64_t x_image_stride,
                     const real[::1] gout, int64_t gout_offset, int64_t gout_image_stride,
                     int64_t batch, Geometry geom not None, real[:, :] grad_w, real[::1] ws,
                     int nthreads, bint winograd=False):
    """grad_w (m x K) += grad_out @ columns.T for `batch` images, the columns
    never built: image b's channel c is at x[x_offset + b*x_image_stride +
    c*plane], its grad_output row o at gout[gout_offset + b*gout_image_stride
    + o*L].  winograd: by Winograd F(2x2, 3x3) (2-D 3x3, stride 1,
    dilation 1 only)."""
    cdef fc_geometry g = geom.g
    cdef int64_t m = grad_w.shape[0], l = _prod3(g.out), plane = _prod3(g.in_)
    cdef int64_t need
    if grad_w.shape[1] != g.channels * _prod3(g.kernel):
        raise ValueError("grad_w must have channels * taps columns")
    if batch <= 0 or m == 0 or g.channels == 0 or l == 0:
        return
    if grad_w.shape[1] > 1 and grad_w.strides[1] != sizeof(real):
        raise ValueError("grad_w must have unit column stride")
    if (x_offset < 0 or x_image_stride < 0
            or x_offset + (batch - 1) * x_image_stride + g.channels * plane > x.shape[0]):
        raise ValueError("image buffer too small")
    if (gout_offset < 0 or gout_image_stride < 0
            or gout_offset + (batch - 1) * gout_image_stride + m * l > gout.shape[0]):
        raise ValueError("grad_output buffer too small")
    if winograd:
        need = fc_conv_winograd_weight_grad_workspace(_dtype(<real>0), &g, m, nthreads)
        _check_winograd(need, "conv_weight_grad", geom)
    else:
        need = fc_conv_weight_grad_workspace(_dtype(<real>0), m, grad_w.shape[1], nthreads)
    if ws.shape[0] < need:
        raise ValueError("weight-gradient workspace too small")
    cdef int64_t ldw = grad_w.strides[0] // sizeof(real)
    cdef int status = 0
    with nogil:
        if winograd:
            status = fc_conv_winograd_weight_grad(_dtype(<real>0), &x[x_offset], x_image_stride,
                                                  &gout[gout_offset], gout_image_stride,
                                                  batch, &g, m, &grad_w[0, 0], ldw, &ws[0],
                                                  nthreads)
        else:
            fc_conv_weight_grad(_dtype(<real>0), &x[x_offset], x_image_stride,
                                &gout[gout_offset], gout_image_stride, batch, &g, m,
                                &grad_w[0, 0], ldw, &ws[0], nthreads)
    _raise_if_stopped()
    _check_winograd(status, "conv_weight_grad", geom)


def aligned_view(raw, shape, dtype, Py_ssize_t nbytes, Py_ssize_t alignment):
    """The C-contiguous array of `shape` and `dtype` (`nbytes` bytes) in the
    fresh uint8 array `raw` (nbytes + alignment bytes), starting on an
    `alignment`-byte boundary: one view, made without NumPy's slicing and
    dtype-view calls."""
    cdef Py_buffer view
    cdef Py_ssize_t start
    PyObject_GetBuffer(raw, &view, PyBUF_SIMPLE)
    start = (-<size_t>view.buf) % <size_t>alignment
    PyBuffer_Release(&view)
    if start + nbytes > view.len:
        raise ValueError(f"aligned_view: {view.len} bytes hold no aligned {nbytes}")
    return _ndarray(shape, dtype, raw, start)


def simd_compiled():
    """SIMD paths compiled into this build (the CPU may lack some)."""
    return [name for i, name in enumerate(SIMD_LEVELS) if fc_simd_compiled(i)]


def simd_supported(level):
    return [name for i, name in enumerate(SIMD_LEVELS) if fc_simd_supported(i)]


def simd_select(name):
    """Force a GEMM micro-kernel ('generic', 'avx2', 'avx512') or None = best."""
    level = -1 if name is None else SIMD_LEVELS.index(name)
    got = fc_simd_select(level)
    if got < 0:
        raise ValueError(f"SIMD path {name!r} is not supported by this CPU/build")
    return SIMD_LEVELS[got]


def simd_active():
    return SIMD_LEVELS[fc_simd_active()]


def simd_calls():
    """Kernel calls each SIMD path has run since the process started."""
    return {name: fc_simd_calls(i) for i, name in enumerate(SIMD_LEVELS)}


def openmp_max_threads():
    """omp_get_max_threads() of the calling thread (1 without OpenMP)."""
    return fc_openmp_max_threads()


def build_info():
    """What the kernels were compiled with."""
    return {
        "compiler": fc_compiler().decode(),
        "flags": fc_build_flags().decode(),
        "openmp": bool(fc_openmp_enabled()),
        "target_isa": fc_target_isa().decode(),
        "openmp_max_threads": fc_openmp_max_threads(),
    }


# ---------------------------------------------------------------------------
# Pooling.  geom is a Geometry as above with channels = N*C planes; the
# checks below are only those that keep a wrong call inside its buffers.
# ---------------------------------------------------------------------------

cdef int _check_pool_geometry(const fc_geometry *g) except -1:
    cdef int i
    for i in range(3):
        if g.kernel[i] < 1 or g.stride[i] < 1 or g.dilation[i] < 1 or g.pad[i] < 0:
            raise ValueError("pooling geometry needs positive kernel, stride and "
                             "dilation and non-negative padding")
        if g.in_[i] < 0 or g.out[i] < 0:
            raise ValueError("pooling sizes must be non-negative")
    return 0


cdef int _check_pool(Py_ssize_t src_size, int64_t src_plane, Py_ssize_t dst_size,
                     int64_t dst_plane, const fc_geometry *g) except -1:
    _check_pool_geometry(g)
    if src_size < g.channels * src_plane:
        raise ValueError(f"source buffer holds {src_size} elements, "
                         f"needs {g.channels * src_plane}")
    if dst_size < g.channels * dst_plane:
        raise ValueError(f"destination buffer holds {dst_size} elements, "
                         f"needs {g.channels * dst_plane}")
    return 0


def max_pool(const real[::1] x, Geometry geom not None, real[::1] y, indices, int nthreads,
             bint adaptive=False):
    """Max pooling of geom's planes into y (adaptive bins when `adaptive`:
    then geom's window fields are unused); the argmax into `indices` (an
    int64 buffer like y) unless it is None."""
    cdef fc_geometry g = geom.g
    cdef int64_t[::1] ind
    cdef int64_t *ind_ptr = NULL
    _check_pool(x.shape[0], _prod3(g.in_), y.shape[0], _prod3(g.out), &g)
    if indices is not None:
        ind = indices
        if ind.shape[0] < g.channels * _prod3(g.out):
            raise ValueError("indices buffer too small")
    if g.channels == 0 or _prod3(g.out) == 0:
        return
    if _prod3(g.in_) == 0:
        raise ValueError("cannot pool an empty plane into a non-empty output")
    if indices is not None:
        ind_ptr = &ind[0]
    with nogil:
        if adaptive:
            fc_adaptive_max_pool(_dtype(<real>0), &x[0], &g, &y[0], ind_ptr, nthreads)
        else:
            fc_max_pool(_dtype(<real>0), &x[0], &g, &y[0], ind_ptr, nthreads)
    _raise_if_stopped()


def max_pool_backward(const real[::1] gy, const int64_t[::1] indices, Geometry geom not None,
                      real[::1] gx, int nthreads):
    """Scatter-add gy into gx (overwritten) at `indices`.  Every index is
    checked to lie inside its plane first: returns -1 on success, else the
    flat position of a bad index, with gx untouched."""
    cdef fc_geometry g = geom.g
    cdef int64_t n_out, bad
    _check_pool(gy.shape[0], _prod3(g.out), gx.shape[0], _prod3(g.in_), &g)
    n_out = g.channels * _prod3(g.out)
    if indices.shape[0] < n_out:
        raise ValueError("indices buffer too small")
    if n_out > 0:
        with nogil:
            bad = fc_pool_find_bad_index(&indices[0], n_out, _prod3(g.in_), nthreads)
        if bad >= 0:
            return bad
    if g.channels == 0 or _prod3(g.in_) == 0:
        return -1
    with nogil:
        if n_out == 0:
            for i in range(g.channels * _prod3(g.in_)):
                gx[i] = 0
        else:
            fc_max_pool_backward(_dtype(<real>0), &gy[0], &indices[0], &g, &gx[0], nthreads)
    _raise_if_stopped()
    return -1


def avg_pool(const real[::1] x, Geometry geom not None, bint count_include_pad,
             int64_t divisor_override, real[::1] y, int nthreads):
    """Average pooling of geom's planes into y (divisor_override 0 = none)."""
    cdef fc_geometry g = geom.g
    _check_pool(x.shape[0], _prod3(g.in_), y.shape[0], _prod3(g.out), &g)
    if g.channels == 0 or _prod3(g.out) == 0:
        return
    if _prod3(g.in_) == 0:
        raise ValueError("cannot pool an empty plane into a non-empty output")
    with nogil:
        fc_avg_pool(_dtype(<real>0), &x[0], &g, count_include_pad, divisor_override, &y[0],
                    nthreads)
    _raise_if_stopped()


cdef enum PoolKind:
    POOL_MAX, POOL_AVG

POOL_KINDS = {"max": POOL_MAX, "avg": POOL_AVG}

_INT64 = __import__("numpy").dtype("int64")


cdef void _pool_forward(PoolKind kind, fc_dtype dtype, const void *x, const fc_geometry *g,
                        bint count_include_pad, int64_t divisor, void *y, int64_t *indices,
                        int nthreads) noexcept nogil:
    """The pooling forward kernel of `kind`."""
    if kind == POOL_MAX:
        fc_max_pool(dtype, x, g, y, indices, nthreads)
    else:
        fc_avg_pool(dtype, x, g, count_include_pad, divisor, y, nthreads)


cdef class PoolForward(KernelCall):
    """A pooling forward as a call object (KernelCall) that also allocates
    its results: run(x, nthreads) returns the output of `out_shape`, with
    the int64 indices beside it for a max pooling `with_indices`.  `kind` is
    a POOL_KINDS key; `flag` is avg's count_include_pad, `divisor` its
    divisor_override (0 = none).  (The adaptive poolings still take the
    fused-type entries.)"""
    cdef PoolKind kind
    cdef bint with_indices, flag
    cdef int64_t divisor, in_len, out_len
    cdef tuple out_shape
    cdef object out_dtype

    def __init__(self, dtype_char, Geometry geom not None, tuple out_shape, str kind, *,
                 bint with_indices=False, bint flag=False, int64_t divisor=0):
        KernelCall.__init__(self, dtype_char, geom)
        cdef fc_geometry *g = &self.geom.g
        self.kind = POOL_KINDS[kind]
        _check_pool_geometry(g)
        if with_indices and self.kind != POOL_MAX:
            raise ValueError(f"PoolForward: {kind} pooling has no indices")
        self.in_len, self.out_len = g.channels * _prod3(g.in_), g.channels * _prod3(g.out)
        if self.out_len and _prod3(g.in_) == 0:
            raise ValueError("cannot pool an empty plane into a non-empty output")
        if _prod_tuple(out_shape) != self.out_len:
            raise ValueError(f"PoolForward: out_shape {out_shape} does not hold "
                             f"{self.out_len} values")
        self.with_indices, self.flag, self.divisor = with_indices, flag, divisor
        self.out_shape = out_shape
        self.out_dtype = __import__("numpy").dtype(dtype_char)

    def run(self, x, int nthreads):
        """The pooled x (a C-contiguous array of the object's dtype and
        geometry), fresh, and its indices when with_indices."""
        cdef Py_buffer views[3]
        cdef int held = 0
        cdef int64_t *indices_ptr = NULL
        out = _np_empty(self.out_shape, self.out_dtype)
        indices = _np_empty(self.out_shape, _INT64) if self.with_indices else None
        try:
            _acquire(views, &held, x, PyBUF_SIMPLE)
            _acquire(views, &held, out, PyBUF_WRITABLE)
            if indices is not None:
                _acquire(views, &held, indices, PyBUF_WRITABLE)
                indices_ptr = <int64_t *>views[2].buf
            if views[0].len < self.in_len * self.item:
                raise ValueError(f"PoolForward: input holds {views[0].len} bytes, needs "
                                 f"{self.in_len * self.item}")
            if self.out_len:
                with nogil:
                    _pool_forward(self.kind, self.dtype, views[0].buf, &self.geom.g, self.flag,
                                  self.divisor, views[1].buf, indices_ptr, nthreads)
                _raise_if_stopped()
        finally:
            _release(views, held)
        return (out, indices) if self.with_indices else out


cdef int64_t _prod_tuple(tuple shape) except -1:
    cdef int64_t n = 1
    for v in shape:
        n *= v
    return n


def avg_pool_backward(const real[::1] gy, Geometry geom not None, bint count_include_pad,
                      int64_t divisor_override, real[::1] gx, int nthreads):
    """Gradient of avg_pool: gy spread over each window into gx (overwritten)."""
    cdef fc_geometry g = geom.g
    _check_pool(gy.shape[0], _prod3(g.out), gx.shape[0], _prod3(g.in_), &g)
    if g.channels == 0 or _prod3(g.in_) == 0:
        return
    with nogil:
        if _prod3(g.out) == 0:
            for i in range(g.channels * _prod3(g.in_)):
                gx[i] = 0
        else:
            fc_avg_pool_backward(_dtype(<real>0), &gy[0], &g, count_include_pad,
                                 divisor_override, &gx[0], nthreads)
    _raise_if_stopped()


def adaptive_avg_pool(const real[::1] x, Geometry geom not None, real[::1] y, int nthreads):
    """Adaptive average pooling of geom's planes into y."""
    cdef fc_geometry g = geom.g
    _check_pool(x.shape[0], _prod3(g.in_), y.shape[0], _prod3(g.out), &g)
    if g.channels == 0 or _prod3(g.out) == 0:
        return
    if _prod3(g.in_) == 0:
        raise ValueError("cannot pool an empty plane into a non-empty output")
    with nogil:
        fc_adaptive_avg_pool(_dtype(<real>0), &x[0], &g, &y[0], nthreads)
    _raise_if_stopped()


def global_avg_pool(const real[::1] x, Geometry geom not None, bint prefetch, real[::1] y,
                    int nthreads):
    """The mean of each of geom's planes into y (adaptive pooling to 1x1x1);
    prefetch: prefetch the planes ahead (inputs not in cache)."""
    cdef fc_geometry g = geom.g
    if _prod3(g.out) != 1:
        raise ValueError(f"global_avg_pool: the output must be one value per plane, "
                         f"got {_prod3(g.out)}")
    _check_pool(x.shape[0], _prod3(g.in_), y.shape[0], 1, &g)
    if g.channels == 0:
        return
    if _prod3(g.in_) == 0:
        raise ValueError("cannot pool an empty plane into a non-empty output")
    with nogil:
        fc_global_avg_pool(_dtype(<real>0), &x[0], &g, prefetch, &y[0], nthreads)


def adaptive_avg_pool_backward(const real[::1] gy, Geometry geom not None, real[::1] gx,
                               int nthreads):
    """Gradient of adaptive_avg_pool into gx (overwritten)."""
    cdef fc_geometry g = geom.g
    _check_pool(gy.shape[0], _prod3(g.out), gx.shape[0], _prod3(g.in_), &g)
    if g.channels == 0 or _prod3(g.in_) == 0:
        return
    with nogil:
        if _prod3(g.out) == 0:
            for i in range(g.channels * _prod3(g.in_)):
                gx[i] = 0
        else:
            fc_adaptive_avg_pool_backward(_dtype(<real>0), &gy[0], &g, &gx[0], nthreads)
    _raise_if_stopped()


# ---------------------------------------------------------------------------
# Interpolation.  index/weight hold each axis's 2-entry taps (D, then H, then
# W), taps the count used per axis; every index is checked to lie inside its
# axis, and the W taps to be neighbours in order, here, since the kernel
# trusts them.
# ---------------------------------------------------------------------------

cdef int _check_interpolate(const fc_geometry *g, const int64_t[::1] index,
                            Py_ssize_t weight_size, tuple taps, int *taps_c) except -1:
    cdef int64_t entries = 2 * (g.out[0] + g.out[1] + g.out[2])
    cdef int64_t base = 0, i
    cdef int axis
    if index.shape[0] < entries or weight_size < entries:
        raise ValueError(f"interpolation tables hold {index.shape[0]} and {weight_size} "
                         f"entries, need {entries}")
    for axis in range(3):
        taps_c[axis] = taps[axis]
        if taps_c[axis] not in (1, 2):
            raise ValueError(f"interpolation taps must be 1 or 2, got {taps}")
        for i in range(base, base + 2 * g.out[axis]):
            if (i - base) % 2 < taps_c[axis] and not 0 <= index[i] < g.in_[axis]:
                raise ValueError(f"interpolation index {index[i]} outside axis {axis} "
                                 f"of size {g.in_[axis]}")
        base += 2 * g.out[axis]
    base -= 2 * g.out[2]
    for i in range(g.out[2]):   # W taps: neighbours, in order (fastconv.h)
        if (i > 0 and index[base + 2 * i] < index[base + 2 * i - 2]) or (
                taps_c[2] == 2 and not 0 <= index[base + 2 * i + 1] - index[base + 2 * i] <= 1):
            raise ValueError(f"interpolation W taps of output {i} are not neighbours in "
                             f"order: {index[base + 2 * i]}, {index[base + 2 * i + 1]}")
    return 0


def interpolate(const real[::1] x, Geometry geom not None, const int64_t[::1] index,
                const real[::1] weight, tuple taps, real[::1] y, int nthreads):
    """Resample geom's planes into y by the separable tables index/weight."""
    cdef fc_geometry g = geom.g
    cdef int taps_c[3]
    _check_pool(x.shape[0], _prod3(g.in_), y.shape[0], _prod3(g.out), &g)
    if g.channels == 0 or _prod3(g.out) == 0:
        return
    _check_interpolate(&g, index, weight.shape[0], taps, taps_c)
    with nogil:
        fc_interpolate(_dtype(<real>0), &x[0], &g, &index[0], &weight[0], taps_c, &y[0],
                       nthreads)
    _raise_if_stopped()


def interpolate_backward(const real[::1] gy, Geometry geom not None, const int64_t[::1] index,
                         const real[::1] weight, tuple taps, real[::1] gx, int nthreads):
    """Gradient of interpolate into gx (overwritten)."""
    cdef fc_geometry g = geom.g
    cdef int taps_c[3]
    _check_pool(gy.shape[0], _prod3(g.out), gx.shape[0], _prod3(g.in_), &g)
    if g.channels == 0 or _prod3(g.in_) == 0:
        return
    if _prod3(g.out) == 0:
        with nogil:
            for i in range(g.channels * _prod3(g.in_)):
                gx[i] = 0
        return
    _check_interpolate(&g, index, weight.shape[0], taps, taps_c)
    with nogil:
        fc_interpolate_backward(_dtype(<real>0), &gy[0], &g, &index[0], &weight[0], taps_c,
                                &gx[0], nthreads)
    _raise_if_stopped()


# ---------------------------------------------------------------------------
# Deformable convolution: the column kernels (the GEMMs run through gemm()).
# geom is a conv Geometry (channels = C_in) with the 2-D sizes in its last
# two entries; columns are (C_in*kH*kW, batch*OH*OW).
# ---------------------------------------------------------------------------

cdef int _check_deform(const fc_geometry *g, int64_t batch, int64_t offset_groups,
                       Py_ssize_t image_size, Py_ssize_t offset_size, mask,
                       Py_ssize_t col_size) except -1:
    """Sizes of every buffer against the geometry (mask may be None)."""
    cdef int64_t kk = g.kernel[1] * g.kernel[2], L = g.out[1] * g.out[2]
    if g.in_[0] != 1 or g.out[0] != 1 or g.kernel[0] != 1:
        raise ValueError("deformable convolution is 2-D: leading sizes must be 1")
    if offset_groups < 1 or g.channels % offset_groups:
        raise ValueError(f"offset_groups={offset_groups} must divide C_in={g.channels}")
    if g.stride[1] < 1 or g.stride[2] < 1 or g.dilation[1] < 1 or g.dilation[2] < 1:
        raise ValueError("deformable convolution needs positive stride and dilation")
    if image_size < batch * g.channels * g.in_[1] * g.in_[2]:
        raise ValueError("image buffer too small")
    if offset_size < batch * 2 * offset_groups * kk * L:
        raise ValueError("offset buffer too small")
    if mask is not None and len(mask) < batch * offset_groups * kk * L:
        raise ValueError("mask buffer too small")
    if col_size < g.channels * kk * batch * L:
        raise ValueError("column buffer too small")
    return 0


def deform_im2col(const real[::1] x, const real[::1] offset, mask, int64_t batch,
                  Geometry geom not None, int64_t offset_groups, real[::1] col, int nthreads):
    """Bilinear samples of `batch` images at the offset taps (times mask
    unless it is None) into the columns `col` (overwritten)."""
    cdef fc_geometry g = geom.g
    cdef const real[::1] m
    cdef const real *mp = NULL
    _check_deform(&g, batch, offset_groups, x.shape[0], offset.shape[0], mask, col.shape[0])
    if batch <= 0 or g.channels == 0 or g.out[1] * g.out[2] == 0:
        return
    if g.in_[1] * g.in_[2] == 0:   # every sample is zero
        col[:g.channels * g.kernel[1] * g.kernel[2] * batch * g.out[1] * g.out[2]] = 0
        return
    if mask is not None:
        m = mask
        mp = &m[0]
    with nogil:
        fc_deform_im2col(_dtype(<real>0), &x[0], &offset[0], mp, batch, &g, offset_groups,
                         &col[0], nthreads)
    _raise_if_stopped()


def deform_col2im(const real[::1] gcol, const real[::1] offset, mask, int64_t batch,
                  Geometry geom not None, int64_t offset_groups, real[::1] gx, int nthreads):
    """Adjoint of deform_im2col: gcol scattered back into gx (overwritten)."""
    cdef fc_geometry g = geom.g
    cdef const real[::1] m
    cdef const real *mp = NULL
    _check_deform(&g, batch, offset_groups, gx.shape[0], offset.shape[0], mask,
                  gcol.shape[0])
    if batch <= 0 or g.channels == 0 or g.in_[1] * g.in_[2] == 0:
        return
    if g.out[1] * g.out[2] == 0:
        raise ValueError("deformable convolution with an empty output")
    if mask is not None:
        m = mask
        mp = &m[0]
    with nogil:
        fc_deform_col2im(_dtype(<real>0), &gcol[0], &offset[0], mp, batch, &g, offset_groups,
                         &gx[0], nthreads)
    _raise_if_stopped()


def deform_offset_mask_grad(const real[::1] gcol, const real[::1] x, const real[::1] offset,
                            mask, int64_t batch, Geometry geom not None, int64_t offset_groups,
                            real[::1] grad_offset, grad_mask, int nthreads):
    """Gradients of <gcol, columns> with respect to the offsets (into
    grad_offset) and the mask (into grad_mask, given exactly when mask is)."""
    cdef fc_geometry g = geom.g
    cdef const real[::1] m
    cdef real[::1] gm
    cdef const real *mp = NULL
    cdef real *gmp = NULL
    _check_deform(&g, batch, offset_groups, x.shape[0], offset.shape[0], mask, gcol.shape[0])
    if grad_offset.shape[0] < offset.shape[0] or (mask is None) != (grad_mask is None):
        raise ValueError("gradient buffers do not match offset and mask")
    if batch <= 0 or g.out[1] * g.out[2] == 0:
        return
    if g.channels == 0 or g.in_[1] * g.in_[2] == 0:   # every sample is zero
        grad_offset[:] = 0
        if grad_mask is not None:
            gm = grad_mask
            gm[:] = 0
        return
    if mask is not None:
        m = mask
        gm = grad_mask
        if gm.shape[0] < m.shape[0]:
            raise ValueError("grad_mask buffer too small")
        mp = &m[0]
        gmp = &gm[0]
    with nogil:
        fc_deform_offset_mask_grad(_dtype(<real>0), &gcol[0], &x[0], &offset[0], mp, batch,
                                   &g, offset_groups, &grad_offset[0], gmp, nthreads)
    _raise_if_stopped()


# ---------------------------------------------------------------------------
# Batch normalisation.  x, y, gy and gx are (batch, channels, spatial)
# flattened; the statistics and gradient sums are float64 (channels,) arrays
# whatever the dtype; y and gx may be None (statistics or sums only).
# ---------------------------------------------------------------------------

cdef int _check_batch_norm(Py_ssize_t size, int64_t batch, int64_t channels,
                           int64_t spatial, tuple vectors) except -1:
    """Every buffer against the (batch, channels, spatial) view."""
    if batch < 0 or channels < 0 or spatial < 0:
        raise ValueError(f"batch norm sizes must be non-negative, got "
                         f"{(batch, channels, spatial)}")
    if size < batch * channels * spatial:
        raise ValueError(f"batch norm buffer holds {size} elements, needs "
                         f"{batch * channels * spatial}")
    for v in vectors:
        if v < channels:
            raise ValueError(f"batch norm per-channel vector holds {v} values, needs "
                             f"{channels}")
    return 0


def batch_norm_forward(const real[::1] x, int64_t batch, int64_t channels, int64_t spatial,
                       bint compute_stats, double[::1] mean, double[::1] var,
                       const real[::1] weight, const real[::1] bias, double eps, bint relu,
                       y, int nthreads):
    """mean/var <- the batch statistics (compute_stats) or read; y (or None)
    <- the normalised x (with relu, then max(., 0))."""
    cdef real[::1] out
    cdef real *yp = NULL
    _check_batch_norm(x.shape[0], batch, channels, spatial,
                      (mean.shape[0], var.shape[0], weight.shape[0], bias.shape[0]))
    if y is not None:
        out = y
        _check_batch_norm(out.shape[0], batch, channels, spatial, ())
    if channels == 0 or batch * spatial == 0:
        if compute_stats and channels:
            raise ValueError("batch statistics need at least one value per channel")
        return
    if y is not None:
        yp = &out[0]
    with nogil:
        fc_batch_norm_forward(_dtype(<real>0), &x[0], batch, channels, spatial, compute_stats,
                              &mean[0], &var[0], &weight[0], &bias[0], eps, relu, yp,
                              nthreads)


def batch_norm_backward(const real[::1] gy, relu_output, const real[::1] x, int64_t batch,
                        int64_t channels, int64_t spatial, const double[::1] mean,
                        const double[::1] invstd, const real[::1] weight, bint batch_stats,
                        bint compute_sums, int64_t count, double[::1] sum_dy,
                        double[::1] sum_dy_xmu, gx, int nthreads):
    """sum_dy/sum_dy_xmu <- per-channel sums (compute_sums) or read; gx (or
    None) <- the input gradient, count values per channel.  relu_output (or
    None): the fused BatchNorm+ReLU forward's output, gy being ReLU's output
    gradient, masked where relu_output <= 0."""
    cdef real[::1] out
    cdef const real[::1] mask
    cdef real *gxp = NULL
    cdef const real *maskp = NULL
    _check_batch_norm(min(gy.shape[0], x.shape[0]), batch, channels, spatial,
                      (mean.shape[0], invstd.shape[0], weight.shape[0], sum_dy.shape[0],
                       sum_dy_xmu.shape[0]))
    if gx is not None:
        out = gx
        _check_batch_norm(out.shape[0], batch, channels, spatial, ())
    if relu_output is not None:
        mask = relu_output
        _check_batch_norm(mask.shape[0], batch, channels, spatial, ())
    if channels == 0:
        return
    if batch * spatial == 0:
        if compute_sums:
            sum_dy[:channels] = 0
            sum_dy_xmu[:channels] = 0
        return
    if batch_stats and count < 1:
        raise ValueError(f"batch norm backward needs count >= 1, got {count}")
    if gx is not None:
        gxp = &out[0]
    if relu_output is not None:
        maskp = &mask[0]
    with nogil:
        fc_batch_norm_backward(_dtype(<real>0), &gy[0], maskp, &x[0], batch, channels, spatial,
                               &mean[0], &invstd[0], &weight[0], batch_stats, compute_sums,
                               count, &sum_dy[0], &sum_dy_xmu[0], gxp, nthreads)


# ------------------------------------------------------------ activations

ACTIVATION_KINDS = {"relu": 0, "leaky_relu": 1, "elu": 2, "gelu": 3, "gelu_tanh": 4,
                    "silu": 5, "sigmoid": 6, "tanh": 7}


cdef int _activation_kind(str kind) except -1:
    try:
        return ACTIVATION_KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown activation {kind!r}") from None


def activation(str kind, const real[::1] x, double alpha, real[::1] y, save, int nthreads):
    """y = f(x) elementwise (y may share x's buffer); `save` (None or an
    array of x's size) receives what the backward reads, in the same pass."""
    cdef int k = _activation_kind(kind)
    cdef int64_t n = x.shape[0]
    cdef real[::1] saved
    cdef real *save_ptr = NULL
    if y.shape[0] != n:
        raise ValueError("activation output buffer of the wrong size")
    if save is not None:
        saved = save
        if saved.shape[0] != n:
            raise ValueError("activation save buffer of the wrong size")
        if n:
            save_ptr = &saved[0]
    if n == 0:
        return
    with nogil:
        fc_activation(_dtype(<real>0), k, &x[0], n, alpha, &y[0], save_ptr, nthreads)


def activation_backward(str kind, const real[::1] gy, const real[::1] saved, double alpha,
                        real[::1] gx, int nthreads):
    """gx = gy * f'(.) from the value the forward saved."""
    cdef int k = _activation_kind(kind)
    cdef int64_t n = gy.shape[0]
    if saved.shape[0] != n or gx.shape[0] != n:
        raise ValueError("activation backward buffers of different sizes")
    if n == 0:
        return
    with nogil:
        fc_activation_backward(_dtype(<real>0), k, &gy[0], &saved[0], n, alpha, &gx[0],
                               nthreads)


def add(const real[::1] a, const real[::1] b, bint relu, real[::1] y, int nthreads):
    """y = a + b elementwise (ReLU'd with relu); y may share a's or b's buffer."""
    cdef int64_t n = a.shape[0]
    if b.shape[0] != n or y.shape[0] != n:
        raise ValueError("add buffers of different sizes")
    if n == 0:
        return
    with nogil:
        fc_add(_dtype(<real>0), &a[0], &b[0], n, relu, &y[0], nthreads)


def prelu(const real[::1] x, const real[::1] w, int64_t outer, int64_t channels,
          int64_t inner, real[::1] y, int nthreads):
    """PReLU of x (outer, channels, inner) with one slope per channel."""
    if x.shape[0] != outer * channels * inner or y.shape[0] != x.shape[0]:
        raise ValueError("prelu buffers do not match (outer, channels, inner)")
    if w.shape[0] < channels:
        raise ValueError("prelu weight too small")
    if x.shape[0] == 0:
        return
    with nogil:
        fc_prelu(_dtype(<real>0), &x[0], &w[0], outer, channels, inner, &y[0], nthreads)


def prelu_backward(const real[::1] gy, const real[::1] x, const real[::1] w, int64_t outer,
                   int64_t channels, int64_t inner, real[::1] gx, real[::1] gw, int nthreads):
    """PReLU's input gradient into gx and slope gradient into gw (overwritten)."""
    cdef int64_t n = outer * channels * inner
    if x.shape[0] != n or gy.shape[0] != n or gx.shape[0] != n:
        raise ValueError("prelu_backward buffers do not match (outer, channels, inner)")
    if w.shape[0] < channels or gw.shape[0] < channels:
        raise ValueError("prelu_backward weight buffers too small")
    if n == 0:
        gw[:] = 0
        return
    with nogil:
        fc_prelu_backward(_dtype(<real>0), &gy[0], &x[0], &w[0], outer, channels, inner,
                          &gx[0], &gw[0], nthreads)


def softmax(const real[::1] x, int64_t outer, int64_t classes, int64_t inner, bint log,
            real[::1] y, int nthreads):
    """(log-)softmax of x (outer, classes, inner) along classes into y."""
    if x.shape[0] != outer * classes * inner or y.shape[0] != x.shape[0]:
        raise ValueError("softmax buffers do not match (outer, classes, inner)")
    if x.shape[0] == 0:
        return
    with nogil:
        fc_softmax(_dtype(<real>0), &x[0], outer, classes, inner, log, &y[0], nthreads)


def softmax_backward(const real[::1] gy, const real[::1] y, int64_t outer, int64_t classes,
                     int64_t inner, bint log, real[::1] gx, int nthreads):
    """Gradient of (log-)softmax from its output y into gx."""
    cdef int64_t n = outer * classes * inner
    if gy.shape[0] != n or y.shape[0] != n or gx.shape[0] != n:
        raise ValueError("softmax_backward buffers do not match (outer, classes, inner)")
    if n == 0:
        return
    with nogil:
        fc_softmax_backward(_dtype(<real>0), &gy[0], &y[0], outer, classes, inner, log,
                            &gx[0], nthreads)


cdef int _check_cross_entropy(Py_ssize_t x_size, const int64_t[::1] target, w,
                              int64_t outer, int64_t classes, int64_t inner,
                              int64_t ignore_index) except -1:
    cdef Py_ssize_t i
    if x_size != outer * classes * inner or target.shape[0] != outer * inner:
        raise ValueError("cross_entropy buffers do not match (outer, classes, inner)")
    if w is not None and len(w) != classes:
        raise ValueError("cross_entropy weight must hold one value per class")
    for i in range(target.shape[0]):   # the kernels index rows by the labels
        if target[i] != ignore_index and not 0 <= target[i] < classes:
            raise ValueError(f"cross_entropy label {target[i]} out of [0, {classes})")
    return 0


def cross_entropy(const real[::1] x, const int64_t[::1] target, w, int64_t outer,
                  int64_t classes, int64_t inner, int64_t ignore_index,
                  double label_smoothing, real[::1] losses, int nthreads):
    """Per-position cross-entropy into losses (outer * inner); returns the
    summed weight of the positions not ignored."""
    cdef const real[::1] weights
    cdef const real *w_ptr = NULL
    cdef double total
    _check_cross_entropy(x.shape[0], target, w, outer, classes, inner, ignore_index)
    if losses.shape[0] != target.shape[0]:
        raise ValueError("cross_entropy losses buffer of the wrong size")
    if target.shape[0] == 0:
        return 0.0
    if w is not None and classes:
        weights = w
        w_ptr = &weights[0]
    with nogil:
        total = fc_cross_entropy(_dtype(<real>0), &x[0] if x.shape[0] else NULL, &target[0],
                                 w_ptr, outer, classes, inner, ignore_index, label_smoothing,
                                 &losses[0], nthreads)
    return total


def cross_entropy_backward(const real[::1] grad, const real[::1] x,
                           const int64_t[::1] target, w, int64_t outer, int64_t classes,
                           int64_t inner, int64_t ignore_index, double label_smoothing,
                           real[::1] gx, int nthreads):
    """Gradient of the per-position losses weighted by grad (one value, or
    one per position) into gx (x's size)."""
    cdef const real[::1] weights
    cdef const real *w_ptr = NULL
    cdef int64_t grad_stride = 0 if grad.shape[0] == 1 else 1
    _check_cross_entropy(x.shape[0], target, w, outer, classes, inner, ignore_index)
    if gx.shape[0] != x.shape[0] or grad.shape[0] not in (1, target.shape[0]):
        raise ValueError("cross_entropy_backward buffers of the wrong size")
    if x.shape[0] == 0:
        return
    if w is not None:
        weights = w
        w_ptr = &weights[0]
    with nogil:
        fc_cross_entropy_backward(_dtype(<real>0), &grad[0], grad_stride, &x[0], &target[0],
                                  w_ptr, outer, classes, inner, ignore_index,
                                  label_smoothing, &gx[0], nthreads)


# ------------------------------------------------------- strided copies

# Most dims strided_copy takes, and the elements below which its kernel runs
# on one thread (where NumPy's assignment is as fast and cheaper to call).
COPY_MAX_RANK = FC_COPY_MAX_RANK
MIN_PARALLEL_WORK = FC_MIN_PARALLEL_WORK


cdef int _check_copy_operand(Py_buffer *view, int rank, const int64_t *shape,
                             const int64_t *strides, Py_ssize_t itemsize, str which) except -1:
    """Every element the copy geometry (shape, strides in elements) reaches
    from view.buf lies between the first and last byte of view's own
    elements, and is aligned for the kernel's loads and stores."""
    cdef int k
    if view.itemsize != itemsize:
        raise ValueError(f"strided_copy: {which} has {view.itemsize}-byte elements, "
                         f"the dtype {itemsize}")
    if <size_t>view.buf % <size_t>itemsize:
        raise ValueError(f"strided_copy: {which} is not aligned to its elements")
    low = high = 0              # Python ints: no overflow whatever the strides
    for k in range(view.ndim):
        if view.shape[k] == 0:
            raise ValueError(f"strided_copy: {which} is empty")
        span = (view.shape[k] - 1) * view.strides[k]
        low, high = (low + span, high) if span < 0 else (low, high + span)
    reach_low = reach_high = 0
    for k in range(rank):
        span = (shape[k] - 1) * strides[k] * itemsize
        reach_low, reach_high = ((reach_low + span, reach_high) if span < 0
                                 else (reach_low, reach_high + span))
    if reach_low < low or reach_high > high:
        raise ValueError(f"strided_copy: the {which} geometry reaches outside its array")
    return 0


def strided_copy(str dtype_char, dst, src, shape, dst_strides, src_strides, int nthreads):
    """dst[i] = src[i] over the index space `shape` (1 to COPY_MAX_RANK dims,
    none empty), strides in elements from each array's first element (src
    None: zeros; src_strides then unused).  dst and src must not overlap
    (the caller checks: it only costs a wrong result, not foreign memory)."""
    cdef fc_dtype dtype = _dtype_of_char(dtype_char)
    cdef Py_ssize_t itemsize = 4 if dtype == FC_FLOAT32 else 8
    cdef int rank = len(shape)
    cdef int64_t c_shape[FC_COPY_MAX_RANK]
    cdef int64_t c_dst[FC_COPY_MAX_RANK]
    cdef int64_t c_src[FC_COPY_MAX_RANK]
    cdef Py_buffer views[2]
    cdef int held = 0, k
    cdef const void *src_ptr = NULL
    if not 1 <= rank <= FC_COPY_MAX_RANK or len(dst_strides) != rank or (
            src is not None and len(src_strides) != rank):
        raise ValueError(f"strided_copy: rank {rank} (shape {shape}, strides {dst_strides}, "
                         f"{src_strides}) not 1..{FC_COPY_MAX_RANK} or ranks differ")
    for k in range(rank):
        c_shape[k] = shape[k]
        if c_shape[k] < 1:
            raise ValueError(f"strided_copy: shape {shape} has an empty dim")
        c_dst[k] = dst_strides[k]
        c_src[k] = src_strides[k] if src is not None else 0
    try:
        PyObject_GetBuffer(dst, &views[0], PyBUF_STRIDES | PyBUF_WRITABLE)
        held = 1
        _check_copy_operand(&views[0], rank, c_shape, c_dst, itemsize, "dst")
        if src is not None:
            PyObject_GetBuffer(src, &views[1], PyBUF_STRIDES)
            held = 2
            _check_copy_operand(&views[1], rank, c_shape, c_src, itemsize, "src")
            src_ptr = views[1].buf
        with nogil:
            fc_strided_copy(dtype, rank, c_shape, views[0].buf, c_dst, src_ptr, c_src,
                            nthreads)
    finally:
        for k in range(held):
            PyBuffer_Release(&views[k])
    _raise_if_stopped()
