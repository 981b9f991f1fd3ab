/* C-level test driver for the kernels in csrc/: no Python, no NumPy.
 *
 * Compares every kernel (im2col/col2im, packed-A/B im2col + packed GEMM,
 * depthwise forward/backward (at every SIMD level), GEMM, max/avg/adaptive pooling forward and
 * backward, adaptive max pooling, interpolation, deformable convolution's
 * column kernels, batch normalisation, activations, PReLU, softmax,
 * cross-entropy and strided copies) against naive loops written here, on
 * boundary shapes
 * (1x1 images, kernel == input, stride > kernel, padding larger than the
 * kernel, dilation, batch/channels 1, 1-D and 3-D) and on random small
 * geometries, in both dtypes, both column layouts, with 1 and 2 threads and
 * on every instruction set's kernel table this CPU can run.
 * Every buffer is malloc'ed at its exact size, so under -fsanitize=address
 * (the Makefile's default) any out-of-bounds access aborts.
 *
 * Build and run: make -C csrc/tests run   (see CONTRIBUTING.md)
 * Adding a kernel: a naive_*() twin and a check_*() loop below.
 */
#define _POSIX_C_SOURCE 200112L   /* posix_memalign */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fastconv.h"

/* The fc_dtype of each check's SFX. */
#define DT_f32 FC_FLOAT32
#define DT_f64 FC_FLOAT64

static int64_t passed, failed;

/* Deterministic xorshift: the same cases on every machine. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static int64_t rnd_int(int64_t lo, int64_t hi) { return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1)); }
static double rnd_val(void) { return (double)(rnd() % 2001) / 1000.0 - 1.0; }

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) { fprintf(stderr, "out of memory\n"); exit(2); }
    return p;
}

/* Exact size on a cache line, as NumPy outputs from fastconv are: the
 * kernels' streaming stores need aligned rows (sanitizers still see ends). */
static void *xmalloc_line(size_t n)
{
    void *p = NULL;
    if (posix_memalign(&p, 64, n ? n : 1) != 0) { fprintf(stderr, "out of memory\n"); exit(2); }
    return p;
}

static void report(int ok, const char *what, const fc_geometry *g, int64_t batch,
                   int layout, int nthreads, double err)
{
    if (ok) { ++passed; return; }
    ++failed;
    if (failed <= 20)
        fprintf(stderr, "FAIL %s: batch=%lld C=%lld in=(%lld,%lld,%lld) out=(%lld,%lld,%lld) "
                "k=(%lld,%lld,%lld) s=(%lld,%lld,%lld) p=(%lld,%lld,%lld) d=(%lld,%lld,%lld) "
                "layout=%d threads=%d err=%g\n", what, (long long)batch, (long long)g->channels,
                (long long)g->in[0], (long long)g->in[1], (long long)g->in[2],
                (long long)g->out[0], (long long)g->out[1], (long long)g->out[2],
                (long long)g->kernel[0], (long long)g->kernel[1], (long long)g->kernel[2],
                (long long)g->stride[0], (long long)g->stride[1], (long long)g->stride[2],
                (long long)g->pad[0], (long long)g->pad[1], (long long)g->pad[2],
                (long long)g->dilation[0], (long long)g->dilation[1], (long long)g->dilation[2],
                layout, nthreads, err);
}

/* Output size with `extra` trailing padding on top of the leading `pad`
 * (padding='same' with an odd total pads one more after); 0 if empty. */
static int64_t out_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t extra, int64_t d)
{
    int64_t span = in + 2 * p + extra - d * (k - 1) - 1;
    return span < 0 ? 0 : span / s + 1;
}

static int64_t prod3(const int64_t *v) { return v[0] * v[1] * v[2]; }

/* ------------------------------------------------------------ im2col/col2im */
/* Column index of (image b, row r, output position o) in a layout. */
static int64_t col_index(fc_col_layout lay, int64_t b, int64_t r, int64_t o)
{
    return b * lay.batch_stride + r * lay.row_stride + o;
}

/* Runs the body for every (image b, channel c, tap, output position o) with
 * r the column row, ii the input index and inside = 0 for padding taps. */
#define FOR_EACH_TAP(g, batch, ...)                                                     \
    for (int64_t b = 0; b < (batch); ++b)                                                \
    for (int64_t c = 0; c < (g)->channels; ++c)                                          \
    for (int64_t kd = 0; kd < (g)->kernel[0]; ++kd)                                      \
    for (int64_t kh = 0; kh < (g)->kernel[1]; ++kh)                                      \
    for (int64_t kw = 0; kw < (g)->kernel[2]; ++kw)                                      \
    for (int64_t od = 0; od < (g)->out[0]; ++od)                                         \
    for (int64_t oh = 0; oh < (g)->out[1]; ++oh)                                         \
    for (int64_t ow = 0; ow < (g)->out[2]; ++ow) {                                       \
        const int64_t id = od * (g)->stride[0] - (g)->pad[0] + kd * (g)->dilation[0];    \
        const int64_t ih = oh * (g)->stride[1] - (g)->pad[1] + kh * (g)->dilation[1];    \
        const int64_t iw = ow * (g)->stride[2] - (g)->pad[2] + kw * (g)->dilation[2];    \
        const int64_t r = c * prod3((g)->kernel) + (kd * (g)->kernel[1] + kh) * (g)->kernel[2] + kw; \
        const int64_t o = (od * (g)->out[1] + oh) * (g)->out[2] + ow;                    \
        const int inside = id >= 0 && id < (g)->in[0] && ih >= 0 && ih < (g)->in[1]      \
                           && iw >= 0 && iw < (g)->in[2];                                \
        const int64_t ii = (((b * (g)->channels + c) * (g)->in[0] + id) * (g)->in[1] + ih) \
                           * (g)->in[2] + iw;                                            \
        __VA_ARGS__                                                                      \
    }

#define DEFINE_UNFOLD_CHECK(T, SFX)                                                      \
static void check_unfold_##SFX(const fc_geometry *g, int64_t batch, int layout_kind,    \
                               int nthreads)                                            \
{                                                                                       \
    const int64_t rows = g->channels * prod3(g->kernel), L = prod3(g->out);             \
    const int64_t n_im = batch * g->channels * prod3(g->in), n_col = batch * rows * L;  \
    fc_col_layout lay = layout_kind == 0 ? (fc_col_layout){rows * L, L}                 \
                                         : (fc_col_layout){L, batch * L};               \
    T *im = xmalloc(sizeof(T) * n_im), *col = xmalloc(sizeof(T) * n_col);               \
    T *want_col = xmalloc(sizeof(T) * n_col), *im2 = xmalloc(sizeof(T) * n_im);         \
    double *want_im = xmalloc(sizeof(double) * n_im);                                   \
    for (int64_t i = 0; i < n_im; ++i) im[i] = (T)rnd_val();                            \
    for (int64_t i = 0; i < n_col; ++i) col[i] = (T)12345;  /* must be overwritten */   \
    memset(want_col, 0, sizeof(T) * n_col);                                             \
    FOR_EACH_TAP(g, batch, { want_col[col_index(lay, b, r, o)] = inside ? im[ii] : 0; }) \
    fc_im2col(DT_##SFX, im, batch, g, lay, col, nthreads);                                  \
    int ok = memcmp(col, want_col, sizeof(T) * n_col) == 0;  /* a copy: exact */        \
    report(ok, "im2col_" #SFX, g, batch, layout_kind, nthreads, 0);                     \
    /* col2im of the columns: every input counted once per tap that sees it. */        \
    for (int64_t i = 0; i < n_im; ++i) { im2[i] = (T)12345; want_im[i] = 0; }           \
    FOR_EACH_TAP(g, batch, { if (inside) want_im[ii] += (double)col[col_index(lay, b, r, o)]; }) \
    fc_col2im(DT_##SFX, col, batch, g, lay, im2, nthreads);                                 \
    double err = 0;                                                                     \
    for (int64_t i = 0; i < n_im; ++i) {                                                \
        double e = fabs((double)im2[i] - want_im[i]);                                   \
        if (!(e <= err)) err = e;  /* catches NaN too */                                \
    }                                                                                   \
    report(err < 1e-4, "col2im_" #SFX, g, batch, layout_kind, nthreads, err);           \
    free(im); free(col); free(want_col); free(im2); free(want_im);                      \
}
DEFINE_UNFOLD_CHECK(float, f32)
DEFINE_UNFOLD_CHECK(double, f64)

static void check_unfold_all(const fc_geometry *g, int64_t batch)
{
    for (int level = 0; level <= FC_SIMD_AVX512; ++level) {
        if (fc_simd_select(level) < 0) continue;
        for (int layout = 0; layout < 2; ++layout)
            for (int nthreads = 1; nthreads <= 2; ++nthreads) {
                check_unfold_f32(g, batch, layout, nthreads);
                check_unfold_f64(g, batch, layout, nthreads);
            }
    }
    fc_simd_select(-1);
}

/* ------------------------------------------------- implicit-GEMM convolution */
/* One growing buffer for the conv's multi-MiB workspace: mapping fresh pages
 * per check made this section dominate the run under ASan. */
static void *scratch(size_t n)
{
    static void *buf;
    static size_t cap;
    if (n > cap) {
        free(buf);
        buf = xmalloc(n);
        cap = n;
    }
    return buf;
}

/* 1x1 kernel, stride 1, no padding: the schedule may read images in place. */
static int is_pointwise(const fc_geometry *g)
{
    for (int a = 0; a < 3; ++a)
        if (g->kernel[a] != 1 || g->stride[a] != 1 || g->pad[a] != 0 || g->out[a] != g->in[a])
            return 0;
    return 1;
}

/* fc_conv_forward must equal the direct sum, per image and side by side (the
 * GEMM's tiles across two images' blocks of y included), with groups, on the schedule
 * (over_images, stream) given; per_image == WINOGRAD checks fc_conv_winograd
 * instead (per-image layout). */
#define WINOGRAD 2
#define DEFINE_CONV_CHECK(T, SFX, TOL)                                                  \
static void check_conv_##SFX(const fc_geometry *g, int64_t batch, int64_t groups,       \
                             int64_t c_out, int with_bias, int per_image, int over_images, \
                             int stream, int nthreads)                                  \
{                                                                                       \
    const fc_conv_schedule sched = {per_image == 1, over_images, stream,                \
                                    per_image == 1 && is_pointwise(g)};                 \
    const int64_t C = g->channels, taps = prod3(g->kernel), L = prod3(g->out);          \
    const int64_t cig = C / groups, cog = c_out / groups;                               \
    const int64_t n_x = batch * C * prod3(g->in), n_y = batch * c_out * L;              \
    const int64_t n_w = c_out * cig * taps;                                             \
    const int wino = per_image == WINOGRAD;                                             \
    const int64_t n_ws = wino ? fc_conv_winograd_workspace(DT_##SFX, g, groups, c_out, nthreads) \
                              : fc_conv_workspace(DT_##SFX, g, batch, c_out, &sched, nthreads);  \
    T *x = xmalloc(sizeof(T) * n_x), *w = xmalloc(sizeof(T) * n_w);                     \
    T *y = xmalloc_line(sizeof(T) * n_y), *ws = scratch(sizeof(T) * n_ws);              \
    T *bias = xmalloc(sizeof(T) * c_out);                                               \
    for (int64_t i = 0; i < c_out; ++i) bias[i] = with_bias ? (T)rnd_val() : 0;        \
    int64_t *offsets = xmalloc(sizeof(int64_t) * C * taps);                             \
    double *want = xmalloc(sizeof(double) * n_y);                                       \
    for (int64_t i = 0; i < n_x; ++i) x[i] = (T)rnd_val();                              \
    for (int64_t i = 0; i < n_w; ++i) w[i] = (T)rnd_val();                              \
    for (int64_t i = 0; i < n_y; ++i) {                                                 \
        const int64_t oc = i / L % c_out;                                               \
        y[i] = (T)777;                                                                  \
        want[i] = bias[oc];                                                             \
    }                                                                                   \
    /* Stale scratch must not leak: poison the part before the GEMM's. */              \
    for (int64_t i = 0; i < n_ws - (wino ? 0 : fc_gemm_workspace(DT_##SFX, nthreads)); ++i) \
        ws[i] = (T)NAN;                                                                 \
    FOR_EACH_TAP(g, batch, {                                                            \
        if (inside) {                                                                   \
            const int64_t grp = c / cig, tap = r - c * taps;                            \
            for (int64_t oc = grp * cog; oc < (grp + 1) * cog; ++oc) {                  \
                const int64_t yi = (b * c_out + oc) * L + o;                            \
                want[yi] += (double)x[ii] * (double)w[(oc * cig + c % cig) * taps + tap]; \
            }                                                                           \
        }                                                                               \
    })                                                                                  \
    int ok = 1;                                                                         \
    if (wino)                                                                           \
        ok = fc_conv_winograd(DT_##SFX, x, batch, g, groups, w, with_bias ? bias : NULL, \
                              c_out, y, ws, nthreads) == 0;                             \
    else                                                                                \
        ok = fc_conv_forward(DT_##SFX, x, batch, g, groups, w, with_bias ? bias : NULL,   \
                             c_out, y, &sched, ws, offsets, nthreads) == 0;             \
    double err = 0;                                                                     \
    for (int64_t i = 0; i < n_y; ++i) {                                                 \
        double e = fabs((double)y[i] - want[i]);                                        \
        if (!(e <= err)) err = e;                                                       \
    }                                                                                   \
    /* Winograd's transforms round a few times more than the direct sum. */            \
    report(ok && err <= (wino ? 4 : 1) * TOL * (cig * taps + 1),                        \
           wino ? "conv_winograd_" #SFX : per_image ? "conv_forward_" #SFX " per image"  \
           : "conv_forward_" #SFX " side by side", g, batch, (int)groups, nthreads, err); \
    free(x); free(w); free(y); free(bias); free(offsets); free(want);                   \
}
DEFINE_CONV_CHECK(float, f32, 1e-5)
DEFINE_CONV_CHECK(double, f64, 1e-12)

/* fc_conv_data_grad_* must equal the adjoint sum: every tap of every output
 * adds w * grad_out to the input position it read (padding taps add nothing). */
#define DEFINE_DGRAD_CHECK(T, SFX, TOL)                                                 \
static void check_dgrad_##SFX(const fc_geometry *g, int64_t batch, int64_t groups,      \
                              int64_t c_out, int over_images, int nthreads)             \
{                                                                                       \
    const fc_conv_schedule sched = {1, over_images, 0, 0};                              \
    const int64_t C = g->channels, taps = prod3(g->kernel), L = prod3(g->out);          \
    const int64_t cig = C / groups, cog = c_out / groups;                               \
    const int64_t n_x = batch * C * prod3(g->in), n_y = batch * c_out * L;              \
    const int64_t n_w = c_out * cig * taps;                                             \
    const int64_t n_ws = fc_conv_data_grad_workspace(DT_##SFX, g, nthreads);               \
    T *gy = xmalloc(sizeof(T) * n_y), *w = xmalloc(sizeof(T) * n_w);                    \
    T *gx = xmalloc(sizeof(T) * n_x), *ws = scratch(sizeof(T) * n_ws);                  \
    double *want = xmalloc(sizeof(double) * n_x);                                       \
    for (int64_t i = 0; i < n_y; ++i) gy[i] = (T)rnd_val();                             \
    for (int64_t i = 0; i < n_w; ++i) w[i] = (T)rnd_val();                              \
    for (int64_t i = 0; i < n_x; ++i) { gx[i] = (T)777; want[i] = 0; }                  \
    for (int64_t i = 0; i < n_ws; ++i) ws[i] = (T)NAN;                                  \
    FOR_EACH_TAP(g, batch, {                                                            \
        if (inside) {                                                                   \
            const int64_t grp = c / cig, tap = r - c * taps;                            \
            for (int64_t oc = grp * cog; oc < (grp + 1) * cog; ++oc)                    \
                want[ii] += (double)gy[(b * c_out + oc) * L + o]                        \
                            * (double)w[(oc * cig + c % cig) * taps + tap];             \
        }                                                                               \
    })                                                                                  \
    fc_conv_data_grad(DT_##SFX, gy, batch, g, groups, w, c_out, gx, &sched, ws, nthreads);          \
    double err = 0;                                                                     \
    for (int64_t i = 0; i < n_x; ++i) {                                                 \
        double e = fabs((double)gx[i] - want[i]);                                       \
        if (!(e <= err)) err = e;                                                       \
    }                                                                                   \
    report(err <= TOL * (cog * taps + 1), "conv_data_grad_" #SFX, g, batch, (int)groups, \
           nthreads, err);                                                              \
    free(gy); free(w); free(gx); free(want);                                            \
}
DEFINE_DGRAD_CHECK(float, f32, 1e-5)
DEFINE_DGRAD_CHECK(double, f64, 1e-12)

/* Every SIMD level and thread count; per image on both schedules (threads
 * take whole images and stream the output, or split each image and store
 * normally), side by side, and the data gradient on both thread splits. */
static void check_conv_all(const fc_geometry *g, int64_t batch)
{
    for (int level = 0; level <= FC_SIMD_AVX512; ++level) {
        if (fc_simd_select(level) < 0) continue;
        for (int nthreads = 1; nthreads <= 2; ++nthreads)
            for (int mode = 0; mode <= 2; ++mode) {   /* side by side, per image x 2 */
                const int per_image = mode > 0, fast = mode == 1;
                /* c_out 7: not a multiple of any micro-tile height. */
                check_conv_f32(g, batch, 1, 7, 1, per_image, fast, fast, nthreads);
                check_conv_f64(g, batch, 1, 7, 1, per_image, fast, fast, nthreads);
                if (per_image) {  /* the data gradient has one layout */
                    check_dgrad_f32(g, batch, 1, 7, fast, nthreads);
                    check_dgrad_f64(g, batch, 1, 7, fast, nthreads);
                    if (g->channels % 2 == 0) check_dgrad_f32(g, batch, 2, 6, fast, nthreads);
                }
                if (g->channels % 2 == 0) {
                    check_conv_f32(g, batch, 2, 6, nthreads == 1, per_image, fast, !fast,
                                   nthreads);
                    check_conv_f64(g, batch, 2, 6, nthreads == 1, per_image, fast, !fast,
                                   nthreads);
                }
            }
    }
    fc_simd_select(-1);
}

/* ------------------------------------------------------- fused weight gradient */
/* fc_conv_weight_grad_* must add grad_out @ columns^T to grad_w.  Odd m use
 * padded strides (as one group of a grouped conv does: x and grad_out rows of
 * other groups between images, grad_w rows wider than K); even m use tight
 * buffers, so a read past the images would trip AddressSanitizer. */
#define DEFINE_WGRAD_CHECK(T, SFX, TOL)                                                 \
static void check_wgrad_##SFX(const fc_geometry *g, int64_t batch, int64_t m, int nthreads, \
                              int wino)                                                 \
{                                                                                       \
    const int64_t rows = g->channels * prod3(g->kernel), L = prod3(g->out);             \
    const int64_t plane = prod3(g->in), pad = m % 2;                                    \
    const int64_t xs = (g->channels + pad) * plane, gs = (m + 2 * pad) * L;             \
    const int64_t ldw = rows + 3 * pad;                                                 \
    T *x = xmalloc(sizeof(T) * batch * xs), *gy = xmalloc(sizeof(T) * batch * gs);      \
    T *gw = xmalloc(sizeof(T) * m * ldw);                                               \
    double *want = xmalloc(sizeof(double) * m * ldw);                                   \
    T *ws = xmalloc(sizeof(T) * (wino ? fc_conv_winograd_weight_grad_workspace(DT_##SFX, g, m, nthreads) \
                                      : fc_conv_weight_grad_workspace(DT_##SFX, m, rows, nthreads))); \
    for (int64_t i = 0; i < batch * xs; ++i) x[i] = (T)rnd_val();                       \
    for (int64_t i = 0; i < batch * gs; ++i) gy[i] = (T)rnd_val();                      \
    for (int64_t i = 0; i < m * ldw; ++i) want[i] = gw[i] = (T)rnd_val();  /* += */     \
    FOR_EACH_TAP(g, batch, {                                                            \
        (void)ii;  /* x has its own image stride here */                               \
        if (inside) {                                                                   \
            const T v = x[b * xs + c * plane + (id * g->in[1] + ih) * g->in[2] + iw];   \
            for (int64_t i = 0; i < m; ++i)                                             \
                want[i * ldw + r] += (double)gy[b * gs + i * L + o] * (double)v;        \
        }                                                                               \
    })                                                                                  \
    if (wino)                                                                           \
        fc_conv_winograd_weight_grad(DT_##SFX, x, xs, gy, gs, batch, g, m, gw, ldw, ws, nthreads); \
    else                                                                                \
        fc_conv_weight_grad(DT_##SFX, x, xs, gy, gs, batch, g, m, gw, ldw, ws, nthreads);   \
    double err = 0;                                                                     \
    for (int64_t i = 0; i < m; ++i)                                                     \
        for (int64_t j = 0; j < ldw; ++j) {                                             \
            const double e = fabs((double)gw[i * ldw + j] - want[i * ldw + j]);         \
            if (!(e <= err)) err = e;                                                   \
        }                                                                               \
    report(err <= (wino ? 4 : 1) * TOL * (double)(batch * L + 1),                       \
           wino ? "conv_winograd_weight_grad_" #SFX : "conv_weight_grad_" #SFX, g, batch, \
           (int)m, nthreads, err);                                                      \
    free(x); free(gy); free(gw); free(want); free(ws);                                  \
}
DEFINE_WGRAD_CHECK(float, f32, 1e-5)
DEFINE_WGRAD_CHECK(double, f64, 1e-12)

/* Every SIMD level, 1 and 2 threads, m below, at and past a micro-tile. */
static void check_wgrad_all(const fc_geometry *g, int64_t batch)
{
    static const int64_t ms[] = {1, 8, 13};
    for (int level = 0; level <= FC_SIMD_AVX512; ++level) {
        if (fc_simd_select(level) < 0) continue;
        for (int nthreads = 1; nthreads <= 2; ++nthreads)
            for (size_t i = 0; i < sizeof ms / sizeof ms[0]; ++i) {
                check_wgrad_f32(g, batch, ms[i], nthreads, 0);
                check_wgrad_f64(g, batch, ms[i], nthreads, 0);
            }
    }
    fc_simd_select(-1);
}

/* ------------------------------------------------------------------ depthwise */
/* Input channel c is in group c / cig (cig = group_channels input channels
 * per group, 1: depthwise), whose mult output channels co = group * mult + m
 * read it with weight (co, c % cig, tap).  report()'s layout field shows
 * mult + 100 * cig. */
#define DEFINE_DEPTHWISE_CHECK(T, SFX, TOL)                                             \
static void check_depthwise_##SFX(const fc_geometry *g, int64_t batch, int64_t mult,    \
                                  int64_t cig, int nthreads)                            \
{                                                                                       \
    const int64_t C = g->channels, taps = prod3(g->kernel), L = prod3(g->out);          \
    const int64_t c_out = C / cig * mult;                                               \
    const int64_t n_x = batch * C * prod3(g->in), n_y = batch * c_out * L;              \
    const int64_t n_w = c_out * cig * taps;                                             \
    T *x = xmalloc(sizeof(T) * n_x), *w = xmalloc(sizeof(T) * n_w);                     \
    T *y = xmalloc(sizeof(T) * n_y), *gy = xmalloc(sizeof(T) * n_y);                    \
    T *gx = xmalloc(sizeof(T) * n_x), *gw = xmalloc(sizeof(T) * n_w);                   \
    double *wy = xmalloc(sizeof(double) * n_y), *wgx = xmalloc(sizeof(double) * n_x);   \
    double *wgw = xmalloc(sizeof(double) * n_w);                                        \
    T *bias = xmalloc(sizeof(T) * c_out);  /* with bias when nthreads is 1 */           \
    for (int64_t i = 0; i < c_out; ++i) bias[i] = nthreads == 1 ? (T)rnd_val() : 0;     \
    for (int64_t i = 0; i < n_x; ++i) { x[i] = (T)rnd_val(); gx[i] = (T)777; wgx[i] = 0; } \
    for (int64_t i = 0; i < n_w; ++i) { w[i] = (T)rnd_val(); gw[i] = (T)777; wgw[i] = 0; } \
    for (int64_t i = 0; i < n_y; ++i) {                                                 \
        gy[i] = (T)rnd_val();                                                           \
        y[i] = (T)777;                                                                  \
        wy[i] = bias[i / L % c_out];                                                    \
    }                                                                                   \
    /* One pass of the im2col loop nest per output m of each group. */                 \
    for (int64_t m = 0; m < mult; ++m) {                                                \
        FOR_EACH_TAP(g, batch, {                                                        \
            if (inside) {                                                               \
                const int64_t co = c / cig * mult + m, tap = r - c * taps;              \
                const int64_t wi = (co * cig + c % cig) * taps + tap;                   \
                const int64_t yi = (b * c_out + co) * L + o;                            \
                wy[yi] += (double)x[ii] * (double)w[wi];                                \
                wgx[ii] += (double)gy[yi] * (double)w[wi];                              \
                wgw[wi] += (double)gy[yi] * (double)x[ii];                              \
            }                                                                           \
        })                                                                              \
    }                                                                                   \
    /* Scratch poisoned before each call: the kernels must zero what they use. */      \
    const int64_t n_ws = fc_depthwise_workspace(DT_##SFX, g, mult, cig, nthreads);      \
    T *ws = scratch(sizeof(T) * n_ws);                                                  \
    for (int64_t i = 0; i < n_ws; ++i) ws[i] = (T)NAN;                                  \
    fc_depthwise_forward(DT_##SFX, x, w, nthreads == 1 ? bias : NULL, batch, g, mult, cig, \
                         y, ws, nthreads);                                              \
    for (int64_t i = 0; i < n_ws; ++i) ws[i] = (T)NAN;                                  \
    fc_depthwise_backward_input(DT_##SFX, gy, w, batch, g, mult, cig, gx, ws, nthreads); \
    for (int64_t i = 0; i < n_ws; ++i) ws[i] = (T)NAN;                                  \
    fc_depthwise_backward_weight(DT_##SFX, gy, x, batch, g, mult, cig, gw, ws, nthreads); \
    double ey = 0, egx = 0, egw = 0;                                                    \
    for (int64_t i = 0; i < n_y; ++i) { double e = fabs(y[i] - wy[i]); if (!(e <= ey)) ey = e; } \
    for (int64_t i = 0; i < n_x; ++i) { double e = fabs(gx[i] - wgx[i]); if (!(e <= egx)) egx = e; } \
    for (int64_t i = 0; i < n_w; ++i) { double e = fabs(gw[i] - wgw[i]); if (!(e <= egw)) egw = e; } \
    const int shown = (int)(mult + 100 * cig);                                          \
    report(ey <= TOL * taps * cig, "depthwise_forward_" #SFX, g, batch, shown, nthreads, ey); \
    report(egx <= TOL * taps * mult, "depthwise_backward_input_" #SFX, g, batch, shown, \
           nthreads, egx);                                                              \
    report(egw <= TOL * (batch * L + 1), "depthwise_backward_weight_" #SFX, g, batch,   \
           shown, nthreads, egw);                                                       \
    free(x); free(w); free(y); free(gy); free(gx); free(gw); free(wy); free(wgx); free(wgw); free(bias); \
}
DEFINE_DEPTHWISE_CHECK(float, f32, 1e-5)
DEFINE_DEPTHWISE_CHECK(double, f64, 1e-12)

/* Each (outputs, input channels) per group of `shapes` whose input channels
 * divide the geometry's, 1 and 2 threads, every SIMD level. */
static void check_depthwise_shapes(const fc_geometry *g, int64_t batch, const int64_t (*shapes)[2],
                                   size_t count)
{
    for (int level = FC_SIMD_GENERIC; level <= FC_SIMD_AVX512; ++level) {
        if (fc_simd_select(level) < 0) continue;
        for (size_t i = 0; i < count; ++i) {
            if (g->channels % shapes[i][1]) continue;
            for (int nthreads = 1; nthreads <= 2; ++nthreads) {
                check_depthwise_f32(g, batch, shapes[i][0], shapes[i][1], nthreads);
                check_depthwise_f64(g, batch, shapes[i][0], shapes[i][1], nthreads);
            }
        }
    }
    fc_simd_select(-1);
}

/* Depthwise with every multiplier up to max_mult (2 or 3), and groups of 2
 * and of 3 input channels (where they divide the geometry's). */
static void check_depthwise_mults(const fc_geometry *g, int64_t batch, int64_t max_mult)
{
    static const int64_t shapes[][2] = {{1, 1}, {2, 1}, {2, 2}, {1, 3}, {3, 1}};
    check_depthwise_shapes(g, batch, shapes, max_mult >= 3 ? 5 : 4);
}

static void check_depthwise_all(const fc_geometry *g, int64_t batch)
{
    check_depthwise_mults(g, batch, 2);
}

/* Every kernel that takes a window geometry, on one geometry. */
static void check_geometry_kernels(const fc_geometry *g, int64_t batch)
{
    check_unfold_all(g, batch);
    check_conv_all(g, batch);
    check_wgrad_all(g, batch);
    check_depthwise_all(g, batch);
}

/* Geometry from per-axis (in, k, s, p, d) with `extra` trailing padding;
 * returns 0 (and skips) when the output would be empty. */
static int make_geometry(fc_geometry *g, int64_t channels, const int64_t in[3],
                         const int64_t k[3], const int64_t s[3], const int64_t p[3],
                         const int64_t d[3], const int64_t extra[3])
{
    g->channels = channels;
    for (int a = 0; a < 3; ++a) {
        g->in[a] = in[a]; g->kernel[a] = k[a]; g->stride[a] = s[a];
        g->pad[a] = p[a]; g->dilation[a] = d[a];
        g->out[a] = out_size(in[a], k[a], s[a], p[a], extra[a], d[a]);
        if (g->out[a] < 1) return 0;
    }
    return 1;
}

/* fc_conv_winograd_* and fc_conv_winograd_weight_grad_* on random 2-D 3x3
 * stride-1 geometries: odd and even
 * outputs, padding 0-3, 1-wide outputs, channel counts off every MR, groups,
 * and blocks of tiles that span images (tiny images, batch up to 5). */
static void test_winograd(int count)
{
    for (int i = 0; i < count; ++i) {
        fc_geometry g;
        const int64_t groups = rnd_int(1, 2), batch = rnd_int(1, 5);
        const int64_t in[3] = {1, rnd_int(1, 19), rnd_int(1, 19)};
        const int64_t k[3] = {1, 3, 3}, s[3] = {1, 1, 1}, d[3] = {1, 1, 1};
        const int64_t p[3] = {0, rnd_int(0, 3), rnd_int(0, 3)};
        const int64_t extra[3] = {0, rnd_int(0, 1), rnd_int(0, 1)};
        const int64_t c_out = groups * rnd_int(1, 20);
        if (!make_geometry(&g, groups * rnd_int(1, 40), in, k, s, p, d, extra)) continue;
        for (int level = 0; level <= FC_SIMD_AVX512; ++level) {
            if (fc_simd_select(level) < 0) continue;
            const int nthreads = 1 + (i + level) % 2;
            check_conv_f32(&g, batch, groups, c_out, i % 2, WINOGRAD, 0, 0, nthreads);
            check_conv_f64(&g, batch, groups, c_out, i % 2 == 0, WINOGRAD, 0, 0, nthreads);
            /* odd m: x, grad_out and grad_w rows with gaps (one group's view) */
            check_wgrad_f32(&g, batch, c_out / groups, nthreads, 1);
            check_wgrad_f64(&g, batch, c_out / groups + 1, nthreads, 1);
        }
    }
    fc_simd_select(-1);
}

/* Winograd at batch 1 (one image, few tiles), where threads split each
 * block's output channels (forward) or its 16 products (weight gradient):
 * 1x1, 7x7, 13x13 and 14x14 maps (49 tiles: one past AVX-512's 48 a block
 * at 256 channels, where the last block takes the remainder; 256 x 96
 * channels are enough work for 2 threads), channel counts off every MR and
 * NR, 1 and 2 threads, every level. */
static void test_winograd_batch1(void)
{
    static const int64_t sides[] = {1, 7, 13, 14};
    static const int64_t channels[][2] = {{19, 21}, {33, 70}, {256, 96}};   /* in, out */
    for (size_t i = 0; i < sizeof sides / sizeof sides[0]; ++i)
        for (size_t j = 0; j < sizeof channels / sizeof channels[0]; ++j) {
            fc_geometry g;
            const int64_t in[3] = {1, sides[i], sides[i]}, k[3] = {1, 3, 3};
            const int64_t s[3] = {1, 1, 1}, d[3] = {1, 1, 1}, p[3] = {0, 1, 1};
            const int64_t extra[3] = {0, 0, 0}, c_out = channels[j][1];
            if (!make_geometry(&g, channels[j][0], in, k, s, p, d, extra)) continue;
            for (int level = 0; level <= FC_SIMD_AVX512; ++level) {
                if (fc_simd_select(level) < 0) continue;
                for (int nthreads = 1; nthreads <= 2; ++nthreads) {
                    check_conv_f32(&g, 1, 1, c_out, 1, WINOGRAD, 0, 0, nthreads);
                    check_conv_f64(&g, 1, 1, c_out, 0, WINOGRAD, 0, 0, nthreads);
                    check_wgrad_f32(&g, 1, c_out, nthreads, 1);
                    check_wgrad_f64(&g, 1, c_out + 1, nthreads, 1);
                }
            }
        }
    fc_simd_select(-1);
}

/* Winograd where more blocks than threads are not a multiple of them
 * (wino_thread_blocks_ cuts the tiles again into equal blocks): 20 images
 * of 64 channels on 8x8 maps, 320 tiles (AVX-512 float32: 3 blocks of 96 ->
 * 4 of 80; weight gradient 3 of 128 -> 2 of 160; float64 7 of 48 -> 6 of
 * 54), 1 and 2 threads, every level. */
static void test_winograd_thread_blocks(void)
{
    fc_geometry g;
    const int64_t in[3] = {1, 8, 8}, k[3] = {1, 3, 3}, s[3] = {1, 1, 1}, d[3] = {1, 1, 1};
    const int64_t p[3] = {0, 1, 1}, extra[3] = {0, 0, 0};
    if (!make_geometry(&g, 64, in, k, s, p, d, extra)) return;
    for (int level = 0; level <= FC_SIMD_AVX512; ++level) {
        if (fc_simd_select(level) < 0) continue;
        for (int nthreads = 1; nthreads <= 2; ++nthreads) {
            check_conv_f32(&g, 20, 1, 64, 1, WINOGRAD, 0, 0, nthreads);
            check_conv_f64(&g, 20, 1, 64, 0, WINOGRAD, 0, 0, nthreads);
            check_wgrad_f32(&g, 20, 64, nthreads, 1);
            check_wgrad_f64(&g, 20, 65, nthreads, 1);
        }
    }
    fc_simd_select(-1);
}

/* Winograd on maps whose tile rows are shorter than a vector (the input
 * transform packs several tile rows a vector, the output transform takes a
 * row in one vector step): widths of 1 to 17 tile columns (1-4 tile rows a
 * vector on every level, odd widths, a row of exactly a vector), padding 0-2,
 * batches whose tile rows are no multiple of FC_WINO_SPLIT_RUNS, a tall map
 * of 300 tile rows (past FC_WINO_MAX_RUNS a pass), 1 and 2 threads, both
 * dtypes, every level. */
static void test_winograd_narrow(void)
{
    static const int64_t shapes[][4] = {   /* height, width, padding, batch */
        {8, 8, 1, 3},  {8, 8, 1, 1},  {16, 16, 1, 2}, {9, 7, 0, 3},  {5, 3, 1, 5},
        {6, 1, 1, 2},  {11, 13, 2, 1}, {4, 30, 1, 2}, {3, 34, 0, 1}, {7, 31, 1, 2},
        {600, 6, 1, 1}, {12, 10, 1, 7},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; ++i) {
        fc_geometry g;
        const int64_t in[3] = {1, shapes[i][0], shapes[i][1]}, k[3] = {1, 3, 3};
        const int64_t s[3] = {1, 1, 1}, d[3] = {1, 1, 1};
        const int64_t p[3] = {0, shapes[i][2], shapes[i][2]}, extra[3] = {0, 0, 0};
        const int64_t batch = shapes[i][3], c = 3 + (int64_t)i % 4, c_out = 5 + (int64_t)i % 3;
        if (!make_geometry(&g, c, in, k, s, p, d, extra)) continue;
        for (int level = 0; level <= FC_SIMD_AVX512; ++level) {
            if (fc_simd_select(level) < 0) continue;
            for (int nthreads = 1; nthreads <= 2; ++nthreads) {
                check_conv_f32(&g, batch, 1, c_out, 1, WINOGRAD, 0, 0, nthreads);
                check_conv_f64(&g, batch, 1, c_out, 0, WINOGRAD, 0, 0, nthreads);
                check_wgrad_f32(&g, batch, c_out, nthreads, 1);
                check_wgrad_f64(&g, batch, c_out + 1, nthreads, 1);
            }
        }
    }
    fc_simd_select(-1);
}

static void test_unfold_boundaries(void)
{
    static const struct {
        int64_t batch, channels, in[3], k[3], s[3], p[3], d[3], extra[3];
    } cases[] = {
        {1, 1, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, {1, 1, 1}, {0, 0, 0}},  /* 1x1 image */
        {3, 4, {1, 5, 17}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, {1, 1, 1}, {0, 0, 0}}, /* pointwise */
        {1, 1, {1, 1, 1}, {1, 3, 3}, {1, 1, 1}, {0, 1, 1}, {1, 1, 1}, {0, 0, 0}},  /* 1x1, 3x3 pad 1 */
        {2, 3, {1, 5, 7}, {1, 5, 7}, {1, 1, 1}, {0, 0, 0}, {1, 1, 1}, {0, 0, 0}},  /* kernel == input */
        {1, 2, {1, 9, 9}, {1, 2, 2}, {1, 4, 5}, {0, 0, 0}, {1, 1, 1}, {0, 0, 0}},  /* stride > kernel */
        {2, 1, {1, 3, 4}, {1, 2, 2}, {1, 1, 1}, {0, 5, 6}, {1, 1, 1}, {0, 0, 0}},  /* pad > kernel */
        {1, 2, {1, 2, 2}, {1, 3, 3}, {1, 3, 3}, {0, 4, 4}, {1, 1, 1}, {0, 1, 1}},  /* pad-only taps */
        {1, 2, {1, 9, 10}, {1, 3, 3}, {1, 1, 2}, {0, 2, 1}, {1, 3, 2}, {0, 0, 0}}, /* dilation */
        {3, 1, {1, 1, 17}, {1, 1, 4}, {1, 1, 3}, {0, 0, 2}, {1, 1, 2}, {0, 0, 1}}, /* 1-D */
        {2, 2, {4, 5, 3}, {2, 3, 2}, {2, 1, 1}, {1, 1, 0}, {1, 2, 1}, {0, 0, 1}},  /* 3-D */
        {1, 1, {1, 4, 4}, {1, 2, 2}, {1, 1, 1}, {0, 0, 0}, {1, 1, 1}, {0, 1, 1}},  /* 'same' even k */
        {2, 2, {1, 5, 6}, {1, 3, 3}, {1, 1000000, 1000000}, {0, 1, 1}, {1, 1, 1}, {0, 0, 0}}, /* stride >> input */
        {2, 2, {1, 30, 71}, {1, 3, 3}, {1, 1, 1}, {0, 1, 1}, {1, 1, 1}, {0, 0, 0}}, /* rows > a panel */
        {4, 8, {1, 24, 24}, {1, 3, 3}, {1, 1, 1}, {0, 1, 1}, {1, 1, 1}, {0, 0, 0}}, /* parallel path */
        {2, 4, {6, 10, 10}, {3, 3, 3}, {1, 2, 1}, {1, 1, 1}, {1, 1, 2}, {0, 0, 0}}, /* 3-D parallel */
        /* ResNet's downsampling: 8x8 outputs, so side by side half the GEMM's
         * tiles span two images (and K > one K block) */
        {3, 40, {1, 16, 16}, {1, 3, 3}, {1, 2, 2}, {0, 1, 1}, {1, 1, 1}, {0, 0, 0}},
        /* Stride 2 along W, both phases split from one input row (build_phases_w2_):
         * odd and even widths, no padding, padding past the kernel, dilation,
         * phase rows at FC_PHASE_PAIR_MAX (W 254) and one past it (W 256). */
        {2, 3, {1, 9, 33}, {1, 3, 3}, {1, 2, 2}, {0, 1, 1}, {1, 1, 1}, {0, 0, 0}},
        {2, 3, {1, 8, 18}, {1, 3, 3}, {1, 2, 2}, {0, 0, 0}, {1, 1, 1}, {0, 0, 0}},
        {1, 2, {1, 7, 20}, {1, 2, 2}, {1, 2, 2}, {0, 3, 3}, {1, 1, 1}, {0, 0, 0}},
        {1, 2, {1, 7, 21}, {1, 3, 3}, {1, 1, 2}, {0, 2, 1}, {1, 2, 2}, {0, 0, 0}},
        {1, 2, {1, 5, 254}, {1, 3, 3}, {1, 2, 2}, {0, 1, 1}, {1, 1, 1}, {0, 0, 0}},
        {1, 2, {1, 5, 256}, {1, 3, 3}, {1, 2, 2}, {0, 1, 1}, {1, 1, 1}, {0, 0, 0}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
        fc_geometry g;
        if (!make_geometry(&g, cases[i].channels, cases[i].in, cases[i].k, cases[i].s,
                           cases[i].p, cases[i].d, cases[i].extra)) {
            fprintf(stderr, "boundary case %zu has an empty output: fix the table\n", i);
            ++failed;
            continue;
        }
        check_geometry_kernels(&g, cases[i].batch);
    }
}

/* The fused weight gradient on work big enough to split between threads,
 * with m past one packed A block (512 rows f32, 256 f64) and K rows not a
 * multiple of any NR. */
static void test_wgrad_large(void)
{
    static const int64_t in[3] = {1, 11, 13}, k[3] = {1, 3, 3}, s1[3] = {1, 1, 1},
                         p[3] = {0, 1, 1}, none[3] = {0, 0, 0};
    fc_geometry g;
    make_geometry(&g, 37, in, k, s1, p, s1, none);
    for (int level = 0; level <= FC_SIMD_AVX512; ++level) {
        if (fc_simd_select(level) < 0) continue;
        check_wgrad_f32(&g, 5, 517, 2, 0);
        check_wgrad_f64(&g, 5, 261, 2, 0);
        check_wgrad_f32(&g, 3, 64, 2, 0);
    }
    fc_simd_select(-1);
}

static void test_unfold_random(int count)
{
    for (int done = 0; done < count;) {
        int64_t in[3], k[3], s[3], p[3], d[3], extra[3];
        const int nd = (int)rnd_int(1, 3);
        for (int a = 0; a < 3; ++a) {
            int active = a >= 3 - nd;
            in[a] = active ? rnd_int(1, 8) : 1;
            k[a] = active ? rnd_int(1, 4) : 1;
            s[a] = active ? rnd_int(1, 4) : 1;
            p[a] = active ? rnd_int(0, 4) : 0;
            d[a] = active ? rnd_int(1, 3) : 1;
            extra[a] = active ? rnd_int(0, 1) : 0;
        }
        fc_geometry g;
        if (!make_geometry(&g, rnd_int(1, 3), in, k, s, p, d, extra)) continue;
        check_geometry_kernels(&g, rnd_int(1, 3));
        ++done;
    }
}

/* Depthwise on rows as wide as several vectors (the geometries above are
 * narrower than one AVX-512 vector of floats): widths on either side of the
 * vector widths, strides, dilations, large kernels, 1-D and 3-D, multiplier 3,
 * and work past the parallel threshold. */
static void test_depthwise_wide(int count)
{
    static const struct {
        int64_t batch, channels, in[3], k[3], s[3], p[3], d[3], extra[3];
    } cases[] = {
        {2, 3, {1, 56, 56}, {1, 3, 3}, {1, 1, 1}, {0, 1, 1}, {1, 1, 1}, {0, 0, 0}},  /* MobileNet */
        {1, 2, {1, 7, 33}, {1, 3, 3}, {1, 2, 2}, {0, 1, 1}, {1, 1, 1}, {0, 0, 0}},   /* stride 2 */
        {1, 2, {1, 9, 17}, {1, 9, 9}, {1, 1, 1}, {0, 4, 4}, {1, 1, 1}, {0, 0, 0}},   /* 81 taps */
        {2, 1, {1, 1, 100}, {1, 1, 7}, {1, 1, 3}, {0, 0, 3}, {1, 1, 2}, {0, 0, 1}},  /* 1-D */
        {1, 2, {5, 6, 21}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, {2, 1, 1}, {0, 0, 0}},   /* 3-D */
        {1, 2, {4, 7, 19}, {2, 3, 3}, {2, 2, 1}, {0, 1, 5}, {1, 1, 3}, {0, 0, 0}},   /* 3-D strided */
        {1, 1, {1, 5, 16}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, {1, 1, 1}, {0, 0, 0}},   /* 1x1 */
        {3, 4, {1, 37, 45}, {1, 3, 3}, {1, 1, 1}, {0, 1, 1}, {1, 1, 1}, {0, 0, 0}},  /* parallel */
        /* Rows narrower than a vector, as one wide row per plane: MobileNet's
         * last maps, stride 1 and 2. */
        {2, 3, {1, 8, 8}, {1, 3, 3}, {1, 1, 1}, {0, 1, 1}, {1, 1, 1}, {0, 0, 0}},
        {2, 3, {1, 16, 16}, {1, 3, 3}, {1, 2, 2}, {0, 1, 1}, {1, 1, 1}, {0, 0, 0}},
        /* Channels in the lanes (depthwise, multiplier 1, enough channels):
         * whole and partial blocks of planes, strides, dilation, odd sizes,
         * asymmetric padding, 3-D and 1-D. */
        {2, 19, {1, 8, 8}, {1, 3, 3}, {1, 1, 1}, {0, 1, 1}, {1, 1, 1}, {0, 0, 0}},
        {2, 40, {1, 16, 16}, {1, 3, 3}, {1, 2, 2}, {0, 1, 1}, {1, 1, 1}, {0, 0, 0}},
        {1, 17, {1, 11, 13}, {1, 3, 5}, {1, 2, 3}, {0, 2, 1}, {1, 2, 1}, {0, 1, 0}},
        {1, 9, {3, 5, 7}, {3, 3, 3}, {2, 1, 2}, {1, 1, 0}, {1, 1, 1}, {0, 0, 1}},
        {2, 33, {1, 1, 30}, {1, 1, 3}, {1, 1, 2}, {0, 0, 1}, {1, 1, 1}, {0, 0, 0}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
        fc_geometry g;
        if (!make_geometry(&g, cases[i].channels, cases[i].in, cases[i].k, cases[i].s,
                           cases[i].p, cases[i].d, cases[i].extra)) {
            fprintf(stderr, "depthwise case %zu has an empty output: fix the table\n", i);
            ++failed;
            continue;
        }
        check_depthwise_mults(&g, cases[i].batch, 3);
    }
    /* Grouped, with blocks of FC_DW_BLOCK output planes (forward) and input
     * planes (input gradient) and a remainder: 8 channels, 28 and 19 wide. */
    static const int64_t grouped[][2] = {{8, 8}, {5, 4}, {4, 2}, {1, 8}};
    static const int64_t widths[] = {28, 19};
    for (size_t i = 0; i < 2; ++i) {
        fc_geometry g;
        const int64_t in[3] = {1, 6, widths[i]}, k[3] = {1, 3, 3}, one[3] = {1, 1, 1};
        const int64_t pad[3] = {0, 1, 1}, none[3] = {0, 0, 0}, s2[3] = {1, 1, 2};
        if (make_geometry(&g, 8, in, k, i ? s2 : one, pad, one, none))
            check_depthwise_shapes(&g, 2, grouped, 4);
    }
    for (int done = 0; done < count;) {
        int64_t in[3], k[3], s[3], p[3], d[3], extra[3];
        const int nd = (int)rnd_int(1, 3);
        for (int a = 0; a < 3; ++a) {
            const int active = a >= 3 - nd;
            in[a] = !active ? 1 : a == 2 ? rnd_int(1, 70) : rnd_int(1, 6);
            k[a] = active ? rnd_int(1, 5) : 1;
            s[a] = active ? rnd_int(1, 3) : 1;
            p[a] = active ? rnd_int(0, 4) : 0;
            d[a] = active ? rnd_int(1, 3) : 1;
            extra[a] = active ? rnd_int(0, 1) : 0;
        }
        fc_geometry g;
        if (!make_geometry(&g, rnd_int(1, 3), in, k, s, p, d, extra)) continue;
        check_depthwise_mults(&g, rnd_int(1, 2), 3);
        ++done;
    }
}

/* -------------------------------------------------------------------- GEMM */
#define DEFINE_GEMM_CHECK(T, SFX, TOL)                                                  \
static void check_gemm_##SFX(int64_t m, int64_t n, int64_t k, int trans_a, int trans_b, \
                             int accumulate, int nthreads, int small)                   \
{                                                                                       \
    const int64_t ldc = n + 3;                                                          \
    T *a = xmalloc(sizeof(T) * m * k), *b = xmalloc(sizeof(T) * k * n);                 \
    T *c = xmalloc(sizeof(T) * (m ? (m - 1) * ldc + n : 0));                            \
    T *ws = xmalloc(sizeof(T) * fc_gemm_workspace(DT_##SFX, nthreads));                     \
    double *want = xmalloc(sizeof(double) * m * n);                                     \
    const int64_t rs_a = trans_a ? 1 : k, cs_a = trans_a ? m : 1;                       \
    const int64_t rs_b = trans_b ? 1 : n, cs_b = trans_b ? k : 1;                       \
    for (int64_t i = 0; i < m * k; ++i) a[i] = (T)rnd_val();                            \
    for (int64_t i = 0; i < k * n; ++i) b[i] = (T)rnd_val();                            \
    for (int64_t i = 0; i < m; ++i)                                                     \
        for (int64_t j = 0; j < n; ++j) {                                               \
            double sum = accumulate ? 0.5 : 0;                                          \
            c[i * ldc + j] = accumulate ? (T)0.5 : (T)NAN;                              \
            for (int64_t p = 0; p < k; ++p)                                             \
                sum += (double)a[i * rs_a + p * cs_a] * (double)b[p * rs_b + j * cs_b]; \
            want[i * n + j] = sum;                                                      \
        }                                                                               \
    if (small)                                                                          \
        fc_gemm_small(DT_##SFX, m, n, k, a, rs_a, cs_a, b, rs_b, cs_b, c, ldc, accumulate); \
    else                                                                                \
        fc_gemm(DT_##SFX, m, n, k, a, rs_a, cs_a, b, rs_b, cs_b, c, ldc, accumulate, ws,  \
                nthreads);                                                              \
    double err = 0;                                                                     \
    for (int64_t i = 0; i < m; ++i)                                                     \
        for (int64_t j = 0; j < n; ++j) {                                               \
            double e = fabs((double)c[i * ldc + j] - want[i * n + j]);                  \
            if (!(e <= err)) err = e;                                                   \
        }                                                                               \
    int ok = err <= TOL * (k > 1 ? k : 1);                                              \
    if (ok) ++passed;                                                                   \
    else if (++failed <= 20)                                                            \
        fprintf(stderr, "FAIL gemm%s_" #SFX " simd=%d m=%lld n=%lld k=%lld ta=%d tb=%d " \
                "acc=%d threads=%d err=%g\n", small ? "_small" : "", fc_simd_active(),   \
                (long long)m, (long long)n, (long long)k, trans_a, trans_b, accumulate,   \
                nthreads, err);                                                         \
    free(a); free(b); free(c); free(ws); free(want);                                    \
}
DEFINE_GEMM_CHECK(float, f32, 1e-5)
DEFINE_GEMM_CHECK(double, f64, 1e-12)

static void test_gemm(void)
{
    /* Around the micro-tiles (MR 4/6/8, NR 8..48), the KC/MC blocks, the
     * small kernels' tiles (dot 4 x 3, vectors of 2..16 lanes and their
     * partial last one) and GEMV shapes. */
    static const int64_t shapes[][3] = {
        {1, 1, 1}, {1, 1, 0}, {7, 13, 5}, {6, 16, 3}, {8, 48, 256}, {9, 49, 257},
        {97, 50, 300}, {5, 200, 2}, {200, 3, 33}, {0, 5, 3}, {4, 0, 3}, {33, 65, 17},
        {64, 10, 256}, {3, 17, 33}, {17, 1, 3}, {1, 33, 17}, {5, 7, 1}, {33, 3, 1},
    };
    for (int level = 0; level <= FC_SIMD_AVX512; ++level) {
        if (fc_simd_select(level) < 0) continue;
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; ++i)
            for (int t = 0; t < 4; ++t)
                for (int acc = 0; acc < 2; ++acc)
                    for (int small = 0; small < 2; ++small) {
                        const int nthreads = 1 + (int)((i + t) % 2);
                        check_gemm_f32(shapes[i][0], shapes[i][1], shapes[i][2], t & 1,
                                       t >> 1, acc, nthreads, small);
                        check_gemm_f64(shapes[i][0], shapes[i][1], shapes[i][2], t & 1,
                                       t >> 1, acc, nthreads, small);
                    }
    }
    fc_simd_select(-1);
}

/* -------------------------------------------------------------------- pooling */
/* PyTorch's pooling output size (pool_output_size in _shapes.py); 0 if empty. */
static int64_t pool_out(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, int ceil_mode)
{
    int64_t span = in + 2 * p - d * (k - 1) - 1, out;
    if (span < 0) return 0;
    if (ceil_mode) {
        out = (span + s - 1) / s + 1;
        if ((out - 1) * s >= in + p) --out;   /* a last window starting in the padding */
    } else {
        out = span / s + 1;
    }
    return out;
}

/* Window bounds of output o along axis a, clipped to the input (taps with
 * dilation d: first in-bounds tap t0, count n) and to [-p, in + p). */
typedef struct { int64_t first[3], count[3], step[3], padded[3]; } window;

static int pool_window(const fc_geometry *g, const int64_t o[3], window *w)
{
    for (int a = 0; a < 3; ++a) {
        const int64_t start = o[a] * g->stride[a] - g->pad[a], d = g->dilation[a];
        int64_t first = -1, n = 0;
        for (int64_t t = 0; t < g->kernel[a]; ++t) {
            const int64_t i = start + t * d;
            if (i >= 0 && i < g->in[a]) { if (first < 0) first = i; ++n; }
        }
        const int64_t end = start + g->kernel[a] < g->in[a] + g->pad[a]
                            ? start + g->kernel[a] : g->in[a] + g->pad[a];
        w->first[a] = first; w->count[a] = n; w->step[a] = d; w->padded[a] = end - start;
        if (n == 0) return 0;
    }
    return 1;
}

/* Adaptive pooling's bin of output o: [lo, hi) per axis, written from the
 * definition floor(o * in / out) .. ceil((o + 1) * in / out). */
static void naive_adaptive_bin(const fc_geometry *g, const int64_t o[3], int64_t lo[3],
                               int64_t hi[3])
{
    for (int a = 0; a < 3; ++a) {
        lo[a] = (int64_t)floor((double)o[a] * g->in[a] / g->out[a]);
        hi[a] = (int64_t)ceil((double)(o[a] + 1) * g->in[a] / g->out[a]);
    }
}

#define DEFINE_POOL_CHECK(T, SFX, TOL)                                                  \
static void check_pool_##SFX(const fc_geometry *g, int nthreads, int include_pad,       \
                             int64_t divisor_override, int with_nan)                   \
{                                                                                       \
    const int64_t planes = g->channels, P = prod3(g->in), L = prod3(g->out);            \
    T *x = xmalloc(sizeof(T) * planes * P), *y = xmalloc(sizeof(T) * planes * L);       \
    T *gy = xmalloc(sizeof(T) * planes * L), *gx = xmalloc(sizeof(T) * planes * P);     \
    int64_t *idx = xmalloc(sizeof(int64_t) * planes * L);                               \
    double *wgx = xmalloc(sizeof(double) * planes * P);                                 \
    /* Few distinct values: ties are frequent, so "first maximum wins" is tested. */   \
    for (int64_t i = 0; i < planes * P; ++i)                                            \
        x[i] = with_nan && rnd() % 17 == 0 ? (T)NAN : (T)rnd_int(-3, 3);                \
    for (int64_t i = 0; i < planes * L; ++i) gy[i] = (T)rnd_val();                      \
    int ok_max = 1, ok_idx = 1, ok_avg = 1;                                             \
    /* max pooling forward and backward */                                             \
    fc_max_pool(DT_##SFX, x, g, y, idx, nthreads);                                          \
    for (int64_t i = 0; i < planes * P; ++i) wgx[i] = 0;                                \
    for (int64_t pl = 0; pl < planes; ++pl)                                             \
    for (int64_t o0 = 0; o0 < g->out[0]; ++o0)                                          \
    for (int64_t o1 = 0; o1 < g->out[1]; ++o1)                                          \
    for (int64_t o2 = 0; o2 < g->out[2]; ++o2) {                                        \
        const int64_t o[3] = {o0, o1, o2}, oi = pl * L + (o0 * g->out[1] + o1) * g->out[2] + o2; \
        window w;                                                                       \
        if (!pool_window(g, o, &w)) { ok_max = 0; continue; }                           \
        int64_t best = -1, has_nan = 0;                                                 \
        for (int64_t a = 0; a < w.count[0]; ++a)                                        \
        for (int64_t b = 0; b < w.count[1]; ++b)                                        \
        for (int64_t c = 0; c < w.count[2]; ++c) {                                      \
            const int64_t i = ((w.first[0] + a * w.step[0]) * g->in[1]                 \
                               + w.first[1] + b * w.step[1]) * g->in[2]                \
                              + w.first[2] + c * w.step[2];                            \
            const T v = x[pl * P + i];                                                  \
            if (isnan(v)) has_nan = 1;                                                  \
            else if (best < 0 || v > x[pl * P + best]) best = i;                        \
        }                                                                               \
        if (has_nan) {  /* NaN propagates; the index points at a NaN */                 \
            if (!isnan(y[oi]) || idx[oi] < 0 || idx[oi] >= P || !isnan(x[pl * P + idx[oi]])) \
                ok_max = 0;                                                             \
        } else if (y[oi] != x[pl * P + best]) {                                         \
            ok_max = 0;                                                                 \
        } else if (idx[oi] != best) {                                                   \
            ok_idx = 0;                                                                 \
        }                                                                               \
        if (idx[oi] >= 0 && idx[oi] < P) wgx[pl * P + idx[oi]] += (double)gy[oi];       \
    }                                                                                   \
    report(ok_max, "max_pool_" #SFX, g, 1, 0, nthreads, 0);                             \
    report(ok_idx, "max_pool_indices_" #SFX " (first maximum must win)", g, 1, 0, nthreads, 0); \
    fc_max_pool_backward(DT_##SFX, gy, idx, g, gx, nthreads);                               \
    double err = 0;                                                                     \
    for (int64_t i = 0; i < planes * P; ++i) {                                          \
        double e = fabs((double)gx[i] - wgx[i]); if (!(e <= err)) err = e;              \
    }                                                                                   \
    report(err <= TOL * 16, "max_pool_backward_" #SFX, g, 1, 0, nthreads, err);         \
    if (planes * L > 0) {  /* a planted out-of-range index must be found */             \
        const int64_t where = (int64_t)(rnd() % (uint64_t)(planes * L)), old = idx[where]; \
        idx[where] = rnd() % 2 ? P : -1;                                                \
        report(fc_pool_find_bad_index(idx, planes * L, P, nthreads) == where,           \
               "pool_find_bad_index", g, 1, 0, nthreads, 0);                            \
        idx[where] = old;                                                               \
    }                                                                                   \
    /* average pooling (dilation 1 only) */                                            \
    if (g->dilation[0] == 1 && g->dilation[1] == 1 && g->dilation[2] == 1) {           \
        for (int64_t i = 0; i < planes * P; ++i) { if (isnan(x[i])) x[i] = 0.5; wgx[i] = 0; } \
        fc_avg_pool(DT_##SFX, x, g, include_pad, divisor_override, y, nthreads);            \
        double ea = 0;                                                                  \
        for (int64_t pl = 0; pl < planes; ++pl)                                         \
        for (int64_t o0 = 0; o0 < g->out[0]; ++o0)                                      \
        for (int64_t o1 = 0; o1 < g->out[1]; ++o1)                                      \
        for (int64_t o2 = 0; o2 < g->out[2]; ++o2) {                                    \
            const int64_t o[3] = {o0, o1, o2};                                          \
            const int64_t oi = pl * L + (o0 * g->out[1] + o1) * g->out[2] + o2;         \
            window w;                                                                   \
            if (!pool_window(g, o, &w)) { ok_avg = 0; continue; }                       \
            const double div = divisor_override ? (double)divisor_override              \
                : include_pad ? (double)(w.padded[0] * w.padded[1] * w.padded[2])       \
                : (double)(w.count[0] * w.count[1] * w.count[2]);                       \
            double sum = 0;                                                             \
            for (int64_t a = 0; a < w.count[0]; ++a)                                    \
            for (int64_t b = 0; b < w.count[1]; ++b)                                    \
            for (int64_t c = 0; c < w.count[2]; ++c) {                                  \
                const int64_t i = ((w.first[0] + a) * g->in[1] + w.first[1] + b) * g->in[2] \
                                  + w.first[2] + c;                                     \
                sum += (double)x[pl * P + i];                                           \
                wgx[pl * P + i] += (double)gy[oi] / div;                                \
            }                                                                           \
            const double e = fabs((double)y[oi] - sum / div);                           \
            if (!(e <= ea)) ea = e;                                                     \
        }                                                                               \
        report(ok_avg && ea <= TOL * 16, "avg_pool_" #SFX, g, 1, include_pad, nthreads, ea); \
        fc_avg_pool_backward(DT_##SFX, gy, g, include_pad, divisor_override, gx, nthreads); \
        double eb = 0;                                                                  \
        for (int64_t i = 0; i < planes * P; ++i) {                                      \
            double e = fabs((double)gx[i] - wgx[i]); if (!(e <= eb)) eb = e;            \
        }                                                                               \
        report(eb <= TOL * 16, "avg_pool_backward_" #SFX, g, 1, include_pad, nthreads, eb); \
    }                                                                                   \
    free(x); free(y); free(gy); free(gx); free(idx); free(wgx);                         \
}                                                                                       \
static void check_adaptive_##SFX(const fc_geometry *g, int nthreads)                    \
{                                                                                       \
    const int64_t planes = g->channels, P = prod3(g->in), L = prod3(g->out);            \
    T *x = xmalloc(sizeof(T) * planes * P), *y = xmalloc(sizeof(T) * planes * L);       \
    T *gy = xmalloc(sizeof(T) * planes * L), *gx = xmalloc(sizeof(T) * planes * P);     \
    double *wgx = xmalloc(sizeof(double) * planes * P);                                 \
    for (int64_t i = 0; i < planes * P; ++i) { x[i] = (T)rnd_val(); wgx[i] = 0; }       \
    for (int64_t i = 0; i < planes * L; ++i) gy[i] = (T)rnd_val();                      \
    fc_adaptive_avg_pool(DT_##SFX, x, g, y, nthreads);                                      \
    fc_adaptive_avg_pool_backward(DT_##SFX, gy, g, gx, nthreads);                           \
    /* one bin per plane: the global-pool kernel must give the same means */           \
    T *yg = xmalloc(sizeof(T) * planes * L);                                            \
    if (L == 1) fc_global_avg_pool(DT_##SFX, x, g, (int)(planes % 2), yg, nthreads);    \
    double ef = 0, eb = 0, eg = 0;                                                      \
    for (int64_t pl = 0; pl < planes; ++pl)                                             \
    for (int64_t o0 = 0; o0 < g->out[0]; ++o0)                                          \
    for (int64_t o1 = 0; o1 < g->out[1]; ++o1)                                          \
    for (int64_t o2 = 0; o2 < g->out[2]; ++o2) {                                        \
        const int64_t o[3] = {o0, o1, o2};                                              \
        const int64_t oi = pl * L + (o0 * g->out[1] + o1) * g->out[2] + o2;             \
        int64_t lo[3], hi[3];                                                           \
        naive_adaptive_bin(g, o, lo, hi);                                               \
        const double n = (double)((hi[0] - lo[0]) * (hi[1] - lo[1]) * (hi[2] - lo[2])); \
        double sum = 0;                                                                 \
        for (int64_t a = lo[0]; a < hi[0]; ++a)                                         \
        for (int64_t b = lo[1]; b < hi[1]; ++b)                                         \
        for (int64_t c = lo[2]; c < hi[2]; ++c) {                                       \
            const int64_t i = pl * P + (a * g->in[1] + b) * g->in[2] + c;               \
            sum += (double)x[i];                                                        \
            wgx[i] += (double)gy[oi] / n;                                               \
        }                                                                               \
        const double e = fabs((double)y[oi] - sum / n);                                 \
        if (!(e <= ef)) ef = e;                                                         \
        const double e_global = L == 1 ? fabs((double)yg[oi] - sum / n) : 0;            \
        if (!(e_global <= eg)) eg = e_global;                                           \
    }                                                                                   \
    for (int64_t i = 0; i < planes * P; ++i) {                                          \
        double e = fabs((double)gx[i] - wgx[i]); if (!(e <= eb)) eb = e;                \
    }                                                                                   \
    report(ef <= TOL * 4, "adaptive_avg_pool_" #SFX, g, 1, 0, nthreads, ef);            \
    report(eb <= TOL * 4, "adaptive_avg_pool_backward_" #SFX, g, 1, 0, nthreads, eb);   \
    if (L == 1) report(eg <= TOL * 4, "global_avg_pool_" #SFX, g, 1, 0, nthreads, eg);  \
    free(x); free(y); free(gy); free(gx); free(wgx); free(yg);                          \
}
DEFINE_POOL_CHECK(float, f32, 1e-5)
DEFINE_POOL_CHECK(double, f64, 1e-12)

/* A pooling geometry from per-axis sizes (PyTorch's rules: padding <=
 * kernel / 2, ceil_mode drops a window starting in the padding); 0 when the
 * output is empty or some window would hold padding only. */
static int make_pool_geometry(fc_geometry *g, int64_t planes, const int64_t in[3],
                              const int64_t k[3], const int64_t s[3], const int64_t p[3],
                              const int64_t d[3], int ceil_mode)
{
    g->channels = planes;
    for (int a = 0; a < 3; ++a) {
        g->in[a] = in[a]; g->kernel[a] = k[a]; g->stride[a] = s[a];
        g->pad[a] = p[a]; g->dilation[a] = d[a];
        g->out[a] = pool_out(in[a], k[a], s[a], p[a], d[a], ceil_mode);
        if (g->out[a] < 1 || p[a] > k[a] / 2) return 0;
    }
    for (int64_t o0 = 0; o0 < g->out[0]; ++o0)
        for (int64_t o1 = 0; o1 < g->out[1]; ++o1)
            for (int64_t o2 = 0; o2 < g->out[2]; ++o2) {
                const int64_t o[3] = {o0, o1, o2};
                window w;
                if (!pool_window(g, o, &w)) return 0;
            }
    return 1;
}

static void test_pooling(int count)
{
    static const struct { int64_t planes, in[3], k[3], s[3], p[3], d[3]; int ceil; } cases[] = {
        {1, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, {1, 1, 1}, 0},  /* 1x1 */
        {3, {1, 5, 7}, {1, 5, 7}, {1, 1, 1}, {0, 2, 3}, {1, 1, 1}, 0},  /* kernel == input */
        {2, {1, 9, 9}, {1, 2, 2}, {1, 4, 5}, {0, 1, 1}, {1, 1, 1}, 1},  /* stride > kernel */
        {2, {1, 7, 8}, {1, 3, 3}, {1, 2, 2}, {0, 1, 1}, {1, 1, 1}, 1},  /* ceil overhang */
        {1, {1, 9, 10}, {1, 3, 3}, {1, 1, 2}, {0, 1, 1}, {1, 3, 2}, 0}, /* dilation */
        {4, {1, 1, 17}, {1, 1, 4}, {1, 1, 3}, {0, 0, 2}, {1, 1, 1}, 1}, /* 1-D */
        {2, {4, 5, 6}, {2, 3, 2}, {2, 1, 2}, {1, 1, 0}, {1, 1, 1}, 1},  /* 3-D */
        {64, {1, 32, 32}, {1, 3, 3}, {1, 2, 2}, {0, 1, 1}, {1, 1, 1}, 0}, /* parallel */
    };
    for (int with_nan = 0; with_nan < 2; ++with_nan)
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
            fc_geometry g;
            if (!make_pool_geometry(&g, cases[i].planes, cases[i].in, cases[i].k, cases[i].s,
                                    cases[i].p, cases[i].d, cases[i].ceil)) {
                fprintf(stderr, "pooling case %zu is invalid: fix the table\n", i);
                ++failed;
                continue;
            }
            for (int nthreads = 1; nthreads <= 2; ++nthreads)
                for (int include_pad = 0; include_pad < 2; ++include_pad) {
                    check_pool_f32(&g, nthreads, include_pad, 0, with_nan);
                    check_pool_f64(&g, nthreads, include_pad, with_nan ? 0 : 5, with_nan);
                }
        }
    for (int done = 0; done < count;) {
        int64_t in[3], k[3], s[3], p[3], d[3];
        const int nd = (int)rnd_int(1, 3);
        for (int a = 0; a < 3; ++a) {
            const int active = a >= 3 - nd;
            in[a] = active ? rnd_int(1, 9) : 1;
            k[a] = active ? rnd_int(1, 4) : 1;
            s[a] = active ? rnd_int(1, 4) : 1;
            p[a] = active ? rnd_int(0, k[a] / 2) : 0;
            d[a] = active && rnd() % 3 == 0 ? 2 : 1;
        }
        fc_geometry g;
        if (!make_pool_geometry(&g, rnd_int(1, 4), in, k, s, p, d, (int)(rnd() % 2))) continue;
        const int nthreads = 1 + (int)(rnd() % 2), include_pad = (int)(rnd() % 2);
        const int with_nan = (int)(rnd() % 2);
        check_pool_f32(&g, nthreads, include_pad, rnd() % 4 == 0 ? 3 : 0, with_nan);
        check_pool_f64(&g, nthreads, include_pad, 0, with_nan);
        /* adaptive: any in/out sizes, bins may overlap or be wider than 1 */
        fc_geometry a = g;
        for (int ax = 0; ax < 3; ++ax) a.out[ax] = ax >= 3 - nd ? rnd_int(1, 6) : 1;
        check_adaptive_f32(&a, nthreads);
        check_adaptive_f64(&a, nthreads);
        ++done;
    }
    /* global pooling: plane counts around the kernel's block of planes and
     * past its prefetch distance (odd counts prefetch), plane sizes below, at
     * and around a multiple of every vector width */
    static const int64_t global_sizes[][3] = {{1, 1, 1}, {1, 1, 3}, {1, 1, 8}, {1, 7, 7},
                                              {1, 5, 10}, {2, 3, 11}, {1, 1, 33}};
    static const int64_t global_planes[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 35, 37, 70, 71};
    for (size_t pi = 0; pi < sizeof global_planes / sizeof global_planes[0]; ++pi)
        for (size_t i = 0; i < sizeof global_sizes / sizeof global_sizes[0]; ++i) {
            fc_geometry a = {global_planes[pi], {0}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0},
                             {1, 1, 1}};
            memcpy(a.in, global_sizes[i], sizeof a.in);
            for (int nthreads = 1; nthreads <= 2; ++nthreads) {
                check_adaptive_f32(&a, nthreads);
                check_adaptive_f64(&a, nthreads);
            }
        }
}

/* Each call runs the selected level's table: the dispatch counts it there
 * and nowhere else (pooling included, which once picked its own copies, and
 * the families without SIMD of their own: adaptive max pooling,
 * interpolation, deformable im2col). */
static void test_dispatch(void)
{
    const fc_geometry g = {1, {1, 4, 4}, {1, 2, 2}, {1, 2, 2}, {1, 2, 2}, {0, 0, 0}, {1, 1, 1}};
    float x[16] = {0}, y[4], weight[10] = {0}, offset[32] = {0}, col[16];
    const int64_t index[10] = {0};
    const int taps[3] = {1, 1, 1};
    for (int level = 0; level <= FC_SIMD_AVX512; ++level) {
        if (fc_simd_select(level) < 0) continue;
        int64_t before[3], ok = 1;
        for (int l = 0; l < 3; ++l) before[l] = fc_simd_calls(l);
        fc_max_pool(FC_FLOAT32, x, &g, y, NULL, 1);
        fc_adaptive_max_pool(FC_FLOAT32, x, &g, y, NULL, 1);
        fc_interpolate(FC_FLOAT32, x, &g, index, weight, taps, y, 1);
        fc_deform_im2col(FC_FLOAT32, x, offset, NULL, 1, &g, 1, col, 1);
        for (int l = 0; l < 3; ++l) ok &= fc_simd_calls(l) - before[l] == (l == level ? 4 : 0);
        report((int)ok, "dispatch of pooling, interpolation and deformable im2col to the "
               "selected level", &g, 1, level, 1, 0);
    }
    fc_simd_select(-1);
}

/* The kernels' own guards: a schedule or geometry they are not written for
 * returns -1 and leaves the output alone (no reads past the buffers). */
static void test_guards(void)
{
    /* 3x3 kernel, stride 2: neither pointwise nor a Winograd geometry. */
    const fc_geometry g = {2, {1, 7, 7}, {1, 3, 3}, {1, 3, 3}, {1, 2, 2}, {0, 0, 0}, {1, 1, 1}};
    const fc_conv_schedule pointwise = {1, 0, 0, 1};
    float x[98] = {0}, w[36] = {0}, y[18], ws[16];   /* the guards run before any scratch */
    int64_t offsets[18];
    for (int i = 0; i < 18; ++i) y[i] = 777;
    int ok = fc_conv_forward(FC_FLOAT32, x, 1, &g, 1, w, NULL, 2, y, &pointwise, ws,
                               offsets, 1) == -1;
    ok = ok && fc_conv_winograd(FC_FLOAT32, x, 1, &g, 1, w, NULL, 2, y, ws, 1) == -1;
    for (int i = 0; i < 18; ++i) ok = ok && y[i] == 777;
    report(ok, "guards of conv_forward (pointwise) and conv_winograd", &g, 1, 0, 1, 0);
}

/* --------------------------------------------------------------- stopping */
/* A stop requested before a call (fc_stop_request, as a Ctrl-C poll does)
 * makes every polling kernel return at its first check: its outputs keep
 * their 777s (nothing written, nothing read out of bounds under ASan: the
 * buffers are exact), and the flag is still set for the caller to take. */
static float *filled(int64_t n, float v)
{
    float *p = xmalloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    for (int64_t i = 0; i < n; ++i) p[i] = v;
    return p;
}

static int untouched(const float *p, int64_t n)
{
    for (int64_t i = 0; i < n; ++i)
        if (p[i] != 777) return 0;
    return 1;
}

/* Run CALL with a stop requested; report whether it wrote nothing into
 * OUT (n elements) and left the flag set. */
#define CHECK_STOPS(what, g, nthreads, OUT, n, CALL)                                    \
    do {                                                                                \
        for (int64_t i_ = 0; i_ < (n); ++i_) (OUT)[i_] = 777;                            \
        fc_stop_request();                                                              \
        CALL;                                                                           \
        const int kept_ = fc_stop_take();                                               \
        report(kept_ && untouched((OUT), (n)), "stopped before any work: " what, (g), 2, 1, \
               (nthreads), 0);                                                          \
    } while (0)

static void test_stop(int nthreads)
{
    /* conv: 2 images of 4 channels, 10x10, 3x3 pad 1 (Winograd's geometry too) */
    const fc_geometry g = {4, {1, 10, 10}, {1, 10, 10}, {1, 3, 3}, {1, 1, 1}, {0, 1, 1},
                           {1, 1, 1}};
    const int64_t batch = 2, c_out = 4, taps = 9, L = 100, plane = 100;
    const int64_t n_x = batch * 4 * plane, n_y = batch * c_out * L, n_w = c_out * 4 * taps;
    const int64_t rows = 4 * taps;
    float *x = filled(n_x, 1), *w = filled(n_w, 1), *y = filled(n_y, 777);
    float *gx = filled(n_x, 777), *gw = filled(n_w, 777), *col = filled(batch * rows * L, 777);
    int64_t *offsets = xmalloc(sizeof(int64_t) * (size_t)rows);
    for (int per_image = 0; per_image <= 1; ++per_image) {
        const fc_conv_schedule s = {per_image, 0, 0, 0};
        float *ws = filled(fc_conv_workspace(FC_FLOAT32, &g, batch, c_out, &s, nthreads), 0);
        CHECK_STOPS("conv_forward", &g, nthreads, y, n_y,
                    fc_conv_forward(FC_FLOAT32, x, batch, &g, 1, w, NULL, c_out, y, &s, ws,
                                    offsets, nthreads));
        free(ws);
    }
    float *ws = filled(fc_conv_winograd_workspace(FC_FLOAT32, &g, 1, c_out, nthreads), 0);
    CHECK_STOPS("conv_winograd", &g, nthreads, y, n_y,
                fc_conv_winograd(FC_FLOAT32, x, batch, &g, 1, w, NULL, c_out, y, ws, nthreads));
    free(ws);
    ws = filled(fc_conv_weight_grad_workspace(FC_FLOAT32, c_out, rows, nthreads), 0);
    CHECK_STOPS("conv_weight_grad", &g, nthreads, gw, n_w,
                fc_conv_weight_grad(FC_FLOAT32, x, 4 * plane, y, c_out * L, batch, &g, c_out,
                                    gw, rows, ws, nthreads));
    free(ws);
    ws = filled(fc_conv_winograd_weight_grad_workspace(FC_FLOAT32, &g, c_out, nthreads), 0);
    CHECK_STOPS("conv_winograd_weight_grad", &g, nthreads, gw, n_w,
                fc_conv_winograd_weight_grad(FC_FLOAT32, x, 4 * plane, y, c_out * L, batch, &g,
                                             c_out, gw, rows, ws, nthreads));
    free(ws);
    const fc_conv_schedule per_image = {1, 0, 0, 0};
    ws = filled(fc_conv_data_grad_workspace(FC_FLOAT32, &g, nthreads), 0);
    CHECK_STOPS("conv_data_grad", &g, nthreads, gx, n_x,
                fc_conv_data_grad(FC_FLOAT32, y, batch, &g, 1, w, c_out, gx, &per_image, ws,
                                  nthreads));
    free(ws);
    const fc_col_layout layout = {rows * L, L};
    CHECK_STOPS("im2col", &g, nthreads, col, batch * rows * L,
                fc_im2col(FC_FLOAT32, x, batch, &g, layout, col, nthreads));
    CHECK_STOPS("col2im", &g, nthreads, gx, n_x,
                fc_col2im(FC_FLOAT32, col, batch, &g, layout, gx, nthreads));
    ws = filled(fc_gemm_workspace(FC_FLOAT32, nthreads), 0);
    CHECK_STOPS("gemm", &g, nthreads, y, c_out * L,
                fc_gemm(FC_FLOAT32, c_out, L, rows, w, rows, 1, col, L, 1, y, L, 0, ws,
                        nthreads));
    free(ws);
    /* depthwise: w as (4 channels, 1 multiplier, taps); grouped: as (1
     * output, 4 input channels, taps) */
    for (int64_t cig = 1; cig <= 4; cig += 3) {
        ws = filled(fc_depthwise_workspace(FC_FLOAT32, &g, 1, cig, nthreads), 0);
        CHECK_STOPS("depthwise_forward", &g, nthreads, y, n_y / cig,
                    fc_depthwise_forward(FC_FLOAT32, x, w, NULL, batch, &g, 1, cig, y, ws,
                                         nthreads));
        CHECK_STOPS("depthwise_backward_input", &g, nthreads, gx, n_x,
                    fc_depthwise_backward_input(FC_FLOAT32, y, w, batch, &g, 1, cig, gx, ws,
                                                nthreads));
        CHECK_STOPS("depthwise_backward_weight", &g, nthreads, gw, 4 * taps,
                    fc_depthwise_backward_weight(FC_FLOAT32, y, x, batch, &g, 1, cig, gw, ws,
                                                 nthreads));
        free(ws);
    }

    /* pooling, interpolation: the 8 planes of x, same window */
    fc_geometry pg = g;
    pg.channels = batch * 4;
    int64_t *ind = xmalloc(sizeof(int64_t) * (size_t)n_y);
    for (int64_t i = 0; i < n_y; ++i) ind[i] = i % plane;
    CHECK_STOPS("max_pool", &pg, nthreads, y, n_y,
                fc_max_pool(FC_FLOAT32, x, &pg, y, ind, nthreads));
    CHECK_STOPS("max_pool_backward", &pg, nthreads, gx, n_x,
                fc_max_pool_backward(FC_FLOAT32, x, ind, &pg, gx, nthreads));
    CHECK_STOPS("avg_pool", &pg, nthreads, y, n_y,
                fc_avg_pool(FC_FLOAT32, x, &pg, 1, 0, y, nthreads));
    CHECK_STOPS("avg_pool_backward", &pg, nthreads, gx, n_x,
                fc_avg_pool_backward(FC_FLOAT32, x, &pg, 1, 0, gx, nthreads));
    CHECK_STOPS("adaptive_avg_pool", &pg, nthreads, y, n_y,
                fc_adaptive_avg_pool(FC_FLOAT32, x, &pg, y, nthreads));
    CHECK_STOPS("adaptive_max_pool", &pg, nthreads, y, n_y,
                fc_adaptive_max_pool(FC_FLOAT32, x, &pg, y, ind, nthreads));
    CHECK_STOPS("adaptive_avg_pool_backward", &pg, nthreads, gx, n_x,
                fc_adaptive_avg_pool_backward(FC_FLOAT32, x, &pg, gx, nthreads));
    /* identity resampling: index o, weight 1 along each axis */
    int64_t index[2 * (1 + 10 + 10)];
    float weight[2 * (1 + 10 + 10)];
    for (int i = 0; i < 2 * 21; ++i) {
        const int o = i < 2 ? 0 : i < 22 ? (i - 2) / 2 : (i - 22) / 2;
        index[i] = o;
        weight[i] = i % 2 ? 0 : 1;
    }
    const int lin[3] = {1, 2, 2};
    CHECK_STOPS("interpolate", &pg, nthreads, y, n_y,
                fc_interpolate(FC_FLOAT32, x, &pg, index, weight, lin, y, nthreads));
    CHECK_STOPS("interpolate_backward", &pg, nthreads, gx, n_x,
                fc_interpolate_backward(FC_FLOAT32, x, &pg, index, weight, lin, gx, nthreads));

    /* deformable: one offset group, zero offsets, no mask */
    float *offset = filled(batch * 2 * taps * L, 0);
    float *goff = filled(batch * 2 * taps * L, 777);
    CHECK_STOPS("deform_im2col", &g, nthreads, col, batch * rows * L,
                fc_deform_im2col(FC_FLOAT32, x, offset, NULL, batch, &g, 1, col, nthreads));
    CHECK_STOPS("deform_col2im", &g, nthreads, gx, n_x,
                fc_deform_col2im(FC_FLOAT32, col, offset, NULL, batch, &g, 1, gx, nthreads));
    CHECK_STOPS("deform_offset_mask_grad", &g, nthreads, goff, batch * 2 * taps * L,
                fc_deform_offset_mask_grad(FC_FLOAT32, col, x, offset, NULL, batch, &g, 1,
                                           goff, NULL, nthreads));
    const int64_t copy_shape[2] = {batch * c_out, L};
    const int64_t copy_strides[2] = {L, 1};
    CHECK_STOPS("strided_copy", &g, nthreads, y, n_y,
                fc_strided_copy(FC_FLOAT32, 2, copy_shape, y, copy_strides, x, copy_strides,
                                nthreads));
    /* and with no stop requested the flag stays clear */
    fc_conv_data_grad_workspace(FC_FLOAT32, &g, nthreads);
    fc_im2col(FC_FLOAT32, x, batch, &g, layout, col, nthreads);
    report(!fc_stop_take() && col[0] != 777, "no stop without a request", &g, 2, 1, nthreads, 0);
    free(x); free(w); free(y); free(gx); free(gw); free(col); free(offsets); free(ind);
    free(offset); free(goff);
}

/* A test on every level this CPU has: the full run on the best, a third of
 * the random cases on the others. */
static void test_on_every_level(void (*test)(int count), int count)
{
    const int best = fc_simd_select(-1);
    for (int level = 0; level <= FC_SIMD_AVX512; ++level) {
        if (fc_simd_select(level) < 0) continue;
        test(level == best ? count : count / 3);
    }
    fc_simd_select(-1);
}

/* Random W taps made as the interpolation kernels need them (fastconv.h):
 * first taps sorted along the outputs, each second tap the first or the
 * column after it. */
static int compare_int64(const void *a, const void *b)
{
    const int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void monotone_taps(int64_t *index, int64_t outputs, int64_t in)
{
    int64_t *first = xmalloc(sizeof(int64_t) * outputs);
    for (int64_t o = 0; o < outputs; ++o) first[o] = index[2 * o];
    qsort(first, (size_t)outputs, sizeof(int64_t), compare_int64);
    for (int64_t o = 0; o < outputs; ++o) {
        index[2 * o] = first[o];
        index[2 * o + 1] = first[o] + (first[o] < in - 1 ? rnd_int(0, 1) : 0);
    }
    free(first);
}

/* Adaptive max pooling: the naive max over each bin (first maximum wins,
 * NaN propagates), compared value for value and index for index. */
#define DEFINE_RESAMPLE_CHECK(T, SFX, TOL)                                              \
static void check_adaptive_max_##SFX(const fc_geometry *g, int nthreads, int with_nan)  \
{                                                                                       \
    const int64_t planes = g->channels, P = prod3(g->in), L = prod3(g->out);            \
    T *x = xmalloc(sizeof(T) * planes * P), *y = xmalloc(sizeof(T) * planes * L);       \
    int64_t *idx = xmalloc(sizeof(int64_t) * planes * L);                               \
    for (int64_t i = 0; i < planes * P; ++i)                                            \
        x[i] = with_nan && rnd() % 7 == 0 ? (T)NAN : (T)(rnd() % 5);  /* ties */        \
    fc_adaptive_max_pool(DT_##SFX, x, g, y, idx, nthreads);                                 \
    int bad = 0;                                                                        \
    for (int64_t pl = 0; pl < planes; ++pl)                                             \
    for (int64_t o0 = 0; o0 < g->out[0]; ++o0)                                          \
    for (int64_t o1 = 0; o1 < g->out[1]; ++o1)                                          \
    for (int64_t o2 = 0; o2 < g->out[2]; ++o2) {                                        \
        const int64_t o[3] = {o0, o1, o2};                                              \
        const int64_t oi = pl * L + (o0 * g->out[1] + o1) * g->out[2] + o2;             \
        int64_t lo[3], hi[3];                                                           \
        naive_adaptive_bin(g, o, lo, hi);                                               \
        double best = -INFINITY;                                                        \
        int64_t at = (lo[0] * g->in[1] + lo[1]) * g->in[2] + lo[2];                     \
        for (int64_t a = lo[0]; a < hi[0]; ++a)                                         \
        for (int64_t b = lo[1]; b < hi[1]; ++b)                                         \
        for (int64_t c = lo[2]; c < hi[2]; ++c) {                                       \
            const int64_t i = (a * g->in[1] + b) * g->in[2] + c;                        \
            const double v = (double)x[pl * P + i];                                     \
            if (v > best || isnan(v)) { best = v; at = i; }                             \
        }                                                                               \
        if (idx[oi] != at || !(y[oi] == (T)best || (isnan(best) && isnan(y[oi])))) bad = 1; \
    }                                                                                   \
    report(!bad, "adaptive_max_pool_" #SFX, g, 1, 0, nthreads, bad);                    \
    free(x); free(y); free(idx);                                                        \
}                                                                                       \
/* Interpolation from random separable tables: the naive triple sum over     \
 * each output's taps, and its adjoint accumulated in double. */              \
static void check_interpolate_##SFX(const fc_geometry *g, const int taps[3], int nthreads) \
{                                                                                       \
    const int64_t planes = g->channels, P = prod3(g->in), L = prod3(g->out);            \
    const int64_t entries = 2 * (g->out[0] + g->out[1] + g->out[2]);                    \
    T *x = xmalloc(sizeof(T) * planes * P), *y = xmalloc(sizeof(T) * planes * L);       \
    T *gy = xmalloc(sizeof(T) * planes * L), *gx = xmalloc(sizeof(T) * planes * P);     \
    T *weight = xmalloc(sizeof(T) * entries);                                           \
    int64_t *index = xmalloc(sizeof(int64_t) * entries);                                \
    double *wgx = xmalloc(sizeof(double) * planes * P);                                 \
    int64_t base[3] = {0, 2 * g->out[0], 2 * (g->out[0] + g->out[1])};                  \
    for (int a = 0; a < 3; ++a)                                                         \
        for (int64_t e = 0; e < 2 * g->out[a]; ++e) {                                   \
            index[base[a] + e] = rnd_int(0, g->in[a] - 1);                              \
            weight[base[a] + e] = (T)rnd_val();                                         \
        }                                                                               \
    monotone_taps(index + base[2], g->out[2], g->in[2]);                                     \
    for (int64_t i = 0; i < planes * P; ++i) { x[i] = (T)rnd_val(); wgx[i] = 0; }       \
    for (int64_t i = 0; i < planes * L; ++i) gy[i] = (T)rnd_val();                      \
    fc_interpolate(DT_##SFX, x, g, index, weight, taps, y, nthreads);                       \
    fc_interpolate_backward(DT_##SFX, gy, g, index, weight, taps, gx, nthreads);            \
    double ef = 0, eb = 0;                                                              \
    for (int64_t pl = 0; pl < planes; ++pl)                                             \
    for (int64_t o0 = 0; o0 < g->out[0]; ++o0)                                          \
    for (int64_t o1 = 0; o1 < g->out[1]; ++o1)                                          \
    for (int64_t o2 = 0; o2 < g->out[2]; ++o2) {                                        \
        const int64_t oi = pl * L + (o0 * g->out[1] + o1) * g->out[2] + o2;             \
        double sum = 0;                                                                 \
        for (int a = 0; a < taps[0]; ++a)                                               \
        for (int b = 0; b < taps[1]; ++b)                                               \
        for (int c = 0; c < taps[2]; ++c) {                                             \
            const int64_t ea = base[0] + 2 * o0 + a, eb_ = base[1] + 2 * o1 + b;        \
            const int64_t ec = base[2] + 2 * o2 + c;                                    \
            const double w = (double)weight[ea] * weight[eb_] * weight[ec];             \
            const int64_t i = pl * P + (index[ea] * g->in[1] + index[eb_]) * g->in[2]   \
                              + index[ec];                                              \
            sum += w * x[i];                                                            \
            wgx[i] += w * gy[oi];                                                       \
        }                                                                               \
        const double e = fabs((double)y[oi] - sum);                                     \
        if (!(e <= ef)) ef = e;                                                         \
    }                                                                                   \
    for (int64_t i = 0; i < planes * P; ++i) {                                          \
        double e = fabs((double)gx[i] - wgx[i]); if (!(e <= eb)) eb = e;                \
    }                                                                                   \
    report(ef <= TOL * 8, "interpolate_" #SFX, g, 1, taps[2], nthreads, ef);            \
    report(eb <= TOL * 64, "interpolate_backward_" #SFX, g, 1, taps[2], nthreads, eb);  \
    free(x); free(y); free(gy); free(gx); free(weight); free(index); free(wgx);         \
}
DEFINE_RESAMPLE_CHECK(float, f32, 1e-5)
DEFINE_RESAMPLE_CHECK(double, f64, 1e-12)

/* Random sizes (1-D to 3-D, shrinking and growing, one and two taps per
 * axis), a case big enough to run threaded, and rows wider than one chunk
 * of the interpolation kernels (FC_INTERP_SPAN input columns). */
static void test_resample(int count)
{
    for (int done = 0; done <= count + 1; ++done) {
        fc_geometry g = {0};
        int taps[3];
        const int big = done == count, wide = done == count + 1;
        const int nd = big ? 2 : wide ? 1 : (int)rnd_int(1, 3);
        g.channels = big ? 64 : rnd_int(1, 4);
        for (int a = 0; a < 3; ++a) {
            const int active = a >= 3 - nd;
            g.in[a] = active ? (big ? 40 : wide ? rnd_int(600, 2000) : rnd_int(1, 9)) : 1;
            g.out[a] = active ? (big ? 90 : wide ? rnd_int(300, 2500) : rnd_int(1, 9)) : 1;
            g.kernel[a] = g.stride[a] = g.dilation[a] = 1;
            taps[a] = active ? (int)rnd_int(1, 2) : 1;
        }
        for (int nthreads = 1; nthreads <= 2; ++nthreads) {
            check_interpolate_f32(&g, taps, nthreads);
            check_interpolate_f64(&g, taps, nthreads);
            check_adaptive_max_f32(&g, nthreads, done % 2);
            check_adaptive_max_f64(&g, nthreads, done % 2);
        }
    }
}

/* Deformable convolution: the columns against a naive bilinear sample in
 * double; col2im by the adjoint identity <col2im(gc), v> = <gc, im2col(v)>;
 * the offset and mask gradients against central differences of
 * <gc, im2col(offset, mask)> (double only: float differences are noise). */
static double naive_deform_sample(const double *plane, int64_t H, int64_t W, double y, double x)
{
    if (!(y > -1 && y < H && x > -1 && x < W)) return 0;
    const double yf = floor(y), xf = floor(x);
    double sum = 0;
    for (int dy = 0; dy < 2; ++dy)
        for (int dx = 0; dx < 2; ++dx) {
            const int64_t yi = (int64_t)yf + dy, xi = (int64_t)xf + dx;
            if (yi < 0 || yi >= H || xi < 0 || xi >= W) continue;
            sum += (dy ? y - yf : 1 - (y - yf)) * (dx ? x - xf : 1 - (x - xf)) * plane[yi * W + xi];
        }
    return sum;
}

#define DEFINE_DEFORM_CHECK(T, SFX, TOL)                                                \
static void check_deform_##SFX(const fc_geometry *g, int64_t batch, int64_t og,          \
                               int masked, int nthreads)                                \
{                                                                                       \
    const int64_t C = g->channels, H = g->in[1], W = g->in[2];                          \
    const int64_t kw = g->kernel[2], kk = g->kernel[1] * kw, L = g->out[1] * g->out[2]; \
    const int64_t nx = batch * C * H * W, noff = batch * 2 * og * kk * L;                \
    const int64_t nm = batch * og * kk * L, ncol = C * kk * batch * L;                  \
    T *x = xmalloc(sizeof(T) * nx), *off = xmalloc(sizeof(T) * noff);                  \
    T *m = masked ? xmalloc(sizeof(T) * nm) : NULL, *col = xmalloc(sizeof(T) * ncol);   \
    T *gc = xmalloc(sizeof(T) * ncol), *gx = xmalloc(sizeof(T) * nx);                   \
    T *goff = xmalloc(sizeof(T) * noff), *gm = masked ? xmalloc(sizeof(T) * nm) : NULL; \
    double *xd = xmalloc(sizeof(double) * nx);                                          \
    for (int64_t i = 0; i < nx; ++i) xd[i] = (double)(x[i] = (T)rnd_val());            \
    /* never within 1e-6 of an integer position, where the sample has a kink */ \
    for (int64_t i = 0; i < noff; ++i) off[i] = (T)(2.5 * rnd_val() + 0.0123457);      \
    for (int64_t i = 0; m && i < nm; ++i) m[i] = (T)rnd_val();                          \
    for (int64_t i = 0; i < ncol; ++i) gc[i] = (T)rnd_val();                            \
    fc_deform_im2col(DT_##SFX, x, off, m, batch, g, og, col, nthreads);                     \
    double ef = 0;                                                                      \
    for (int64_t c = 0; c < C; ++c)                                                     \
    for (int64_t k = 0; k < kk; ++k)                                                    \
    for (int64_t b = 0; b < batch; ++b)                                                 \
    for (int64_t l = 0; l < L; ++l) {                                                   \
        const int64_t grp = c / (C / og), orow = (b * og + grp) * kk + k;               \
        const double y = (double)((l / g->out[2]) * g->stride[1] - g->pad[1]            \
                                  + (k / kw) * g->dilation[1]) + off[(2 * orow) * L + l]; \
        const double xx = (double)((l % g->out[2]) * g->stride[2] - g->pad[2]           \
                                   + (k % kw) * g->dilation[2]) + off[(2 * orow + 1) * L + l]; \
        double v = naive_deform_sample(xd + (b * C + c) * H * W, H, W, y, xx);          \
        if (m) v *= m[orow * L + l];                                                    \
        const double e = fabs(v - (double)col[(c * kk + k) * batch * L + b * L + l]);   \
        if (!(e <= ef)) ef = e;                                                         \
    }                                                                                   \
    report(ef <= TOL * 8, "deform_im2col_" #SFX, g, batch, (int)og, nthreads, ef);      \
    /* adjoint: <col2im(gc), x> == <gc, im2col(x)> = <gc, col> */                       \
    fc_deform_col2im(DT_##SFX, gc, off, m, batch, g, og, gx, nthreads);                     \
    double lhs = 0, rhs = 0, scale = 1;                                                 \
    for (int64_t i = 0; i < nx; ++i) lhs += (double)gx[i] * xd[i];                      \
    for (int64_t i = 0; i < ncol; ++i) { rhs += (double)gc[i] * col[i]; scale += fabs((double)gc[i] * col[i]); } \
    report(fabs(lhs - rhs) <= TOL * 16 * scale, "deform_col2im_" #SFX, g, batch, (int)og, \
           nthreads, fabs(lhs - rhs));                                                  \
    fc_deform_offset_mask_grad(DT_##SFX, gc, x, off, m, batch, g, og, goff, gm, nthreads);  \
    if (sizeof(T) == sizeof(double)) {                                                  \
        double eo = 0;                                                                  \
        for (int rep = 0; rep < 12; ++rep) {                                            \
            const int pick_mask = m && rep % 3 == 2;                                    \
            T *arr = pick_mask ? m : off, *grad = pick_mask ? gm : goff;                \
            const int64_t i = rnd_int(0, (pick_mask ? nm : noff) - 1);                  \
            const T keep = arr[i];                                                      \
            double f[2];                                                                \
            for (int side = 0; side < 2; ++side) {                                      \
                arr[i] = keep + (side ? (T)1e-6 : (T)-1e-6);                            \
                fc_deform_im2col(DT_##SFX, x, off, m, batch, g, og, col, nthreads);         \
                f[side] = 0;                                                            \
                for (int64_t j = 0; j < ncol; ++j) f[side] += (double)gc[j] * col[j];   \
            }                                                                           \
            arr[i] = keep;                                                              \
            const double num = (f[1] - f[0]) / 2e-6, e = fabs(num - (double)grad[i]);   \
            if (!(e <= eo) && e > 1e-5 * (1 + fabs(num))) eo = e;                       \
        }                                                                               \
        report(eo == 0, "deform_offset_mask_grad_" #SFX, g, batch, (int)og, nthreads, eo); \
    }                                                                                   \
    free(x); free(off); free(m); free(col); free(gc); free(gx); free(goff); free(gm); free(xd); \
}
DEFINE_DEFORM_CHECK(float, f32, 1e-5)
DEFINE_DEFORM_CHECK(double, f64, 1e-12)

static void test_deform(int count)
{
    for (int done = 0; done < count; ++done) {
        fc_geometry g = {0};
        const int64_t og = rnd_int(1, 2), kh = rnd_int(1, 3), kw = rnd_int(1, 3);
        g.channels = og * rnd_int(1, 2);
        g.in[0] = g.out[0] = g.kernel[0] = g.stride[0] = g.dilation[0] = 1;
        g.in[1] = rnd_int(1, 7); g.in[2] = rnd_int(1, 7);
        g.kernel[1] = kh; g.kernel[2] = kw;
        for (int a = 1; a < 3; ++a) {
            g.stride[a] = rnd_int(1, 2); g.dilation[a] = rnd_int(1, 2);
            g.pad[a] = rnd_int(0, 2);
            g.out[a] = out_size(g.in[a], g.kernel[a], g.stride[a], g.pad[a], 0,
                                g.dilation[a]);
        }
        if (g.out[1] < 1 || g.out[2] < 1) { --done; continue; }
        const int64_t batch = rnd_int(1, 3);
        for (int nthreads = 1; nthreads <= 2; ++nthreads)
            for (int masked = 0; masked < 2; ++masked) {
                check_deform_f32(&g, batch, og, masked, nthreads);
                check_deform_f64(&g, batch, og, masked, nthreads);
            }
    }
}

/* Batch normalisation: the naive two-pass statistics and the textbook
 * formulas in double, on data offset far from zero (the shifted sums must
 * not cancel); and fused with ReLU (relu = 1): the output clamped at 0, and
 * the gradient masked by that output (y > 0) before the same formulas.  The view is (batch, channels, spatial); the report's
 * geometry shows channels and spatial as C and in[2]. */
#define DEFINE_BATCH_NORM_CHECK(T, SFX, TOL)                                            \
static void check_batch_norm_##SFX(int64_t batch, int64_t channels, int64_t spatial,    \
                                   int nthreads)                                        \
{                                                                                       \
    const int64_t size = batch * channels * spatial, count = batch * spatial;           \
    T *x = xmalloc(sizeof(T) * size), *y = xmalloc(sizeof(T) * size);                   \
    T *gy = xmalloc(sizeof(T) * size), *gx = xmalloc(sizeof(T) * size);                 \
    T *w = xmalloc(sizeof(T) * channels), *b = xmalloc(sizeof(T) * channels);           \
    double *mean = xmalloc(sizeof(double) * channels), *var = xmalloc(sizeof(double) * channels); \
    double *invstd = xmalloc(sizeof(double) * channels);                                \
    double *sdy = xmalloc(sizeof(double) * channels), *sdx = xmalloc(sizeof(double) * channels); \
    for (int64_t i = 0; i < size; ++i) { x[i] = (T)(100 + rnd_val()); gy[i] = (T)rnd_val(); } \
    for (int64_t c = 0; c < channels; ++c) { w[c] = (T)rnd_val(); b[c] = (T)rnd_val(); } \
    const double eps = 1e-5;                                                            \
    double es = 0, ey = 0, eg = 0, esum = 0;                                            \
    for (int relu = 0; relu < 2; ++relu)                                                \
    for (int batch_stats = 0; batch_stats < 2; ++batch_stats) {                         \
        fc_batch_norm_forward(DT_##SFX, x, batch, channels, spatial, 1, mean, var, w, b, eps, \
                              relu, y, nthreads);                                       \
        for (int64_t c = 0; c < channels; ++c) invstd[c] = 1 / sqrt(var[c] + eps);      \
        fc_batch_norm_backward(DT_##SFX, gy, relu ? y : NULL, x, batch, channels, spatial, \
                               mean, invstd, w, batch_stats, 1, count, sdy, sdx, gx, nthreads); \
        for (int64_t c = 0; c < channels; ++c) {                                        \
            double m = 0, v = 0, sum_dy = 0, sum_dy_xhat = 0;                           \
            for (int64_t n = 0; n < batch; ++n)                                         \
                for (int64_t s = 0; s < spatial; ++s) m += x[(n * channels + c) * spatial + s]; \
            m /= (double)count;                                                         \
            for (int64_t n = 0; n < batch; ++n)                                         \
                for (int64_t s = 0; s < spatial; ++s) {                                 \
                    const int64_t i = (n * channels + c) * spatial + s;                 \
                    v += (x[i] - m) * (x[i] - m);                                       \
                }                                                                       \
            v /= (double)count;                                                         \
            const double is = 1 / sqrt(v + eps);                                        \
            double e = fabs(mean[c] - m) + fabs(var[c] - v) / (v + eps);                \
            if (!(e <= es)) es = e;                                                     \
            for (int64_t n = 0; n < batch; ++n)                                         \
                for (int64_t s = 0; s < spatial; ++s) {                                 \
                    const int64_t i = (n * channels + c) * spatial + s;                 \
                    const double xhat = (x[i] - m) * is, affine = xhat * w[c] + b[c];   \
                    sum_dy += MASKED_GY(i);                                             \
                    sum_dy_xhat += MASKED_GY(i) * xhat;                                 \
                    e = fabs((double)y[i] - (relu && affine < 0 ? 0 : affine));         \
                    if (!(e <= ey)) ey = e;                                             \
                }                                                                       \
            e = fabs(sdy[c] - sum_dy) + fabs(sdx[c] * is - sum_dy_xhat);                \
            if (!(e <= esum)) esum = e;                                                 \
            for (int64_t n = 0; n < batch; ++n)                                         \
                for (int64_t s = 0; s < spatial; ++s) {                                 \
                    const int64_t i = (n * channels + c) * spatial + s;                 \
                    const double xhat = (x[i] - m) * is;                                \
                    const double want = batch_stats                                     \
                        ? w[c] * is * (MASKED_GY(i) - sum_dy / count - xhat * sum_dy_xhat / count) \
                        : w[c] * is * MASKED_GY(i);                                     \
                    e = fabs((double)gx[i] - want) / (1 + fabs(w[c] * is));             \
                    if (!(e <= eg)) eg = e;                                             \
                }                                                                       \
        }                                                                               \
    }                                                                                   \
    const fc_geometry g = {channels, {1, 1, spatial}, {1, 1, spatial}, {1, 1, 1}, {1, 1, 1}, \
                           {0, 0, 0}, {1, 1, 1}};                                       \
    /* float32 data near 100 carry 100 * 6e-8 of rounding each */                     \
    report(es <= TOL * 1e3, "batch_norm_stats_" #SFX, &g, batch, 0, nthreads, es);      \
    report(ey <= TOL * 1e3, "batch_norm_forward_" #SFX, &g, batch, 0, nthreads, ey);    \
    report(esum <= TOL * count, "batch_norm_grad_sums_" #SFX, &g, batch, 0, nthreads, esum); \
    report(eg <= TOL * 1e3, "batch_norm_backward_" #SFX, &g, batch, 0, nthreads, eg);   \
    free(x); free(y); free(gy); free(gx); free(w); free(b); free(mean); free(var);       \
    free(invstd); free(sdy); free(sdx);                                                 \
}
/* ReLU's output gradient where the fused output y is > 0, else 0 */
#define MASKED_GY(i) (relu && !(y[i] > 0) ? 0.0 : (double)gy[i])
DEFINE_BATCH_NORM_CHECK(float, f32, 1e-5)
DEFINE_BATCH_NORM_CHECK(double, f64, 1e-12)

/* Random small views (runs shorter than one vector of double, between one
 * and the sums' block of FC_BN_VACC vectors, and past it, with tails), one
 * value per channel included, plus a case big enough to run threaded. */
static void test_batch_norm(int count)
{
    for (int done = 0; done <= count; ++done) {
        const int big = done == count;
        const int64_t batch = big ? 8 : rnd_int(1, 4), channels = big ? 16 : rnd_int(1, 5);
        const int64_t spatial = big ? 4099 : rnd_int(1, 70);
        for (int nthreads = 1; nthreads <= 2; ++nthreads) {
            check_batch_norm_f32(batch, channels, spatial, nthreads);
            check_batch_norm_f64(batch, channels, spatial, nthreads);
        }
    }
    /* more channels than one sweep's block (FC_BN_BLOCK, 64) */
    for (int nthreads = 1; nthreads <= 2; ++nthreads) {
        check_batch_norm_f32(3, 131, 37, nthreads);
        check_batch_norm_f64(3, 131, 37, nthreads);
    }
}

/* Activations, PReLU, softmax and cross-entropy: naive double-precision
 * formulas of PyTorch's definitions, on random lengths (vector tails) and
 * one length past each parallel threshold, in place and not, saving or not. */
static double naive_act(int kind, double v, double a)
{
    switch (kind) {
    case FC_ACT_RELU: return v < 0 ? 0 : v;
    case FC_ACT_LEAKY_RELU: return v > 0 ? v : a * v;
    case FC_ACT_ELU: return v > 0 ? v : a * expm1(v);
    case FC_ACT_GELU: return 0.5 * v * (1 + erf(v / sqrt(2.0)));
    case FC_ACT_GELU_TANH:
        return 0.5 * v * (1 + tanh(sqrt(2 / 3.14159265358979323846) * (v + 0.044715 * v * v * v)));
    case FC_ACT_SILU: return v / (1 + exp(-v));
    case FC_ACT_SIGMOID: return 1 / (1 + exp(-v));
    default: return tanh(v);
    }
}

static int act_saves_output(int kind)
{
    return kind == FC_ACT_RELU || kind == FC_ACT_SIGMOID || kind == FC_ACT_TANH;
}

/* d f / d x at input v (y = f(v)). */
static double naive_act_grad(int kind, double v, double a)
{
    const double h = 1e-6;
    if (kind == FC_ACT_RELU) return v > 0;
    if (kind == FC_ACT_LEAKY_RELU) return v > 0 ? 1 : a;
    return (naive_act(kind, v + h, a) - naive_act(kind, v - h, a)) / (2 * h);
}

#define DEFINE_ACTIVATION_CHECK(T, SFX, TOL)                                           \
static void check_activation_##SFX(int kind, int64_t n, int nthreads, int inplace)       \
{                                                                                       \
    const double a = kind == FC_ACT_ELU ? 0.7 : 0.1;                                    \
    T *x = xmalloc(sizeof(T) * n), *y = xmalloc(sizeof(T) * n);                         \
    T *save = xmalloc(sizeof(T) * n), *gy = xmalloc(sizeof(T) * n);                     \
    T *gx = xmalloc(sizeof(T) * n), *x0 = xmalloc(sizeof(T) * n);                       \
    for (int64_t i = 0; i < n; ++i) {                                                   \
        x0[i] = x[i] = (T)(4 * rnd_val());                                              \
        if (x[i] == 0) x0[i] = x[i] = (T)0.25;       /* off the kink */                 \
        gy[i] = (T)rnd_val();                                                           \
    }                                                                                   \
    T *out = inplace ? x : y;                                                           \
    fc_activation(DT_##SFX, kind, x, n, a, out, save, nthreads);                        \
    fc_activation_backward(DT_##SFX, kind, gy, save, n, a, gx, nthreads);               \
    double ef = 0, eb = 0, es = 0;                                                      \
    for (int64_t i = 0; i < n; ++i) {                                                   \
        const double want = naive_act(kind, (double)x0[i], a);                          \
        const double e = fabs((double)out[i] - want) / (1 + fabs(want));                \
        if (!(e <= ef)) ef = e;                                                         \
        const double s = act_saves_output(kind) ? (double)out[i] : (double)x0[i];      \
        if (!((double)save[i] == s)) es = 1;                                            \
        const double wg = gy[i] * naive_act_grad(kind, (double)x0[i], a);               \
        const double eg = fabs((double)gx[i] - wg) / (1 + fabs(wg));                    \
        if (!(eg <= eb)) eb = eg;                                                       \
    }                                                                                   \
    fc_geometry g0 = {0};                                                               \
    g0.channels = n;                                                                    \
    report(ef <= TOL && es == 0, "activation_" #SFX, &g0, kind, inplace, nthreads, ef); \
    report(eb <= TOL + 1e-6, "activation_backward_" #SFX, &g0, kind, inplace, nthreads, eb); \
    free(x); free(y); free(save); free(gy); free(gx); free(x0);                         \
}                                                                                       \
/* fc_add into a fresh array, into a and into b, with and without ReLU: the   \
 * sum and ReLU to the bit (NaN kept), inputs other than the output untouched. */ \
static void check_add_##SFX(int64_t n, int nthreads)                                    \
{                                                                                       \
    T *a = xmalloc(sizeof(T) * n), *b = xmalloc(sizeof(T) * n), *y = xmalloc(sizeof(T) * n); \
    T *a0 = xmalloc(sizeof(T) * n), *b0 = xmalloc(sizeof(T) * n);                       \
    for (int64_t i = 0; i < n; ++i) {                                                   \
        a0[i] = (T)rnd_val();                                                           \
        b0[i] = i % 7 == 3 ? (T)NAN : (T)rnd_val();                                     \
    }                                                                                   \
    int bad = 0;                                                                        \
    for (int relu = 0; relu <= 1; ++relu)                                               \
        for (int into = 0; into <= 2; ++into) {                                         \
            memcpy(a, a0, sizeof(T) * n); memcpy(b, b0, sizeof(T) * n);                 \
            T *out = into == 0 ? y : into == 1 ? a : b;                                 \
            fc_add(DT_##SFX, a, b, n, relu, out, nthreads);                             \
            for (int64_t i = 0; i < n; ++i) {                                           \
                const T sum = a0[i] + b0[i], want = relu && sum < 0 ? 0 : sum;          \
                bad |= memcmp(&out[i], &want, sizeof(T)) != 0;                          \
                bad |= out != a && memcmp(&a[i], &a0[i], sizeof(T)) != 0;               \
                bad |= out != b && memcmp(&b[i], &b0[i], sizeof(T)) != 0;               \
            }                                                                           \
        }                                                                               \
    fc_geometry g0 = {0};                                                               \
    g0.channels = n;                                                                    \
    report(!bad, "add_" #SFX, &g0, 0, 0, nthreads, bad);                                \
    free(a); free(b); free(y); free(a0); free(b0);                                      \
}                                                                                       \
static void check_prelu_##SFX(int64_t outer, int64_t channels, int64_t inner, int nthreads) \
{                                                                                       \
    const int64_t n = outer * channels * inner;                                         \
    T *x = xmalloc(sizeof(T) * n), *y = xmalloc(sizeof(T) * n), *gy = xmalloc(sizeof(T) * n); \
    T *gx = xmalloc(sizeof(T) * n), *w = xmalloc(sizeof(T) * channels);                 \
    T *gw = xmalloc(sizeof(T) * channels);                                              \
    double *wgw = xmalloc(sizeof(double) * channels);                                   \
    for (int64_t i = 0; i < n; ++i) { x[i] = (T)rnd_val(); gy[i] = (T)rnd_val(); }      \
    for (int64_t c = 0; c < channels; ++c) { w[c] = (T)rnd_val(); wgw[c] = 0; }         \
    fc_prelu(DT_##SFX, x, w, outer, channels, inner, y, nthreads);                      \
    fc_prelu_backward(DT_##SFX, gy, x, w, outer, channels, inner, gx, gw, nthreads);    \
    int bad = 0;                                                                        \
    for (int64_t i = 0; i < n; ++i) {                                                   \
        const int64_t c = (i / inner) % channels;                                       \
        const int pos = x[i] > 0;                                                       \
        bad |= y[i] != (pos ? x[i] : w[c] * x[i]) || gx[i] != (pos ? gy[i] : w[c] * gy[i]); \
        if (!pos) wgw[c] += (double)gy[i] * x[i];                                       \
    }                                                                                   \
    double eb = 0;                                                                      \
    for (int64_t c = 0; c < channels; ++c) {                                            \
        const double e = fabs(gw[c] - wgw[c]) / (1 + fabs(wgw[c])); if (!(e <= eb)) eb = e; \
    }                                                                                   \
    fc_geometry g0 = {0};                                                               \
    g0.channels = channels;                                                             \
    report(!bad && eb <= TOL * 16, "prelu_" #SFX, &g0, outer, (int)inner, nthreads, eb); \
    free(x); free(y); free(gy); free(gx); free(w); free(gw); free(wgw);                 \
}                                                                                       \
/* Softmax, log-softmax and cross-entropy of one (outer, C, inner) problem: the  \
 * naive row formulas in double; cross-entropy with weights, smoothing and an    \
 * ignored label every third position, its gradient against softmax - A. */     \
static void check_rows_##SFX(int64_t outer, int64_t C, int64_t inner, int nthreads)     \
{                                                                                       \
    const int64_t n = outer * C * inner, m = outer * inner;                             \
    const double eps = 0.2;                                                             \
    T *x = xmalloc(sizeof(T) * n), *y = xmalloc(sizeof(T) * n), *ly = xmalloc(sizeof(T) * n); \
    T *gy = xmalloc(sizeof(T) * n), *gx = xmalloc(sizeof(T) * n), *lgx = xmalloc(sizeof(T) * n); \
    T *cgx = xmalloc(sizeof(T) * n), *w = xmalloc(sizeof(T) * C), *loss = xmalloc(sizeof(T) * m); \
    T *grad = xmalloc(sizeof(T) * m);                                                   \
    int64_t *target = xmalloc(sizeof(int64_t) * m);                                     \
    double *p = xmalloc(sizeof(double) * C);                                            \
    double wsum = 0, wtotal = 0;                                                        \
    for (int64_t i = 0; i < n; ++i) { x[i] = (T)(5 * rnd_val()); gy[i] = (T)rnd_val(); } \
    for (int64_t c = 0; c < C; ++c) { w[c] = (T)(1.5 + rnd_val()); wtotal += w[c]; }    \
    for (int64_t i = 0; i < m; ++i) {                                                   \
        target[i] = i % 3 == 1 ? -7 : rnd_int(0, C - 1);                                \
        grad[i] = (T)rnd_val();                                                         \
    }                                                                                   \
    fc_softmax(DT_##SFX, x, outer, C, inner, 0, y, nthreads);                           \
    fc_softmax(DT_##SFX, x, outer, C, inner, 1, ly, nthreads);                          \
    fc_softmax_backward(DT_##SFX, gy, y, outer, C, inner, 0, gx, nthreads);             \
    fc_softmax_backward(DT_##SFX, gy, ly, outer, C, inner, 1, lgx, nthreads);           \
    const double got_wsum = fc_cross_entropy(DT_##SFX, x, target, w, outer, C, inner, -7, \
                                             eps, loss, nthreads);                      \
    fc_cross_entropy_backward(DT_##SFX, grad, 1, x, target, w, outer, C, inner, -7, eps, \
                              cgx, nthreads);                                           \
    double es = 0, ec = 0;                                                              \
    for (int64_t o = 0; o < outer; ++o)                                                 \
    for (int64_t j = 0; j < inner; ++j) {                                               \
        const int64_t base = o * C * inner + j, pos = o * inner + j;                    \
        double mx = -INFINITY, sum = 0, dot = 0, gsum = 0;                              \
        for (int64_t c = 0; c < C; ++c) if (x[base + c * inner] > mx) mx = x[base + c * inner]; \
        for (int64_t c = 0; c < C; ++c) sum += exp(x[base + c * inner] - mx);          \
        for (int64_t c = 0; c < C; ++c) {                                               \
            p[c] = exp(x[base + c * inner] - mx) / sum;                                 \
            dot += (double)gy[base + c * inner] * y[base + c * inner];                  \
            gsum += gy[base + c * inner];                                               \
        }                                                                               \
        double lossw = 0;                                                               \
        const int64_t t = target[pos];                                                  \
        if (t != -7) wsum += w[t];                                                      \
        for (int64_t c = 0; c < C; ++c) {                                               \
            const int64_t i = base + c * inner;                                         \
            const double logp = x[i] - mx - log(sum);                                   \
            double e = fabs(y[i] - p[c]) + fabs(ly[i] - logp)                           \
                       + fabs(gx[i] - y[i] * (gy[i] - dot))                             \
                       + fabs(lgx[i] - (gy[i] - exp(ly[i]) * gsum));                    \
            if (!(e <= es)) es = e;                                                     \
            double want = 0;                                                            \
            if (t != -7) {                                                              \
                const double a = eps / C * w[c] + (c == t ? (1 - eps) * w[t] : 0);      \
                lossw -= a * logp;                                                      \
                want = grad[pos] * (((1 - eps) * w[t] + eps / C * wtotal) * p[c] - a);  \
            }                                                                           \
            e = fabs(cgx[i] - want); if (!(e <= ec)) ec = e;                            \
        }                                                                               \
        const double e = fabs(loss[pos] - lossw) / (1 + fabs(lossw)); if (!(e <= ec)) ec = e; \
    }                                                                                   \
    if (!(fabs(got_wsum - wsum) <= TOL * (1 + wsum) * 16)) ec = 1;                      \
    fc_geometry g0 = {0};                                                               \
    g0.channels = C;                                                                    \
    report(es <= TOL * 16, "softmax_" #SFX, &g0, outer, (int)inner, nthreads, es);      \
    report(ec <= TOL * 64, "cross_entropy_" #SFX, &g0, outer, (int)inner, nthreads, ec); \
    free(x); free(y); free(ly); free(gy); free(gx); free(lgx); free(cgx); free(w);      \
    free(loss); free(grad); free(target); free(p);                                      \
}
DEFINE_ACTIVATION_CHECK(float, f32, 2e-6)
DEFINE_ACTIVATION_CHECK(double, f64, 1e-12)

static void test_activations(int count)
{
    for (int done = 0; done <= count / 10; ++done) {
        const int big = done == count / 10;
        for (int kind = FC_ACT_RELU; kind <= FC_ACT_TANH; ++kind) {
            /* past the thresholds: 2**18 elements (ReLU), 2**18 / 16 others */
            const int64_t n = big ? (kind <= FC_ACT_LEAKY_RELU ? 300007 : 20011)
                                  : rnd_int(1, 70);
            for (int nthreads = 1; nthreads <= 2; ++nthreads)
                for (int inplace = 0; inplace <= 1; ++inplace) {
                    check_activation_f32(kind, n, nthreads, inplace);
                    check_activation_f64(kind, n, nthreads, inplace);
                }
        }
        /* past the threads' threshold, and short ones */
        for (int nthreads = 1; nthreads <= 2; ++nthreads) {
            check_add_f32(big ? 300007 : rnd_int(1, 70), nthreads);
            check_add_f64(big ? 300007 : rnd_int(1, 70), nthreads);
        }
        const int64_t outer = big ? 40 : rnd_int(1, 4), C = big ? 17 : rnd_int(1, 9);
        const int64_t inner = big ? 100 : (rnd() % 2 ? 1 : rnd_int(1, 70));
        for (int nthreads = 1; nthreads <= 2; ++nthreads) {
            check_prelu_f32(outer, C, inner, nthreads);
            check_prelu_f64(outer, C, inner, nthreads);
            check_prelu_f32(1, 1, big ? 300007 : outer * C * inner, nthreads);  /* one slope */
            check_prelu_f64(1, 1, big ? 300007 : outer * C * inner, nthreads);
            check_rows_f32(outer, C, inner, nthreads);
            check_rows_f64(outer, C, inner, nthreads);
        }
    }
}

/* Strided copies: a random layout of `rank` dims (dst: a permuted, gapped,
 * sign-flipped C layout, so no two indices share an element; src: any
 * strides, zero and negative included), each buffer malloc'ed at exactly its
 * extent.  The kernel's dst buffer must equal a naive copy's, the gaps left
 * as they were. */
static int64_t copy_extent(int rank, const int64_t *shape, const int64_t *strides,
                           int64_t *first)
{
    int64_t lo = 0, hi = 0;
    for (int k = 0; k < rank; ++k) {
        const int64_t span = (shape[k] - 1) * strides[k];
        if (span < 0) lo += span; else hi += span;
    }
    *first = -lo;
    return hi - lo + 1;
}

#define DEFINE_COPY_CHECK(T, SFX)                                                       \
static void check_copy_##SFX(int rank, const int64_t *shape, int nthreads, int zero)    \
{                                                                                       \
    int64_t ds[FC_COPY_MAX_RANK], ss[FC_COPY_MAX_RANK], order[FC_COPY_MAX_RANK];         \
    for (int k = 0; k < rank; ++k) order[k] = k;                                        \
    for (int k = rank - 1; k > 0; --k) {                                                \
        const int64_t j = rnd_int(0, k), t = order[k];                                  \
        order[k] = order[j], order[j] = t;                                              \
    }                                                                                   \
    int64_t step = 1;                                                                   \
    for (int k = rank - 1; k >= 0; --k) {                                               \
        const int64_t d = order[k];                                                     \
        ds[d] = (rnd() % 3 ? step : -step);                                             \
        step *= shape[d] + rnd_int(0, 1);                                               \
        ss[d] = rnd() % 5 == 0 ? 0 : rnd_int(-3, 3);                                    \
    }                                                                                   \
    if (rnd() % 2) ds[order[rank - 1]] = 1;                                             \
    int64_t d0, s0, n = 1;                                                              \
    const int64_t nd = copy_extent(rank, shape, ds, &d0), ns = copy_extent(rank, shape, ss, &s0); \
    for (int k = 0; k < rank; ++k) n *= shape[k];                                       \
    T *dst = xmalloc(sizeof(T) * (size_t)nd), *want = xmalloc(sizeof(T) * (size_t)nd);  \
    T *src = xmalloc(sizeof(T) * (size_t)ns);                                           \
    for (int64_t i = 0; i < nd; ++i) dst[i] = want[i] = 777;                            \
    for (int64_t i = 0; i < ns; ++i) src[i] = (T)(i + 1);                               \
    for (int64_t i = 0; i < n; ++i) {                                                   \
        int64_t rest = i, od = d0, os = s0;                                             \
        for (int k = rank - 1; k >= 0; --k) {                                           \
            od += rest % shape[k] * ds[k];                                              \
            os += rest % shape[k] * ss[k];                                              \
            rest /= shape[k];                                                           \
        }                                                                               \
        want[od] = zero ? 0 : src[os];                                                  \
    }                                                                                   \
    fc_strided_copy(DT_##SFX, rank, shape, dst + d0, ds, zero ? NULL : src + s0, ss,    \
                    nthreads);                                                          \
    int ok = 1;                                                                         \
    for (int64_t i = 0; i < nd; ++i) ok &= dst[i] == want[i];                           \
    fc_geometry g0 = {0};                                                               \
    g0.channels = n;                                                                    \
    g0.in[0] = rank;                                                                    \
    report(ok, zero ? "strided_copy zeros " #SFX : "strided_copy " #SFX, &g0, 1, 0,      \
           nthreads, 0);                                                                \
    free(dst); free(want); free(src);                                                   \
}
DEFINE_COPY_CHECK(float, f32)
DEFINE_COPY_CHECK(double, f64)

static void test_copy(int count)
{
    for (int done = 0; done < count; ++done) {
        const int rank = (int)rnd_int(1, FC_COPY_MAX_RANK);
        int64_t shape[FC_COPY_MAX_RANK];
        for (int k = 0; k < rank; ++k) shape[k] = rnd_int(1, rank > 4 ? 3 : 7);
        for (int nthreads = 1; nthreads <= 2; ++nthreads)
            for (int zero = 0; zero <= 1; ++zero) {
                check_copy_f32(rank, shape, nthreads, zero);
                check_copy_f64(rank, shape, nthreads, zero);
            }
    }
    /* past FC_MIN_PARALLEL_WORK: one row longer than FC_COPY_PIECE (split
     * within the row), rows of pieces, and many short rows */
    const int64_t one_row[1] = {300007}, long_rows[2] = {3, 100003}, short_rows[3] = {1001, 37, 9};
    for (int nthreads = 1; nthreads <= 2; ++nthreads)
        for (int zero = 0; zero <= 1; ++zero) {
            check_copy_f32(1, one_row, nthreads, zero);
            check_copy_f64(2, long_rows, nthreads, zero);
            check_copy_f32(3, short_rows, nthreads, zero);
        }
}

int main(int argc, char **argv)
{
    const int random_cases = argc > 1 ? atoi(argv[1]) : 300;
    printf("fastconv C kernel tests: compiler %s, flags %s, OpenMP %s\n", fc_compiler(),
           fc_build_flags(), fc_openmp_enabled() ? "on" : "off");
    test_unfold_boundaries();
    test_unfold_random(random_cases);
    test_depthwise_wide(random_cases / 3);
    test_gemm();
    test_winograd(random_cases / 3);
    test_winograd_batch1();
    test_winograd_thread_blocks();
    test_winograd_narrow();
    test_wgrad_large();
    test_on_every_level(test_pooling, random_cases);
    test_on_every_level(test_resample, random_cases / 3);
    test_on_every_level(test_deform, random_cases / 10);
    test_on_every_level(test_batch_norm, random_cases / 3);
    test_on_every_level(test_activations, random_cases);
    test_on_every_level(test_copy, random_cases);
    test_dispatch();
    test_guards();
    test_stop(1);
    test_stop(2);
    printf("%lld passed, %lld failed\n", (long long)passed, (long long)failed);
    return failed != 0;
}
