/* The kernel table: every kernel of fastconv.h, for one instruction set.
 *
 * Each csrc/isa/<level>.c compiles every kernel family's template once (for
 * both dtypes) and fills one fc_isa_kernels; dispatch.c keeps the table of
 * the level FASTCONV_SIMD / fc_simd_select chose, and each exported function
 * of fastconv.h calls that table's entry for its dtype.  One pointer call per
 * kernel call: inside a table everything is direct calls, so the GEMM's
 * micro-kernels stay inlined into their loops.
 *
 * Adding a kernel: its line in kernels.def (the member here, every level's
 * entry and the exported function come from it) and its prototype in
 * fastconv.h. */
#ifndef FASTCONV_DISPATCH_H
#define FASTCONV_DISPATCH_H

#include "common.h"

/* One dtype's kernels (csrc/kernels.def); buffers are of that dtype (void *
 * as in fastconv.h). */
typedef struct {
#define FC_KERNEL(ret, exported, entry, params, args) ret (*entry) params;
#include "kernels.def"
} fc_dtype_kernels;

/* Every kernel of one instruction set. */
typedef struct {
    int level;                            /* its FC_SIMD_* level */
    fc_dtype_kernels dtype[FC_NDTYPES];   /* indexed by fc_dtype */
    int64_t (*pool_find_bad_index)(const int64_t *indices, int64_t n, int64_t limit,
                                   int nthreads);
} fc_isa_kernels;

/* Filled by csrc/isa/generic.c, avx2.c and avx512.c (x86-64 GCC/clang only). */
extern const fc_isa_kernels fc_kernels_generic;
#if FC_HAVE_X86_DISPATCH
extern const fc_isa_kernels fc_kernels_avx2;
extern const fc_isa_kernels fc_kernels_avx512;
#endif

#endif
