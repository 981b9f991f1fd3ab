/* What the kernels were built with, for show_config(). */
#include "fastconv.h"
#ifdef _OPENMP
#include <omp.h>
#endif

int fc_openmp_enabled(void)
{
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

int fc_openmp_max_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

#ifndef FC_BUILD_FLAGS
#define FC_BUILD_FLAGS "unknown"
#endif

const char *fc_build_flags(void)
{
    return FC_BUILD_FLAGS;
}

const char *fc_compiler(void)
{
#if defined(__clang__)
    return "clang " __clang_version__;
#elif defined(__GNUC__)
    return "gcc " __VERSION__;
#elif defined(_MSC_VER)
    return "msvc";
#else
    return "unknown";
#endif
}

/* One entry per instruction-set macro worth reporting; a new SIMD level adds
 * one line here. */
const char *fc_target_isa(void)
{
    return ""
#if defined(__x86_64__) || defined(_M_X64)
        "x86-64"
#elif defined(__aarch64__)
        "aarch64"
#else
        "other-arch"
#endif
#ifdef __SSE2__
        " sse2"
#endif
#ifdef __SSE4_2__
        " sse4.2"
#endif
#ifdef __AVX__
        " avx"
#endif
#ifdef __AVX2__
        " avx2"
#endif
#ifdef __FMA__
        " fma"
#endif
#ifdef __AVX512F__
        " avx512f"
#endif
#ifdef __ARM_NEON
        " neon"
#endif
#ifdef __ARM_FEATURE_SVE
        " sve"
#endif
        ;
}
