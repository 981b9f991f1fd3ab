/* Batch normalisation forward and backward for one scalar type and
 * instruction set.  Included by families_template.h once per dtype.
 *
 * The input is viewed as (batch, channels, spatial): channel c's values are
 * `batch` runs of `spatial` contiguous elements.  Threads own whole channels,
 * so every per-channel sum is one thread's and every output is written once.
 * Each channel is read for its sums and then again for its output right
 * after, while its runs are still in cache.
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
/* Vector accumulators per sum: enough independent adds in flight to cover
 * the add's latency while the channel streams from cache. */
#define FC_BN_VACC 4
/* The per-channel loops and the ReLU selects below are inlined into
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

FC_BN_LOOP double FC_FN(bn_total_)(const FC_FN(bn_dvec_) acc[FC_BN_VACC])
{
    FC_FN(bn_dvec_) v = acc[0];
    for (int j = 1; j < FC_BN_VACC; ++j) v += acc[j];
    double total = 0;
    for (int64_t j = 0; j < FC_BN_DLANES; ++j) total += v[j];
    return total;
}

/* ReLU's forward and, from its output y, backward (as activation_template.h:
 * NaN stays NaN, 0 gradient at the kink). */
FC_BN_LOOP SCALAR FC_FN(bn_relu_)(SCALAR v) { return v < 0 ? 0 : v; }
FC_BN_LOOP SCALAR FC_FN(bn_relu_grad_)(SCALAR g, SCALAR y) { return y <= 0 ? 0 : g; }

/* Adds d and d^2 of one vector of a channel's values into the sums. */
FC_BN_LOOP void FC_FN(bn_add_moments_)(FC_FN(bn_svec_) v, FC_FN(bn_dvec_) shift,
                                       FC_FN(bn_dvec_) *acc, FC_FN(bn_dvec_) *acc2)
{
    const FC_FN(bn_dvec_) d = FC_FN(bn_widen_)(v) - shift;
    *acc += d;
    *acc2 += d * d;
}

/* sum(x - shift) and sum((x - shift)^2) over one channel (a run's tail
 * padded with the shift, which adds 0). */
static TARGET void FC_FN(bn_channel_sums_)(const SCALAR *x, int64_t batch, int64_t stride,
                                           int64_t spatial, double shift, double *sum,
                                           double *sumsq)
{
    const int64_t dl = FC_BN_DLANES;
    const FC_FN(bn_dvec_) vshift = (FC_FN(bn_dvec_)){0} + shift;
    FC_FN(bn_dvec_) acc[FC_BN_VACC] = {{0}}, acc2[FC_BN_VACC] = {{0}};
    for (int64_t n = 0; n < batch; ++n) {
        const SCALAR *row = x + n * stride;
        int64_t s = 0;
        for (; s + FC_BN_VACC * dl <= spatial; s += FC_BN_VACC * dl)
            for (int j = 0; j < FC_BN_VACC; ++j)
                FC_FN(bn_add_moments_)(FC_FN(bn_load_)(row + s + j * dl), vshift, &acc[j],
                                       &acc2[j]);
        for (; s + dl <= spatial; s += dl)
            FC_FN(bn_add_moments_)(FC_FN(bn_load_)(row + s), vshift, &acc[0], &acc2[0]);
        if (s < spatial)
            FC_FN(bn_add_moments_)(FC_FN(bn_load_tail_)(row + s, spatial - s, (SCALAR)shift),
                                   vshift, &acc[0], &acc2[0]);
    }
    *sum = FC_FN(bn_total_)(acc);
    *sumsq = FC_FN(bn_total_)(acc2);
}

/* Adds dy and dy * (x - mean) of one vector into the sums; dy = gy, masked
 * by the ReLU output y > 0 with `masked`. */
FC_BN_LOOP void FC_FN(bn_add_grad_moments_)(FC_FN(bn_svec_) gy, FC_FN(bn_svec_) y,
                                            FC_FN(bn_svec_) x, int masked,
                                            FC_FN(bn_dvec_) mean, FC_FN(bn_dvec_) *acc,
                                            FC_FN(bn_dvec_) *acc2)
{
    const FC_FN(bn_dvec_) g = FC_FN(bn_widen_)(masked ? FC_FN(bn_relu_grad_vec_)(gy, y) : gy);
    *acc += g;
    *acc2 += g * (FC_FN(bn_widen_)(x) - mean);
}

/* sum(dy) and sum(dy * (x - mean)) over one channel, dy = gy, or with a
 * ReLU output y (not NULL) gy masked by y > 0.  The masked and unmasked
 * forms run the same vector operations on the same values (a masked-out
 * lane holds 0), so the fused BatchNorm+ReLU equals BatchNorm then ReLU to
 * the bit.  A run's tail is padded with gy = 0 and y = 0, which add 0. */
FC_BN_LOOP void FC_FN(bn_channel_grad_sums_)(const SCALAR *gy, const SCALAR *y,
                                             const SCALAR *x, int64_t batch,
                                             int64_t stride, int64_t spatial,
                                             double mean, double *sum_dy,
                                             double *sum_dy_xmu)
{
    const int64_t dl = FC_BN_DLANES;
    const int masked = y != NULL;
    const FC_FN(bn_dvec_) vmean = (FC_FN(bn_dvec_)){0} + mean;
    FC_FN(bn_dvec_) acc[FC_BN_VACC] = {{0}}, acc2[FC_BN_VACC] = {{0}};
    for (int64_t n = 0; n < batch; ++n) {
        const SCALAR *gr = gy + n * stride, *xr = x + n * stride;
        const SCALAR *yr = masked ? y + n * stride : gr;   /* gr: never read as a mask */
        int64_t s = 0;
        for (; s + FC_BN_VACC * dl <= spatial; s += FC_BN_VACC * dl)
            for (int j = 0; j < FC_BN_VACC; ++j) {
                const int64_t at = s + j * dl;
                FC_FN(bn_add_grad_moments_)(FC_FN(bn_load_)(gr + at), FC_FN(bn_load_)(yr + at),
                                            FC_FN(bn_load_)(xr + at), masked, vmean, &acc[j],
                                            &acc2[j]);
            }
        for (; s + dl <= spatial; s += dl)
            FC_FN(bn_add_grad_moments_)(FC_FN(bn_load_)(gr + s), FC_FN(bn_load_)(yr + s),
                                        FC_FN(bn_load_)(xr + s), masked, vmean, &acc[0],
                                        &acc2[0]);
        if (s < spatial) {
            const int64_t left = spatial - s;
            FC_FN(bn_add_grad_moments_)(FC_FN(bn_load_tail_)(gr + s, left, 0),
                                        FC_FN(bn_load_tail_)(yr + s, left, 0),
                                        FC_FN(bn_load_tail_)(xr + s, left, 0), masked, vmean,
                                        &acc[0], &acc2[0]);
        }
    }
    *sum_dy = FC_FN(bn_total_)(acc);
    *sum_dy_xmu = FC_FN(bn_total_)(acc2);
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
