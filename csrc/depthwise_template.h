/* Depthwise convolution (groups == C_in: one input channel per group, with
 * `multiplier` output channels each), forward and backward, for one scalar
 * type.  Included by depthwise.c once per dtype (SCALAR, SFX).
 *
 * As a GEMM, each group is a 1 x taps by taps x L product: too thin for any
 * GEMM to run well.  Direct loops instead: one pass per tap over a plane that
 * stays in cache, the inner loop a contiguous multiply-add. */

#define D_FN(name) FC_CAT(name, SFX)

void D_FN(fc_depthwise_forward_)(const SCALAR *x, const SCALAR *w, int64_t batch,
                                 const fc_geometry *g, int64_t multiplier, SCALAR *y,
                                 int nthreads)
{
    const int64_t taps = fc_kernel_size(g), c_out = g->channels * multiplier;
    const int64_t plane_in = fc_spatial_size(g->in), plane_out = fc_spatial_size(g->out);
    const int64_t planes = batch * c_out;
    const int nt = fc_threads_for(nthreads, planes * taps * plane_out);
    (void)nt;
    /* A thread owns whole output planes. */
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
    for (int64_t p = 0; p < planes; ++p) {
        const int64_t n = p / c_out, o = p % c_out;
        const SCALAR *restrict img = x + (n * g->channels + o / multiplier) * plane_in;
        SCALAR *restrict dst = y + p * plane_out;
        memset(dst, 0, (size_t)plane_out * sizeof(SCALAR));
        for (int64_t t = 0; t < taps; ++t) {
            const SCALAR wt = w[o * taps + t];
            int64_t kd, kh, kw;
            fc_tap_offsets(g, t, &kd, &kh, &kw);
            FC_FOR_TAP_ROWS(g, kd, kh, kw, {
                /* Indexed from the row start: w0 < 0 in the left padding. */
                const SCALAR *restrict src = img + in_row;
                SCALAR *restrict out = dst + out_row;
                if (sw == 1)
                    for (int64_t ow = lo; ow < hi; ++ow) out[ow] += wt * src[w0 + ow];
                else
                    for (int64_t ow = lo; ow < hi; ++ow) out[ow] += wt * src[w0 + ow * sw];
            });
        }
    }
}

void D_FN(fc_depthwise_backward_input_)(const SCALAR *gy, const SCALAR *w, int64_t batch,
                                        const fc_geometry *g, int64_t multiplier,
                                        SCALAR *gx, int nthreads)
{
    const int64_t taps = fc_kernel_size(g), c_out = g->channels * multiplier;
    const int64_t plane_in = fc_spatial_size(g->in), plane_out = fc_spatial_size(g->out);
    const int64_t planes = batch * g->channels;
    const int nt = fc_threads_for(nthreads, planes * multiplier * taps * plane_out);
    (void)nt;
    /* A thread owns whole input-gradient planes: overlapping windows of one
     * plane are all summed by the same thread, so nothing races. */
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
    for (int64_t p = 0; p < planes; ++p) {
        const int64_t n = p / g->channels, c = p % g->channels;
        SCALAR *restrict dst = gx + p * plane_in;
        memset(dst, 0, (size_t)plane_in * sizeof(SCALAR));
        for (int64_t o = c * multiplier; o < (c + 1) * multiplier; ++o) {
            const SCALAR *restrict grad = gy + (n * c_out + o) * plane_out;
            for (int64_t t = 0; t < taps; ++t) {
                const SCALAR wt = w[o * taps + t];
                int64_t kd, kh, kw;
                fc_tap_offsets(g, t, &kd, &kh, &kw);
                FC_FOR_TAP_ROWS(g, kd, kh, kw, {
                    SCALAR *restrict in = dst + in_row;
                    const SCALAR *restrict src = grad + out_row;
                    if (sw == 1)
                        for (int64_t ow = lo; ow < hi; ++ow) in[w0 + ow] += wt * src[ow];
                    else
                        for (int64_t ow = lo; ow < hi; ++ow) in[w0 + ow * sw] += wt * src[ow];
                });
            }
        }
    }
}

void D_FN(fc_depthwise_backward_weight_)(const SCALAR *gy, const SCALAR *x, int64_t batch,
                                         const fc_geometry *g, int64_t multiplier,
                                         SCALAR *gw, int nthreads)
{
    const int64_t taps = fc_kernel_size(g), c_out = g->channels * multiplier;
    const int64_t plane_in = fc_spatial_size(g->in), plane_out = fc_spatial_size(g->out);
    const int nt = fc_threads_for(nthreads, batch * c_out * taps * plane_out);
    (void)nt;
    /* A thread owns whole rows of the weight gradient (output channels) and
     * sums over the batch itself: race-free without atomics. */
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
    for (int64_t o = 0; o < c_out; ++o) {
        for (int64_t t = 0; t < taps; ++t) {
            int64_t kd, kh, kw;
            fc_tap_offsets(g, t, &kd, &kh, &kw);
            SCALAR total = 0;
            for (int64_t n = 0; n < batch; ++n) {
                const SCALAR *img = x + (n * g->channels + o / multiplier) * plane_in;
                const SCALAR *grad = gy + (n * c_out + o) * plane_out;
                FC_FOR_TAP_ROWS(g, kd, kh, kw, {
                    const SCALAR *restrict src = img + in_row;
                    const SCALAR *restrict gr = grad + out_row;
                    SCALAR row = 0;  /* per-row partial sums limit rounding growth */
                    if (sw == 1)
                        for (int64_t ow = lo; ow < hi; ++ow) row += gr[ow] * src[w0 + ow];
                    else
                        for (int64_t ow = lo; ow < hi; ++ow) row += gr[ow] * src[w0 + ow * sw];
                    total += row;
                });
            }
            gw[o * taps + t] = total;
        }
    }
}

#undef D_FN
