/* Interpolation (resizing) forward and backward for one scalar type and
 * instruction set.  Included by isa_template.h once per dtype.
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
 * An output row is the W taps of one blended row: the (up to 4) input rows
 * it reads, weighted, summed column by column over the input columns a chunk
 * of its outputs reads (contiguous, so vectorised), then each output reads
 * its 1 or 2 columns of that blend.  The horizontal taps, the only gathers,
 * then run once per output instead of once per output and input row.  The
 * blend of a chunk lives on the stack (FC_INTERP_SPAN columns); a row whose
 * only input row has weight 1 reads its source row in place.  Chunks rely on
 * the W taps being non-decreasing (fastconv.h).  The backward pass is the
 * adjoint: the W taps spread each output row's gradient over a chunk's
 * columns, which are then added to each input row, weighted.
 *
 * Nearest modes use one tap per axis, so no weight-0 term ever multiplies an
 * inf into a NaN.  Threads own disjoint outputs: output rows forward, whole
 * planes backward (neighbouring outputs share input taps). */

#ifndef FC_INTERP_SHARED
#define FC_INTERP_SHARED
/* Input columns of one chunk's row blend (a stack array: L1-resident). */
#define FC_INTERP_SPAN 512

/* The end of the chunk of outputs that starts at a: the largest b <= oW
 * whose outputs' W taps lie in FC_INTERP_SPAN columns from index_w[2*a]
 * (at least a + 1: one output reads 2).  Every tap of outputs [a, b) lies in
 * [index_w[2*a], index_w[2*(b-1)] + last_tap] (fastconv.h's order), so a
 * binary search finds b; every row of a call shares these chunks. */
static inline int64_t fc_interp_chunk_end(const int64_t *index_w, int last_tap, int64_t a,
                                          int64_t oW)
{
    const int64_t lo = index_w[2 * a];
    if (index_w[2 * (oW - 1)] + last_tap - lo < FC_INTERP_SPAN)
        return oW;   /* the rest of the row (every row of most calls): no search */
    int64_t fits = a + 1, past = oW;   /* [a, fits) fits; [a, past) does not */
    while (past - fits > 1) {
        const int64_t mid = fits + (past - fits) / 2;
        if (index_w[2 * (mid - 1)] + last_tap - lo < FC_INTERP_SPAN)
            fits = mid;
        else
            past = mid;
    }
    return fits;
}

/* The input columns chunk [a, b) reads, from index_w[2*a]: its span. */
static inline int64_t fc_interp_chunk_span(const int64_t *index_w, int last_tap, int64_t a,
                                           int64_t b, int64_t in_w)
{
    const int64_t hi = index_w[2 * (b - 1)] + last_tap;
    return (hi < in_w ? hi + 1 : in_w) - index_w[2 * a];
}
#endif

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

/* blend[j] = sum over the n rows of row_weight[q] * row[q][j], j < span. */
static inline TARGET void FC_FN(interp_blend_)(const SCALAR *row[4],
                                               const SCALAR row_weight[4], int n,
                                               int64_t span, SCALAR *restrict blend)
{
    for (int64_t j = 0; j < span; ++j) blend[j] = row_weight[0] * row[0][j];
    for (int q = 1; q < n; ++q) {
        const SCALAR *restrict r = row[q];
        const SCALAR w = row_weight[q];
        for (int64_t j = 0; j < span; ++j) blend[j] += w * r[j];
    }
}

/* fc_interpolate. */
static TARGET void FC_FN(interpolate_)(const void *x_, const fc_geometry *g,
                                       const int64_t *index, const void *weight_,
                                       const int taps[3], void *y_, int nthreads)
{
    const SCALAR *x = x_, *weight = weight_;
    SCALAR *y = y_;
    const int64_t oD = g->out[0], oH = g->out[1], oW = g->out[2];
    const int64_t in_plane = fc_spatial_size(g->in), out_plane = fc_spatial_size(g->out);
    const int64_t *index_w = index + 2 * (oD + oH);
    const SCALAR *weight_w = weight + 2 * (oD + oH);
    const int last_tap = taps[2] - 1;
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
        SCALAR row_weight[4], blend[FC_INTERP_SPAN];
        const int n = FC_FN(interp_rows_)(g, index, weight, taps, od, oh, row_offset,
                                           row_weight);
        for (int64_t a = 0; a < oW;) {
            const int64_t b = fc_interp_chunk_end(index_w, last_tap, a, oW);
            const int64_t lo = index_w[2 * a];
            const int64_t span = fc_interp_chunk_span(index_w, last_tap, a, b, g->in[2]);
            const SCALAR *row[4] = {NULL, NULL, NULL, NULL};
            for (int q = 0; q < n; ++q) row[q] = x + p * in_plane + row_offset[q] + lo;
            const SCALAR *cols = row[0];
            if (n > 1 || row_weight[0] != 1) {
                FC_FN(interp_blend_)(row, row_weight, n, span, blend);
                cols = blend;
            }
            if (last_tap)
                for (int64_t o = a; o < b; ++o)
                    yr[o] = weight_w[2 * o] * cols[index_w[2 * o] - lo]
                            + weight_w[2 * o + 1] * cols[index_w[2 * o + 1] - lo];
            else
                for (int64_t o = a; o < b; ++o)
                    yr[o] = weight_w[2 * o] * cols[index_w[2 * o] - lo];
            a = b;
        }
    }
}

/* fc_interpolate_backward. */
static TARGET void FC_FN(interpolate_backward_)(const void *gy_, const fc_geometry *g,
                                                const int64_t *index, const void *weight_,
                                                const int taps[3], void *gx_, int nthreads)
{
    const SCALAR *gy = gy_, *weight = weight_;
    SCALAR *gx = gx_;
    const int64_t oD = g->out[0], oH = g->out[1], oW = g->out[2];
    const int64_t in_plane = fc_spatial_size(g->in), out_plane = fc_spatial_size(g->out);
    const int64_t *index_w = index + 2 * (oD + oH);
    const SCALAR *weight_w = weight + 2 * (oD + oH);
    const int last_tap = taps[2] - 1;
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
        SCALAR spread[FC_INTERP_SPAN];
        memset(gxp, 0, (size_t)in_plane * sizeof(SCALAR));
        for (int64_t od = 0; od < oD; ++od)
            for (int64_t oh = 0; oh < oH; ++oh, gyp += oW) {
                int64_t row_offset[4];
                SCALAR row_weight[4];
                const int n = FC_FN(interp_rows_)(g, index, weight, taps, od, oh, row_offset,
                                                   row_weight);
                const int in_place = n == 1 && row_weight[0] == 1;
                for (int64_t a = 0; a < oW;) {
                    const int64_t b = fc_interp_chunk_end(index_w, last_tap, a, oW);
                    const int64_t lo = index_w[2 * a];
                    const int64_t span = fc_interp_chunk_span(index_w, last_tap, a, b, g->in[2]);
                    /* the W taps' adjoint: into the input row itself when it
                     * is the only one, at weight 1 */
                    SCALAR *cols = in_place ? gxp + row_offset[0] + lo : spread;
                    if (!in_place) memset(spread, 0, (size_t)span * sizeof(SCALAR));
                    for (int64_t o = a; o < b; ++o)
                        for (int t = 0; t <= last_tap; ++t)
                            cols[index_w[2 * o + t] - lo] += weight_w[2 * o + t] * gyp[o];
                    if (!in_place)
                        for (int q = 0; q < n; ++q) {
                            SCALAR *restrict dst = gxp + row_offset[q] + lo;
                            const SCALAR w = row_weight[q];
                            for (int64_t j = 0; j < span; ++j) dst[j] += w * spread[j];
                        }
                    a = b;
                }
            }
    }
}
