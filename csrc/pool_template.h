/* Max, average and adaptive-average pooling for one scalar type.  Included
 * once per dtype by pool.c with SCALAR (the C type) and SFX (the name suffix)
 * defined: one source, every dtype.
 *
 * Pooling acts on each (n, c) plane alone, so the batch is folded into
 * g->channels ("planes") and one plane is D*H*W contiguous values; 1-D and 2-D
 * pooling arrive lifted to 3-D (leading kernel 1, stride 1, pad 0, dilation 1).
 * g->pad is the padding on each side (pooling padding is symmetric).
 *
 * Two loop nests per op: a general one (padding, dilation, overlapping windows,
 * ceil-mode overhang) and a "tiled" one for kernel == stride without padding,
 * dilation or overhang (the common 2x2/2), where windows tile the input.
 */

#define FC_FN(name) FC_CAT(name, SFX)

/* ------------------------------------------------------------------------ */
/* Max pooling forward                                                      */
/* ------------------------------------------------------------------------ */

/* One output row (od, oh) of one plane, general geometry.  PyTorch's rule:
 * the running max starts at -inf with the index of the first in-bounds tap
 * (so never -1, pitfall 1), taps are visited in row-major window order and a
 * tap replaces the max when `v > max || isnan(v)`: the first maximum wins
 * ties (pitfall 2) and NaN propagates. */
static inline void FC_FN(max_row_)(const SCALAR *x, const fc_geometry *g,
                                   int64_t od, int64_t oh, SCALAR *y,
                                   int64_t *ind, const int want_idx)
{
    const int64_t H = g->in[1], W = g->in[2];
    const int64_t dd = g->dilation[0], dh = g->dilation[1], dw = g->dilation[2];
    const int64_t d0 = od * g->stride[0] - g->pad[0];
    const int64_t h0 = oh * g->stride[1] - g->pad[1];
    int64_t kd0, kd1, kh0, kh1;
    fc_pool_taps(d0, g->kernel[0], dd, g->in[0], &kd0, &kd1);
    fc_pool_taps(h0, g->kernel[1], dh, H, &kh0, &kh1);
    for (int64_t ow = 0; ow < g->out[2]; ++ow) {
        const int64_t w0 = ow * g->stride[2] - g->pad[2];
        int64_t kw0, kw1;
        fc_pool_taps(w0, g->kernel[2], dw, W, &kw0, &kw1);
        SCALAR m = -(SCALAR)INFINITY;
        int64_t mi = ((d0 + kd0 * dd) * H + h0 + kh0 * dh) * W + w0 + kw0 * dw;
        for (int64_t kd = kd0; kd < kd1; ++kd) {
            for (int64_t kh = kh0; kh < kh1; ++kh) {
                const int64_t row = ((d0 + kd * dd) * H + h0 + kh * dh) * W;
                for (int64_t kw = kw0; kw < kw1; ++kw) {
                    const int64_t i = row + w0 + kw * dw;
                    const SCALAR v = x[i];
                    if (v > m || v != v) {
                        m = v;
                        mi = i;
                    }
                }
            }
        }
        y[ow] = m;
        if (want_idx) ind[ow] = mi;
    }
}

/* One output row of a tiled 2-D 2x2 window: two input rows in, one output
 * row out, four taps in registers, branch-free selects.  Same rule as
 * max_row_: starting from the first tap equals starting from -inf with the
 * first tap's index. */
static inline void FC_FN(max_row_2x2_)(const SCALAR *x, const fc_geometry *g,
                                       int64_t od, int64_t oh, SCALAR *y,
                                       int64_t *ind, const int want_idx)
{
    const int64_t W = g->in[2];
    const int64_t base = (od * g->in[1] + 2 * oh) * W;
    const SCALAR *r0 = x + base, *r1 = r0 + W;
    for (int64_t ow = 0; ow < g->out[2]; ++ow) {
        const SCALAR a = r0[2 * ow], b = r0[2 * ow + 1];
        const SCALAR c = r1[2 * ow], d = r1[2 * ow + 1];
        SCALAR m = a;
        int64_t k = 0;
        if (b > m || b != b) { m = b; k = 1; }
        if (c > m || c != c) { m = c; k = W; }
        if (d > m || d != d) { m = d; k = W + 1; }
        y[ow] = m;
        if (want_idx) ind[ow] = base + 2 * ow + k;
    }
}

/* One output row of any tiled window (kernel == stride, no padding, no
 * dilation, no overhang): window rows are visited in row-major order, each
 * sweeping the whole output row, so every output still sees its taps in
 * row-major window order. */
static inline void FC_FN(max_row_tiled_)(const SCALAR *x, const fc_geometry *g,
                                         int64_t od, int64_t oh, SCALAR *y,
                                         int64_t *ind, const int want_idx)
{
    const int64_t H = g->in[1], W = g->in[2], oW = g->out[2];
    const int64_t kD = g->kernel[0], kH = g->kernel[1], kW = g->kernel[2];
    for (int64_t ow = 0; ow < oW; ++ow) {
        y[ow] = -(SCALAR)INFINITY;
        if (want_idx) ind[ow] = (od * kD * H + oh * kH) * W + ow * kW;
    }
    for (int64_t a = 0; a < kD; ++a) {
        for (int64_t b = 0; b < kH; ++b) {
            const int64_t row = ((od * kD + a) * H + oh * kH + b) * W;
            const SCALAR *r = x + row;
            for (int64_t ow = 0; ow < oW; ++ow) {
                for (int64_t c = 0; c < kW; ++c) {
                    const SCALAR v = r[ow * kW + c];
                    if (v > y[ow] || v != v) {
                        y[ow] = v;
                        if (want_idx) ind[ow] = row + ow * kW + c;
                    }
                }
            }
        }
    }
}

/* The three row kernels, each specialised for want_idx at compile time. */
static void FC_FN(max_pool_rows_)(const SCALAR *x, const fc_geometry *g,
                                  SCALAR *y, int64_t *ind, const int want_idx,
                                  int nthreads)
{
    const int64_t oD = g->out[0], oH = g->out[1], oW = g->out[2];
    const int64_t in_plane = fc_spatial_size(g->in), out_plane = fc_spatial_size(g->out);
    const int64_t rows = g->channels * oD * oH;
    const int tiled = fc_pool_is_tiled(g);
    const int is_2x2 = tiled && g->kernel[0] == 1 && g->kernel[1] == 2 && g->kernel[2] == 2;
    const int nt = fc_threads_for(nthreads, g->channels * in_plane);
    (void)nt;
    /* Every output row belongs to one thread: disjoint outputs, no races. */
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
    for (int64_t r = 0; r < rows; ++r) {
        const int64_t p = r / (oD * oH), od = (r / oH) % oD, oh = r % oH;
        const SCALAR *xp = x + p * in_plane;
        const int64_t off = p * out_plane + (od * oH + oh) * oW;
        int64_t *ip = want_idx ? ind + off : NULL;
        if (is_2x2)
            FC_FN(max_row_2x2_)(xp, g, od, oh, y + off, ip, want_idx);
        else if (tiled)
            FC_FN(max_row_tiled_)(xp, g, od, oh, y + off, ip, want_idx);
        else
            FC_FN(max_row_)(xp, g, od, oh, y + off, ip, want_idx);
    }
}

void FC_FN(fc_max_pool_)(const SCALAR *x, const fc_geometry *g, SCALAR *y,
                         int64_t *indices, int nthreads)
{
    if (indices)
        FC_FN(max_pool_rows_)(x, g, y, indices, 1, nthreads);
    else
        FC_FN(max_pool_rows_)(x, g, y, NULL, 0, nthreads);
}

/* ------------------------------------------------------------------------ */
/* Max pooling backward                                                     */
/* ------------------------------------------------------------------------ */

/* General: grad_input[indices[o]] += grad_output[o] over one plane.  The
 * caller checked every index lies in [0, D*H*W). */
static void FC_FN(max_backward_plane_)(const SCALAR *gy, const int64_t *ind,
                                       int64_t out_plane, int64_t in_plane, SCALAR *gx)
{
    memset(gx, 0, (size_t)in_plane * sizeof(SCALAR));
    for (int64_t o = 0; o < out_plane; ++o) gx[ind[o]] += gy[o];
}

/* Tiled: every input element lies in at most one window, so grad_input is
 * written once, in input order, as "the gradient if this element is its
 * window's argmax, else 0" - no zeroing pass, no scattered writes.  Returns
 * 0 if some index was outside its own window (hand-made indices may point
 * anywhere in the plane): then the caller redoes the plane with the general
 * scatter-add. */
static int FC_FN(max_backward_plane_tiled_)(const SCALAR *gy, const int64_t *ind,
                                            const fc_geometry *g, SCALAR *gx)
{
    const int64_t D = g->in[0], H = g->in[1], W = g->in[2];
    const int64_t oD = g->out[0], oH = g->out[1], oW = g->out[2];
    const int64_t kD = g->kernel[0], kH = g->kernel[1], kW = g->kernel[2];
    int64_t hits = 0;
    for (int64_t od = 0; od < oD; ++od) {
        for (int64_t oh = 0; oh < oH; ++oh) {
            const int64_t o = (od * oH + oh) * oW;
            const SCALAR *gr = gy + o;
            const int64_t *ir = ind + o;
            for (int64_t a = 0; a < kD; ++a) {
                for (int64_t b = 0; b < kH; ++b) {
                    const int64_t row = ((od * kD + a) * H + oh * kH + b) * W;
                    SCALAR *dst = gx + row;
                    if (kW == 2) {
                        for (int64_t ow = 0; ow < oW; ++ow) {
                            const int64_t i = row + 2 * ow;
                            const int s0 = ir[ow] == i, s1 = ir[ow] == i + 1;
                            dst[2 * ow] = s0 ? gr[ow] : (SCALAR)0;
                            dst[2 * ow + 1] = s1 ? gr[ow] : (SCALAR)0;
                            hits += s0 + s1;
                        }
                    } else {
                        for (int64_t ow = 0; ow < oW; ++ow) {
                            for (int64_t c = 0; c < kW; ++c) {
                                const int s = ir[ow] == row + ow * kW + c;
                                dst[ow * kW + c] = s ? gr[ow] : (SCALAR)0;
                                hits += s;
                            }
                        }
                    }
                    /* columns right of the last window: no gradient */
                    memset(dst + oW * kW, 0, (size_t)(W - oW * kW) * sizeof(SCALAR));
                }
            }
        }
        /* rows below the last window of this depth slab */
        for (int64_t a = 0; a < kD; ++a) {
            const int64_t h = oH * kH;
            memset(gx + ((od * kD + a) * H + h) * W, 0, (size_t)((H - h) * W) * sizeof(SCALAR));
        }
    }
    /* depth slabs behind the last window */
    memset(gx + oD * kD * H * W, 0, (size_t)((D - oD * kD) * H * W) * sizeof(SCALAR));
    return hits == fc_spatial_size(g->out);
}

void FC_FN(fc_max_pool_backward_)(const SCALAR *gy, const int64_t *indices,
                                  const fc_geometry *g, SCALAR *gx, int nthreads)
{
    const int64_t in_plane = fc_spatial_size(g->in), out_plane = fc_spatial_size(g->out);
    const int tiled = fc_pool_is_tiled(g);
    const int nt = fc_threads_for(nthreads, g->channels * in_plane);
    (void)nt;
    /* A thread owns whole planes, and every index points inside its own
     * plane: overlapping windows never race (pitfall 3). */
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
    for (int64_t p = 0; p < g->channels; ++p) {
        const SCALAR *gyp = gy + p * out_plane;
        const int64_t *ip = indices + p * out_plane;
        SCALAR *gxp = gx + p * in_plane;
        if (!tiled || !FC_FN(max_backward_plane_tiled_)(gyp, ip, g, gxp))
            FC_FN(max_backward_plane_)(gyp, ip, out_plane, in_plane, gxp);
    }
}

/* ------------------------------------------------------------------------ */
/* Average pooling                                                          */
/* ------------------------------------------------------------------------ */

/* The divisor of one window: divisor_override when non-zero, else the
 * product of the per-axis counts. */
#define FC_AVG_DIVISOR(override_, cd, ch, cw) \
    ((override_) ? (SCALAR)(override_) : (SCALAR)((cd) * (ch) * (cw)))

static void FC_FN(avg_row_)(const SCALAR *x, const fc_geometry *g, int64_t od,
                            int64_t oh, int include_pad, int64_t div_override,
                            SCALAR *y)
{
    const int64_t H = g->in[1], W = g->in[2];
    int64_t d0, d1, h0, h1;
    const int64_t cd = fc_avg_extent(od, g->in[0], g->kernel[0], g->stride[0], g->pad[0],
                                     include_pad, &d0, &d1);
    const int64_t ch = fc_avg_extent(oh, H, g->kernel[1], g->stride[1], g->pad[1],
                                     include_pad, &h0, &h1);
    for (int64_t ow = 0; ow < g->out[2]; ++ow) {
        int64_t w0, w1;
        const int64_t cw = fc_avg_extent(ow, W, g->kernel[2], g->stride[2], g->pad[2],
                                         include_pad, &w0, &w1);
        SCALAR sum = 0;
        for (int64_t d = d0; d < d1; ++d)
            for (int64_t h = h0; h < h1; ++h) {
                const SCALAR *r = x + (d * H + h) * W;
                for (int64_t w = w0; w < w1; ++w) sum += r[w];
            }
        y[ow] = sum / FC_AVG_DIVISOR(div_override, cd, ch, cw);
    }
}

/* Tiled: sum the window rows into the output row, then divide once. */
static void FC_FN(avg_row_tiled_)(const SCALAR *x, const fc_geometry *g, int64_t od,
                                  int64_t oh, int64_t div_override, SCALAR *y)
{
    const int64_t H = g->in[1], W = g->in[2], oW = g->out[2];
    const int64_t kD = g->kernel[0], kH = g->kernel[1], kW = g->kernel[2];
    const SCALAR div = FC_AVG_DIVISOR(div_override, kD, kH, kW);
    for (int64_t ow = 0; ow < oW; ++ow) y[ow] = 0;
    for (int64_t a = 0; a < kD; ++a)
        for (int64_t b = 0; b < kH; ++b) {
            const SCALAR *r = x + ((od * kD + a) * H + oh * kH + b) * W;
            for (int64_t ow = 0; ow < oW; ++ow)
                for (int64_t c = 0; c < kW; ++c) y[ow] += r[ow * kW + c];
        }
    for (int64_t ow = 0; ow < oW; ++ow) y[ow] /= div;
}

void FC_FN(fc_avg_pool_)(const SCALAR *x, const fc_geometry *g, int count_include_pad,
                         int64_t divisor_override, SCALAR *y, int nthreads)
{
    const int64_t oD = g->out[0], oH = g->out[1], oW = g->out[2];
    const int64_t in_plane = fc_spatial_size(g->in), out_plane = fc_spatial_size(g->out);
    const int64_t rows = g->channels * oD * oH;
    const int tiled = fc_pool_is_tiled(g);
    const int nt = fc_threads_for(nthreads, g->channels * in_plane);
    (void)nt;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
    for (int64_t r = 0; r < rows; ++r) {
        const int64_t p = r / (oD * oH), od = (r / oH) % oD, oh = r % oH;
        SCALAR *yr = y + p * out_plane + (od * oH + oh) * oW;
        if (tiled)
            FC_FN(avg_row_tiled_)(x + p * in_plane, g, od, oh, divisor_override, yr);
        else
            FC_FN(avg_row_)(x + p * in_plane, g, od, oh, count_include_pad,
                            divisor_override, yr);
    }
}

/* General backward of one plane: each window adds grad / divisor to its
 * in-bounds taps (overlapping windows accumulate). */
static void FC_FN(avg_backward_plane_)(const SCALAR *gy, const fc_geometry *g,
                                       int include_pad, int64_t div_override, SCALAR *gx)
{
    const int64_t H = g->in[1], W = g->in[2];
    memset(gx, 0, (size_t)fc_spatial_size(g->in) * sizeof(SCALAR));
    for (int64_t od = 0; od < g->out[0]; ++od) {
        int64_t d0, d1;
        const int64_t cd = fc_avg_extent(od, g->in[0], g->kernel[0], g->stride[0],
                                         g->pad[0], include_pad, &d0, &d1);
        for (int64_t oh = 0; oh < g->out[1]; ++oh) {
            int64_t h0, h1;
            const int64_t ch = fc_avg_extent(oh, H, g->kernel[1], g->stride[1],
                                             g->pad[1], include_pad, &h0, &h1);
            for (int64_t ow = 0; ow < g->out[2]; ++ow, ++gy) {
                int64_t w0, w1;
                const int64_t cw = fc_avg_extent(ow, W, g->kernel[2], g->stride[2],
                                                 g->pad[2], include_pad, &w0, &w1);
                const SCALAR v = *gy / FC_AVG_DIVISOR(div_override, cd, ch, cw);
                for (int64_t d = d0; d < d1; ++d)
                    for (int64_t h = h0; h < h1; ++h) {
                        SCALAR *r = gx + (d * H + h) * W;
                        for (int64_t w = w0; w < w1; ++w) r[w] += v;
                    }
            }
        }
    }
}

/* Tiled backward of one plane: each input element gets its one window's
 * share, written once; elements outside every window get 0. */
static void FC_FN(avg_backward_plane_tiled_)(const SCALAR *gy, const fc_geometry *g,
                                             int64_t div_override, SCALAR *gx)
{
    const int64_t D = g->in[0], H = g->in[1], W = g->in[2];
    const int64_t oD = g->out[0], oH = g->out[1], oW = g->out[2];
    const int64_t kD = g->kernel[0], kH = g->kernel[1], kW = g->kernel[2];
    const SCALAR div = FC_AVG_DIVISOR(div_override, kD, kH, kW);
    for (int64_t od = 0; od < oD; ++od) {
        for (int64_t oh = 0; oh < oH; ++oh) {
            const SCALAR *gr = gy + (od * oH + oh) * oW;
            for (int64_t a = 0; a < kD; ++a)
                for (int64_t b = 0; b < kH; ++b) {
                    SCALAR *dst = gx + ((od * kD + a) * H + oh * kH + b) * W;
                    for (int64_t ow = 0; ow < oW; ++ow) {
                        const SCALAR v = gr[ow] / div;
                        for (int64_t c = 0; c < kW; ++c) dst[ow * kW + c] = v;
                    }
                    memset(dst + oW * kW, 0, (size_t)(W - oW * kW) * sizeof(SCALAR));
                }
        }
        for (int64_t a = 0; a < kD; ++a) {
            const int64_t h = oH * kH;
            memset(gx + ((od * kD + a) * H + h) * W, 0, (size_t)((H - h) * W) * sizeof(SCALAR));
        }
    }
    memset(gx + oD * kD * H * W, 0, (size_t)((D - oD * kD) * H * W) * sizeof(SCALAR));
}

void FC_FN(fc_avg_pool_backward_)(const SCALAR *gy, const fc_geometry *g,
                                  int count_include_pad, int64_t divisor_override,
                                  SCALAR *gx, int nthreads)
{
    const int64_t in_plane = fc_spatial_size(g->in), out_plane = fc_spatial_size(g->out);
    const int tiled = fc_pool_is_tiled(g);
    const int nt = fc_threads_for(nthreads, g->channels * in_plane);
    (void)nt;
    /* Whole planes per thread: overlapping windows never race. */
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
    for (int64_t p = 0; p < g->channels; ++p) {
        if (tiled)
            FC_FN(avg_backward_plane_tiled_)(gy + p * out_plane, g, divisor_override,
                                             gx + p * in_plane);
        else
            FC_FN(avg_backward_plane_)(gy + p * out_plane, g, count_include_pad,
                                       divisor_override, gx + p * in_plane);
    }
}

/* ------------------------------------------------------------------------ */
/* Adaptive average pooling                                                 */
/* ------------------------------------------------------------------------ */

void FC_FN(fc_adaptive_avg_pool_)(const SCALAR *x, const fc_geometry *g, SCALAR *y,
                                  int nthreads)
{
    const int64_t H = g->in[1], W = g->in[2];
    const int64_t oD = g->out[0], oH = g->out[1], oW = g->out[2];
    const int64_t in_plane = fc_spatial_size(g->in), out_plane = fc_spatial_size(g->out);
    const int64_t rows = g->channels * oD * oH;
    const int nt = fc_threads_for(nthreads, g->channels * in_plane);
    (void)nt;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
    for (int64_t r = 0; r < rows; ++r) {
        const int64_t p = r / (oD * oH), od = (r / oH) % oD, oh = r % oH;
        const SCALAR *xp = x + p * in_plane;
        SCALAR *yr = y + p * out_plane + (od * oH + oh) * oW;
        int64_t d0, d1, h0, h1;
        fc_adaptive_bin(od, g->in[0], oD, &d0, &d1);
        fc_adaptive_bin(oh, H, oH, &h0, &h1);
        for (int64_t ow = 0; ow < oW; ++ow) {
            int64_t w0, w1;
            fc_adaptive_bin(ow, W, oW, &w0, &w1);
            SCALAR sum = 0;
            for (int64_t d = d0; d < d1; ++d)
                for (int64_t h = h0; h < h1; ++h) {
                    const SCALAR *row = xp + (d * H + h) * W;
                    for (int64_t w = w0; w < w1; ++w) sum += row[w];
                }
            yr[ow] = sum / (SCALAR)((d1 - d0) * (h1 - h0) * (w1 - w0));
        }
    }
}

void FC_FN(fc_adaptive_avg_pool_backward_)(const SCALAR *gy, const fc_geometry *g,
                                           SCALAR *gx, int nthreads)
{
    const int64_t H = g->in[1], W = g->in[2];
    const int64_t in_plane = fc_spatial_size(g->in), out_plane = fc_spatial_size(g->out);
    const int nt = fc_threads_for(nthreads, g->channels * in_plane);
    (void)nt;
    /* Bins may overlap: whole planes per thread. */
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
    for (int64_t p = 0; p < g->channels; ++p) {
        const SCALAR *gyp = gy + p * out_plane;
        SCALAR *gxp = gx + p * in_plane;
        memset(gxp, 0, (size_t)in_plane * sizeof(SCALAR));
        for (int64_t od = 0; od < g->out[0]; ++od) {
            int64_t d0, d1;
            fc_adaptive_bin(od, g->in[0], g->out[0], &d0, &d1);
            for (int64_t oh = 0; oh < g->out[1]; ++oh) {
                int64_t h0, h1;
                fc_adaptive_bin(oh, H, g->out[1], &h0, &h1);
                for (int64_t ow = 0; ow < g->out[2]; ++ow, ++gyp) {
                    int64_t w0, w1;
                    fc_adaptive_bin(ow, W, g->out[2], &w0, &w1);
                    const SCALAR v = *gyp / (SCALAR)((d1 - d0) * (h1 - h0) * (w1 - w0));
                    for (int64_t d = d0; d < d1; ++d)
                        for (int64_t h = h0; h < h1; ++h) {
                            SCALAR *row = gxp + (d * H + h) * W;
                            for (int64_t w = w0; w < w1; ++w) row[w] += v;
                        }
                }
            }
        }
    }
}

#undef FC_AVG_DIVISOR
#undef FC_FN
