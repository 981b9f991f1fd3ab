/* im2col and col2im for float and double, from one template. */
#include <string.h>
#include "common.h"

#define FC_TEMPLATE "im2col_template.h"
#include "instantiate.h"
