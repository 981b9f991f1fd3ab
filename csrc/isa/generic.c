/* The generic kernel table: 16-byte vectors, which every GCC/clang target
 * maps to its SIMD (or to scalar code), so this table exists everywhere. */
#include "common.h"

#define FC_ISA_LEVEL FC_SIMD_GENERIC
#define FC_ISA_TABLE fc_kernels_generic
#define TARGET
#define VBYTES 16
#define MR 4
#define NV 2
#define G_HAVE_STREAM 0
#include "isa_template.h"
