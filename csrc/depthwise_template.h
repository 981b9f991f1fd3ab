/* Depthwise convolution (groups == C_in: one input channel per group, with
 * `multiplier` output channels each), forward and backward, for one scalar
 * type.  Included by depthwise.c once per dtype (SCALAR, SFX), after the
 * per-ISA kernels of depthwise_simd_template.h.
 *
 * As a GEMM, each group is a 1 x taps by taps x L product: too thin for any
 * GEMM to run well.  Direct loops instead, one plane at a time: a thread
 * stages the plane it reads in its own zero-padded scratch (fc_dw_stage) so
 * that every tap of every row is one contiguous in-bounds run, then the SIMD
 * kernels apply all taps of a row in one pass.  The plain loops at the top
 * (one pass per tap, bounds split per row) serve strided input gradients and
 * planes too large to stage. */

#define D_FN(name) FC_CAT(name, SFX)
#define D_ISA_FN(name, isa) FC_CAT(FC_CAT(FC_CAT(name, isa), _), SFX)

/* ------------------------------------------------------------ plain loops */

static void D_FN(dw_forward_direct_)(const SCALAR *img, const fc_geometry *g,
                                     const SCALAR *w, SCALAR *dst)
{
    memset(dst, 0, (size_t)fc_spatial_size(g->out) * sizeof(SCALAR));
    for (int64_t t = 0; t < fc_kernel_size(g); ++t) {
        const SCALAR wt = w[t];
        int64_t kd, kh, kw;
        fc_tap_offsets(g, t, &kd, &kh, &kw);
        FC_FOR_TAP_ROWS(g, kd, kh, kw, {
            /* Indexed from the row start: w0 < 0 in the left padding. */
            const SCALAR *restrict src = img + in_row;
            SCALAR *restrict out = dst + out_row;
            for (int64_t ow = lo; ow < hi; ++ow) out[ow] += wt * src[w0 + ow * sw];
        });
    }
}

/* Input-gradient plane from the `multiplier` consecutive gradient planes
 * (and weights) of the channel's outputs. */
static void D_FN(dw_input_direct_)(const SCALAR *grad, const fc_geometry *g, int64_t multiplier,
                                   const SCALAR *w, SCALAR *dst)
{
    const int64_t taps = fc_kernel_size(g), plane_out = fc_spatial_size(g->out);
    memset(dst, 0, (size_t)fc_spatial_size(g->in) * sizeof(SCALAR));
    for (int64_t m = 0; m < multiplier; ++m, grad += plane_out, w += taps)
        for (int64_t t = 0; t < taps; ++t) {
            const SCALAR wt = w[t];
            int64_t kd, kh, kw;
            fc_tap_offsets(g, t, &kd, &kh, &kw);
            FC_FOR_TAP_ROWS(g, kd, kh, kw, {
                SCALAR *restrict in = dst + in_row;
                const SCALAR *restrict src = grad + out_row;
                for (int64_t ow = lo; ow < hi; ++ow) in[w0 + ow * sw] += wt * src[ow];
            });
        }
}

/* Weight-gradient row gw[0, taps) of output channel o, summed over the batch. */
static void D_FN(dw_weight_direct_)(const SCALAR *gy, const SCALAR *x, int64_t batch,
                                    const fc_geometry *g, int64_t multiplier, int64_t o,
                                    SCALAR *gw)
{
    const int64_t plane_in = fc_spatial_size(g->in), plane_out = fc_spatial_size(g->out);
    const int64_t c_out = g->channels * multiplier;
    for (int64_t t = 0; t < fc_kernel_size(g); ++t) {
        int64_t kd, kh, kw;
        fc_tap_offsets(g, t, &kd, &kh, &kw);
        double total = 0;
        for (int64_t n = 0; n < batch; ++n) {
            const SCALAR *img = x + (n * g->channels + o / multiplier) * plane_in;
            const SCALAR *grad = gy + (n * c_out + o) * plane_out;
            FC_FOR_TAP_ROWS(g, kd, kh, kw, {
                const SCALAR *restrict src = img + in_row;
                const SCALAR *restrict gr = grad + out_row;
                SCALAR row = 0;  /* per-row partial sums limit rounding growth */
                for (int64_t ow = lo; ow < hi; ++ow) row += gr[ow] * src[w0 + ow * sw];
                total += row;
            });
        }
        gw[t] = (SCALAR)total;
    }
}

/* ---------------------------------------------------------------- staging */

/* Input plane x into xs as fc_dw_input_stage lays it out; writes only the
 * in-bounds values (the rest of xs stays zero). */
static void D_FN(dw_stage_input_)(const SCALAR *x, const fc_geometry *g, const fc_dw_stage *s,
                                  SCALAR *xs)
{
    const int64_t W = g->in[2], sw = g->stride[2], pw = g->pad[2];
    for (int64_t id = 0; id < g->in[0]; ++id)
        for (int64_t ih = 0; ih < g->in[1]; ++ih, x += W) {
            const int64_t a = id + g->pad[0], b = ih + g->pad[1];
            if (a >= s->ext[0] || b >= s->ext[1]) continue;  /* never read */
            SCALAR *row = xs + (a * s->ext[1] + b) * s->pitch;
            if (sw == 1) {
                const int64_t n = pw >= s->seg ? 0 : W < s->seg - pw ? W : s->seg - pw;
                memcpy(row + pw, x, (size_t)n * sizeof(SCALAR));
                continue;
            }
            /* Padded column j = iw + pw goes to phase j % sw, offset j / sw. */
            for (int64_t iw = 0, ph = pw % sw, q = pw / sw; iw < W && q < s->seg; ++iw) {
                row[ph * s->seg + q] = x[iw];
                if (++ph == sw) { ph = 0; ++q; }
            }
        }
}

/* Output-gradient plane gy into gs as fc_dw_grad_stage lays it out; writes
 * only the values some tap reads (the rest of gs stays zero). */
static void D_FN(dw_stage_grad_)(const SCALAR *gy, const fc_geometry *g, const fc_dw_stage *s,
                                 SCALAR *gs)
{
    const int64_t OW = g->out[2], left = (g->kernel[2] - 1) * g->dilation[2];
    const int64_t n = OW < s->seg - left ? OW : s->seg - left;
    for (int64_t od = 0; od < g->out[0]; ++od)
        for (int64_t oh = 0; oh < g->out[1]; ++oh, gy += OW) {
            const int64_t a = od + (g->kernel[0] - 1) * g->dilation[0];
            const int64_t b = oh + (g->kernel[1] - 1) * g->dilation[1];
            if (a >= s->ext[0] || b >= s->ext[1]) continue;
            memcpy(gs + (a * s->ext[1] + b) * s->pitch + left, gy, (size_t)n * sizeof(SCALAR));
        }
}

/* ------------------------------------------------------ SIMD kernel choice */

typedef void (*D_FN(dw_rows_fn_))(const SCALAR *, const fc_dw_rows *, const int64_t *, int64_t,
                                  const SCALAR *, SCALAR *);
typedef void (*D_FN(dw_weight_fn_))(const SCALAR *, const fc_dw_rows *, const int64_t *,
                                    int64_t, const SCALAR *, double *);

/* The variant of kernel NAME for the active instruction set (fc_simd_*). */
#define D_PICK(NAME)                                                            \
    switch (fc_simd_active()) {                                                 \
    FC_IF_X86(case FC_SIMD_AVX512: return D_ISA_FN(NAME, avx512);               \
              case FC_SIMD_AVX2: return D_ISA_FN(NAME, avx2);)                  \
    default: return D_ISA_FN(NAME, generic);                                    \
    }

static D_FN(dw_rows_fn_) D_FN(dw_pick_rows_)(void) { D_PICK(dw_rows_) }
static D_FN(dw_weight_fn_) D_FN(dw_pick_weight_)(void) { D_PICK(dw_weight_plane_) }

/* ------------------------------------------------------------ entry points */

int64_t D_FN(fc_depthwise_workspace_)(const fc_geometry *g, int64_t multiplier, int nthreads)
{
    const fc_dw_plan p = fc_dw_scratch_plan(g, multiplier, (int64_t)sizeof(SCALAR));
    const int64_t bytes = p.offsets_bytes + (nthreads < 1 ? 1 : nthreads) * p.per_thread_bytes;
    return (bytes + (int64_t)sizeof(SCALAR) - 1) / (int64_t)sizeof(SCALAR);
}

void D_FN(fc_depthwise_forward_)(const SCALAR *x, const SCALAR *w, const SCALAR *bias,
                                 int64_t batch, const fc_geometry *g, int64_t multiplier,
                                 SCALAR *y, SCALAR *ws, int nthreads)
{
    const int64_t taps = fc_kernel_size(g), c_out = g->channels * multiplier;
    const int64_t plane_in = fc_spatial_size(g->in), plane_out = fc_spatial_size(g->out);
    const fc_dw_stage stage = fc_dw_input_stage(g);
    const fc_dw_rows rows = fc_dw_forward_rows(g, &stage);
    const fc_dw_plan plan = fc_dw_scratch_plan(g, multiplier, (int64_t)sizeof(SCALAR));
    const D_FN(dw_rows_fn_) kernel = D_FN(dw_pick_rows_)();
    int64_t *off = plan.forward ? (int64_t *)ws : NULL;
    if (off) fc_dw_input_taps(g, &stage, off);
    const int nt = fc_threads_for(nthreads, batch * c_out * taps * plane_out);
    (void)nt;
    /* A thread owns whole input planes and the output planes they feed. */
#ifdef _OPENMP
#pragma omp parallel num_threads(nt)
#endif
    {
        SCALAR *xs = off ? (SCALAR *)fc_dw_region(ws, &plan, fc_thread_num()) : NULL;
        if (xs) memset(xs, 0, (size_t)(stage.size * (int64_t)sizeof(SCALAR)));
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
        for (int64_t p = 0; p < batch * g->channels; ++p) {
            const int64_t n = p / g->channels, c = p % g->channels;
            const SCALAR *img = x + p * plane_in;
            if (xs) D_FN(dw_stage_input_)(img, g, &stage, xs);
            for (int64_t o = c * multiplier; o < (c + 1) * multiplier; ++o) {
                SCALAR *dst = y + (n * c_out + o) * plane_out;
                if (xs)
                    kernel(xs, &rows, off, taps, w + o * taps, dst);
                else
                    D_FN(dw_forward_direct_)(img, g, w + o * taps, dst);
                if (bias)   /* while the plane is still in cache: no pass over y */
                    for (int64_t i = 0; i < plane_out; ++i) dst[i] += bias[o];
            }
        }
    }
}

void D_FN(fc_depthwise_backward_input_)(const SCALAR *gy, const SCALAR *w, int64_t batch,
                                        const fc_geometry *g, int64_t multiplier,
                                        SCALAR *gx, SCALAR *ws, int nthreads)
{
    const int64_t taps = fc_kernel_size(g), c_out = g->channels * multiplier;
    const int64_t plane_in = fc_spatial_size(g->in), plane_out = fc_spatial_size(g->out);
    const fc_dw_stage stage = fc_dw_grad_stage(g);
    const fc_dw_rows rows = fc_dw_grad_rows(g, &stage);
    const fc_dw_plan plan = fc_dw_scratch_plan(g, multiplier, (int64_t)sizeof(SCALAR));
    const D_FN(dw_rows_fn_) kernel = D_FN(dw_pick_rows_)();
    int64_t *off = plan.input ? (int64_t *)ws : NULL;
    if (off) fc_dw_grad_taps(g, &stage, multiplier, off);
    const int nt = fc_threads_for(nthreads, batch * c_out * taps * plane_out);
    (void)nt;
    /* A thread owns whole input-gradient planes: overlapping windows of one
     * plane are all summed by the same thread, so nothing races. */
#ifdef _OPENMP
#pragma omp parallel num_threads(nt)
#endif
    {
        SCALAR *gs = off ? (SCALAR *)fc_dw_region(ws, &plan, fc_thread_num()) : NULL;
        if (gs) memset(gs, 0, (size_t)(multiplier * stage.size * (int64_t)sizeof(SCALAR)));
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
        for (int64_t p = 0; p < batch * g->channels; ++p) {
            const int64_t n = p / g->channels, c = p % g->channels;
            const SCALAR *grad = gy + (n * c_out + c * multiplier) * plane_out;
            const SCALAR *wc = w + c * multiplier * taps;
            if (!gs) {
                D_FN(dw_input_direct_)(grad, g, multiplier, wc, gx + p * plane_in);
                continue;
            }
            for (int64_t m = 0; m < multiplier; ++m)
                D_FN(dw_stage_grad_)(grad + m * plane_out, g, &stage, gs + m * stage.size);
            kernel(gs, &rows, off, multiplier * taps, wc, gx + p * plane_in);
        }
    }
}

void D_FN(fc_depthwise_backward_weight_)(const SCALAR *gy, const SCALAR *x, int64_t batch,
                                         const fc_geometry *g, int64_t multiplier,
                                         SCALAR *gw, SCALAR *ws, int nthreads)
{
    const int64_t taps = fc_kernel_size(g), c_out = g->channels * multiplier;
    const int64_t plane_in = fc_spatial_size(g->in), plane_out = fc_spatial_size(g->out);
    const int64_t planes = batch * g->channels, row = c_out * taps;
    const fc_dw_stage stage = fc_dw_input_stage(g);
    const fc_dw_rows rows = fc_dw_forward_rows(g, &stage);
    const fc_dw_plan plan = fc_dw_scratch_plan(g, multiplier, (int64_t)sizeof(SCALAR));
    const D_FN(dw_weight_fn_) kernel = D_FN(dw_pick_weight_)();
    const int nt = fc_threads_for(nthreads, batch * c_out * taps * plane_out);
    /* Planes in memory order, split into nt runs; run k sums into its own
     * gradient (in double: sums over many planes) and staging buffer, and
     * the runs are added in order at the end: race-free and deterministic.
     * (Channel by channel instead, each plane read would jump a batch
     * stride, out of reach of the hardware prefetcher.) */
    if (!plan.weight) {  /* plain loops: a thread owns whole weight-gradient rows */
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
        for (int64_t o = 0; o < c_out; ++o)
            D_FN(dw_weight_direct_)(gy, x, batch, g, multiplier, o, gw + o * taps);
        return;
    }
    int64_t *off = (int64_t *)ws;
    fc_dw_input_taps(g, &stage, off);
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
    for (int k = 0; k < nt; ++k) {
        /* Run k's region (whole cache lines: aligned sums, no false sharing). */
        double *sums = (double *)fc_dw_region(ws, &plan, k);
        SCALAR *xs = (SCALAR *)(sums + row);
        memset(sums, 0, (size_t)plan.weight);
        for (int64_t p = planes * k / nt; p < planes * (k + 1) / nt; ++p) {
            const int64_t n = p / g->channels, c = p % g->channels;
            D_FN(dw_stage_input_)(x + p * plane_in, g, &stage, xs);
            for (int64_t o = c * multiplier; o < (c + 1) * multiplier; ++o)
                kernel(xs, &rows, off, taps, gy + (n * c_out + o) * plane_out, sums + o * taps);
        }
    }
    for (int64_t i = 0; i < row; ++i) {
        double total = 0;
        for (int k = 0; k < nt; ++k) total += ((const double *)fc_dw_region(ws, &plan, k))[i];
        gw[i] = (SCALAR)total;
    }
}

#undef D_FN
#undef D_ISA_FN
#undef D_PICK
