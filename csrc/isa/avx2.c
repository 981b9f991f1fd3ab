/* The AVX2 + FMA kernel table (x86-64 with GCC or clang): a 6 x 2 ymm GEMM
 * micro-tile, 12 accumulators of 16 registers (BLIS haswell). */
#include "common.h"

#if FC_HAVE_X86_DISPATCH
#include <immintrin.h>   /* streaming stores: no portable spelling in GCC */

#define FC_ISA_LEVEL FC_SIMD_AVX2
#define FC_ISA_TABLE fc_kernels_avx2
#define TARGET __attribute__((target("avx2,fma")))
#define VBYTES 32
#define MR 6
#define NV 2
#define G_HAVE_STREAM 1
#define G_STREAM(p, v) (sizeof(SCALAR) == 4 ? _mm256_stream_ps((float *)(p), (__m256)(v)) \
                                             : _mm256_stream_pd((double *)(p), (__m256d)(v)))
#define G_SFENCE() _mm_sfence()
/* The first `count` lanes at p, zero past them (lanes past them not read). */
#define G_LOAD_HEAD(p, count)                                                            \
    (sizeof(SCALAR) == 4                                                                 \
         ? (FC_FN(vec_))_mm256_maskload_ps(                                              \
               (const float *)(p), _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(count)),   \
                                                      _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))) \
         : (FC_FN(vec_))_mm256_maskload_pd(                                              \
               (const double *)(p), _mm256_cmpgt_epi64(_mm256_set1_epi64x(count),        \
                                                       _mm256_setr_epi64x(0, 1, 2, 3))))
#include "isa_template.h"
#else
typedef int fc_avx2_not_compiled;   /* ISO C: no empty translation unit */
#endif
