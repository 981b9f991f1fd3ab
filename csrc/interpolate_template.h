/* Interpolation (resizing) forward and backward for one scalar type and
 * instruction set.  Included by isa_template.h once per dtype (no SIMD of its
 * own: each table's copy is the compiler's code for that table's target).
 *
 * Every mode PyTorch's interpolate has here (nearest, nearest-exact, linear,
 * bilinear, trilinear) is separable: along each axis, output position o
 * reads taps[axis] (1 or 2) input positions index[2*o + t] with weights
 * weight[2*o + t].  Python builds those small tables by PyTorch's index rules
 * (they depend on the mode, align_corners and the scale), so these loops know
 * no rule at all and 1-D/2-D inputs arrive lifted to 3-D (a size-1 leading
 * axis has one tap: index 0, weight 1).  Table layout: the D axis's 2*oD
 * entries, then H's 2*oH, then W's 2*oW.
 *
 * Nearest modes use one tap per axis, so no weight-0 term ever multiplies an
 * inf into a NaN.  Threads own disjoint outputs: output rows forward, whole
 * planes backward (neighbouring outputs share input taps). */

/* The (up to 4) input rows output row (od, oh) of a plane reads, each with
 * its combined D x H weight: taps[0] * taps[1] of them. */
static inline int FC_FN(interp_rows_)(const fc_geometry *g, const int64_t *index,
                                      const SCALAR *weight, const int taps[3], int64_t od,
                                      int64_t oh, int64_t row_offset[4], SCALAR row_weight[4])
{
    const int64_t *index_h = index + 2 * g->out[0];
    const SCALAR *weight_h = weight + 2 * g->out[0];
    int n = 0;
    for (int a = 0; a < taps[0]; ++a)
        for (int b = 0; b < taps[1]; ++b, ++n) {
            row_offset[n] = (index[2 * od + a] * g->in[1] + index_h[2 * oh + b]) * g->in[2];
            row_weight[n] = weight[2 * od + a] * weight_h[2 * oh + b];
        }
    return n;
}

/* fc_interpolate. */
static void FC_FN(interpolate_)(const void *x_, const fc_geometry *g, const int64_t *index,
                                const void *weight_, const int taps[3], void *y_,
                                int nthreads)
{
    const SCALAR *x = x_, *weight = weight_;
    SCALAR *y = y_;
    const int64_t oD = g->out[0], oH = g->out[1], oW = g->out[2];
    const int64_t in_plane = fc_spatial_size(g->in), out_plane = fc_spatial_size(g->out);
    const int64_t *index_w = index + 2 * (oD + oH);
    const SCALAR *weight_w = weight + 2 * (oD + oH);
    const int64_t rows = g->channels * oD * oH;
    const int nt = fc_threads_for(nthreads, g->channels * out_plane);
    fc_stop *stop = fc_stop_flag();
    const int64_t poll_every = fc_stop_period(oW * taps[0] * taps[1] * taps[2]);
    (void)nt;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
    for (int64_t r = 0; r < rows; ++r) {
        const int64_t p = r / (oD * oH), od = (r / oH) % oD, oh = r % oH;
        if (fc_stopping_at(stop, r, poll_every)) continue;
        SCALAR *yr = y + p * out_plane + (od * oH + oh) * oW;
        int64_t row_offset[4];
        SCALAR row_weight[4];
        const int n = FC_FN(interp_rows_)(g, index, weight, taps, od, oh, row_offset,
                                           row_weight);
        const SCALAR *src[4];
        for (int q = 0; q < n; ++q) src[q] = x + p * in_plane + row_offset[q];
        if (taps[2] == 2) {
            for (int64_t ow = 0; ow < oW; ++ow) {
                const int64_t i0 = index_w[2 * ow], i1 = index_w[2 * ow + 1];
                const SCALAR w0 = weight_w[2 * ow], w1 = weight_w[2 * ow + 1];
                SCALAR sum = 0;
                for (int q = 0; q < n; ++q)
                    sum += row_weight[q] * (w0 * src[q][i0] + w1 * src[q][i1]);
                yr[ow] = sum;
            }
        } else {
            for (int64_t ow = 0; ow < oW; ++ow) {
                const int64_t i0 = index_w[2 * ow];
                const SCALAR w0 = weight_w[2 * ow];
                SCALAR sum = 0;
                for (int q = 0; q < n; ++q) sum += row_weight[q] * (w0 * src[q][i0]);
                yr[ow] = sum;
            }
        }
    }
}

/* fc_interpolate_backward. */
static void FC_FN(interpolate_backward_)(const void *gy_, const fc_geometry *g,
                                         const int64_t *index, const void *weight_,
                                         const int taps[3], void *gx_, int nthreads)
{
    const SCALAR *gy = gy_, *weight = weight_;
    SCALAR *gx = gx_;
    const int64_t oD = g->out[0], oH = g->out[1], oW = g->out[2];
    const int64_t in_plane = fc_spatial_size(g->in), out_plane = fc_spatial_size(g->out);
    const int64_t *index_w = index + 2 * (oD + oH);
    const SCALAR *weight_w = weight + 2 * (oD + oH);
    const int nt = fc_threads_for(nthreads, g->channels * (in_plane + out_plane));
    fc_stop *stop = fc_stop_flag();
    const int64_t poll_every = fc_stop_period(in_plane
                                              + out_plane * taps[0] * taps[1] * taps[2]);
    (void)nt;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
    for (int64_t p = 0; p < g->channels; ++p) {
        const SCALAR *gyp = gy + p * out_plane;
        if (fc_stopping_at(stop, p, poll_every)) continue;
        SCALAR *gxp = gx + p * in_plane;
        memset(gxp, 0, (size_t)in_plane * sizeof(SCALAR));
        for (int64_t od = 0; od < oD; ++od)
            for (int64_t oh = 0; oh < oH; ++oh, gyp += oW) {
                int64_t row_offset[4];
                SCALAR row_weight[4];
                const int n = FC_FN(interp_rows_)(g, index, weight, taps, od, oh, row_offset,
                                                   row_weight);
                for (int q = 0; q < n; ++q) {
                    SCALAR *dst = gxp + row_offset[q];
                    for (int64_t ow = 0; ow < oW; ++ow) {
                        const SCALAR v = row_weight[q] * gyp[ow];
                        for (int c = 0; c < taps[2]; ++c)
                            dst[index_w[2 * ow + c]] += weight_w[2 * ow + c] * v;
                    }
                }
            }
    }
}

