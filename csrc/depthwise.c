/* Depthwise convolution for float and double, from one template. */
#include <string.h>
#include "common.h"

#define FC_TEMPLATE "depthwise_template.h"
#include "instantiate.h"
