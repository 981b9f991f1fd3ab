/* im2col / col2im for one (scalar type, instruction set).  Included by
 * isa_template.h once per dtype: one source, every dtype. */


/* Fill one column row: tap (kd, kh, kw) of channel image `im`. */
static void FC_FN(im2col_row_)(const SCALAR *im, const fc_geometry *g,
                               int64_t kd, int64_t kh, int64_t kw, SCALAR *dst)
{
    const int64_t D = g->in[0], H = g->in[1], W = g->in[2];
    const int64_t oD = g->out[0], oH = g->out[1], oW = g->out[2];
    const int64_t sw = g->stride[2];
    const int64_t w0 = kw * g->dilation[2] - g->pad[2];
    int64_t lo, hi;
    /* The valid run along W is the same for every output row of this tap. */
    fc_valid_range(W, oW, sw, w0, &lo, &hi);
    for (int64_t od = 0; od < oD; ++od) {
        const int64_t id = od * g->stride[0] - g->pad[0] + kd * g->dilation[0];
        for (int64_t oh = 0; oh < oH; ++oh, dst += oW) {
            const int64_t ih = oh * g->stride[1] - g->pad[1] + kh * g->dilation[1];
            /* One unsigned compare checks 0 <= i < n (Caffe's trick). */
            if ((uint64_t)id >= (uint64_t)D || (uint64_t)ih >= (uint64_t)H) {
                memset(dst, 0, (size_t)oW * sizeof(SCALAR));  /* padding row */
                continue;
            }
            /* Index from the row start: w0 may be negative (left padding). */
            const SCALAR *src = im + (id * H + ih) * W;
            /* zeros | valid run | zeros: the run is a memcpy when stride is 1. */
            memset(dst, 0, (size_t)lo * sizeof(SCALAR));
            if (hi <= lo) {
                /* no valid tap in this row: all padding */
            } else if (sw == 1) {
                memcpy(dst + lo, src + w0 + lo, (size_t)(hi - lo) * sizeof(SCALAR));
            } else {
                for (int64_t ow = lo; ow < hi; ++ow) dst[ow] = src[w0 + ow * sw];
            }
            memset(dst + hi, 0, (size_t)(oW - hi) * sizeof(SCALAR));
        }
    }
}

/* fc_im2col. */
static void FC_FN(im2col_)(const void *im_, int64_t batch, const fc_geometry *g,
                           fc_col_layout layout, void *col_, int nthreads)
{
    const SCALAR *im = im_;
    SCALAR *col = col_;
    const int64_t taps = fc_kernel_size(g);
    const int64_t rows = g->channels * taps;
    const int64_t image_size = g->channels * fc_spatial_size(g->in);
    const int64_t plane = fc_spatial_size(g->in);
    const int64_t total = batch * rows;
    const int batch_inner = layout.batch_stride < layout.row_stride;  /* (K, B, L) */
    const int nt = fc_threads_for(nthreads, total * fc_spatial_size(g->out));
    fc_stop *stop = fc_stop_flag();
    const int64_t poll_every = fc_stop_period(fc_spatial_size(g->out));
    (void)nt;
    /* Every (image, row) pair writes its own output row: no races. */
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
    for (int64_t t = 0; t < total; ++t) {
        if (fc_stopping_at(stop, t, poll_every)) continue;
        /* Visit rows in memory order so the output is one sequential stream. */
        const int64_t b = batch_inner ? t % batch : t / rows;
        const int64_t r = batch_inner ? t / batch : t % rows;
        const int64_t c = r / taps;
        int64_t kd, kh, kw;
        fc_tap_offsets(g, r % taps, &kd, &kh, &kw);
        FC_FN(im2col_row_)(im + b * image_size + c * plane, g, kd, kh, kw,
                           col + b * layout.batch_stride + r * layout.row_stride);
    }
}

/* dst[i * stride] += src[i] for i < n.  restrict (the column buffer never
 * overlaps the image) lets the compiler vectorise the stride-1 case. */
static inline void FC_FN(add_run_)(const SCALAR *restrict src, SCALAR *restrict dst,
                                   int64_t n, int64_t stride)
{
    if (stride == 1) {
        for (int64_t i = 0; i < n; ++i) dst[i] += src[i];
    } else {
        for (int64_t i = 0; i < n; ++i) dst[i * stride] += src[i];
    }
}

/* Add one column row back into channel image `im` (the adjoint of
 * im2col_row_). */
static void FC_FN(col2im_row_)(const SCALAR *src, const fc_geometry *g,
                               int64_t kd, int64_t kh, int64_t kw, SCALAR *im)
{
    FC_FOR_TAP_ROWS(g, kd, kh, kw, {
        FC_FN(add_run_)(src + out_row + lo, im + in_row + (w0 + lo * sw), hi - lo, sw);
    });
}

/* fc_col2im. */
static void FC_FN(col2im_)(const void *col_, int64_t batch, const fc_geometry *g,
                           fc_col_layout layout, void *im_, int nthreads)
{
    const SCALAR *col = col_;
    SCALAR *im = im_;
    const int64_t taps = fc_kernel_size(g);
    const int64_t plane = fc_spatial_size(g->in);
    const int64_t planes = batch * g->channels;
    const int nt = fc_threads_for(nthreads, planes * taps * fc_spatial_size(g->out));
    fc_stop *stop = fc_stop_flag();
    const int64_t poll_every = fc_stop_period(plane + taps * fc_spatial_size(g->out));
    (void)nt;
    /* A thread owns whole (image, channel) planes, and only the rows of that
     * channel write into a plane: overlapping windows never race. */
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
    for (int64_t p = 0; p < planes; ++p) {
        const int64_t b = p / g->channels, c = p % g->channels;
        SCALAR *dst = im + p * plane;
        if (fc_stopping_at(stop, p, poll_every)) continue;
        memset(dst, 0, (size_t)plane * sizeof(SCALAR));
        for (int64_t k = 0; k < taps; ++k) {
            int64_t kd, kh, kw;
            fc_tap_offsets(g, k, &kd, &kh, &kw);
            FC_FN(col2im_row_)(col + b * layout.batch_stride
                                   + (c * taps + k) * layout.row_stride,
                               g, kd, kh, kw, dst);
        }
    }
}

