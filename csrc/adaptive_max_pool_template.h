/* Adaptive max pooling forward for one scalar type.  Included once per dtype
 * by adaptive_max_pool.c with SCALAR and SFX defined.  The backward pass is
 * max pooling's: a scatter-add at the indices (fc_max_pool_backward_*). */

#define FC_FN(name) FC_CAT(name, SFX)

/* PyTorch's rule, as in max pooling: the running max starts at -inf with the
 * index of the bin's first element (never -1), elements are visited in
 * row-major order and replace the max when `v > max || isnan(v)`, so the
 * first maximum wins ties and NaN propagates. */
void FC_FN(fc_adaptive_max_pool_)(const SCALAR *x, const fc_geometry *g, SCALAR *y,
                                  int64_t *indices, int nthreads)
{
    const int64_t H = g->in[1], W = g->in[2];
    const int64_t oD = g->out[0], oH = g->out[1], oW = g->out[2];
    const int64_t in_plane = fc_spatial_size(g->in), out_plane = fc_spatial_size(g->out);
    const int64_t rows = g->channels * oD * oH;
    const int nt = fc_threads_for(nthreads, g->channels * in_plane);
    (void)nt;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
    for (int64_t r = 0; r < rows; ++r) {
        const int64_t p = r / (oD * oH), od = (r / oH) % oD, oh = r % oH;
        const SCALAR *xp = x + p * in_plane;
        const int64_t o = p * out_plane + (od * oH + oh) * oW;
        int64_t d0, d1, h0, h1;
        fc_adaptive_bin(od, g->in[0], oD, &d0, &d1);
        fc_adaptive_bin(oh, H, oH, &h0, &h1);
        for (int64_t ow = 0; ow < oW; ++ow) {
            int64_t w0, w1;
            fc_adaptive_bin(ow, W, oW, &w0, &w1);
            SCALAR best = -(SCALAR)INFINITY;
            int64_t best_at = (d0 * H + h0) * W + w0;
            for (int64_t d = d0; d < d1; ++d)
                for (int64_t h = h0; h < h1; ++h) {
                    const int64_t row = (d * H + h) * W;
                    for (int64_t w = w0; w < w1; ++w) {
                        const SCALAR v = xp[row + w];
                        if (v > best || isnan(v)) {
                            best = v;
                            best_at = row + w;
                        }
                    }
                }
            y[o + ow] = best;
            if (indices) indices[o + ow] = best_at;
        }
    }
}

#undef FC_FN
