/* Weight gradient of a convolution as one fused implicit GEMM, for one
 * (scalar type, instruction set):
 *     grad_w (m x K) += grad_out (m x P) * cols^T (P x K)
 * over P = batch * L output positions, K = channels * taps column rows.
 *
 * Included by isa_template.h after gemm_template.h, whose micro-kernel and
 * register transposes it drives (same instruction-set macros).
 * Neither operand is materialised: for each block of KC positions the packed
 * A panels are cut from grad_out and each packed B panel is built from the
 * images just before the micro-kernels use it, while it sits in L1/L2 (a
 * whole packed cols^T is several MB per image and round-trips through L3).
 * Both operands hold positions contiguously but the micro-kernel wants them
 * interleaved by position, so packing is a transpose, done LANES x LANES in
 * registers. */

/* Rows of grad_out packed at once: the A block (<= 512 KiB, half of L2)
 * stays in L2 while every B panel of a position block streams past it; a
 * smaller block builds each B panel once per block (docs/performance.md). */
#define G_MC (((int64_t)(512 * 1024 / sizeof(SCALAR)) / FC_GEMM_KC) / MR * MR)

#ifndef FC_WG_POS_DEFINED
#define FC_WG_POS_DEFINED
/* An output position of the batch: image b, output index (od, oh, ow). */
typedef struct {
    int64_t b, od, oh, ow;
} fc_wg_pos;

static fc_wg_pos fc_wg_pos_of(const fc_geometry *g, int64_t j)
{
    const int64_t l_size = fc_spatial_size(g->out);
    const int64_t l = j % l_size;
    fc_wg_pos at = {j / l_size, l / (g->out[1] * g->out[2]), l / g->out[2] % g->out[1],
                    l % g->out[2]};
    return at;
}
#endif

/* Row buffer stride: KC plus a vector of slack, so fills may overshoot. */
#define G_LDR (FC_GEMM_KC + FC_LANES)

/* Zero dst[0, n) a vector at a time.  May write up to LANES - 1 elements past
 * n: rows are filled left to right with slack at the end, so the overshoot
 * is rewritten or unused.  (memset calls cost more than these short runs.) */
static inline __attribute__((always_inline)) TARGET void FC_FN(zero_)(SCALAR *dst, int64_t n)
{
    for (int64_t i = 0; i < n; i += FC_LANES) *(FC_FN(uvec_) *)(dst + i) = (FC_FN(vec_)){0};
}

/* Copy src[0, n) to dst; reads stay below src_end (the end of the caller's
 * buffer), writes may overshoot as in zero_. */
static inline __attribute__((always_inline)) TARGET void
FC_FN(copy_)(SCALAR *dst, const SCALAR *src, int64_t n, const SCALAR *src_end)
{
    typedef FC_FN(uvec_) uvec;
    int64_t i = 0;
    for (; i + FC_LANES <= n; i += FC_LANES) *(uvec *)(dst + i) = *(const uvec *)(src + i);
    if (i == n) return;
    if (n >= FC_LANES) {   /* the last vector again, overlapping the previous */
        *(uvec *)(dst + n - FC_LANES) = *(const uvec *)(src + n - FC_LANES);
        return;
    }
    /* A short run (small images): one whole vector when the source buffer
     * extends that far; the extra values land in dst's overshoot. */
    if (src + FC_LANES <= src_end) {
        *(uvec *)dst = *(const uvec *)src;
        return;
    }
    /* Fewer than LANES (<= 16) elements: no loop for the compiler to turn
     * back into a memcpy call. */
    switch (n) {
    case 15: dst[14] = src[14]; /* fall through */
    case 14: dst[13] = src[13]; /* fall through */
    case 13: dst[12] = src[12]; /* fall through */
    case 12: dst[11] = src[11]; /* fall through */
    case 11: dst[10] = src[10]; /* fall through */
    case 10: dst[9] = src[9]; /* fall through */
    case 9: dst[8] = src[8]; /* fall through */
    case 8: dst[7] = src[7]; /* fall through */
    case 7: dst[6] = src[6]; /* fall through */
    case 6: dst[5] = src[5]; /* fall through */
    case 5: dst[4] = src[4]; /* fall through */
    case 4: dst[3] = src[3]; /* fall through */
    case 3: dst[2] = src[2]; /* fall through */
    case 2: dst[1] = src[1]; /* fall through */
    case 1: dst[0] = src[0]; /* fall through */
    default: break;
    }
}

/* dst[i] = src[2*i] for i < n, reading below src_end; writes may overshoot
 * as in zero_.  Stride 2 is the common strided conv: a vector of it is two
 * loads and one two-source permute (vpermt2ps) instead of LANES scalar
 * moves (docs/performance.md). */
static inline __attribute__((always_inline)) TARGET void
FC_FN(gather2_)(SCALAR *dst, const SCALAR *src, int64_t n, const SCALAR *src_end)
{
    int64_t i = 0;
#if G_HAVE_TRANSPOSE
    typedef FC_FN(uvec_) uvec;
    const FC_FN(ivec_) even = FC_FN(iota_)() * 2;
    /* Whole vectors read up to 2 * LANES past each start: only the last
     * rows of the last image fall back to the scalar loop. */
    if (src + 2 * ((n + FC_LANES - 1) / FC_LANES * FC_LANES) <= src_end) {
        for (; i < n; i += FC_LANES) {
            const FC_FN(vec_) a = *(const uvec *)(src + 2 * i);
            const FC_FN(vec_) b = *(const uvec *)(src + 2 * i + FC_LANES);
            *(uvec *)(dst + i) = __builtin_shuffle(a, b, even);
        }
        return;
    }
#endif
    for (; i < n; ++i) dst[i] = src[2 * i];
}

/* Column row (channel c, tap kd, kh, kw) at the n positions from `at`:
 * im2col_row_ of im2col_template.h, cut at arbitrary positions of the batch.
 * x holds image b's channel c at x + b*x_image_stride + c*D*H*W.  dst needs
 * LANES elements of slack past n. */
static TARGET void FC_FN(wg_row_)(const SCALAR *x, int64_t x_image_stride, const fc_geometry *g,
                                 int64_t c, int64_t kd, int64_t kh, int64_t kw, fc_wg_pos at,
                                 int64_t n, SCALAR *dst, const SCALAR *x_end)
{
    const int64_t H = g->in[1], W = g->in[2];
    const int64_t oD = g->out[0], oH = g->out[1], oW = g->out[2];
    const int64_t sw = g->stride[2];
    const int64_t w0 = kw * g->dilation[2] - g->pad[2];
    int64_t lo, hi;
    if (sw == 1) {   /* no divisions in the common case: this runs per row block */
        lo = w0 < 0 ? -w0 : 0;
        hi = W - w0 < oW ? W - w0 : oW;
        if (lo > oW) lo = oW;
        if (hi < lo) hi = lo;
    } else {
        fc_valid_range(W, oW, sw, w0, &lo, &hi);
    }
    const SCALAR *im = x + at.b * x_image_stride + c * fc_spatial_size(g->in);
    while (n > 0) {
        const int64_t run = oW - at.ow < n ? oW - at.ow : n;
        const int64_t id = at.od * g->stride[0] - g->pad[0] + kd * g->dilation[0];
        const int64_t ih = at.oh * g->stride[1] - g->pad[1] + kh * g->dilation[1];
        if ((uint64_t)id >= (uint64_t)g->in[0] || (uint64_t)ih >= (uint64_t)H) {
            FC_FN(zero_)(dst, run);   /* padding row */
        } else {
            /* zeros | valid run | zeros, clipped to [ow, ow + run); each
             * piece's overshoot is rewritten by the next. */
            const SCALAR *src = im + (id * H + ih) * W;
            const int64_t end = at.ow + run;
            const int64_t a = lo < at.ow ? at.ow : lo > end ? end : lo;
            const int64_t e = hi < a ? a : hi > end ? end : hi;
            FC_FN(zero_)(dst, a - at.ow);
            if (sw == 1)
                FC_FN(copy_)(dst + (a - at.ow), src + w0 + a, e - a, x_end);
            else if (sw == 2)
                FC_FN(gather2_)(dst + (a - at.ow), src + w0 + 2 * a, e - a, x_end);
            else
                for (int64_t ow = a; ow < e; ++ow) dst[ow - at.ow] = src[w0 + ow * sw];
            FC_FN(zero_)(dst + (e - at.ow), end - e);
        }
        dst += run;
        n -= run;
        at.ow += run;
        if (at.ow < oW) break;   /* n is spent mid-row */
        at.ow = 0;
        if (++at.oh < oH) continue;
        at.oh = 0;
        if (++at.od < oD) continue;
        at.od = 0;
        ++at.b;
        im += x_image_stride;
    }
}

/* Packed B panel: column rows [r0, r0 + NR) at the kc positions from `at`,
 * each row built in rowbuf (NR rows of G_LDR), then interleaved into dst. */
static TARGET void FC_FN(wg_pack_b_)(const SCALAR *x, int64_t x_image_stride,
                                    const SCALAR *x_end, const fc_geometry *g, int64_t r0, fc_wg_pos at,
                                    int64_t kc, SCALAR *restrict rowbuf, SCALAR *restrict dst)
{
    const int64_t taps = fc_kernel_size(g), rows = g->channels * taps;
    const int64_t live = rows - r0 < FC_NR ? rows - r0 : FC_NR;
    /* Step (c, kd, kh, kw) along the rows instead of dividing for each. */
    int64_t c = r0 / taps, kd, kh, kw;
    fc_tap_offsets(g, r0 % taps, &kd, &kh, &kw);
    for (int64_t q = 0; q < live; ++q) {
        FC_FN(wg_row_)(x, x_image_stride, g, c, kd, kh, kw, at, kc, rowbuf + q * G_LDR,
                       x_end);
        if (++kw < g->kernel[2]) continue;
        kw = 0;
        if (++kh < g->kernel[1]) continue;
        kh = 0;
        if (++kd < g->kernel[0]) continue;
        kd = 0;
        ++c;
    }
    /* A narrow last panel (a stem's 27 rows) only as wide as its vectors:
     * wg_serial_ reads no more of it. */
    FC_FN(interleave_nr_)(rowbuf, G_LDR, live, kc, dst);
}

/* Packed A block: rows [0, mc) of grad_out (row o of image b at
 * gout + b*gout_image_stride + o*L) at the kc positions from (b, l), in MR-tall
 * panels.  A block of positions may span images: interleave each image's run. */
static TARGET void FC_FN(wg_pack_a_)(const SCALAR *gout, int64_t gout_image_stride,
                                    int64_t l_size, int64_t mc, int64_t b, int64_t l,
                                    int64_t kc, SCALAR *restrict dst)
{
    const SCALAR *src = gout + b * gout_image_stride + l;
    for (int64_t p = 0, run = l_size - l; p < kc; p += run, run = l_size) {
        if (run > kc - p) run = kc - p;
        FC_FN(interleave_mr_panels_)(src, l_size, mc, run, dst + p * MR, MR * kc);
        src += gout_image_stride - l_size + run;   /* the next image's row start */
    }
}

/* Elements of workspace one thread needs (besides its private accumulator). */
static int64_t FC_FN(wg_workspace_)(void)
{
    return G_MC * FC_GEMM_KC + FC_NR * (FC_GEMM_KC + G_LDR) + 4 * FC_GEMM_ALIGN / (int64_t)sizeof(SCALAR);
}

/* c (m x K, leading dimension ldc) += grad_out * cols^T over positions
 * [j0, j1) of the batch, on one thread with `ws` (wg_workspace_() elements);
 * returns early, c half-summed, once `stop` is set (checked per block). */
static TARGET void FC_FN(wg_serial_)(const SCALAR *x, int64_t x_image_stride,
                                    const SCALAR *x_end, const SCALAR *gout, int64_t gout_image_stride,
                                    const fc_geometry *g, int64_t m, int64_t j0, int64_t j1,
                                    SCALAR *c, int64_t ldc, SCALAR *ws, fc_stop *stop)
{
    const int64_t rows = g->channels * fc_kernel_size(g), l_size = fc_spatial_size(g->out);
    SCALAR *pa = (SCALAR *)fc_align_up(ws);
    SCALAR *rowbuf = (SCALAR *)fc_align_up(pa + G_MC * FC_GEMM_KC);
    SCALAR *pb = (SCALAR *)fc_align_up(rowbuf + FC_NR * G_LDR);
    SCALAR edge[MR * FC_NR] __attribute__((aligned(64)));
    for (int64_t p0 = j0; p0 < j1; p0 += FC_GEMM_KC) {
        const int64_t kc = j1 - p0 < FC_GEMM_KC ? j1 - p0 : FC_GEMM_KC;
        const fc_wg_pos at = fc_wg_pos_of(g, p0);
        for (int64_t ic = 0; ic < m; ic += G_MC) {
            const int64_t mc = m - ic < G_MC ? m - ic : G_MC;
            if (fc_stopping(stop)) return;
            FC_FN(wg_pack_a_)(gout + ic * l_size, gout_image_stride, l_size, mc, at.b,
                             p0 % l_size, kc, pa);
            for (int64_t jr = 0; jr < rows; jr += FC_NR) {
                const int64_t nr = rows - jr < FC_NR ? rows - jr : FC_NR;
                FC_FN(wg_pack_b_)(x, x_image_stride, x_end, g, jr, at, kc, rowbuf, pb);
                for (int64_t ir = 0; ir < mc; ir += MR) {
                    const int64_t mr = mc - ir < MR ? mc - ir : MR;
                    SCALAR *ct = c + (ic + ir) * ldc + jr;
                    if (mr == MR && nr == FC_NR) {
                        FC_FN(micro_kernel_)(kc, pa + ir * kc, pb, ct, ldc, 1, NULL);
                        continue;
                    }
                    /* Edge tile: compute the vectors holding its columns (all
                     * wg_pack_b_ wrote), add the valid part. */
                    FC_FN(micro_kernel_cols_)(kc, pa + ir * kc, pb, edge, FC_NR, 0, NULL, nr);
                    for (int64_t i = 0; i < mr; ++i)
                        for (int64_t j = 0; j < nr; ++j) ct[i * ldc + j] += edge[i * FC_NR + j];
                }
            }
        }
    }
}

/* Split the positions between threads; thread 0 accumulates into c, the
 * others into private sums (after `nthreads` workspaces) added at the end in
 * thread order, so a given thread count always gives the same bits. */
static void FC_FN(wgrad_)(const SCALAR *x, int64_t x_image_stride,
                                    const SCALAR *gout, int64_t gout_image_stride,
                                    int64_t batch, const fc_geometry *g, int64_t m,
                                    SCALAR *c, int64_t ldc, SCALAR *ws, int nthreads)
{
    const int64_t rows = g->channels * fc_kernel_size(g);
    const int64_t positions = batch * fc_spatial_size(g->out);
    const int64_t per_thread = FC_FN(wg_workspace_)();
    /* End of the images: short runs may read whole vectors up to here. */
    const SCALAR *x_end = x + (batch - 1) * x_image_stride + g->channels * fc_spatial_size(g->in);
    const int64_t blocks = (positions + FC_GEMM_KC - 1) / FC_GEMM_KC;
    fc_stop *stop = fc_stop_flag();
    /* As in gemm_: below ~16M multiply-adds one thread beats waking others. */
    int nt = fc_threads_for(nthreads, m * rows * positions / 64);
    if (nt > blocks) nt = (int)blocks;
    if (nt <= 1) {
        FC_FN(wg_serial_)(x, x_image_stride, x_end, gout, gout_image_stride, g, m, 0, positions, c,
                         ldc, ws, stop);
        return;
    }
    SCALAR *priv = ws + nthreads * per_thread;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
    for (int t = 0; t < nt; ++t) {
        SCALAR *ct = t ? priv + (t - 1) * m * rows : c;
        if (t) memset(ct, 0, (size_t)(m * rows) * sizeof(SCALAR));
        FC_FN(wg_serial_)(x, x_image_stride, x_end, gout, gout_image_stride, g, m,
                         positions * t / nt, positions * (t + 1) / nt, ct, t ? rows : ldc,
                         ws + t * per_thread, stop);
    }
    for (int t = 1; t < nt; ++t)
        for (int64_t i = 0; i < m; ++i) {
            const SCALAR *src = priv + (t - 1) * m * rows + i * rows;
            for (int64_t j = 0; j < rows; ++j) c[i * ldc + j] += src[j];
        }
}

/* fc_conv_weight_grad_workspace: nthreads workspaces, then the private
 * sums of threads 1.. (m x n each). */
static int64_t FC_FN(conv_weight_grad_workspace_)(int64_t m, int64_t n, int nthreads)
{
    if (nthreads < 1) nthreads = 1;
    return FC_FN(wg_workspace_)() * nthreads + (nthreads - 1) * m * n;
}

/* fc_conv_weight_grad. */
static void FC_FN(conv_weight_grad_)(const void *x, int64_t x_image_stride, const void *gout,
                                     int64_t gout_image_stride, int64_t batch,
                                     const fc_geometry *g, int64_t m, void *grad_w, int64_t ldw,
                                     void *ws, int nthreads)
{
    if (m <= 0 || batch <= 0 || g->channels <= 0 || fc_spatial_size(g->out) <= 0) return;
    FC_FN(wgrad_)((const SCALAR *)x, x_image_stride, (const SCALAR *)gout, gout_image_stride,
                  batch, g, m, (SCALAR *)grad_w, ldw, (SCALAR *)ws, nthreads);
}

#undef G_MC
#undef G_LDR
