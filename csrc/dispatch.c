/* The one instruction-set switch: which table of kernels (csrc/isa/) runs,
 * and the exported functions of fastconv.h, each calling its entry in that
 * table for its dtype.
 *
 * Every table is compiled into the same object (per-function target
 * attributes), so the default build runs on any x86-64 CPU and still uses
 * AVX2 or AVX-512 where present.  Other compilers and architectures get the
 * generic table only (plain C vectors the compiler maps to whatever SIMD it
 * has). */
#include "dispatch.h"

/* -1: not chosen yet (pick the best the CPU has on first use). */
static int fc_simd = -1;

/* Kernel calls per level (fc_simd_calls); relaxed atomics: a count, not a
 * synchronisation. */
static int64_t fc_calls[FC_SIMD_LEVELS];

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

/* 1 when the kernels of `level` are compiled into this build (whether or not
 * this CPU can run them). */
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

int64_t fc_simd_calls(int level)
{
    if (level < 0 || level >= FC_SIMD_LEVELS) return 0;
#if defined(__GNUC__)
    return __atomic_load_n(&fc_calls[level], __ATOMIC_RELAXED);
#else
    return fc_calls[level];
#endif
}

/* The table of a compiled level. */
static const fc_isa_kernels *fc_level_kernels(int level)
{
    switch (level) {
#if FC_HAVE_X86_DISPATCH
    case FC_SIMD_AVX512: return &fc_kernels_avx512;
    case FC_SIMD_AVX2: return &fc_kernels_avx2;
#endif
    default: return &fc_kernels_generic;
    }
}

/* The active level's table, counting the call against the level that
 * compiled the table (what fc_simd_calls reports). */
static const fc_isa_kernels *fc_active_kernels(void)
{
    const fc_isa_kernels *kernels = fc_level_kernels(fc_simd_active());
#if defined(__GNUC__)
    __atomic_fetch_add(&fc_calls[kernels->level], 1, __ATOMIC_RELAXED);
#endif
    return kernels;
}

static int fc_dtype_index(fc_dtype dtype)
{
    return dtype == FC_FLOAT64 ? FC_FLOAT64 : FC_FLOAT32;
}

/* The active level's kernels for dtype (FC_FLOAT32 for anything else: the
 * callers pass an fc_dtype). */
static const fc_dtype_kernels *fc_kernels_for(fc_dtype dtype)
{
    return &fc_active_kernels()->dtype[fc_dtype_index(dtype)];
}

/* The exported functions of kernels.def: each calls its entry in the active
 * table for its dtype.  FC_RETURN_<type> is `return` for a result and nothing
 * for void (C99 allows no `return f();` in a void function). */
#define FC_RETURN_void
#define FC_RETURN_int return
#define FC_RETURN_double return
#define FC_KERNEL(ret, exported, entry, params, args)                                 \
    ret exported FC_WITH_DTYPE params                                               \
    {                                                                               \
        FC_RETURN_##ret fc_kernels_for(dtype)->entry args;                          \
    }

/* Workspace sizes: the most any level this CPU can run needs, so a buffer
 * sized once serves whichever level runs the call (fc_simd_select may switch
 * in between); -1 when the kernel does not compute the geometry (every level
 * agrees). */
#define FC_WORKSPACE(exported, entry, params, args)                                   \
    int64_t exported FC_WITH_DTYPE params                                           \
    {                                                                               \
        int64_t most = -1;                                                          \
        for (int level = 0; level < FC_SIMD_LEVELS; ++level) {                      \
            if (!fc_simd_supported(level)) continue;                                \
            const int64_t need = fc_level_kernels(level)->dtype[fc_dtype_index(dtype)].entry args; \
            if (need > most) most = need;                                           \
        }                                                                           \
        return most;                                                                \
    }

/* (a, b) -> (fc_dtype dtype, a, b): the exported functions take the dtype
 * first. */
#define FC_WITH_DTYPE(...) (fc_dtype dtype, __VA_ARGS__)

/* ------------------------------------------------------- exported functions */

#include "kernels.def"

#undef FC_RETURN_void
#undef FC_RETURN_int
#undef FC_RETURN_double
#undef FC_WITH_DTYPE

/* Not per dtype: the active level's copy. */
int64_t fc_pool_find_bad_index(const int64_t *indices, int64_t n, int64_t limit,
                               int nthreads)
{
    return fc_active_kernels()->pool_find_bad_index(indices, n, limit, nthreads);
}
