/* Max, average and adaptive max and average pooling for one scalar type and
 * instruction set.  Included by isa_template.h once per dtype: one source,
 * every dtype.
 *
 * Pooling acts on each (n, c) plane alone, so the batch is folded into
 * g->channels ("planes") and one plane is D*H*W contiguous values; 1-D and 2-D
 * pooling arrive lifted to 3-D (leading kernel 1, stride 1, pad 0, dilation 1).
 * g->pad is the padding on each side (pooling padding is symmetric).
 *
 * Every op has a general loop nest (padding, dilation, overlapping windows,
 * ceil-mode overhang).  Max pooling forward adds faster row kernels that give
 * the same answers (the tests run them all against the reference):
 *   max_row_2x2_    2x2 stride 2 without padding, read in place (the fast path);
 *   max_row_fused_  common small 1-D/2-D windows: all taps in registers;
 *   max_row_vec_    any other window: vectorised sweeps, one tap at a time;
 *   max_row_        planes of 2^31 elements or more (int64 positions).
 * The branch-free selects matter: on real data "is this tap larger" is
 * unpredictable, and a branch per tap ran many times slower
 * (docs/performance.md).  Average pooling has a
 * "tiled" loop for kernel == stride without padding, dilation or overhang,
 * where windows tile the input and backward writes each element once.
 * Backward of max pooling is zero + scatter-add per plane: the plane stays in
 * cache between the two, so this runs near memory speed. */


#ifndef FC_POOL_SHARED
#define FC_POOL_SHARED
/* Planes up to this many elements take the vectorised max-pool rows, which
 * keep indices as int32; larger ones the scalar int64 rows.  Tests build
 * once with -DFC_POOL_INT32_PLANE=0 to exercise the scalar rows too. */
#ifndef FC_POOL_INT32_PLANE
#define FC_POOL_INT32_PLANE INT32_MAX
#endif
/* Fused max-pool rows: outputs per chunk, whole blocks per vector loop
 * (a multiple of every vector width), largest KH and KW fused (S <= 2). */
#define FC_POOL_FUSED_CHUNK 256
#define FC_POOL_BLOCK 16
#define FC_POOL_FUSED_KMAX 3

/* Widest kernel (along W) the vectorised max-pool rows handle. */
#define FC_POOL_VEC_KW 64

/* Input columns of a run of adaptive max-pool bins whose column maxima one
 * output row holds at once (stack arrays: L1-resident). */
#define FC_POOL_ADAPTIVE_SPAN 256

/* Independent partial sums of a contiguous run: the compiler keeps them in
 * vector registers, where one running sum is a chain of dependent scalar
 * adds; few enough that folding them at the end stays cheap for short bins
 * (a power of two: they fold in halves). */
#define FC_POOL_SUM_LANES 16

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
 * overhang past the right padding does not (as PyTorch); otherwise only
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

/* Adaptive bin i of `out` over `in`: [floor(i*in/out), ceil((i+1)*in/out)). */
static inline void fc_adaptive_bin(int64_t i, int64_t in, int64_t out,
                                   int64_t *lo, int64_t *hi)
{
    if (out == 1) {   /* global pooling along this axis: no divisions */
        *lo = 0;
        *hi = in;
        return;
    }
    *lo = (i * in) / out;
    *hi = ((i + 1) * in + out - 1) / out;
}

/* fc_pool_find_bad_index (no dtype: one copy per table). */
static int64_t fc_pool_find_bad_index_(const int64_t *indices, int64_t n, int64_t limit,
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

/* A bin as runs of contiguous values: `outer` x `inner` runs of `length`,
 * the first at `start`, the others `outer_step` and `inner_step` apart.  A
 * bin of whole planes (global pooling) is one run, a bin of whole rows one
 * run per plane: the longer the runs, the better the vector loops fill. */
typedef struct {
    int64_t start, length, inner, inner_step, outer, outer_step;
} fc_pool_bin_runs;

static inline fc_pool_bin_runs fc_pool_bin_runs_of(int64_t d0, int64_t d1, int64_t h0,
                                                   int64_t h1, int64_t w0, int64_t w1,
                                                   int64_t H, int64_t W)
{
    fc_pool_bin_runs r = {(d0 * H + h0) * W + w0, w1 - w0, h1 - h0, W, d1 - d0, H * W};
    if (r.length == W) {            /* whole rows: one run per plane */
        r.length *= r.inner;
        r.inner = 1;
        if (h1 - h0 == H) {         /* whole planes: one run */
            r.length *= r.outer;
            r.outer = 1;
        }
    }
    return r;
}
#endif

/* The fused max-pool loops are compute-bound (a compare, a NaN test and two
 * selects per tap), so the x86 tables compile them for AVX2 (8 lanes,
 * one-instruction blends; docs/performance.md).  The AVX-512 table keeps the
 * AVX2 code, the one measured; the generic table uses the baseline.  The
 * forward loops all take it (average pooling's too: without it they were
 * compiled for the SSE2 baseline in every table, unlike the AVX2 build the
 * pooling once had).  Not average pooling's backward: as AVX2 code its short
 * 2x2 loops ran half as many instructions again (docs/performance.md). */
#if FC_ISA_LEVEL >= FC_SIMD_AVX2
#define POOL_TARGET __attribute__((target("avx2")))
#else
#define POOL_TARGET
#endif

/* ------------------------------------------------------------------------ */
/* Max pooling forward                                                      */
/* ------------------------------------------------------------------------ */

/* One output row (od, oh) of one plane, general geometry.  PyTorch's rule:
 * the running max starts at -inf with the index of the first in-bounds tap
 * (never -1, which backward would turn into a write before the plane), taps
 * are visited in row-major window order and a tap replaces the max when
 * `v > max || isnan(v)`: the first maximum wins ties and NaN propagates. */
static inline void FC_FN(max_row_)(const SCALAR *x, const fc_geometry *g,
                                   int64_t od, int64_t oh, SCALAR *y,
                                   int64_t *ind, const int want_idx)
{
    const int64_t H = g->in[1], W = g->in[2];
    const int64_t dd = g->dilation[0], dh = g->dilation[1], dw = g->dilation[2];
    const int64_t d0 = od * g->stride[0] - g->pad[0];
    const int64_t h0 = oh * g->stride[1] - g->pad[1];
    int64_t kd0, kd1, kh0, kh1;
    fc_pool_taps(d0, g->kernel[0], dd, g->in[0], &kd0, &kd1);
    fc_pool_taps(h0, g->kernel[1], dh, H, &kh0, &kh1);
    for (int64_t ow = 0; ow < g->out[2]; ++ow) {
        const int64_t w0 = ow * g->stride[2] - g->pad[2];
        int64_t kw0, kw1;
        fc_pool_taps(w0, g->kernel[2], dw, W, &kw0, &kw1);
        SCALAR m = -(SCALAR)INFINITY;
        int64_t mi = ((d0 + kd0 * dd) * H + h0 + kh0 * dh) * W + w0 + kw0 * dw;
        for (int64_t kd = kd0; kd < kd1; ++kd) {
            for (int64_t kh = kh0; kh < kh1; ++kh) {
                const int64_t row = ((d0 + kd * dd) * H + h0 + kh * dh) * W;
                for (int64_t kw = kw0; kw < kw1; ++kw) {
                    const int64_t i = row + w0 + kw * dw;
                    const SCALAR v = x[i];
                    /* selects, not branches: on real data the comparison
                     * is unpredictable (see the top of this file) */
                    const int take = (v > m) | (v != v);
                    m = take ? v : m;
                    mi = take ? i : mi;
                }
            }
        }
        y[ow] = m;
        if (want_idx) ind[ow] = mi;
    }
}

/* The same row as max_row_, vectorised: the taps are the outer loops (in
 * row-major window order) and the outputs the inner one, each tap sweeping
 * the run of outputs for which it lies inside the input, so every output
 * still sees its taps in row-major order.  Running maxima and their indices
 * live in small arrays (indices as int32: the caller ensures the plane
 * holds fewer than 2^31 elements), so the select loops vectorise.  runs[2*kw],
 * runs[2*kw+1] is the run of outputs whose tap kw lies inside [0, W): the
 * same for every row, so computed once per call (no divisions per row). */
POOL_TARGET static void FC_FN(max_row_vec_)(const SCALAR *restrict x, const fc_geometry *g,
                                const int64_t *runs, int64_t od, int64_t oh,
                                SCALAR *restrict y, int64_t *restrict ind,
                                const int want_idx)
{
    enum { CHUNK = 256 };
    const int64_t H = g->in[1], W = g->in[2], oW = g->out[2];
    const int64_t dd = g->dilation[0], dh = g->dilation[1], dw = g->dilation[2];
    const int64_t sw = g->stride[2], pw = g->pad[2], kW = g->kernel[2];
    const int64_t d0 = od * g->stride[0] - g->pad[0];
    const int64_t h0 = oh * g->stride[1] - g->pad[1];
    int64_t kd0, kd1, kh0, kh1;
    fc_pool_taps(d0, g->kernel[0], dd, g->in[0], &kd0, &kd1);
    fc_pool_taps(h0, g->kernel[1], dh, H, &kh0, &kh1);
    const int64_t first_row = ((d0 + kd0 * dd) * H + h0 + kh0 * dh) * W;
    SCALAR m[CHUNK];
    int32_t mi[CHUNK];
    for (int64_t c0 = 0; c0 < oW; c0 += CHUNK) {
        const int64_t n = oW - c0 < CHUNK ? oW - c0 : CHUNK;
        for (int64_t j = 0; j < n; ++j) {
            const int64_t w0 = (c0 + j) * sw - pw;
            /* the first in-bounds tap (a division only at the left edge) */
            const int64_t first = w0 >= 0 ? w0 : w0 + (-w0 + dw - 1) / dw * dw;
            m[j] = -(SCALAR)INFINITY;
            mi[j] = (int32_t)(first_row + first);
        }
        for (int64_t kd = kd0; kd < kd1; ++kd) {
            for (int64_t kh = kh0; kh < kh1; ++kh) {
                const int64_t row = ((d0 + kd * dd) * H + h0 + kh * dh) * W;
                for (int64_t kw = 0; kw < kW; ++kw) {
                    /* outputs whose tap kw lies in [0, W): the run [lo, hi) */
                    const int64_t off = kw * dw - pw;
                    const int64_t lo = runs[2 * kw] > c0 ? runs[2 * kw] : c0;
                    const int64_t hi = runs[2 * kw + 1] < c0 + n ? runs[2 * kw + 1] : c0 + n;
                    if (lo >= hi) continue;
                    /* from the first in-bounds tap: no pointer before x */
                    const SCALAR *restrict src = x + row + off + lo * sw;
                    const int32_t i0 = (int32_t)(row + off + lo * sw);
                    /* constant strides 1 and 2 let the loads vectorise */
#define FC_MAX_SWEEP(S)                                                 \
                    for (int64_t j = 0; j < hi - lo; ++j) {             \
                        const SCALAR v = src[j * (S)];                  \
                        SCALAR *mj = m + (lo - c0) + j;                 \
                        int32_t *ij = mi + (lo - c0) + j;               \
                        const int t = (v > *mj) | (v != v);             \
                        *mj = t ? v : *mj;                              \
                        *ij = t ? i0 + (int32_t)(j * (S)) : *ij;        \
                    }
                    if (sw == 1) {
                        FC_MAX_SWEEP(1)
                    } else if (sw == 2) {
                        FC_MAX_SWEEP(2)
                    } else {
                        FC_MAX_SWEEP(sw)
                    }
#undef FC_MAX_SWEEP
                }
            }
        }
        for (int64_t j = 0; j < n; ++j) y[c0 + j] = m[j];
        if (want_idx)
            for (int64_t j = 0; j < n; ++j) ind[c0 + j] = mi[j];
    }
}

/* The fast path for 2-D 2x2 windows of stride 2 without padding (the
 * common case): two input rows in, one output row out, read in place, four
 * taps in registers, branch-free selects.  Same rule as max_row_: starting
 * from the first tap equals starting from -inf with the first tap's index.
 * The tap is kept as a 32-bit code (0, 1, W, W + 1) so the loop vectorises
 * next to 32-bit floats; the caller ensures W + 1 fits. */
POOL_TARGET static void FC_FN(max_row_2x2_)(const SCALAR *restrict x,
                                              const fc_geometry *g, int64_t od,
                                              int64_t oh, SCALAR *restrict y,
                                              int64_t *restrict ind, const int want_idx)
{
    const int64_t W = g->in[2], oW = g->out[2];
    const int32_t W32 = (int32_t)W;
    const int64_t base = (od * g->in[1] + 2 * oh) * W;
    const SCALAR *restrict r0 = x + base, *restrict r1 = r0 + W;
    for (int64_t ow = 0; ow < oW; ++ow) {
        const SCALAR a = r0[2 * ow], b = r0[2 * ow + 1];
        const SCALAR c = r1[2 * ow], d = r1[2 * ow + 1];
        SCALAR m = a;
        int32_t k = 0;
        int t;
        t = (b > m) | (b != b); m = t ? b : m; k = t ? 1 : k;
        t = (c > m) | (c != c); m = t ? c : m; k = t ? W32 : k;
        t = (d > m) | (d != d); m = t ? d : m; k = t ? W32 + 1 : k;
        y[ow] = m;
        if (want_idx) ind[ow] = base + 2 * ow + (uint32_t)k;
    }
}

/* Fused rows for the common small 1-D/2-D windows (KH x KW taps, column
 * stride S, no dilation): all taps of one output in registers, so the loop
 * over outputs vectorises like a plain max.  The input arrives split into
 * column phases: ph[r * S + p][q] is column q * S + p of window row r,
 * counted from the first window's first column, so every tap is a unit-stride
 * load (strided loads would make the compiler peel scalar iterations, which
 * cost more than all the vector work).  n is a multiple of FC_POOL_BLOCK, so
 * the fixed-length block loop has no scalar remainder either.
 * code[j] = r * W + c, the chosen tap's offset in the plane from the
 * window's top-left corner (int32: the caller ensures the plane fits), or -1
 * when no tap beat -inf (all -inf: the caller picks the first in-bounds tap,
 * PyTorch's rule; padding is -inf, so it is never chosen). */
#define FC_MAX_FUSED_DEF(KH, KW, S)                                              \
POOL_TARGET static void FC_FN(max_fused_##KH##x##KW##s##S##_)(                 \
    const SCALAR *const *phases, int64_t n, int32_t W, SCALAR *restrict y,       \
    int32_t *restrict code)                                                      \
{                                                                                \
    const SCALAR *ph[KH * S];                                                    \
    for (int i = 0; i < KH * S; ++i) ph[i] = phases[i];                          \
    for (int64_t j0 = 0; j0 < n; j0 += FC_POOL_BLOCK) {                          \
        SCALAR mm[FC_POOL_BLOCK];                                                \
        int32_t kk[FC_POOL_BLOCK];                                               \
        for (int j = 0; j < FC_POOL_BLOCK; ++j) {                                \
            SCALAR m = -(SCALAR)INFINITY;                                        \
            int32_t k = -1;                                                      \
            for (int r = 0; r < KH; ++r)                                         \
                for (int c = 0; c < KW; ++c) {                                   \
                    const SCALAR v = ph[r * S + c % S][j0 + j + c / S];          \
                    const int t = (v > m) | (v != v);                            \
                    m = t ? v : m;                                               \
                    k = t ? r * W + c : k;                                       \
                }                                                                \
            mm[j] = m;                                                           \
            kk[j] = k;                                                           \
        }                                                                        \
        memcpy(y + j0, mm, sizeof mm);                                           \
        memcpy(code + j0, kk, sizeof kk);                                        \
    }                                                                            \
}
FC_MAX_FUSED_DEF(2, 2, 2)
FC_MAX_FUSED_DEF(3, 3, 1)
FC_MAX_FUSED_DEF(3, 3, 2)
FC_MAX_FUSED_DEF(1, 2, 2)
FC_MAX_FUSED_DEF(1, 3, 1)
FC_MAX_FUSED_DEF(1, 3, 2)
#undef FC_MAX_FUSED_DEF

typedef void (*FC_FN(max_fused_fn_))(const SCALAR *const *, int64_t, int32_t,
                                     SCALAR *restrict, int32_t *restrict);

/* The fused row kernel for g, or NULL.  Needs a 2-D (or 1-D) window without
 * dilation and a plane small enough for int32 positions.
 * (A kernel-side choice, not the plan's: docs/performance.md, "Decisions that stay in
 * the kernels".) */
static FC_FN(max_fused_fn_) FC_FN(max_fused_pick_)(const fc_geometry *g)
{
    const int64_t kH = g->kernel[1], kW = g->kernel[2], s = g->stride[2];
    if (g->kernel[0] != 1 || g->dilation[1] != 1 || g->dilation[2] != 1 ||
        fc_spatial_size(g->in) > FC_POOL_INT32_PLANE ||
        kH * g->in[2] + kW > INT32_MAX)                  /* the int32 tap codes */
        return NULL;
    if (kH == 2 && kW == 2 && s == 2) return FC_FN(max_fused_2x2s2_);
    if (kH == 3 && kW == 3 && s == 1) return FC_FN(max_fused_3x3s1_);
    if (kH == 3 && kW == 3 && s == 2) return FC_FN(max_fused_3x3s2_);
    if (kH == 1 && kW == 2 && s == 2) return FC_FN(max_fused_1x2s2_);
    if (kH == 1 && kW == 3 && s == 1) return FC_FN(max_fused_1x3s1_);
    if (kH == 1 && kW == 3 && s == 2) return FC_FN(max_fused_1x3s2_);
    return NULL;
}

/* One output row through a fused kernel, in chunks of outputs (rounded up to
 * whole blocks; the extra outputs are computed and dropped).  With stride 1
 * a window row inside the input is read in place; otherwise its columns are
 * split into phases in a small buffer, -inf outside the input (padding and
 * ceil-mode overhang).  Window rows in the vertical padding are all -inf. */
POOL_TARGET static void FC_FN(max_row_fused_)(const SCALAR *x, const fc_geometry *g,
                                  FC_FN(max_fused_fn_) fused, int64_t od, int64_t oh,
                                  SCALAR *y, int64_t *ind, const int want_idx)
{
    enum { CHUNK = FC_POOL_FUSED_CHUNK, B = FC_POOL_BLOCK,
           KMAX = FC_POOL_FUSED_KMAX, LEN = FC_POOL_FUSED_CHUNK + FC_POOL_FUSED_KMAX };
    const int64_t H = g->in[1], W = g->in[2], oW = g->out[2];
    const int64_t kH = g->kernel[1], kW = g->kernel[2], S = g->stride[2], pw = g->pad[2];
    const int64_t d = od * g->stride[0];                 /* kernel[0] == 1: no D padding */
    const int64_t h0 = oh * g->stride[1] - g->pad[1];
    SCALAR buf[KMAX * 2][LEN];                           /* S <= 2 phases per row */
    SCALAR yt[CHUNK];
    int32_t code[CHUNK];
    const SCALAR *ph[KMAX * 2];
    int64_t first_row = -1;                              /* first in-bounds window row */
    for (int64_t r = 0; r < kH; ++r)
        if (first_row < 0 && (uint64_t)(h0 + r) < (uint64_t)H) first_row = (d * H + h0 + r) * W;
    for (int64_t c0 = 0; c0 < oW; c0 += CHUNK) {
        const int64_t n = oW - c0 < CHUNK ? oW - c0 : CHUNK;
        const int64_t nb = (n + B - 1) / B * B;
        const int64_t col0 = c0 * S - pw;               /* first window's first column */
        const int64_t len = nb + (kW - 1) / S;          /* phase length read */
        for (int64_t r = 0; r < kH; ++r) {
            const int64_t ih = h0 + r;
            const int inside = (uint64_t)ih < (uint64_t)H;
            const SCALAR *row = x + (inside ? (d * H + ih) * W : 0);
            if (inside && S == 1 && col0 >= 0 && col0 + len <= W) {
                ph[r] = row + col0;
                continue;
            }
            for (int64_t p = 0; p < S; ++p) {
                /* phase p holds columns col0 + p + q*S, q in [0, len);
                 * those inside [0, W) are q in [qa, qb) (S is 1 or 2) */
                SCALAR *dst = buf[r * S + p];
                const int64_t c = col0 + p;
                int64_t qa = c >= 0 ? 0 : (S == 1 ? -c : (1 - c) >> 1);
                int64_t qb = W - c <= 0 ? 0 : (S == 1 ? W - c : (W - c + 1) >> 1);
                if (!inside) qa = qb = 0;
                if (qb > len) qb = len;
                if (qa > qb) qa = qb;
                for (int64_t q = 0; q < qa; ++q) dst[q] = -(SCALAR)INFINITY;
                if (S == 2)                              /* constant stride vectorises */
                    for (int64_t q = qa; q < qb; ++q) dst[q] = row[c + 2 * q];
                else
                    for (int64_t q = qa; q < qb; ++q) dst[q] = row[c + q];
                for (int64_t q = qb; q < len; ++q) dst[q] = -(SCALAR)INFINITY;
                ph[r * S + p] = dst;
            }
        }
        fused(ph, nb, (int32_t)W, yt, code);
        memcpy(y + c0, yt, (size_t)n * sizeof(SCALAR));
        if (!want_idx) continue;
        /* plane position of the top-left tap of output c0 + j: base + j*S */
        const int64_t base = (d * H + h0) * W + col0;
        int all_inf = 0;
        for (int64_t j = 0; j < n; ++j) {                /* two simple vector loops */
            ind[c0 + j] = base + j * S + code[j];
            all_inf |= code[j] < 0;
        }
        for (int64_t j = 0; all_inf && j < n; ++j) {     /* rare: every tap -inf */
            const int64_t w = col0 + j * S;
            if (code[j] < 0) ind[c0 + j] = first_row + (w < 0 ? 0 : w);
        }
    }
}

/* The row kernels, each specialised for want_idx at compile time. */
POOL_TARGET static void FC_FN(max_pool_rows_)(const SCALAR *x, const fc_geometry *g,
                                  SCALAR *y, int64_t *ind, const int want_idx,
                                  int nthreads)
{
    const int64_t oD = g->out[0], oH = g->out[1], oW = g->out[2];
    const int64_t in_plane = fc_spatial_size(g->in), out_plane = fc_spatial_size(g->out);
    const int64_t rows = g->channels * oD * oH;
    const int is_2x2 = fc_pool_is_tiled(g) && g->kernel[0] == 1 && g->kernel[1] == 2 &&
                       g->kernel[2] == 2 && g->in[2] < INT32_MAX;
    const FC_FN(max_fused_fn_) fused = FC_FN(max_fused_pick_)(g);
    /* the vectorised rows: int32 indices and a per-tap table on the stack */
    const int vec = in_plane <= FC_POOL_INT32_PLANE && g->kernel[2] <= FC_POOL_VEC_KW;
    int64_t runs[2 * FC_POOL_VEC_KW];
    for (int64_t kw = 0; vec && kw < g->kernel[2]; ++kw)
        fc_valid_range(g->in[2], oW, g->stride[2], kw * g->dilation[2] - g->pad[2],
                       &runs[2 * kw], &runs[2 * kw + 1]);
    const int nt = fc_threads_for(nthreads, g->channels * in_plane);
    fc_stop *stop = fc_stop_flag();
    const int64_t poll_every = fc_stop_period(oW * fc_kernel_size(g));
    (void)nt;
    /* Every output row belongs to one thread: disjoint outputs, no races. */
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
    for (int64_t r = 0; r < rows; ++r) {
        if (fc_stopping_at(stop, r, poll_every)) continue;
        /* one row per plane (global pooling along D and H): no divisions */
        const int64_t p = oD * oH == 1 ? r : r / (oD * oH);
        const int64_t od = oD == 1 ? 0 : (r / oH) % oD, oh = oH == 1 ? 0 : r % oH;
        const SCALAR *xp = x + p * in_plane;
        const int64_t off = p * out_plane + (od * oH + oh) * oW;
        int64_t *ip = want_idx ? ind + off : NULL;
        if (is_2x2)
            FC_FN(max_row_2x2_)(xp, g, od, oh, y + off, ip, want_idx);
        else if (fused)
            FC_FN(max_row_fused_)(xp, g, fused, od, oh, y + off, ip, want_idx);
        else if (vec)
            FC_FN(max_row_vec_)(xp, g, runs, od, oh, y + off, ip, want_idx);
        else
            FC_FN(max_row_)(xp, g, od, oh, y + off, ip, want_idx);
    }
}

/* fc_max_pool. */
static void FC_FN(max_pool_)(const void *x, const fc_geometry *g, void *y, int64_t *indices,
                             int nthreads)
{
    if (indices)
        FC_FN(max_pool_rows_)(x, g, y, indices, 1, nthreads);
    else
        FC_FN(max_pool_rows_)(x, g, y, NULL, 0, nthreads);
}

/* ------------------------------------------------------------------------ */
/* Max pooling backward                                                     */
/* ------------------------------------------------------------------------ */

/* General: grad_input[indices[o]] += grad_output[o] over one plane.  The
 * caller checked every index lies in [0, D*H*W). */
static void FC_FN(max_backward_plane_)(const SCALAR *gy, const int64_t *ind,
                                       int64_t out_plane, int64_t in_plane, SCALAR *gx)
{
    memset(gx, 0, (size_t)in_plane * sizeof(SCALAR));
    for (int64_t o = 0; o < out_plane; ++o) gx[ind[o]] += gy[o];
}

/* fc_max_pool_backward. */
static void FC_FN(max_pool_backward_)(const void *gy_, const int64_t *indices,
                                      const fc_geometry *g, void *gx_, int nthreads)
{
    const SCALAR *gy = gy_;
    SCALAR *gx = gx_;
    const int64_t in_plane = fc_spatial_size(g->in), out_plane = fc_spatial_size(g->out);
    const int nt = fc_threads_for(nthreads, g->channels * in_plane);
    fc_stop *stop = fc_stop_flag();
    const int64_t poll_every = fc_stop_period(in_plane + out_plane);
    (void)nt;
    /* A thread owns whole planes, and every index points inside its own
     * plane: overlapping windows never race. */
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
    for (int64_t p = 0; p < g->channels; ++p) {
        if (fc_stopping_at(stop, p, poll_every)) continue;
        FC_FN(max_backward_plane_)(gy + p * out_plane, indices + p * out_plane,
                                   out_plane, in_plane, gx + p * in_plane);
    }
}

/* ------------------------------------------------------------------------ */
/* Average pooling                                                          */
/* ------------------------------------------------------------------------ */

/* The divisor of one window: divisor_override when non-zero, else the
 * product of the per-axis counts. */
#define FC_AVG_DIVISOR(override_, cd, ch, cw) \
    ((override_) ? (SCALAR)(override_) : (SCALAR)((cd) * (ch) * (cw)))

POOL_TARGET static void FC_FN(avg_row_)(const SCALAR *x, const fc_geometry *g, int64_t od,
                            int64_t oh, int include_pad, int64_t div_override,
                            SCALAR *y)
{
    const int64_t H = g->in[1], W = g->in[2];
    int64_t d0, d1, h0, h1;
    const int64_t cd = fc_avg_extent(od, g->in[0], g->kernel[0], g->stride[0], g->pad[0],
                                     include_pad, &d0, &d1);
    const int64_t ch = fc_avg_extent(oh, H, g->kernel[1], g->stride[1], g->pad[1],
                                     include_pad, &h0, &h1);
    for (int64_t ow = 0; ow < g->out[2]; ++ow) {
        int64_t w0, w1;
        const int64_t cw = fc_avg_extent(ow, W, g->kernel[2], g->stride[2], g->pad[2],
                                         include_pad, &w0, &w1);
        SCALAR sum = 0;
        for (int64_t d = d0; d < d1; ++d)
            for (int64_t h = h0; h < h1; ++h) {
                const SCALAR *r = x + (d * H + h) * W;
                for (int64_t w = w0; w < w1; ++w) sum += r[w];
            }
        y[ow] = sum / FC_AVG_DIVISOR(div_override, cd, ch, cw);
    }
}

/* Tiled: sum the window rows into the output row, then divide once. */
POOL_TARGET static void FC_FN(avg_row_tiled_)(const SCALAR *x, const fc_geometry *g, int64_t od,
                                  int64_t oh, int64_t div_override, SCALAR *y)
{
    const int64_t H = g->in[1], W = g->in[2], oW = g->out[2];
    const int64_t kD = g->kernel[0], kH = g->kernel[1], kW = g->kernel[2];
    const SCALAR div = FC_AVG_DIVISOR(div_override, kD, kH, kW);
    for (int64_t ow = 0; ow < oW; ++ow) y[ow] = 0;
    for (int64_t a = 0; a < kD; ++a)
        for (int64_t b = 0; b < kH; ++b) {
            const SCALAR *r = x + ((od * kD + a) * H + oh * kH + b) * W;
            for (int64_t ow = 0; ow < oW; ++ow)
                for (int64_t c = 0; c < kW; ++c) y[ow] += r[ow * kW + c];
        }
    for (int64_t ow = 0; ow < oW; ++ow) y[ow] /= div;
}

/* fc_avg_pool. */
POOL_TARGET static void FC_FN(avg_pool_)(const void *x_, const fc_geometry *g, int count_include_pad,
                             int64_t divisor_override, void *y_, int nthreads)
{
    const SCALAR *x = x_;
    SCALAR *y = y_;
    const int64_t oD = g->out[0], oH = g->out[1], oW = g->out[2];
    const int64_t in_plane = fc_spatial_size(g->in), out_plane = fc_spatial_size(g->out);
    const int64_t rows = g->channels * oD * oH;
    const int tiled = fc_pool_is_tiled(g);
    const int nt = fc_threads_for(nthreads, g->channels * in_plane);
    fc_stop *stop = fc_stop_flag();
    const int64_t poll_every = fc_stop_period(oW * fc_kernel_size(g));
    (void)nt;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
    for (int64_t r = 0; r < rows; ++r) {
        const int64_t p = r / (oD * oH), od = (r / oH) % oD, oh = r % oH;
        if (fc_stopping_at(stop, r, poll_every)) continue;
        SCALAR *yr = y + p * out_plane + (od * oH + oh) * oW;
        if (tiled)
            FC_FN(avg_row_tiled_)(x + p * in_plane, g, od, oh, divisor_override, yr);
        else
            FC_FN(avg_row_)(x + p * in_plane, g, od, oh, count_include_pad,
                            divisor_override, yr);
    }
}

/* General backward of one plane: each window adds grad / divisor to its
 * in-bounds taps (overlapping windows accumulate). */
static void FC_FN(avg_backward_plane_)(const SCALAR *gy, const fc_geometry *g,
                                       int include_pad, int64_t div_override, SCALAR *gx,
                                       fc_stop *stop)
{
    /* One output row's taps: a huge plane polls row by row. */
    const int64_t poll_every = fc_stop_period(g->out[2] * fc_kernel_size(g));
    const int64_t H = g->in[1], W = g->in[2];
    memset(gx, 0, (size_t)fc_spatial_size(g->in) * sizeof(SCALAR));
    for (int64_t od = 0; od < g->out[0]; ++od) {
        int64_t d0, d1;
        const int64_t cd = fc_avg_extent(od, g->in[0], g->kernel[0], g->stride[0],
                                         g->pad[0], include_pad, &d0, &d1);
        for (int64_t oh = 0; oh < g->out[1]; ++oh) {
            int64_t h0, h1;
            const int64_t ch = fc_avg_extent(oh, H, g->kernel[1], g->stride[1],
                                             g->pad[1], include_pad, &h0, &h1);
            if (fc_stopping_at(stop, od * g->out[1] + oh, poll_every)) return;
            for (int64_t ow = 0; ow < g->out[2]; ++ow, ++gy) {
                int64_t w0, w1;
                const int64_t cw = fc_avg_extent(ow, W, g->kernel[2], g->stride[2],
                                                 g->pad[2], include_pad, &w0, &w1);
                const SCALAR v = *gy / FC_AVG_DIVISOR(div_override, cd, ch, cw);
                for (int64_t d = d0; d < d1; ++d)
                    for (int64_t h = h0; h < h1; ++h) {
                        SCALAR *r = gx + (d * H + h) * W;
                        for (int64_t w = w0; w < w1; ++w) r[w] += v;
                    }
            }
        }
    }
}

/* Tiled backward of one plane: each input element gets its one window's
 * share, written once; elements outside every window get 0. */
static void FC_FN(avg_backward_plane_tiled_)(const SCALAR *gy, const fc_geometry *g,
                                             int64_t div_override, SCALAR *gx)
{
    const int64_t D = g->in[0], H = g->in[1], W = g->in[2];
    const int64_t oD = g->out[0], oH = g->out[1], oW = g->out[2];
    const int64_t kD = g->kernel[0], kH = g->kernel[1], kW = g->kernel[2];
    const SCALAR div = FC_AVG_DIVISOR(div_override, kD, kH, kW);
    for (int64_t od = 0; od < oD; ++od) {
        for (int64_t oh = 0; oh < oH; ++oh) {
            const SCALAR *gr = gy + (od * oH + oh) * oW;
            for (int64_t a = 0; a < kD; ++a)
                for (int64_t b = 0; b < kH; ++b) {
                    SCALAR *dst = gx + ((od * kD + a) * H + oh * kH + b) * W;
                    for (int64_t ow = 0; ow < oW; ++ow) {
                        const SCALAR v = gr[ow] / div;
                        for (int64_t c = 0; c < kW; ++c) dst[ow * kW + c] = v;
                    }
                    memset(dst + oW * kW, 0, (size_t)(W - oW * kW) * sizeof(SCALAR));
                }
        }
        for (int64_t a = 0; a < kD; ++a) {
            const int64_t h = oH * kH;
            memset(gx + ((od * kD + a) * H + h) * W, 0, (size_t)((H - h) * W) * sizeof(SCALAR));
        }
    }
    memset(gx + oD * kD * H * W, 0, (size_t)((D - oD * kD) * H * W) * sizeof(SCALAR));
}

/* fc_avg_pool_backward. */
static void FC_FN(avg_pool_backward_)(const void *gy_, const fc_geometry *g,
                                      int count_include_pad, int64_t divisor_override,
                                      void *gx_, int nthreads)
{
    const SCALAR *gy = gy_;
    SCALAR *gx = gx_;
    const int64_t in_plane = fc_spatial_size(g->in), out_plane = fc_spatial_size(g->out);
    const int tiled = fc_pool_is_tiled(g);
    const int nt = fc_threads_for(nthreads, g->channels * in_plane);
    fc_stop *stop = fc_stop_flag();
    const int64_t poll_every = fc_stop_period(in_plane + out_plane * fc_kernel_size(g));
    (void)nt;
    /* Whole planes per thread: overlapping windows never race. */
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
    for (int64_t p = 0; p < g->channels; ++p) {
        if (fc_stopping_at(stop, p, poll_every)) continue;
        if (tiled)
            FC_FN(avg_backward_plane_tiled_)(gy + p * out_plane, g, divisor_override,
                                             gx + p * in_plane);
        else
            FC_FN(avg_backward_plane_)(gy + p * out_plane, g, count_include_pad,
                                       divisor_override, gx + p * in_plane, stop);
    }
}

/* ------------------------------------------------------------------------ */
/* Adaptive max and average pooling                                         */
/* ------------------------------------------------------------------------ */

/* Bin [d0, d1) x [h0, h1) x [w0, w1) of a (D, H, W) plane. */
typedef struct {
    int64_t d0, d1, h0, h1, w0, w1;
} FC_FN(adaptive_bin_box_);

/* The maximum of a bin, by max_row_'s rule: the running max starts at -inf
 * with the index of the bin's first element (never -1), elements are visited
 * in row-major order and replace the max when `v > max || isnan(v)`, so the
 * first maximum wins ties and NaN propagates.  *at receives its index. */
static inline SCALAR FC_FN(adaptive_bin_max_)(const SCALAR *xp, int64_t H, int64_t W,
                                              const FC_FN(adaptive_bin_box_) *b, int64_t *at)
{
    SCALAR best = -(SCALAR)INFINITY;
    int64_t best_at = (b->d0 * H + b->h0) * W + b->w0;
    for (int64_t d = b->d0; d < b->d1; ++d)
        for (int64_t h = b->h0; h < b->h1; ++h) {
            const int64_t row = (d * H + h) * W;
            for (int64_t w = b->w0; w < b->w1; ++w) {
                const SCALAR v = xp[row + w];
                if (v > best || isnan(v)) {
                    best = v;
                    best_at = row + w;
                }
            }
        }
    *at = best_at;
    return best;
}

/* Adaptive max pooling of one output row's bins, a run of neighbouring bins
 * at a time: first each column's max over the bins' rows (contiguous,
 * branch-free selects, so vectorised), each with its first row holding it;
 * then each bin's max over its columns, ties to the smallest flat index,
 * which is adaptive_bin_max_'s first maximum in row-major order.  A bin
 * holding a NaN (its index: the last NaN) or wider than the run buffer
 * takes adaptive_bin_max_ itself. */
POOL_TARGET static void FC_FN(adaptive_max_row_)(const SCALAR *xp, const fc_geometry *g,
                                                 FC_FN(adaptive_bin_box_) b, SCALAR *y,
                                                 int64_t *indices)
{
    const int64_t H = g->in[1], W = g->in[2], oW = g->out[2];
    SCALAR col_max[FC_POOL_ADAPTIVE_SPAN];
    int64_t col_row[FC_POOL_ADAPTIVE_SPAN];
    for (int64_t a = 0; a < oW;) {
        int64_t lo, end, e = a + 1;
        fc_adaptive_bin(a, W, oW, &lo, &end);
        for (int64_t w0, w1; e < oW; ++e, end = w1) {
            fc_adaptive_bin(e, W, oW, &w0, &w1);
            if (w1 - lo > FC_POOL_ADAPTIVE_SPAN) break;
        }
        const int64_t span = end - lo;
        if (span <= FC_POOL_ADAPTIVE_SPAN) {
            const int64_t first = (b.d0 * H + b.h0) * W;
            for (int64_t j = 0; j < span; ++j) {
                col_max[j] = xp[first + lo + j];
                col_row[j] = first;
            }
            for (int64_t d = b.d0; d < b.d1; ++d)
                for (int64_t h = d == b.d0 ? b.h0 + 1 : b.h0; h < b.h1; ++h) {
                    const int64_t row = (d * H + h) * W;
                    const SCALAR *restrict xr = xp + row + lo;
                    for (int64_t j = 0; j < span; ++j) {
                        const int take = xr[j] > col_max[j] || xr[j] != xr[j];
                        col_max[j] = take ? xr[j] : col_max[j];
                        col_row[j] = take ? row : col_row[j];
                    }
                }
        }
        for (int64_t ow = a; ow < e; ++ow) {
            fc_adaptive_bin(ow, W, oW, &b.w0, &b.w1);
            SCALAR best = -(SCALAR)INFINITY;
            int64_t at = (b.d0 * H + b.h0) * W + b.w0;
            int has_nan = span > FC_POOL_ADAPTIVE_SPAN;
            for (int64_t w = b.w0; w < b.w1 && !has_nan; ++w) {
                const SCALAR v = col_max[w - lo];
                const int64_t i = col_row[w - lo] + w;
                has_nan = v != v;
                if (v > best || (v == best && i < at)) {
                    best = v;
                    at = i;
                }
            }
            if (has_nan) best = FC_FN(adaptive_bin_max_)(xp, H, W, &b, &at);
            y[ow] = best;
            if (indices) indices[ow] = at;
        }
        a = e;
    }
}

/* The sum of n contiguous values in FC_POOL_SUM_LANES interleaved partial
 * sums, the tail in four more, folded in halves: the same order on every
 * instruction set, no long chain of dependent adds, and only constant lane
 * indices, so the lanes can stay in registers (with a variable index they
 * live on the stack, and short bins, as the 7x7 planes of global pooling,
 * then cost several times more). */
POOL_TARGET static inline SCALAR FC_FN(sum_run_)(const SCALAR *p, int64_t n)
{
    SCALAR lane[FC_POOL_SUM_LANES] = {0};
    int64_t i = 0;
    for (; i + FC_POOL_SUM_LANES <= n; i += FC_POOL_SUM_LANES)
        for (int j = 0; j < FC_POOL_SUM_LANES; ++j) lane[j] += p[i + j];
    SCALAR tail[4] = {0};
    for (; i + 4 <= n; i += 4)
        for (int j = 0; j < 4; ++j) tail[j] += p[i + j];
    if (i < n) tail[0] += p[i];
    if (i + 1 < n) tail[1] += p[i + 1];
    if (i + 2 < n) tail[2] += p[i + 2];
    for (int half = FC_POOL_SUM_LANES / 2; half > 0; half /= 2)
        for (int j = 0; j < half; ++j) lane[j] += lane[j + half];
    return lane[0] + ((tail[0] + tail[2]) + (tail[1] + tail[3]));
}

/* The mean of a bin, summed run by run. */
POOL_TARGET static inline SCALAR FC_FN(adaptive_bin_mean_)(const SCALAR *xp, int64_t H,
                                                           int64_t W,
                                                           const FC_FN(adaptive_bin_box_) *b)
{
    const fc_pool_bin_runs r = fc_pool_bin_runs_of(b->d0, b->d1, b->h0, b->h1, b->w0, b->w1,
                                                   H, W);
    SCALAR sum = 0;
    for (int64_t o = 0; o < r.outer; ++o)
        for (int64_t i = 0; i < r.inner; ++i)
            sum += FC_FN(sum_run_)(xp + r.start + o * r.outer_step + i * r.inner_step,
                                   r.length);
    return sum / (SCALAR)(r.outer * r.inner * r.length);
}

/* Every value of a bin set to v (overwrite) or incremented by v. */
POOL_TARGET static inline void FC_FN(spread_over_bin_)(SCALAR *gxp, const fc_pool_bin_runs *r,
                                                       SCALAR v, int overwrite)
{
    for (int64_t o = 0; o < r->outer; ++o)
        for (int64_t i = 0; i < r->inner; ++i) {
            SCALAR *run = gxp + r->start + o * r->outer_step + i * r->inner_step;
            if (overwrite)
                for (int64_t k = 0; k < r->length; ++k) run[k] = v;
            else
                for (int64_t k = 0; k < r->length; ++k) run[k] += v;
        }
}

/* Adaptive pooling forward: each output the max (take_max; its index into
 * `indices` unless NULL) or the mean of its bin.  Threads own output rows. */
POOL_TARGET static void FC_FN(adaptive_pool_rows_)(const SCALAR *x, const fc_geometry *g, SCALAR *y,
                                       int take_max, int64_t *indices, int nthreads)
{
    const int64_t H = g->in[1], W = g->in[2];
    const int64_t oD = g->out[0], oH = g->out[1], oW = g->out[2];
    const int64_t in_plane = fc_spatial_size(g->in), out_plane = fc_spatial_size(g->out);
    const int64_t rows = g->channels * oD * oH;
    const int nt = fc_threads_for(nthreads, g->channels * in_plane);
    fc_stop *stop = fc_stop_flag();
    /* An output row's bins cover about this much of its plane. */
    const int64_t poll_every = fc_stop_period((g->in[0] / oD + 1) * (H / oH + 1) * (W + oW));
    (void)nt;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
    for (int64_t r = 0; r < rows; ++r) {
        /* one row per plane (global pooling along D and H): no divisions */
        const int64_t p = oD * oH == 1 ? r : r / (oD * oH);
        const int64_t od = oD == 1 ? 0 : (r / oH) % oD, oh = oH == 1 ? 0 : r % oH;
        const SCALAR *xp = x + p * in_plane;
        const int64_t o = p * out_plane + (od * oH + oh) * oW;
        if (fc_stopping_at(stop, r, poll_every)) continue;
        FC_FN(adaptive_bin_box_) b;
        fc_adaptive_bin(od, g->in[0], oD, &b.d0, &b.d1);
        fc_adaptive_bin(oh, H, oH, &b.h0, &b.h1);
        if (take_max) {
            FC_FN(adaptive_max_row_)(xp, g, b, y + o, indices ? indices + o : NULL);
            continue;
        }
        for (int64_t ow = 0; ow < oW; ++ow) {
            fc_adaptive_bin(ow, W, oW, &b.w0, &b.w1);
            y[o + ow] = FC_FN(adaptive_bin_mean_)(xp, H, W, &b);
        }
    }
}

/* fc_global_avg_pool: the mean of each whole plane (adaptive pooling to one
 * bin per plane, the head of most classification nets).  The general rows
 * above pay per bin for the bin's bounds, its runs and a 16-lane fold, and
 * GCC left their lane arrays scalar for float32; a global-pool plane is short
 * (7x7 = 49 values in ResNet), so that overhead was most of the time.  Here
 * FC_GAP_PLANES neighbouring planes are summed at once, each in one vector of
 * partial sums (explicit vector types, loaded unaligned): the planes' chains
 * are independent, the lanes stay in registers, and the tail of a plane
 * (fewer values than lanes) goes into a scalar of its own.  The same order on
 * every instruction set.  Threads own blocks of planes.  `prefetch` (the
 * plan's choice, for inputs larger than a cache) asks for the planes a few
 * blocks ahead: float64 ResNet heads streamed from memory ran at two thirds
 * of PyTorch's speed without it, inputs already in cache slower with it. */
#ifndef FC_GAP_SHARED
#define FC_GAP_SHARED
#define FC_GAP_PLANES 4
#define FC_GAP_BYTES 32
/* With `prefetch`, blocks this far ahead are prefetched, one cache line of
 * 64 bytes at a time: the farthest of the two distances tried (3 and 8). */
#define FC_GAP_PREFETCH_BLOCKS 8
#endif
/* Lanes of one partial-sum vector: one AVX2 register (two SSE2 registers in
 * the generic table); wider vectors were lowered through memory for float64. */
#define FC_GAP_LANES ((int64_t)(FC_GAP_BYTES / sizeof(SCALAR)))

/* FC_GAP_LANES values of one dtype, loaded from any address: GCC did not
 * vectorise the same loop written with scalar lane arrays for float32. */
typedef SCALAR FC_FN(gap_vec_)
    __attribute__((vector_size(FC_GAP_BYTES), aligned(sizeof(SCALAR))));

/* Sums of `count` (<= FC_GAP_PLANES) planes of n values starting at x. */
POOL_TARGET static inline void FC_FN(sum_planes_)(const SCALAR *x, int64_t n, int count,
                                                  SCALAR sums[FC_GAP_PLANES])
{
    typedef FC_FN(gap_vec_) vec;
    vec lane[FC_GAP_PLANES] = {{0}};
    SCALAR tail[FC_GAP_PLANES] = {0};
    const int64_t body = n - n % FC_GAP_LANES;
    if (count == FC_GAP_PLANES) {
        for (int64_t i = 0; i < body; i += FC_GAP_LANES)
            for (int q = 0; q < FC_GAP_PLANES; ++q) lane[q] += *(const vec *)(x + q * n + i);
    } else {
        for (int q = 0; q < count; ++q)
            for (int64_t i = 0; i < body; i += FC_GAP_LANES)
                lane[q] += *(const vec *)(x + q * n + i);
    }
    for (int q = 0; q < count; ++q)
        for (int64_t i = body; i < n; ++i) tail[q] += x[q * n + i];
    for (int q = 0; q < FC_GAP_PLANES; ++q) {
        SCALAR half[FC_GAP_BYTES / sizeof(SCALAR)];
        memcpy(half, &lane[q], sizeof half);
        for (int h = FC_GAP_LANES / 2; h > 0; h /= 2)
            for (int j = 0; j < h; ++j) half[j] += half[j + h];
        sums[q] = half[0] + tail[q];
    }
}

/* Ask for the cache lines of the planes [from, to) of n values. */
static inline void FC_FN(prefetch_planes_)(const SCALAR *x, int64_t from, int64_t to,
                                           int64_t n)
{
    const char *first = (const char *)(x + from * n), *end = (const char *)(x + to * n);
    for (const char *line = first; line < end; line += 64) __builtin_prefetch(line);
}

POOL_TARGET static void FC_FN(global_avg_pool_)(const void *x_, const fc_geometry *g,
                                                int prefetch, void *y_, int nthreads)
{
    const SCALAR *x = x_;
    SCALAR *y = y_;
    const int64_t planes = g->channels, n = fc_spatial_size(g->in);
    const int64_t blocks = (planes + FC_GAP_PLANES - 1) / FC_GAP_PLANES;
    const int nt = fc_threads_for(nthreads, planes * n);
    (void)nt;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
    for (int64_t b = 0; b < blocks; ++b) {
        const int64_t p0 = b * FC_GAP_PLANES;
        const int count = (int)(planes - p0 < FC_GAP_PLANES ? planes - p0 : FC_GAP_PLANES);
        SCALAR sums[FC_GAP_PLANES];
        if (prefetch) {
            const int64_t ahead = p0 + FC_GAP_PREFETCH_BLOCKS * FC_GAP_PLANES;
            if (ahead < planes)
                FC_FN(prefetch_planes_)(x, ahead, ahead + count < planes ? ahead + count
                                                                       : planes, n);
        }
        FC_FN(sum_planes_)(x + p0 * n, n, count, sums);
        for (int q = 0; q < count; ++q) y[p0 + q] = sums[q] / (SCALAR)n;
    }
}
#undef FC_GAP_LANES

/* fc_adaptive_max_pool (its backward is max pooling's scatter-add). */
static void FC_FN(adaptive_max_pool_)(const void *x, const fc_geometry *g, void *y,
                                      int64_t *indices, int nthreads)
{
    FC_FN(adaptive_pool_rows_)(x, g, y, 1, indices, nthreads);
}

/* fc_adaptive_avg_pool. */
static void FC_FN(adaptive_avg_pool_)(const void *x, const fc_geometry *g, void *y,
                                      int nthreads)
{
    FC_FN(adaptive_pool_rows_)(x, g, y, 0, NULL, nthreads);
}

/* fc_adaptive_avg_pool_backward. */
POOL_TARGET static void FC_FN(adaptive_avg_pool_backward_)(const void *gy_, const fc_geometry *g,
                                                           void *gx_, int nthreads)
{
    const SCALAR *gy = gy_;
    SCALAR *gx = gx_;
    const int64_t H = g->in[1], W = g->in[2];
    const int64_t in_plane = fc_spatial_size(g->in), out_plane = fc_spatial_size(g->out);
    /* Output sizes dividing the input's make bins that tile the plane: each
     * input value then lies in one bin and is written once, not zeroed and
     * added to. */
    const int tiled = g->in[0] % g->out[0] == 0 && H % g->out[1] == 0 && W % g->out[2] == 0;
    const int nt = fc_threads_for(nthreads, g->channels * in_plane);
    fc_stop *stop = fc_stop_flag();
    /* Bins overlap by at most one row/column: about 8 x in_plane per plane. */
    const int64_t poll_every = fc_stop_period(8 * in_plane + out_plane);
    (void)nt;
    /* Bins may overlap: whole planes per thread. */
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
    for (int64_t p = 0; p < g->channels; ++p) {
        const SCALAR *gyp = gy + p * out_plane;
        if (fc_stopping_at(stop, p, poll_every)) continue;
        SCALAR *gxp = gx + p * in_plane;
        if (!tiled) memset(gxp, 0, (size_t)in_plane * sizeof(SCALAR));
        for (int64_t od = 0; od < g->out[0]; ++od) {
            int64_t d0, d1;
            fc_adaptive_bin(od, g->in[0], g->out[0], &d0, &d1);
            for (int64_t oh = 0; oh < g->out[1]; ++oh) {
                int64_t h0, h1;
                fc_adaptive_bin(oh, H, g->out[1], &h0, &h1);
                for (int64_t ow = 0; ow < g->out[2]; ++ow, ++gyp) {
                    int64_t w0, w1;
                    fc_adaptive_bin(ow, W, g->out[2], &w0, &w1);
                    const fc_pool_bin_runs r = fc_pool_bin_runs_of(d0, d1, h0, h1, w0, w1, H, W);
                    const SCALAR v = *gyp / (SCALAR)(r.outer * r.inner * r.length);
                    FC_FN(spread_over_bin_)(gxp, &r, v, tiled);
                }
            }
        }
    }
}

#undef FC_AVG_DIVISOR
#undef POOL_TARGET
