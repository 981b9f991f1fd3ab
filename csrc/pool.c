/* Pooling kernels for float and double, from one template (pool_template.h),
 * plus the dtype-free helpers they share. */
#include <math.h>
#include <string.h>
#include "common.h"

/* Planes up to this many elements take the vectorised max-pool rows, which
 * keep indices as int32; larger ones the scalar int64 rows.  Tests build
 * once with -DFC_POOL_INT32_PLANE=0 to exercise the scalar rows too. */
#ifndef FC_POOL_INT32_PLANE
#define FC_POOL_INT32_PLANE INT32_MAX
#endif
/* The fused max-pool loops are compute-bound (a compare, a NaN test and
 * two selects per tap), so they are also compiled for AVX2 (8 lanes, one-
 * instruction blends) and picked at load time on CPUs that have it: GCC and
 * Clang function multi-versioning (ifunc: x86-64 ELF with glibc).  Measured
 * 1.5x on 3x3/2 max pooling; build with -DFC_NO_CLONES to switch it off. */
#if defined(__x86_64__) && defined(__ELF__) && defined(__GLIBC__) && \
    !defined(FC_NO_CLONES) && \
    ((defined(__clang__) && __clang_major__ >= 14) || \
     (!defined(__clang__) && defined(__GNUC__) && __GNUC__ >= 6))
#define FC_VEC_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define FC_VEC_CLONES
#endif

/* Fused max-pool rows: outputs per chunk, whole blocks per vector loop
 * (a multiple of every vector width), largest KH and KW fused (S <= 2). */
#define FC_POOL_FUSED_CHUNK 256
#define FC_POOL_BLOCK 16
#define FC_POOL_FUSED_KMAX 3

/* Widest kernel (along W) the vectorised max-pool rows handle. */
#define FC_POOL_VEC_KW 64

/* Taps [k0, k1) of a k-tap window with dilation `dil` starting at input
 * position `start` that land inside [0, in). */
static inline void fc_pool_taps(int64_t start, int64_t k, int64_t dil, int64_t in,
                                int64_t *k0, int64_t *k1)
{
    /* divisions only for windows that cross an edge */
    int64_t lo = start >= 0 ? 0 : (-start + dil - 1) / dil;
    int64_t hi = start + (k - 1) * dil < in ? k
                 : start >= in ? 0 : (in - start + dil - 1) / dil;
    if (hi > k) hi = k;
    if (lo > hi) lo = hi;
    *k0 = lo;
    *k1 = hi;
}

/* Windows tile the input: kernel == stride, no padding, no dilation, and no
 * ceil-mode window hanging past the input, on every axis.  Then every input
 * element lies in at most one window and no tap needs a bounds check. */
static int fc_pool_is_tiled(const fc_geometry *g)
{
    for (int i = 0; i < FC_NDIM; ++i) {
        if (g->kernel[i] != g->stride[i] || g->pad[i] != 0 || g->dilation[i] != 1 ||
            g->out[i] * g->kernel[i] > g->in[i])
            return 0;
    }
    return 1;
}

/* Average-pool window of output o along one axis: taps [lo, hi) inside the
 * input, and the tap count the divisor uses.  With count_include_pad the
 * window is clipped to [-pad, in + pad): padding counts, the ceil-mode
 * overhang past the right padding does not (pitfall 5); otherwise only
 * in-bounds taps count. */
static inline int64_t fc_avg_extent(int64_t o, int64_t in, int64_t k, int64_t s,
                                    int64_t pad, int include_pad,
                                    int64_t *lo, int64_t *hi)
{
    const int64_t start = o * s - pad;
    int64_t end = start + k;
    if (end > in + pad) end = in + pad;
    *lo = start < 0 ? 0 : start;
    *hi = end > in ? in : end;
    return include_pad ? end - start : *hi - *lo;
}

int64_t fc_pool_find_bad_index(const int64_t *indices, int64_t n, int64_t limit,
                               int nthreads)
{
    /* One vectorisable OR-reduction pass; the slow search for the position
     * only runs when something is wrong.  The unsigned compare rejects
     * negative values too. */
    int bad = 0;
    const int nt = fc_threads_for(nthreads, n);
    (void)nt;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt) reduction(|:bad)
#endif
    for (int64_t i = 0; i < n; ++i) bad |= (uint64_t)indices[i] >= (uint64_t)limit;
    if (!bad) return -1;
    for (int64_t i = 0; i < n; ++i)
        if ((uint64_t)indices[i] >= (uint64_t)limit) return i;
    return -1;
}

#define FC_TEMPLATE "pool_template.h"
#include "instantiate.h"
