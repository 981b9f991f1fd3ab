# Declarations of the C kernels in csrc/fastconv.h.
from libc.stdint cimport int64_t

cdef extern from "fastconv.h" nogil:
    enum: FC_NDIM
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

    void fc_im2col_f32(const float *im, int64_t batch, const fc_geometry *g,
                       fc_col_layout layout, float *col, int nthreads) noexcept
    void fc_im2col_f64(const double *im, int64_t batch, const fc_geometry *g,
                       fc_col_layout layout, double *col, int nthreads) noexcept
    void fc_col2im_f32(const float *col, int64_t batch, const fc_geometry *g,
                       fc_col_layout layout, float *im, int nthreads) noexcept
    void fc_col2im_f64(const double *col, int64_t batch, const fc_geometry *g,
                       fc_col_layout layout, double *im, int nthreads) noexcept

    int64_t fc_depthwise_workspace_f32(const fc_geometry *g, int64_t multiplier,
                                       int nthreads) noexcept
    int64_t fc_depthwise_workspace_f64(const fc_geometry *g, int64_t multiplier,
                                       int nthreads) noexcept
    void fc_depthwise_forward_f32(const float *x, const float *w, const float *bias,
                                  int64_t batch, const fc_geometry *g, int64_t multiplier,
                                  float *y, float *ws, int nthreads) noexcept
    void fc_depthwise_forward_f64(const double *x, const double *w, const double *bias,
                                  int64_t batch, const fc_geometry *g, int64_t multiplier,
                                  double *y, double *ws, int nthreads) noexcept
    void fc_depthwise_backward_input_f32(const float *gy, const float *w, int64_t batch,
                                         const fc_geometry *g, int64_t multiplier, float *gx,
                                         float *ws, int nthreads) noexcept
    void fc_depthwise_backward_input_f64(const double *gy, const double *w, int64_t batch,
                                         const fc_geometry *g, int64_t multiplier,
                                         double *gx, double *ws, int nthreads) noexcept
    void fc_depthwise_backward_weight_f32(const float *gy, const float *x, int64_t batch,
                                          const fc_geometry *g, int64_t multiplier,
                                          float *gw, float *ws, int nthreads) noexcept
    void fc_depthwise_backward_weight_f64(const double *gy, const double *x, int64_t batch,
                                          const fc_geometry *g, int64_t multiplier,
                                          double *gw, double *ws, int nthreads) noexcept
    int64_t fc_conv_workspace_f32(const fc_geometry *g, int64_t batch, int per_image,
                                  int nthreads) noexcept
    int64_t fc_conv_workspace_f64(const fc_geometry *g, int64_t batch, int per_image,
                                  int nthreads) noexcept
    void fc_conv_forward_f32(const float *x, int64_t batch, const fc_geometry *g,
                             int64_t groups, const float *w, const float *bias, int64_t c_out,
                             float *y, int per_image, float *ws, int64_t *offsets,
                             int nthreads) noexcept
    void fc_conv_forward_f64(const double *x, int64_t batch, const fc_geometry *g,
                             int64_t groups, const double *w, const double *bias,
                             int64_t c_out, double *y, int per_image, double *ws,
                             int64_t *offsets, int nthreads) noexcept
    int64_t fc_conv_winograd_workspace_f32(const fc_geometry *g, int64_t groups,
                                           int64_t c_out, int nthreads) noexcept
    int64_t fc_conv_winograd_workspace_f64(const fc_geometry *g, int64_t groups,
                                           int64_t c_out, int nthreads) noexcept
    void fc_conv_winograd_f32(const float *x, int64_t batch, const fc_geometry *g,
                              int64_t groups, const float *w, const float *bias,
                              int64_t c_out, float *y, float *ws, int nthreads) noexcept
    void fc_conv_winograd_f64(const double *x, int64_t batch, const fc_geometry *g,
                              int64_t groups, const double *w, const double *bias,
                              int64_t c_out, double *y, double *ws, int nthreads) noexcept
    int64_t fc_conv_data_grad_workspace_f32(const fc_geometry *g, int nthreads) noexcept
    int64_t fc_conv_data_grad_workspace_f64(const fc_geometry *g, int nthreads) noexcept
    void fc_conv_data_grad_f32(const float *gout, int64_t batch, const fc_geometry *g,
                               int64_t groups, const float *w, int64_t c_out, float *gx,
                               float *ws, int nthreads) noexcept
    void fc_conv_data_grad_f64(const double *gout, int64_t batch, const fc_geometry *g,
                               int64_t groups, const double *w, int64_t c_out, double *gx,
                               double *ws, int nthreads) noexcept
    int64_t fc_gemm_workspace_f32(int nthreads) noexcept
    int64_t fc_gemm_workspace_f64(int nthreads) noexcept
    void fc_gemm_f32(int64_t m, int64_t n, int64_t k, const float *a, int64_t rs_a,
                     int64_t cs_a, const float *b, int64_t rs_b, int64_t cs_b, float *c,
                     int64_t ldc, int accumulate, float *ws, int nthreads) noexcept
    void fc_gemm_f64(int64_t m, int64_t n, int64_t k, const double *a, int64_t rs_a,
                     int64_t cs_a, const double *b, int64_t rs_b, int64_t cs_b, double *c,
                     int64_t ldc, int accumulate, double *ws, int nthreads) noexcept
    int64_t fc_conv_weight_grad_workspace_f32(int64_t m, int64_t n, int nthreads) noexcept
    int64_t fc_conv_weight_grad_workspace_f64(int64_t m, int64_t n, int nthreads) noexcept
    void fc_conv_weight_grad_f32(const float *x, int64_t x_image_stride, const float *gout,
                                 int64_t gout_image_stride, int64_t batch,
                                 const fc_geometry *g, int64_t m, float *grad_w, int64_t ldw,
                                 float *ws, int nthreads) noexcept
    void fc_conv_weight_grad_f64(const double *x, int64_t x_image_stride, const double *gout,
                                 int64_t gout_image_stride, int64_t batch,
                                 const fc_geometry *g, int64_t m, double *grad_w,
                                 int64_t ldw, double *ws, int nthreads) noexcept
    int64_t fc_conv_winograd_weight_grad_workspace_f32(const fc_geometry *g, int64_t m,
                                                       int nthreads) noexcept
    int64_t fc_conv_winograd_weight_grad_workspace_f64(const fc_geometry *g, int64_t m,
                                                       int nthreads) noexcept
    void fc_conv_winograd_weight_grad_f32(const float *x, int64_t x_image_stride,
                                          const float *gout, int64_t gout_image_stride,
                                          int64_t batch, const fc_geometry *g, int64_t m,
                                          float *grad_w, int64_t ldw, float *ws,
                                          int nthreads) noexcept
    void fc_conv_winograd_weight_grad_f64(const double *x, int64_t x_image_stride,
                                          const double *gout, int64_t gout_image_stride,
                                          int64_t batch, const fc_geometry *g, int64_t m,
                                          double *grad_w, int64_t ldw, double *ws,
                                          int nthreads) noexcept
    int fc_simd_compiled(int level) noexcept
    int fc_simd_supported(int level) noexcept
    int fc_simd_select(int level) noexcept
    int fc_simd_active() noexcept

    int fc_openmp_enabled() noexcept
    int fc_openmp_max_threads() noexcept
    const char *fc_compiler() noexcept
    const char *fc_build_flags() noexcept
    const char *fc_target_isa() noexcept

# ---- Pooling (csrc/pool.c) ----
cdef extern from "fastconv.h" nogil:
    void fc_max_pool_f32(const float *x, const fc_geometry *g, float *y,
                         int64_t *indices, int nthreads) noexcept
    void fc_max_pool_f64(const double *x, const fc_geometry *g, double *y,
                         int64_t *indices, int nthreads) noexcept
    void fc_max_pool_backward_f32(const float *gy, const int64_t *indices,
                                  const fc_geometry *g, float *gx, int nthreads) noexcept
    void fc_max_pool_backward_f64(const double *gy, const int64_t *indices,
                                  const fc_geometry *g, double *gx, int nthreads) noexcept
    int64_t fc_pool_find_bad_index(const int64_t *indices, int64_t n, int64_t limit,
                                   int nthreads) noexcept
    void fc_avg_pool_f32(const float *x, const fc_geometry *g, int count_include_pad,
                         int64_t divisor_override, float *y, int nthreads) noexcept
    void fc_avg_pool_f64(const double *x, const fc_geometry *g, int count_include_pad,
                         int64_t divisor_override, double *y, int nthreads) noexcept
    void fc_avg_pool_backward_f32(const float *gy, const fc_geometry *g,
                                  int count_include_pad, int64_t divisor_override,
                                  float *gx, int nthreads) noexcept
    void fc_avg_pool_backward_f64(const double *gy, const fc_geometry *g,
                                  int count_include_pad, int64_t divisor_override,
                                  double *gx, int nthreads) noexcept
    void fc_adaptive_avg_pool_f32(const float *x, const fc_geometry *g, float *y,
                                  int nthreads) noexcept
    void fc_adaptive_avg_pool_f64(const double *x, const fc_geometry *g, double *y,
                                  int nthreads) noexcept
    void fc_adaptive_avg_pool_backward_f32(const float *gy, const fc_geometry *g,
                                           float *gx, int nthreads) noexcept
    void fc_adaptive_avg_pool_backward_f64(const double *gy, const fc_geometry *g,
                                           double *gx, int nthreads) noexcept

# ---- Adaptive max pooling and interpolation (csrc/adaptive_max_pool.c, interpolate.c) ----
cdef extern from "fastconv.h" nogil:
    void fc_adaptive_max_pool_f32(const float *x, const fc_geometry *g, float *y,
                                  int64_t *indices, int nthreads) noexcept
    void fc_adaptive_max_pool_f64(const double *x, const fc_geometry *g, double *y,
                                  int64_t *indices, int nthreads) noexcept
    void fc_interpolate_f32(const float *x, const fc_geometry *g, const int64_t *index,
                            const float *weight, const int *taps, float *y,
                            int nthreads) noexcept
    void fc_interpolate_f64(const double *x, const fc_geometry *g, const int64_t *index,
                            const double *weight, const int *taps, double *y,
                            int nthreads) noexcept
    void fc_interpolate_backward_f32(const float *gy, const fc_geometry *g,
                                     const int64_t *index, const float *weight,
                                     const int *taps, float *gx, int nthreads) noexcept
    void fc_interpolate_backward_f64(const double *gy, const fc_geometry *g,
                                     const int64_t *index, const double *weight,
                                     const int *taps, double *gx, int nthreads) noexcept

# ---- Deformable convolution (csrc/deform_conv.c) ----
cdef extern from "fastconv.h" nogil:
    void fc_deform_im2col_f32(const float *x, const float *offset, const float *mask,
                              int64_t batch, const fc_geometry *g, int64_t offset_groups,
                              float *col, int nthreads) noexcept
    void fc_deform_im2col_f64(const double *x, const double *offset, const double *mask,
                              int64_t batch, const fc_geometry *g, int64_t offset_groups,
                              double *col, int nthreads) noexcept
    void fc_deform_col2im_f32(const float *gcol, const float *offset, const float *mask,
                              int64_t batch, const fc_geometry *g, int64_t offset_groups,
                              float *gx, int nthreads) noexcept
    void fc_deform_col2im_f64(const double *gcol, const double *offset, const double *mask,
                              int64_t batch, const fc_geometry *g, int64_t offset_groups,
                              double *gx, int nthreads) noexcept
    void fc_deform_offset_mask_grad_f32(const float *gcol, const float *x,
                                        const float *offset, const float *mask,
                                        int64_t batch, const fc_geometry *g,
                                        int64_t offset_groups, float *grad_offset,
                                        float *grad_mask, int nthreads) noexcept
    void fc_deform_offset_mask_grad_f64(const double *gcol, const double *x,
                                        const double *offset, const double *mask,
                                        int64_t batch, const fc_geometry *g,
                                        int64_t offset_groups, double *grad_offset,
                                        double *grad_mask, int nthreads) noexcept
