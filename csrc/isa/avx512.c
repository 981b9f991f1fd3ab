/* The AVX-512 kernel table (x86-64 with GCC or clang): an 8 x 3 zmm GEMM
 * micro-tile, 24 accumulators of 32 registers. */
#include "common.h"

#if FC_HAVE_X86_DISPATCH
#include <immintrin.h>   /* streaming stores: no portable spelling in GCC */

#define FC_ISA_LEVEL FC_SIMD_AVX512
#define FC_ISA_TABLE fc_kernels_avx512
#define TARGET __attribute__((target("avx512f,avx2,fma")))
#define VBYTES 64
#define MR 8
#define NV 3
#define G_HAVE_STREAM 1
#define G_STREAM(p, v) (sizeof(SCALAR) == 4 ? _mm512_stream_ps((float *)(p), (__m512)(v)) \
                                             : _mm512_stream_pd((double *)(p), (__m512d)(v)))
#define G_SFENCE() _mm_sfence()
/* The first `count` lanes at p, zero past them (lanes past them not read). */
#define G_LOAD_HEAD(p, count)                                                            \
    (sizeof(SCALAR) == 4                                                                 \
         ? (FC_FN(vec_))_mm512_maskz_loadu_ps((__mmask16)((1u << (count)) - 1), (p))     \
         : (FC_FN(vec_))_mm512_maskz_loadu_pd((__mmask8)((1u << (count)) - 1), (p)))
#include "isa_template.h"
#else
typedef int fc_avx512_not_compiled;   /* ISO C: no empty translation unit */
#endif
