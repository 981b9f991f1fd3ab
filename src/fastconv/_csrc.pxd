# Declarations of the C kernels in csrc/fastconv.h (every kernel takes the
# dtype as its first argument and its buffers as void *).
from libc.stdint cimport int64_t

cdef extern from "fastconv.h" nogil:
    enum: FC_NDIM
    ctypedef enum fc_dtype:
        FC_FLOAT32
        FC_FLOAT64

    ctypedef struct fc_geometry:
        int64_t channels
        int64_t in_ "in"[3]
        int64_t out[3]
        int64_t kernel[3]
        int64_t stride[3]
        int64_t pad[3]
        int64_t dilation[3]

    ctypedef struct fc_col_layout:
        int64_t batch_stride
        int64_t row_stride

    ctypedef struct fc_conv_schedule:
        int per_image
        int threads_over_images
        int stream_stores
        int pointwise

    void fc_im2col(fc_dtype dtype, const void *im, int64_t batch, const fc_geometry *g,
                   fc_col_layout layout, void *col, int nthreads) noexcept
    void fc_col2im(fc_dtype dtype, const void *col, int64_t batch, const fc_geometry *g,
                   fc_col_layout layout, void *im, int nthreads) noexcept

    int64_t fc_depthwise_workspace(fc_dtype dtype, const fc_geometry *g, int64_t multiplier,
                                   int64_t group_channels, int nthreads) noexcept
    void fc_depthwise_forward(fc_dtype dtype, const void *x, const void *w, const void *bias,
                              int64_t batch, const fc_geometry *g, int64_t multiplier,
                              int64_t group_channels, void *y, void *ws,
                              int nthreads) noexcept
    void fc_depthwise_backward_input(fc_dtype dtype, const void *gy, const void *w,
                                     int64_t batch, const fc_geometry *g, int64_t multiplier,
                                     int64_t group_channels, void *gx, void *ws,
                                     int nthreads) noexcept
    void fc_depthwise_backward_weight(fc_dtype dtype, const void *gy, const void *x,
                                      int64_t batch, const fc_geometry *g,
                                      int64_t multiplier, int64_t group_channels, void *gw,
                                      void *ws, int nthreads) noexcept

    int64_t fc_gemm_workspace(fc_dtype dtype, int nthreads) noexcept
    void fc_gemm(fc_dtype dtype, int64_t m, int64_t n, int64_t k, const void *a,
                 int64_t rs_a, int64_t cs_a, const void *b, int64_t rs_b, int64_t cs_b,
                 void *c, int64_t ldc, int accumulate, void *ws, int nthreads) noexcept
    void fc_gemm_small(fc_dtype dtype, int64_t m, int64_t n, int64_t k, const void *a,
                       int64_t rs_a, int64_t cs_a, const void *b, int64_t rs_b,
                       int64_t cs_b, void *c, int64_t ldc, int accumulate) noexcept

    int64_t fc_conv_workspace(fc_dtype dtype, const fc_geometry *g, int64_t batch,
                              int64_t c_out, const fc_conv_schedule *s, int nthreads) noexcept
    int fc_conv_forward(fc_dtype dtype, const void *x, int64_t batch, const fc_geometry *g,
                         int64_t groups, const void *w, const void *bias, int64_t c_out,
                         void *y, const fc_conv_schedule *s, void *ws, int64_t *offsets,
                         int nthreads) noexcept
    int64_t fc_conv_winograd_workspace(fc_dtype dtype, const fc_geometry *g, int64_t groups,
                                       int64_t c_out, int nthreads) noexcept
    int fc_conv_winograd(fc_dtype dtype, const void *x, int64_t batch, const fc_geometry *g,
                          int64_t groups, const void *w, const void *bias, int64_t c_out,
                          void *y, void *ws, int nthreads) noexcept
    int64_t fc_conv_weight_grad_workspace(fc_dtype dtype, int64_t m, int64_t n,
                                          int nthreads) noexcept
    void fc_conv_weight_grad(fc_dtype dtype, const void *x, int64_t x_image_stride,
                             const void *gout, int64_t gout_image_stride, int64_t batch,
                             const fc_geometry *g, int64_t m, void *grad_w, int64_t ldw,
                             void *ws, int nthreads) noexcept
    int64_t fc_conv_winograd_weight_grad_workspace(fc_dtype dtype, const fc_geometry *g,
                                                   int64_t m, int nthreads) noexcept
    int fc_conv_winograd_weight_grad(fc_dtype dtype, const void *x, int64_t x_image_stride,
                                      const void *gout, int64_t gout_image_stride,
                                      int64_t batch, const fc_geometry *g, int64_t m,
                                      void *grad_w, int64_t ldw, void *ws,
                                      int nthreads) noexcept
    int64_t fc_conv_data_grad_workspace(fc_dtype dtype, const fc_geometry *g,
                                        int nthreads) noexcept
    void fc_conv_data_grad(fc_dtype dtype, const void *gout, int64_t batch,
                           const fc_geometry *g, int64_t groups, const void *w, int64_t c_out,
                           void *gx, const fc_conv_schedule *s, void *ws,
                           int nthreads) noexcept

    void fc_max_pool(fc_dtype dtype, const void *x, const fc_geometry *g, void *y,
                     int64_t *indices, int nthreads) noexcept
    void fc_max_pool_backward(fc_dtype dtype, const void *gy, const int64_t *indices,
                              const fc_geometry *g, void *gx, int nthreads) noexcept
    int64_t fc_pool_find_bad_index(const int64_t *indices, int64_t n, int64_t limit,
                                   int nthreads) noexcept
    void fc_avg_pool(fc_dtype dtype, const void *x, const fc_geometry *g,
                     int count_include_pad, int64_t divisor_override, void *y,
                     int nthreads) noexcept
    void fc_avg_pool_backward(fc_dtype dtype, const void *gy, const fc_geometry *g,
                              int count_include_pad, int64_t divisor_override, void *gx,
                              int nthreads) noexcept
    void fc_adaptive_avg_pool(fc_dtype dtype, const void *x, const fc_geometry *g, void *y,
                              int nthreads) noexcept
    void fc_adaptive_avg_pool_backward(fc_dtype dtype, const void *gy, const fc_geometry *g,
                                       void *gx, int nthreads) noexcept
    void fc_global_avg_pool(fc_dtype dtype, const void *x, const fc_geometry *g,
                            int prefetch, void *y, int nthreads) noexcept
    void fc_adaptive_max_pool(fc_dtype dtype, const void *x, const fc_geometry *g, void *y,
                              int64_t *indices, int nthreads) noexcept

    void fc_interpolate(fc_dtype dtype, const void *x, const fc_geometry *g,
                        const int64_t *index, const void *weight, const int *taps, void *y,
                        int nthreads) noexcept
    void fc_interpolate_backward(fc_dtype dtype, const void *gy, const fc_geometry *g,
                                 const int64_t *index, const void *weight, const int *taps,
                                 void *gx, int nthreads) noexcept

    void fc_deform_im2col(fc_dtype dtype, const void *x, const void *offset, const void *mask,
                          int64_t batch, const fc_geometry *g, int64_t offset_groups,
                          void *col, int nthreads) noexcept
    void fc_deform_col2im(fc_dtype dtype, const void *gcol, const void *offset,
                          const void *mask, int64_t batch, const fc_geometry *g,
                          int64_t offset_groups, void *gx, int nthreads) noexcept
    void fc_deform_offset_mask_grad(fc_dtype dtype, const void *gcol, const void *x,
                                    const void *offset, const void *mask, int64_t batch,
                                    const fc_geometry *g, int64_t offset_groups,
                                    void *grad_offset, void *grad_mask, int nthreads) noexcept

    void fc_batch_norm_forward(fc_dtype dtype, const void *x, int64_t batch, int64_t channels,
                               int64_t spatial, int compute_stats, double *mean, double *var,
                               const void *weight, const void *bias, double eps, int relu,
                               void *y, int nthreads) noexcept
    void fc_batch_norm_backward(fc_dtype dtype, const void *gy, const void *relu_output,
                                const void *x, int64_t batch, int64_t channels, int64_t spatial, const double *mean,
                                const double *invstd, const void *weight, int batch_stats,
                                int compute_sums, int64_t count, double *sum_dy,
                                double *sum_dy_xmu, void *gx, int nthreads) noexcept
    void fc_activation(fc_dtype dtype, int kind, const void *x, int64_t n, double alpha,
                       void *y, void *save, int nthreads) noexcept
    void fc_activation_backward(fc_dtype dtype, int kind, const void *gy, const void *saved,
                                int64_t n, double alpha, void *gx, int nthreads) noexcept
    void fc_add(fc_dtype dtype, const void *a, const void *b, int64_t n, int relu, void *y,
                int nthreads) noexcept
    void fc_prelu(fc_dtype dtype, const void *x, const void *w, int64_t outer,
                  int64_t channels, int64_t inner, void *y, int nthreads) noexcept
    void fc_prelu_backward(fc_dtype dtype, const void *gy, const void *x, const void *w,
                           int64_t outer, int64_t channels, int64_t inner, void *gx,
                           void *gw, int nthreads) noexcept
    void fc_softmax(fc_dtype dtype, const void *x, int64_t outer, int64_t classes,
                    int64_t inner, int log, void *y, int nthreads) noexcept
    void fc_softmax_backward(fc_dtype dtype, const void *gy, const void *y, int64_t outer,
                             int64_t classes, int64_t inner, int log, void *gx,
                             int nthreads) noexcept
    double fc_cross_entropy(fc_dtype dtype, const void *x, const int64_t *target,
                            const void *w, int64_t outer, int64_t classes, int64_t inner,
                            int64_t ignore_index, double label_smoothing, void *losses,
                            int nthreads) noexcept
    void fc_cross_entropy_backward(fc_dtype dtype, const void *grad, int64_t grad_stride,
                                   const void *x, const int64_t *target, const void *w,
                                   int64_t outer, int64_t classes, int64_t inner,
                                   int64_t ignore_index, double label_smoothing, void *gx,
                                   int nthreads) noexcept

    ctypedef int (*fc_poll_fn)() noexcept nogil
    void fc_set_poll(fc_poll_fn poll) noexcept
    int fc_stop_take() noexcept
    void fc_stop_request() noexcept

    int fc_simd_compiled(int level) noexcept
    int fc_simd_supported(int level) noexcept
    int fc_simd_select(int level) noexcept
    int fc_simd_active() noexcept
    int64_t fc_simd_calls(int level) noexcept

    int fc_openmp_enabled() noexcept
    int fc_openmp_max_threads() noexcept
    const char *fc_compiler() noexcept
    const char *fc_build_flags() noexcept
    const char *fc_target_isa() noexcept
    enum: FC_COPY_MAX_RANK
    void fc_strided_copy(fc_dtype dtype, int rank, const int64_t *shape, void *dst,
                         const int64_t *dst_strides, const void *src,
                         const int64_t *src_strides, int nthreads) noexcept

cdef extern from "common.h" nogil:
    enum: FC_MIN_PARALLEL_WORK
