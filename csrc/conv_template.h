/* Implicit-GEMM convolution forward for one scalar type (SCALAR, SFX);
 * included by conv.c once per dtype. */

#define C_FN(name) FC_CAT(name, SFX)

/* Phase planes of one image's channels [c0, c1) (see fc_phases): zeros where
 * the padded position falls outside the input. */
static void C_FN(build_phases_)(const SCALAR *image, const fc_geometry *g,
                                const fc_phases *p, int64_t c0, int64_t c1, SCALAR *dst)
{
    const int64_t plane_in = fc_spatial_size(g->in);
    const int64_t s0 = g->stride[0], s1 = g->stride[1], s2 = g->stride[2];
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
static void C_FN(pack_from_phases_)(const fc_b_source *self, int64_t pc, int64_t kc,
                                    int64_t j0, int64_t nc, int64_t nr, void *dst_)
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
                memcpy(row + run_dst[r], src + run_src[r], (size_t)run_len[r] * sizeof(SCALAR));
            for (int64_t q = cols; q < nr; ++q) row[q] = 0;
        }
    }
}

int64_t C_FN(fc_conv_workspace_)(const fc_geometry *g, int64_t batch, int per_image,
                                 int nthreads)
{
    const fc_phases p = fc_phase_layout(g);
    const int nt = nthreads < 1 ? 1 : nthreads;
    const int64_t gemm_one = C_FN(fc_gemm_workspace_)(1);
    const int64_t planes = fc_mul_sat(per_image ? nt : batch, p.image);
    const int64_t gemm = nt * gemm_one;
    return planes > INT64_MAX - gemm ? INT64_MAX : planes + gemm;
}

/* 1x1 kernel, stride 1, no padding: an image is its own column matrix. */
static int C_FN(is_pointwise_)(const fc_geometry *g)
{
    for (int a = 0; a < FC_NDIM; ++a)
        if (g->kernel[a] != 1 || g->stride[a] != 1 || g->pad[a] != 0 || g->out[a] != g->in[a])
            return 0;
    return 1;
}

/* One group's GEMM: y_g (m x n) = w_g (m x K) * B + bias, B packed from the
 * phase planes (rows from row0 on), or read from `image` (k x n) when that is
 * not NULL (pointwise); `store` as fc_gemm_source_'s. */
static void C_FN(group_gemm_)(const SCALAR *w, int64_t m, int64_t k, int64_t n,
                              const fc_conv_source *source, int64_t row0,
                              const SCALAR *image, SCALAR *y, int64_t ldy,
                              const SCALAR *bias, int store, SCALAR *ws, int nthreads)
{
    fc_conv_source src = *source;
    src.offsets += row0;
    C_FN(fc_gemm_source_)(m, n, k, w, k, 1, image, n, 1, image ? NULL : &src.base, y, ldy,
                          bias, store, ws, nthreads);
}

void C_FN(fc_conv_forward_)(const SCALAR *x, int64_t batch, const fc_geometry *g,
                            int64_t groups, const SCALAR *w, const SCALAR *bias,
                            int64_t c_out, SCALAR *y, int per_image, SCALAR *ws,
                            int64_t *offsets, int nthreads)
{
    const fc_phases p = fc_phase_layout(g);
    const int64_t l_size = fc_spatial_size(g->out), plane_in = fc_spatial_size(g->in);
    const int64_t m = c_out / groups, k = g->channels / groups * fc_kernel_size(g);
    const int64_t gemm_one = C_FN(fc_gemm_workspace_)(1);
    fc_conv_source source = {{C_FN(pack_from_phases_)}, ws, offsets, p,
                             {g->out[0], g->out[1], g->out[2]}};
    if (batch <= 0 || l_size <= 0 || m <= 0 || k <= 0) return;
    fc_phase_row_offsets(g, &p, offsets);
    if (!per_image) {
        /* The chunk side by side: y is (C_out, batch * L). */
        SCALAR *gemm_ws = ws + batch * p.image;
        const int64_t planes = batch * g->channels;
        const int nt = fc_threads_for(nthreads, planes * p.phases * p.plane);
        (void)nt;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
        for (int64_t i = 0; i < planes; ++i) {
            const int64_t b = i / g->channels, c = i % g->channels;
            C_FN(build_phases_)(x + b * g->channels * plane_in, g, &p, c, c + 1,
                                ws + b * p.image);
        }
        for (int64_t grp = 0; grp < groups; ++grp)
            C_FN(group_gemm_)(w + grp * m * k, m, k, batch * l_size, &source, grp * k, NULL,
                              y + grp * m * batch * l_size, batch * l_size,
                              bias ? bias + grp * m : NULL, 0, gemm_ws, nthreads);
        return;
    }
    /* One image per GEMM, written in place into y (batch, C_out, L).  With
     * images to spare, each thread takes whole images (no synchronisation);
     * else threads split each image's channels, then its GEMM's columns. */
    const int pointwise = C_FN(is_pointwise_)(g);
    const int per_thread_images = nthreads > 1 && batch >= nthreads;
    /* An output past a few MiB leaves cache before anyone reads it: write
     * it without first reading every line in (cifar fwd 2.3 -> 1.8 ms). */
    const int store = batch * c_out * l_size * (int64_t)sizeof(SCALAR) >= FC_STREAM_MIN_BYTES
                      ? FC_STORE_STREAM : 0;
    const int nt = per_thread_images ? nthreads : 1;
    (void)nt;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt) firstprivate(source) \
    if (per_thread_images)
#endif
    for (int64_t b = 0; b < batch; ++b) {
        const int t = fc_thread_num();   /* 0 when the loop runs serially */
        SCALAR *planes = ws + t * (p.image + gemm_one);
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
                C_FN(build_phases_)(image, g, &p, c, c + 1, planes);
        } else {
            C_FN(build_phases_)(image, g, &p, 0, g->channels, planes);
        }
        for (int64_t grp = 0; grp < groups; ++grp)
            C_FN(group_gemm_)(w + grp * m * k, m, k, l_size, &source, grp * k,
                              pointwise ? image + grp * k * l_size : NULL,
                              y + (b * c_out + grp * m) * l_size, l_size,
                              bias ? bias + grp * m : NULL, store, gemm_ws, inner);
    }
}

/* col2im through phase planes, for a stride along W (the adjoint of
 * build_phases_ + pack_from_phases_): each column row of channels [c0, c1)
 * is added whole, output row by output row, into the channel's phase planes
 * `buf` (p->phases * p->plane), then the planes are written back to the
 * input grid gx.  Plain col2im scatters every tap with stride s; here every
 * add is a contiguous run and only the final write is strided, once per
 * input value instead of once per tap (strided data gradient f32: 27.0 ->
 * 23.2 ms). */
static void C_FN(col2im_phases_)(const SCALAR *cols, const fc_geometry *g, const fc_phases *p,
                                 int64_t c0, int64_t c1, SCALAR *restrict buf, SCALAR *gx)
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
 * folded back into grad_input.  With images to spare each thread takes whole
 * images, its own columns and GEMM scratch; else both steps split inside.
 * A stride along W folds through per-thread phase planes (col2im_phases_),
 * after all threads' columns and GEMM scratch. */
int64_t C_FN(fc_conv_data_grad_workspace_)(const fc_geometry *g, int nthreads)
{
    const int nt = nthreads < 1 ? 1 : nthreads;
    const int64_t cols = fc_mul_sat(g->channels * fc_kernel_size(g), fc_spatial_size(g->out));
    const int64_t one = C_FN(fc_gemm_workspace_)(1);
    const fc_phases p = fc_phase_layout(g);
    const int64_t buf = g->stride[2] > 1 ? fc_mul_sat(p.phases, p.plane) : 0;
    if (cols > (INT64_MAX - one) / nt || buf > INT64_MAX / nt - (cols + one)) return INT64_MAX;
    return nt * (cols + one + buf);
}

void C_FN(fc_conv_data_grad_)(const SCALAR *gout, int64_t batch, const fc_geometry *g,
                              int64_t groups, const SCALAR *w, int64_t c_out, SCALAR *gx,
                              SCALAR *ws, int nthreads)
{
    const int64_t l_size = fc_spatial_size(g->out), plane_in = fc_spatial_size(g->in);
    const int64_t rows = g->channels * fc_kernel_size(g);
    const int64_t m = c_out / groups, k = rows / groups;
    const int64_t per_thread = rows * l_size + C_FN(fc_gemm_workspace_)(1);
    const fc_col_layout layout = {rows * l_size, l_size};
    const fc_phases p = fc_phase_layout(g);
    const int phased = g->stride[2] > 1;
    SCALAR *bufs = ws + (nthreads < 1 ? 1 : nthreads) * per_thread;
    const int per_thread_images = nthreads > 1 && batch >= nthreads;
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
        if (c_out == 0) {
            memset(cols, 0, (size_t)(rows * l_size) * sizeof(SCALAR));
        } else {
            for (int64_t grp = 0; grp < groups; ++grp)   /* W_g^T: unit row stride */
                C_FN(fc_gemm_source_)(k, l_size, m, w + grp * m * k, 1, k,
                                      grad + grp * m * l_size, l_size, 1, NULL,
                                      cols + grp * k * l_size, l_size, NULL, 0, gemm_ws,
                                      inner);
        }
        SCALAR *gx_b = gx + b * g->channels * plane_in;
        if (!phased) {
            C_FN(fc_col2im_)(cols, 1, g, layout, gx_b, inner);
        } else if (inner > 1) {
            const int ntc = fc_threads_for(inner, g->channels * (plane_in + rows * l_size));
            (void)ntc;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(ntc)
#endif
            for (int64_t c = 0; c < g->channels; ++c)
                C_FN(col2im_phases_)(cols, g, &p, c, c + 1,
                                     bufs + fc_thread_num() * p.phases * p.plane, gx_b);
        } else {
            C_FN(col2im_phases_)(cols, g, &p, 0, g->channels, bufs + t * p.phases * p.plane,
                                 gx_b);
        }
    }
}

#undef C_FN
