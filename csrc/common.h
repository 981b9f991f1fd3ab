/* Internal helpers shared by the kernel sources. */
#ifndef FASTCONV_COMMON_H
#define FASTCONV_COMMON_H

#include <stdint.h>
#include "fastconv.h"

#define FC_CAT_(a, b) a##b
#define FC_CAT(a, b) FC_CAT_(a, b)

/* Work (in elements touched) below which a parallel region costs more than
 * it saves; such calls run on the calling thread. */
#define FC_MIN_PARALLEL_WORK 32768

/* Columns per block when interleaving rows (a transpose): a block of up to
 * 64 rows x 64 columns stays in L1. */
#define FC_TRANSPOSE_BLOCK 64

static inline int fc_threads_for(int nthreads, int64_t work)
{
    return (work < FC_MIN_PARALLEL_WORK || nthreads < 1) ? 1 : nthreads;
}

static inline int64_t fc_spatial_size(const int64_t *shape)
{
    return shape[0] * shape[1] * shape[2];
}

static inline int64_t fc_kernel_size(const fc_geometry *g)
{
    return g->kernel[0] * g->kernel[1] * g->kernel[2];
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

#endif
