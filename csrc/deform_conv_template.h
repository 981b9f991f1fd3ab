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

static inline TARGET int FC_FN(deform_locate_)(SCALAR y, SCALAR x, int64_t H, int64_t W,
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

/* Output positions are handled FC_DEFORM_BLOCK at a time: a sample's
 * position and weights depend on (image, offset group, tap, position) but
 * not on the channel, so each kernel locates a block's samples once into
 * this table (on the stack: the kernels allocate nothing) and reuses it for
 * every channel of the offset group, which made the per-sample work of the
 * channel loop a few loads and multiply-adds instead of a division, a floor
 * and the boundary tests (docs/performance.md, "Deformable convolution"). */
#define FC_DEFORM_BLOCK 128

/* Corner q of a sample: 0 top-left, 1 top-right, 2 bottom-left,
 * 3 bottom-right; FC_DEFORM_ALL: all four inside the image. */
#define FC_DEFORM_ALL 15

typedef struct {
    int64_t base[FC_DEFORM_BLOCK];         /* top-left corner's index y0*W + x0 */
    unsigned char corners[FC_DEFORM_BLOCK];/* bit q: corner q inside (0: no sample) */
    SCALAR w[4][FC_DEFORM_BLOCK];          /* corner weights (times the mask if given) */
    SCALAR ly[FC_DEFORM_BLOCK], lx[FC_DEFORM_BLOCK]; /* fractional parts */
} FC_FN(deform_table_);

/* Locates the n <= FC_DEFORM_BLOCK samples of tap (i, j) at output
 * positions l0 .. l0+n-1.  Samples outside (-1, H) x (-1, W) get corners 0
 * and zero weights, so they read nothing and add nothing. */
static TARGET void FC_FN(deform_fill_)(const fc_geometry *g, int64_t i, int64_t j,
                                       const FC_FN(deform_tap_) *tap, int64_t l0, int64_t n,
                                       int with_mask, FC_FN(deform_table_) *t)
{
    const int64_t H = g->in[1], W = g->in[2], OW = g->out[2];
    int64_t oh = l0 / OW, ow = l0 % OW;
    for (int64_t s = 0; s < n; ++s) {
        const int64_t l = l0 + s;
        const SCALAR y = (SCALAR)(oh * g->stride[1] - g->pad[1] + i * g->dilation[1])
                         + tap->dy[l];
        const SCALAR x = (SCALAR)(ow * g->stride[2] - g->pad[2] + j * g->dilation[2])
                         + tap->dx[l];
        if (++ow == OW) {
            ow = 0;
            ++oh;
        }
        FC_FN(deform_point_) pt;
        if (!FC_FN(deform_locate_)(y, x, H, W, &pt)) {
            t->base[s] = 0;
            t->corners[s] = 0;
            t->w[0][s] = t->w[1][s] = t->w[2][s] = t->w[3][s] = 0;
            t->ly[s] = t->lx[s] = 0;
            continue;
        }
        t->base[s] = pt.y0 * W + pt.x0;
        t->corners[s] = (unsigned char)((pt.in_y0 && pt.in_x0) | (pt.in_y0 && pt.in_x1) << 1
                                        | (pt.in_y1 && pt.in_x0) << 2
                                        | (pt.in_y1 && pt.in_x1) << 3);
        const SCALAR m = with_mask && tap->mask ? tap->mask[l] : 1;
        const SCALAR hy = 1 - pt.ly, hx = 1 - pt.lx;
        t->w[0][s] = m * hy * hx;
        t->w[1][s] = m * hy * pt.lx;
        t->w[2][s] = m * pt.ly * hx;
        t->w[3][s] = m * pt.ly * pt.lx;
        t->ly[s] = pt.ly;
        t->lx[s] = pt.lx;
    }
}

/* The four corner values of sample s in `plane` (zero outside the image). */
static inline TARGET void FC_FN(deform_corners_)(const SCALAR *plane, int64_t W,
                                                 const FC_FN(deform_table_) *t, int64_t s,
                                                 SCALAR v[4])
{
    const int64_t at = t->base[s];
    const unsigned in = t->corners[s];
    if (in == FC_DEFORM_ALL) {
        v[0] = plane[at];
        v[1] = plane[at + 1];
        v[2] = plane[at + W];
        v[3] = plane[at + W + 1];
        return;
    }
    v[0] = in & 1 ? plane[at] : 0;
    v[1] = in & 2 ? plane[at + 1] : 0;
    v[2] = in & 4 ? plane[at + W] : 0;
    v[3] = in & 8 ? plane[at + W + 1] : 0;
}

/* Tasks of a kernel that works on blocks of output positions. */
static inline int64_t FC_FN(deform_blocks_)(int64_t L)
{
    return (L + FC_DEFORM_BLOCK - 1) / FC_DEFORM_BLOCK;
}

/* fc_deform_im2col. */
static TARGET void FC_FN(deform_im2col_)(const void *x_, const void *offset_,
                                         const void *mask_, int64_t batch,
                                         const fc_geometry *g, int64_t offset_groups,
                                         void *col_, int nthreads)
{
    const SCALAR *x = x_, *offset = offset_, *mask = mask_;
    SCALAR *col = col_;
    const int64_t C = g->channels, H = g->in[1], W = g->in[2];
    const int64_t kw = g->kernel[2], kk = g->kernel[1] * kw;
    const int64_t L = g->out[1] * g->out[2], per_group = C / offset_groups;
    const int64_t blocks = FC_FN(deform_blocks_)(L);
    const int64_t tasks = batch * offset_groups * blocks;
    const int nt = fc_threads_for(nthreads, C * kk * batch * L * 4);
    fc_stop *stop = fc_stop_flag();
    const int64_t poll_every = fc_stop_period(8 * per_group * kk * FC_DEFORM_BLOCK);
    (void)nt;
    /* Task (b, og, block) writes the block's columns of image b in the rows
     * c*kk + k of its group's channels alone. */
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
    for (int64_t t = 0; t < tasks; ++t) {
        const int64_t b = t / (offset_groups * blocks), og = (t / blocks) % offset_groups;
        const int64_t l0 = (t % blocks) * FC_DEFORM_BLOCK;
        const int64_t n = L - l0 < FC_DEFORM_BLOCK ? L - l0 : FC_DEFORM_BLOCK;
        if (fc_stopping_at(stop, t, poll_every)) continue;
        FC_FN(deform_table_) tab;
        for (int64_t k = 0; k < kk; ++k) {
            const FC_FN(deform_tap_) tap = FC_FN(deform_tap_rows_)(offset, mask, b, og, k,
                                                                   offset_groups, kk, L);
            FC_FN(deform_fill_)(g, k / kw, k % kw, &tap, l0, n, 1, &tab);
            for (int64_t c = og * per_group; c < (og + 1) * per_group; ++c) {
                const SCALAR *plane = x + (b * C + c) * H * W;
                SCALAR *dst = col + (c * kk + k) * batch * L + b * L + l0;
                for (int64_t s = 0; s < n; ++s) {
                    SCALAR v[4];
                    FC_FN(deform_corners_)(plane, W, &tab, s, v);
                    dst[s] = tab.w[0][s] * v[0] + tab.w[1][s] * v[1] + tab.w[2][s] * v[2]
                             + tab.w[3][s] * v[3];
                }
            }
        }
    }
}

/* fc_deform_col2im. */
static TARGET void FC_FN(deform_col2im_)(const void *gcol_, const void *offset_,
                                         const void *mask_, int64_t batch,
                                         const fc_geometry *g, int64_t offset_groups,
                                         void *gx_, int nthreads)
{
    const SCALAR *gcol = gcol_, *offset = offset_, *mask = mask_;
    SCALAR *gx = gx_;
    const int64_t C = g->channels, H = g->in[1], W = g->in[2];
    const int64_t kw = g->kernel[2], kk = g->kernel[1] * kw;
    const int64_t L = g->out[1] * g->out[2], per_group = C / offset_groups;
    const int64_t blocks = FC_FN(deform_blocks_)(L);
    const int nt = fc_threads_for(nthreads, C * kk * batch * L * 4);
    /* Samples scatter anywhere in their plane: a task owns a slice of whole
     * (b, c) planes of gx, so no two threads ever add to one element.  The
     * group's channels are cut into as few slices as keep every thread busy
     * (each slice locates the samples anew). */
    const int64_t images = batch * offset_groups;
    int64_t slices = (4 * (int64_t)nt + images - 1) / images;
    if (nt == 1 || slices < 1) slices = 1;
    if (slices > per_group) slices = per_group;
    const int64_t tasks = images * slices;
    fc_stop *stop = fc_stop_flag();
    const int64_t poll_every = fc_stop_period((per_group / slices + 1) * (H * W + 8 * kk * L));
    (void)nt;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
    for (int64_t t = 0; t < tasks; ++t) {
        const int64_t b = t / (offset_groups * slices), og = (t / slices) % offset_groups;
        const int64_t slice = t % slices;
        const int64_t c0 = og * per_group + slice * per_group / slices;
        const int64_t c1 = og * per_group + (slice + 1) * per_group / slices;
        if (fc_stopping_at(stop, t, poll_every)) continue;
        memset(gx + (b * C + c0) * H * W, 0, (size_t)((c1 - c0) * H * W) * sizeof(SCALAR));
        FC_FN(deform_table_) tab;
        for (int64_t k = 0; k < kk; ++k) {
            const FC_FN(deform_tap_) tap = FC_FN(deform_tap_rows_)(offset, mask, b, og, k,
                                                                   offset_groups, kk, L);
            for (int64_t l0 = 0; l0 < blocks * FC_DEFORM_BLOCK; l0 += FC_DEFORM_BLOCK) {
                const int64_t n = L - l0 < FC_DEFORM_BLOCK ? L - l0 : FC_DEFORM_BLOCK;
                FC_FN(deform_fill_)(g, k / kw, k % kw, &tap, l0, n, 1, &tab);
                for (int64_t c = c0; c < c1; ++c) {
                    SCALAR *plane = gx + (b * C + c) * H * W;
                    const SCALAR *src = gcol + (c * kk + k) * batch * L + b * L + l0;
                    for (int64_t s = 0; s < n; ++s) {
                        const unsigned in = tab.corners[s];
                        const int64_t at = tab.base[s];
                        const SCALAR v = src[s];
                        if (in & 1) plane[at] += tab.w[0][s] * v;
                        if (in & 2) plane[at + 1] += tab.w[1][s] * v;
                        if (in & 4) plane[at + W] += tab.w[2][s] * v;
                        if (in & 8) plane[at + W + 1] += tab.w[3][s] * v;
                    }
                }
            }
        }
    }
}

/* fc_deform_offset_mask_grad. */
static TARGET void FC_FN(deform_offset_mask_grad_)(const void *gcol_, const void *x_,
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
    const int64_t blocks = FC_FN(deform_blocks_)(L);
    const int64_t tasks = batch * offset_groups * kk * blocks;
    const int nt = fc_threads_for(nthreads, C * kk * batch * L * 4);
    fc_stop *stop = fc_stop_flag();
    const int64_t poll_every = fc_stop_period(8 * per_group * FC_DEFORM_BLOCK);
    (void)nt;
    /* Task (b, og, k, block) owns the block of the dy, dx and mask rows of
     * its tap: it sums the derivative of every sample of the group's
     * channels into them. */
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
    for (int64_t t = 0; t < tasks; ++t) {
        const int64_t b = t / (offset_groups * kk * blocks);
        const int64_t og = (t / (kk * blocks)) % offset_groups, k = (t / blocks) % kk;
        const int64_t l0 = (t % blocks) * FC_DEFORM_BLOCK;
        const int64_t n = L - l0 < FC_DEFORM_BLOCK ? L - l0 : FC_DEFORM_BLOCK;
        if (fc_stopping_at(stop, t, poll_every)) continue;
        const FC_FN(deform_tap_) tap = FC_FN(deform_tap_rows_)(offset, mask, b, og, k,
                                                               offset_groups, kk, L);
        FC_FN(deform_table_) tab;
        FC_FN(deform_fill_)(g, k / kw, k % kw, &tap, l0, n, 0, &tab);
        SCALAR acc_y[FC_DEFORM_BLOCK] = {0}, acc_x[FC_DEFORM_BLOCK] = {0};
        SCALAR acc_m[FC_DEFORM_BLOCK] = {0};
        for (int64_t c = og * per_group; c < (og + 1) * per_group; ++c) {
            const SCALAR *plane = x + (b * C + c) * H * W;
            const SCALAR *src = gcol + (c * kk + k) * batch * L + b * L + l0;
            for (int64_t s = 0; s < n; ++s) {
                SCALAR v[4];
                FC_FN(deform_corners_)(plane, W, &tab, s, v);
                const SCALAR hy = 1 - tab.ly[s], hx = 1 - tab.lx[s];
                /* d(sample)/dy and d(sample)/dx of the bilinear form */
                acc_y[s] += src[s] * (hx * (v[2] - v[0]) + tab.lx[s] * (v[3] - v[1]));
                acc_x[s] += src[s] * (hy * (v[1] - v[0]) + tab.ly[s] * (v[3] - v[2]));
                acc_m[s] += src[s] * (tab.w[0][s] * v[0] + tab.w[1][s] * v[1]
                                      + tab.w[2][s] * v[2] + tab.w[3][s] * v[3]);
            }
        }
        /* the gradients have the offset's and the mask's layouts; a sample
         * outside the image adds nothing (its corners read as zero) */
        SCALAR *g_y = grad_offset + (tap.dy - offset) + l0, *g_x = g_y + L;
        const SCALAR *m = tap.mask ? tap.mask + l0 : NULL;
        for (int64_t s = 0; s < n; ++s) {
            g_y[s] = m ? m[s] * acc_y[s] : acc_y[s];
            g_x[s] = m ? m[s] * acc_x[s] : acc_x[s];
        }
        if (grad_mask) {
            SCALAR *g_m = grad_mask + (tap.mask - mask) + l0;
            for (int64_t s = 0; s < n; ++s) g_m[s] = acc_m[s];
        }
    }
}
