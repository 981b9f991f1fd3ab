/* Internal helpers shared by the kernel sources. */
#ifndef FASTCONV_COMMON_H
#define FASTCONV_COMMON_H

#include <stdint.h>
#include "fastconv.h"
#ifdef _OPENMP
#include <omp.h>
#endif

#define FC_CAT_(a, b) a##b
#define FC_CAT(a, b) FC_CAT_(a, b)

/* Work (in elements touched) below which a parallel region costs more than
 * it saves (waking sleeping OpenMP workers takes tens of microseconds); such
 * calls run on the calling thread.
 * (A kernel-side choice, not the plan's: docs/performance.md, "Decisions that stay in
 * the kernels".) */
#define FC_MIN_PARALLEL_WORK (1 << 18)

/* The x86 kernel tables (csrc/isa/avx2.c, avx512.c) are compiled with target
 * attributes where GCC/clang target x86-64; elsewhere only the generic one.
 * (-DFC_HAVE_X86_DISPATCH=0 builds the generic table alone anywhere: the C
 * test driver checks that build, as other architectures get it.) */
#ifndef FC_HAVE_X86_DISPATCH
#if defined(__GNUC__) && (defined(__x86_64__) || defined(_M_X64))
#define FC_HAVE_X86_DISPATCH 1
#else
#define FC_HAVE_X86_DISPATCH 0
#endif
#endif

/* This thread's number in the innermost parallel region (0 outside one, or
 * without OpenMP): the index of its per-thread scratch. */
static inline int fc_thread_num(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* For functions whose loops select between computed values (clamps, kinks,
 * masks): under the default -ftrapping-math GCC keeps such selects as
 * branches (an FP comparison or operation moved out of its branch could
 * raise a flag a program tests) and then vectorises nothing.  fastconv
 * never reads the FP flags, so these functions are compiled without that
 * guarantee: the results are the same, the loops vectorise. */
#if defined(__GNUC__) && !defined(__clang__)
#define FC_NOTRAP __attribute__((optimize("no-trapping-math")))
#else
#define FC_NOTRAP
#endif

/* The stop flag of a kernel call (fastconv.h, fc_set_poll): the calling
 * thread's, fetched by the kernel's entry with fc_stop_flag() (before any
 * parallel region: a worker's own flag is not the call's) and handed down to
 * its long loops.  Read with relaxed atomics: a hint checked every few
 * milliseconds of work, never in an inner loop. */
typedef int fc_stop;
fc_stop *fc_stop_flag(void);
void fc_stop_poll(fc_stop *stop);

static inline int fc_stop_is_set(const fc_stop *stop)
{
#if defined(__GNUC__)
    return __atomic_load_n(stop, __ATOMIC_RELAXED);
#else
    return *(const volatile fc_stop *)stop;
#endif
}

/* 1 when the call should stop: checked between planes, row blocks or GEMM
 * panels.  Thread 0 (the calling thread) runs the poll callback first. */
static inline int fc_stopping(fc_stop *stop)
{
    if (fc_thread_num() == 0) fc_stop_poll(stop);
    return fc_stop_is_set(stop);
}

/* Work (elements touched, or multiply-adds) between two polls of a loop over
 * many small items: about a millisecond, so the poll's cost (a clock read
 * on thread 0) is lost in the work and Ctrl-C still lands within a few ms. */
#define FC_STOP_WORK (1 << 20)

/* Poll every this many items of `work_per_item` each (fc_stopping_at). */
static inline int64_t fc_stop_period(int64_t work_per_item)
{
    return work_per_item >= FC_STOP_WORK ? 1 : FC_STOP_WORK / (work_per_item > 0 ? work_per_item : 1);
}

/* fc_stopping at item i of a loop polled every `period` items; between polls
 * only the flag is read (another thread's poll may have set it). */
static inline int fc_stopping_at(fc_stop *stop, int64_t i, int64_t period)
{
    return i % period == 0 ? fc_stopping(stop) : fc_stop_is_set(stop);
}

static inline int fc_threads_for(int nthreads, int64_t work)
{
    return (work < FC_MIN_PARALLEL_WORK || nthreads < 1) ? 1 : nthreads;
}

/* a * b, or INT64_MAX when that overflows (sizes only: a, b >= 0). */
static inline int64_t fc_mul_sat(int64_t a, int64_t b)
{
    return (b != 0 && a > INT64_MAX / b) ? INT64_MAX : a * b;
}

static inline int64_t fc_spatial_size(const int64_t *shape)
{
    return shape[0] * shape[1] * shape[2];
}

static inline int64_t fc_kernel_size(const fc_geometry *g)
{
    return g->kernel[0] * g->kernel[1] * g->kernel[2];
}

/* Kernel offsets (kd, kh, kw) of tap t, taps in row-major kernel order. */
static inline void fc_tap_offsets(const fc_geometry *g, int64_t t, int64_t *kd, int64_t *kh,
                                  int64_t *kw)
{
    *kd = t / (g->kernel[1] * g->kernel[2]);
    *kh = (t / g->kernel[2]) % g->kernel[1];
    *kw = t % g->kernel[2];
}

/* Range [lo, hi) of output positions o whose input position
 * o*stride - pad + offset lies inside [0, in): the valid run of a row. */
static inline void fc_valid_range(int64_t in, int64_t out, int64_t stride,
                                  int64_t start, int64_t *lo, int64_t *hi)
{
    /* start = offset - pad is the input position of output 0. */
    int64_t l = start >= 0 ? 0 : (-start + stride - 1) / stride;
    int64_t h = start >= in ? 0 : (in - start + stride - 1) / stride;
    if (h > out) h = out;
    if (l > h) l = h;
    *lo = l;
    *hi = h;
}

/* For each valid (input row, output row) pair of tap (kd, kh, kw), call BODY
 * with `in_row` (input row offset), `out_row` (output row offset), and the
 * valid output range [lo, hi) along W; input column = w0 + ow * sw. */
#define FC_FOR_TAP_ROWS(g, kd, kh, kw, BODY)                                           \
    do {                                                                               \
        const int64_t sw = (g)->stride[2];                                             \
        const int64_t w0 = (kw) * (g)->dilation[2] - (g)->pad[2];                      \
        int64_t lo, hi;                                                                \
        fc_valid_range((g)->in[2], (g)->out[2], sw, w0, &lo, &hi);                     \
        if (hi > lo) {                                                                 \
            for (int64_t od = 0; od < (g)->out[0]; ++od) {                             \
                const int64_t id = od * (g)->stride[0] - (g)->pad[0] + (kd) * (g)->dilation[0]; \
                if ((uint64_t)id >= (uint64_t)(g)->in[0]) continue;                    \
                for (int64_t oh = 0; oh < (g)->out[1]; ++oh) {                         \
                    const int64_t ih = oh * (g)->stride[1] - (g)->pad[1] + (kh) * (g)->dilation[1]; \
                    if ((uint64_t)ih >= (uint64_t)(g)->in[1]) continue;                \
                    const int64_t in_row = (id * (g)->in[1] + ih) * (g)->in[2];         \
                    const int64_t out_row = (od * (g)->out[1] + oh) * (g)->out[2];      \
                    BODY                                                               \
                }                                                                      \
            }                                                                          \
        }                                                                              \
    } while (0)

/* Widest packed-B panel of any micro-kernel (gemm_template.h checks its NRs). */
#define FC_MAX_PANEL 64

/* Where a GEMM's B operand comes from when it is not a matrix in memory
 * (implicit GEMM): pack() writes rows [pc, pc+kc) x columns [j0, j0+nc) of B
 * into `dst` as panels of nr columns (panel p holds row i's nr values at
 * dst[p*kc*nr + i*nr], zero past the last column).  Called inside the GEMM's
 * blocking loop, so each block is built just before use, hot in cache. */
typedef struct fc_b_source {
    void (*pack)(const struct fc_b_source *self, int64_t pc, int64_t kc, int64_t j0,
                 int64_t nc, int64_t nr, void *dst);
} fc_b_source;

/* How the GEMM and its micro-kernels write C (flags): add into it instead of
 * overwriting; and with non-temporal stores, which skip reading each line
 * into cache before writing it (half the memory traffic of an output that
 * will not be read again soon; used where C is aligned to the vector). */
#define FC_STORE_ADD 1
#define FC_STORE_STREAM 2

/* Where a GEMM writes C: element (i, j) at
 * c[i*ld + (j / block)*block_stride + j % block].  A plain matrix is one
 * block (fc_c_plain); an implicit GEMM of images side by side (column b*L + l)
 * writes block b, L columns, straight into image b of an (N, C_out, L)
 * output, block_stride = C_out*L apart, with no copy into place afterwards. */
typedef struct {
    int64_t ld, block, block_stride;
} fc_c_layout;

static inline fc_c_layout fc_c_plain(int64_t ld)
{
    fc_c_layout layout = {ld, INT64_MAX, 0};
    return layout;
}

#endif
