/* The one instruction-set switch: which table of kernels (csrc/isa/) runs,
 * and the exported functions of fastconv.h, each calling its entry in that
 * table for its dtype.
 *
 * Every table is compiled into the same object (per-function target
 * attributes), so the default build runs on any x86-64 CPU and still uses
 * AVX2 or AVX-512 where present.  Other compilers and architectures get the
 * generic table only (plain C vectors the compiler maps to whatever SIMD it
 * has). */
#include "dispatch.h"

/* -1: not chosen yet (pick the best the CPU has on first use). */
static int fc_simd = -1;

/* Kernel calls per level (fc_simd_calls); relaxed atomics: a count, not a
 * synchronisation. */
static int64_t fc_calls[FC_SIMD_LEVELS];

int fc_simd_supported(int level)
{
    switch (level) {
    case FC_SIMD_GENERIC:
        return 1;
#if FC_HAVE_X86_DISPATCH
    case FC_SIMD_AVX2:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case FC_SIMD_AVX512:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2")
               && __builtin_cpu_supports("fma");
#endif
    default:
        return 0;
    }
}

/* 1 when the kernels of `level` are compiled into this build (whether or not
 * this CPU can run them). */
int fc_simd_compiled(int level)
{
    return level == FC_SIMD_GENERIC
           || (FC_HAVE_X86_DISPATCH && (level == FC_SIMD_AVX2 || level == FC_SIMD_AVX512));
}

int fc_simd_select(int level)
{
    if (level < 0) {
        level = FC_SIMD_AVX512;
        while (!fc_simd_supported(level)) --level;
    }
    if (!fc_simd_supported(level)) return -1;
    fc_simd = level;
    return level;
}

int fc_simd_active(void)
{
    if (fc_simd < 0) fc_simd_select(-1);
    return fc_simd;
}

int64_t fc_simd_calls(int level)
{
    if (level < 0 || level >= FC_SIMD_LEVELS) return 0;
#if defined(__GNUC__)
    return __atomic_load_n(&fc_calls[level], __ATOMIC_RELAXED);
#else
    return fc_calls[level];
#endif
}

/* The table of a compiled level. */
static const fc_isa_kernels *fc_level_kernels(int level)
{
    switch (level) {
#if FC_HAVE_X86_DISPATCH
    case FC_SIMD_AVX512: return &fc_kernels_avx512;
    case FC_SIMD_AVX2: return &fc_kernels_avx2;
#endif
    default: return &fc_kernels_generic;
    }
}

/* The active level's table, counting the call against the level that
 * compiled the table (what fc_simd_calls reports). */
static const fc_isa_kernels *fc_active_kernels(void)
{
    const fc_isa_kernels *kernels = fc_level_kernels(fc_simd_active());
#if defined(__GNUC__)
    __atomic_fetch_add(&fc_calls[kernels->level], 1, __ATOMIC_RELAXED);
#endif
    return kernels;
}

static int fc_dtype_index(fc_dtype dtype)
{
    return dtype == FC_FLOAT64 ? FC_FLOAT64 : FC_FLOAT32;
}

/* The active level's kernels for dtype (FC_FLOAT32 for anything else: the
 * callers pass an fc_dtype). */
static const fc_dtype_kernels *fc_kernels_for(fc_dtype dtype)
{
    return &fc_active_kernels()->dtype[fc_dtype_index(dtype)];
}

/* Workspace sizes: the most any level this CPU can run needs, so a buffer
 * sized once serves whichever level runs the call (fc_simd_select may switch
 * in between); -1 when the kernel does not compute the geometry (every level
 * agrees).  RETURN_MOST(dtype, entry, (args)) returns it. */
#define RETURN_MOST(dtype, ENTRY, ARGS)                                                 \
    do {                                                                               \
        int64_t most = -1;                                                             \
        for (int level = 0; level < FC_SIMD_LEVELS; ++level) {                         \
            if (!fc_simd_supported(level)) continue;                                   \
            const int64_t need = fc_level_kernels(level)->dtype[fc_dtype_index(dtype)].ENTRY ARGS; \
            if (need > most) most = need;                                              \
        }                                                                              \
        return most;                                                                   \
    } while (0)

/* ------------------------------------------------------- exported functions */

void fc_im2col(fc_dtype dtype, const void *im, int64_t batch, const fc_geometry *g,
               fc_col_layout layout, void *col, int nthreads)
{
    fc_kernels_for(dtype)->im2col(im, batch, g, layout, col, nthreads);
}

void fc_col2im(fc_dtype dtype, const void *col, int64_t batch, const fc_geometry *g,
               fc_col_layout layout, void *im, int nthreads)
{
    fc_kernels_for(dtype)->col2im(col, batch, g, layout, im, nthreads);
}

int64_t fc_depthwise_workspace(fc_dtype dtype, const fc_geometry *g, int64_t multiplier,
                               int nthreads)
{
    RETURN_MOST(dtype, depthwise_workspace, (g, multiplier, nthreads));
}

void fc_depthwise_forward(fc_dtype dtype, const void *x, const void *w, const void *bias,
                          int64_t batch, const fc_geometry *g, int64_t multiplier, void *y,
                          void *ws, int nthreads)
{
    fc_kernels_for(dtype)->depthwise_forward(x, w, bias, batch, g, multiplier, y, ws,
                                             nthreads);
}

void fc_depthwise_backward_input(fc_dtype dtype, const void *gy, const void *w, int64_t batch,
                                 const fc_geometry *g, int64_t multiplier, void *gx, void *ws,
                                 int nthreads)
{
    fc_kernels_for(dtype)->depthwise_backward_input(gy, w, batch, g, multiplier, gx, ws,
                                                    nthreads);
}

void fc_depthwise_backward_weight(fc_dtype dtype, const void *gy, const void *x,
                                  int64_t batch, const fc_geometry *g, int64_t multiplier,
                                  void *gw, void *ws, int nthreads)
{
    fc_kernels_for(dtype)->depthwise_backward_weight(gy, x, batch, g, multiplier, gw, ws,
                                                     nthreads);
}

int64_t fc_gemm_workspace(fc_dtype dtype, int nthreads)
{
    RETURN_MOST(dtype, gemm_workspace, (nthreads));
}

void fc_gemm(fc_dtype dtype, int64_t m, int64_t n, int64_t k, const void *a, int64_t rs_a,
             int64_t cs_a, const void *b, int64_t rs_b, int64_t cs_b, void *c, int64_t ldc,
             int accumulate, void *ws, int nthreads)
{
    fc_kernels_for(dtype)->gemm(m, n, k, a, rs_a, cs_a, b, rs_b, cs_b, c, ldc, accumulate, ws,
                                nthreads);
}

int64_t fc_conv_workspace(fc_dtype dtype, const fc_geometry *g, int64_t batch, int64_t c_out,
                          const fc_conv_schedule *s, int nthreads)
{
    RETURN_MOST(dtype, conv_workspace, (g, batch, c_out, s, nthreads));
}

int fc_conv_forward(fc_dtype dtype, const void *x, int64_t batch, const fc_geometry *g,
                    int64_t groups, const void *w, const void *bias, int64_t c_out, void *y,
                    const fc_conv_schedule *s, void *ws, int64_t *offsets, int nthreads)
{
    return fc_kernels_for(dtype)->conv_forward(x, batch, g, groups, w, bias, c_out, y, s, ws,
                                               offsets, nthreads);
}

int64_t fc_conv_winograd_workspace(fc_dtype dtype, const fc_geometry *g, int64_t groups,
                                   int64_t c_out, int nthreads)
{
    RETURN_MOST(dtype, conv_winograd_workspace, (g, groups, c_out, nthreads));
}

int fc_conv_winograd(fc_dtype dtype, const void *x, int64_t batch, const fc_geometry *g,
                     int64_t groups, const void *w, const void *bias, int64_t c_out, void *y,
                     void *ws, int nthreads)
{
    return fc_kernels_for(dtype)->conv_winograd(x, batch, g, groups, w, bias, c_out, y, ws,
                                                nthreads);
}

int64_t fc_conv_weight_grad_workspace(fc_dtype dtype, int64_t m, int64_t n, int nthreads)
{
    RETURN_MOST(dtype, conv_weight_grad_workspace, (m, n, nthreads));
}

void fc_conv_weight_grad(fc_dtype dtype, const void *x, int64_t x_image_stride,
                         const void *gout, int64_t gout_image_stride, int64_t batch,
                         const fc_geometry *g, int64_t m, void *grad_w, int64_t ldw, void *ws,
                         int nthreads)
{
    fc_kernels_for(dtype)->conv_weight_grad(x, x_image_stride, gout, gout_image_stride, batch,
                                            g, m, grad_w, ldw, ws, nthreads);
}

int64_t fc_conv_winograd_weight_grad_workspace(fc_dtype dtype, const fc_geometry *g,
                                               int64_t m, int nthreads)
{
    RETURN_MOST(dtype, conv_winograd_weight_grad_workspace, (g, m, nthreads));
}

int fc_conv_winograd_weight_grad(fc_dtype dtype, const void *x, int64_t x_image_stride,
                                 const void *gout, int64_t gout_image_stride, int64_t batch,
                                 const fc_geometry *g, int64_t m, void *grad_w, int64_t ldw,
                                 void *ws, int nthreads)
{
    return fc_kernels_for(dtype)->conv_winograd_weight_grad(x, x_image_stride, gout,
                                                            gout_image_stride, batch, g, m,
                                                            grad_w, ldw, ws, nthreads);
}

int64_t fc_conv_data_grad_workspace(fc_dtype dtype, const fc_geometry *g, int nthreads)
{
    RETURN_MOST(dtype, conv_data_grad_workspace, (g, nthreads));
}

void fc_conv_data_grad(fc_dtype dtype, const void *gout, int64_t batch, const fc_geometry *g,
                       int64_t groups, const void *w, int64_t c_out, void *gx,
                       const fc_conv_schedule *s, void *ws, int nthreads)
{
    fc_kernels_for(dtype)->conv_data_grad(gout, batch, g, groups, w, c_out, gx, s, ws,
                                          nthreads);
}

void fc_max_pool(fc_dtype dtype, const void *x, const fc_geometry *g, void *y,
                 int64_t *indices, int nthreads)
{
    fc_kernels_for(dtype)->max_pool(x, g, y, indices, nthreads);
}

void fc_max_pool_backward(fc_dtype dtype, const void *gy, const int64_t *indices,
                          const fc_geometry *g, void *gx, int nthreads)
{
    fc_kernels_for(dtype)->max_pool_backward(gy, indices, g, gx, nthreads);
}

int64_t fc_pool_find_bad_index(const int64_t *indices, int64_t n, int64_t limit,
                               int nthreads)
{
    return fc_active_kernels()->pool_find_bad_index(indices, n, limit, nthreads);
}

void fc_avg_pool(fc_dtype dtype, const void *x, const fc_geometry *g, int count_include_pad,
                 int64_t divisor_override, void *y, int nthreads)
{
    fc_kernels_for(dtype)->avg_pool(x, g, count_include_pad, divisor_override, y, nthreads);
}

void fc_avg_pool_backward(fc_dtype dtype, const void *gy, const fc_geometry *g,
                          int count_include_pad, int64_t divisor_override, void *gx,
                          int nthreads)
{
    fc_kernels_for(dtype)->avg_pool_backward(gy, g, count_include_pad, divisor_override, gx,
                                             nthreads);
}

void fc_adaptive_avg_pool(fc_dtype dtype, const void *x, const fc_geometry *g, void *y,
                          int nthreads)
{
    fc_kernels_for(dtype)->adaptive_avg_pool(x, g, y, nthreads);
}

void fc_adaptive_avg_pool_backward(fc_dtype dtype, const void *gy, const fc_geometry *g,
                                   void *gx, int nthreads)
{
    fc_kernels_for(dtype)->adaptive_avg_pool_backward(gy, g, gx, nthreads);
}

void fc_global_avg_pool(fc_dtype dtype, const void *x, const fc_geometry *g, int prefetch,
                        void *y, int nthreads)
{
    fc_kernels_for(dtype)->global_avg_pool(x, g, prefetch, y, nthreads);
}

void fc_adaptive_max_pool(fc_dtype dtype, const void *x, const fc_geometry *g, void *y,
                          int64_t *indices, int nthreads)
{
    fc_kernels_for(dtype)->adaptive_max_pool(x, g, y, indices, nthreads);
}

void fc_interpolate(fc_dtype dtype, const void *x, const fc_geometry *g, const int64_t *index,
                    const void *weight, const int taps[3], void *y, int nthreads)
{
    fc_kernels_for(dtype)->interpolate(x, g, index, weight, taps, y, nthreads);
}

void fc_interpolate_backward(fc_dtype dtype, const void *gy, const fc_geometry *g,
                             const int64_t *index, const void *weight, const int taps[3],
                             void *gx, int nthreads)
{
    fc_kernels_for(dtype)->interpolate_backward(gy, g, index, weight, taps, gx, nthreads);
}

void fc_deform_im2col(fc_dtype dtype, const void *x, const void *offset, const void *mask,
                      int64_t batch, const fc_geometry *g, int64_t offset_groups, void *col,
                      int nthreads)
{
    fc_kernels_for(dtype)->deform_im2col(x, offset, mask, batch, g, offset_groups, col,
                                         nthreads);
}

void fc_deform_col2im(fc_dtype dtype, const void *gcol, const void *offset, const void *mask,
                      int64_t batch, const fc_geometry *g, int64_t offset_groups, void *gx,
                      int nthreads)
{
    fc_kernels_for(dtype)->deform_col2im(gcol, offset, mask, batch, g, offset_groups, gx,
                                         nthreads);
}

void fc_deform_offset_mask_grad(fc_dtype dtype, const void *gcol, const void *x,
                                const void *offset, const void *mask, int64_t batch,
                                const fc_geometry *g, int64_t offset_groups,
                                void *grad_offset, void *grad_mask, int nthreads)
{
    fc_kernels_for(dtype)->deform_offset_mask_grad(gcol, x, offset, mask, batch, g,
                                                   offset_groups, grad_offset, grad_mask,
                                                   nthreads);
}

void fc_batch_norm_forward(fc_dtype dtype, const void *x, int64_t batch, int64_t channels,
                           int64_t spatial, int compute_stats, double *mean, double *var,
                           const void *weight, const void *bias, double eps, void *y,
                           int nthreads)
{
    fc_kernels_for(dtype)->batch_norm_forward(x, batch, channels, spatial, compute_stats, mean,
                                              var, weight, bias, eps, y, nthreads);
}

void fc_batch_norm_backward(fc_dtype dtype, const void *gy, const void *x, int64_t batch,
                            int64_t channels, int64_t spatial, const double *mean,
                            const double *invstd, const void *weight, int batch_stats,
                            int compute_sums, int64_t count, double *sum_dy,
                            double *sum_dy_xmu, void *gx, int nthreads)
{
    fc_kernels_for(dtype)->batch_norm_backward(gy, x, batch, channels, spatial, mean, invstd,
                                               weight, batch_stats, compute_sums, count,
                                               sum_dy, sum_dy_xmu, gx, nthreads);
}

void fc_activation(fc_dtype dtype, int kind, const void *x, int64_t n, double alpha, void *y,
                   void *save, int nthreads)
{
    fc_kernels_for(dtype)->activation(kind, x, n, alpha, y, save, nthreads);
}

void fc_activation_backward(fc_dtype dtype, int kind, const void *gy, const void *saved,
                            int64_t n, double alpha, void *gx, int nthreads)
{
    fc_kernels_for(dtype)->activation_backward(kind, gy, saved, n, alpha, gx, nthreads);
}

void fc_prelu(fc_dtype dtype, const void *x, const void *w, int64_t outer, int64_t channels,
              int64_t inner, void *y, int nthreads)
{
    fc_kernels_for(dtype)->prelu(x, w, outer, channels, inner, y, nthreads);
}

void fc_prelu_backward(fc_dtype dtype, const void *gy, const void *x, const void *w,
                       int64_t outer, int64_t channels, int64_t inner, void *gx, void *gw,
                       int nthreads)
{
    fc_kernels_for(dtype)->prelu_backward(gy, x, w, outer, channels, inner, gx, gw, nthreads);
}

void fc_softmax(fc_dtype dtype, const void *x, int64_t outer, int64_t classes, int64_t inner,
                int log, void *y, int nthreads)
{
    fc_kernels_for(dtype)->softmax(x, outer, classes, inner, log, y, nthreads);
}

void fc_softmax_backward(fc_dtype dtype, const void *gy, const void *y, int64_t outer,
                         int64_t classes, int64_t inner, int log, void *gx, int nthreads)
{
    fc_kernels_for(dtype)->softmax_backward(gy, y, outer, classes, inner, log, gx, nthreads);
}

double fc_cross_entropy(fc_dtype dtype, const void *x, const int64_t *target, const void *w,
                        int64_t outer, int64_t classes, int64_t inner, int64_t ignore_index,
                        double label_smoothing, void *losses, int nthreads)
{
    return fc_kernels_for(dtype)->cross_entropy(x, target, w, outer, classes, inner,
                                                ignore_index, label_smoothing, losses,
                                                nthreads);
}

void fc_cross_entropy_backward(fc_dtype dtype, const void *grad, int64_t grad_stride,
                               const void *x, const int64_t *target, const void *w,
                               int64_t outer, int64_t classes, int64_t inner,
                               int64_t ignore_index, double label_smoothing, void *gx,
                               int nthreads)
{
    fc_kernels_for(dtype)->cross_entropy_backward(grad, grad_stride, x, target, w, outer,
                                                  classes, inner, ignore_index,
                                                  label_smoothing, gx, nthreads);
}
