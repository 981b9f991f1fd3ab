/* im2col and col2im for float and double, from one template. */
#include <string.h>
#include "common.h"
#ifdef _OPENMP
#include <omp.h>
#endif

#define SCALAR float
#define SFX f32
#include "im2col_template.h"
#undef SCALAR
#undef SFX

#define SCALAR double
#define SFX f64
#include "im2col_template.h"
#undef SCALAR
#undef SFX
