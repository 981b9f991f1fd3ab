/* Batch normalisation forward and backward for one scalar type and
 * instruction set.  Included by families_template.h once per dtype.
 *
 * The input is viewed as (batch, channels, spatial): channel c's values are
 * `batch` runs of `spatial` contiguous elements.  Threads own whole channels,
 * so every per-channel sum is one thread's and every output is written once.
 * Each channel is read for its sums and then again for its output right
 * after, while its runs are still in cache.
 *
 * No SIMD code of its own: the loops are plain C that each table's copy
 * compiles for its TARGET (GCC vectorises every one of them).  Sums
 * accumulate in double (float32 data too) in FC_BN_ACC independent partial
 * sums, which the compiler keeps in vector registers without reassociating
 * anything (the build has no -ffast-math).
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
#define FC_BN_ACC 8 /* partial sums per reduction: 2 AVX2 vectors of double, 1 AVX-512 */
/* The per-channel loops and the ReLU selects below are inlined into
 * FC_BN_CHANNEL functions, which call them with the ReLU flag and the
 * mask's presence as constants, so each variant compiles to its own
 * straight vector loop.  All are compiled without trapping math (common.h):
 * the selects then vectorise, and GCC inlines only between functions of the
 * same options (a ReLU select left as a call per value made the fused
 * forward 30x slower). */
#define FC_BN_LOOP static inline __attribute__((always_inline)) TARGET FC_NOTRAP
#define FC_BN_CHANNEL static TARGET FC_NOTRAP

static inline double fc_bn_total_(const double acc[FC_BN_ACC])
{
    double total = 0;
    for (int j = 0; j < FC_BN_ACC; ++j) total += acc[j];
    return total;
}
#endif

/* ReLU's forward and, from its output y, backward (as activation_template.h:
 * NaN stays NaN, 0 gradient at the kink). */
FC_BN_LOOP SCALAR FC_FN(bn_relu_)(SCALAR v) { return v < 0 ? 0 : v; }
FC_BN_LOOP SCALAR FC_FN(bn_relu_grad_)(SCALAR g, SCALAR y) { return y <= 0 ? 0 : g; }

/* sum(x - shift) and sum((x - shift)^2) over one channel. */
static TARGET void FC_FN(bn_channel_sums_)(const SCALAR *x, int64_t batch, int64_t stride,
                                           int64_t spatial, double shift, double *sum,
                                           double *sumsq)
{
    double acc[FC_BN_ACC] = {0}, acc2[FC_BN_ACC] = {0};
    for (int64_t n = 0; n < batch; ++n) {
        const SCALAR *row = x + n * stride;
        int64_t s = 0;
        for (; s + FC_BN_ACC <= spatial; s += FC_BN_ACC)
            for (int j = 0; j < FC_BN_ACC; ++j) {
                const double d = (double)row[s + j] - shift;
                acc[j] += d;
                acc2[j] += d * d;
            }
        for (; s < spatial; ++s) {
            const double d = (double)row[s] - shift;
            acc[0] += d;
            acc2[0] += d * d;
        }
    }
    *sum = fc_bn_total_(acc);
    *sumsq = fc_bn_total_(acc2);
}

/* sum(dy) and sum(dy * (x - mean)) over one channel, dy = gy, or with a
 * ReLU output y (not NULL) gy masked by y > 0.  A run's tail goes into the
 * first partial sums lane by lane, as a full block would: a tail summed
 * into one partial sum is a reduction the compiler may vectorise with
 * products rounded before the adds (no fused multiply-add), and would do so
 * in one of the masked and unmasked forms only, so that the fused
 * BatchNorm+ReLU would not equal BatchNorm then ReLU to the bit. */
FC_BN_LOOP void FC_FN(bn_channel_grad_sums_)(const SCALAR *gy, const SCALAR *y,
                                             const SCALAR *x, int64_t batch,
                                             int64_t stride, int64_t spatial,
                                             double mean, double *sum_dy,
                                             double *sum_dy_xmu)
{
    double acc[FC_BN_ACC] = {0}, acc2[FC_BN_ACC] = {0};
    for (int64_t n = 0; n < batch; ++n) {
        const SCALAR *gr = gy + n * stride, *xr = x + n * stride;
        const SCALAR *yr = y ? y + n * stride : gr;   /* gr: never read as a mask */
        for (int64_t s = 0; s < spatial; s += FC_BN_ACC) {
            const int lanes = spatial - s < FC_BN_ACC ? (int)(spatial - s) : FC_BN_ACC;
            for (int j = 0; j < lanes; ++j) {
                const double g = (double)(y ? FC_FN(bn_relu_grad_)(gr[s + j], yr[s + j])
                                            : gr[s + j]);
                acc[j] += g;
                acc2[j] += g * ((double)xr[s + j] - mean);
            }
        }
    }
    *sum_dy = fc_bn_total_(acc);
    *sum_dy_xmu = fc_bn_total_(acc2);
}

/* out = a * in + b over one channel (in, out: the channel's first run);
 * with relu, ReLU applied to out; with a ReLU output y (not NULL), in taken
 * as 0 where y <= 0 (the input is then ReLU's output gradient). */
FC_BN_LOOP void FC_FN(bn_channel_affine_)(const SCALAR *restrict in,
                                          const SCALAR *restrict y,
                                          int64_t batch, int64_t stride,
                                          int64_t spatial, SCALAR a, SCALAR b,
                                          int relu, SCALAR *restrict out)
{
    for (int64_t n = 0; n < batch; ++n) {
        const SCALAR *ir = in + n * stride, *yr = y ? y + n * stride : ir;
        SCALAR *orow = out + n * stride;
        for (int64_t s = 0; s < spatial; ++s) {
            const SCALAR v = a * (y ? FC_FN(bn_relu_grad_)(ir[s], yr[s]) : ir[s]) + b;
            orow[s] = relu ? FC_FN(bn_relu_)(v) : v;
        }
    }
}

/* out = ca * gy + cb * (x - m) + c0 over one channel: the input gradient
 * with batch statistics (gy masked by y > 0 when a ReLU output y is given).
 * x - m is taken in SCALAR before scaling, so data far from zero loses
 * nothing to cancellation. */
FC_BN_LOOP void FC_FN(bn_channel_input_grad_)(const SCALAR *restrict gy,
                                              const SCALAR *restrict y,
                                              const SCALAR *restrict x,
                                              int64_t batch, int64_t stride,
                                              int64_t spatial, SCALAR ca,
                                              SCALAR cb, SCALAR m, SCALAR c0,
                                              SCALAR *restrict out)
{
    for (int64_t n = 0; n < batch; ++n) {
        const SCALAR *gr = gy + n * stride, *xr = x + n * stride;
        const SCALAR *yr = y ? y + n * stride : gr;
        SCALAR *orow = out + n * stride;
        for (int64_t s = 0; s < spatial; ++s) {
            const SCALAR g = y ? FC_FN(bn_relu_grad_)(gr[s], yr[s]) : gr[s];
            orow[s] = ca * g + cb * (xr[s] - m) + c0;
        }
    }
}

/* y = a * x + b over one channel (x, y: its first run), then ReLU with relu. */
FC_BN_CHANNEL void FC_FN(bn_channel_output_)(const SCALAR *x, int64_t batch, int64_t stride,
                                             int64_t spatial, SCALAR a, SCALAR b, int relu,
                                             SCALAR *y)
{
    if (relu) /* constant flags: see FC_BN_LOOP */
        FC_FN(bn_channel_affine_)(x, NULL, batch, stride, spatial, a, b, 1, y);
    else
        FC_FN(bn_channel_affine_)(x, NULL, batch, stride, spatial, a, b, 0, y);
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
    (void)nt;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
    for (int64_t c = 0; c < channels; ++c) {
        const SCALAR *xc = x + c * spatial;
        if (compute_stats) {
            const double shift = (double)xc[0];
            double sum, sumsq;
            FC_FN(bn_channel_sums_)(xc, batch, stride, spatial, shift, &sum, &sumsq);
            const double centred = sum / (double)count;
            const double v = (sumsq - sum * centred) / (double)count;
            mean[c] = shift + centred;
            var[c] = v > 0 ? v : 0; /* rounding may leave a tiny negative */
        }
        if (y) {
            /* y = (x - mean) * invstd * w + b as one multiply-add per value */
            const double scale = weight[c] / sqrt(var[c] + eps);
            FC_FN(bn_channel_output_)(xc, batch, stride, spatial, (SCALAR)scale,
                                      (SCALAR)(bias[c] - mean[c] * scale), relu,
                                      y + c * spatial);
        }
    }
}

/* One channel of fc_batch_norm_backward (gy, mask, x, gx: the channel's
 * first run; mask: ReLU's output, or NULL without a fused ReLU). */
FC_BN_LOOP void FC_FN(bn_channel_backward_)(const SCALAR *gy, const SCALAR *mask,
                                            const SCALAR *x, int64_t batch, int64_t stride,
                                            int64_t spatial, double mean, double invstd,
                                            double weight, int batch_stats, int compute_sums,
                                            int64_t count, double *sum_dy,
                                            double *sum_dy_xmu, SCALAR *gx)
{
    if (compute_sums)
        FC_FN(bn_channel_grad_sums_)(gy, mask, x, batch, stride, spatial, mean, sum_dy,
                                     sum_dy_xmu);
    if (!gx) return;
    const double a = invstd * weight;
    if (!batch_stats) { /* constant statistics: dx = dy * invstd * w */
        FC_FN(bn_channel_affine_)(gy, mask, batch, stride, spatial, (SCALAR)a, 0, 0, gx);
        return;
    }
    /* dx = a * (dy - sum_dy / n - (x - mean) * invstd^2 * sum_dy_xmu / n) */
    const double k = invstd * invstd * *sum_dy_xmu / (double)count;
    FC_FN(bn_channel_input_grad_)(gy, mask, x, batch, stride, spatial, (SCALAR)a,
                                  (SCALAR)(-a * k), (SCALAR)mean,
                                  (SCALAR)(-a * *sum_dy / (double)count), gx);
}

/* bn_channel_backward_ with the mask's presence made a constant (FC_BN_LOOP). */
FC_BN_CHANNEL void FC_FN(bn_channel_backward_masked_)(const SCALAR *gy, const SCALAR *mask,
                                                      const SCALAR *x, int64_t batch,
                                                      int64_t stride, int64_t spatial,
                                                      double mean, double invstd,
                                                      double weight, int batch_stats,
                                                      int compute_sums, int64_t count,
                                                      double *sum_dy, double *sum_dy_xmu,
                                                      SCALAR *gx)
{
    if (mask)
        FC_FN(bn_channel_backward_)(gy, mask, x, batch, stride, spatial, mean, invstd, weight,
                                    batch_stats, compute_sums, count, sum_dy, sum_dy_xmu, gx);
    else
        FC_FN(bn_channel_backward_)(gy, NULL, x, batch, stride, spatial, mean, invstd, weight,
                                    batch_stats, compute_sums, count, sum_dy, sum_dy_xmu, gx);
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
    (void)nt;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
    for (int64_t c = 0; c < channels; ++c) {
        const int64_t first = c * spatial;
        FC_FN(bn_channel_backward_masked_)(gy + first, relu_output ? relu_output + first : NULL,
                                           x + first, batch, stride, spatial, mean[c],
                                           invstd[c], weight[c], batch_stats, compute_sums,
                                           count, &sum_dy[c], &sum_dy_xmu[c],
                                           gx ? gx + first : NULL);
    }
}
