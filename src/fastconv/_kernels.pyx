# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False
"""Thin typed bridge from Python to the C kernels in csrc/.

Arguments are assumed validated by fastconv.functional; the only checks here
are the ones that keep a wrong call from touching memory it does not own.
Every kernel call releases the GIL.
"""
from libc.stdint cimport int64_t
from fastconv._csrc cimport *

ctypedef fused real:
    float
    double


cdef fc_geometry _geometry(tuple geom) except *:
    """(channels, in3, out3, kernel3, stride3, pad3, dilation3) -> struct."""
    cdef fc_geometry g
    cdef int i
    g.channels = geom[0]
    for i in range(3):
        g.in_[i] = geom[1][i]
        g.out[i] = geom[2][i]
        g.kernel[i] = geom[3][i]
        g.stride[i] = geom[4][i]
        g.pad[i] = geom[5][i]
        g.dilation[i] = geom[6][i]
    return g


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


def im2col(const real[::1] im, int64_t batch, tuple geom, int64_t batch_stride,
           int64_t row_stride, real[::1] col, int nthreads):
    """Gather the windows of `batch` images into the column buffer `col`."""
    cdef fc_geometry g = _geometry(geom)
    cdef fc_col_layout layout = fc_col_layout(batch_stride, row_stride)
    if batch <= 0 or g.channels == 0 or _prod3(g.out) == 0:
        return
    if im.shape[0] < batch * g.channels * _prod3(g.in_):
        raise ValueError("image buffer too small")
    _check_col_bounds(col.shape[0], batch, &g, layout)
    with nogil:
        if real is float:
            fc_im2col_f32(&im[0], batch, &g, layout, &col[0], nthreads)
        else:
            fc_im2col_f64(&im[0], batch, &g, layout, &col[0], nthreads)


def col2im(const real[::1] col, int64_t batch, tuple geom, int64_t batch_stride,
           int64_t row_stride, real[::1] im, int nthreads):
    """Scatter-add the column buffer `col` into `batch` images (overwritten)."""
    cdef fc_geometry g = _geometry(geom)
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
        if real is float:
            fc_col2im_f32(&col[0], batch, &g, layout, &im[0], nthreads)
        else:
            fc_col2im_f64(&col[0], batch, &g, layout, &im[0], nthreads)


def build_info():
    """What the kernels were compiled with."""
    return {
        "compiler": fc_compiler().decode(),
        "flags": fc_build_flags().decode(),
        "openmp": bool(fc_openmp_enabled()),
        "openmp_max_threads": fc_openmp_max_threads(),
    }


# ---------------------------------------------------------------------------
# Pooling.  geom is the same tuple as above with channels = N*C planes; the
# checks below are only those that keep a wrong call inside its buffers.
# ---------------------------------------------------------------------------

cdef int _check_pool(Py_ssize_t src_size, int64_t src_plane, Py_ssize_t dst_size,
                     int64_t dst_plane, const fc_geometry *g) except -1:
    cdef int i
    for i in range(3):
        if g.kernel[i] < 1 or g.stride[i] < 1 or g.dilation[i] < 1 or g.pad[i] < 0:
            raise ValueError("pooling geometry needs positive kernel, stride and "
                             "dilation and non-negative padding")
        if g.in_[i] < 0 or g.out[i] < 0:
            raise ValueError("pooling sizes must be non-negative")
    if src_size < g.channels * src_plane:
        raise ValueError(f"source buffer holds {src_size} elements, "
                         f"needs {g.channels * src_plane}")
    if dst_size < g.channels * dst_plane:
        raise ValueError(f"destination buffer holds {dst_size} elements, "
                         f"needs {g.channels * dst_plane}")
    return 0


def max_pool(const real[::1] x, tuple geom, real[::1] y, indices, int nthreads):
    """Max pooling of geom's planes into y; the argmax into `indices` (an
    int64 buffer like y) unless it is None."""
    cdef fc_geometry g = _geometry(geom)
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
        if real is float:
            fc_max_pool_f32(&x[0], &g, &y[0], ind_ptr, nthreads)
        else:
            fc_max_pool_f64(&x[0], &g, &y[0], ind_ptr, nthreads)


def max_pool_backward(const real[::1] gy, const int64_t[::1] indices, tuple geom,
                      real[::1] gx, int nthreads):
    """Scatter-add gy into gx (overwritten) at `indices`.  Every index is
    checked to lie inside its plane first: returns -1 on success, else the
    flat position of a bad index, with gx untouched."""
    cdef fc_geometry g = _geometry(geom)
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
        elif real is float:
            fc_max_pool_backward_f32(&gy[0], &indices[0], &g, &gx[0], nthreads)
        else:
            fc_max_pool_backward_f64(&gy[0], &indices[0], &g, &gx[0], nthreads)
    return -1


def avg_pool(const real[::1] x, tuple geom, bint count_include_pad,
             int64_t divisor_override, real[::1] y, int nthreads):
    """Average pooling of geom's planes into y (divisor_override 0 = none)."""
    cdef fc_geometry g = _geometry(geom)
    _check_pool(x.shape[0], _prod3(g.in_), y.shape[0], _prod3(g.out), &g)
    if g.channels == 0 or _prod3(g.out) == 0:
        return
    if _prod3(g.in_) == 0:
        raise ValueError("cannot pool an empty plane into a non-empty output")
    with nogil:
        if real is float:
            fc_avg_pool_f32(&x[0], &g, count_include_pad, divisor_override, &y[0],
                            nthreads)
        else:
            fc_avg_pool_f64(&x[0], &g, count_include_pad, divisor_override, &y[0],
                            nthreads)


def avg_pool_backward(const real[::1] gy, tuple geom, bint count_include_pad,
                      int64_t divisor_override, real[::1] gx, int nthreads):
    """Gradient of avg_pool: gy spread over each window into gx (overwritten)."""
    cdef fc_geometry g = _geometry(geom)
    _check_pool(gy.shape[0], _prod3(g.out), gx.shape[0], _prod3(g.in_), &g)
    if g.channels == 0 or _prod3(g.in_) == 0:
        return
    with nogil:
        if _prod3(g.out) == 0:
            for i in range(g.channels * _prod3(g.in_)):
                gx[i] = 0
        elif real is float:
            fc_avg_pool_backward_f32(&gy[0], &g, count_include_pad, divisor_override,
                                     &gx[0], nthreads)
        else:
            fc_avg_pool_backward_f64(&gy[0], &g, count_include_pad, divisor_override,
                                     &gx[0], nthreads)


def adaptive_avg_pool(const real[::1] x, tuple geom, real[::1] y, int nthreads):
    """Adaptive average pooling of geom's planes into y."""
    cdef fc_geometry g = _geometry(geom)
    _check_pool(x.shape[0], _prod3(g.in_), y.shape[0], _prod3(g.out), &g)
    if g.channels == 0 or _prod3(g.out) == 0:
        return
    if _prod3(g.in_) == 0:
        raise ValueError("cannot pool an empty plane into a non-empty output")
    with nogil:
        if real is float:
            fc_adaptive_avg_pool_f32(&x[0], &g, &y[0], nthreads)
        else:
            fc_adaptive_avg_pool_f64(&x[0], &g, &y[0], nthreads)


def adaptive_avg_pool_backward(const real[::1] gy, tuple geom, real[::1] gx,
                               int nthreads):
    """Gradient of adaptive_avg_pool into gx (overwritten)."""
    cdef fc_geometry g = _geometry(geom)
    _check_pool(gy.shape[0], _prod3(g.out), gx.shape[0], _prod3(g.in_), &g)
    if g.channels == 0 or _prod3(g.in_) == 0:
        return
    with nogil:
        if _prod3(g.out) == 0:
            for i in range(g.channels * _prod3(g.in_)):
                gx[i] = 0
        elif real is float:
            fc_adaptive_avg_pool_backward_f32(&gy[0], &g, &gx[0], nthreads)
        else:
            fc_adaptive_avg_pool_backward_f64(&gy[0], &g, &gx[0], nthreads)
