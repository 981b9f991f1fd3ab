/* Winograd F(2x2, 3x3) convolution forward, for one (scalar type,
 * instruction set): 3x3 kernel, stride 1, dilation 1, any padding, groups.
 *
 * Included by isa_template.h after gemm_template.h, whose micro-kernels and
 * register transposes it drives (same instruction-set macros).
 *
 * Each 2x2 output tile is A^T [(G g G^T) . (B^T d B)] A for its 4x4 input
 * patch d: 16 multiplies per tile and channel pair instead of 36, so the
 * multiply-adds drop 2.25x (Lavin & Gray, "Fast Algorithms for Convolutional
 * Neural Networks", 2015).  Over a block of tiles the 16 products (one per
 * position xi of the 4x4 transform) are 16 GEMMs:
 *     M[xi] (C_out x T) = U[xi] (C_out x C_in) * V[xi] (C_in x T),
 * U the transformed weights (packed once per call as the micro-kernel's A
 * panels), V the transformed input patches, written as a row-major block the
 * micro-kernel reads in place (no packing pass).  A block's tiles are
 * consecutive, so every row of V and M is contiguous across tile rows and
 * images: the transforms run on whole vectors and may overshoot a tile row's
 * end (the next row's values, written after, replace the extra lanes); on
 * maps whose tile rows are shorter than a vector each tile's inputs are first
 * gathered into its lane, so a vector spans several tile rows
 * (wino_input_packed_).  The block is sized to stay in L2
 * between the input transform that writes V, the micro-kernels that read it,
 * and the output transform that reads M.  F(2x2, 3x3)'s transforms have
 * coefficients 0, +-1 and +-1/2 only, so its rounding error stays within a
 * small factor of the direct sum's. */

#ifndef FC_WINOGRAD_TUNABLES
#define FC_WINOGRAD_TUNABLES
/* Winograd blocks: the transformed input of a block of tiles and the slab of
 * products computed before their output transform, sized so both stay in L2
 * with the weights' A panels. */
#ifndef FC_WINO_V_BYTES
#define FC_WINO_V_BYTES (384 * 1024)
#endif
#ifndef FC_WINO_M_BYTES
#define FC_WINO_M_BYTES (128 * 1024)
#endif
/* Winograd weight gradient: transformed input and gradient of a block. */
#ifndef FC_WINO_WG_BYTES
#define FC_WINO_WG_BYTES (1024 * 1024)
#endif
/* Channels ahead that the Winograd input transform prefetches. */
#ifndef FC_WINO_PREFETCH
#define FC_WINO_PREFETCH 2
#endif
/* Input channels one step of the weight transform handles: its 16 x MR x
 * chunk results stay in L1 (32 KiB for float64 with MR = 8). */
#define FC_WINO_WT_CHUNK 32
/* Tile rows one pass over a block handles (more for very narrow outputs). */
#define FC_WINO_MAX_RUNS 257
/* Tile rows whose split input rows a narrow map's input transform holds at
 * once (wino_input_packed_): every row split a while before it is read. */
#define FC_WINO_SPLIT_RUNS 16

/* The geometries the transforms are written for: 2-D, 3x3 kernel, stride 1,
 * dilation 1 (any padding).  Whether Winograd pays is the caller's plan;
 * this only keeps other geometries from reading outside their buffers. */
static inline int fc_wino_geometry(const fc_geometry *g)
{
    return g->in[0] == 1 && g->out[0] == 1 && g->kernel[0] == 1 && g->pad[0] == 0
           && g->kernel[1] == 3 && g->kernel[2] == 3 && g->stride[1] == 1
           && g->stride[2] == 1 && g->dilation[1] == 1 && g->dilation[2] == 1;
}
#endif

/* gemm_template.h defines the shuffle-mask types (sint_, ivec_) and iota_ for
 * GCC; elsewhere (or with FC_NO_SHUFFLE, the C test driver's fallback build)
 * plain loops split and interleave. */
#define G_LD_VEC(p) (*(const FC_FN(uvec_) *)(p))
#define G_ST_VEC(p, v) (*(FC_FN(uvec_) *)(p) = (v))
#define G_LD_ONE(p) (*(p))
#define G_ST_ONE(p, v) (*(p) = (v))
#if defined(__GNUC__) && !defined(__clang__) && !defined(FC_NO_SHUFFLE)
#define G_HAVE_SHUFFLE 1
#else
#define G_HAVE_SHUFFLE 0
#endif

/* Most tiles per block: V (16 x C_in x T) about FC_WINO_V_BYTES, at least
 * one panel. */
static int64_t FC_FN(wino_block_tiles_)(int64_t c_in)
{
    int64_t t = (int64_t)(FC_WINO_V_BYTES / sizeof(SCALAR)) / (16 * c_in) / FC_NR * FC_NR;
    return t < FC_NR ? FC_NR : t;
}

/* `total` tiles cut into blocks of `most`, the last one also taking a
 * remainder under half a block: a few trailing tiles (a 14x14 map's 49
 * against AVX-512's 48 a block) would cost another pass over all the
 * weights for a sliver of work.  So blocks hold under most + most/2 + 1
 * tiles (wino_largest_block_, what the workspace is sized for). */
static int64_t FC_FN(wino_blocks_)(int64_t total, int64_t most)
{
    const int64_t blocks = total / most + (total % most >= (most + 1) / 2);
    return blocks > 0 ? blocks : 1;
}

static int64_t FC_FN(wino_largest_block_)(int64_t most)
{
    return most + (most + 1) / 2;
}

/* Blocks of `total` tiles for nt threads that take whole blocks, and *size,
 * the tiles of every block but the last (which takes the rest): those of
 * wino_blocks_(total, most), unless there are more blocks than threads and
 * the threads with a block more would do at least 1/8 more than an even
 * share; then a multiple of nt blocks of equal size (within the largest
 * block the workspace holds).  With 5 blocks, 2 threads took 3 and 2: the
 * pass took the time of 3 blocks where 2.5 would do (a ResNet's 64 channels
 * on 8x8 maps at batch 32, 512 tiles of 96 a block: 4 of 128 ran about 10%
 * faster); 11 blocks of 192 (32 channels on 16x16) recut as 10 of 205 ran
 * about 8% slower than 6 and 5 (docs/performance.md). */
static int64_t FC_FN(wino_thread_blocks_)(int64_t total, int64_t most, int nt, int64_t *size)
{
    const int64_t blocks = FC_FN(wino_blocks_)(total, most);
    *size = most;
    if (nt <= 1 || blocks <= nt || (blocks + nt - 1) / nt * nt * 8 < blocks * 9) return blocks;
    int64_t even = blocks / nt * nt;
    if ((total + even - 1) / even > FC_FN(wino_largest_block_)(most)) even += nt;
    *size = (total + even - 1) / even;
    return (total + *size - 1) / *size;
}

/* Tiles [*tau0, *tau1) of block blk of `blocks` blocks of `most` tiles, the
 * last taking the rest (wino_blocks_ or wino_thread_blocks_). */
static void FC_FN(wino_block_range_)(int64_t blk, int64_t blocks, int64_t total, int64_t most,
                                    int64_t *tau0, int64_t *tau1)
{
    *tau0 = blk * most;
    *tau1 = blk == blocks - 1 ? total : *tau0 + most;
}

/* Row length of a block's V and M: whole vectors (the micro-kernel reads a
 * narrow last panel only that wide), plus a vector of slack for the last
 * tile row's overshoot. */
static int64_t FC_FN(wino_ld_)(int64_t tiles)
{
    return (tiles + FC_LANES - 1) / FC_LANES * FC_LANES + FC_LANES;
}

/* Output channels whose products M (16 x rows x ld) are computed before
 * their output transform: about FC_WINO_M_BYTES, at least MR. */
static int64_t FC_FN(wino_block_rows_)(int64_t m, int64_t tiles)
{
    const int64_t m_pad = (m + MR - 1) / MR * MR;
    int64_t r = (int64_t)(FC_WINO_M_BYTES / sizeof(SCALAR)) / (16 * FC_FN(wino_ld_)(tiles))
                / MR * MR;
    if (r < MR) r = MR;
    return r < m_pad ? r : m_pad;
}

/* Length of one split input row (see wino_split_row_): a tile row's
 * tile_cols + 1 entries, rounded up to vectors, plus a vector of overshoot. */
static int64_t FC_FN(wino_split_ld_)(int64_t tile_cols)
{
    return (tile_cols + 1 + FC_LANES - 1) / FC_LANES * FC_LANES + 2 * FC_LANES;
}

/* Whether a tile row is shorter than a vector (an 8x8 map's 4 tiles against
 * 16 float32 lanes on AVX-512): then the input transform packs several tile
 * rows into each vector (wino_input_packed_). */
static int FC_FN(wino_narrow_)(const fc_geometry *g)
{
    return (g->out[2] + 1) / 2 < FC_LANES;
}

/* Scratch of the input transform for blocks of row length ld: 8 split rows,
 * or for narrow maps those of FC_WINO_SPLIT_RUNS tile rows and the block's
 * tile columns (16 x ld); INT64_MAX past int64. */
static int64_t FC_FN(wino_input_scratch_)(const fc_geometry *g, int64_t ld)
{
    const int64_t lds = FC_FN(wino_split_ld_)((g->out[2] + 1) / 2);
    if (!FC_FN(wino_narrow_)(g)) return fc_mul_sat(8, lds);
    /* lds is under 4 vectors here, and ld as small as a block. */
    return 8 * FC_WINO_SPLIT_RUNS * lds + 16 * ld + FC_GEMM_ALIGN / (int64_t)sizeof(SCALAR);
}

/* One thread's share of the forward's scratch: V (16 x c x ld), M (16 x rows
 * x ld) and the input transform's (wino_input_scratch_), each aligned, for
 * the largest block a call may use (wino_largest_block_); INT64_MAX past
 * int64. */
static int64_t FC_FN(wino_per_thread_)(const fc_geometry *g, int64_t c)
{
    const int64_t largest = FC_FN(wino_largest_block_)(FC_FN(wino_block_tiles_)(c));
    const int64_t ld = FC_FN(wino_ld_)(largest);
    const int64_t v = fc_mul_sat(fc_mul_sat(16, c), ld);
    const int64_t split = FC_FN(wino_input_scratch_)(g, ld);
    if (v == INT64_MAX || split == INT64_MAX) return INT64_MAX;
    /* A slab of products (wino_block_rows_) is within FC_WINO_M_BYTES, or
     * MR rows, whatever the block's row length. */
    const int64_t budget = (int64_t)(FC_WINO_M_BYTES / sizeof(SCALAR)) / 16;
    return v + 16 * (budget > MR * ld ? budget : MR * ld) + split
           + 3 * FC_GEMM_ALIGN / (int64_t)sizeof(SCALAR);
}

/* Elements of scratch: the packed U of every group, then per thread V, M
 * and the split rows. */
static int64_t FC_FN(wino_workspace_)(const fc_geometry *g, int64_t groups, int64_t c_out,
                                     int nthreads)
{
    const int64_t c = g->channels / groups, m = c_out / groups;
    const int64_t m_pad = (m + MR - 1) / MR * MR;
    const int64_t u = fc_mul_sat(fc_mul_sat(16 * groups, m_pad), c);
    const int64_t per_thread = FC_FN(wino_per_thread_)(g, c);
    const int nt = nthreads < 1 ? 1 : nthreads;
    if (u == INT64_MAX || per_thread == INT64_MAX || per_thread > (INT64_MAX - u) / nt)
        return INT64_MAX;
    return u + nt * per_thread + FC_GEMM_ALIGN / (int64_t)sizeof(SCALAR);
}

/* G g G^T of n <= FC_WINO_WT_CHUNK 3x3 kernels stored one after another (9
 * values each) into r[xi * FC_WINO_WT_CHUNK * MR + i].  The kernels' taps
 * are first dealt into rows (stride-9 loads defeat the vectoriser), so the
 * transform is a loop over contiguous rows that the compiler vectorises
 * across channels (the scalar version, a channel pair at a time, was a
 * large share of a batch-1 forward: docs/performance.md). */
static TARGET void FC_FN(wino_transform_kernels_)(const SCALAR *restrict k, int64_t n,
                                                 SCALAR *restrict r)
{
    const int64_t xs = FC_WINO_WT_CHUNK * MR;
    const SCALAR h = (SCALAR)0.5;
    SCALAR tap[9][FC_WINO_WT_CHUNK];
    for (int64_t i = 0; i < n; ++i)
        for (int j = 0; j < 9; ++j) tap[j][i] = k[9 * i + j];
    for (int64_t i = 0; i < n; ++i) {
        SCALAR t[4][3];
        /* G g: rows g0, (g0+g1+g2)/2, (g0-g1+g2)/2, g2 */
        for (int j = 0; j < 3; ++j) {
            t[0][j] = tap[j][i];
            t[1][j] = h * (tap[j][i] + tap[3 + j][i] + tap[6 + j][i]);
            t[2][j] = h * (tap[j][i] - tap[3 + j][i] + tap[6 + j][i]);
            t[3][j] = tap[6 + j][i];
        }
        for (int a = 0; a < 4; ++a) {   /* (G g) G^T: the same on columns */
            r[(a * 4 + 0) * xs + i] = t[a][0];
            r[(a * 4 + 1) * xs + i] = h * (t[a][0] + t[a][1] + t[a][2]);
            r[(a * 4 + 2) * xs + i] = h * (t[a][0] - t[a][1] + t[a][2]);
            r[(a * 4 + 3) * xs + i] = t[a][2];
        }
    }
}

/* U = G g G^T for every (output, input) channel pair of every group, packed
 * as A panels: group, then xi, then MR-tall panels of output channels, each
 * C_in steps of MR values (zero rows past the group's last channel).  A
 * panel and a chunk of input channels at a time: each output channel's
 * transforms (vectorised across input channels), then each xi's MR x chunk
 * block interleaved into the panel by the GEMM's register transposes. */
static TARGET void FC_FN(wino_transform_panel_)(const SCALAR *w, int64_t rows, int64_t c,
                                               int64_t xi_stride, SCALAR *restrict dst)
{
    SCALAR r[16 * MR * FC_WINO_WT_CHUNK];
    for (int64_t i0 = 0; i0 < c; i0 += FC_WINO_WT_CHUNK) {
        const int64_t n = c - i0 < FC_WINO_WT_CHUNK ? c - i0 : FC_WINO_WT_CHUNK;
        for (int64_t o = 0; o < rows; ++o)
            FC_FN(wino_transform_kernels_)(w + (o * c + i0) * 9, n, r + o * FC_WINO_WT_CHUNK);
        for (int xi = 0; xi < 16; ++xi)
            FC_FN(interleave_mr_)(r + xi * MR * FC_WINO_WT_CHUNK, FC_WINO_WT_CHUNK, rows, n,
                                  dst + xi * xi_stride + i0 * MR);
    }
}

static void FC_FN(wino_transform_weights_)(const SCALAR *w, int64_t groups, int64_t m,
                                          int64_t c, SCALAR *restrict u, int nthreads)
{
    const int64_t m_pad = (m + MR - 1) / MR * MR, panels = m_pad / MR;
    const int nt = fc_threads_for(nthreads, 16 * groups * m_pad * c);
    (void)nt;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
    for (int64_t gp = 0; gp < groups * panels; ++gp) {
        const int64_t grp = gp / panels, o0 = gp % panels * MR;
        const int64_t rows = m - o0 < MR ? m - o0 : MR;
        FC_FN(wino_transform_panel_)(w + (grp * m + o0) * c * 9, rows, c, m_pad * c,
                                     u + grp * 16 * m_pad * c + o0 * c);
    }
}

/* Input row ih of `plane` at padded columns 2*j0 .. 2*(j0 + n) - 1, split
 * by parity: even[i] = column 2(j0+i), odd[i] = column 2(j0+i)+1 (zeros in
 * the padding).  The split makes every tile's four columns two aligned
 * pairs, so the transform runs on contiguous vectors.  Entries from n to
 * n + LANES - 1 may be overwritten with anything; reads stay below x_end. */
static TARGET void FC_FN(wino_split_row_)(const SCALAR *plane, const SCALAR *x_end,
                                         const fc_geometry *g, int64_t ih, int64_t j0,
                                         int64_t n, SCALAR *restrict even,
                                         SCALAR *restrict odd)
{
    const int64_t W = g->in[2];
    if ((uint64_t)ih >= (uint64_t)g->in[1]) {
        memset(even, 0, (size_t)n * sizeof(SCALAR));
        memset(odd, 0, (size_t)n * sizeof(SCALAR));
        return;
    }
    const SCALAR *row = plane + ih * W;
    const int64_t e0 = 2 * j0 - g->pad[2];   /* input column of even[0] */
    /* [lo, hi): entries whose two columns are both inside the row. */
    int64_t lo = e0 >= 0 ? 0 : (-e0 + 1) / 2;
    int64_t hi = e0 + 1 >= W ? 0 : (W - 1 - e0 + 1) / 2;
    if (lo > n) lo = n;
    if (hi > n) hi = n;
    if (hi < lo) hi = lo;
    const SCALAR *src = row + e0;
    int64_t i = lo;
    (void)x_end;   /* read only by the shuffle loop */
#if G_HAVE_SHUFFLE
    {
        /* Two loads and two permutes per vector of entries; the last vector
         * may run past hi (the edge loop below rewrites those entries). */
        typedef FC_FN(ivec_) ivec;
        const ivec k = FC_FN(iota_)();
        const ivec evens = k * 2, odds = k * 2 + 1;
        for (; i < hi && src + 2 * (i + FC_LANES) <= x_end; i += FC_LANES) {
            const FC_FN(vec_) a = G_LD_VEC(src + 2 * i), b = G_LD_VEC(src + 2 * i + FC_LANES);
            G_ST_VEC(even + i, __builtin_shuffle(a, b, evens));
            G_ST_VEC(odd + i, __builtin_shuffle(a, b, odds));
        }
        if (i > hi) i = hi;
    }
#endif
    for (; i < hi; ++i) {
        even[i] = src[2 * i];
        odd[i] = src[2 * i + 1];
    }
    for (i = 0; i < n; ++i) {   /* the edges: entries touching the padding */
        if (i == lo && hi > lo) i = hi;
        if (i >= n) break;
        const int64_t e = e0 + 2 * i;
        even[i] = (uint64_t)e < (uint64_t)W ? row[e] : 0;
        odd[i] = (uint64_t)(e + 1) < (uint64_t)W ? row[e + 1] : 0;
    }
}

/* One step of the input transform on T (a vector of tiles, or one tile):
 * V = B^T d B, column k of row q of d at row[q][Ck + j];
 * B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]. */
#define G_INPUT_STEP(T, LD, ST, C0, C1, C2, C3)                                        \
    do {                                                                               \
        T h[4][4];                                                                     \
        for (int q = 0; q < 4; ++q) {   /* along the row */                            \
            const T e = LD(row[q] + (C0) + j), o = LD(row[q] + (C1) + j);              \
            const T e1 = LD(row[q] + (C2) + j), o1 = LD(row[q] + (C3) + j);            \
            h[q][0] = e - e1;                                                          \
            h[q][1] = o + e1;                                                          \
            h[q][2] = e1 - o;                                                          \
            h[q][3] = o - o1;                                                          \
        }                                                                              \
        for (int k = 0; k < 4; ++k) {   /* and down the columns */                     \
            ST(dst + (0 + k) * xs + j, h[0][k] - h[2][k]);                             \
            ST(dst + (4 + k) * xs + j, h[1][k] + h[2][k]);                             \
            ST(dst + (8 + k) * xs + j, h[2][k] - h[1][k]);                             \
            ST(dst + (12 + k) * xs + j, h[1][k] - h[3][k]);                            \
        }                                                                              \
    } while (0)

/* V of n consecutive tiles of one tile row from its 4 split input rows
 * (row q's even entries at row[q], odd at row[q] + ld): a tile's 4 columns
 * are even[j], odd[j], even[j + 1], odd[j + 1]; V[xi] of tile j goes to
 * dst[xi * xs + j].  Whole vectors only: up to LANES - 1 values past n are
 * written too. */
static TARGET void FC_FN(wino_input_run_)(SCALAR *const row[4], int64_t ld, int64_t n,
                                         SCALAR *restrict dst, int64_t xs)
{
    for (int64_t j = 0; j < n; j += FC_LANES)
        G_INPUT_STEP(FC_FN(vec_), G_LD_VEC, G_ST_VEC, 0, ld, 1, ld + 1);
}

/* V of n tiles from their columns (column k of input row q of tile j at
 * cols[(4q + k) * ld + j]), as wino_input_run_. */
static TARGET void FC_FN(wino_input_cols_)(const SCALAR *cols, int64_t ld, int64_t n,
                                          SCALAR *restrict dst, int64_t xs)
{
    const SCALAR *const row[4] = {cols, cols + 4 * ld, cols + 8 * ld, cols + 12 * ld};
    for (int64_t j = 0; j < n; j += FC_LANES)
        G_INPUT_STEP(FC_FN(vec_), G_LD_VEC, G_ST_VEC, 0, ld, 2 * ld, 3 * ld);
}

/* One step of the output transform: Y = A^T M A + bias, A^T = [1 1 1 0;
 * 0 1 -1 -1], for tiles j; yRC is output row R, column C of the tile. */
#define G_OUTPUT_STEP(T, LD)                                                           \
    T s0[4], s1[4];                                                                    \
    for (int a = 0; a < 4; ++a) {   /* along each row of M */                          \
        const T m0 = LD(m + (4 * a) * xs + j), m1 = LD(m + (4 * a + 1) * xs + j);      \
        const T m2 = LD(m + (4 * a + 2) * xs + j), m3 = LD(m + (4 * a + 3) * xs + j);  \
        s0[a] = m0 + m1 + m2;                                                          \
        s1[a] = m1 - m2 - m3;                                                          \
    }                                                                                  \
    const T y00 = bias + s0[0] + s0[1] + s0[2], y01 = bias + s1[0] + s1[1] + s1[2];    \
    const T y10 = bias + s0[1] - s0[2] - s0[3], y11 = bias + s1[1] - s1[2] - s1[3];

/* dst[2i] = a[i], dst[2i+1] = b[i]: a tile row's two output columns. */
static inline __attribute__((always_inline)) TARGET void
FC_FN(wino_store_pairs_)(SCALAR *dst, FC_FN(vec_) a, FC_FN(vec_) b)
{
#if G_HAVE_SHUFFLE
    /* Two permutes (masks from iota_) instead of 2 * LANES scalar stores. */
    typedef FC_FN(ivec_) ivec;
    const ivec k = FC_FN(iota_)();
    const ivec lo = (k >> 1) + (k & 1) * (FC_FN(sint_))FC_LANES;
    const ivec hi = lo + (FC_FN(sint_))(FC_LANES / 2);
    *(FC_FN(uvec_) *)dst = __builtin_shuffle(a, b, lo);
    *(FC_FN(uvec_) *)(dst + FC_LANES) = __builtin_shuffle(a, b, hi);
#else
    for (int i = 0; i < FC_LANES; ++i) {
        dst[2 * i] = a[i];
        dst[2 * i + 1] = b[i];
    }
#endif
}

/* Y = A^T M A for n consecutive tiles of one tile row (M[xi] of tile j at
 * m[xi * xs + j], readable up to a vector past n), plus bias: outputs
 * (2j, 2j+1) of rows y0 and y1 (y1 NULL past the last output row); `pairs`
 * tiles have both columns, the rest (at most one, the last) only the first.
 * Stores never pass the row's end: other threads may own what follows. */
static TARGET void FC_FN(wino_output_run_)(const SCALAR *restrict m, int64_t xs, int64_t n,
                                          int64_t pairs, SCALAR bias, SCALAR *restrict y0,
                                          SCALAR *restrict y1)
{
    int64_t j = 0;
    if (pairs < FC_LANES) {
        /* A row shorter than a vector (an 8x8 map's 4 tiles): one vector
         * step, its lanes stored one by one, not a scalar step per tile. */
        G_OUTPUT_STEP(FC_FN(vec_), G_LD_VEC)
        for (; j < pairs; ++j) {
            y0[2 * j] = y00[j];
            y0[2 * j + 1] = y01[j];
            if (y1) {
                y1[2 * j] = y10[j];
                y1[2 * j + 1] = y11[j];
            }
        }
        if (n > pairs) {   /* the last tile's first column only */
            y0[2 * j] = y00[j];
            if (y1) y1[2 * j] = y10[j];
        }
        return;
    }
    for (;;) {
        if (j + FC_LANES > pairs) {
            /* The last vector overlaps the one before: same values again. */
            if (j >= pairs) break;
            j = pairs - FC_LANES;
        }
        G_OUTPUT_STEP(FC_FN(vec_), G_LD_VEC)
        FC_FN(wino_store_pairs_)(y0 + 2 * j, y00, y01);
        if (y1) FC_FN(wino_store_pairs_)(y1 + 2 * j, y10, y11);
        j += FC_LANES;
    }
    if (n > pairs) {   /* the last tile's first column only */
        j = pairs;
        G_OUTPUT_STEP(SCALAR, G_LD_ONE)
        (void)y01, (void)y11;
        y0[2 * j] = y00;
        if (y1) y1[2 * j] = y10;
    }
}

/* A run of tiles [tau, tau + n) inside one tile row: image b, tile row ti,
 * first tile column tj; `t` is its first tile's index in the block. */
typedef struct {
    int64_t b, ti, tj, n, t;
} FC_FN(wino_run_);

/* Tiles [tau0, tau1) of the batch, split at tile-row ends; returns the count. */
static int64_t FC_FN(wino_runs_)(int64_t tau0, int64_t tau1, int64_t tile_rows,
                                int64_t tile_cols, FC_FN(wino_run_) *runs)
{
    int64_t count = 0;
    for (int64_t tau = tau0; tau < tau1; ++count) {
        const int64_t per_image = tile_rows * tile_cols, r = tau % per_image;
        FC_FN(wino_run_) run = {tau / per_image, r / tile_cols, r % tile_cols, 0, tau - tau0};
        run.n = tile_cols - run.tj < tau1 - tau ? tile_cols - run.tj : tau1 - tau;
        runs[count] = run;
        tau += run.n;
    }
    return count;
}

/* Whether run r's first two input rows are run r - 1's last two (the next
 * tile row of the same tile columns). */
static int FC_FN(wino_follows_)(const FC_FN(wino_run_) *runs, int64_t r)
{
    return r > 0 && runs[r - 1].b == runs[r].b && runs[r - 1].ti + 1 == runs[r].ti
           && runs[r - 1].tj == runs[r].tj;
}

/* Split input rows ih + q, q in [fresh, 4), of channel plane im into
 * pair[q] (even entries) and pair[q] + lds (odd) for a run's tiles, and
 * prefetch them FC_WINO_PREFETCH channels ahead (`ahead`): the input is
 * read once, a few rows per channel, too short a stream for the hardware
 * prefetcher. */
static inline __attribute__((always_inline)) TARGET void
FC_FN(wino_split_run_)(const SCALAR *im, const SCALAR *x_end, const fc_geometry *g,
                       FC_FN(wino_run_) run, int fresh, int ahead, SCALAR *const pair[4],
                       int64_t lds)
{
    const int64_t ih = 2 * run.ti - g->pad[1], plane = g->in[1] * g->in[2];
    for (int q = fresh; q < 4; ++q)
        FC_FN(wino_split_row_)(im, x_end, g, ih + q, run.tj, run.n + 1, pair[q], pair[q] + lds);
    if (ahead)
        for (int64_t row = ih + fresh; row < ih + 4; ++row)
            if ((uint64_t)row < (uint64_t)g->in[1])
                for (int64_t col = 0; col < g->in[2]; col += 64 / (int64_t)sizeof(SCALAR))
                    __builtin_prefetch(im + FC_WINO_PREFETCH * plane + row * g->in[2] + col);
}

/* V of channel plane `im` of every run, one tile row at a time: maps whose
 * tile rows fill vectors.  The split rows (`split`, 8 x lds) of a tile row
 * are kept for the next one, two input rows down. */
static TARGET void FC_FN(wino_input_rows_)(const SCALAR *x, const SCALAR *x_end,
                                          int64_t x_image_stride, const fc_geometry *g,
                                          int64_t i, int ahead, const FC_FN(wino_run_) *runs,
                                          int64_t nruns, SCALAR *restrict dst, int64_t xs,
                                          SCALAR *split)
{
    const int64_t plane = g->in[1] * g->in[2];
    const int64_t lds = FC_FN(wino_split_ld_)((g->out[2] + 1) / 2);
    SCALAR *pair[4] = {split, split + 2 * lds, split + 4 * lds, split + 6 * lds};
    /* Runs in order: each one's overshoot is rewritten by the next. */
    for (int64_t r = 0; r < nruns; ++r) {
        int fresh = 0;
        if (FC_FN(wino_follows_)(runs, r)) {
            SCALAR *t0 = pair[0], *t1 = pair[1];
            pair[0] = pair[2], pair[1] = pair[3], pair[2] = t0, pair[3] = t1;
            fresh = 2;
        }
        FC_FN(wino_split_run_)(x + runs[r].b * x_image_stride + i * plane, x_end, g, runs[r],
                              fresh, ahead, pair, lds);
        FC_FN(wino_input_run_)(pair, lds, runs[r].n, dst + runs[r].t, xs);
    }
}

/* V of channel plane `im` of every run for maps whose tile rows are shorter
 * than a vector: each tile's 16 inputs are first copied to its lane of the
 * block's tile columns (`cols`, 16 x ld: column k of input row q of tile t
 * at cols[(4q + k) * ld + t]), then one pass of whole vectors transforms
 * the block, several tile rows a vector (one a vector used 4 of AVX-512's
 * 16 float32 lanes on an 8x8 map).  The rows of FC_WINO_SPLIT_RUNS tile rows
 * are split before any is copied: a load straight after the split's
 * narrower stores to the same place waited for them (a stalled store
 * forward, the largest cost of the tile-row-at-a-time transform here). */
static TARGET void FC_FN(wino_input_packed_)(const SCALAR *x, const SCALAR *x_end,
                                            int64_t x_image_stride, const fc_geometry *g,
                                            int64_t i, int ahead, const FC_FN(wino_run_) *runs,
                                            int64_t nruns, int64_t tiles, int64_t ld,
                                            SCALAR *restrict dst, int64_t xs, SCALAR *split)
{
    const int64_t plane = g->in[1] * g->in[2];
    const int64_t lds = FC_FN(wino_split_ld_)((g->out[2] + 1) / 2);
    SCALAR *cols = (SCALAR *)fc_align_up(split + 8 * FC_WINO_SPLIT_RUNS * lds);
    for (int64_t r0 = 0; r0 < nruns; r0 += FC_WINO_SPLIT_RUNS) {
        const int64_t r1 = r0 + FC_WINO_SPLIT_RUNS < nruns ? r0 + FC_WINO_SPLIT_RUNS : nruns;
        SCALAR *pairs[FC_WINO_SPLIT_RUNS][4];
        SCALAR *next = split;   /* the next unused split row */
        for (int64_t r = r0; r < r1; ++r) {
            SCALAR **pair = pairs[r - r0];
            int fresh = 0;
            if (r > r0 && FC_FN(wino_follows_)(runs, r)) {
                pair[0] = pairs[r - r0 - 1][2], pair[1] = pairs[r - r0 - 1][3];
                fresh = 2;
            }
            for (int q = fresh; q < 4; ++q, next += 2 * lds) pair[q] = next;
            FC_FN(wino_split_run_)(x + runs[r].b * x_image_stride + i * plane, x_end, g,
                                  runs[r], fresh, ahead, pair, lds);
        }
        /* Runs in order: each one's overshoot is rewritten by the next.  A
         * run is under a vector (n < LANES), so one vector a column. */
        for (int64_t r = r0; r < r1; ++r) {
            SCALAR *to = cols + runs[r].t;
            for (int q = 0; q < 4; ++q, to += 4 * ld) {
                typedef FC_FN(vec_) vec;
                const SCALAR *even = pairs[r - r0][q];
                const vec e = *(const vec *)even, o = *(const vec *)(even + lds);
                G_ST_VEC(to, e);
                G_ST_VEC(to + ld, o);
#if G_HAVE_SHUFFLE
                /* even[j + 1] and odd[j + 1] moved down a lane in registers
                 * (the loads one entry on straddled cache lines). */
                const FC_FN(ivec_) next = FC_FN(iota_)() + 1;
                G_ST_VEC(to + 2 * ld, __builtin_shuffle(e, next));
                G_ST_VEC(to + 3 * ld, __builtin_shuffle(o, next));
#else
                G_ST_VEC(to + 2 * ld, G_LD_VEC(even + 1));
                G_ST_VEC(to + 3 * ld, G_LD_VEC(even + lds + 1));
#endif
            }
        }
    }
    FC_FN(wino_input_cols_)(cols, ld, tiles, dst, xs);
}

/* V (16 x c x ld) of the block's tiles for channels [0, c) of one group
 * (channel i of image b at x + b*x_image_stride + i*H*W); zeros from the
 * last tile to the end of its vector (all the micro-kernel reads).
 * `split` is the input transform's scratch (wino_input_scratch_). */
static TARGET void FC_FN(wino_input_block_)(const SCALAR *x, const SCALAR *x_end,
                                           int64_t x_image_stride, const fc_geometry *g,
                                           int64_t c, const FC_FN(wino_run_) *runs,
                                           int64_t nruns, int64_t tiles, int64_t ld,
                                           SCALAR *restrict v, SCALAR *restrict split)
{
    const int64_t xs = c * ld;
    const int64_t tail = (tiles + FC_LANES - 1) / FC_LANES * FC_LANES - tiles;
    const int narrow = FC_FN(wino_narrow_)(g);
    for (int64_t i = 0; i < c; ++i) {
        const int ahead = i + FC_WINO_PREFETCH < c;
        if (narrow)
            FC_FN(wino_input_packed_)(x, x_end, x_image_stride, g, i, ahead, runs, nruns, tiles,
                                     ld, v + i * ld, xs, split);
        else
            FC_FN(wino_input_rows_)(x, x_end, x_image_stride, g, i, ahead, runs, nruns,
                                   v + i * ld, xs, split);
        if (tail)   /* finite values in the last vector's unused columns */
            for (int xi = 0; xi < 16; ++xi)
                memset(v + xi * xs + i * ld + tiles, 0, (size_t)tail * sizeof(SCALAR));
    }
}

/* One block of tiles of one group, on one thread: V, then for each slab of
 * `rows` output channels of [o_lo, o_hi) (whole MR panels) the 16 GEMMs
 * into M and the output transform. */
static TARGET void FC_FN(wino_block_)(const SCALAR *x, const SCALAR *x_end,
                                     int64_t x_image_stride, const fc_geometry *g, int64_t c,
                                     const SCALAR *u, int64_t m, int64_t o_lo, int64_t o_hi,
                                     const SCALAR *bias, SCALAR *y, int64_t y_image_stride,
                                     const FC_FN(wino_run_) *runs, int64_t nruns,
                                     int64_t tiles, int64_t ld, int64_t rows,
                                     SCALAR *restrict v, SCALAR *restrict mm,
                                     SCALAR *restrict split)
{
    const int64_t m_pad = (m + MR - 1) / MR * MR;
    const int64_t panels = (tiles + FC_NR - 1) / FC_NR;
    const int64_t xs_v = c * ld, xs_m = rows * ld;
    const int64_t oh_n = g->out[1], ow_n = g->out[2], l_size = oh_n * ow_n;
    FC_FN(wino_input_block_)(x, x_end, x_image_stride, g, c, runs, nruns, tiles, ld, v, split);
    for (int64_t o0 = o_lo; o0 < o_hi; o0 += rows) {
        const int64_t o1 = o0 + rows < o_hi ? o0 + rows : o_hi;
        for (int xi = 0; xi < 16; ++xi)
            for (int64_t p = 0; p < panels; ++p) {
                /* The last panel only as wide as its tiles' vectors. */
                const int64_t cols = tiles - p * FC_NR < FC_NR ? tiles - p * FC_NR : FC_NR;
                for (int64_t pc = 0; pc < c; pc += FC_GEMM_KC) {
                    /* Long channel runs in KC steps keep the B panel in L1. */
                    const int64_t kc = c - pc < FC_GEMM_KC ? c - pc : FC_GEMM_KC;
                    const SCALAR *bp = v + xi * xs_v + pc * ld + p * FC_NR;
                    for (int64_t o = o0; o < o1; o += MR)
                        FC_FN(micro_kernel_cols_ldb_)(kc, u + (xi * m_pad + o) * c + pc * MR,
                                                     bp, ld,
                                                     mm + xi * xs_m + (o - o0) * ld + p * FC_NR,
                                                     ld, pc > 0 ? FC_STORE_ADD : 0, NULL, cols);
                }
            }
        for (int64_t o = o0; o < o1 && o < m; ++o)
            for (int64_t r = 0; r < nruns; ++r) {
                const FC_FN(wino_run_) run = runs[r];
                const int64_t oh = 2 * run.ti, ow = 2 * run.tj;
                SCALAR *y0 = y + run.b * y_image_stride + o * l_size + oh * ow_n + ow;
                /* Tiles whose second column still lies inside the output. */
                int64_t pairs = (ow_n - ow) / 2;
                if (pairs > run.n) pairs = run.n;
                FC_FN(wino_output_run_)(mm + (o - o0) * ld + run.t, xs_m, run.n, pairs,
                                       bias ? bias[o] : (SCALAR)0, y0,
                                       oh + 1 < oh_n ? y0 + ow_n : NULL);
            }
    }
}

/* The whole forward: threads take blocks of tiles (disjoint outputs); with
 * fewer blocks than threads (a small batch of small maps), each block's
 * output channels are split too, every part transforming the block's input
 * itself (about a per cent of its GEMMs' work, so no barrier is needed). */
static void FC_FN(wino_forward_)(const SCALAR *x, int64_t batch, const fc_geometry *g,
                                int64_t groups, const SCALAR *w, const SCALAR *bias,
                                int64_t c_out, SCALAR *y, SCALAR *ws, int nthreads)
{
    const int64_t c = g->channels / groups, m = c_out / groups;
    const int64_t m_pad = (m + MR - 1) / MR * MR;
    const int64_t tile_rows = (g->out[1] + 1) / 2, tile_cols = (g->out[2] + 1) / 2;
    const int64_t tiles_total = batch * tile_rows * tile_cols;
    const int64_t most = FC_FN(wino_block_tiles_)(c);
    const int64_t plane = g->in[1] * g->in[2];
    const int64_t x_image_stride = g->channels * plane;
    const int64_t y_image_stride = c_out * g->out[1] * g->out[2];
    const SCALAR *x_end = x + batch * x_image_stride;
    int nt = fc_threads_for(nthreads, tiles_total * 16 * (c + m));
    int64_t size;
    const int64_t blocks = FC_FN(wino_thread_blocks_)(tiles_total, most, nt, &size);
    const int64_t per_thread = FC_FN(wino_per_thread_)(g, c);
    SCALAR *u = (SCALAR *)fc_align_up(ws);
    SCALAR *scratch = u + 16 * groups * m_pad * c;
    fc_stop *stop = fc_stop_flag();
    FC_FN(wino_transform_weights_)(w, groups, m, c, u, nthreads);
    const int64_t m_panels = m_pad / MR;
    int64_t parts = blocks < nt ? (nt + blocks - 1) / blocks : 1;
    if (parts > m_panels) parts = m_panels;
    const int64_t items = blocks * parts;
    if (nt > items) nt = (int)items;
    (void)nt;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
    for (int64_t item = 0; item < items; ++item) {
        const int64_t blk = item / parts, part = item % parts;
        const int64_t o_lo = m_panels * part / parts * MR;
        const int64_t o_hi = m_panels * (part + 1) / parts * MR;
        int64_t tau0, tau1;
        FC_FN(wino_block_range_)(blk, blocks, tiles_total, size, &tau0, &tau1);
        const int64_t ld = FC_FN(wino_ld_)(tau1 - tau0);
        const int64_t rows = FC_FN(wino_block_rows_)(m, tau1 - tau0);
        SCALAR *v = (SCALAR *)fc_align_up(scratch + fc_thread_num() * per_thread);
        SCALAR *mm = (SCALAR *)fc_align_up(v + 16 * c * ld);
        SCALAR *split = (SCALAR *)fc_align_up(mm + 16 * rows * ld);
        FC_FN(wino_run_) runs[FC_WINO_MAX_RUNS];
        /* A run per tile row touched: more rows than runs[] holds (outputs
         * a tile or two wide) take several passes. */
        for (int64_t r0 = tau0; r0 < tau1; r0 += FC_WINO_MAX_RUNS - 1) {
            const int64_t r1 = r0 + FC_WINO_MAX_RUNS - 1 < tau1 ? r0 + FC_WINO_MAX_RUNS - 1 : tau1;
            const int64_t nruns = FC_FN(wino_runs_)(r0, r1, tile_rows, tile_cols, runs);
            for (int64_t grp = 0; grp < groups && !fc_stopping(stop); ++grp)
                FC_FN(wino_block_)(x + grp * c * plane, x_end, x_image_stride, g, c,
                                  u + grp * 16 * m_pad * c, m, o_lo, o_hi,
                                  bias ? bias + grp * m : NULL,
                                  y + grp * m * g->out[1] * g->out[2], y_image_stride, runs,
                                  nruns, r1 - r0, ld, rows, v, mm, split);
        }
    }
}

/* ------------------------------------------------------------ weight gradient
 * Y = A^T (U . V) A gives dU[xi] = sum over tiles of Yg[xi] * V[xi], Yg =
 * A dY A^T the gradient's tile spread back over the 4x4 transform, and then
 * dg = G^T dU G.  Per xi that is a GEMM over tiles (C_out x T) * (T x C_in)
 * whose operands both hold tiles contiguously, so each block packs them
 * with the register transposes of wgrad_template.h. */

/* Most tiles per weight-gradient block (the GEMM's K): V and Yg together
 * about FC_WINO_WG_BYTES, within [LANES, KC]. */
static int64_t FC_FN(wino_wg_tiles_)(int64_t c, int64_t m)
{
    int64_t t = (int64_t)(FC_WINO_WG_BYTES / sizeof(SCALAR)) / (16 * (c + m)) / FC_LANES
                * FC_LANES;
    if (t > FC_GEMM_KC) t = FC_GEMM_KC;
    return t < FC_LANES ? FC_LANES : t;
}

/* Per-thread scratch: V, Yg (packed as A panels), split rows and tiles,
 * packed B for the largest block (wino_largest_block_), and the thread's dU (16 x m_pad x c_pad)
 * -- besides that no scratch outside the threads. */
static int64_t FC_FN(wino_wg_per_thread_)(const fc_geometry *g, int64_t m)
{
    const int64_t c = g->channels, tiles = FC_FN(wino_largest_block_)(FC_FN(wino_wg_tiles_)(c, m));
    const int64_t ld = FC_FN(wino_ld_)(tiles);
    const int64_t m_pad = (m + MR - 1) / MR * MR, c_pad = (c + FC_NR - 1) / FC_NR * FC_NR;
    const int64_t split = FC_FN(wino_input_scratch_)(g, ld);
    const int64_t du = fc_mul_sat(fc_mul_sat(16, m_pad), c_pad);
    /* V (16 x c x ld) and Yg's A panels (16 x m_pad x tiles, within ld). */
    const int64_t vy = fc_mul_sat(fc_mul_sat(16, c + m_pad), ld);
    /* The output gradient's split rows (wino_grad_out_block_): 4 x m x ld. */
    const int64_t gy_cols = fc_mul_sat(fc_mul_sat(4, m), ld);
    if (split == INT64_MAX || du == INT64_MAX || vy == INT64_MAX || gy_cols == INT64_MAX)
        return INT64_MAX;
    const int64_t pack = FC_NR * tiles, align = FC_GEMM_ALIGN / (int64_t)sizeof(SCALAR);
    /* Whole cache lines, so every thread's dU starts aligned. */
    return (vy + split + gy_cols + pack + du + 6 * align + align - 1) / align * align;
}

static int64_t FC_FN(wino_wg_workspace_)(const fc_geometry *g, int64_t m, int nthreads)
{
    const int64_t one = FC_FN(wino_wg_per_thread_)(g, m);
    const int nt = nthreads < 1 ? 1 : nthreads;
    const int64_t align = FC_GEMM_ALIGN / (int64_t)sizeof(SCALAR);
    return one > (INT64_MAX - align) / nt ? INT64_MAX : one * nt + align;
}

/* The 16 values of A dY A^T for a 2x2 gradient tile (a b; c d), T a scalar
 * or a vector of channels: each row (p, q) of (a, b), (a+c, b+d), (a-c,
 * b-d), (-c, -d) spreads to (p, p+q, p-q, -q); y[xi] for xi = 4 * row + col. */
#define G_GRAD_OUT_STEP(T, A, B, C, D, Y)                                              \
    do {                                                                               \
        const T rows_[4][2] = {{(A), (B)}, {(A) + (C), (B) + (D)},                     \
                               {(A) - (C), (B) - (D)}, {-(C), -(D)}};                  \
        for (int i_ = 0; i_ < 4; ++i_) {                                               \
            const T p_ = rows_[i_][0], q_ = rows_[i_][1];                              \
            (Y)[4 * i_ + 0] = p_;                                                      \
            (Y)[4 * i_ + 1] = p_ + q_;                                                 \
            (Y)[4 * i_ + 2] = p_ - q_;                                                 \
            (Y)[4 * i_ + 3] = -q_;                                                     \
        }                                                                              \
    } while (0)

/* Output-gradient channels one register transpose spans: two A panels
 * where a panel is half a vector (AVX-512 float32), else one panel, a
 * vector of it at a time. */
#define G_GO_PANELS (2 * MR == FC_LANES ? 2 : 1)

#if G_HAVE_SHUFFLE
/* dst[xi * xs, + w) = the first w lanes of y[xi], for the 16 products. */
static inline __attribute__((always_inline)) TARGET void
FC_FN(wino_go_store_)(SCALAR *dst, int64_t xs, const FC_FN(vec_) *y, int64_t w)
{
    for (int xi = 0; xi < 16; ++xi) {
        if (w == FC_LANES)
            G_ST_VEC(dst + xi * xs, y[xi]);
        else
            memcpy(dst + xi * xs, &y[xi], (size_t)w * sizeof(SCALAR));
    }
}

/* The transposed split rows a, b, c, d (4 x LANES vectors: tile i's
 * channels in t[k][i]) of n tiles transformed into the A panels at dst
 * (panel o; the next at dst + MR * tiles when `two`). */
static inline __attribute__((always_inline)) TARGET void
FC_FN(wino_go_tiles_)(FC_FN(vec_) t[4][FC_LANES], int64_t n, int64_t tiles, int64_t xs,
                      int64_t w, int two, SCALAR *dst)
{
    typedef FC_FN(vec_) vec;
    if (G_GO_PANELS == 2) {
        /* Tiles in pairs: a block swap puts both tiles' channels of panel o
         * in one vector and of panel o + MR in the other, each a whole
         * vector of its panel (2 tiles x MR), stored as such. */
        for (int64_t i = 0; i < n; i += 2) {
            vec e[2][4], y[16];
            for (int k = 0; k < 4; ++k) {
                e[0][k] = t[k][i];
                e[1][k] = t[k][i + 1];   /* past n: a tile not stored */
                FC_FN(swap_blocks_)(&e[0][k], &e[1][k], MR);
            }
            const int64_t width = i + 1 < n ? FC_LANES : MR;
            for (int s = 0; s < 1 + two; ++s) {
                G_GRAD_OUT_STEP(vec, e[s][0], e[s][1], e[s][2], e[s][3], y);
                FC_FN(wino_go_store_)(dst + s * MR * tiles + i * MR, xs, y, width);
            }
        }
    } else {
        for (int64_t i = 0; i < n; ++i) {
            vec y[16];
            G_GRAD_OUT_STEP(vec, t[0][i], t[1][i], t[2][i], t[3][i], y);
            FC_FN(wino_go_store_)(dst + i * MR, xs, y, w);
        }
    }
}
#endif

/* The split rows `cols` of channels [0, m) (4 rows of ld per channel: a, b,
 * c, d of tile t at cols[(4 * o + k) * ld + t]) transformed into the
 * products' A panels yg (16 x m_pad x tiles: for xi, panel o at xi * m_pad
 * * tiles + o * tiles, tile t's MR channels at t * MR; zeros past m).  The
 * transform runs on vectors of channels, one tile at a time, after the
 * split rows of a vector's worth of channels are transposed: 4 transposes
 * feed the 16 products (a transpose of each product after the transform,
 * as interleave_mr_ did, was 16, and on AVX-512 float32 each one half
 * zeros for an MR = 8 panel). */
static TARGET void FC_FN(wino_grad_out_pack_)(const SCALAR *cols, int64_t ld, int64_t m,
                                             int64_t tiles, SCALAR *restrict yg)
{
    const int64_t m_pad = (m + MR - 1) / MR * MR, xs = m_pad * tiles;
#if G_HAVE_SHUFFLE
    typedef FC_FN(vec_) vec;
    for (int64_t o = 0; o < m_pad; o += G_GO_PANELS * MR)
        for (int64_t q0 = 0; q0 < MR; q0 += FC_LANES) {   /* once unless MR > LANES */
            const int64_t r0 = o + q0, w = MR - q0 < FC_LANES ? MR - q0 : FC_LANES;
            const int two = G_GO_PANELS == 2 && o + MR < m_pad;
            for (int64_t p = 0; p < tiles; p += FC_LANES) {   /* cols' ld has the slack */
                vec t[4][FC_LANES];
                for (int k = 0; k < 4; ++k) {
#pragma GCC unroll 16
                    for (int64_t i = 0; i < FC_LANES; ++i)
                        t[k][i] = r0 + i < m ? G_LD_VEC(cols + (4 * (r0 + i) + k) * ld + p)
                                             : (vec){0};
                    FC_FN(transpose_)(t[k]);
                }
                const int64_t n = tiles - p < FC_LANES ? tiles - p : FC_LANES;
                FC_FN(wino_go_tiles_)(t, n, tiles, xs, w, two, yg + o * tiles + p * MR + q0);
            }
        }
#else
    for (int64_t o = 0; o < m_pad; ++o)
        for (int64_t t = 0; t < tiles; ++t) {
            SCALAR e[4], y[16];
            for (int k = 0; k < 4; ++k) e[k] = o < m ? cols[(4 * o + k) * ld + t] : 0;
            G_GRAD_OUT_STEP(SCALAR, e[0], e[1], e[2], e[3], y);
            for (int xi = 0; xi < 16; ++xi)
                yg[xi * xs + o / MR * MR * tiles + t * MR + o % MR] = y[xi];
        }
#endif
}

/* Yg = A dY A^T for the block's tiles, rows [0, m) of grad_out (row o of
 * image b at gy + b*gy_image_stride + o*L), as the products' A panels (see
 * wino_grad_out_pack_).  Each channel's tiles are first split into its 4
 * rows of `cols` (4 x m x ld), every tile row after the one before (each
 * one's overshoot rewritten by the next). */
static TARGET void FC_FN(wino_grad_out_block_)(const SCALAR *gy, const SCALAR *gy_end,
                                              int64_t gy_image_stride,
                                              const fc_geometry *g, int64_t m,
                                              const FC_FN(wino_run_) *runs, int64_t nruns,
                                              int64_t tiles, int64_t ld, SCALAR *restrict yg,
                                              SCALAR *restrict cols)
{
    /* grad_out's rows as an unpadded "input" to split like the image's. */
    fc_geometry gg = *g;
    gg.in[1] = g->out[1];
    gg.in[2] = g->out[2];
    gg.pad[2] = 0;
    const int64_t plane = g->out[1] * g->out[2];
    for (int64_t o = 0; o < m; ++o) {
        SCALAR *e0 = cols + 4 * o * ld, *o0 = e0 + ld, *e1 = e0 + 2 * ld, *o1 = e0 + 3 * ld;
        for (int64_t r = 0; r < nruns; ++r) {
            const FC_FN(wino_run_) run = runs[r];
            const SCALAR *im = gy + run.b * gy_image_stride + o * plane;
            FC_FN(wino_split_row_)(im, gy_end, &gg, 2 * run.ti, run.tj, run.n, e0 + run.t,
                                  o0 + run.t);
            FC_FN(wino_split_row_)(im, gy_end, &gg, 2 * run.ti + 1, run.tj, run.n, e1 + run.t,
                                  o1 + run.t);
        }
    }
    FC_FN(wino_grad_out_pack_)(cols, ld, m, tiles, yg);
}

/* du (16 x m_pad x c_pad) = (store 0) or += (FC_STORE_ADD) the block's
 * products for xi in [xi0, xi1), Yg already packed as A panels. */
static TARGET void FC_FN(wino_wg_gemms_)(const SCALAR *v, const SCALAR *yg, int64_t c,
                                        int64_t m, int64_t tiles, int64_t ld, int xi0, int xi1,
                                        int store, SCALAR *restrict pb, SCALAR *restrict du)
{
    const int64_t m_pad = (m + MR - 1) / MR * MR, c_pad = (c + FC_NR - 1) / FC_NR * FC_NR;
    for (int xi = xi0; xi < xi1; ++xi) {
        const SCALAR *vx = v + xi * c * ld, *pa = yg + xi * m_pad * tiles;
        SCALAR *dx = du + xi * m_pad * c_pad;
        for (int64_t i = 0; i < c_pad; i += FC_NR) {
            const int64_t cols = c - i < FC_NR ? c - i : FC_NR;
            FC_FN(interleave_nr_)(vx + i * ld, ld, cols, tiles, pb);
            for (int64_t o = 0; o < m_pad; o += MR)   /* 64 channels: 48 + 16 wide */
                FC_FN(micro_kernel_cols_)(tiles, pa + o * tiles, pb, dx + o * c_pad + i, c_pad,
                                         store, NULL, cols);
        }
    }
}

/* grad_w (m x c*9, rows ldw apart) += G^T dU G for every channel pair, dU
 * the sum of the nt threads' (du + t*stride), added in thread order;
 * G^T = [1 1/2 1/2 0; 0 1/2 -1/2 0; 0 1/2 1/2 1].  Rows of grad_w are
 * independent: threads split them. */
static void FC_FN(wino_wg_finish_)(SCALAR *du, int64_t stride, int nt, int64_t m, int64_t c,
                                  SCALAR *grad_w, int64_t ldw, int nthreads)
{
    const int64_t m_pad = (m + MR - 1) / MR * MR, c_pad = (c + FC_NR - 1) / FC_NR * FC_NR;
    const SCALAR h = (SCALAR)0.5;
    const int nto = fc_threads_for(nthreads, 16 * nt * m * c_pad);
    (void)nto;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nto)
#endif
    for (int64_t o = 0; o < m; ++o) {
        for (int t = 1; t < nt; ++t)
            for (int xi = 0; xi < 16; ++xi) {
                SCALAR *dst = du + (xi * m_pad + o) * c_pad;
                const SCALAR *src = dst + t * stride;
                for (int64_t i = 0; i < c; ++i) dst[i] += src[i];
            }
        for (int64_t i = 0; i < c; ++i) {
            SCALAR u[4][4], r[3][4];
            for (int xi = 0; xi < 16; ++xi) u[xi / 4][xi % 4] = du[(xi * m_pad + o) * c_pad + i];
            for (int b = 0; b < 4; ++b) {
                r[0][b] = u[0][b] + h * (u[1][b] + u[2][b]);
                r[1][b] = h * (u[1][b] - u[2][b]);
                r[2][b] = h * (u[1][b] + u[2][b]) + u[3][b];
            }
            SCALAR *k3 = grad_w + o * ldw + i * 9;
            for (int a = 0; a < 3; ++a) {
                k3[3 * a + 0] += r[a][0] + h * (r[a][1] + r[a][2]);
                k3[3 * a + 1] += h * (r[a][1] - r[a][2]);
                k3[3 * a + 2] += h * (r[a][1] + r[a][2]) + r[a][3];
            }
        }
    }
}

/* Threads take contiguous ranges of tiles, each summing into its own dU;
 * the sums are added in thread order, so a thread count gives fixed bits.
 * With fewer blocks than threads (a small batch of small maps) they split
 * the 16 products xi instead, each writing its slices of one dU (nothing to
 * add up) and transforming every block's input itself (a few per cent of
 * the GEMMs' work). */
static void FC_FN(wino_weight_grad_)(const SCALAR *x, int64_t x_image_stride,
                                    const SCALAR *gy, int64_t gy_image_stride, int64_t batch,
                                    const fc_geometry *g, int64_t m, SCALAR *grad_w,
                                    int64_t ldw, SCALAR *ws, int nthreads)
{
    const int64_t c = g->channels;
    const int64_t tile_rows = (g->out[1] + 1) / 2, tile_cols = (g->out[2] + 1) / 2;
    const int64_t tiles_total = batch * tile_rows * tile_cols;
    const int64_t most = FC_FN(wino_wg_tiles_)(c, m);
    /* Pointers into a thread's scratch are laid out for the largest block. */
    const int64_t tiles = FC_FN(wino_largest_block_)(most), ld = FC_FN(wino_ld_)(tiles);
    const int64_t m_pad = (m + MR - 1) / MR * MR, c_pad = (c + FC_NR - 1) / FC_NR * FC_NR;
    const int64_t du_size = 16 * m_pad * c_pad;
    const int64_t per_thread = FC_FN(wino_wg_per_thread_)(g, m);
    const SCALAR *x_end = x + (batch - 1) * x_image_stride + c * g->in[1] * g->in[2];
    const SCALAR *gy_end = gy + (batch - 1) * gy_image_stride + m * g->out[1] * g->out[2];
    fc_stop *stop = fc_stop_flag();
    int nt = fc_threads_for(nthreads, tiles_total * 16 * (c + m) * 4);
    int64_t size;
    const int64_t blocks = FC_FN(wino_thread_blocks_)(tiles_total, most, nt, &size);
    const int split_xi = blocks < nt;
    if (nt > (split_xi ? 16 : blocks)) nt = split_xi ? 16 : (int)blocks;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
    for (int t = 0; t < nt; ++t) {
        SCALAR *own = (SCALAR *)fc_align_up(ws) + t * per_thread;
        SCALAR *du = split_xi ? (SCALAR *)fc_align_up(ws) : own;
        SCALAR *v = (SCALAR *)fc_align_up(own + du_size);
        SCALAR *yg = (SCALAR *)fc_align_up(v + 16 * c * ld);
        SCALAR *pb = (SCALAR *)fc_align_up(yg + 16 * m_pad * ld);
        SCALAR *split = (SCALAR *)fc_align_up(pb + FC_NR * tiles);
        SCALAR *gy_cols = (SCALAR *)fc_align_up(split + FC_FN(wino_input_scratch_)(g, ld));
        FC_FN(wino_run_) runs[FC_WINO_MAX_RUNS];
        const int xi0 = split_xi ? 16 * t / nt : 0, xi1 = split_xi ? 16 * (t + 1) / nt : 16;
        const int64_t b0 = split_xi ? 0 : blocks * t / nt;
        const int64_t b1 = split_xi ? blocks : blocks * (t + 1) / nt;
        /* The first products are stored, the rest added: no pass zeroing dU
         * (a stop before them leaves dU unread, see below). */
        int store = 0;
        for (int64_t blk = b0; blk < b1; ++blk) {
            int64_t tau0, tau1;
            if (fc_stopping(stop)) break;
            FC_FN(wino_block_range_)(blk, blocks, tiles_total, size, &tau0, &tau1);
            for (int64_t r0 = tau0; r0 < tau1; r0 += FC_WINO_MAX_RUNS - 1) {
                const int64_t r1 = r0 + FC_WINO_MAX_RUNS - 1 < tau1 ? r0 + FC_WINO_MAX_RUNS - 1 : tau1;
                const int64_t nruns = FC_FN(wino_runs_)(r0, r1, tile_rows, tile_cols, runs);
                FC_FN(wino_input_block_)(x, x_end, x_image_stride, g, c, runs, nruns, r1 - r0,
                                        ld, v, split);
                FC_FN(wino_grad_out_block_)(gy, gy_end, gy_image_stride, g, m, runs, nruns,
                                           r1 - r0, ld, yg, gy_cols);
                FC_FN(wino_wg_gemms_)(v, yg, c, m, r1 - r0, ld, xi0, xi1, store, pb, du);
                store = FC_STORE_ADD;
            }
        }
    }
    if (fc_stop_is_set(stop)) return;   /* grad_w is garbage either way */
    FC_FN(wino_wg_finish_)((SCALAR *)fc_align_up(ws), per_thread, split_xi ? 1 : nt, m, c,
                          grad_w, ldw, nthreads);
}

/* ------------------------------------------------------------ entry points */

/* fc_conv_winograd_workspace (-1: not a geometry the transforms compute). */
static int64_t FC_FN(conv_winograd_workspace_)(const fc_geometry *g, int64_t groups,
                                               int64_t c_out, int nthreads)
{
    return fc_wino_geometry(g) ? FC_FN(wino_workspace_)(g, groups, c_out, nthreads) : -1;
}

/* fc_conv_winograd. */
static int FC_FN(conv_winograd_)(const void *x, int64_t batch, const fc_geometry *g,
                                 int64_t groups, const void *w, const void *bias, int64_t c_out,
                                 void *y, void *ws, int nthreads)
{
    if (!fc_wino_geometry(g)) return -1;
    if (batch <= 0 || c_out <= 0 || g->channels <= 0 || fc_spatial_size(g->out) <= 0) return 0;
    FC_FN(wino_forward_)((const SCALAR *)x, batch, g, groups, (const SCALAR *)w,
                         (const SCALAR *)bias, c_out, (SCALAR *)y, (SCALAR *)ws, nthreads);
    return 0;
}

/* fc_conv_winograd_weight_grad_workspace (-1 as above). */
static int64_t FC_FN(conv_winograd_weight_grad_workspace_)(const fc_geometry *g, int64_t m,
                                                           int nthreads)
{
    return fc_wino_geometry(g) ? FC_FN(wino_wg_workspace_)(g, m, nthreads) : -1;
}

/* fc_conv_winograd_weight_grad. */
static int FC_FN(conv_winograd_weight_grad_)(const void *x, int64_t x_image_stride,
                                             const void *gout, int64_t gout_image_stride,
                                             int64_t batch, const fc_geometry *g, int64_t m,
                                             void *grad_w, int64_t ldw, void *ws, int nthreads)
{
    if (!fc_wino_geometry(g)) return -1;
    if (m <= 0 || batch <= 0 || g->channels <= 0 || fc_spatial_size(g->out) <= 0) return 0;
    FC_FN(wino_weight_grad_)((const SCALAR *)x, x_image_stride, (const SCALAR *)gout,
                             gout_image_stride, batch, g, m, (SCALAR *)grad_w, ldw,
                             (SCALAR *)ws, nthreads);
    return 0;
}

#undef G_INPUT_STEP
#undef G_OUTPUT_STEP
#undef G_LD_VEC
#undef G_ST_VEC
#undef G_LD_ONE
#undef G_ST_ONE
#undef G_HAVE_SHUFFLE
