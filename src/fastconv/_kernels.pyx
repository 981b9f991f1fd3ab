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
