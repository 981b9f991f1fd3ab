/* Batch normalisation forward and backward for one scalar type and
 * instruction set.  Included by families_template.h once per dtype.
 *
 * The input is viewed as (batch, channels, spatial): channel c's values are
 * `batch` runs of `spatial` contiguous elements.  Threads own whole channels,
 * so every per-channel sum is one thread's and every output is written once.
 * A thread sweeps a block of its channels in memory order (image by image,
 * the block's runs of one image contiguous) for their sums, then again for
 * their outputs.  Blocks are sized (fc_bn_block_) for the second sweep to
 * find the block's inputs still in cache; channels too large for that
 * stream from memory twice, in blocks wide enough for the prefetchers
 * (bn_block_stats_ says why not channel by channel).
 *
 * The elementwise loops are plain C that each table's copy compiles for
 * its TARGET (GCC vectorises them).  The per-channel sums are written on
 * vectors of double (GCC's vector extensions, the table's width): sums
 * accumulate in double (float32 data too) in FC_BN_VACC independent vector
 * accumulators.  Left to the compiler, a reduction stays scalar (it may
 * not reassociate without -ffast-math) or keeps its partial sums on the
 * stack.
 *
 * Fused ReLU (BatchNorm followed by ReLU, as in most CNNs): the forward
 * clamps the output it writes anyway, and the backward takes the gradient
 * as 0 wherever that output (the mask a ReLU keeps) is <= 0, inside both of
 * its passes: no separate ReLU pass forward, no masked gradient array
 * backward.  Both use ReLU's own formulas (activation_template.h), so the
 * fused results equal BatchNorm then ReLU to the bit (FC_BN_LOOP below
 * for how the variants compile).
 *
 * The variance uses sums shifted by the channel's first value:
 * var = (sum(d^2) - sum(d)^2 / n) / n with d = x - shift.  With the shift a
 * value of the channel, the cancellation that ruins the textbook one-pass
 * formula on data far from zero (mean >> std) does not happen, and the
 * statistics need one pass instead of two. */

#ifndef FC_BN_SHARED
#define FC_BN_SHARED
/* Vector accumulators per sum of a run: enough independent adds in flight
 * to hide the add's latency, so that a run's loop waits on its loads only. */
#define FC_BN_VACC 4
/* The channels a sweep carries at once (their running sums live on the
 * stack: two vectors of double per channel). */
#define FC_BN_BLOCK 64

/* The bytes of a block's inputs that its second sweep should find still in
 * the core's cache (a sweep reads each input once, so the block's inputs are
 * all it brings in): within that, the second sweep reads from cache instead
 * of memory, one pass over the data of the forward's three and two of the
 * backward's five saved.  About half of a 1 MiB L2 cache, so that the
 * outputs streaming past and a smaller L2 leave the block's inputs in
 * place; the budget's effect on this machine is in docs/performance.md. */
#ifndef FC_BN_CACHE_BYTES
#define FC_BN_CACHE_BYTES (512 * 1024)
#endif

/* Channels per block: as many as keep the block's inputs (`channel_bytes`
 * a channel) within FC_BN_CACHE_BYTES, at most FC_BN_BLOCK, and at least one
 * block per thread.  A channel larger than the budget cannot be re-read
 * from cache anyway: its blocks take FC_BN_BLOCK channels, the longest
 * contiguous runs for the prefetchers (bn_block_stats_). */
static inline int64_t fc_bn_block_(int64_t channels, int nthreads, int64_t channel_bytes)
{
    const int64_t per_thread = (channels + nthreads - 1) / nthreads;
    int64_t most = FC_BN_BLOCK;
    if (channel_bytes > 0 && channel_bytes <= FC_BN_CACHE_BYTES &&
        FC_BN_CACHE_BYTES / channel_bytes < most)
        most = FC_BN_CACHE_BYTES / channel_bytes;
    return per_thread < most ? (per_thread > 0 ? per_thread : 1) : most;
}

/* The per-run loops and the ReLU selects below are inlined into
 * FC_BN_CHANNEL functions, which call them with the ReLU flag and the
 * mask's presence as constants, so each variant compiles to its own
 * straight vector loop.  All are compiled without trapping math (common.h):
 * the selects then vectorise, and GCC inlines only between functions of the
 * same options (a ReLU select left as a call per value made the fused
 * forward 30x slower). */
#define FC_BN_LOOP static inline __attribute__((always_inline)) TARGET FC_NOTRAP
#define FC_BN_CHANNEL static TARGET FC_NOTRAP

#endif

/* A vector of double (the table's width, FC_BN_DLANES values) and a vector
 * of as many SCALARs, loaded from any alignment and widened to double. */
#define FC_BN_DLANES ((int64_t)(VBYTES / sizeof(double)))
typedef double FC_FN(bn_dvec_) __attribute__((vector_size(VBYTES)));
typedef SCALAR FC_FN(bn_svec_)
    __attribute__((vector_size(VBYTES / sizeof(double) * sizeof(SCALAR)),
                   aligned(sizeof(SCALAR))));
typedef FC_FN(sint_) FC_FN(bn_smask_)
    __attribute__((vector_size(VBYTES / sizeof(double) * sizeof(SCALAR))));

FC_BN_LOOP FC_FN(bn_svec_) FC_FN(bn_load_)(const SCALAR *p)
{
    return *(const FC_FN(bn_svec_) *)p;
}

/* The last `count` (< FC_BN_DLANES) values at p, the other lanes `pad`. */
FC_BN_LOOP FC_FN(bn_svec_) FC_FN(bn_load_tail_)(const SCALAR *p, int64_t count, SCALAR pad)
{
    SCALAR lanes[FC_BN_DLANES];
    for (int64_t j = 0; j < FC_BN_DLANES; ++j) lanes[j] = j < count ? p[j] : pad;
    return FC_FN(bn_load_)(lanes);
}

FC_BN_LOOP FC_FN(bn_dvec_) FC_FN(bn_widen_)(FC_FN(bn_svec_) v)
{
    return __builtin_convertvector(v, FC_FN(bn_dvec_));
}

/* ReLU's backward on a vector: g where the output y > 0, else 0 (NaN in y
 * passes g, as bn_relu_grad_ below). */
FC_BN_LOOP FC_FN(bn_svec_) FC_FN(bn_relu_grad_vec_)(FC_FN(bn_svec_) g, FC_FN(bn_svec_) y)
{
    const FC_FN(bn_smask_) keep = ~(y <= 0);
    return (FC_FN(bn_svec_))((FC_FN(bn_smask_))g & keep);
}

/* ReLU's forward and, from its output y, backward (as activation_template.h:
 * NaN stays NaN, 0 gradient at the kink). */
FC_BN_LOOP SCALAR FC_FN(bn_relu_)(SCALAR v) { return v < 0 ? 0 : v; }
FC_BN_LOOP SCALAR FC_FN(bn_relu_grad_)(SCALAR g, SCALAR y) { return y <= 0 ? 0 : g; }

/* Adds u and u * v of one vector into the sums: u = p - p_shift (p masked
 * by the ReLU output y > 0 with `masked`), v = q - q_shift. */
FC_BN_LOOP void FC_FN(bn_add_products_)(FC_FN(bn_svec_) p, FC_FN(bn_svec_) y,
                                        FC_FN(bn_svec_) q, int masked,
                                        FC_FN(bn_dvec_) p_shift, FC_FN(bn_dvec_) q_shift,
                                        FC_FN(bn_dvec_) *acc, FC_FN(bn_dvec_) *acc2)
{
    const FC_FN(bn_dvec_) u =
        FC_FN(bn_widen_)(masked ? FC_FN(bn_relu_grad_vec_)(p, y) : p) - p_shift;
    *acc += u;
    *acc2 += u * (FC_FN(bn_widen_)(q) - q_shift);
}

/* Folds a run's accumulators into its channel's running sums. */
FC_BN_LOOP void FC_FN(bn_fold_)(const FC_FN(bn_dvec_) acc[FC_BN_VACC], FC_FN(bn_dvec_) *into)
{
    FC_FN(bn_dvec_) v = acc[0];
    for (int j = 1; j < FC_BN_VACC; ++j) v += acc[j];
    *into += v;
}

FC_BN_LOOP double FC_FN(bn_lanes_total_)(FC_FN(bn_dvec_) v)
{
    double total = 0;
    for (int64_t j = 0; j < FC_BN_DLANES; ++j) total += v[j];
    return total;
}

/* The one reduction both passes need: adds sum(u) and sum(u * v) over one
 * run of `spatial` values into its channel's sums, u = p - p_shift (p taken
 * as 0 where a ReLU output y, if not NULL, is <= 0) and v = q - q_shift.
 * The tail is padded with p = p_shift, y = 0 and q = q_shift, so that it
 * adds 0.  The masked and unmasked forms run the same vector operations on
 * the same values (a masked-out lane holds 0), so the fused BatchNorm+ReLU
 * equals BatchNorm then ReLU to the bit.  Each caller passes constants for
 * y's presence and the shifts' roles, and each inlined copy compiles to its
 * own straight loop. */
FC_BN_LOOP void FC_FN(bn_run_products_)(const SCALAR *p, const SCALAR *y, const SCALAR *q,
                                        int64_t spatial, double p_shift, double q_shift,
                                        FC_FN(bn_dvec_) *sum, FC_FN(bn_dvec_) *sum_products)
{
    const int64_t dl = FC_BN_DLANES;
    const int masked = y != NULL;
    const SCALAR *yr = masked ? y : p;   /* p: never read as a mask */
    const FC_FN(bn_dvec_) vp = (FC_FN(bn_dvec_)){0} + p_shift;
    const FC_FN(bn_dvec_) vq = (FC_FN(bn_dvec_)){0} + q_shift;
    FC_FN(bn_dvec_) acc[FC_BN_VACC] = {{0}}, acc2[FC_BN_VACC] = {{0}};
    int64_t s = 0;
    for (; s + FC_BN_VACC * dl <= spatial; s += FC_BN_VACC * dl)
        for (int j = 0; j < FC_BN_VACC; ++j) {
            const int64_t at = s + j * dl;
            FC_FN(bn_add_products_)(FC_FN(bn_load_)(p + at), FC_FN(bn_load_)(yr + at),
                                    FC_FN(bn_load_)(q + at), masked, vp, vq, &acc[j],
                                    &acc2[j]);
        }
    for (; s + dl <= spatial; s += dl)
        FC_FN(bn_add_products_)(FC_FN(bn_load_)(p + s), FC_FN(bn_load_)(yr + s),
                                FC_FN(bn_load_)(q + s), masked, vp, vq, &acc[0], &acc2[0]);
    if (s < spatial) {
        const int64_t left = spatial - s;
        FC_FN(bn_add_products_)(FC_FN(bn_load_tail_)(p + s, left, (SCALAR)p_shift),
                                FC_FN(bn_load_tail_)(yr + s, left, 0),
                                FC_FN(bn_load_tail_)(q + s, left, (SCALAR)q_shift), masked,
                                vp, vq, &acc[0], &acc2[0]);
    }
    FC_FN(bn_fold_)(acc, sum);
    FC_FN(bn_fold_)(acc2, sum_products);
}

/* Adds sum(x - shift) and sum((x - shift)^2) of one run into its channel's
 * sums. */
FC_BN_LOOP void FC_FN(bn_run_moments_)(const SCALAR *x, int64_t spatial, double shift,
                                       FC_FN(bn_dvec_) *sum, FC_FN(bn_dvec_) *sumsq)
{
    FC_FN(bn_run_products_)(x, NULL, x, spatial, shift, shift, sum, sumsq);
}

/* Adds sum(dy) and sum(dy * (x - mean)) of one run into its channel's sums,
 * dy = gy, or with a ReLU output y (not NULL) gy masked by y > 0. */
FC_BN_LOOP void FC_FN(bn_run_grad_moments_)(const SCALAR *gy, const SCALAR *y,
                                            const SCALAR *x, int64_t spatial, double mean,
                                            FC_FN(bn_dvec_) *sum_dy,
                                            FC_FN(bn_dvec_) *sum_dy_xmu)
{
    FC_FN(bn_run_products_)(gy, y, x, spatial, 0, mean, sum_dy, sum_dy_xmu);
}

/* out = a * in + b over one run; with relu, ReLU applied to out; with a
 * ReLU output y (not NULL), in taken as 0 where y <= 0 (the input is then
 * ReLU's output gradient). */
FC_BN_LOOP void FC_FN(bn_run_affine_)(const SCALAR *restrict in, const SCALAR *restrict y,
                                      int64_t spatial, SCALAR a, SCALAR b, int relu,
                                      SCALAR *restrict out)
{
    const SCALAR *yr = y ? y : in;
    for (int64_t s = 0; s < spatial; ++s) {
        const SCALAR v = a * (y ? FC_FN(bn_relu_grad_)(in[s], yr[s]) : in[s]) + b;
        out[s] = relu ? FC_FN(bn_relu_)(v) : v;
    }
}

/* out = ca * gy + cb * (x - m) + c0 over one run: the input gradient with
 * batch statistics (gy masked by y > 0 when a ReLU output y is given).
 * x - m is taken in SCALAR before scaling, so data far from zero loses
 * nothing to cancellation. */
FC_BN_LOOP void FC_FN(bn_run_input_grad_)(const SCALAR *restrict gy, const SCALAR *restrict y,
                                          const SCALAR *restrict x, int64_t spatial,
                                          SCALAR ca, SCALAR cb, SCALAR m, SCALAR c0,
                                          SCALAR *restrict out)
{
    const SCALAR *yr = y ? y : gy;
    for (int64_t s = 0; s < spatial; ++s) {
        const SCALAR g = y ? FC_FN(bn_relu_grad_)(gy[s], yr[s]) : gy[s];
        out[s] = ca * g + cb * (x[s] - m) + c0;
    }
}

/* Mean and biased variance of the `nc` channels from x (the block's first
 * channel).  The block is swept in memory order, image by image: channel by
 * channel, an image's run of one channel is `spatial` values a whole
 * channel-stride from the next image's (4 KiB every 256 KiB on a 64x64x32x32
 * batch), which the hardware prefetchers follow badly; a block's runs of one
 * image are contiguous.  Each channel's sums still add its runs in image
 * order, so the result does not depend on the blocks or threads. */
static TARGET void FC_FN(bn_block_stats_)(const SCALAR *x, int64_t batch, int64_t stride,
                                          int64_t spatial, int64_t nc, double *mean,
                                          double *var)
{
    FC_FN(bn_dvec_) sum[FC_BN_BLOCK], sumsq[FC_BN_BLOCK];
    double shift[FC_BN_BLOCK];
    for (int64_t c = 0; c < nc; ++c) {
        sum[c] = sumsq[c] = (FC_FN(bn_dvec_)){0};
        shift[c] = (double)x[c * spatial];   /* the channel's first value */
    }
    for (int64_t n = 0; n < batch; ++n)
        for (int64_t c = 0; c < nc; ++c)
            FC_FN(bn_run_moments_)(x + n * stride + c * spatial, spatial, shift[c], &sum[c],
                                   &sumsq[c]);
    const double count = (double)(batch * spatial);
    for (int64_t c = 0; c < nc; ++c) {
        const double total = FC_FN(bn_lanes_total_)(sum[c]);
        const double centred = total / count;
        const double v = (FC_FN(bn_lanes_total_)(sumsq[c]) - total * centred) / count;
        mean[c] = shift[c] + centred;
        var[c] = v > 0 ? v : 0; /* rounding may leave a tiny negative */
    }
}

/* y = a * x + b over a block's channels (x, y: its first channel), then
 * ReLU with relu; swept in memory order as bn_block_stats_. */
FC_BN_LOOP void FC_FN(bn_block_output_)(const SCALAR *x, int64_t batch, int64_t stride,
                                        int64_t spatial, int64_t nc, const SCALAR *a,
                                        const SCALAR *b, int relu, SCALAR *y)
{
    for (int64_t n = 0; n < batch; ++n)
        for (int64_t c = 0; c < nc; ++c) {
            const int64_t at = n * stride + c * spatial;
            FC_FN(bn_run_affine_)(x + at, NULL, spatial, a[c], b[c], relu, y + at);
        }
}

/* bn_block_output_ with the ReLU flag made a constant (FC_BN_LOOP). */
FC_BN_CHANNEL void FC_FN(bn_block_output_relu_)(const SCALAR *x, int64_t batch,
                                                int64_t stride, int64_t spatial, int64_t nc,
                                                const SCALAR *a, const SCALAR *b, int relu,
                                                SCALAR *y)
{
    if (relu)
        FC_FN(bn_block_output_)(x, batch, stride, spatial, nc, a, b, 1, y);
    else
        FC_FN(bn_block_output_)(x, batch, stride, spatial, nc, a, b, 0, y);
}

/* fc_batch_norm_forward. */
static TARGET void FC_FN(batch_norm_forward_)(const void *x_, int64_t batch,
                                                        int64_t channels, int64_t spatial,
                                                        int compute_stats, double *mean,
                                                        double *var, const void *weight_,
                                                        const void *bias_, double eps,
                                                        int relu, void *y_, int nthreads)
{
    const SCALAR *x = x_, *weight = weight_, *bias = bias_;
    SCALAR *y = y_;
    const int64_t stride = channels * spatial, count = batch * spatial;
    const int nt = fc_threads_for(nthreads, channels * count);
    /* the second sweep re-reads x */
    const int64_t block = fc_bn_block_(channels, nt, count * (int64_t)sizeof(SCALAR));
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
    for (int64_t c0 = 0; c0 < channels; c0 += block) {
        const int64_t nc = channels - c0 < block ? channels - c0 : block;
        const SCALAR *xb = x + c0 * spatial;
        if (compute_stats)
            FC_FN(bn_block_stats_)(xb, batch, stride, spatial, nc, mean + c0, var + c0);
        if (!y) continue;
        SCALAR a[FC_BN_BLOCK], b[FC_BN_BLOCK];
        for (int64_t c = 0; c < nc; ++c) {
            /* y = (x - mean) * invstd * w + b as one multiply-add per value */
            const double scale = weight[c0 + c] / sqrt(var[c0 + c] + eps);
            a[c] = (SCALAR)scale;
            b[c] = (SCALAR)(bias[c0 + c] - mean[c0 + c] * scale);
        }
        FC_FN(bn_block_output_relu_)(xb, batch, stride, spatial, nc, a, b, relu,
                                     y + c0 * spatial);
    }
}

/* The backward's per-channel coefficients (bn_block_backward_). */
typedef struct {
    SCALAR a, cb, m, c0;
} FC_FN(bn_grad_coef_);

/* One block of fc_batch_norm_backward (gy, mask, x, gx: the block's first
 * channel; mask: ReLU's output, or NULL without a fused ReLU; mean ..
 * sum_dy_xmu: the block's first entries); swept in memory order, first the
 * sums (compute_sums), then the input gradient (gx not NULL). */
FC_BN_LOOP void FC_FN(bn_block_backward_)(const SCALAR *gy, const SCALAR *mask,
                                          const SCALAR *x, int64_t batch, int64_t stride,
                                          int64_t spatial, int64_t nc, const double *mean,
                                          const double *invstd, const SCALAR *weight,
                                          int batch_stats, int compute_sums, int64_t count,
                                          double *sum_dy, double *sum_dy_xmu, SCALAR *gx)
{
    if (compute_sums) {
        FC_FN(bn_dvec_) sdy[FC_BN_BLOCK], sdx[FC_BN_BLOCK];
        for (int64_t c = 0; c < nc; ++c) sdy[c] = sdx[c] = (FC_FN(bn_dvec_)){0};
        for (int64_t n = 0; n < batch; ++n)
            for (int64_t c = 0; c < nc; ++c) {
                const int64_t at = n * stride + c * spatial;
                FC_FN(bn_run_grad_moments_)(gy + at, mask ? mask + at : NULL, x + at, spatial,
                                            mean[c], &sdy[c], &sdx[c]);
            }
        for (int64_t c = 0; c < nc; ++c) {
            sum_dy[c] = FC_FN(bn_lanes_total_)(sdy[c]);
            sum_dy_xmu[c] = FC_FN(bn_lanes_total_)(sdx[c]);
        }
    }
    if (!gx) return;
    FC_FN(bn_grad_coef_) coef[FC_BN_BLOCK];
    for (int64_t c = 0; c < nc; ++c) {
        const double a = invstd[c] * (double)weight[c];
        /* dx = a * (dy - sum_dy / n - (x - mean) * invstd^2 * sum_dy_xmu / n);
         * constant statistics: dx = dy * invstd * w */
        const double k = batch_stats ? invstd[c] * invstd[c] * sum_dy_xmu[c] / (double)count : 0;
        coef[c].a = (SCALAR)a;
        coef[c].cb = (SCALAR)(-a * k);
        coef[c].m = (SCALAR)mean[c];
        coef[c].c0 = batch_stats ? (SCALAR)(-a * sum_dy[c] / (double)count) : 0;
    }
    for (int64_t n = 0; n < batch; ++n)
        for (int64_t c = 0; c < nc; ++c) {
            const int64_t at = n * stride + c * spatial;
            const SCALAR *m = mask ? mask + at : NULL;
            if (batch_stats)
                FC_FN(bn_run_input_grad_)(gy + at, m, x + at, spatial, coef[c].a, coef[c].cb,
                                          coef[c].m, coef[c].c0, gx + at);
            else
                FC_FN(bn_run_affine_)(gy + at, m, spatial, coef[c].a, 0, 0, gx + at);
        }
}

/* bn_block_backward_ with the mask's presence made a constant (FC_BN_LOOP). */
FC_BN_CHANNEL void FC_FN(bn_block_backward_masked_)(const SCALAR *gy, const SCALAR *mask,
                                                    const SCALAR *x, int64_t batch,
                                                    int64_t stride, int64_t spatial,
                                                    int64_t nc, const double *mean,
                                                    const double *invstd,
                                                    const SCALAR *weight, int batch_stats,
                                                    int compute_sums, int64_t count,
                                                    double *sum_dy, double *sum_dy_xmu,
                                                    SCALAR *gx)
{
    if (mask)
        FC_FN(bn_block_backward_)(gy, mask, x, batch, stride, spatial, nc, mean, invstd,
                                  weight, batch_stats, compute_sums, count, sum_dy,
                                  sum_dy_xmu, gx);
    else
        FC_FN(bn_block_backward_)(gy, NULL, x, batch, stride, spatial, nc, mean, invstd,
                                  weight, batch_stats, compute_sums, count, sum_dy,
                                  sum_dy_xmu, gx);
}

/* fc_batch_norm_backward. */
static TARGET FC_NOTRAP void FC_FN(batch_norm_backward_)(const void *gy_,
                                                         const void *relu_output_,
                                                         const void *x_, int64_t batch,
                                                         int64_t channels, int64_t spatial,
                                                         const double *mean,
                                                         const double *invstd,
                                                         const void *weight_, int batch_stats,
                                                         int compute_sums, int64_t count,
                                                         double *sum_dy, double *sum_dy_xmu,
                                                         void *gx_, int nthreads)
{
    const SCALAR *gy = gy_, *relu_output = relu_output_, *x = x_, *weight = weight_;
    SCALAR *gx = gx_;
    const int64_t stride = channels * spatial;
    const int nt = fc_threads_for(nthreads, 2 * channels * batch * spatial);
    /* the second sweep re-reads gy, x and the ReLU mask */
    const int64_t block = fc_bn_block_(channels, nt, (relu_output ? 3 : 2) * batch * spatial *
                                                         (int64_t)sizeof(SCALAR));
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
    for (int64_t c0 = 0; c0 < channels; c0 += block) {
        const int64_t nc = channels - c0 < block ? channels - c0 : block;
        const int64_t first = c0 * spatial;
        FC_FN(bn_block_backward_masked_)(gy + first, relu_output ? relu_output + first : NULL,
                                         x + first, batch, stride, spatial, nc, mean + c0,
                                         invstd + c0, weight + c0, batch_stats, compute_sums,
                                         count, sum_dy + c0, sum_dy_xmu + c0,
                                         gx ? gx + first : NULL);
    }
}
