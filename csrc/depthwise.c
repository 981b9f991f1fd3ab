/* Depthwise convolution for float and double: per-instruction-set plane
 * kernels (depthwise_simd_template.h), chosen at run time like the GEMM's
 * (fc_simd_active), under per-dtype drivers (depthwise_template.h). */
#include <string.h>
#include "common.h"

/* Most scratch one thread may stage a plane in: larger planes (huge 3-D
 * volumes, long 1-D signals) take the plain loops instead.  (The C test
 * driver also builds with 0 to test those loops everywhere.) */
#ifndef FC_DW_SCRATCH_BYTES
#define FC_DW_SCRATCH_BYTES ((int64_t)64 << 20)
#endif

/* How a thread stages the plane a kernel reads: zero-padded on every side so
 * that each tap of each row reads in bounds, `ext` rows along D and H of
 * `pitch` values, each row split into phases of `seg` values (see
 * dw_stage_input_).  Only in-bounds values are written, into a buffer zeroed
 * once, so the padding costs nothing per plane. */
typedef struct {
    int64_t ext[2], seg, pitch, size;
} fc_dw_stage;

/* The rows a SIMD kernel computes: rows[0] x rows[1] rows of n values, row
 * (a, b) based at a * step[0] + b * step[1] in the staged plane. */
typedef struct {
    int64_t rows[2], step[2], n;
} fc_dw_rows;

/* Forward and weight gradient stage the input: output row (od, oh) of tap
 * (kd, kh, kw) reads staged row (od*sd + kd*dd, oh*sh + kh*dh) (input row
 * minus the padding), column kw*dw + ow*sw.  Splitting each row into sw
 * phases (phase ph: padded columns ph, ph + sw, ...) makes that column
 * phase (kw*dw) % sw, offset (kw*dw) / sw + ow: contiguous in ow. */
static fc_dw_stage fc_dw_input_stage(const fc_geometry *g)
{
    fc_dw_stage s;
    for (int a = 0; a < 2; ++a)
        s.ext[a] = (g->out[a] - 1) * g->stride[a] + (g->kernel[a] - 1) * g->dilation[a] + 1;
    s.seg = g->out[2] + (g->kernel[2] - 1) * g->dilation[2] / g->stride[2];
    s.pitch = g->stride[2] * s.seg;
    s.size = s.ext[0] * s.ext[1] * s.pitch;
    return s;
}

static void fc_dw_input_taps(const fc_geometry *g, const fc_dw_stage *s, int64_t *off)
{
    for (int64_t t = 0; t < fc_kernel_size(g); ++t) {
        int64_t kd, kh, kw;
        fc_tap_offsets(g, t, &kd, &kh, &kw);
        const int64_t col = kw * g->dilation[2];
        off[t] = (kd * g->dilation[0] * s->ext[1] + kh * g->dilation[1]) * s->pitch
                 + col % g->stride[2] * s->seg + col / g->stride[2];
    }
}

static fc_dw_rows fc_dw_forward_rows(const fc_geometry *g, const fc_dw_stage *s)
{
    const fc_dw_rows r = {{g->out[0], g->out[1]},
                          {g->stride[0] * s->ext[1] * s->pitch, g->stride[1] * s->pitch},
                          g->out[2]};
    return r;
}

/* The input gradient (all strides 1) stages each output-gradient plane
 * shifted by the dilated kernel extent minus one, k' = (k-1)*dil, along each
 * axis; as a correlation with the flipped kernel, input row (id, ih) of tap
 * (kd, kh, kw) then reads staged row (id + pd + k'd - kd*dd, ih + ph + k'h -
 * kh*dh), column iw + pw + k'w - kw*dw.  Multiplier m's plane follows m-1's. */
static fc_dw_stage fc_dw_grad_stage(const fc_geometry *g)
{
    fc_dw_stage s;
    for (int a = 0; a < 2; ++a)
        s.ext[a] = g->in[a] + g->pad[a] + (g->kernel[a] - 1) * g->dilation[a];
    s.seg = s.pitch = g->in[2] + g->pad[2] + (g->kernel[2] - 1) * g->dilation[2];
    s.size = s.ext[0] * s.ext[1] * s.pitch;
    return s;
}

static void fc_dw_grad_taps(const fc_geometry *g, const fc_dw_stage *s, int64_t multiplier,
                            int64_t *off)
{
    const int64_t taps = fc_kernel_size(g);
    for (int64_t m = 0; m < multiplier; ++m)
        for (int64_t t = 0; t < taps; ++t) {
            int64_t k[3];
            fc_tap_offsets(g, t, &k[0], &k[1], &k[2]);
            int64_t at[3];  /* staged position of input position 0 */
            for (int a = 0; a < 3; ++a)
                at[a] = g->pad[a] + (g->kernel[a] - 1 - k[a]) * g->dilation[a];
            off[m * taps + t] = m * s->size + (at[0] * s->ext[1] + at[1]) * s->pitch + at[2];
        }
}

static fc_dw_rows fc_dw_grad_rows(const fc_geometry *g, const fc_dw_stage *s)
{
    const fc_dw_rows r = {{g->in[0], g->in[1]}, {s->ext[1] * s->pitch, s->pitch}, g->in[2]};
    return r;
}

/* Where a call's scratch goes (caller memory, reused across calls: kernels
 * never malloc, so a busy worker thread's heap cannot creep): the tap
 * offsets, then one staging region per thread (weight gradient: per run).
 * A kernel whose region would pass FC_DW_SCRATCH_BYTES stages nothing. */
typedef struct {
    int64_t offsets_bytes;      /* room for the largest offset table */
    int64_t forward, input, weight;  /* per-thread bytes of each kernel, 0: plain loops */
    int64_t per_thread_bytes;   /* the largest of those, whole cache lines */
} fc_dw_plan;

static int64_t fc_dw_lines(int64_t bytes) { return (bytes + 63) / 64 * 64; }

static int64_t fc_dw_fits(int64_t bytes) { return bytes <= FC_DW_SCRATCH_BYTES ? bytes : 0; }

static fc_dw_plan fc_dw_scratch_plan(const fc_geometry *g, int64_t multiplier, int64_t scalar)
{
    const int64_t taps = fc_kernel_size(g), row = g->channels * multiplier * taps;
    const int strided = g->stride[0] > 1 || g->stride[1] > 1 || g->stride[2] > 1;
    const fc_dw_stage in = fc_dw_input_stage(g), grad = fc_dw_grad_stage(g);
    fc_dw_plan p;
    p.offsets_bytes = fc_dw_lines(multiplier * taps * (int64_t)sizeof(int64_t));
    p.forward = fc_dw_fits(fc_dw_lines(in.size * scalar));
    /* Strided, the taps reaching an input row vary from row to row. */
    p.input = strided ? 0 : fc_dw_fits(fc_dw_lines(multiplier * grad.size * scalar));
    p.weight = fc_dw_fits(fc_dw_lines(row * (int64_t)sizeof(double) + in.size * scalar));
    p.per_thread_bytes = p.forward > p.input ? p.forward : p.input;
    if (p.weight > p.per_thread_bytes) p.per_thread_bytes = p.weight;
    return p;
}

/* Thread t's staging region of a call's scratch. */
static char *fc_dw_region(void *ws, const fc_dw_plan *p, int t)
{
    return (char *)ws + p->offsets_bytes + (int64_t)t * p->per_thread_bytes;
}

/* Integers as wide as each dtype, for lane masks. */
#define FC_DW_LANE_INT_f32 int32_t
#define FC_DW_LANE_INT_f64 int64_t

/* Portable kernels: 16-byte vectors, available everywhere GCC/clang run. */
#define ISA generic
#define TARGET
#define VBYTES 16
#define FC_TEMPLATE "depthwise_simd_template.h"
#include "instantiate.h"
#undef ISA
#undef TARGET
#undef VBYTES

#if FC_HAVE_X86_DISPATCH
#define ISA avx2
#define TARGET __attribute__((target("avx2,fma")))
#define VBYTES 32
#define FC_TEMPLATE "depthwise_simd_template.h"
#include "instantiate.h"
#undef ISA
#undef TARGET
#undef VBYTES

#define ISA avx512
#define TARGET __attribute__((target("avx512f,avx2,fma")))
#define VBYTES 64
#define FC_TEMPLATE "depthwise_simd_template.h"
#include "instantiate.h"
#undef ISA
#undef TARGET
#undef VBYTES
#endif

#define FC_TEMPLATE "depthwise_template.h"
#include "instantiate.h"
