/* fastconv C kernels: plain C99 loops, no Python, no NumPy.
 *
 * Every spatial op works on up to three spatial dimensions (D, H, W); 1-D and
 * 2-D callers pass size-1 leading dimensions (kernel 1, stride 1, pad 0,
 * dilation 1), so one loop nest serves conv1d, conv2d and conv3d alike.
 * All index arithmetic is int64_t so tensors past 2^31 elements are safe.
 *
 * Each kernel takes `nthreads`: the caller decides the thread count (one
 * place, in Python); kernels parallelise only over disjoint outputs.
 */
#ifndef FASTCONV_H
#define FASTCONV_H

#include <stdint.h>

#define FC_NDIM 3

/* Geometry of a sliding-window op on one (C, D, H, W) image. */
typedef struct {
    int64_t channels;
    int64_t in[FC_NDIM];       /* input spatial size  */
    int64_t out[FC_NDIM];      /* output spatial size */
    int64_t kernel[FC_NDIM];
    int64_t stride[FC_NDIM];
    int64_t pad[FC_NDIM];      /* leading (top/left/front) padding */
    int64_t dilation[FC_NDIM];
} fc_geometry;

/* Layout of a column buffer: row r of image b starts at
 * col + b * batch_stride + r * row_stride, and holds out[0]*out[1]*out[2]
 * contiguous values.  (B, K, L) layout: batch_stride = K*L, row_stride = L.
 * (K, B, L) layout: batch_stride = L, row_stride = B*L, which turns the
 * per-image GEMMs of a batch into one large GEMM. */
typedef struct {
    int64_t batch_stride;
    int64_t row_stride;
} fc_col_layout;

/* im2col: images (batch, C, D, H, W) contiguous -> columns, rows ordered
 * c*kD*kH*kW + kd*kH*kW + kh*kW + kw, columns od*oH*oW + oh*oW + ow. */
void fc_im2col_f32(const float *im, int64_t batch, const fc_geometry *g,
                   fc_col_layout layout, float *col, int nthreads);
void fc_im2col_f64(const double *im, int64_t batch, const fc_geometry *g,
                   fc_col_layout layout, double *col, int nthreads);

/* col2im: the adjoint of im2col; overlapping taps are summed.  Overwrites
 * `im` (batch, C, D, H, W). */
void fc_col2im_f32(const float *col, int64_t batch, const fc_geometry *g,
                   fc_col_layout layout, float *im, int nthreads);
void fc_col2im_f64(const double *col, int64_t batch, const fc_geometry *g,
                   fc_col_layout layout, double *im, int nthreads);

/* Depthwise convolution: groups == channels (g->channels = C_in), each input
 * channel feeding `multiplier` output channels; w is (C_in*multiplier, taps).
 * forward: x (batch, C_in, in) -> y (batch, C_out, out), overwritten, plus
 * bias (C_out values, or NULL).
 * backward_input: gy -> gx (batch, C_in, in), overwritten.
 * backward_weight: gy, x -> gw (C_out, taps), overwritten.
 * ws: fc_depthwise_workspace_*(g, multiplier, nthreads) elements, 64-byte
 * aligned, shared by the three (the caller keeps and reuses it). */
int64_t fc_depthwise_workspace_f32(const fc_geometry *g, int64_t multiplier, int nthreads);
int64_t fc_depthwise_workspace_f64(const fc_geometry *g, int64_t multiplier, int nthreads);
void fc_depthwise_forward_f32(const float *x, const float *w, const float *bias, int64_t batch,
                              const fc_geometry *g, int64_t multiplier, float *y, float *ws,
                              int nthreads);
void fc_depthwise_forward_f64(const double *x, const double *w, const double *bias,
                              int64_t batch, const fc_geometry *g, int64_t multiplier, double *y,
                              double *ws, int nthreads);
void fc_depthwise_backward_input_f32(const float *gy, const float *w, int64_t batch,
                                     const fc_geometry *g, int64_t multiplier, float *gx,
                                     float *ws, int nthreads);
void fc_depthwise_backward_input_f64(const double *gy, const double *w, int64_t batch,
                                     const fc_geometry *g, int64_t multiplier, double *gx,
                                     double *ws, int nthreads);
void fc_depthwise_backward_weight_f32(const float *gy, const float *x, int64_t batch,
                                      const fc_geometry *g, int64_t multiplier, float *gw,
                                      float *ws, int nthreads);
void fc_depthwise_backward_weight_f64(const double *gy, const double *x, int64_t batch,
                                      const fc_geometry *g, int64_t multiplier, double *gw,
                                      double *ws, int nthreads);

/* GEMM: C (m x n) = A (m x k) * B (k x n), or C += A * B when `accumulate`.
 * A's element (i, p) is a[i*rs_a + p*cs_a], B's (p, j) is b[p*rs_b + j*cs_b]
 * (any strides: a transposed operand is just swapped strides); C is row-major
 * with leading dimension ldc.  `ws` must hold fc_gemm_workspace_*(nthreads)
 * elements: callers own and reuse it, so no call maps fresh memory. */
int64_t fc_gemm_workspace_f32(int nthreads);
int64_t fc_gemm_workspace_f64(int nthreads);
void fc_gemm_f32(int64_t m, int64_t n, int64_t k, const float *a, int64_t rs_a, int64_t cs_a,
                 const float *b, int64_t rs_b, int64_t cs_b, float *c, int64_t ldc,
                 int accumulate, float *ws, int nthreads);
void fc_gemm_f64(int64_t m, int64_t n, int64_t k, const double *a, int64_t rs_a, int64_t cs_a,
                 const double *b, int64_t rs_b, int64_t cs_b, double *c, int64_t ldc,
                 int accumulate, double *ws, int nthreads);

/* Convolution forward as an implicit GEMM (conv.c): x (batch, C_in, in) and
 * w (C_out, C_in/groups, kernel) -> y, overwritten, plus bias (C_out values,
 * or NULL) on each output channel.  per_image: y is
 * (batch, C_out, out), one GEMM per image (threads take whole images when
 * there are enough); else y is (C_out, batch * out), the images side by side
 * in one GEMM per group.  ws holds fc_conv_workspace_*(g, batch, per_image,
 * nthreads) elements, offsets C_in * taps. */
int64_t fc_conv_workspace_f32(const fc_geometry *g, int64_t batch, int per_image, int nthreads);
int64_t fc_conv_workspace_f64(const fc_geometry *g, int64_t batch, int per_image, int nthreads);
void fc_conv_forward_f32(const float *x, int64_t batch, const fc_geometry *g, int64_t groups,
                         const float *w, const float *bias, int64_t c_out, float *y,
                         int per_image, float *ws, int64_t *offsets, int nthreads);
void fc_conv_forward_f64(const double *x, int64_t batch, const fc_geometry *g, int64_t groups,
                         const double *w, const double *bias, int64_t c_out, double *y,
                         int per_image, double *ws, int64_t *offsets, int nthreads);
/* Convolution forward by Winograd F(2x2, 3x3): 2-D (g->in[0] == 1), 3x3
 * kernel, stride 1, dilation 1, any padding; otherwise as fc_conv_forward_*
 * with y (batch, C_out, L).  2.25x fewer multiply-adds than the direct sum;
 * its rounding error is a small multiple of the direct sum's.  ws holds
 * fc_conv_winograd_workspace_*(g, groups, c_out, nthreads) elements. */
int64_t fc_conv_winograd_workspace_f32(const fc_geometry *g, int64_t groups, int64_t c_out,
                                       int nthreads);
int64_t fc_conv_winograd_workspace_f64(const fc_geometry *g, int64_t groups, int64_t c_out,
                                       int nthreads);
void fc_conv_winograd_f32(const float *x, int64_t batch, const fc_geometry *g, int64_t groups,
                          const float *w, const float *bias, int64_t c_out, float *y,
                          float *ws, int nthreads);
void fc_conv_winograd_f64(const double *x, int64_t batch, const fc_geometry *g, int64_t groups,
                          const double *w, const double *bias, int64_t c_out, double *y,
                          double *ws, int nthreads);
/* Weight gradient by Winograd F(2x2, 3x3), same geometries as
 * fc_conv_winograd_* and same arguments as fc_conv_weight_grad_* (grad_w +=
 * the gradient); ws holds fc_conv_winograd_weight_grad_workspace_*(g, m,
 * nthreads) elements. */
int64_t fc_conv_winograd_weight_grad_workspace_f32(const fc_geometry *g, int64_t m,
                                                   int nthreads);
int64_t fc_conv_winograd_weight_grad_workspace_f64(const fc_geometry *g, int64_t m,
                                                   int nthreads);
void fc_conv_winograd_weight_grad_f32(const float *x, int64_t x_image_stride,
                                      const float *gout, int64_t gout_image_stride,
                                      int64_t batch, const fc_geometry *g, int64_t m,
                                      float *grad_w, int64_t ldw, float *ws, int nthreads);
void fc_conv_winograd_weight_grad_f64(const double *x, int64_t x_image_stride,
                                      const double *gout, int64_t gout_image_stride,
                                      int64_t batch, const fc_geometry *g, int64_t m,
                                      double *grad_w, int64_t ldw, double *ws, int nthreads);
/* Weight gradient of a convolution, fused: grad_w (m x K, leading dimension
 * ldw) += grad_out (m x P) * cols^T, K = channels*taps column rows of im2col,
 * P = batch*L output positions.  Image b's channel c is at
 * x + b*x_image_stride + c*D*H*W, its grad_out row o at
 * gout + b*gout_image_stride + o*L (so one group of a grouped conv is an offset
 * and strides).  The GEMM's packed panels are built from x and gout just
 * before use: no column matrix.  `ws` holds
 * fc_conv_weight_grad_workspace_*(m, K, nthreads) elements. */
int64_t fc_conv_weight_grad_workspace_f32(int64_t m, int64_t n, int nthreads);
int64_t fc_conv_weight_grad_workspace_f64(int64_t m, int64_t n, int nthreads);
void fc_conv_weight_grad_f32(const float *x, int64_t x_image_stride, const float *gout,
                             int64_t gout_image_stride, int64_t batch, const fc_geometry *g,
                             int64_t m, float *grad_w, int64_t ldw, float *ws, int nthreads);
void fc_conv_weight_grad_f64(const double *x, int64_t x_image_stride, const double *gout,
                             int64_t gout_image_stride, int64_t batch, const fc_geometry *g,
                             int64_t m, double *grad_w, int64_t ldw, double *ws, int nthreads);

/* Data gradient of a convolution by GEMM + col2im (conv.c), one image at a
 * time: gout (batch, C_out, out) and w as above -> gx (batch, C_in, in),
 * overwritten.  ws holds fc_conv_data_grad_workspace_*(g, nthreads)
 * elements (one image's columns and GEMM scratch per thread). */
int64_t fc_conv_data_grad_workspace_f32(const fc_geometry *g, int nthreads);
int64_t fc_conv_data_grad_workspace_f64(const fc_geometry *g, int nthreads);
void fc_conv_data_grad_f32(const float *gout, int64_t batch, const fc_geometry *g,
                           int64_t groups, const float *w, int64_t c_out, float *gx, float *ws,
                           int nthreads);
void fc_conv_data_grad_f64(const double *gout, int64_t batch, const fc_geometry *g,
                           int64_t groups, const double *w, int64_t c_out, double *gx,
                           double *ws, int nthreads);

/* Instruction-set levels of the GEMM micro-kernels.  select(-1) picks the best
 * this CPU supports; select(level) forces one (returns -1 if unsupported). */
enum { FC_SIMD_GENERIC = 0, FC_SIMD_AVX2 = 1, FC_SIMD_AVX512 = 2 };
int fc_simd_compiled(int level);
int fc_simd_supported(int level);
int fc_simd_select(int level);
int fc_simd_active(void);

/* Build information for show_config(). */
int fc_openmp_enabled(void);
int fc_openmp_max_threads(void);
const char *fc_compiler(void);
const char *fc_build_flags(void);
/* Instruction sets the compiler targets for all code (its predefined macros:
 * the baseline every kernel may use, before any runtime dispatch). */
const char *fc_target_isa(void);

/* ======================================================================== */
/* Pooling (pool.c, pool_template.h)                                        */
/* ======================================================================== */
/* Pooling acts on each (n, c) plane alone: g->channels counts planes
 * (batch * channels), a plane is in[0]*in[1]*in[2] contiguous values and its
 * output out[0]*out[1]*out[2].  g->pad is the padding on each side.
 * Callers compute g->out (ceil_mode included) and guarantee padding <=
 * kernel / 2, so every window holds at least one in-bounds tap.
 * Threads own disjoint outputs: output rows forward, whole planes backward. */

/* Max pooling.  Padding counts as -inf; NaN propagates; the first maximum in
 * row-major window order wins ties.  indices (may be NULL) receives the flat
 * index d*H*W + h*W + w of the chosen element inside its own plane. */
void fc_max_pool_f32(const float *x, const fc_geometry *g, float *y,
                     int64_t *indices, int nthreads);
void fc_max_pool_f64(const double *x, const fc_geometry *g, double *y,
                     int64_t *indices, int nthreads);

/* grad_input[plane][indices[o]] += grad_output[o]; overwrites gx.  Every
 * index must lie in [0, in plane size): check with fc_pool_find_bad_index. */
void fc_max_pool_backward_f32(const float *gy, const int64_t *indices,
                              const fc_geometry *g, float *gx, int nthreads);
void fc_max_pool_backward_f64(const double *gy, const int64_t *indices,
                              const fc_geometry *g, double *gx, int nthreads);

/* Position of some value of indices[0..n) outside [0, limit), or -1. */
int64_t fc_pool_find_bad_index(const int64_t *indices, int64_t n, int64_t limit,
                               int nthreads);

/* Average pooling (dilation must be 1).  The divisor is divisor_override when
 * non-zero; else with count_include_pad the window clipped to
 * [-pad, in + pad) (the ceil-mode overhang never counts), without it the
 * in-bounds taps only. */
void fc_avg_pool_f32(const float *x, const fc_geometry *g, int count_include_pad,
                     int64_t divisor_override, float *y, int nthreads);
void fc_avg_pool_f64(const double *x, const fc_geometry *g, int count_include_pad,
                     int64_t divisor_override, double *y, int nthreads);
void fc_avg_pool_backward_f32(const float *gy, const fc_geometry *g,
                              int count_include_pad, int64_t divisor_override,
                              float *gx, int nthreads);
void fc_avg_pool_backward_f64(const double *gy, const fc_geometry *g,
                              int count_include_pad, int64_t divisor_override,
                              double *gx, int nthreads);

/* Adaptive average pooling: uses channels, in and out only; bin i along an
 * axis is [floor(i*in/out), ceil((i+1)*in/out)). */
void fc_adaptive_avg_pool_f32(const float *x, const fc_geometry *g, float *y,
                              int nthreads);
void fc_adaptive_avg_pool_f64(const double *x, const fc_geometry *g, double *y,
                              int nthreads);
void fc_adaptive_avg_pool_backward_f32(const float *gy, const fc_geometry *g,
                                       float *gx, int nthreads);
void fc_adaptive_avg_pool_backward_f64(const double *gy, const fc_geometry *g,
                                       double *gx, int nthreads);

/* Adaptive max pooling (adaptive_max_pool.c): bins as adaptive average
 * pooling, the max rule and indices (may be NULL) as fc_max_pool_*; its
 * backward is fc_max_pool_backward_*. */
void fc_adaptive_max_pool_f32(const float *x, const fc_geometry *g, float *y,
                              int64_t *indices, int nthreads);
void fc_adaptive_max_pool_f64(const double *x, const fc_geometry *g, double *y,
                              int64_t *indices, int nthreads);

/* ======================================================================== */
/* Interpolation (interpolate.c, interpolate_template.h)                    */
/* ======================================================================== */
/* Separable resampling of each (n, c) plane (g->channels planes; uses in and
 * out only): along axis a, output o reads taps[a] (1 or 2) input positions
 * index[base_a + 2*o + t] weighted by weight[base_a + 2*o + t], base_0 = 0,
 * base_1 = 2*out[0], base_2 = 2*(out[0] + out[1]).  Every index must lie in
 * [0, in[a]).  Backward overwrites gx with the adjoint (the scatter-add). */
void fc_interpolate_f32(const float *x, const fc_geometry *g, const int64_t *index,
                        const float *weight, const int taps[3], float *y, int nthreads);
void fc_interpolate_f64(const double *x, const fc_geometry *g, const int64_t *index,
                        const double *weight, const int taps[3], double *y, int nthreads);
void fc_interpolate_backward_f32(const float *gy, const fc_geometry *g, const int64_t *index,
                                 const float *weight, const int taps[3], float *gx,
                                 int nthreads);
void fc_interpolate_backward_f64(const double *gy, const fc_geometry *g,
                                 const int64_t *index, const double *weight,
                                 const int taps[3], double *gx, int nthreads);

/* ======================================================================== */
/* Deformable convolution (deform_conv.c, deform_conv_template.h)           */
/* ======================================================================== */
/* 2-D geometry in entries 1 and 2 of g (channels = C_in); x is (batch, C_in,
 * H, W), offset (batch, 2*offset_groups*kH*kW, OH, OW) as (dy, dx) pairs,
 * mask (batch, offset_groups*kH*kW, OH, OW) or NULL (v1); C_in divisible by
 * offset_groups.  Columns are (C_in*kH*kW, batch*OH*OW): row c*kH*kW + k,
 * column b*OH*OW + l, images side by side.  Samples are bilinear with zeros
 * outside the input (torchvision's rules).
 * im2col: columns <- masked samples (overwritten).
 * col2im: gx (batch, C_in, H, W) <- the adjoint of im2col applied to gcol
 *   (overwritten; threads own whole planes).
 * offset_mask_grad: grad_offset (offset's shape) and grad_mask (mask's
 *   shape; NULL when mask is NULL) <- gradients of <gcol, columns>
 *   (overwritten; threads own whole (image, group, tap) rows). */
void fc_deform_im2col_f32(const float *x, const float *offset, const float *mask,
                          int64_t batch, const fc_geometry *g, int64_t offset_groups,
                          float *col, int nthreads);
void fc_deform_im2col_f64(const double *x, const double *offset, const double *mask,
                          int64_t batch, const fc_geometry *g, int64_t offset_groups,
                          double *col, int nthreads);
void fc_deform_col2im_f32(const float *gcol, const float *offset, const float *mask,
                          int64_t batch, const fc_geometry *g, int64_t offset_groups,
                          float *gx, int nthreads);
void fc_deform_col2im_f64(const double *gcol, const double *offset, const double *mask,
                          int64_t batch, const fc_geometry *g, int64_t offset_groups,
                          double *gx, int nthreads);
void fc_deform_offset_mask_grad_f32(const float *gcol, const float *x, const float *offset,
                                    const float *mask, int64_t batch, const fc_geometry *g,
                                    int64_t offset_groups, float *grad_offset,
                                    float *grad_mask, int nthreads);
void fc_deform_offset_mask_grad_f64(const double *gcol, const double *x,
                                    const double *offset, const double *mask, int64_t batch,
                                    const fc_geometry *g, int64_t offset_groups,
                                    double *grad_offset, double *grad_mask, int nthreads);

#endif
