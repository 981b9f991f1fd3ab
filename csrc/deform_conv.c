/* Deformable convolution's column kernels for float and double, from one
 * template (deform_conv_template.h); the GEMMs around them run in Python
 * through fastconv's own GEMM entry. */
#include <math.h>
#include <string.h>
#include "common.h"

#define FC_TEMPLATE "deform_conv_template.h"
#include "instantiate.h"
