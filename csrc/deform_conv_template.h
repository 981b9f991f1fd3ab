/* Deformable convolution (v1 and v2) for one scalar type and instruction
 * set: the column kernels around fastconv's GEMM.  Included by
 * isa_template.h once per dtype (no SIMD of its own: each table's copy is
 * the compiler's code for that table's target).
 *
 * torchvision.ops.deform_conv2d's semantics.  Tap k = i*kW + j of output
 * position l = oh*OW + ow samples each input channel c of offset group
 * og = c / (C / offset_groups) at
 *     y = oh*stride_h - pad_h + i*dilation_h + offset[b, og*2*kk + 2k,     l]
 *     x = ow*stride_w - pad_w + j*dilation_w + offset[b, og*2*kk + 2k + 1, l]
 * bilinearly: zero unless -1 < y < H and -1 < x < W, and each of the four
 * corners outside the image reads as zero; v2 multiplies the sample by
 * mask[b, og*kk + k, l].  The columns hold those samples: row c*kk + k,
 * column b*L + l (images side by side, so one GEMM per group covers a chunk).
 *
 * The geometry is 2-D: g->channels = C_in, the H and W entries of in, out,
 * kernel, stride, pad and dilation (index 1 and 2; index 0 is unused). */

/* Where one sample lands: the four corner weights and which corners are
 * inside the image.  Returns 0 (nothing to read) outside (-1, H) x (-1, W),
 * which also catches NaN offsets before any float-to-int conversion. */
typedef struct {
    int64_t y0, x0;               /* top-left corner */
    SCALAR ly, lx;                /* fractional parts */
    int in_y0, in_y1, in_x0, in_x1;
} FC_FN(deform_point_);

static inline int FC_FN(deform_locate_)(SCALAR y, SCALAR x, int64_t H, int64_t W,
                                        FC_FN(deform_point_) *pt)
{
    if (!(y > -1 && y < (SCALAR)H && x > -1 && x < (SCALAR)W)) return 0;
    const SCALAR yf = (SCALAR)floor((double)y), xf = (SCALAR)floor((double)x);
    pt->y0 = (int64_t)yf;
    pt->x0 = (int64_t)xf;
    pt->ly = y - yf;
    pt->lx = x - xf;
    pt->in_y0 = pt->y0 >= 0;
    pt->in_y1 = pt->y0 + 1 < H;
    pt->in_x0 = pt->x0 >= 0;
    pt->in_x1 = pt->x0 + 1 < W;
    return 1;
}

/* The four corner values of `plane` around pt (zero outside). */
static inline void FC_FN(deform_corners_)(const SCALAR *plane, int64_t W,
                                          const FC_FN(deform_point_) *pt, SCALAR v[4])
{
    const SCALAR *row0 = plane + pt->y0 * W, *row1 = row0 + W;
    v[0] = pt->in_y0 && pt->in_x0 ? row0[pt->x0] : 0;
    v[1] = pt->in_y0 && pt->in_x1 ? row0[pt->x0 + 1] : 0;
    v[2] = pt->in_y1 && pt->in_x0 ? row1[pt->x0] : 0;
    v[3] = pt->in_y1 && pt->in_x1 ? row1[pt->x0 + 1] : 0;
}

/* The offset rows (dy, dx) and mask row (NULL without a mask) of image b,
 * offset group og, tap k: each L = OH*OW values. */
typedef struct {
    const SCALAR *dy, *dx, *mask;
} FC_FN(deform_tap_);

static inline FC_FN(deform_tap_) FC_FN(deform_tap_rows_)(const SCALAR *offset,
                                                         const SCALAR *mask, int64_t b,
                                                         int64_t og, int64_t k,
                                                         int64_t offset_groups, int64_t kk,
                                                         int64_t L)
{
    FC_FN(deform_tap_) t;
    t.dy = offset + ((b * offset_groups + og) * 2 * kk + 2 * k) * L;
    t.dx = t.dy + L;
    t.mask = mask ? mask + ((b * offset_groups + og) * kk + k) * L : NULL;
    return t;
}

/* Sample position of tap (i, j) at output l, and the offsets' rows. */
#define FC_DEFORM_YX(g, i, j, l, off_y, off_x, y, x)                                    \
    const SCALAR y = (SCALAR)(((l) / (g)->out[2]) * (g)->stride[1] - (g)->pad[1]          \
                              + (i) * (g)->dilation[1]) + (off_y)[l];                  \
    const SCALAR x = (SCALAR)(((l) % (g)->out[2]) * (g)->stride[2] - (g)->pad[2]          \
                              + (j) * (g)->dilation[2]) + (off_x)[l]

/* fc_deform_im2col. */
static void FC_FN(deform_im2col_)(const void *x_, const void *offset_, const void *mask_,
                                  int64_t batch, const fc_geometry *g, int64_t offset_groups,
                                  void *col_, int nthreads)
{
    const SCALAR *x = x_, *offset = offset_, *mask = mask_;
    SCALAR *col = col_;
    const int64_t C = g->channels, H = g->in[1], W = g->in[2];
    const int64_t kw = g->kernel[2], kk = g->kernel[1] * kw;
    const int64_t L = g->out[1] * g->out[2], per_group = C / offset_groups;
    const int64_t tasks = C * kk * batch;
    const int nt = fc_threads_for(nthreads, tasks * L * 4);
    fc_stop *stop = fc_stop_flag();
    const int64_t poll_every = fc_stop_period(8 * L);   /* 4 corners per sample */
    (void)nt;
    /* Task (row r = c*kk + k, image b) writes col[r, b*L : (b+1)*L] alone. */
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
    for (int64_t t = 0; t < tasks; ++t) {
        const int64_t r = t / batch, b = t % batch, c = r / kk, k = r % kk;
        const int64_t og = c / per_group, i = k / kw, j = k % kw;
        const SCALAR *plane = x + (b * C + c) * H * W;
        if (fc_stopping_at(stop, t, poll_every)) continue;
        const FC_FN(deform_tap_) tap = FC_FN(deform_tap_rows_)(offset, mask, b, og, k,
                                                               offset_groups, kk, L);
        const SCALAR *off_y = tap.dy, *off_x = tap.dx, *m = tap.mask;
        SCALAR *dst = col + r * batch * L + b * L;
        for (int64_t l = 0; l < L; ++l) {
            FC_DEFORM_YX(g, i, j, l, off_y, off_x, yy, xx);
            FC_FN(deform_point_) pt;
            SCALAR v = 0;
            if (FC_FN(deform_locate_)(yy, xx, H, W, &pt)) {
                SCALAR c4[4];
                FC_FN(deform_corners_)(plane, W, &pt, c4);
                const SCALAR hy = 1 - pt.ly, hx = 1 - pt.lx;
                v = hy * hx * c4[0] + hy * pt.lx * c4[1] + pt.ly * hx * c4[2]
                    + pt.ly * pt.lx * c4[3];
            }
            dst[l] = m ? m[l] * v : v;
        }
    }
}

/* fc_deform_col2im. */
static void FC_FN(deform_col2im_)(const void *gcol_, const void *offset_, const void *mask_,
                                  int64_t batch, const fc_geometry *g, int64_t offset_groups,
                                  void *gx_, int nthreads)
{
    const SCALAR *gcol = gcol_, *offset = offset_, *mask = mask_;
    SCALAR *gx = gx_;
    const int64_t C = g->channels, H = g->in[1], W = g->in[2];
    const int64_t kw = g->kernel[2], kk = g->kernel[1] * kw;
    const int64_t L = g->out[1] * g->out[2], per_group = C / offset_groups;
    const int nt = fc_threads_for(nthreads, C * kk * batch * L * 4);
    fc_stop *stop = fc_stop_flag();
    const int64_t poll_every = fc_stop_period(H * W + 8 * kk * L);
    (void)nt;
    /* Samples scatter anywhere in their plane: a thread owns whole (b, c)
     * planes of gx, so no two threads ever add to one element. */
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
    for (int64_t t = 0; t < batch * C; ++t) {
        const int64_t b = t / C, c = t % C, og = c / per_group;
        SCALAR *plane = gx + t * H * W;
        if (fc_stopping_at(stop, t, poll_every)) continue;
        memset(plane, 0, (size_t)(H * W) * sizeof(SCALAR));
        for (int64_t k = 0; k < kk; ++k) {
            const int64_t i = k / kw, j = k % kw;
            const FC_FN(deform_tap_) tap = FC_FN(deform_tap_rows_)(offset, mask, b, og, k,
                                                                   offset_groups, kk, L);
            const SCALAR *off_y = tap.dy, *off_x = tap.dx, *m = tap.mask;
            const SCALAR *src = gcol + (c * kk + k) * batch * L + b * L;
            for (int64_t l = 0; l < L; ++l) {
                FC_DEFORM_YX(g, i, j, l, off_y, off_x, yy, xx);
                FC_FN(deform_point_) pt;
                if (!FC_FN(deform_locate_)(yy, xx, H, W, &pt)) continue;
                const SCALAR v = m ? m[l] * src[l] : src[l];
                const SCALAR hy = 1 - pt.ly, hx = 1 - pt.lx;
                SCALAR *row0 = plane + pt.y0 * W, *row1 = row0 + W;
                if (pt.in_y0 && pt.in_x0) row0[pt.x0] += hy * hx * v;
                if (pt.in_y0 && pt.in_x1) row0[pt.x0 + 1] += hy * pt.lx * v;
                if (pt.in_y1 && pt.in_x0) row1[pt.x0] += pt.ly * hx * v;
                if (pt.in_y1 && pt.in_x1) row1[pt.x0 + 1] += pt.ly * pt.lx * v;
            }
        }
    }
}

/* fc_deform_offset_mask_grad. */
static void FC_FN(deform_offset_mask_grad_)(const void *gcol_, const void *x_,
                                            const void *offset_, const void *mask_,
                                            int64_t batch, const fc_geometry *g,
                                            int64_t offset_groups, void *grad_offset_,
                                            void *grad_mask_, int nthreads)
{
    const SCALAR *gcol = gcol_, *x = x_, *offset = offset_, *mask = mask_;
    SCALAR *grad_offset = grad_offset_, *grad_mask = grad_mask_;
    const int64_t C = g->channels, H = g->in[1], W = g->in[2];
    const int64_t kw = g->kernel[2], kk = g->kernel[1] * kw;
    const int64_t L = g->out[1] * g->out[2], per_group = C / offset_groups;
    const int64_t tasks = batch * offset_groups * kk;
    const int nt = fc_threads_for(nthreads, C * kk * batch * L * 4);
    fc_stop *stop = fc_stop_flag();
    const int64_t poll_every = fc_stop_period(8 * per_group * L);
    (void)nt;
    /* Task (b, og, k) owns the dy, dx and mask rows of its tap: it sums the
     * derivative of every sample of the group's channels into them. */
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
    for (int64_t t = 0; t < tasks; ++t) {
        const int64_t b = t / (offset_groups * kk), og = (t / kk) % offset_groups, k = t % kk;
        const int64_t i = k / kw, j = k % kw;
        const FC_FN(deform_tap_) tap = FC_FN(deform_tap_rows_)(offset, mask, b, og, k,
                                                               offset_groups, kk, L);
        const SCALAR *off_y = tap.dy, *off_x = tap.dx, *m = tap.mask;
        if (fc_stopping_at(stop, t, poll_every)) continue;
        /* the gradients have the offset's and the mask's layouts */
        SCALAR *g_y = grad_offset + (tap.dy - offset), *g_x = g_y + L;
        SCALAR *g_m = grad_mask ? grad_mask + (tap.mask - mask) : NULL;
        memset(g_y, 0, (size_t)(2 * L) * sizeof(SCALAR));
        if (g_m) memset(g_m, 0, (size_t)L * sizeof(SCALAR));
        for (int64_t c = og * per_group; c < (og + 1) * per_group; ++c) {
            const SCALAR *plane = x + (b * C + c) * H * W;
            const SCALAR *src = gcol + (c * kk + k) * batch * L + b * L;
            for (int64_t l = 0; l < L; ++l) {
                FC_DEFORM_YX(g, i, j, l, off_y, off_x, yy, xx);
                FC_FN(deform_point_) pt;
                if (!FC_FN(deform_locate_)(yy, xx, H, W, &pt)) continue;
                SCALAR v[4];
                FC_FN(deform_corners_)(plane, W, &pt, v);
                const SCALAR hy = 1 - pt.ly, hx = 1 - pt.lx;
                /* d(sample)/dy and d(sample)/dx of the bilinear form */
                g_y[l] += src[l] * (hx * (v[2] - v[0]) + pt.lx * (v[3] - v[1]));
                g_x[l] += src[l] * (hy * (v[1] - v[0]) + pt.ly * (v[3] - v[2]));
                if (g_m)
                    g_m[l] += src[l] * (hy * hx * v[0] + hy * pt.lx * v[1]
                                        + pt.ly * hx * v[2] + pt.ly * pt.lx * v[3]);
            }
        }
        if (m)
            for (int64_t l = 0; l < L; ++l) {
                g_y[l] *= m[l];
                g_x[l] *= m[l];
            }
    }
}

#undef FC_DEFORM_YX
