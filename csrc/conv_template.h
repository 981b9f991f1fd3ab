/* Convolution forward as an implicit GEMM, and the data gradient by GEMM +
 * col2im, for one (scalar type, instruction set).  Included by
 * isa_template.h after gemm_template.h (the GEMM) and im2col_template.h
 * (col2im).
 *
 * Each image is first rearranged into "phase planes": padded, and split by
 * stride (space-to-depth), so that for every kernel tap the inputs of one
 * output row are a contiguous run at a fixed offset.  The GEMM then packs its
 * B blocks straight from those planes (fc_b_source) with plain copies: no
 * column matrix is ever built, and no bounds test is left in the copy loop. */

#ifndef FC_CONV_SHARED
#define FC_CONV_SHARED
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
#endif

#ifndef FC_PHASE_PAIR_MAX
/* Widest phase row (elements) split_w2_ takes; it holds the padded input row
 * and both phase rows on the stack.  Wider rows take the general loop. */
#define FC_PHASE_PAIR_MAX 128
#endif

#if G_HAVE_TRANSPOSE
/* Both W phases of one input row when the stride along W is 2 and both
 * phases are kept: padded position e = 2i + f is index i of phase f, so
 * the padded row deinterleaved is the pair of phase rows.  `padded` holds
 * zeros around the row's place (kept from the previous row: only the row is
 * rewritten); one pair of vector loads gives a vector of each phase by two
 * permutes, instead of a strided scalar gather per phase that 16x16 inputs
 * (phase rows of 9) left unvectorised.  The results go through `even` and
 * `odd` so that only the q values of each phase row are written: the rows
 * after them may belong to another thread's channel. */
static inline __attribute__((always_inline)) TARGET void
FC_FN(split_w2_)(const SCALAR *row, int64_t n, int64_t pad, int64_t q, SCALAR *padded,
                 SCALAR *even, SCALAR *odd, SCALAR *dst_even, SCALAR *dst_odd)
{
    typedef FC_FN(uvec_) uvec;
    const FC_FN(ivec_) pick = FC_FN(iota_)() * 2;
    FC_FN(copy_run_)(padded + pad, row, n);
    for (int64_t i = 0; i < q; i += FC_LANES) {
        const FC_FN(vec_) a = *(const uvec *)(padded + 2 * i);
        const FC_FN(vec_) b = *(const uvec *)(padded + 2 * i + FC_LANES);
        *(uvec *)(even + i) = __builtin_shuffle(a, b, pick);
        *(uvec *)(odd + i) = __builtin_shuffle(a, b, pick + 1);
    }
    FC_FN(copy_run_)(dst_even, even, q);
    FC_FN(copy_run_)(dst_odd, odd, q);
}
#endif

/* build_phases_ for a stride of 2 along W with both phases kept and phase
 * rows of at most FC_PHASE_PAIR_MAX: each input row is read once, for both
 * of its phases (split_w2_).  Returns 0, writing nothing, for other shapes. */
static TARGET int FC_FN(build_phases_w2_)(const SCALAR *image, const fc_geometry *g,
                                          const fc_phases *p, int64_t c0, int64_t c1,
                                          SCALAR *dst)
{
#if G_HAVE_TRANSPOSE
    const int64_t q = p->q[2], pad = g->pad[2];
    if (g->stride[2] != 2 || p->phase[2] != 2 || q > FC_PHASE_PAIR_MAX) return 0;
    SCALAR padded[2 * (FC_PHASE_PAIR_MAX + FC_LANES)] __attribute__((aligned(64)));
    SCALAR even[FC_PHASE_PAIR_MAX + FC_LANES] __attribute__((aligned(64)));
    SCALAR odd[FC_PHASE_PAIR_MAX + FC_LANES] __attribute__((aligned(64)));
    /* Input columns some phase reads: [0, n), at padded positions pad + iw. */
    const int64_t n = g->in[2] < 2 * q - pad ? g->in[2] : 2 * q - pad;
    const int64_t plane_in = fc_spatial_size(g->in);
    /* The vector loads read padded[0, 2 * q rounded up to whole vectors). */
    memset(padded, 0, (size_t)(2 * ((q + FC_LANES - 1) / FC_LANES * FC_LANES)) * sizeof(SCALAR));
    for (int64_t c = c0; c < c1; ++c)
        for (int64_t f0 = 0; f0 < p->phase[0]; ++f0)
            for (int64_t f1 = 0; f1 < p->phase[1]; ++f1) {
                SCALAR *out = dst + (c * p->phases + (f0 * p->phase[1] + f1) * 2) * p->plane;
                for (int64_t t0 = 0; t0 < p->q[0]; ++t0) {
                    const int64_t id = f0 + t0 * g->stride[0] - g->pad[0];
                    for (int64_t t1 = 0; t1 < p->q[1]; ++t1, out += q) {
                        const int64_t ih = f1 + t1 * g->stride[1] - g->pad[1];
                        if ((uint64_t)id >= (uint64_t)g->in[0]
                            || (uint64_t)ih >= (uint64_t)g->in[1] || n <= 0) {
                            memset(out, 0, (size_t)q * sizeof(SCALAR));
                            memset(out + p->plane, 0, (size_t)q * sizeof(SCALAR));
                            continue;
                        }
                        FC_FN(split_w2_)(image + c * plane_in + (id * g->in[1] + ih) * g->in[2],
                                         n, pad, q, padded, even, odd, out, out + p->plane);
                    }
                }
            }
    return 1;
#else
    (void)image; (void)g; (void)p; (void)c0; (void)c1; (void)dst;
    return 0;
#endif
}

/* Phase planes of one image's channels [c0, c1) (see fc_phases): zeros where
 * the padded position falls outside the input. */
static TARGET void FC_FN(build_phases_)(const SCALAR *image, const fc_geometry *g,
                                       const fc_phases *p, int64_t c0, int64_t c1,
                                       SCALAR *dst)
{
    const int64_t plane_in = fc_spatial_size(g->in);
    const int64_t s0 = g->stride[0], s1 = g->stride[1], s2 = g->stride[2];
    if (FC_FN(build_phases_w2_)(image, g, p, c0, c1, dst)) return;
    for (int64_t c = c0; c < c1; ++c) {
        const SCALAR *src = image + c * plane_in;
        SCALAR *out = dst + c * p->phases * p->plane;
        for (int64_t f0 = 0; f0 < p->phase[0]; ++f0)
            for (int64_t f1 = 0; f1 < p->phase[1]; ++f1)
                for (int64_t f2 = 0; f2 < p->phase[2]; ++f2) {
                    /* Input column of this phase's index 0, and its valid run. */
                    const int64_t w0 = f2 - g->pad[2];
                    int64_t lo, hi;
                    fc_valid_range(g->in[2], p->q[2], s2, w0, &lo, &hi);
                    for (int64_t t0 = 0; t0 < p->q[0]; ++t0) {
                        const int64_t id = f0 + t0 * s0 - g->pad[0];
                        for (int64_t t1 = 0; t1 < p->q[1]; ++t1, out += p->q[2]) {
                            const int64_t ih = f1 + t1 * s1 - g->pad[1];
                            if ((uint64_t)id >= (uint64_t)g->in[0]
                                || (uint64_t)ih >= (uint64_t)g->in[1] || hi <= lo) {
                                memset(out, 0, (size_t)p->q[2] * sizeof(SCALAR));
                                continue;
                            }
                            const SCALAR *row = src + (id * g->in[1] + ih) * g->in[2] + w0;
                            memset(out, 0, (size_t)lo * sizeof(SCALAR));
                            if (s2 == 1)
                                memcpy(out + lo, row + lo, (size_t)(hi - lo) * sizeof(SCALAR));
                            else if (s2 == 2)   /* a constant stride: vectorised */
                                for (int64_t i = lo; i < hi; ++i) out[i] = row[2 * i];
                            else
                                for (int64_t i = lo; i < hi; ++i) out[i] = row[i * s2];
                            memset(out + hi, 0, (size_t)(p->q[2] - hi) * sizeof(SCALAR));
                        }
                    }
                }
    }
}

/* fc_b_source.pack: B's columns are output positions j = b*L + l of the
 * chunk's images, its rows the (channel, tap) pairs.  A panel's columns split
 * into runs along output rows; every B row reads each run contiguously, at
 * the row's own offset, so the run list is computed once per panel. */
static TARGET void FC_FN(pack_from_phases_)(const fc_b_source *self, int64_t pc,
                                           int64_t kc, int64_t j0, int64_t nc, int64_t nr,
                                           void *dst_)
{
    const fc_conv_source *s = (const fc_conv_source *)self;
    const SCALAR *planes = (const SCALAR *)s->planes;
    const int64_t ow_n = s->out[2], oh_n = s->out[1];
    const int64_t l_size = s->out[0] * oh_n * ow_n;
    SCALAR *dst = (SCALAR *)dst_;
    for (int64_t jr = 0; jr < nc; jr += nr, dst += kc * nr) {
        const int64_t cols = nc - jr < nr ? nc - jr : nr;
        int64_t run_src[FC_MAX_PANEL], run_dst[FC_MAX_PANEL], run_len[FC_MAX_PANEL];
        int runs = 0;
        for (int64_t q = 0, j = j0 + jr; q < cols; ++runs) {
            const int64_t b = j / l_size, l = j % l_size;
            const int64_t ow = l % ow_n, oh = (l / ow_n) % oh_n, od = l / (ow_n * oh_n);
            const int64_t len = ow_n - ow < cols - q ? ow_n - ow : cols - q;
            run_src[runs] = b * s->layout.image + (od * s->layout.q[1] + oh) * s->layout.q[2] + ow;
            run_dst[runs] = q;
            run_len[runs] = len;
            q += len;
            j += len;
        }
        for (int64_t i = 0; i < kc; ++i) {
            const SCALAR *src = planes + s->offsets[pc + i];
            SCALAR *row = dst + i * nr;
            for (int r = 0; r < runs; ++r)
                FC_FN(copy_run_)(row + run_dst[r], src + run_src[r], run_len[r]);
            for (int64_t q = cols; q < nr; ++q) row[q] = 0;
        }
    }
}

/* fc_conv_workspace: per image, one image's phase planes per thread; side
 * by side, every image's planes (the GEMM writes into y itself); then a GEMM
 * workspace per thread. */
static int64_t FC_FN(conv_workspace_)(const fc_geometry *g, int64_t batch, int64_t c_out,
                                      const fc_conv_schedule *s, int nthreads)
{
    const fc_phases p = fc_phase_layout(g);
    const int nt = nthreads < 1 ? 1 : nthreads;
    const int64_t gemm = nt * FC_FN(gemm_workspace_)(1);
    const int64_t scratch = fc_mul_sat(s->per_image ? nt : batch, p.image);
    (void)c_out;
    return scratch > INT64_MAX - gemm ? INT64_MAX : scratch + gemm;
}

/* 1x1 kernel, stride 1, no padding: an image is its own column matrix (the
 * caller's schedule says when to use that; this guards the reads). */
static int FC_FN(is_pointwise_)(const fc_geometry *g)
{
    for (int a = 0; a < FC_NDIM; ++a)
        if (g->kernel[a] != 1 || g->stride[a] != 1 || g->pad[a] != 0 || g->out[a] != g->in[a])
            return 0;
    return 1;
}

/* One group's GEMM: y_g (m x n, laid out as y_layout) = w_g (m x K) * B +
 * bias, B packed from the phase planes (rows from row0 on), or read from
 * `image` (k x n) when that is not NULL (pointwise); `store` as
 * gemm_source_'s. */
static void FC_FN(group_gemm_)(const SCALAR *w, int64_t m, int64_t k, int64_t n,
                              const fc_conv_source *source, int64_t row0,
                              const SCALAR *image, SCALAR *y, fc_c_layout y_layout,
                              const SCALAR *bias, int store, SCALAR *ws, fc_stop *stop,
                              int nthreads)
{
    fc_conv_source src = *source;
    src.offsets += row0;
    FC_FN(gemm_source_)(m, n, k, w, k, 1, image, n, 1, image ? NULL : &src.base, y, y_layout,
                        bias, store, ws, stop, nthreads);
}

/* fc_conv_forward. */
static int FC_FN(conv_forward_)(const void *x_, int64_t batch, const fc_geometry *g,
                                int64_t groups, const void *w_, const void *bias_,
                                int64_t c_out, void *y_, const fc_conv_schedule *s, void *ws_,
                                int64_t *offsets, int nthreads)
{
    const SCALAR *x = x_, *w = w_, *bias = bias_;
    SCALAR *y = y_, *ws = ws_;
    const fc_phases p = fc_phase_layout(g);
    const int64_t l_size = fc_spatial_size(g->out), plane_in = fc_spatial_size(g->in);
    const int64_t m = c_out / groups, k = g->channels / groups * fc_kernel_size(g);
    const int64_t gemm_one = FC_FN(gemm_workspace_)(1);
    fc_conv_source source = {{FC_FN(pack_from_phases_)}, ws, offsets, p,
                             {g->out[0], g->out[1], g->out[2]}};
    fc_stop *stop = fc_stop_flag();
    /* Reading a non-pointwise image as its own column matrix would run past it. */
    if (s->per_image && s->pointwise && !FC_FN(is_pointwise_)(g)) return -1;
    if (batch <= 0 || l_size <= 0 || m <= 0 || k <= 0) return 0;
    fc_phase_row_offsets(g, &p, offsets);
    if (!s->per_image) {
        /* The images side by side in one GEMM per group, column b*L + l
         * written straight into image b of y (an fc_c_layout of blocks). */
        SCALAR *gemm_ws = ws + batch * p.image;
        const fc_c_layout y_layout = {l_size, l_size, c_out * l_size};
        const int store = s->stream_stores ? FC_STORE_STREAM : 0;
        const int64_t planes = batch * g->channels;
        const int nt = fc_threads_for(nthreads, planes * p.phases * p.plane);
        (void)nt;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
        for (int64_t i = 0; i < planes; ++i) {
            const int64_t b = i / g->channels, c = i % g->channels;
            FC_FN(build_phases_)(x + b * g->channels * plane_in, g, &p, c, c + 1,
                                ws + b * p.image);
        }
        for (int64_t grp = 0; grp < groups; ++grp)
            FC_FN(group_gemm_)(w + grp * m * k, m, k, batch * l_size, &source, grp * k, NULL,
                               y + grp * m * l_size, y_layout, bias ? bias + grp * m : NULL,
                               store, gemm_ws, stop, nthreads);
        return 0;
    }
    /* One image per GEMM, written in place into y (batch, C_out, L): each
     * thread takes whole images (no synchronisation), or the threads split
     * each image's channels, then its GEMM's columns, as the schedule says. */
    const int pointwise = s->pointwise;
    const int per_thread_images = nthreads > 1 && s->threads_over_images;
    const int store = s->stream_stores ? FC_STORE_STREAM : 0;
    const int nt = per_thread_images ? nthreads : 1;
    (void)nt;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt) firstprivate(source) \
    if (per_thread_images)
#endif
    for (int64_t b = 0; b < batch; ++b) {
        const int t = fc_thread_num();   /* 0 when the loop runs serially */
        SCALAR *planes = ws + t * (p.image + gemm_one);
        if (fc_stopping(stop)) continue;
        SCALAR *gemm_ws = per_thread_images ? planes + p.image : ws + p.image;
        const int inner = per_thread_images ? 1 : nthreads;
        const SCALAR *image = x + b * g->channels * plane_in;
        source.planes = planes;
        if (pointwise) {
            /* nothing to rearrange: the GEMM reads the image itself */
        } else if (inner > 1) {
            const int ntc = fc_threads_for(inner, p.image);
            (void)ntc;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(ntc)
#endif
            for (int64_t c = 0; c < g->channels; ++c)
                FC_FN(build_phases_)(image, g, &p, c, c + 1, planes);
        } else {
            FC_FN(build_phases_)(image, g, &p, 0, g->channels, planes);
        }
        for (int64_t grp = 0; grp < groups; ++grp)
            FC_FN(group_gemm_)(w + grp * m * k, m, k, l_size, &source, grp * k,
                              pointwise ? image + grp * k * l_size : NULL,
                              y + (b * c_out + grp * m) * l_size, fc_c_plain(l_size),
                              bias ? bias + grp * m : NULL, store, gemm_ws, stop, inner);
    }
    return 0;
}

/* col2im through phase planes, for a stride along W (the adjoint of
 * build_phases_ + pack_from_phases_): each column row of channels [c0, c1)
 * is added whole, output row by output row, into the channel's phase planes
 * `buf` (p->phases * p->plane), then the planes are written back to the
 * input grid gx.  Plain col2im scatters every tap with stride s; here every
 * add is a contiguous run and only the final write is strided, once per
 * input value instead of once per tap (docs/performance.md).
 * (A kernel-side choice, not the plan's: docs/performance.md, "Decisions that stay in
 * the kernels".) */
static TARGET void FC_FN(col2im_phases_)(const SCALAR *cols, const fc_geometry *g,
                                        const fc_phases *p, int64_t c0, int64_t c1,
                                        SCALAR *restrict buf, SCALAR *gx)
{
    const int64_t taps = fc_kernel_size(g), l_size = fc_spatial_size(g->out);
    const int64_t plane_in = fc_spatial_size(g->in), oW = g->out[2];
    const int64_t s0 = g->stride[0], s1 = g->stride[1], s2 = g->stride[2];
    for (int64_t c = c0; c < c1; ++c) {
        memset(buf, 0, (size_t)(p->phases * p->plane) * sizeof(SCALAR));
        for (int64_t t = 0; t < taps; ++t) {
            const SCALAR *restrict src = cols + (c * taps + t) * l_size;
            SCALAR *restrict dst = buf + fc_phase_tap_offset(g, p, t);
            for (int64_t od = 0; od < g->out[0]; ++od)
                for (int64_t oh = 0; oh < g->out[1]; ++oh, src += oW) {
                    SCALAR *restrict row = dst + (od * p->q[1] + oh) * p->q[2];
                    for (int64_t i = 0; i < oW; ++i) row[i] += src[i];
                }
        }
        /* Inputs no window reads (stride past the kernel, or past the last
         * window) keep these zeros. */
        SCALAR *out = gx + c * plane_in;
        memset(out, 0, (size_t)plane_in * sizeof(SCALAR));
        for (int64_t id = 0; id < g->in[0]; ++id) {
            const int64_t e0 = id + g->pad[0], f0 = e0 % s0, t0 = e0 / s0;
            if (f0 >= p->phase[0] || t0 >= p->q[0]) continue;
            for (int64_t ih = 0; ih < g->in[1]; ++ih) {
                const int64_t e1 = ih + g->pad[1], f1 = e1 % s1, t1 = e1 / s1;
                if (f1 >= p->phase[1] || t1 >= p->q[1]) continue;
                /* Phase f2 = 0 of this input row's padded (t0, t1) row. */
                const SCALAR *in = buf + (f0 * p->phase[1] + f1) * p->phase[2] * p->plane
                                   + (t0 * p->q[1] + t1) * p->q[2];
                SCALAR *restrict dst = out + (id * g->in[1] + ih) * g->in[2];
                if (s2 == 2 && p->phase[2] == 2) {
                    /* Column iw is phase (iw + pad) % 2, index (iw + pad) / 2:
                     * two phase rows interleaved, a loop GCC vectorises. */
                    const int64_t pw = g->pad[2];
                    const SCALAR *restrict x0 = in + (pw & 1) * p->plane + (pw >> 1);
                    const SCALAR *restrict x1 = in + ((pw + 1) & 1) * p->plane + ((pw + 1) >> 1);
                    const int64_t n = g->in[2] < 2 * p->q[2] - pw ? g->in[2] : 2 * p->q[2] - pw;
                    int64_t j = 0;
                    for (; j < n / 2; ++j) {
                        dst[2 * j] = x0[j];
                        dst[2 * j + 1] = x1[j];
                    }
                    if (n % 2) dst[2 * j] = x0[j];
                    continue;
                }
                for (int64_t f2 = 0; f2 < p->phase[2]; ++f2) {
                    const int64_t w0 = f2 - g->pad[2];
                    int64_t lo, hi;
                    fc_valid_range(g->in[2], p->q[2], s2, w0, &lo, &hi);
                    for (int64_t i = lo; i < hi; ++i) dst[w0 + i * s2] = in[f2 * p->plane + i];
                }
            }
        }
    }
}

/* Data gradient by GEMM + col2im, one image at a time (the path for strides
 * and few input channels): cols (C_in*taps x L) = W^T grad_out per group,
 * folded back into grad_input.  Each thread takes whole images, its own
 * columns and GEMM scratch, or both steps split inside each image, as the
 * schedule says.  A stride along W folds through per-thread phase planes
 * (col2im_phases_), after all threads' columns and GEMM scratch. */
static int64_t FC_FN(conv_data_grad_workspace_)(const fc_geometry *g, int nthreads)
{
    const int nt = nthreads < 1 ? 1 : nthreads;
    const int64_t cols = fc_mul_sat(g->channels * fc_kernel_size(g), fc_spatial_size(g->out));
    const int64_t one = FC_FN(gemm_workspace_)(1);
    const fc_phases p = fc_phase_layout(g);
    const int64_t buf = g->stride[2] > 1 ? fc_mul_sat(p.phases, p.plane) : 0;
    if (cols > (INT64_MAX - one) / nt || buf > INT64_MAX / nt - (cols + one)) return INT64_MAX;
    return nt * (cols + one + buf);
}

/* fc_conv_data_grad. */
static void FC_FN(conv_data_grad_)(const void *gout_, int64_t batch, const fc_geometry *g,
                                   int64_t groups, const void *w_, int64_t c_out, void *gx_,
                                   const fc_conv_schedule *s, void *ws_, int nthreads)
{
    const SCALAR *gout = gout_, *w = w_;
    SCALAR *gx = gx_, *ws = ws_;
    const int64_t l_size = fc_spatial_size(g->out), plane_in = fc_spatial_size(g->in);
    const int64_t rows = g->channels * fc_kernel_size(g);
    const int64_t m = c_out / groups, k = rows / groups;
    fc_stop *stop = fc_stop_flag();
    const int64_t per_thread = rows * l_size + FC_FN(gemm_workspace_)(1);
    const fc_col_layout layout = {rows * l_size, l_size};
    const fc_phases p = fc_phase_layout(g);
    const int phased = g->stride[2] > 1;
    SCALAR *bufs = ws + (nthreads < 1 ? 1 : nthreads) * per_thread;
    const int per_thread_images = nthreads > 1 && s->threads_over_images;
    const int nt = per_thread_images ? nthreads : 1;
    (void)nt;
    if (batch <= 0 || l_size <= 0 || rows <= 0) return;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt) if (per_thread_images)
#endif
    for (int64_t b = 0; b < batch; ++b) {
        const int t = fc_thread_num();   /* 0 when the loop runs serially */
        const int inner = per_thread_images ? 1 : nthreads;
        SCALAR *cols = ws + t * per_thread;
        SCALAR *gemm_ws = cols + rows * l_size;
        const SCALAR *grad = gout + b * c_out * l_size;
        if (fc_stopping(stop)) continue;
        if (c_out == 0) {
            memset(cols, 0, (size_t)(rows * l_size) * sizeof(SCALAR));
        } else {
            for (int64_t grp = 0; grp < groups; ++grp)   /* W_g^T: unit row stride */
                FC_FN(gemm_source_)(k, l_size, m, w + grp * m * k, 1, k,
                                    grad + grp * m * l_size, l_size, 1, NULL,
                                    cols + grp * k * l_size, fc_c_plain(l_size), NULL, 0,
                                    gemm_ws, stop,
                                    inner);
        }
        SCALAR *gx_b = gx + b * g->channels * plane_in;
        if (!phased) {
            FC_FN(col2im_)(cols, 1, g, layout, gx_b, inner);
        } else if (inner > 1) {
            const int ntc = fc_threads_for(inner, g->channels * (plane_in + rows * l_size));
            (void)ntc;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(ntc)
#endif
            for (int64_t c = 0; c < g->channels; ++c)
                FC_FN(col2im_phases_)(cols, g, &p, c, c + 1,
                                     bufs + fc_thread_num() * p.phases * p.plane, gx_b);
        } else {
            FC_FN(col2im_phases_)(cols, g, &p, 0, g->channels, bufs + t * p.phases * p.plane,
                                 gx_b);
        }
    }
}

