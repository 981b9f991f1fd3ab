/* Interpolation kernels for float and double, from one template
 * (interpolate_template.h). */
#include <string.h>
#include "common.h"

#define FC_TEMPLATE "interpolate_template.h"
#include "instantiate.h"
