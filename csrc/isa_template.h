/* One instruction set's table of every kernel (dispatch.h), from the kernel
 * families' templates.  Included once by each csrc/isa/<level>.c, which
 * defines first:
 *   FC_ISA_LEVEL    its FC_SIMD_* level
 *   FC_ISA_TABLE    the name of the table it fills (fc_kernels_<level>)
 *   TARGET          function attribute enabling the instruction set (or empty)
 *   VBYTES, MR, NV  vector width in bytes and the GEMM micro-tile
 *   G_HAVE_STREAM   1 with G_STREAM(p, v) and G_SFENCE() (streaming stores)
 * Every function here is static: each level's copy stays in its own object,
 * reached only through its table. */
#include <math.h>
#include <string.h>
#include "dispatch.h"

/* Names of one dtype's copy (SFX: f32, f64), and its vector geometry. */
#define FC_FN(name) FC_CAT(name, SFX)
#define FC_LANES ((int64_t)(VBYTES / sizeof(SCALAR)))
#define FC_NR (NV * FC_LANES)

#define FC_TEMPLATE "families_template.h"
#include "instantiate.h"

/* One dtype's entries: the template functions of suffix S. */
#define FC_DTYPE_KERNELS(S)                                                      \
    {                                                                            \
        .im2col = im2col_##S,                                                    \
        .col2im = col2im_##S,                                                    \
        .depthwise_workspace = depthwise_workspace_##S,                          \
        .depthwise_forward = depthwise_forward_##S,                              \
        .depthwise_backward_input = depthwise_backward_input_##S,                \
        .depthwise_backward_weight = depthwise_backward_weight_##S,              \
        .gemm_workspace = gemm_workspace_##S,                                    \
        .gemm = gemm_entry_##S,                                                  \
        .conv_workspace = conv_workspace_##S,                                    \
        .conv_forward = conv_forward_##S,                                        \
        .conv_winograd_workspace = conv_winograd_workspace_##S,                  \
        .conv_winograd = conv_winograd_##S,                                      \
        .conv_weight_grad_workspace = conv_weight_grad_workspace_##S,            \
        .conv_weight_grad = conv_weight_grad_##S,                                \
        .conv_winograd_weight_grad_workspace = conv_winograd_weight_grad_workspace_##S, \
        .conv_winograd_weight_grad = conv_winograd_weight_grad_##S,              \
        .conv_data_grad_workspace = conv_data_grad_workspace_##S,                \
        .conv_data_grad = conv_data_grad_##S,                                    \
        .max_pool = max_pool_##S,                                                \
        .max_pool_backward = max_pool_backward_##S,                              \
        .avg_pool = avg_pool_##S,                                                \
        .avg_pool_backward = avg_pool_backward_##S,                              \
        .adaptive_avg_pool = adaptive_avg_pool_##S,                              \
        .adaptive_avg_pool_backward = adaptive_avg_pool_backward_##S,            \
        .global_avg_pool = global_avg_pool_##S,                                  \
        .adaptive_max_pool = adaptive_max_pool_##S,                              \
        .interpolate = interpolate_##S,                                          \
        .interpolate_backward = interpolate_backward_##S,                        \
        .deform_im2col = deform_im2col_##S,                                      \
        .deform_col2im = deform_col2im_##S,                                      \
        .deform_offset_mask_grad = deform_offset_mask_grad_##S,                  \
        .batch_norm_forward = batch_norm_forward_##S,                            \
        .batch_norm_backward = batch_norm_backward_##S,                          \
        .activation = activation_##S,                                            \
        .activation_backward = activation_backward_##S,                          \
        .prelu = prelu_##S,                                                      \
        .prelu_backward = prelu_backward_##S,                                    \
        .softmax = softmax_##S,                                                  \
        .softmax_backward = softmax_backward_##S,                                \
        .cross_entropy = cross_entropy_##S,                                      \
        .cross_entropy_backward = cross_entropy_backward_##S,                    \
    }

const fc_isa_kernels FC_ISA_TABLE = {
    .level = FC_ISA_LEVEL,
    .dtype = {[FC_FLOAT32] = FC_DTYPE_KERNELS(f32), [FC_FLOAT64] = FC_DTYPE_KERNELS(f64)},
    .pool_find_bad_index = fc_pool_find_bad_index_,
};

#undef FC_DTYPE_KERNELS
#undef FC_FN
#undef FC_LANES
#undef FC_NR
