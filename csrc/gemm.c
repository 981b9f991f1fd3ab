/* GEMM entry points: pick the micro-kernel for this CPU at run time.
 *
 * Every variant is compiled into the same object with a target attribute, so
 * the default build runs on any x86-64 CPU and still uses AVX2 or AVX-512
 * where present.  Other compilers and architectures get the portable kernel
 * (plain C vectors the compiler maps to whatever SIMD it has). */
#include <stdint.h>
#include <string.h>
#include "common.h"
#if FC_HAVE_X86_DISPATCH
#include <immintrin.h>   /* streaming stores: no portable spelling in GCC */
#endif

#define FC_GEMM_ALIGN 64
#ifndef FC_GEMM_KC
#define FC_GEMM_KC 256
#endif
#ifndef FC_GEMM_MC
#define FC_GEMM_MC 96
#endif
#ifndef FC_GEMM_NC_PANELS
#define FC_GEMM_NC_PANELS 128
#endif
#ifndef FC_GEMM_NC_SOURCE_PANELS
#define FC_GEMM_NC_SOURCE_PANELS 32
#endif
#if FC_GEMM_NC_SOURCE_PANELS > FC_GEMM_NC_PANELS
#error "the workspace holds FC_GEMM_NC_PANELS panels of B"
#endif

/* Winograd blocks (winograd_template.h): the transformed input of a block of
 * tiles and the slab of products computed before their output transform,
 * sized so both stay in L2 with the weights' A panels. */
#ifndef FC_WINO_V_BYTES
#define FC_WINO_V_BYTES (384 * 1024)
#endif
#ifndef FC_WINO_M_BYTES
#define FC_WINO_M_BYTES (128 * 1024)
#endif
/* Winograd weight gradient: transformed input and gradient of a block. */
#ifndef FC_WINO_WG_BYTES
#define FC_WINO_WG_BYTES (1024 * 1024)
#endif
/* Channels ahead that the Winograd input transform prefetches. */
#ifndef FC_WINO_PREFETCH
#define FC_WINO_PREFETCH 2
#endif
/* Tile rows one pass over a block handles (more for very narrow outputs). */
#define FC_WINO_MAX_RUNS 257

#if FC_HAVE_X86_DISPATCH
#define G_SFENCE() _mm_sfence()
#endif

static inline void *fc_align_up(void *p)
{
    return (void *)(((uintptr_t)p + FC_GEMM_ALIGN - 1) & ~(uintptr_t)(FC_GEMM_ALIGN - 1));
}

/* Portable kernel: 16-byte vectors, available everywhere GCC/clang run. */
#define ISA generic
#define TARGET
#define VBYTES 16
#define MR 4
#define NV 2
#define G_HAVE_STREAM 0
#define FC_TEMPLATE "gemm_template.h"
#include "instantiate.h"
#define FC_TEMPLATE "wgrad_template.h"
#include "instantiate.h"
#define FC_TEMPLATE "winograd_template.h"
#include "instantiate.h"
#undef ISA
#undef TARGET
#undef VBYTES
#undef MR
#undef NV
#undef G_HAVE_STREAM
#undef G_STREAM

#if FC_HAVE_X86_DISPATCH
/* AVX2 + FMA: 6 x 2 ymm tile, 12 accumulators of 16 registers (BLIS haswell). */
#define ISA avx2
#define TARGET __attribute__((target("avx2,fma")))
#define VBYTES 32
#define MR 6
#define NV 2
#define G_HAVE_STREAM 1
#define G_STREAM(p, v) (sizeof(SCALAR) == 4 ? _mm256_stream_ps((float *)(p), (__m256)(v)) \
                                             : _mm256_stream_pd((double *)(p), (__m256d)(v)))
#define FC_TEMPLATE "gemm_template.h"
#include "instantiate.h"
#define FC_TEMPLATE "wgrad_template.h"
#include "instantiate.h"
#define FC_TEMPLATE "winograd_template.h"
#include "instantiate.h"
#undef ISA
#undef TARGET
#undef VBYTES
#undef MR
#undef NV
#undef G_HAVE_STREAM
#undef G_STREAM

/* AVX-512: 8 x 3 zmm tile, 24 accumulators of 32 registers. */
#define ISA avx512
#define TARGET __attribute__((target("avx512f,avx2,fma")))
#define VBYTES 64
#define MR 8
#define NV 3
#define G_HAVE_STREAM 1
#define G_STREAM(p, v) (sizeof(SCALAR) == 4 ? _mm512_stream_ps((float *)(p), (__m512)(v)) \
                                             : _mm512_stream_pd((double *)(p), (__m512d)(v)))
#define FC_TEMPLATE "gemm_template.h"
#include "instantiate.h"
#define FC_TEMPLATE "wgrad_template.h"
#include "instantiate.h"
#define FC_TEMPLATE "winograd_template.h"
#include "instantiate.h"
#undef ISA
#undef TARGET
#undef VBYTES
#undef MR
#undef NV
#undef G_HAVE_STREAM
#undef G_STREAM
#endif

/* -1: not chosen yet (pick the best the CPU has on first use). */
static int fc_simd = -1;

int fc_simd_supported(int level)
{
    switch (level) {
    case FC_SIMD_GENERIC:
        return 1;
#if FC_HAVE_X86_DISPATCH
    case FC_SIMD_AVX2:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case FC_SIMD_AVX512:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2")
               && __builtin_cpu_supports("fma");
#endif
    default:
        return 0;
    }
}

/* 1 when the micro-kernel of `level` is compiled into this build (whether or
 * not this CPU can run it). */
int fc_simd_compiled(int level)
{
    return level == FC_SIMD_GENERIC
           || (FC_HAVE_X86_DISPATCH && (level == FC_SIMD_AVX2 || level == FC_SIMD_AVX512));
}

int fc_simd_select(int level)
{
    if (level < 0) {
        level = FC_SIMD_AVX512;
        while (!fc_simd_supported(level)) --level;
    }
    if (!fc_simd_supported(level)) return -1;
    fc_simd = level;
    return level;
}

int fc_simd_active(void)
{
    if (fc_simd < 0) fc_simd_select(-1);
    return fc_simd;
}

/* Run variant NAME<isa>_SUFFIX of the active instruction set; RET is
 * `return` for a value, empty for a void call (then the switch ends). */
#define FC_DISPATCH(RET, NAME, SUFFIX, ARGS)                                              \
    switch (fc_simd_active()) {                                                           \
    FC_IF_X86(case FC_SIMD_AVX512: RET NAME##avx512_##SUFFIX ARGS; break;                 \
              case FC_SIMD_AVX2: RET NAME##avx2_##SUFFIX ARGS; break;)                    \
    default: RET NAME##generic_##SUFFIX ARGS;                                             \
    }

#define FC_DEFINE_GEMM(SCALAR_T, SUFFIX)                                                  \
int64_t fc_gemm_workspace_##SUFFIX(int nthreads)                                          \
{                                                                                         \
    int64_t most = workspace_generic_##SUFFIX();                                          \
    FC_IF_X86(if (workspace_avx2_##SUFFIX() > most) most = workspace_avx2_##SUFFIX();     \
              if (workspace_avx512_##SUFFIX() > most) most = workspace_avx512_##SUFFIX();) \
    return most * (nthreads < 1 ? 1 : nthreads);                                          \
}                                                                                         \
void fc_gemm_source_##SUFFIX(int64_t m, int64_t n, int64_t k, const SCALAR_T *a,          \
                             int64_t rs_a, int64_t cs_a, const SCALAR_T *b, int64_t rs_b, \
                             int64_t cs_b, const fc_b_source *b_src, SCALAR_T *c,         \
                             int64_t ldc, const SCALAR_T *bias, int store, SCALAR_T *ws,  \
                             int nthreads)                                                \
{                                                                                         \
    if (m <= 0 || n <= 0 || k <= 0) return;  /* callers never ask for an empty sum */    \
    FC_DISPATCH(, gemm_, SUFFIX, (m, n, k, a, rs_a, cs_a, b_src ? NULL : b, rs_b, cs_b,   \
                                  b_src, c, ldc, store & FC_STORE_STREAM, bias, ws,       \
                                  nthreads))                                              \
}                                                                                         \
void fc_gemm_##SUFFIX(int64_t m, int64_t n, int64_t k,                                    \
                      const SCALAR_T *a, int64_t rs_a, int64_t cs_a,                      \
                      const SCALAR_T *b, int64_t rs_b, int64_t cs_b,                      \
                      SCALAR_T *c, int64_t ldc, int accumulate, SCALAR_T *ws, int nthreads) \
{                                                                                         \
    if (m <= 0 || n <= 0) return;                                                         \
    if (k <= 0) {  /* empty sum */                                                        \
        if (!accumulate)                                                                  \
            for (int64_t i = 0; i < m; ++i) memset(c + i * ldc, 0, (size_t)n * sizeof(SCALAR_T)); \
        return;                                                                           \
    }                                                                                     \
    FC_DISPATCH(, gemm_, SUFFIX, (m, n, k, a, rs_a, cs_a, b, rs_b, cs_b, NULL, c, ldc,    \
                                  accumulate ? FC_STORE_ADD : 0, NULL, ws, nthreads))     \
}

FC_DEFINE_GEMM(float, f32)
FC_DEFINE_GEMM(double, f64)

#define FC_DEFINE_WEIGHT_GRAD(SCALAR_T, SUFFIX)                                           \
int64_t fc_conv_weight_grad_workspace_##SUFFIX(int64_t m, int64_t n, int nthreads)        \
{                                                                                         \
    int64_t most = wg_workspace_generic_##SUFFIX();                                       \
    FC_IF_X86(if (wg_workspace_avx2_##SUFFIX() > most) most = wg_workspace_avx2_##SUFFIX(); \
              if (wg_workspace_avx512_##SUFFIX() > most) most = wg_workspace_avx512_##SUFFIX();) \
    if (nthreads < 1) nthreads = 1;                                                       \
    return most * nthreads + (nthreads - 1) * m * n;                                      \
}                                                                                         \
void fc_conv_weight_grad_##SUFFIX(const SCALAR_T *x, int64_t x_image_stride,              \
                                  const SCALAR_T *gout, int64_t gout_image_stride,        \
                                  int64_t batch, const fc_geometry *g, int64_t m,         \
                                  SCALAR_T *grad_w, int64_t ldw, SCALAR_T *ws, int nthreads) \
{                                                                                         \
    if (m <= 0 || batch <= 0 || g->channels <= 0 || fc_spatial_size(g->out) <= 0) return; \
    FC_DISPATCH(, conv_weight_grad_, SUFFIX, (x, x_image_stride, gout, gout_image_stride, \
                                              batch, g, m, grad_w, ldw, ws, nthreads))    \
}

FC_DEFINE_WEIGHT_GRAD(float, f32)
FC_DEFINE_WEIGHT_GRAD(double, f64)

#define FC_DEFINE_WINOGRAD(SCALAR_T, SUFFIX)                                              \
int64_t fc_conv_winograd_workspace_##SUFFIX(const fc_geometry *g, int64_t groups,         \
                                            int64_t c_out, int nthreads)                  \
{                                                                                         \
    int64_t most = wino_workspace_generic_##SUFFIX(g, groups, c_out, nthreads);           \
    FC_IF_X86(int64_t avx2 = wino_workspace_avx2_##SUFFIX(g, groups, c_out, nthreads);    \
              int64_t avx512 = wino_workspace_avx512_##SUFFIX(g, groups, c_out, nthreads); \
              if (avx2 > most) most = avx2;                                               \
              if (avx512 > most) most = avx512;)                                          \
    return most;                                                                          \
}                                                                                         \
void fc_conv_winograd_##SUFFIX(const SCALAR_T *x, int64_t batch, const fc_geometry *g,    \
                               int64_t groups, const SCALAR_T *w, const SCALAR_T *bias,   \
                               int64_t c_out, SCALAR_T *y, SCALAR_T *ws, int nthreads)    \
{                                                                                         \
    if (batch <= 0 || c_out <= 0 || g->channels <= 0 || fc_spatial_size(g->out) <= 0)     \
        return;                                                                           \
    FC_DISPATCH(, wino_forward_, SUFFIX, (x, batch, g, groups, w, bias, c_out, y, ws,     \
                                          nthreads))                                      \
}

FC_DEFINE_WINOGRAD(float, f32)
FC_DEFINE_WINOGRAD(double, f64)

#define FC_DEFINE_WINOGRAD_WEIGHT_GRAD(SCALAR_T, SUFFIX)                                  \
int64_t fc_conv_winograd_weight_grad_workspace_##SUFFIX(const fc_geometry *g, int64_t m,  \
                                                        int nthreads)                     \
{                                                                                         \
    int64_t most = wino_wg_workspace_generic_##SUFFIX(g, m, nthreads);                    \
    FC_IF_X86(int64_t avx2 = wino_wg_workspace_avx2_##SUFFIX(g, m, nthreads);             \
              int64_t avx512 = wino_wg_workspace_avx512_##SUFFIX(g, m, nthreads);         \
              if (avx2 > most) most = avx2;                                               \
              if (avx512 > most) most = avx512;)                                          \
    return most;                                                                          \
}                                                                                         \
void fc_conv_winograd_weight_grad_##SUFFIX(const SCALAR_T *x, int64_t x_image_stride,     \
                                           const SCALAR_T *gout, int64_t gout_image_stride, \
                                           int64_t batch, const fc_geometry *g, int64_t m, \
                                           SCALAR_T *grad_w, int64_t ldw, SCALAR_T *ws,   \
                                           int nthreads)                                  \
{                                                                                         \
    if (m <= 0 || batch <= 0 || g->channels <= 0 || fc_spatial_size(g->out) <= 0) return; \
    FC_DISPATCH(, wino_weight_grad_, SUFFIX, (x, x_image_stride, gout, gout_image_stride, \
                                              batch, g, m, grad_w, ldw, ws, nthreads))    \
}

FC_DEFINE_WINOGRAD_WEIGHT_GRAD(float, f32)
FC_DEFINE_WINOGRAD_WEIGHT_GRAD(double, f64)
