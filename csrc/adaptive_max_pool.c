/* Adaptive max pooling for float and double, from one template
 * (adaptive_max_pool_template.h). */
#include <math.h>
#include "common.h"

#define FC_TEMPLATE "adaptive_max_pool_template.h"
#include "instantiate.h"
