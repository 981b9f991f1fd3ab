/* Expand the template named by FC_TEMPLATE once per dtype: SCALAR is the C
 * type and SFX the name suffix (f32, f64).  One source for every dtype, as
 * Bottleneck's templates do; the includer defines FC_TEMPLATE first. */
#define SCALAR float
#define SFX f32
#include FC_TEMPLATE
#undef SCALAR
#undef SFX

#define SCALAR double
#define SFX f64
#include FC_TEMPLATE
#undef SCALAR
#undef SFX

#undef FC_TEMPLATE
