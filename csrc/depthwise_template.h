/* Depthwise and grouped convolution with few channels per group
 * (`group_channels` input channels per group, 1 for depthwise, and
 * `multiplier` output channels each), forward and backward, for one scalar
 * type and instruction set.  Included by isa_template.h once per dtype.
 *
 * As a GEMM, each group is a multiplier x (group_channels * taps) by
 * (group_channels * taps) x L product: too thin for any GEMM to run well (a
 * micro-tile row or less, a short K).  Direct loops instead, one group at a
 * time: a thread stages the group_channels planes it reads in its own
 * zero-padded scratch (fc_dw_stage) so that every tap of every row of every
 * plane is one contiguous in-bounds run, then the SIMD kernels apply all
 * taps of all the group's planes to an output row in one pass (the group's
 * planes are just more taps, at offsets one staged plane apart).  The plain
 * loops at the top (one pass per tap, bounds split per row) serve planes
 * too large to stage. */

#ifndef FC_DEPTHWISE_SHARED
#define FC_DEPTHWISE_SHARED
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

/* Offsets of tap t of staged plane ci (group_channels planes staged one
 * after the other), at off[ci * taps + t]: the weight's (ci, t) order. */
static void fc_dw_input_taps(const fc_geometry *g, const fc_dw_stage *s, int64_t group_channels,
                             int64_t *off)
{
    const int64_t taps = fc_kernel_size(g);
    for (int64_t t = 0; t < taps; ++t) {
        int64_t kd, kh, kw;
        fc_tap_offsets(g, t, &kd, &kh, &kw);
        const int64_t col = kw * g->dilation[2];
        off[t] = (kd * g->dilation[0] * s->ext[1] + kh * g->dilation[1]) * s->pitch
                 + col % g->stride[2] * s->seg + col / g->stride[2];
    }
    for (int64_t ci = 1; ci < group_channels; ++ci)
        for (int64_t t = 0; t < taps; ++t) off[ci * taps + t] = ci * s->size + off[t];
}

static fc_dw_rows fc_dw_forward_rows(const fc_geometry *g, const fc_dw_stage *s)
{
    const fc_dw_rows r = {{g->out[0], g->out[1]},
                          {g->stride[0] * s->ext[1] * s->pitch, g->stride[1] * s->pitch},
                          g->out[2]};
    return r;
}

/* The input gradient stages each output-gradient plane upsampled by the
 * stride (value (od, oh, ow) at (od*sd, oh*sh, ow*sw), zeros between) and
 * shifted by the dilated kernel extent minus one, k' = (k-1)*dil, along each
 * axis; as a stride-1 correlation with the flipped kernel, input row (id, ih)
 * of tap (kd, kh, kw) then reads staged row (id + pd + k'd - kd*dd, ih + ph +
 * k'h - kh*dh), column iw + pw + k'w - kw*dw.  Strided, most taps multiply
 * those zeros, but every row is whole vectors instead of a scatter per tap
 * with the stride (the plain loops).  Multiplier m's plane follows m-1's. */
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

/* Output planes dw_row_block_ computes at once (see there). */
#define FC_DW_BLOCK 4

/* Rows narrower than a vector (8x8 maps on AVX-512 floats) would run
 * dw_row_'s scalar loop.  Instead the rows of one D slice go as ONE wide
 * row of (rows[1] - 1) * step[1] + n values at the staged plane's step:
 * the values between the rows (the staged padding, other phases) are
 * computed too and dropped (forward, input gradient: a thread's wide
 * output, copied into place) or multiplied by zeros (weight gradient: the
 * output gradient staged at that step, zeros between).  Length of that row
 * when the rows may be narrower than some table's vector (64 bytes), else 0:
 * no wide scratch. */
static int64_t fc_dw_wide_len(const fc_dw_rows *r, int64_t scalar)
{
    if (r->n * scalar >= 64 || r->rows[1] < 2) return 0;
    return (r->rows[1] - 1) * r->step[1] + r->n;
}

/* Passes of depthwise convs (one input channel per group, one output each)
 * whose rows (output rows forward and weight gradient, input rows for the
 * input gradient) are narrower than FC_DW_LANES_MAX_VECTORS vectors run with
 * channels in the lanes instead: each vector holds one pixel of `lanes`
 * consecutive channels, so every multiply-add is whole vectors however
 * narrow the map and whatever the stride, where the row kernels compute a
 * short row's vectors several times (dw_row_'s four sums on one vector),
 * waste most of a wide row (fc_dw_wide_len) or sum a tap's products across
 * lanes per plane (the weight gradient).  The price is a transpose of each
 * block of planes in and out, paid inside the pass.  At least half the
 * lanes must hold channels.  (A loop order of the depthwise algorithm chosen
 * from the table's lane count, as the blocks below: docs/performance.md,
 * "Decisions that stay in the kernels".) */
#ifndef FC_DW_LANES_MAX_VECTORS
#define FC_DW_LANES_MAX_VECTORS 4
#endif

static int fc_dw_lanes_use(const fc_geometry *g, int64_t multiplier, int64_t group_channels,
                           int64_t lanes, int64_t row)
{
    return multiplier == 1 && group_channels == 1 && 2 * g->channels >= lanes
           && row < FC_DW_LANES_MAX_VECTORS * lanes;
}

/* The forward's and weight gradient's staging with channels in the lanes:
 * as fc_dw_input_stage but rows unsplit (seg = pitch, in pixels): output
 * column ow of tap kw reads staged column ow*sw + kw*dw. */
static fc_dw_stage fc_dw_lanes_stage(const fc_geometry *g)
{
    fc_dw_stage s = fc_dw_input_stage(g);
    s.seg = s.pitch = (g->out[2] - 1) * g->stride[2] + (g->kernel[2] - 1) * g->dilation[2] + 1;
    s.size = s.ext[0] * s.ext[1] * s.pitch;
    return s;
}

static void fc_dw_lanes_taps(const fc_geometry *g, const fc_dw_stage *s, int64_t *off)
{
    for (int64_t t = 0; t < fc_kernel_size(g); ++t) {
        int64_t kd, kh, kw;
        fc_tap_offsets(g, t, &kd, &kh, &kw);
        off[t] = (kd * g->dilation[0] * s->ext[1] + kh * g->dilation[1]) * s->pitch
                 + kw * g->dilation[2];
    }
}

/* Where a call's scratch goes (caller memory, reused across calls: kernels
 * never malloc, so a busy worker thread's heap cannot creep): the tap
 * offsets and the input gradient's regrouped weights (shared), then one
 * staging region per thread (weight gradient: per run).
 * A kernel whose region would pass FC_DW_SCRATCH_BYTES stages nothing.
 * (A kernel-side choice, not the plan's: docs/performance.md, "Decisions that stay in
 * the kernels".) */
typedef struct {
    int64_t offsets_bytes;      /* room for the largest offset table */
    int64_t weights_bytes;      /* room for the input gradient's regrouped weights */
    int64_t forward, input, weight;  /* per-thread bytes of each kernel, 0: plain loops */
    int64_t forward_wide, input_wide, weight_wide;  /* their wide rows' lengths, 0: none */
    int64_t per_thread_bytes;   /* the largest of those, whole cache lines */
    int lanes, input_lanes;     /* channels in the lanes (fc_dw_lanes_use): forward and
                                   weight gradient, input gradient */
} fc_dw_plan;

static int64_t fc_dw_lines(int64_t bytes) { return (bytes + 63) / 64 * 64; }

static int64_t fc_dw_fits(int64_t bytes) { return bytes <= FC_DW_SCRATCH_BYTES ? bytes : 0; }

/* A thread's region with channels in the lanes, in vectors: the taps'
 * weight vectors, the staged block of planes, the block's other side (the
 * output, or the weight gradient's output-gradient block). */
static int64_t fc_dw_lanes_vectors(const fc_geometry *g, const fc_dw_stage *s, int64_t other)
{
    return fc_kernel_size(g) + s->size + other;
}

static fc_dw_plan fc_dw_scratch_plan(const fc_geometry *g, int64_t multiplier,
                                     int64_t group_channels, int64_t scalar, int64_t lanes)
{
    /* row: the whole weight (C_out x group_channels x taps). */
    const int64_t taps = fc_kernel_size(g), row = g->channels * multiplier * taps;
    const fc_dw_stage in = fc_dw_input_stage(g), grad = fc_dw_grad_stage(g);
    const fc_dw_rows in_rows = fc_dw_forward_rows(g, &in), grad_rows = fc_dw_grad_rows(g, &grad);
    const int64_t most_planes = multiplier > group_channels ? multiplier : group_channels;
    fc_dw_plan p;
    p.offsets_bytes = fc_dw_lines(most_planes * taps * (int64_t)sizeof(int64_t));
    p.weights_bytes = fc_dw_lines(row * scalar);
    /* Forward and input gradient: a wide output row per plane of a block;
     * weight gradient: a gradient plane staged wide, a wide row per D slice. */
    p.forward_wide = fc_dw_wide_len(&in_rows, scalar);
    p.input_wide = fc_dw_wide_len(&grad_rows, scalar);
    p.weight_wide = p.forward_wide;
    p.forward = fc_dw_fits(fc_dw_lines((group_channels * in.size
                                        + FC_DW_BLOCK * p.forward_wide) * scalar));
    p.input = fc_dw_fits(fc_dw_lines((multiplier * grad.size
                                      + FC_DW_BLOCK * p.input_wide) * scalar));
    p.weight = fc_dw_fits(fc_dw_lines(row * (int64_t)sizeof(double)
                                      + (group_channels * in.size
                                         + in_rows.rows[0] * p.weight_wide) * scalar));
    const int64_t vec = lanes * scalar;
    p.lanes = fc_dw_lanes_use(g, multiplier, group_channels, lanes, g->out[2]);
    if (p.lanes) {
        const fc_dw_stage ls = fc_dw_lanes_stage(g);
        const int64_t po = fc_spatial_size(g->out);
        p.forward_wide = p.weight_wide = 0;
        p.forward = fc_dw_fits(fc_dw_lines(fc_dw_lanes_vectors(g, &ls, po) * vec));
        p.weight = fc_dw_fits(fc_dw_lines(row * (int64_t)sizeof(double)
                                          + fc_dw_lanes_vectors(g, &ls, po) * vec));
    }
    p.input_lanes = fc_dw_lanes_use(g, multiplier, group_channels, lanes, g->in[2]);
    if (p.input_lanes) {
        p.input_wide = 0;
        p.input = fc_dw_fits(fc_dw_lines(fc_dw_lanes_vectors(g, &grad, fc_spatial_size(g->in))
                                         * vec));
    }
    p.per_thread_bytes = p.forward > p.input ? p.forward : p.input;
    if (p.weight > p.per_thread_bytes) p.per_thread_bytes = p.weight;
    return p;
}

/* Thread t's staging region of a call's scratch. */
static char *fc_dw_region(void *ws, const fc_dw_plan *p, int t)
{
    return (char *)ws + p->offsets_bytes + p->weights_bytes + (int64_t)t * p->per_thread_bytes;
}

/* Integers as wide as each dtype, for lane masks. */
#define FC_DW_LANE_INT_f32 int32_t
#define FC_DW_LANE_INT_f64 int64_t
#endif


/* ------------------------------------------------------ SIMD row kernels
 * The inner loops, on one plane already staged in a thread's scratch, with
 * the instruction set's TARGET and VBYTES (see gemm_template.h).
 *
 * Staging pads the plane with zeros on every side, so tap t of every output
 * row reads the run starting `off[t]` past the row's base: no bounds checks,
 * and each loop is unaligned vector loads and multiply-adds.  Rows end with
 * one vector overlapping the one before rather than a scalar tail (typical
 * depthwise rows are short: 56 wide, 3.5 AVX-512 vectors of floats). */


typedef SCALAR FC_FN(dw_vec_) __attribute__((vector_size(VBYTES)));
/* Same vector, alignment of one scalar: rows start anywhere. */
typedef SCALAR FC_FN(dw_uvec_) __attribute__((vector_size(VBYTES), aligned(sizeof(SCALAR))));
/* Integer lanes as wide as SCALAR: a mask ANDed in one instruction. */
typedef FC_CAT(FC_DW_LANE_INT_, SFX) FC_FN(dw_mask_) __attribute__((vector_size(VBYTES)));

#define DS_LOAD(p) (*(const FC_FN(dw_uvec_) *)(p))
#define DS_STORE(p, v) (*(FC_FN(dw_uvec_) *)(p) = (v))

/* out[i] = sum_t wt[t] * src[off[t] + i], i in [0, n): all taps of one output
 * row at once, so each output vector is stored once while the few input rows
 * it reads stay in L1.  Four vectors at a time (independent sums hide the
 * multiply-add latency); the last ones start at n - L instead of running
 * past the row, recomputing shared elements to the same values. */
static inline TARGET void FC_FN(dw_row_)(SCALAR *restrict out, int64_t n, const SCALAR *src,
                                         const int64_t *restrict off, int64_t ntaps,
                                         const SCALAR *restrict wt)
{
    typedef FC_FN(dw_vec_) vec;
    const int64_t L = FC_LANES, last = n - L;
    if (n < L) {  /* rows narrower than a vector */
        for (int64_t i = 0; i < n; ++i) {
            SCALAR s = 0;
            for (int64_t t = 0; t < ntaps; ++t) s += wt[t] * src[off[t] + i];
            out[i] = s;
        }
        return;
    }
    for (int64_t i = 0; i < n; i += 4 * L) {
#define DS_CLAMP(j) ((j) < last ? (j) : last)
        const int64_t i0 = DS_CLAMP(i), i1 = DS_CLAMP(i + L), i2 = DS_CLAMP(i + 2 * L);
        const int64_t i3 = DS_CLAMP(i + 3 * L);
#undef DS_CLAMP
        vec a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
        for (int64_t t = 0; t < ntaps; ++t) {
            const SCALAR *s = src + off[t];
            const SCALAR w = wt[t];
            a0 += w * DS_LOAD(s + i0);
            a1 += w * DS_LOAD(s + i1);
            a2 += w * DS_LOAD(s + i2);
            a3 += w * DS_LOAD(s + i3);
        }
        DS_STORE(out + i0, a0);
        DS_STORE(out + i1, a1);
        DS_STORE(out + i2, a2);
        DS_STORE(out + i3, a3);
    }
}

/* Rows of FC_DW_BLOCK planes at once: out[j * out_stride + i] = sum_t
 * wt[j * w_stride + t] * src[off[t] + i], j < FC_DW_BLOCK (a grouped conv's
 * output channels of one group, which read the same staged planes).  Each
 * input vector loaded serves FC_DW_BLOCK multiply-adds, where dw_row_ loads
 * one per multiply-add; two vectors along the row (eight sums) hide the
 * latency, and the second starts at n - L rather than running past the row
 * (short rows are typical: 28 wide, under two AVX-512 vectors of floats). */
static inline TARGET void FC_FN(dw_row_block_)(SCALAR *restrict out, int64_t out_stride,
                                               int64_t n, const SCALAR *src,
                                               const int64_t *restrict off, int64_t ntaps,
                                               const SCALAR *restrict wt, int64_t w_stride)
{
    typedef FC_FN(dw_vec_) vec;
    const int64_t L = FC_LANES, last = n - L;
    for (int64_t i = 0; i < n; i += 2 * L) {
        const int64_t i0 = i < last ? i : last, i1 = i + L < last ? i + L : last;
        vec a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, b0 = {0}, b1 = {0}, b2 = {0}, b3 = {0};
        for (int64_t t = 0; t < ntaps; ++t) {
            const SCALAR *s = src + off[t];
            const vec x0 = DS_LOAD(s + i0), x1 = DS_LOAD(s + i1);
            const SCALAR w0 = wt[t], w1 = wt[w_stride + t], w2 = wt[2 * w_stride + t];
            const SCALAR w3 = wt[3 * w_stride + t];
            a0 += w0 * x0; b0 += w0 * x1;
            a1 += w1 * x0; b1 += w1 * x1;
            a2 += w2 * x0; b2 += w2 * x1;
            a3 += w3 * x0; b3 += w3 * x1;
        }
        DS_STORE(out + i0, a0); DS_STORE(out + i1, b0);
        DS_STORE(out + out_stride + i0, a1); DS_STORE(out + out_stride + i1, b1);
        DS_STORE(out + 2 * out_stride + i0, a2); DS_STORE(out + 2 * out_stride + i1, b2);
        DS_STORE(out + 3 * out_stride + i0, a3); DS_STORE(out + 3 * out_stride + i1, b3);
    }
}

/* `planes` output planes (out_stride apart, their weights w_stride apart in
 * w) of rows (rows_d x rows_h, each n long, contiguous in each plane), row
 * (a, b) computed from src + a * step_d + b * step_h: the forward pass on a
 * staged input, the input gradient on staged output gradients.  Blocks of
 * FC_DW_BLOCK planes share each row's loads; the rest (and rows narrower
 * than a vector) go one plane at a time.  With `wide` (room for FC_DW_BLOCK
 * rows of fc_dw_wide_len values), rows narrower than a vector go as one wide
 * row per D slice (see fc_dw_wide_len), copied into place. */
static TARGET void FC_FN(dw_rows_)(const SCALAR *src, const fc_dw_rows *r, const int64_t *off,
                                   int64_t ntaps, const SCALAR *w, int64_t w_stride,
                                   int64_t planes, SCALAR *out, int64_t out_stride,
                                   SCALAR *wide)
{
    if (wide && r->n < FC_LANES && r->rows[1] > 1) {
        const int64_t n = r->n, rows = r->rows[1], len = (rows - 1) * r->step[1] + n;
        const fc_dw_rows one = {{1, 1}, {0, 0}, len};
        for (int64_t a = 0; a < r->rows[0]; ++a)
            for (int64_t j = 0; j < planes; j += FC_DW_BLOCK) {
                const int64_t block = planes - j < FC_DW_BLOCK ? planes - j : FC_DW_BLOCK;
                FC_FN(dw_rows_)(src + a * r->step[0], &one, off, ntaps, w + j * w_stride,
                                w_stride, block, wide, len, NULL);
                for (int64_t u = 0; u < block; ++u)
                    for (int64_t b = 0; b < rows; ++b)
                        memcpy(out + (j + u) * out_stride + (a * rows + b) * n,
                               wide + u * len + b * r->step[1], (size_t)n * sizeof(SCALAR));
            }
        return;
    }
    const int64_t blocked = r->n >= FC_LANES ? planes / FC_DW_BLOCK * FC_DW_BLOCK : 0;
    for (int64_t a = 0; a < r->rows[0]; ++a)
        for (int64_t b = 0; b < r->rows[1]; ++b) {
            const SCALAR *row = src + a * r->step[0] + b * r->step[1];
            SCALAR *dst = out + (a * r->rows[1] + b) * r->n;
            int64_t j = 0;
            for (; j < blocked; j += FC_DW_BLOCK)
                FC_FN(dw_row_block_)(dst + j * out_stride, out_stride, r->n, row, off, ntaps,
                                     w + j * w_stride, w_stride);
            for (; j < planes; ++j)
                FC_FN(dw_row_)(dst + j * out_stride, r->n, row, off, ntaps, w + j * w_stride);
        }
}

/* s0..s3 += a[i] * b[i] lane-wise, i in [0, n), n >= L: whole vectors
 * round-robin, then one vector ending at n, `keep` zeroing its lanes already
 * summed.  Four sums the caller carries across rows: independent chains. */
static inline TARGET void FC_FN(dw_dot_)(const SCALAR *restrict a, const SCALAR *restrict b,
                                         int64_t n, FC_FN(dw_mask_) keep, FC_FN(dw_vec_) *s0,
                                         FC_FN(dw_vec_) *s1, FC_FN(dw_vec_) *s2,
                                         FC_FN(dw_vec_) *s3)
{
    typedef FC_FN(dw_vec_) vec;
    typedef FC_FN(dw_mask_) mask;
    const int64_t L = FC_LANES;
    int64_t i = 0;
    for (; i + 4 * L <= n; i += 4 * L) {
        *s0 += DS_LOAD(a + i) * DS_LOAD(b + i);
        *s1 += DS_LOAD(a + i + L) * DS_LOAD(b + i + L);
        *s2 += DS_LOAD(a + i + 2 * L) * DS_LOAD(b + i + 2 * L);
        *s3 += DS_LOAD(a + i + 3 * L) * DS_LOAD(b + i + 3 * L);
    }
    if (i + L <= n) { *s0 += DS_LOAD(a + i) * DS_LOAD(b + i); i += L; }
    if (i + L <= n) { *s1 += DS_LOAD(a + i) * DS_LOAD(b + i); i += L; }
    if (i + L <= n) { *s2 += DS_LOAD(a + i) * DS_LOAD(b + i); i += L; }
    if (i < n) *s3 += (vec)((mask)DS_LOAD(a + n - L) & keep) * DS_LOAD(b + n - L);
}

/* gw[t] += sum over the output plane gy (rows as r describes) of gy times
 * the staged input under tap t.  One tap at a time over the whole plane:
 * both planes stay in L1 and the four sums in registers. */
static TARGET void FC_FN(dw_weight_plane_)(const SCALAR *xs, const fc_dw_rows *r,
                                           const int64_t *off, int64_t ntaps, const SCALAR *gy,
                                           double *gw)
{
    typedef FC_FN(dw_vec_) vec;
    typedef FC_FN(dw_mask_) mask;
    const int64_t L = FC_LANES, n = r->n;
    /* Lanes of the overlapping last vector not yet summed: the top n % L. */
    mask keep = {0};   /* every lane set below (GCC cannot tell) */
    for (int64_t l = 0; l < L; ++l) keep[l] = l >= L - n % L ? -1 : 0;
    for (int64_t t = 0; t < ntaps; ++t) {
        /* Two rows at a time into separate sums: eight independent chains. */
        vec s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0}, u0 = {0}, u1 = {0}, u2 = {0}, u3 = {0};
        double sum = 0;
        const SCALAR *gr = gy;
        for (int64_t a = 0; a < r->rows[0]; ++a) {
            const SCALAR *xr = xs + a * r->step[0] + off[t];
            int64_t b = 0;
            if (n >= L)
                for (; b + 2 <= r->rows[1]; b += 2, gr += 2 * n, xr += 2 * r->step[1]) {
                    FC_FN(dw_dot_)(gr, xr, n, keep, &s0, &s1, &s2, &s3);
                    FC_FN(dw_dot_)(gr + n, xr + r->step[1], n, keep, &u0, &u1, &u2, &u3);
                }
            for (; b < r->rows[1]; ++b, gr += n, xr += r->step[1]) {
                if (n >= L)
                    FC_FN(dw_dot_)(gr, xr, n, keep, &s0, &s1, &s2, &s3);
                else  /* rows narrower than a vector */
                    for (int64_t i = 0; i < n; ++i) sum += gr[i] * xr[i];
            }
        }
        const vec s = ((s0 + u0) + (s1 + u1)) + ((s2 + u2) + (s3 + u3));
        for (int64_t l = 0; l < L; ++l) sum += s[l];
        gw[t] += sum;
    }
}

/* Taps dw_weight_block_ sums at once: its FC_DW_BLOCK x FC_DW_WTAPS sums
 * and FC_DW_BLOCK gradient vectors must fit the registers (32 vectors with
 * AVX-512, 16 below). */
#define FC_DW_WTAPS (VBYTES >= 64 ? 4 : 2)

/* sums[j * sums_stride + u] += the sum over the output plane of output
 * j's gradient (planes out_stride apart in gy) times the staged input under
 * tap off[u], for j < nout and u < ntaps (at most FC_DW_BLOCK and
 * FC_DW_WTAPS; missing ones repeat the last and are not stored).  Each
 * gradient vector loaded serves FC_DW_WTAPS multiply-adds and each input
 * vector FC_DW_BLOCK, where dw_weight_plane_ loads two vectors per
 * multiply-add.  Rows at least a vector wide; the last vector of a row
 * starts at n - L, `keep` zeroing its gradient lanes already summed. */
static TARGET void FC_FN(dw_weight_block_)(const SCALAR *xs, const fc_dw_rows *r,
                                           const int64_t *off, int64_t ntaps, const SCALAR *gy,
                                           int64_t out_stride, int64_t nout, double *sums,
                                           int64_t sums_stride)
{
    typedef FC_FN(dw_vec_) vec;
    typedef FC_FN(dw_mask_) mask;
    const int64_t L = FC_LANES, n = r->n;
    mask keep = {0};   /* every lane set below (GCC cannot tell) */
    for (int64_t l = 0; l < L; ++l) keep[l] = l >= L - n % L ? -1 : 0;
    const SCALAR *grad[FC_DW_BLOCK];
    int64_t tap[FC_DW_WTAPS];
    for (int j = 0; j < FC_DW_BLOCK; ++j) grad[j] = gy + (j < nout ? j : nout - 1) * out_stride;
    for (int u = 0; u < FC_DW_WTAPS; ++u) tap[u] = off[u < ntaps ? u : ntaps - 1];
    vec acc[FC_DW_BLOCK][FC_DW_WTAPS];
    for (int j = 0; j < FC_DW_BLOCK; ++j)
        for (int u = 0; u < FC_DW_WTAPS; ++u) acc[j][u] = (vec){0};
    int64_t at_row = 0;   /* the row's start in each gradient plane */
    for (int64_t a = 0; a < r->rows[0]; ++a)
        for (int64_t b = 0; b < r->rows[1]; ++b, at_row += n) {
            const SCALAR *xr = xs + a * r->step[0] + b * r->step[1];
            for (int64_t i = 0; i < n; i += L) {
                const int64_t at = i + L <= n ? i : n - L;
                vec gv[FC_DW_BLOCK];
                for (int j = 0; j < FC_DW_BLOCK; ++j) {
                    gv[j] = DS_LOAD(grad[j] + at_row + at);
                    if (at != i) gv[j] = (vec)((mask)gv[j] & keep);
                }
                for (int u = 0; u < FC_DW_WTAPS; ++u) {
                    const vec xv = DS_LOAD(xr + tap[u] + at);
                    for (int j = 0; j < FC_DW_BLOCK; ++j) acc[j][u] += gv[j] * xv;
                }
            }
        }
    for (int j = 0; j < nout; ++j)
        for (int u = 0; u < ntaps; ++u) {
            double sum = 0;
            for (int64_t l = 0; l < L; ++l) sum += acc[j][u][l];
            sums[j * sums_stride + u] += sum;
        }
}

/* ------------------------------------------- channels in the lanes
 * Planes c0 .. c0 + L - 1 of one image staged with pixel q at vector q
 * (lane l: channel c0 + l); see fc_dw_lanes_use. */

/* out vector (a, b, i) = sum_t wv[t] * src vector a * step[0] + b * step[1]
 * + i * colstep + off[t], row by row (out contiguous): the forward pass on
 * the staged input (colstep: the W stride), the input gradient on the
 * staged output gradient (colstep 1).  Four pixels at a time: independent
 * sums hide the multiply-add latency. */
static TARGET void FC_FN(dwl_rows_)(const SCALAR *src, const fc_dw_rows *r, int64_t colstep,
                                    const int64_t *restrict off, int64_t ntaps,
                                    const SCALAR *restrict wv, SCALAR *restrict out)
{
    typedef FC_FN(dw_vec_) vec;
    const int64_t L = FC_LANES, n = r->n, cs = colstep * L;
    for (int64_t a = 0; a < r->rows[0]; ++a)
        for (int64_t b = 0; b < r->rows[1]; ++b, out += n * L) {
            const SCALAR *row = src + (a * r->step[0] + b * r->step[1]) * L;
            int64_t i = 0;
            for (; i + 4 <= n; i += 4) {
                vec a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
                for (int64_t t = 0; t < ntaps; ++t) {
                    const SCALAR *s = row + (off[t] + i * colstep) * L;
                    const vec w = DS_LOAD(wv + t * L);
                    a0 += w * DS_LOAD(s);
                    a1 += w * DS_LOAD(s + cs);
                    a2 += w * DS_LOAD(s + 2 * cs);
                    a3 += w * DS_LOAD(s + 3 * cs);
                }
                DS_STORE(out + i * L, a0);
                DS_STORE(out + (i + 1) * L, a1);
                DS_STORE(out + (i + 2) * L, a2);
                DS_STORE(out + (i + 3) * L, a3);
            }
            for (; i < n; ++i) {
                vec a0 = {0};
                for (int64_t t = 0; t < ntaps; ++t)
                    a0 += DS_LOAD(wv + t * L) * DS_LOAD(row + (off[t] + i * colstep) * L);
                DS_STORE(out + i * L, a0);
            }
        }
}

/* acc vector t = sum over the output pixels of gys (rows as r describes,
 * contiguous) times the staged input under tap off[t]: each lane one
 * channel's weight-gradient tap, no sums across lanes.  Four pixels at a
 * time into separate sums. */
static TARGET void FC_FN(dwl_weight_)(const SCALAR *xs, const fc_dw_rows *r, int64_t colstep,
                                      const int64_t *restrict off, int64_t ntaps,
                                      const SCALAR *restrict gys, SCALAR *restrict acc)
{
    typedef FC_FN(dw_vec_) vec;
    const int64_t L = FC_LANES, n = r->n, cs = colstep * L;
    for (int64_t t = 0; t < ntaps; ++t) {
        vec a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
        const SCALAR *gr = gys;
        for (int64_t a = 0; a < r->rows[0]; ++a)
            for (int64_t b = 0; b < r->rows[1]; ++b) {
                const SCALAR *s = xs + (a * r->step[0] + b * r->step[1] + off[t]) * L;
                int64_t i = 0;
                for (; i + 4 <= n; i += 4, gr += 4 * L, s += 4 * cs) {
                    a0 += DS_LOAD(gr) * DS_LOAD(s);
                    a1 += DS_LOAD(gr + L) * DS_LOAD(s + cs);
                    a2 += DS_LOAD(gr + 2 * L) * DS_LOAD(s + 2 * cs);
                    a3 += DS_LOAD(gr + 3 * L) * DS_LOAD(s + 3 * cs);
                }
                for (; i < n; ++i, gr += L, s += cs) a0 += DS_LOAD(gr) * DS_LOAD(s);
            }
        DS_STORE(acc + t * L, (a0 + a1) + (a2 + a3));
    }
}

#undef DS_LOAD
#undef DS_STORE

/* ------------------------------------------------------------ plain loops */

/* Output plane dst from the group's group_channels consecutive input planes
 * img and the output channel's weights w (group_channels x taps). */
static void FC_FN(dw_forward_direct_)(const SCALAR *img, const fc_geometry *g,
                                     int64_t group_channels, const SCALAR *w, SCALAR *dst)
{
    const int64_t taps = fc_kernel_size(g), plane_in = fc_spatial_size(g->in);
    memset(dst, 0, (size_t)fc_spatial_size(g->out) * sizeof(SCALAR));
    for (int64_t ci = 0; ci < group_channels; ++ci, img += plane_in, w += taps)
        for (int64_t t = 0; t < taps; ++t) {
            const SCALAR wt = w[t];
            int64_t kd, kh, kw;
            fc_tap_offsets(g, t, &kd, &kh, &kw);
            FC_FOR_TAP_ROWS(g, kd, kh, kw, {
                /* Indexed from the row start: w0 < 0 in the left padding. */
                const SCALAR *restrict src = img + in_row;
                SCALAR *restrict out = dst + out_row;
                for (int64_t ow = lo; ow < hi; ++ow) out[ow] += wt * src[w0 + ow * sw];
            });
        }
}

/* Input-gradient plane from the `multiplier` consecutive gradient planes
 * of the group's outputs and the channel's weights for them, w
 * (multiplier x taps, regrouped: see dw_regroup_weights_). */
static void FC_FN(dw_input_direct_)(const SCALAR *grad, const fc_geometry *g, int64_t multiplier,
                                   const SCALAR *w, SCALAR *dst)
{
    const int64_t taps = fc_kernel_size(g), plane_out = fc_spatial_size(g->out);
    memset(dst, 0, (size_t)fc_spatial_size(g->in) * sizeof(SCALAR));
    for (int64_t m = 0; m < multiplier; ++m, grad += plane_out, w += taps)
        for (int64_t t = 0; t < taps; ++t) {
            const SCALAR wt = w[t];
            int64_t kd, kh, kw;
            fc_tap_offsets(g, t, &kd, &kh, &kw);
            FC_FOR_TAP_ROWS(g, kd, kh, kw, {
                SCALAR *restrict in = dst + in_row;
                const SCALAR *restrict src = grad + out_row;
                for (int64_t ow = lo; ow < hi; ++ow) in[w0 + ow * sw] += wt * src[ow];
            });
        }
}

/* Weight-gradient row gw[0, group_channels * taps) of output channel o,
 * summed over the batch. */
static void FC_FN(dw_weight_direct_)(const SCALAR *gy, const SCALAR *x, int64_t batch,
                                    const fc_geometry *g, int64_t multiplier,
                                    int64_t group_channels, int64_t o, SCALAR *gw)
{
    const int64_t plane_in = fc_spatial_size(g->in), plane_out = fc_spatial_size(g->out);
    const int64_t c_out = g->channels / group_channels * multiplier, taps = fc_kernel_size(g);
    for (int64_t r = 0; r < group_channels * taps; ++r) {
        const int64_t ci = r / taps, t = r % taps;
        const int64_t c = o / multiplier * group_channels + ci;   /* input channel */
        int64_t kd, kh, kw;
        fc_tap_offsets(g, t, &kd, &kh, &kw);
        double total = 0;
        for (int64_t n = 0; n < batch; ++n) {
            const SCALAR *img = x + (n * g->channels + c) * plane_in;
            const SCALAR *grad = gy + (n * c_out + o) * plane_out;
            FC_FOR_TAP_ROWS(g, kd, kh, kw, {
                const SCALAR *restrict src = img + in_row;
                const SCALAR *restrict gr = grad + out_row;
                SCALAR row = 0;  /* per-row partial sums limit rounding growth */
                for (int64_t ow = lo; ow < hi; ++ow) row += gr[ow] * src[w0 + ow * sw];
                total += row;
            });
        }
        gw[r] = (SCALAR)total;
    }
}

/* ---------------------------------------------------------------- staging */

/* dst[i] = src[i * step], i in [0, n).  Step 2 (MobileNet's and ResNet's
 * downsampling) gets a loop of its own: with a constant step the compiler
 * vectorises it (loads and a shuffle), with a variable one it cannot. */
static void FC_FN(dw_gather_)(SCALAR *restrict dst, const SCALAR *restrict src, int64_t step,
                              int64_t n)
{
    if (step == 2)
        for (int64_t i = 0; i < n; ++i) dst[i] = src[2 * i];
    else
        for (int64_t i = 0; i < n; ++i) dst[i] = src[i * step];
}

/* Input plane x into xs as fc_dw_input_stage lays it out; writes only the
 * in-bounds values (the rest of xs stays zero). */
static void FC_FN(dw_stage_input_)(const SCALAR *x, const fc_geometry *g, const fc_dw_stage *s,
                                  SCALAR *xs)
{
    const int64_t W = g->in[2], sw = g->stride[2], pw = g->pad[2];
    for (int64_t id = 0; id < g->in[0]; ++id)
        for (int64_t ih = 0; ih < g->in[1]; ++ih, x += W) {
            const int64_t a = id + g->pad[0], b = ih + g->pad[1];
            if (a >= s->ext[0] || b >= s->ext[1]) continue;  /* never read */
            SCALAR *row = xs + (a * s->ext[1] + b) * s->pitch;
            if (sw == 1) {
                const int64_t n = pw >= s->seg ? 0 : W < s->seg - pw ? W : s->seg - pw;
                memcpy(row + pw, x, (size_t)n * sizeof(SCALAR));
                continue;
            }
            /* Padded column j = iw + pw goes to phase j % sw, offset j / sw:
             * phase by phase, a strided gather of every sw-th value. */
            for (int64_t ph = 0; ph < sw; ++ph) {
                const int64_t iw0 = ((ph - pw) % sw + sw) % sw, q0 = (iw0 + pw) / sw;
                if (iw0 >= W || q0 >= s->seg) continue;
                const int64_t n = (W - iw0 + sw - 1) / sw;
                FC_FN(dw_gather_)(row + ph * s->seg + q0, x + iw0, sw,
                                  n < s->seg - q0 ? n : s->seg - q0);
            }
        }
}

/* Output-gradient plane gy into gs as fc_dw_grad_stage lays it out; writes
 * only the values some tap reads, at the same places for every plane (the
 * rest of gs, the zeros between strided values included, stays zero). */
static void FC_FN(dw_stage_grad_)(const SCALAR *gy, const fc_geometry *g, const fc_dw_stage *s,
                                 SCALAR *gs)
{
    const int64_t OW = g->out[2], sw = g->stride[2], left = (g->kernel[2] - 1) * g->dilation[2];
    /* Values of a row that land inside the staged row: ow*sw + left < seg. */
    const int64_t fit = s->seg > left ? (s->seg - left - 1) / sw + 1 : 0;
    const int64_t n = OW < fit ? OW : fit;
    for (int64_t od = 0; od < g->out[0]; ++od)
        for (int64_t oh = 0; oh < g->out[1]; ++oh, gy += OW) {
            const int64_t a = od * g->stride[0] + (g->kernel[0] - 1) * g->dilation[0];
            const int64_t b = oh * g->stride[1] + (g->kernel[1] - 1) * g->dilation[1];
            if (a >= s->ext[0] || b >= s->ext[1]) continue;  /* never read */
            SCALAR *row = gs + (a * s->ext[1] + b) * s->pitch + left;
            if (sw == 1)
                memcpy(row, gy, (size_t)n * sizeof(SCALAR));
            else
                for (int64_t ow = 0; ow < n; ++ow) row[ow * sw] = gy[ow];
        }
}

/* Output-gradient plane gy (rows as r describes, n values each) into
 * wide: row (a, b) at a * len + b * r->step[1], len = fc_dw_wide_len;
 * writes only those values (the gaps between rows stay zero). */
static void FC_FN(dw_stage_wide_)(const SCALAR *gy, const fc_dw_rows *r, SCALAR *wide)
{
    const int64_t len = (r->rows[1] - 1) * r->step[1] + r->n;
    for (int64_t a = 0; a < r->rows[0]; ++a)
        for (int64_t b = 0; b < r->rows[1]; ++b, gy += r->n)
            memcpy(wide + a * len + b * r->step[1], gy, (size_t)r->n * sizeof(SCALAR));
}

/* n pixels of nch planes (`plane` apart in src) into lanes: dst vector
 * i * step, lane l = src[l * plane + i]. */
static TARGET void FC_FN(dwl_put_)(SCALAR *restrict dst, int64_t step,
                                   const SCALAR *restrict src, int64_t plane, int64_t nch,
                                   int64_t n)
{
    const int64_t L = FC_LANES;
    if (nch == L)   /* a constant trip count the compiler unrolls */
        for (int64_t i = 0; i < n; ++i)
            for (int64_t l = 0; l < FC_LANES; ++l) dst[i * step * L + l] = src[l * plane + i];
    else
        for (int64_t i = 0; i < n; ++i)
            for (int64_t l = 0; l < nch; ++l) dst[i * step * L + l] = src[l * plane + i];
}

/* The other way: dst[l * plane + i] = lane l of src vector i (+ bias[l]).
 * Plane by plane, each pass reads every vector of src once: in tiles of
 * FC_DW_TAKE_TILE vectors, so that the passes over a tile hit L1 (a whole
 * block's vectors, a 32x32 plane's, outgrow it). */
#define FC_DW_TAKE_TILE 64
static TARGET void FC_FN(dwl_take_)(SCALAR *restrict dst, int64_t plane,
                                    const SCALAR *restrict src, int64_t nch, int64_t n,
                                    const SCALAR *bias)
{
    const int64_t L = FC_LANES;
    for (int64_t i0 = 0; i0 < n; i0 += FC_DW_TAKE_TILE) {
        const int64_t i1 = n - i0 < FC_DW_TAKE_TILE ? n : i0 + FC_DW_TAKE_TILE;
        for (int64_t l = 0; l < nch; ++l) {
            SCALAR *restrict d = dst + l * plane;
            if (bias)
                for (int64_t i = i0; i < i1; ++i) d[i] = src[i * L + l] + bias[l];
            else
                for (int64_t i = i0; i < i1; ++i) d[i] = src[i * L + l];
        }
    }
}

/* Weight vector t, lane l = w[l * taps + t] (zero past nch). */
static void FC_FN(dwl_weights_)(const SCALAR *w, int64_t taps, int64_t nch, SCALAR *wv)
{
    for (int64_t t = 0; t < taps; ++t)
        for (int64_t l = 0; l < FC_LANES; ++l) wv[t * FC_LANES + l] = l < nch ? w[l * taps + t] : 0;
}

/* nch input planes into lanes as fc_dw_lanes_stage lays them out; writes
 * only the in-bounds values (the padding stays zero). */
static void FC_FN(dwl_stage_input_)(const SCALAR *x, int64_t nch, const fc_geometry *g,
                                    const fc_dw_stage *s, SCALAR *xs)
{
    const int64_t W = g->in[2], pw = g->pad[2], plane = fc_spatial_size(g->in);
    const int64_t n = pw >= s->pitch ? 0 : W < s->pitch - pw ? W : s->pitch - pw;
    for (int64_t id = 0; id < g->in[0]; ++id)
        for (int64_t ih = 0; ih < g->in[1]; ++ih) {
            const int64_t a = id + g->pad[0], b = ih + g->pad[1];
            if (a >= s->ext[0] || b >= s->ext[1]) continue;  /* never read */
            FC_FN(dwl_put_)(xs + ((a * s->ext[1] + b) * s->pitch + pw) * FC_LANES, 1,
                            x + (id * g->in[1] + ih) * W, plane, nch, n);
        }
}

/* nch output-gradient planes into lanes as fc_dw_grad_stage lays them out
 * (see dw_stage_grad_). */
static void FC_FN(dwl_stage_grad_)(const SCALAR *gy, int64_t nch, const fc_geometry *g,
                                   const fc_dw_stage *s, SCALAR *gs)
{
    const int64_t OW = g->out[2], sw = g->stride[2], left = (g->kernel[2] - 1) * g->dilation[2];
    const int64_t plane = fc_spatial_size(g->out);
    const int64_t fit = s->seg > left ? (s->seg - left - 1) / sw + 1 : 0;
    const int64_t n = OW < fit ? OW : fit;
    for (int64_t od = 0; od < g->out[0]; ++od)
        for (int64_t oh = 0; oh < g->out[1]; ++oh) {
            const int64_t a = od * g->stride[0] + (g->kernel[0] - 1) * g->dilation[0];
            const int64_t b = oh * g->stride[1] + (g->kernel[1] - 1) * g->dilation[1];
            if (a >= s->ext[0] || b >= s->ext[1]) continue;  /* never read */
            FC_FN(dwl_put_)(gs + ((a * s->ext[1] + b) * s->pitch + left) * FC_LANES, sw,
                            gy + (od * g->out[1] + oh) * OW, plane, nch, n);
        }
}

/* The forward pass (`input_grad` 0: src the input, dst the output) or the
 * input gradient (1: src the output gradient, staged as fc_dw_grad_stage
 * lays it out, read by the flipped taps of fc_dw_grad_taps) with channels
 * in the lanes: a thread takes blocks of FC_LANES planes of one image. */
static void FC_FN(dwl_apply_)(const SCALAR *src, const SCALAR *w, const SCALAR *bias,
                              int64_t batch, const fc_geometry *g, int input_grad, SCALAR *dst,
                              void *ws, const fc_dw_plan *plan, int nthreads)
{
    const int64_t L = FC_LANES, C = g->channels, blocks = (C + L - 1) / L;
    const int64_t taps = fc_kernel_size(g);
    const int64_t plane_in = fc_spatial_size(g->in), plane_out = fc_spatial_size(g->out);
    const int64_t plane_src = input_grad ? plane_out : plane_in;
    const int64_t plane_dst = input_grad ? plane_in : plane_out;
    const fc_dw_stage stage = input_grad ? fc_dw_grad_stage(g) : fc_dw_lanes_stage(g);
    const fc_dw_rows rows = input_grad ? fc_dw_grad_rows(g, &stage)
                                       : fc_dw_forward_rows(g, &stage);
    const int64_t colstep = input_grad ? 1 : g->stride[2];
    int64_t *off = ws;
    if (input_grad)
        fc_dw_grad_taps(g, &stage, 1, off);
    else
        fc_dw_lanes_taps(g, &stage, off);
    const int nt = fc_threads_for(nthreads, batch * C * taps * plane_out);
    fc_stop *stop = fc_stop_flag();
    const int64_t poll_every = fc_stop_period(L * taps * plane_out);
    (void)nt;
#ifdef _OPENMP
#pragma omp parallel num_threads(nt)
#endif
    {
        SCALAR *wv = (SCALAR *)fc_dw_region(ws, plan, fc_thread_num());
        SCALAR *staged = wv + taps * L, *out = staged + stage.size * L;
        memset(wv, 0, (size_t)(input_grad ? plan->input : plan->forward));
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
        for (int64_t p = 0; p < batch * blocks; ++p) {
            const int64_t n = p / blocks, c0 = p % blocks * L, nch = C - c0 < L ? C - c0 : L;
            if (fc_stopping_at(stop, p, poll_every)) continue;
            const SCALAR *block = src + (n * C + c0) * plane_src;
            FC_FN(dwl_weights_)(w + c0 * taps, taps, nch, wv);
            if (input_grad)
                FC_FN(dwl_stage_grad_)(block, nch, g, &stage, staged);
            else
                FC_FN(dwl_stage_input_)(block, nch, g, &stage, staged);
            FC_FN(dwl_rows_)(staged, &rows, colstep, off, taps, wv, out);
            FC_FN(dwl_take_)(dst + (n * C + c0) * plane_dst, plane_dst, out, nch, plane_dst,
                             bias ? bias + c0 : NULL);
        }
    }
}

/* Gradient row gw[0, row) = the nt runs' double sums at the front of their
 * regions, added in run order: the same order whatever the runs held. */
static void FC_FN(dw_sum_runs_)(void *ws, const fc_dw_plan *plan, int nt, int64_t row,
                                SCALAR *gw)
{
    for (int64_t i = 0; i < row; ++i) {
        double total = 0;
        for (int k = 0; k < nt; ++k) total += ((const double *)fc_dw_region(ws, plan, k))[i];
        gw[i] = (SCALAR)total;
    }
}

/* The weight gradient with channels in the lanes: as the plane-by-plane
 * loops, blocks of planes in memory order split into nt runs, each summing
 * (in double, per plane and tap as there) into its own region. */
static void FC_FN(dwl_backward_weight_)(const SCALAR *gy, const SCALAR *x, int64_t batch,
                                        const fc_geometry *g, SCALAR *gw, void *ws,
                                        const fc_dw_plan *plan, int nthreads)
{
    const int64_t L = FC_LANES, C = g->channels, blocks = (C + L - 1) / L;
    const int64_t taps = fc_kernel_size(g), row = C * taps, items = batch * blocks;
    const int64_t plane_in = fc_spatial_size(g->in), plane_out = fc_spatial_size(g->out);
    const fc_dw_stage stage = fc_dw_lanes_stage(g);
    const fc_dw_rows rows = fc_dw_forward_rows(g, &stage);
    int64_t *off = ws;
    fc_dw_lanes_taps(g, &stage, off);
    const int nt = fc_threads_for(nthreads, batch * C * taps * plane_out);
    fc_stop *stop = fc_stop_flag();
    const int64_t poll_every = fc_stop_period(L * taps * plane_out);
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
    for (int k = 0; k < nt; ++k) {
        double *sums = (double *)fc_dw_region(ws, plan, k);
        SCALAR *acc = (SCALAR *)(sums + row), *xs = acc + taps * L, *gys = xs + stage.size * L;
        memset(sums, 0, (size_t)plan->weight);
        for (int64_t p = items * k / nt; p < items * (k + 1) / nt; ++p) {
            const int64_t n = p / blocks, c0 = p % blocks * L, nch = C - c0 < L ? C - c0 : L;
            if (fc_stopping_at(stop, p, poll_every)) break;
            FC_FN(dwl_stage_input_)(x + (n * C + c0) * plane_in, nch, g, &stage, xs);
            FC_FN(dwl_put_)(gys, 1, gy + (n * C + c0) * plane_out, plane_out, nch, plane_out);
            FC_FN(dwl_weight_)(xs, &rows, g->stride[2], off, taps, gys, acc);
            for (int64_t l = 0; l < nch; ++l)
                for (int64_t t = 0; t < taps; ++t) sums[(c0 + l) * taps + t] += acc[t * L + l];
        }
    }
    if (!fc_stop_is_set(stop)) FC_FN(dw_sum_runs_)(ws, plan, nt, row, gw);
}

/* ------------------------------------------------------------ entry points */

/* The input gradient's weights, regrouped (C_in, multiplier, taps): input
 * channel c's weights for the group's outputs, contiguous as the row
 * kernels read them (the forward's are (C_out, group_channels, taps)). */
static void FC_FN(dw_regroup_weights_)(const SCALAR *w, const fc_geometry *g,
                                      int64_t multiplier, int64_t group_channels, SCALAR *wt)
{
    const int64_t taps = fc_kernel_size(g);
    for (int64_t c = 0; c < g->channels; ++c) {
        const int64_t group = c / group_channels, ci = c % group_channels;
        for (int64_t m = 0; m < multiplier; ++m, wt += taps)
            memcpy(wt, w + ((group * multiplier + m) * group_channels + ci) * taps,
                   (size_t)taps * sizeof(SCALAR));
    }
}

/* fc_depthwise_workspace. */
static int64_t FC_FN(depthwise_workspace_)(const fc_geometry *g, int64_t multiplier,
                                           int64_t group_channels, int nthreads)
{
    const fc_dw_plan p = fc_dw_scratch_plan(g, multiplier, group_channels,
                                            (int64_t)sizeof(SCALAR), FC_LANES);
    const int64_t bytes = p.offsets_bytes + p.weights_bytes
                          + (nthreads < 1 ? 1 : nthreads) * p.per_thread_bytes;
    return (bytes + (int64_t)sizeof(SCALAR) - 1) / (int64_t)sizeof(SCALAR);
}

/* fc_depthwise_forward. */
static void FC_FN(depthwise_forward_)(const void *x_, const void *w_, const void *bias_,
                                      int64_t batch, const fc_geometry *g, int64_t multiplier,
                                      int64_t group_channels, void *y_, void *ws, int nthreads)
{
    const SCALAR *x = x_, *w = w_, *bias = bias_;
    SCALAR *y = y_;
    const int64_t groups = g->channels / group_channels, c_out = groups * multiplier;
    const int64_t taps = fc_kernel_size(g), group_taps = group_channels * taps;
    const int64_t plane_in = fc_spatial_size(g->in), plane_out = fc_spatial_size(g->out);
    const fc_dw_stage stage = fc_dw_input_stage(g);
    const fc_dw_rows rows = fc_dw_forward_rows(g, &stage);
    const fc_dw_plan plan = fc_dw_scratch_plan(g, multiplier, group_channels,
                                               (int64_t)sizeof(SCALAR), FC_LANES);
    if (plan.lanes && plan.forward) {
        FC_FN(dwl_apply_)(x, w, bias, batch, g, 0, y, ws, &plan, nthreads);
        return;
    }
    int64_t *off = plan.forward ? (int64_t *)ws : NULL;
    if (off) fc_dw_input_taps(g, &stage, group_channels, off);
    const int nt = fc_threads_for(nthreads, batch * c_out * group_taps * plane_out);
    fc_stop *stop = fc_stop_flag();
    const int64_t poll_every = fc_stop_period(multiplier * group_taps * plane_out);
    (void)nt;
    /* A thread owns whole groups of input planes and the output planes they
     * feed. */
#ifdef _OPENMP
#pragma omp parallel num_threads(nt)
#endif
    {
        SCALAR *xs = off ? (SCALAR *)fc_dw_region(ws, &plan, fc_thread_num()) : NULL;
        if (xs) memset(xs, 0, (size_t)(group_channels * stage.size * (int64_t)sizeof(SCALAR)));
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
        for (int64_t p = 0; p < batch * groups; ++p) {
            const int64_t n = p / groups, group = p % groups;
            const SCALAR *img = x + p * group_channels * plane_in;
            if (fc_stopping_at(stop, p, poll_every)) continue;
            if (xs)
                for (int64_t ci = 0; ci < group_channels; ++ci)
                    FC_FN(dw_stage_input_)(img + ci * plane_in, g, &stage, xs + ci * stage.size);
            const int64_t o0 = group * multiplier;
            if (xs)
                FC_FN(dw_rows_)(xs, &rows, off, group_taps, w + o0 * group_taps, group_taps,
                                multiplier, y + (n * c_out + o0) * plane_out, plane_out,
                                plan.forward_wide ? xs + group_channels * stage.size : NULL);
            for (int64_t o = o0; o < o0 + multiplier; ++o) {
                SCALAR *dst = y + (n * c_out + o) * plane_out;
                if (!xs)
                    FC_FN(dw_forward_direct_)(img, g, group_channels, w + o * group_taps, dst);
                if (bias)   /* while the plane is still in cache: no pass over y */
                    for (int64_t i = 0; i < plane_out; ++i) dst[i] += bias[o];
            }
        }
    }
}

/* fc_depthwise_backward_input. */
static void FC_FN(depthwise_backward_input_)(const void *gy_, const void *w_, int64_t batch,
                                             const fc_geometry *g, int64_t multiplier,
                                             int64_t group_channels, void *gx_, void *ws,
                                             int nthreads)
{
    const SCALAR *gy = gy_, *w = w_;
    SCALAR *gx = gx_;
    const int64_t groups = g->channels / group_channels, c_out = groups * multiplier;
    const int64_t taps = fc_kernel_size(g), out_taps = multiplier * taps;
    const int64_t plane_in = fc_spatial_size(g->in), plane_out = fc_spatial_size(g->out);
    const fc_dw_stage stage = fc_dw_grad_stage(g);
    const fc_dw_rows rows = fc_dw_grad_rows(g, &stage);
    const fc_dw_plan plan = fc_dw_scratch_plan(g, multiplier, group_channels,
                                               (int64_t)sizeof(SCALAR), FC_LANES);
    if (plan.input_lanes && plan.input) {
        FC_FN(dwl_apply_)(gy, w, NULL, batch, g, 1, gx, ws, &plan, nthreads);
        return;
    }
    int64_t *off = plan.input ? (int64_t *)ws : NULL;
    if (off) fc_dw_grad_taps(g, &stage, multiplier, off);
    SCALAR *wt = (SCALAR *)((char *)ws + plan.offsets_bytes);
    FC_FN(dw_regroup_weights_)(w, g, multiplier, group_channels, wt);
    const int nt = fc_threads_for(nthreads, batch * c_out * group_channels * taps * plane_out);
    fc_stop *stop = fc_stop_flag();
    const int64_t poll_every = fc_stop_period(group_channels * out_taps * plane_out);
    (void)nt;
    /* A thread owns whole groups of input-gradient planes: overlapping
     * windows of one plane are all summed by the same thread, so nothing
     * races. */
#ifdef _OPENMP
#pragma omp parallel num_threads(nt)
#endif
    {
        SCALAR *gs = off ? (SCALAR *)fc_dw_region(ws, &plan, fc_thread_num()) : NULL;
        if (gs) memset(gs, 0, (size_t)(multiplier * stage.size * (int64_t)sizeof(SCALAR)));
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
        for (int64_t p = 0; p < batch * groups; ++p) {
            const int64_t n = p / groups, group = p % groups;
            const SCALAR *grad = gy + (n * c_out + group * multiplier) * plane_out;
            if (fc_stopping_at(stop, p, poll_every)) continue;
            if (gs)
                for (int64_t m = 0; m < multiplier; ++m)
                    FC_FN(dw_stage_grad_)(grad + m * plane_out, g, &stage, gs + m * stage.size);
            const int64_t c0 = group * group_channels;
            SCALAR *dst = gx + (n * g->channels + c0) * plane_in;
            if (gs)
                FC_FN(dw_rows_)(gs, &rows, off, out_taps, wt + c0 * out_taps, out_taps,
                                group_channels, dst, plane_in,
                                plan.input_wide ? gs + multiplier * stage.size : NULL);
            else
                for (int64_t ci = 0; ci < group_channels; ++ci)
                    FC_FN(dw_input_direct_)(grad, g, multiplier, wt + (c0 + ci) * out_taps,
                                           dst + ci * plane_in);
        }
    }
}

/* fc_depthwise_backward_weight. */
static void FC_FN(depthwise_backward_weight_)(const void *gy_, const void *x_, int64_t batch,
                                              const fc_geometry *g, int64_t multiplier,
                                              int64_t group_channels, void *gw_, void *ws,
                                              int nthreads)
{
    const SCALAR *gy = gy_, *x = x_;
    SCALAR *gw = gw_;
    const int64_t groups = g->channels / group_channels, c_out = groups * multiplier;
    const int64_t taps = fc_kernel_size(g);
    const int64_t plane_in = fc_spatial_size(g->in), plane_out = fc_spatial_size(g->out);
    const int64_t planes = batch * g->channels, row = c_out * group_channels * taps;
    const fc_dw_stage stage = fc_dw_input_stage(g);
    const fc_dw_rows rows = fc_dw_forward_rows(g, &stage);
    const fc_dw_plan plan = fc_dw_scratch_plan(g, multiplier, group_channels,
                                               (int64_t)sizeof(SCALAR), FC_LANES);
    if (plan.lanes && plan.weight) {
        FC_FN(dwl_backward_weight_)(gy, x, batch, g, gw, ws, &plan, nthreads);
        return;
    }
    const int nt = fc_threads_for(nthreads, batch * c_out * group_channels * taps * plane_out);
    fc_stop *stop = fc_stop_flag();
    /* Planes in memory order, split into nt runs; run k sums into its own
     * gradient (in double: sums over many planes) and staging buffer, and
     * the runs are added in order at the end: race-free and deterministic.
     * (Channel by channel instead, each plane read would jump a batch
     * stride, out of reach of the hardware prefetcher.) */
    if (!plan.weight) {  /* plain loops: a thread owns whole weight-gradient rows */
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
        for (int64_t o = 0; o < c_out; ++o)
            if (!fc_stopping(stop))
                FC_FN(dw_weight_direct_)(gy, x, batch, g, multiplier, group_channels, o,
                                        gw + o * group_channels * taps);
        return;
    }
    /* Groups of at least FC_DW_BLOCK outputs on rows a vector wide go whole
     * groups at a time through dw_weight_block_; the others plane by plane
     * through dw_weight_plane_. */
    const int blocked = multiplier >= FC_DW_BLOCK && g->out[2] >= FC_LANES;
    const fc_dw_rows wide_rows = {{rows.rows[0], 1}, {rows.step[0], 0}, plan.weight_wide};
    const int64_t group_taps = group_channels * taps, items = blocked ? batch * groups : planes;
    int64_t *off = (int64_t *)ws;
    fc_dw_input_taps(g, &stage, blocked ? group_channels : 1, off);
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
    for (int k = 0; k < nt; ++k) {
        /* Run k's region (whole cache lines: aligned sums, no false sharing). */
        double *sums = (double *)fc_dw_region(ws, &plan, k);
        SCALAR *xs = (SCALAR *)(sums + row);
        /* Narrow rows: each gradient plane staged wide (see fc_dw_wide_len);
         * its gaps stay zero from the memset below. */
        SCALAR *wide = plan.weight_wide && g->out[2] < FC_LANES
                       ? xs + group_channels * stage.size : NULL;
        memset(sums, 0, (size_t)plan.weight);
        const int64_t poll_every = fc_stop_period(multiplier * taps * plane_out);
        for (int64_t p = items * k / nt; p < items * (k + 1) / nt; ++p) {
            if (fc_stopping_at(stop, p, poll_every)) break;
            if (blocked) {   /* p: image n, group; its planes staged side by side */
                const int64_t n = p / groups, group = p % groups, o0 = group * multiplier;
                for (int64_t ci = 0; ci < group_channels; ++ci)
                    FC_FN(dw_stage_input_)(x + (p * group_channels + ci) * plane_in, g, &stage,
                                          xs + ci * stage.size);
                for (int64_t o = o0; o < o0 + multiplier; o += FC_DW_BLOCK)
                    for (int64_t t = 0; t < group_taps; t += FC_DW_WTAPS) {
                        const int64_t nout = o0 + multiplier - o, ntaps = group_taps - t;
                        FC_FN(dw_weight_block_)(xs, &rows, off + t,
                                                ntaps < FC_DW_WTAPS ? ntaps : FC_DW_WTAPS,
                                                gy + (n * c_out + o) * plane_out, plane_out,
                                                nout < FC_DW_BLOCK ? nout : FC_DW_BLOCK,
                                                sums + o * group_taps + t, group_taps);
                    }
                continue;
            }
            const int64_t n = p / g->channels, c = p % g->channels;
            const int64_t group = c / group_channels, ci = c % group_channels;
            FC_FN(dw_stage_input_)(x + p * plane_in, g, &stage, xs);
            /* Output o's gradient row for input plane ci: (o, ci, taps). */
            for (int64_t o = group * multiplier; o < (group + 1) * multiplier; ++o) {
                const SCALAR *grad = gy + (n * c_out + o) * plane_out;
                if (wide) {
                    FC_FN(dw_stage_wide_)(grad, &rows, wide);
                    grad = wide;
                }
                FC_FN(dw_weight_plane_)(xs, wide ? &wide_rows : &rows, off, taps, grad,
                                       sums + (o * group_channels + ci) * taps);
            }
        }
    }
    if (!fc_stop_is_set(stop)) FC_FN(dw_sum_runs_)(ws, &plan, nt, row, gw);  /* else unfinished */
}
