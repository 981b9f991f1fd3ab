/* Every kernel family's template, for one (scalar type, instruction set):
 * the only place their order is written.  Each family keeps its own tunables
 * (the #ifndef FC_*_SHARED / FC_*_TUNABLES block at its top); a later family
 * may call an earlier one's static functions, as noted here. */
#include "gemm_template.h"       /* micro-kernels, register transposes, the GEMM */
#include "wgrad_template.h"      /* fused weight gradient: gemm's micro-kernel and transposes */
#include "winograd_template.h"   /* Winograd F(2x2, 3x3): gemm's micro-kernels and transposes */
#include "im2col_template.h"     /* im2col, col2im */
#include "conv_template.h"       /* implicit-GEMM conv, data gradient: gemm and col2im */
#include "depthwise_template.h"  /* depthwise convolution */
#include "pool_template.h"       /* max, average and adaptive max/average pooling */
#include "interpolate_template.h" /* separable resampling (interpolate), forward and backward */
#include "deform_conv_template.h" /* deformable convolution's column kernels (GEMMs: Python) */
#include "batchnorm_template.h"   /* batch normalisation, forward and backward */
#include "activation_template.h" /* activations, PReLU, softmax, cross-entropy */
#include "copy_template.h"       /* strided copies and zero fills */

/* Macros the templates define per dtype. */
#undef G_HAVE_TRANSPOSE
#undef G_TRANSPOSE
#undef G_INTERLEAVE
