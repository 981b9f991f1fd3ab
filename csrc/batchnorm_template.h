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
 * The variance uses sums shifted by the channel's first value:
 * var = (sum(d^2) - sum(d)^2 / n) / n with d = x - shift.  With the shift a
 * value of the channel, the cancellation that ruins the textbook one-pass
 * formula on data far from zero (mean >> std) does not happen, and the
 * statistics need one pass instead of two. */

#ifndef FC_BN_SHARED
#define FC_BN_SHARED
#define FC_BN_ACC 8 /* partial sums per reduction: 2 AVX2 vectors of double, 1 AVX-512 */

static inline double fc_bn_total_(const double acc[FC_BN_ACC])
{
    double total = 0;
    for (int j = 0; j < FC_BN_ACC; ++j) total += acc[j];
    return total;
}
#endif

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

/* sum(dy) and sum(dy * (x - mean)) over one channel. */
static TARGET void FC_FN(bn_channel_grad_sums_)(const SCALAR *gy, const SCALAR *x,
                                                int64_t batch, int64_t stride,
                                                int64_t spatial, double mean, double *sum_dy,
                                                double *sum_dy_xmu)
{
    double acc[FC_BN_ACC] = {0}, acc2[FC_BN_ACC] = {0};
    for (int64_t n = 0; n < batch; ++n) {
        const SCALAR *gr = gy + n * stride, *xr = x + n * stride;
        int64_t s = 0;
        for (; s + FC_BN_ACC <= spatial; s += FC_BN_ACC)
            for (int j = 0; j < FC_BN_ACC; ++j) {
                const double g = (double)gr[s + j];
                acc[j] += g;
                acc2[j] += g * ((double)xr[s + j] - mean);
            }
        for (; s < spatial; ++s) {
            const double g = (double)gr[s];
            acc[0] += g;
            acc2[0] += g * ((double)xr[s] - mean);
        }
    }
    *sum_dy = fc_bn_total_(acc);
    *sum_dy_xmu = fc_bn_total_(acc2);
}

/* out = a * in + b over one channel (in, out: the channel's first run). */
static TARGET void FC_FN(bn_channel_affine_)(const SCALAR *restrict in, int64_t batch,
                                             int64_t stride, int64_t spatial, SCALAR a,
                                             SCALAR b, SCALAR *restrict out)
{
    for (int64_t n = 0; n < batch; ++n) {
        const SCALAR *ir = in + n * stride;
        SCALAR *orow = out + n * stride;
        for (int64_t s = 0; s < spatial; ++s) orow[s] = a * ir[s] + b;
    }
}

/* out = ca * gy + cb * (x - m) + c0 over one channel: the input gradient
 * with batch statistics.  x - m is taken in SCALAR before scaling, so data
 * far from zero loses nothing to cancellation. */
static TARGET void FC_FN(bn_channel_input_grad_)(const SCALAR *restrict gy,
                                                 const SCALAR *restrict x, int64_t batch,
                                                 int64_t stride, int64_t spatial, SCALAR ca,
                                                 SCALAR cb, SCALAR m, SCALAR c0,
                                                 SCALAR *restrict out)
{
    for (int64_t n = 0; n < batch; ++n) {
        const SCALAR *gr = gy + n * stride, *xr = x + n * stride;
        SCALAR *orow = out + n * stride;
        for (int64_t s = 0; s < spatial; ++s) orow[s] = ca * gr[s] + cb * (xr[s] - m) + c0;
    }
}

/* fc_batch_norm_forward. */
static TARGET void FC_FN(batch_norm_forward_)(const void *x_, int64_t batch,
                                              int64_t channels, int64_t spatial,
                                              int compute_stats, double *mean, double *var,
                                              const void *weight_, const void *bias_,
                                              double eps, void *y_, int nthreads)
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
            FC_FN(bn_channel_affine_)(xc, batch, stride, spatial, (SCALAR)scale,
                                      (SCALAR)(bias[c] - mean[c] * scale), y + c * spatial);
        }
    }
}

/* fc_batch_norm_backward. */
static TARGET void FC_FN(batch_norm_backward_)(const void *gy_, const void *x_,
                                               int64_t batch, int64_t channels,
                                               int64_t spatial, const double *mean,
                                               const double *invstd, const void *weight_,
                                               int batch_stats, int compute_sums,
                                               int64_t count, double *sum_dy,
                                               double *sum_dy_xmu, void *gx_, int nthreads)
{
    const SCALAR *gy = gy_, *x = x_, *weight = weight_;
    SCALAR *gx = gx_;
    const int64_t stride = channels * spatial;
    const int nt = fc_threads_for(nthreads, 2 * channels * batch * spatial);
    (void)nt;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
    for (int64_t c = 0; c < channels; ++c) {
        const int64_t first = c * spatial;
        if (compute_sums)
            FC_FN(bn_channel_grad_sums_)(gy + first, x + first, batch, stride, spatial,
                                         mean[c], &sum_dy[c], &sum_dy_xmu[c]);
        if (!gx) continue;
        const double a = invstd[c] * weight[c];
        if (!batch_stats) { /* constant statistics: dx = dy * invstd * w */
            FC_FN(bn_channel_affine_)(gy + first, batch, stride, spatial, (SCALAR)a, 0,
                                      gx + first);
            continue;
        }
        /* dx = a * (dy - sum_dy / n - (x - mean) * invstd^2 * sum_dy_xmu / n) */
        const double k = invstd[c] * invstd[c] * sum_dy_xmu[c] / (double)count;
        FC_FN(bn_channel_input_grad_)(gy + first, x + first, batch, stride, spatial,
                                      (SCALAR)a, (SCALAR)(-a * k), (SCALAR)mean[c],
                                      (SCALAR)(-a * sum_dy[c] / (double)count), gx + first);
    }
}
