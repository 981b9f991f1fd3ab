/* Convolution forward as an implicit GEMM, for float and double.
 *
 * Each image is first rearranged into "phase planes": padded, and split by
 * stride (space-to-depth), so that for every kernel tap the inputs of one
 * output row are a contiguous run at a fixed offset.  The GEMM then packs its
 * B blocks straight from those planes (fc_b_source) with plain copies: no
 * column matrix is ever built, and no bounds test is left in the copy loop. */
#include <stdint.h>
#include <string.h>
#include "common.h"

/* Outputs from this size on are written with streaming stores (see
 * FC_STORE_STREAM): beyond the caches, so nobody reads them back soon. */
#ifndef FC_STREAM_MIN_BYTES
#define FC_STREAM_MIN_BYTES (4 << 20)
#endif

/* Layout of one image's phase planes.  Along each axis a, padded position e
 * (input position e - pad) lives in phase e % stride at index e / stride; a
 * plane spans q[a] indices, enough for every tap of every output.  Taps land
 * only on phases below the dilated kernel's reach, so a stride wider than
 * that keeps just those phases (the gaps between windows are never stored). */
typedef struct {
    int64_t q[FC_NDIM];
    int64_t phase[FC_NDIM];  /* phases kept along each axis */
    int64_t plane;           /* q[0] * q[1] * q[2] */
    int64_t phases;          /* phase[0] * phase[1] * phase[2] */
    int64_t image;           /* channels * phases * plane: elements per image */
} fc_phases;

/* The layout for g; image is INT64_MAX when it would not fit in an int64
 * (callers then fail the allocation before any kernel runs). */
static fc_phases fc_phase_layout(const fc_geometry *g)
{
    fc_phases p;
    p.plane = 1;
    p.phases = 1;
    for (int a = 0; a < FC_NDIM; ++a) {
        const int64_t reach = (g->kernel[a] - 1) * g->dilation[a] + 1;
        const int64_t extent = (g->out[a] - 1) * g->stride[a] + reach;
        p.q[a] = (extent + g->stride[a] - 1) / g->stride[a];
        p.phase[a] = g->stride[a] < reach ? g->stride[a] : reach;
        p.plane = fc_mul_sat(p.plane, p.q[a]);
        p.phases = fc_mul_sat(p.phases, p.phase[a]);
    }
    p.image = fc_mul_sat(fc_mul_sat(g->channels, p.phases), p.plane);
    return p;
}

/* Offset in a channel's phase planes of tap t's value for output (0, 0, 0). */
static int64_t fc_phase_tap_offset(const fc_geometry *g, const fc_phases *p, int64_t t)
{
    int64_t k[FC_NDIM], phase = 0, offset = 0;
    fc_tap_offsets(g, t, &k[0], &k[1], &k[2]);
    for (int a = 0; a < FC_NDIM; ++a) {
        const int64_t e = k[a] * g->dilation[a];
        phase = phase * p->phase[a] + e % g->stride[a];
        offset = offset * p->q[a] + e / g->stride[a];
    }
    return phase * p->plane + offset;
}

/* Offset in an image's phase planes of row r's first value (channel c, tap t
 * of B's rows, ordered as the weight's): output (0, 0, 0) of that tap. */
static void fc_phase_row_offsets(const fc_geometry *g, const fc_phases *p, int64_t *offsets)
{
    const int64_t taps = fc_kernel_size(g);
    for (int64_t r = 0; r < g->channels * taps; ++r)
        offsets[r] = (r / taps) * p->phases * p->plane + fc_phase_tap_offset(g, p, r % taps);
}

/* What the B packer needs: the chunk's phase planes and the output grid. */
typedef struct {
    fc_b_source base;          /* first: the GEMM sees only this */
    const void *planes;        /* phase planes of the chunk's images */
    const int64_t *offsets;    /* per B row, from fc_phase_row_offsets */
    fc_phases layout;
    int64_t out[FC_NDIM];
} fc_conv_source;

#define FC_TEMPLATE "conv_template.h"
#include "instantiate.h"
