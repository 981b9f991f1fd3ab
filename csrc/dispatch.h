/* The kernel table: every kernel of fastconv.h, for one instruction set.
 *
 * Each csrc/isa/<level>.c compiles every kernel family's template once (for
 * both dtypes) and fills one fc_isa_kernels; dispatch.c keeps the table of
 * the level FASTCONV_SIMD / fc_simd_select chose, and each exported function
 * of fastconv.h calls that table's entry for its dtype.  One pointer call per
 * kernel call: inside a table everything is direct calls, so the GEMM's
 * micro-kernels stay inlined into their loops.
 *
 * Adding a kernel: a member here, its entry in isa_template.h, its exported
 * function in dispatch.c and its prototype in fastconv.h. */
#ifndef FASTCONV_DISPATCH_H
#define FASTCONV_DISPATCH_H

#include "common.h"

/* One dtype's kernels; buffers are of that dtype (void * as in fastconv.h). */
typedef struct {
    void (*im2col)(const void *im, int64_t batch, const fc_geometry *g, fc_col_layout layout,
                   void *col, int nthreads);
    void (*col2im)(const void *col, int64_t batch, const fc_geometry *g, fc_col_layout layout,
                   void *im, int nthreads);

    int64_t (*depthwise_workspace)(const fc_geometry *g, int64_t multiplier, int nthreads);
    void (*depthwise_forward)(const void *x, const void *w, const void *bias, int64_t batch,
                              const fc_geometry *g, int64_t multiplier, void *y, void *ws,
                              int nthreads);
    void (*depthwise_backward_input)(const void *gy, const void *w, int64_t batch,
                                     const fc_geometry *g, int64_t multiplier, void *gx,
                                     void *ws, int nthreads);
    void (*depthwise_backward_weight)(const void *gy, const void *x, int64_t batch,
                                      const fc_geometry *g, int64_t multiplier, void *gw,
                                      void *ws, int nthreads);

    int64_t (*gemm_workspace)(int nthreads);
    void (*gemm)(int64_t m, int64_t n, int64_t k, const void *a, int64_t rs_a, int64_t cs_a,
                 const void *b, int64_t rs_b, int64_t cs_b, void *c, int64_t ldc,
                 int accumulate, void *ws, int nthreads);

    int64_t (*conv_workspace)(const fc_geometry *g, int64_t batch, int64_t c_out,
                              const fc_conv_schedule *s, int nthreads);
    int (*conv_forward)(const void *x, int64_t batch, const fc_geometry *g, int64_t groups,
                        const void *w, const void *bias, int64_t c_out, void *y,
                        const fc_conv_schedule *s, void *ws, int64_t *offsets, int nthreads);
    int64_t (*conv_winograd_workspace)(const fc_geometry *g, int64_t groups, int64_t c_out,
                                       int nthreads);
    int (*conv_winograd)(const void *x, int64_t batch, const fc_geometry *g, int64_t groups,
                         const void *w, const void *bias, int64_t c_out, void *y, void *ws,
                         int nthreads);
    int64_t (*conv_weight_grad_workspace)(int64_t m, int64_t n, int nthreads);
    void (*conv_weight_grad)(const void *x, int64_t x_image_stride, const void *gout,
                             int64_t gout_image_stride, int64_t batch, const fc_geometry *g,
                             int64_t m, void *grad_w, int64_t ldw, void *ws, int nthreads);
    int64_t (*conv_winograd_weight_grad_workspace)(const fc_geometry *g, int64_t m,
                                                   int nthreads);
    int (*conv_winograd_weight_grad)(const void *x, int64_t x_image_stride, const void *gout,
                                     int64_t gout_image_stride, int64_t batch,
                                     const fc_geometry *g, int64_t m, void *grad_w,
                                     int64_t ldw, void *ws, int nthreads);
    int64_t (*conv_data_grad_workspace)(const fc_geometry *g, int nthreads);
    void (*conv_data_grad)(const void *gout, int64_t batch, const fc_geometry *g,
                           int64_t groups, const void *w, int64_t c_out, void *gx,
                           const fc_conv_schedule *s, void *ws, int nthreads);

    void (*max_pool)(const void *x, const fc_geometry *g, void *y, int64_t *indices,
                     int nthreads);
    void (*max_pool_backward)(const void *gy, const int64_t *indices, const fc_geometry *g,
                              void *gx, int nthreads);
    void (*avg_pool)(const void *x, const fc_geometry *g, int count_include_pad,
                     int64_t divisor_override, void *y, int nthreads);
    void (*avg_pool_backward)(const void *gy, const fc_geometry *g, int count_include_pad,
                              int64_t divisor_override, void *gx, int nthreads);
    void (*adaptive_avg_pool)(const void *x, const fc_geometry *g, void *y, int nthreads);
    void (*adaptive_avg_pool_backward)(const void *gy, const fc_geometry *g, void *gx,
                                       int nthreads);
    void (*global_avg_pool)(const void *x, const fc_geometry *g, int prefetch, void *y,
                            int nthreads);
    void (*adaptive_max_pool)(const void *x, const fc_geometry *g, void *y, int64_t *indices,
                              int nthreads);

    void (*interpolate)(const void *x, const fc_geometry *g, const int64_t *index,
                        const void *weight, const int taps[3], void *y, int nthreads);
    void (*interpolate_backward)(const void *gy, const fc_geometry *g, const int64_t *index,
                                 const void *weight, const int taps[3], void *gx,
                                 int nthreads);

    void (*deform_im2col)(const void *x, const void *offset, const void *mask, int64_t batch,
                          const fc_geometry *g, int64_t offset_groups, void *col,
                          int nthreads);
    void (*deform_col2im)(const void *gcol, const void *offset, const void *mask,
                          int64_t batch, const fc_geometry *g, int64_t offset_groups,
                          void *gx, int nthreads);
    void (*deform_offset_mask_grad)(const void *gcol, const void *x, const void *offset,
                                    const void *mask, int64_t batch, const fc_geometry *g,
                                    int64_t offset_groups, void *grad_offset,
                                    void *grad_mask, int nthreads);

    void (*batch_norm_forward)(const void *x, int64_t batch, int64_t channels, int64_t spatial,
                               int compute_stats, double *mean, double *var,
                               const void *weight, const void *bias, double eps, void *y,
                               int nthreads);
    void (*batch_norm_backward)(const void *gy, const void *x, int64_t batch, int64_t channels,
                                int64_t spatial, const double *mean, const double *invstd,
                                const void *weight, int batch_stats, int compute_sums,
                                int64_t count, double *sum_dy, double *sum_dy_xmu, void *gx,
                                int nthreads);
    void (*activation)(int kind, const void *x, int64_t n, double alpha, void *y, void *save,
                       int nthreads);
    void (*activation_backward)(int kind, const void *gy, const void *saved, int64_t n,
                                double alpha, void *gx, int nthreads);
    void (*prelu)(const void *x, const void *w, int64_t outer, int64_t channels, int64_t inner,
                  void *y, int nthreads);
    void (*prelu_backward)(const void *gy, const void *x, const void *w, int64_t outer,
                           int64_t channels, int64_t inner, void *gx, void *gw, int nthreads);
    void (*softmax)(const void *x, int64_t outer, int64_t classes, int64_t inner, int log,
                    void *y, int nthreads);
    void (*softmax_backward)(const void *gy, const void *y, int64_t outer, int64_t classes,
                             int64_t inner, int log, void *gx, int nthreads);
    double (*cross_entropy)(const void *x, const int64_t *target, const void *w, int64_t outer,
                            int64_t classes, int64_t inner, int64_t ignore_index,
                            double label_smoothing, void *losses, int nthreads);
    void (*cross_entropy_backward)(const void *grad, int64_t grad_stride, const void *x,
                                   const int64_t *target, const void *w, int64_t outer,
                                   int64_t classes, int64_t inner, int64_t ignore_index,
                                   double label_smoothing, void *gx, int nthreads);
} fc_dtype_kernels;

/* Every kernel of one instruction set. */
typedef struct {
    int level;                            /* its FC_SIMD_* level */
    fc_dtype_kernels dtype[FC_NDTYPES];   /* indexed by fc_dtype */
    int64_t (*pool_find_bad_index)(const int64_t *indices, int64_t n, int64_t limit,
                                   int nthreads);
} fc_isa_kernels;

/* Filled by csrc/isa/generic.c, avx2.c and avx512.c (x86-64 GCC/clang only). */
extern const fc_isa_kernels fc_kernels_generic;
#if FC_HAVE_X86_DISPATCH
extern const fc_isa_kernels fc_kernels_avx2;
extern const fc_isa_kernels fc_kernels_avx512;
#endif

#endif
