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

/* Each entry of kernels.def is its template function of suffix FC_TABLE_SFX. */
#define FC_TABLE_ENTRY(ret, exported, entry, params, args) .entry = FC_CAT(entry##_, FC_TABLE_SFX),

const fc_isa_kernels FC_ISA_TABLE = {
    .level = FC_ISA_LEVEL,
    .dtype = {
        [FC_FLOAT32] = {
#define FC_TABLE_SFX f32
#define FC_KERNEL FC_TABLE_ENTRY
#include "kernels.def"
#undef FC_TABLE_SFX
        },
        [FC_FLOAT64] = {
#define FC_TABLE_SFX f64
#define FC_KERNEL FC_TABLE_ENTRY
#include "kernels.def"
#undef FC_TABLE_SFX
        },
    },
    .pool_find_bad_index = fc_pool_find_bad_index_,
};

#undef FC_TABLE_ENTRY
#undef FC_FN
#undef FC_LANES
#undef FC_NR
