/* fastconv C kernels: plain C99 loops, no Python, no NumPy.
 *
 * Every spatial op works on up to three spatial dimensions (D, H, W); 1-D and
 * 2-D callers pass size-1 leading dimensions (kernel 1, stride 1, pad 0,
 * dilation 1), so one loop nest serves conv1d, conv2d and conv3d alike.
 * All index arithmetic is int64_t so tensors past 2^31 elements are safe.
 *
 * Each kernel takes `nthreads`: the caller decides the thread count (one
 * place, in Python); kernels parallelise only over disjoint outputs.
 *
 * Each kernel takes its dtype first (fc_dtype) and its arrays as void *, and
 * runs wholly on the kernel table of the instruction set fc_simd_select chose
 * (csrc/dispatch.c; the tables are compiled by csrc/isa/).
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

/* Element type of every buffer a kernel reads or writes (void * below):
 * one exported function per kernel serves both. */
typedef enum { FC_FLOAT32 = 0, FC_FLOAT64 = 1 } fc_dtype;
#define FC_NDTYPES 2

/* im2col: images (batch, C, D, H, W) contiguous -> columns, rows ordered
 * c*kD*kH*kW + kd*kH*kW + kh*kW + kw, columns od*oH*oW + oh*oW + ow. */
void fc_im2col(fc_dtype dtype, const void *im, int64_t batch, const fc_geometry *g,
               fc_col_layout layout, void *col, int nthreads);

/* col2im: the adjoint of im2col; overlapping taps are summed.  Overwrites
 * `im` (batch, C, D, H, W). */
void fc_col2im(fc_dtype dtype, const void *col, int64_t batch, const fc_geometry *g,
               fc_col_layout layout, void *im, int nthreads);

/* Depthwise and grouped convolution by direct loops: C_in = g->channels
 * input channels in groups of `group_channels` (1: depthwise, groups ==
 * C_in; group_channels must divide C_in), each group feeding `multiplier`
 * output channels (C_out = C_in / group_channels * multiplier); w is
 * (C_out, group_channels, taps).
 * forward: x (batch, C_in, in) -> y (batch, C_out, out), overwritten, plus
 * bias (C_out values, or NULL).
 * backward_input: gy -> gx (batch, C_in, in), overwritten.
 * backward_weight: gy, x -> gw (C_out, group_channels, taps), overwritten.
 * ws: fc_depthwise_workspace(dtype, g, multiplier, group_channels, nthreads)
 * elements, 64-byte aligned, shared by the three (the caller keeps and
 * reuses it). */
int64_t fc_depthwise_workspace(fc_dtype dtype, const fc_geometry *g, int64_t multiplier,
                               int64_t group_channels, int nthreads);
void fc_depthwise_forward(fc_dtype dtype, const void *x, const void *w, const void *bias,
                          int64_t batch, const fc_geometry *g, int64_t multiplier,
                          int64_t group_channels, void *y, void *ws, int nthreads);
void fc_depthwise_backward_input(fc_dtype dtype, const void *gy, const void *w, int64_t batch,
                                 const fc_geometry *g, int64_t multiplier,
                                 int64_t group_channels, void *gx, void *ws, int nthreads);
void fc_depthwise_backward_weight(fc_dtype dtype, const void *gy, const void *x,
                                  int64_t batch, const fc_geometry *g, int64_t multiplier,
                                  int64_t group_channels, void *gw, void *ws, int nthreads);

/* GEMM: C (m x n) = A (m x k) * B (k x n), or C += A * B when `accumulate`.
 * A's element (i, p) is a[i*rs_a + p*cs_a], B's (p, j) is b[p*rs_b + j*cs_b]
 * (any strides: a transposed operand is just swapped strides); C is row-major
 * with leading dimension ldc.  `ws` must hold fc_gemm_workspace(dtype,
 * nthreads) elements: callers own and reuse it, so no call maps fresh memory. */
int64_t fc_gemm_workspace(fc_dtype dtype, int nthreads);
void fc_gemm(fc_dtype dtype, int64_t m, int64_t n, int64_t k, const void *a, int64_t rs_a,
             int64_t cs_a, const void *b, int64_t rs_b, int64_t cs_b, void *c, int64_t ldc,
             int accumulate, void *ws, int nthreads);
/* The same product for small sizes, without packing: A and B are read where
 * they lie, on the calling thread, with no workspace.  Fastest when B's rows
 * are contiguous (cs_b == 1), or B's columns and A's rows are (rs_b == 1,
 * cs_a == 1: x @ w.T); any other strides take a slow plain loop.  Faster
 * than fc_gemm below a few hundred thousand multiply-adds (the caller
 * chooses; docs/performance.md). */
void fc_gemm_small(fc_dtype dtype, int64_t m, int64_t n, int64_t k, const void *a,
                   int64_t rs_a, int64_t cs_a, const void *b, int64_t rs_b, int64_t cs_b,
                   void *c, int64_t ldc, int accumulate);

/* How the implicit-GEMM convolution kernels run: choices the caller's plan
 * makes (they trade speed only, never the result), which the kernels carry
 * out without second-guessing them. */
typedef struct {
    /* Forward: one GEMM per image; 0: the images side by side in one GEMM
     * per group (fuller micro-tiles for small images).  Both write y in
     * place. */
    int per_image;
    /* Forward per image, and the data gradient: each thread takes whole
     * images (no synchronisation inside an image); 0: one image at a time,
     * the threads splitting its work. */
    int threads_over_images;
    /* Forward: write y with non-temporal (streaming) stores, for an output
     * too large to stay in cache until it is read. */
    int stream_stores;
    /* Forward per image of a 1x1 kernel, stride 1, no padding: the GEMM reads
     * each image as its column matrix (no phase planes). */
    int pointwise;
} fc_conv_schedule;

/* Convolution forward as an implicit GEMM: x (batch, C_in, in) and
 * w (C_out, C_in/groups, kernel) -> y, overwritten, plus bias (C_out values,
 * or NULL) on each output channel; y is (batch, C_out, L).  ws holds
 * fc_conv_workspace(dtype, g, batch, c_out, s, nthreads) elements, offsets
 * C_in * taps.  Returns -1 (writing nothing) when s->pointwise is set for a
 * geometry that is not pointwise, else 0. */
int64_t fc_conv_workspace(fc_dtype dtype, const fc_geometry *g, int64_t batch, int64_t c_out,
                          const fc_conv_schedule *s, int nthreads);
int fc_conv_forward(fc_dtype dtype, const void *x, int64_t batch, const fc_geometry *g,
                    int64_t groups, const void *w, const void *bias, int64_t c_out, void *y,
                    const fc_conv_schedule *s, void *ws, int64_t *offsets, int nthreads);

/* Convolution forward by Winograd F(2x2, 3x3): 2-D (g->in[0] == 1), 3x3
 * kernel, stride 1, dilation 1, any padding; returns -1 (writing nothing) for
 * other geometries, for which the workspace size is -1 too, else 0.
 * Otherwise as fc_conv_forward with y
 * (batch, C_out, L).  2.25x fewer multiply-adds than the direct sum; its
 * rounding error is a small multiple of the direct sum's.  ws holds
 * fc_conv_winograd_workspace(dtype, g, groups, c_out, nthreads) elements. */
int64_t fc_conv_winograd_workspace(fc_dtype dtype, const fc_geometry *g, int64_t groups,
                                   int64_t c_out, int nthreads);
int fc_conv_winograd(fc_dtype dtype, const void *x, int64_t batch, const fc_geometry *g,
                     int64_t groups, const void *w, const void *bias, int64_t c_out, void *y,
                     void *ws, int nthreads);

/* Weight gradient of a convolution, fused: grad_w (m x K, leading dimension
 * ldw) += grad_out (m x P) * cols^T, K = channels*taps column rows of im2col,
 * P = batch*L output positions.  Image b's channel c is at
 * x + b*x_image_stride + c*D*H*W, its grad_out row o at
 * gout + b*gout_image_stride + o*L (so one group of a grouped conv is an offset
 * and strides).  The GEMM's packed panels are built from x and gout just
 * before use: no column matrix.  `ws` holds
 * fc_conv_weight_grad_workspace(dtype, m, K, nthreads) elements. */
int64_t fc_conv_weight_grad_workspace(fc_dtype dtype, int64_t m, int64_t n, int nthreads);
void fc_conv_weight_grad(fc_dtype dtype, const void *x, int64_t x_image_stride,
                         const void *gout, int64_t gout_image_stride, int64_t batch,
                         const fc_geometry *g, int64_t m, void *grad_w, int64_t ldw, void *ws,
                         int nthreads);

/* Weight gradient by Winograd F(2x2, 3x3), same geometries as
 * fc_conv_winograd (-1 for others, else 0) and same arguments as
 * fc_conv_weight_grad (grad_w += the gradient); ws holds fc_conv_winograd_weight_grad_workspace(dtype, g,
 * m, nthreads) elements. */
int64_t fc_conv_winograd_weight_grad_workspace(fc_dtype dtype, const fc_geometry *g,
                                               int64_t m, int nthreads);
int fc_conv_winograd_weight_grad(fc_dtype dtype, const void *x, int64_t x_image_stride,
                                 const void *gout, int64_t gout_image_stride, int64_t batch,
                                 const fc_geometry *g, int64_t m, void *grad_w, int64_t ldw,
                                 void *ws, int nthreads);

/* Data gradient of a convolution by GEMM + col2im, one image at a time:
 * gout (batch, C_out, out) and w as above -> gx (batch, C_in, in),
 * overwritten; s->threads_over_images as for the forward.  ws holds
 * fc_conv_data_grad_workspace(dtype, g, nthreads) elements (one image's
 * columns and GEMM scratch per thread). */
int64_t fc_conv_data_grad_workspace(fc_dtype dtype, const fc_geometry *g, int nthreads);
void fc_conv_data_grad(fc_dtype dtype, const void *gout, int64_t batch, const fc_geometry *g,
                       int64_t groups, const void *w, int64_t c_out, void *gx,
                       const fc_conv_schedule *s, void *ws, int nthreads);

/* Instruction-set levels: every kernel of this header is compiled once per
 * level (csrc/isa/), and all of them run the level selected here (the
 * *_workspace sizes cover every level this CPU can run).  select(-1) picks
 * the best this CPU supports; select(level) forces one (returns -1 if
 * unsupported).  Process-wide: call it while no kernel runs. */
#define FC_SIMD_GENERIC 0
#define FC_SIMD_AVX2 1
#define FC_SIMD_AVX512 2
#define FC_SIMD_LEVELS 3
int fc_simd_compiled(int level);
int fc_simd_supported(int level);
int fc_simd_select(int level);
int fc_simd_active(void);
/* Kernel calls run by level's kernels since the process started (for tests:
 * proof that a switch reached a kernel family). */
int64_t fc_simd_calls(int level);

/* Stopping a long kernel call early (Ctrl-C).  Every long kernel polls, at
 * plane / row block / GEMM panel granularity, a stop flag of the thread that
 * called it; all its threads see the flag and skip the rest of their work.
 * Thread 0 of the call (the calling thread) runs `poll` (fc_set_poll) at each
 * check: a nonzero return sets the flag.  fc_stop_take() returns and clears
 * the calling thread's flag: after a kernel call, nonzero means the call
 * stopped early and its outputs (and scratch) hold garbage.
 * fc_stop_request() sets the flag, so the next kernel call on this thread
 * returns at its first check (the C test driver uses it).  Kernels that do
 * not poll (the elementwise ones: one pass over memory) leave it alone. */
typedef int (*fc_poll_fn)(void);
void fc_set_poll(fc_poll_fn poll);
int fc_stop_take(void);
void fc_stop_request(void);

/* Build information for show_config(). */
int fc_openmp_enabled(void);
int fc_openmp_max_threads(void);
const char *fc_compiler(void);
const char *fc_build_flags(void);
/* Instruction sets the compiler targets for all code (its predefined macros:
 * the baseline every kernel may use, before any runtime dispatch). */
const char *fc_target_isa(void);

/* ======================================================================== */
/* Pooling (pool_template.h)                                                */
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
void fc_max_pool(fc_dtype dtype, const void *x, const fc_geometry *g, void *y,
                 int64_t *indices, int nthreads);

/* grad_input[plane][indices[o]] += grad_output[o]; overwrites gx.  Every
 * index must lie in [0, in plane size): check with fc_pool_find_bad_index. */
void fc_max_pool_backward(fc_dtype dtype, const void *gy, const int64_t *indices,
                          const fc_geometry *g, void *gx, int nthreads);

/* Position of some value of indices[0..n) outside [0, limit), or -1. */
int64_t fc_pool_find_bad_index(const int64_t *indices, int64_t n, int64_t limit,
                               int nthreads);

/* Average pooling (dilation must be 1).  The divisor is divisor_override when
 * non-zero; else with count_include_pad the window clipped to
 * [-pad, in + pad) (the ceil-mode overhang never counts), without it the
 * in-bounds taps only. */
void fc_avg_pool(fc_dtype dtype, const void *x, const fc_geometry *g, int count_include_pad,
                 int64_t divisor_override, void *y, int nthreads);
void fc_avg_pool_backward(fc_dtype dtype, const void *gy, const fc_geometry *g,
                          int count_include_pad, int64_t divisor_override, void *gx,
                          int nthreads);

/* Adaptive average pooling: uses channels, in and out only; bin i along an
 * axis is [floor(i*in/out), ceil((i+1)*in/out)). */
void fc_adaptive_avg_pool(fc_dtype dtype, const void *x, const fc_geometry *g, void *y,
                          int nthreads);
void fc_adaptive_avg_pool_backward(fc_dtype dtype, const void *gy, const fc_geometry *g,
                                   void *gx, int nthreads);
/* Global average pooling: y[p] = the mean of plane p (channels planes of
 * in[0]*in[1]*in[2] values), adaptive average pooling to a 1x1x1 output;
 * prefetch != 0: software prefetch ahead (for inputs that are not in cache). */
void fc_global_avg_pool(fc_dtype dtype, const void *x, const fc_geometry *g, int prefetch,
                        void *y, int nthreads);

/* Adaptive max pooling: bins as adaptive average pooling, the max rule and
 * indices (may be NULL) as fc_max_pool; its backward is fc_max_pool_backward. */
void fc_adaptive_max_pool(fc_dtype dtype, const void *x, const fc_geometry *g, void *y,
                          int64_t *indices, int nthreads);

/* ======================================================================== */
/* Interpolation (interpolate_template.h)                                   */
/* ======================================================================== */
/* Separable resampling of each (n, c) plane (g->channels planes; uses in and
 * out only): along axis a, output o reads taps[a] (1 or 2) input positions
 * index[base_a + 2*o + t] weighted by weight[base_a + 2*o + t], base_0 = 0,
 * base_1 = 2*out[0], base_2 = 2*(out[0] + out[1]); weight is of dtype.
 * Every index must lie in [0, in[a]), and along W (axis 2) the taps must be
 * neighbours in order: the first taps non-decreasing in o, a second tap the
 * first or the one after it (as PyTorch's rules give them; the kernels blend
 * the input columns a run of outputs reads, found from the first and last
 * output's taps).  Backward overwrites gx with the adjoint. */
void fc_interpolate(fc_dtype dtype, const void *x, const fc_geometry *g, const int64_t *index,
                    const void *weight, const int taps[3], void *y, int nthreads);
void fc_interpolate_backward(fc_dtype dtype, const void *gy, const fc_geometry *g,
                             const int64_t *index, const void *weight, const int taps[3],
                             void *gx, int nthreads);

/* ======================================================================== */
/* Deformable convolution (deform_conv_template.h)                          */
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
void fc_deform_im2col(fc_dtype dtype, const void *x, const void *offset, const void *mask,
                      int64_t batch, const fc_geometry *g, int64_t offset_groups, void *col,
                      int nthreads);
void fc_deform_col2im(fc_dtype dtype, const void *gcol, const void *offset, const void *mask,
                      int64_t batch, const fc_geometry *g, int64_t offset_groups, void *gx,
                      int nthreads);
void fc_deform_offset_mask_grad(fc_dtype dtype, const void *gcol, const void *x,
                                const void *offset, const void *mask, int64_t batch,
                                const fc_geometry *g, int64_t offset_groups,
                                void *grad_offset, void *grad_mask, int nthreads);

/* ======================================================================== */
/* Batch normalisation (batchnorm_template.h)                               */
/* ======================================================================== */
/* x and y are (batch, channels, spatial); weight and bias are channels
 * values of dtype; the statistics are double whatever the dtype.
 * Forward: with compute_stats, mean and var (biased) <- each channel's batch
 *   statistics (needs batch * spatial >= 1); else they are read.  Then, if y
 *   is not NULL, y <- (x - mean) / sqrt(var + eps) * weight + bias, and with
 *   relu, y <- max(y, 0) (NaN stays NaN): BatchNorm and ReLU in one pass.
 * Backward: with compute_sums, sum_dy and sum_dy_xmu <- per channel sum(gy)
 *   and sum(gy * (x - mean)); else they are read (e.g. summed over several
 *   processes).  Then, if gx is not NULL, gx <- the gradient with respect to
 *   x: gy * invstd * weight when the statistics were constants
 *   (batch_stats = 0), else the batch statistics' full gradient with count
 *   values per channel (batch * spatial, or the global count).  With a ReLU
 *   after the BatchNorm, relu_output is the fused forward's y and gy is
 *   ReLU's output gradient: it counts as 0 wherever relu_output <= 0 in the
 *   sums and in gx, as ReLU's backward would have masked it; else NULL. */
void fc_batch_norm_forward(fc_dtype dtype, const void *x, int64_t batch, int64_t channels,
                           int64_t spatial, int compute_stats, double *mean, double *var,
                           const void *weight, const void *bias, double eps, int relu,
                           void *y, int nthreads);
void fc_batch_norm_backward(fc_dtype dtype, const void *gy, const void *relu_output,
                            const void *x, int64_t batch, int64_t channels,
                            int64_t spatial, const double *mean,
                            const double *invstd, const void *weight, int batch_stats,
                            int compute_sums, int64_t count, double *sum_dy,
                            double *sum_dy_xmu, void *gx, int nthreads);

/* ======================================================================== */
/* Activations, softmax, cross-entropy (activation_template.h)              */
/* ======================================================================== */
/* Elementwise activation kinds (alpha: leaky ReLU's negative_slope, ELU's
 * alpha; unused by the others). */
typedef enum {
    FC_ACT_RELU = 0, FC_ACT_LEAKY_RELU, FC_ACT_ELU, FC_ACT_GELU, FC_ACT_GELU_TANH,
    FC_ACT_SILU, FC_ACT_SIGMOID, FC_ACT_TANH
} fc_activation_kind;

/* y[i] = f(x[i]) for n contiguous elements; y may be x (in place).  With
 * save not NULL, save[i] receives in the same pass what the backward reads:
 * the output for ReLU, sigmoid and tanh, the input for the others.
 * backward: gx[i] = gy[i] * f'(.) from saved (that same value). */
void fc_activation(fc_dtype dtype, int kind, const void *x, int64_t n, double alpha, void *y,
                   void *save, int nthreads);
void fc_activation_backward(fc_dtype dtype, int kind, const void *gy, const void *saved,
                            int64_t n, double alpha, void *gx, int nthreads);

/* y[i] = a[i] + b[i] for n contiguous elements, then ReLU'd with relu (the
 * sum of a residual block and the ReLU after it in one pass); y may be a or
 * b (in place). */
void fc_add(fc_dtype dtype, const void *a, const void *b, int64_t n, int relu, void *y,
            int nthreads);

/* PReLU on x (outer, channels, inner) with slope w[c] per channel:
 * y = x > 0 ? x : w[c] * x.  backward overwrites gx (x's shape) and gw
 * (channels): gw[c] = sum of gy * x where x <= 0. */
void fc_prelu(fc_dtype dtype, const void *x, const void *w, int64_t outer, int64_t channels,
              int64_t inner, void *y, int nthreads);
void fc_prelu_backward(fc_dtype dtype, const void *gy, const void *x, const void *w,
                       int64_t outer, int64_t channels, int64_t inner, void *gx, void *gw,
                       int nthreads);

/* Softmax (log = 0) or log-softmax (log = 1) of x (outer, classes, inner)
 * along classes into y; backward from the forward's output y. */
void fc_softmax(fc_dtype dtype, const void *x, int64_t outer, int64_t classes, int64_t inner,
                int log, void *y, int nthreads);
void fc_softmax_backward(fc_dtype dtype, const void *gy, const void *y, int64_t outer,
                         int64_t classes, int64_t inner, int log, void *gx, int nthreads);

/* Cross-entropy of logits x (outer, classes, inner) against int64 labels
 * target (outer, inner), each in [0, classes) or equal to ignore_index;
 * class weights w (classes) or NULL; label smoothing eps in [0, 1].
 * forward: losses (outer, inner) overwritten with each position's loss
 *   (0 where ignored); returns the sum of w[target] over the positions not
 *   ignored (reduction='mean' divides by it).
 * backward: gx (x's shape) overwritten with grad[p * grad_stride] times the
 *   gradient of position p's loss (grad_stride 0: one value for all). */
double fc_cross_entropy(fc_dtype dtype, const void *x, const int64_t *target, const void *w,
                        int64_t outer, int64_t classes, int64_t inner, int64_t ignore_index,
                        double label_smoothing, void *losses, int nthreads);
void fc_cross_entropy_backward(fc_dtype dtype, const void *grad, int64_t grad_stride,
                               const void *x, const int64_t *target, const void *w,
                               int64_t outer, int64_t classes, int64_t inner,
                               int64_t ignore_index, double label_smoothing, void *gx,
                               int nthreads);

/* ======================================================================== */
/* Strided copies and zero fills (copy_template.h)                          */
/* ======================================================================== */
/* Most dims fc_strided_copy takes (after the caller merged the dims that
 * are contiguous in both operands). */
#define FC_COPY_MAX_RANK 8

/* dst[i] = src[i] for every index i of `shape` (rank dims, 1 <= rank <=
 * FC_COPY_MAX_RANK): element i of dst is dst + sum_k i[k] * dst_strides[k],
 * of src likewise (strides in elements, any sign; zero for src broadcasts
 * it).  src NULL writes zeros (src_strides unused).  dst and src must not
 * overlap.  Parallel over pieces of the rows (dims 0 .. rank-2, each row cut
 * at FC_COPY_PIECE elements) when the copy is large enough; polls the stop
 * flag between pieces. */
void fc_strided_copy(fc_dtype dtype, int rank, const int64_t *shape, void *dst,
                     const int64_t *dst_strides, const void *src, const int64_t *src_strides,
                     int nthreads);

#endif
