/* Depthwise convolution for float and double, from one template. */
#include <string.h>
#include "common.h"

#define SCALAR float
#define SFX f32
#include "depthwise_template.h"
#undef SCALAR
#undef SFX

#define SCALAR double
#define SFX f64
#include "depthwise_template.h"
#undef SCALAR
#undef SFX
