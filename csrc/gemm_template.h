/* Packed, register-blocked GEMM for one (scalar type, instruction set):
 * C (m x n) = A (m x k) * B (k x n), or C += A * B, for any element strides;
 * and the register-level pieces the fused kernels (wgrad_template.h,
 * winograd_template.h) build on: the micro-kernels and the in-register
 * transposes that pack their operands.
 *
 * Included by isa_template.h once per dtype (SCALAR, SFX, FC_FN) with the
 * instruction set's macros (see csrc/isa/avx2.c):
 *   TARGET             function attribute enabling that instruction set
 *   VBYTES             vector register width in bytes
 *   MR, NV             micro-tile: MR rows x NV vectors (NR = NV * lanes columns)
 *   G_HAVE_STREAM      1 when G_STREAM(p, v) stores a vector past the caches
 *                      and G_SFENCE() orders such stores
 *
 * The structure is BLIS's: B is packed in KC x NC blocks of NR-wide panels,
 * A in MC x KC blocks of MR-tall panels, and the micro-kernel keeps an MR x NR
 * tile of C in registers for the whole KC loop.  Packing also absorbs any
 * strides, so transposed operands cost nothing extra. */

#ifndef FC_GEMM_TUNABLES
#define FC_GEMM_TUNABLES
/* The GEMM's blocking (elements): an MC x KC block of A and a KC x NC block
 * of B (NC = panels * NR; fewer panels when a packing callback builds each
 * block just before use: it must stay in L2 until the micro-kernels read it). */
#define FC_GEMM_ALIGN 64
#ifndef FC_GEMM_KC
#define FC_GEMM_KC 256
#endif
#ifndef FC_GEMM_MC
#define FC_GEMM_MC 96
#endif
#ifndef FC_GEMM_NC_PANELS
#define FC_GEMM_NC_PANELS 128
#endif
#ifndef FC_GEMM_NC_SOURCE_PANELS
#define FC_GEMM_NC_SOURCE_PANELS 32
#endif
#if FC_GEMM_NC_SOURCE_PANELS > FC_GEMM_NC_PANELS
#error "the workspace holds FC_GEMM_NC_PANELS panels of B"
#endif

static inline void *fc_align_up(void *p)
{
    return (void *)(((uintptr_t)p + FC_GEMM_ALIGN - 1) & ~(uintptr_t)(FC_GEMM_ALIGN - 1));
}
#endif

/* Callers size per-panel tables by FC_MAX_PANEL: fail the build, not them. */
typedef char FC_FN(nr_fits_)[FC_NR <= FC_MAX_PANEL ? 1 : -1];

typedef SCALAR FC_FN(vec_) __attribute__((vector_size(VBYTES)));
/* Same vector, alignment of one scalar: for loads/stores of C rows. */
typedef SCALAR FC_FN(uvec_) __attribute__((vector_size(VBYTES), aligned(sizeof(SCALAR))));

/* acc = A_panel (MR x kc) * B_panel (kc x NR, rows ldb apart) (+ bias[i] on
 * row i when bias is not NULL); then C = acc or C += acc (store flags
 * FC_STORE_*; streaming needs C's rows aligned to VBYTES).  Only the first nv
 * vectors of each row (a constant once inlined) are used: NV for full tiles,
 * fewer for a narrow last panel. */
static inline __attribute__((always_inline)) TARGET void
FC_FN(micro_kernel_ldb_)(int64_t kc, const SCALAR *restrict a, const SCALAR *restrict b,
                        int64_t ldb, SCALAR *restrict c, int64_t ldc, int store,
                        const SCALAR *bias, const int nv)
{
    typedef FC_FN(vec_) vec;
    typedef FC_FN(uvec_) uvec;
    vec acc[MR][NV];
    /* Starting the sums at the bias fuses it for free: no pass over C. */
    for (int i = 0; i < MR; ++i)
        for (int v = 0; v < nv; ++v) acc[i][v] = (vec){0} + (bias ? bias[i] : (SCALAR)0);
    for (int64_t p = 0; p < kc; ++p, a += MR, b += ldb) {
        vec bv[NV];
        /* Unaligned-type loads: pre-packed panels may live in caller memory. */
        for (int v = 0; v < nv; ++v) bv[v] = *(const uvec *)(b + v * FC_LANES);
        for (int i = 0; i < MR; ++i) {
            const SCALAR ai = a[i];   /* broadcast: one FMA per vector of B */
            for (int v = 0; v < nv; ++v) acc[i][v] += ai * bv[v];
        }
    }
    const int add = store & FC_STORE_ADD;
#if G_HAVE_STREAM
    if (store & FC_STORE_STREAM) {
        for (int i = 0; i < MR; ++i)
            for (int v = 0; v < nv; ++v) {
                SCALAR *dst = c + i * ldc + v * FC_LANES;
                G_STREAM(dst, add ? *(const vec *)dst + acc[i][v] : acc[i][v]);
            }
        return;
    }
#endif
    for (int i = 0; i < MR; ++i)
        for (int v = 0; v < nv; ++v) {
            uvec *dst = (uvec *)(c + i * ldc + v * FC_LANES);
            *dst = add ? *dst + acc[i][v] : acc[i][v];
        }
}

/* The micro-kernel on a packed B panel (rows NR apart). */
static TARGET void FC_FN(micro_kernel_)(int64_t kc, const SCALAR *restrict a,
                                       const SCALAR *restrict b, SCALAR *restrict c,
                                       int64_t ldc, int store, const SCALAR *bias)
{
    FC_FN(micro_kernel_ldb_)(kc, a, b, FC_NR, c, ldc, store, bias, NV);
}

/* The micro-kernel on the first `cols` columns of a B panel whose rows are
 * ldb apart (C rows need only those, up to a whole vector): a narrow last
 * panel costs its own width, not NR's (a 10-wide product ran 48 wide on
 * AVX-512; Winograd's 49 tiles of a 14x14 map, 96). */
static TARGET void FC_FN(micro_kernel_cols_ldb_)(int64_t kc, const SCALAR *restrict a,
                                                const SCALAR *restrict b, int64_t ldb,
                                                SCALAR *restrict c, int64_t ldc, int store,
                                                const SCALAR *bias, int64_t cols)
{
    switch ((cols + FC_LANES - 1) / FC_LANES) {
    case 1: FC_FN(micro_kernel_ldb_)(kc, a, b, ldb, c, ldc, store, bias, 1); break;
#if NV > 2
    case 2: FC_FN(micro_kernel_ldb_)(kc, a, b, ldb, c, ldc, store, bias, 2); break;
#endif
    default: FC_FN(micro_kernel_ldb_)(kc, a, b, ldb, c, ldc, store, bias, NV); break;
    }
}

/* ... on a packed B panel (rows NR apart). */
static inline TARGET void FC_FN(micro_kernel_cols_)(int64_t kc, const SCALAR *restrict a,
                                                   const SCALAR *restrict b,
                                                   SCALAR *restrict c, int64_t ldc, int store,
                                                   const SCALAR *bias, int64_t cols)
{
    FC_FN(micro_kernel_cols_ldb_)(kc, a, b, FC_NR, c, ldc, store, bias, cols);
}

/* dst[0, n) = src[0, n), reading and writing nothing else.  For the short
 * runs packing copies by the thousand (an output row of a strided conv: 8
 * or 16 values), where a memcpy call costs more than its copy: up to two
 * vectors, two overlapping copies of a constant size, which the compiler
 * inlines (no loop, which it would turn back into a memcpy call). */
static inline __attribute__((always_inline)) TARGET void
FC_FN(copy_run_)(SCALAR *restrict dst, const SCALAR *restrict src, int64_t n)
{
    typedef FC_FN(uvec_) uvec;
    if (n > 2 * FC_LANES) {
        memcpy(dst, src, (size_t)n * sizeof(SCALAR));
        return;
    }
    if (n >= FC_LANES) {
        const FC_FN(vec_) head = *(const uvec *)src, tail = *(const uvec *)(src + n - FC_LANES);
        *(uvec *)dst = head;
        *(uvec *)(dst + n - FC_LANES) = tail;
        return;
    }
    /* n in [h, 2h): sizes spelled out, as a loop over h left the copies to
     * an 8-byte move loop. */
#define G_COPY_TWICE(h)                                                                \
    if (FC_LANES > (h) && n >= (h)) {                                                  \
        memcpy(dst, src, (h) * sizeof(SCALAR));                                        \
        memcpy(dst + n - (h), src + n - (h), (h) * sizeof(SCALAR));                    \
        return;                                                                        \
    }
    G_COPY_TWICE(8)
    G_COPY_TWICE(4)
    G_COPY_TWICE(2)
    G_COPY_TWICE(1)
#undef G_COPY_TWICE
}

/* ---------------------------------------------- packing by register transposes
 * For the fused kernels, whose operands hold positions contiguously while the
 * micro-kernel wants them interleaved by position. */

#if defined(__GNUC__) && !defined(__clang__)
/* Integer vector matching vec_ lane for lane: the shuffle-mask type. */
typedef __typeof__(__builtin_choose_expr(sizeof(SCALAR) == 4, (int32_t)0, (int64_t)0))
    FC_FN(sint_);
typedef FC_FN(sint_) FC_FN(ivec_) __attribute__((vector_size(VBYTES)));

/* Lanes 0, 1, ..., LANES-1: shuffle masks built from it by vector arithmetic
 * fold to constants once inlined (one vpermt2ps-class instruction each on
 * AVX-512); a loop filling lanes one by one does not. */
static inline __attribute__((always_inline)) TARGET FC_FN(ivec_) FC_FN(iota_)(void)
{
    static const FC_FN(sint_) lanes[16] = {0, 1, 2, 3, 4, 5, 6, 7,
                                          8, 9, 10, 11, 12, 13, 14, 15};
    FC_FN(ivec_) k;
    memcpy(&k, lanes, sizeof k);
    return k;
}

/* Swap the off-diagonal h x h blocks of rows lo and hi = lo + h: one step of
 * the recursive block transpose (masks from iota_). */
static inline __attribute__((always_inline)) TARGET void
FC_FN(swap_blocks_)(FC_FN(vec_) *lo, FC_FN(vec_) *hi, int h)
{
    typedef FC_FN(ivec_) ivec;
    const ivec k = FC_FN(iota_)();
    const ivec high = (k & h) != 0;                   /* all ones where bit h is set */
    const ivec keep = k + (high & (FC_FN(sint_))(FC_LANES - h));
    const ivec take = k + (FC_FN(sint_))h + (high & (FC_FN(sint_))(FC_LANES - h));
    const FC_FN(vec_) a = *lo, b = *hi;
    *lo = __builtin_shuffle(a, b, keep);
    *hi = __builtin_shuffle(a, b, take);
}

/* Transpose a LANES x LANES block held as LANES row vectors. */
static inline __attribute__((always_inline)) TARGET void FC_FN(transpose_)(FC_FN(vec_) *r)
{
    /* Fully unrolled, so r stays in registers and every mask is a constant. */
#pragma GCC unroll 8
    for (int h = FC_LANES / 2; h >= 1; h /= 2)
#pragma GCC unroll 16
        for (int i = 0; i < FC_LANES; ++i)
            if (!(i & h)) FC_FN(swap_blocks_)(&r[i], &r[i + h], h);
}
#define G_HAVE_TRANSPOSE 1
#else
#define G_HAVE_TRANSPOSE 0
#endif

/* dst[p*WIDTH + q] = src[q*ld + p] for q < rows, p < n; zero for rows <= q <
 * LIVE (<= WIDTH, a whole number of vectors or WIDTH), columns from LIVE on
 * left as they are: `rows` position-major rows interleaved into a panel
 * WIDTH wide.  A macro body so WIDTH (NR or MR) is a constant in each
 * expansion. */
#define G_INTERLEAVE(WIDTH, LIVE)                                                      \
    int64_t p = 0;                                                                     \
    if (G_HAVE_TRANSPOSE)                                                              \
        for (; p + FC_LANES <= n; p += FC_LANES)                                         \
            for (int64_t q0 = 0; q0 < (LIVE); q0 += FC_LANES) {                         \
                FC_FN(vec_) r[FC_LANES];                                                 \
                const SCALAR *s0 = src + q0 * ld + p;                                  \
                if (q0 + FC_LANES <= rows) /* full block: no per-row test */           \
                    _Pragma("GCC unroll 16")                                           \
                    for (int64_t i = 0; i < FC_LANES; ++i)                              \
                        r[i] = *(const FC_FN(uvec_) *)(s0 + i * ld);                    \
                else                                                                   \
                    _Pragma("GCC unroll 16")                                           \
                    for (int64_t i = 0; i < FC_LANES; ++i)                              \
                        r[i] = q0 + i < rows ? *(const FC_FN(uvec_) *)(s0 + i * ld)     \
                                             : (FC_FN(vec_)){0};                        \
                G_TRANSPOSE(r);                                                        \
                /* A panel narrower than a vector keeps each row's head. */           \
                const int64_t w = (WIDTH) - q0 < FC_LANES ? (WIDTH) - q0 : FC_LANES;     \
                _Pragma("GCC unroll 16")                                               \
                for (int64_t i = 0; i < FC_LANES; ++i) {                                \
                    if (w == FC_LANES)                                                  \
                        *(FC_FN(uvec_) *)(dst + (p + i) * (WIDTH) + q0) = r[i];         \
                    else                                                               \
                        memcpy(dst + (p + i) * (WIDTH) + q0, &r[i], (size_t)w * sizeof(SCALAR)); \
                }                                                                      \
            }                                                                          \
    for (; p < n; ++p)                                                                 \
        for (int64_t q = 0; q < (LIVE); ++q)                                           \
            dst[p * (WIDTH) + q] = q < rows ? src[q * ld + p] : 0;

#if G_HAVE_TRANSPOSE
#define G_TRANSPOSE(r) FC_FN(transpose_)(r)
#else
#define G_TRANSPOSE(r) (void)0
#endif

/* micro_kernel_cols_ldb_ reads exactly the vectors that hold its cols (its
 * cases cover every nv below NV), which interleave_nr_ relies on. */
typedef char FC_FN(cols_cases_cover_nv_)[NV <= 3 ? 1 : -1];

/* A panel NR wide, of which only the vectors holding one of the `rows` are
 * written (zeros after the rows up to that vector's end): every caller
 * runs a narrow panel through micro_kernel_cols_ with cols = rows, which
 * reads no more.  A panel of 16 Winograd channels on AVX-512 (NR = 48) was
 * two thirds zeros, transposed and stored for nothing, in every product of
 * the weight gradient; a stem's 27 rows, one third. */
static TARGET void FC_FN(interleave_nr_)(const SCALAR *src, int64_t ld, int64_t rows, int64_t n,
                                        SCALAR *restrict dst)
{
    const int64_t live = (rows + FC_LANES - 1) / FC_LANES * FC_LANES;
    G_INTERLEAVE(FC_NR, live < FC_NR ? live : FC_NR)
}

static TARGET void FC_FN(interleave_mr_)(const SCALAR *src, int64_t ld, int64_t rows, int64_t n,
                                        SCALAR *restrict dst)
{
    G_INTERLEAVE(MR, MR)
}

/* Rows [0, rows) of src (rows ld apart), columns [0, n), into consecutive
 * MR-tall panels panel_stride elements apart (column p of a panel at p * MR),
 * zero past `rows` to the last panel's end: interleave_mr_ panel by panel,
 * except where a vector holds several panels' rows (AVX-512 float32: 16
 * lanes, MR = 8), where one transpose fills them all instead of half of its
 * rows being zeros. */
static TARGET void FC_FN(interleave_mr_panels_)(const SCALAR *src, int64_t ld, int64_t rows,
                                               int64_t n, SCALAR *restrict dst,
                                               int64_t panel_stride)
{
    int64_t i0 = 0;
#if G_HAVE_TRANSPOSE
    enum { PANELS = FC_LANES % MR == 0 ? FC_LANES / MR : 1 };
    if (PANELS > 1)
        for (; i0 + MR < rows; i0 += FC_LANES) {   /* rows of two panels at least */
            const int64_t live = rows - i0 < FC_LANES ? rows - i0 : FC_LANES;
            const SCALAR *s = src + i0 * ld;
            SCALAR *d = dst + i0 / MR * panel_stride;
            int64_t p = 0;
            for (; p + FC_LANES <= n; p += FC_LANES) {
                FC_FN(vec_) r[FC_LANES];
#pragma GCC unroll 16
                for (int64_t i = 0; i < FC_LANES; ++i)
                    r[i] = i < live ? *(const FC_FN(uvec_) *)(s + i * ld + p) : (FC_FN(vec_)){0};
                FC_FN(transpose_)(r);
#pragma GCC unroll 16
                for (int64_t i = 0; i < FC_LANES; ++i)
#pragma GCC unroll 4
                    for (int k = 0; k < PANELS; ++k)
                        if (k * MR < live)
                            memcpy(d + k * panel_stride + (p + i) * MR,
                                   (const SCALAR *)&r[i] + k * MR, MR * sizeof(SCALAR));
            }
            for (; p < n; ++p)
                for (int64_t q = 0; q < (live + MR - 1) / MR * MR; ++q)
                    d[q / MR * panel_stride + p * MR + q % MR] = q < live ? s[q * ld + p] : 0;
        }
#endif
    for (; i0 < rows; i0 += MR)
        FC_FN(interleave_mr_)(src + i0 * ld, ld, rows - i0 < MR ? rows - i0 : MR, n,
                              dst + i0 / MR * panel_stride);
}

/* ------------------------------------------------------------------ packing */

/* Pack rows [0, mc) x cols [0, kc) of A into MR-tall panels, zero-filling
 * the rows past mc so the micro-kernel never branches. */
static TARGET void FC_FN(pack_a_)(int64_t mc, int64_t kc, const SCALAR *a, int64_t rs,
                                  int64_t cs, SCALAR *restrict dst)
{
    if (cs == 1) {
        /* Row-major A (a conv's weights): by register transposes, not one
         * element at a time (the per-image 1x1 convs repack their weights
         * for every image). */
        FC_FN(interleave_mr_panels_)(a, rs, mc, kc, dst, MR * kc);
        return;
    }
    for (int64_t i0 = 0; i0 < mc; i0 += MR) {
        const int64_t rows = mc - i0 < MR ? mc - i0 : MR;
        for (int64_t p = 0; p < kc; ++p, dst += MR) {
            int64_t i = 0;
            for (; i < rows; ++i) dst[i] = a[(i0 + i) * rs + p * cs];
            for (; i < MR; ++i) dst[i] = 0;
        }
    }
}

/* Pack rows [0, kc) x cols [0, nc) of B into NR-wide panels (zero-filled). */
static void FC_FN(pack_b_)(int64_t kc, int64_t nc, const SCALAR *b, int64_t rs, int64_t cs,
                          SCALAR *restrict dst)
{
    if (cs == 1) {
        /* Row-major B: read each row once, left to right, dealing its NR-wide
         * pieces out to the panels.  One sequential stream per row, which the
         * hardware prefetcher follows; panel by panel, kc short runs kc rows
         * apart stalled on memory (docs/performance.md). */
        for (int64_t p = 0; p < kc; ++p) {
            const SCALAR *src = b + p * rs;
            /* The same piece 4 rows down: the prefetcher restarts at each row
             * (a 4 KiB page for cifar's 32x32 planes; docs/performance.md). */
            const SCALAR *ahead = p + 4 < kc ? src + 4 * rs : src;
            SCALAR *row = dst + p * FC_NR;
            int64_t j0 = 0;
            for (; j0 + FC_NR <= nc; j0 += FC_NR, row += kc * FC_NR) {
                for (int64_t q = 0; q < FC_NR; q += 64 / (int64_t)sizeof(SCALAR))
                    __builtin_prefetch(ahead + j0 + q, 0, 2);
                memcpy(row, src + j0, (size_t)FC_NR * sizeof(SCALAR));   /* inlined */
            }
            if (j0 < nc) {
                memcpy(row, src + j0, (size_t)(nc - j0) * sizeof(SCALAR));
                for (int64_t j = nc - j0; j < FC_NR; ++j) row[j] = 0;
            }
        }
        return;
    }
    for (int64_t j0 = 0; j0 < nc; j0 += FC_NR, dst += kc * FC_NR) {
        const int64_t cols = nc - j0 < FC_NR ? nc - j0 : FC_NR;
        const SCALAR *src = b + j0 * cs;
        if (rs == 1) {
            /* B is a transposed view: walk down its columns so every read is
             * sequential; the scattered writes stay inside one cached panel. */
            for (int64_t j = 0; j < cols; ++j)
                for (int64_t p = 0; p < kc; ++p) dst[p * FC_NR + j] = src[j * cs + p];
            for (int64_t p = 0; p < kc; ++p)
                for (int64_t j = cols; j < FC_NR; ++j) dst[p * FC_NR + j] = 0;
            continue;
        }
        for (int64_t p = 0; p < kc; ++p) {
            SCALAR *row = dst + p * FC_NR;
            int64_t j = 0;
            for (; j < cols; ++j) row[j] = src[p * rs + j * cs];
            for (; j < FC_NR; ++j) row[j] = 0;
        }
    }
}

/* Elements of workspace one thread needs. */
static int64_t FC_FN(workspace_)(void)
{
    return FC_GEMM_MC * FC_GEMM_KC + FC_GEMM_KC * FC_GEMM_NC_PANELS * FC_NR
           + 2 * FC_GEMM_ALIGN / (int64_t)sizeof(SCALAR);
}

/* C's rows [0, mr) x columns [j, j + nr) (+)= the tile `edge` (rows FC_NR
 * apart); c is C's row 0, laid out as c_layout says.  A block's run of a
 * row at a time, in whole vectors: half the tiles of an 8x8 output's images
 * side by side (L = 64, NR = 48) span two images. */
static TARGET void FC_FN(store_edge_)(const SCALAR *restrict edge, int64_t mr, int64_t nr,
                                      SCALAR *restrict c, fc_c_layout c_layout, int64_t j,
                                      int accumulate)
{
    for (int64_t q = 0; q < nr;) {
        const int64_t in_block = (j + q) % c_layout.block;
        const int64_t run = c_layout.block - in_block < nr - q ? c_layout.block - in_block : nr - q;
        SCALAR *restrict dst = c + (j + q) / c_layout.block * c_layout.block_stride + in_block;
        for (int64_t i = 0; i < mr; ++i) {
            const SCALAR *restrict src = edge + i * FC_NR + q;
            SCALAR *restrict row = dst + i * c_layout.ld;
            if (accumulate)
                for (int64_t r = 0; r < run; ++r) row[r] += src[r];
            else
                FC_FN(copy_run_)(row, src, run);
        }
        q += run;
    }
}

/* The product's columns [col0, col0 + n) on one thread (b_src packs them,
 * c and c_layout address the whole product's C, b is already at col0), with
 * `ws` (workspace_() elements); bias
 * (m values, or NULL) is added to C's rows unless accumulating.  `store`:
 * FC_STORE_* flags; streaming applies to aligned full tiles of a C written
 * in one K block.  Returns early, C unfinished, once `stop` is set (checked
 * per MC x KC x NC block: a few milliseconds of work). */
static void FC_FN(gemm_serial_)(int64_t m, int64_t n, int64_t k,
                               const SCALAR *a, int64_t rs_a, int64_t cs_a,
                               const SCALAR *b, int64_t rs_b, int64_t cs_b,
                               const fc_b_source *b_src, int64_t col0,
                               SCALAR *c, fc_c_layout c_layout, int store, const SCALAR *bias,
                               SCALAR *ws, fc_stop *stop)
{
    const int64_t ldc = c_layout.ld;
    const int accumulate = store & FC_STORE_ADD;
    /* Streaming saves reading C's lines in only when C is written once: with
     * several K blocks the earlier ones have brought C into cache already
     * (docs/performance.md: the strided forward, K = 576, ran slower streamed). */
    const int stream = G_HAVE_STREAM && (store & FC_STORE_STREAM) && !accumulate
                       && k <= FC_GEMM_KC && (ldc * (int64_t)sizeof(SCALAR)) % VBYTES == 0;
    /* A packing callback builds each B block just before use: keep the block
     * small enough (~0.75 MiB) to stay in L2 until the micro-kernels read it. */
    const int64_t nc_max = (b_src ? FC_GEMM_NC_SOURCE_PANELS : FC_GEMM_NC_PANELS) * FC_NR;
    SCALAR *pa = (SCALAR *)fc_align_up(ws);
    SCALAR *pb = (SCALAR *)fc_align_up(pa + FC_GEMM_MC * FC_GEMM_KC);
    SCALAR edge[MR * NV * (VBYTES / sizeof(SCALAR))] __attribute__((aligned(64)));
    /* The bias of one MC block, zero past m: edge tiles read MR rows. */
    SCALAR bias_block[FC_GEMM_MC + MR];
    for (int64_t jc = 0; jc < n; jc += nc_max) {
        const int64_t nc = n - jc < nc_max ? n - jc : nc_max;
        for (int64_t pc = 0; pc < k; pc += FC_GEMM_KC) {
            const int64_t kc = k - pc < FC_GEMM_KC ? k - pc : FC_GEMM_KC;
            const int acc = accumulate || pc > 0;
            const int add_bias = bias && !acc;   /* once, on the first K block */
            if (b_src)
                b_src->pack(b_src, pc, kc, col0 + jc, nc, FC_NR, pb);
            else
                FC_FN(pack_b_)(kc, nc, b + pc * rs_b + jc * cs_b, rs_b, cs_b, pb);
            for (int64_t ic = 0; ic < m; ic += FC_GEMM_MC) {
                const int64_t mc = m - ic < FC_GEMM_MC ? m - ic : FC_GEMM_MC;
                if (fc_stopping(stop)) goto done;
                FC_FN(pack_a_)(mc, kc, a + ic * rs_a + pc * cs_a, rs_a, cs_a, pa);
                if (add_bias)
                    for (int64_t i = 0; i < FC_GEMM_MC + MR; ++i)
                        bias_block[i] = i < mc ? bias[ic + i] : 0;
                for (int64_t jr = 0; jr < nc; jr += FC_NR) {
                    const int64_t nr = nc - jr < FC_NR ? nc - jr : FC_NR;
                    const SCALAR *bp = pb + jr * kc;
                    for (int64_t ir = 0; ir < mc; ir += MR) {
                        const int64_t mr = mc - ir < MR ? mc - ir : MR;
                        const SCALAR *ap = pa + ir * kc;
                        const SCALAR *tile_bias = add_bias ? bias_block + ir : NULL;
                        /* Column j of C's block, and whether the tile stays in it. */
                        const int64_t j = col0 + jc + jr, in_block = j % c_layout.block;
                        SCALAR *ct = c + (ic + ir) * ldc + j / c_layout.block * c_layout.block_stride
                                     + in_block;
                        if (mr == MR && nr == FC_NR && in_block + nr <= c_layout.block) {
                            const int streamed = stream && (uintptr_t)ct % VBYTES == 0;
                            FC_FN(micro_kernel_)(kc, ap, bp, ct, ldc,
                                                (acc ? FC_STORE_ADD : 0)
                                                | (streamed ? FC_STORE_STREAM : 0),
                                                tile_bias);
                            continue;
                        }
                        /* Edge tile (or one across C's blocks): compute the
                         * vectors holding its nr columns, keep the valid part,
                         * a block's run at a time. */
                        FC_FN(micro_kernel_cols_)(kc, ap, bp, edge, FC_NR, 0, tile_bias, nr);
                        FC_FN(store_edge_)(edge, mr, nr, c + (ic + ir) * ldc, c_layout, j, acc);
                    }
                }
            }
        }
    }
done:
#if G_HAVE_STREAM
    if (stream) G_SFENCE();   /* streamed stores visible before other threads read C */
#endif
    return;
}

/* Split C into column slabs, one per thread: disjoint outputs, no races. */
static void FC_FN(gemm_parallel_)(int64_t m, int64_t n, int64_t k,
                                 const SCALAR *a, int64_t rs_a, int64_t cs_a,
                        const SCALAR *b, int64_t rs_b, int64_t cs_b,
                        const fc_b_source *b_src,
                        SCALAR *c, fc_c_layout c_layout, int store, const SCALAR *bias,
                        SCALAR *ws, fc_stop *stop, int nthreads)
{
    const int64_t per_thread = FC_FN(workspace_)();
    const int64_t panels = (n + FC_NR - 1) / FC_NR;
    /* One multiply-add is far cheaper than touching an element: a product
     * below ~16M of them runs faster on one thread than waking the others. */
    int nt = fc_threads_for(nthreads, m * n * k / 64);
    if (nt > panels) nt = (int)panels;
    if (nt <= 1) {
        FC_FN(gemm_serial_)(m, n, k, a, rs_a, cs_a, b, rs_b, cs_b, b_src, 0, c, c_layout,
                           store, bias, ws, stop);
        return;
    }
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
    for (int t = 0; t < nt; ++t) {
        const int64_t j0 = panels * t / nt * FC_NR;
        int64_t j1 = panels * (t + 1) / nt * FC_NR;
        if (j1 > n) j1 = n;
        FC_FN(gemm_serial_)(m, j1 - j0, k, a, rs_a, cs_a, b ? b + j0 * cs_b : b, rs_b, cs_b,
                           b_src, j0, c, c_layout, store, bias,
                           ws + t * per_thread, stop);
    }
}

/* ------------------------------------------------------------ entry points */

/* Elements of scratch fc_gemm needs with nthreads threads. */
static int64_t FC_FN(gemm_workspace_)(int nthreads)
{
    return FC_FN(workspace_)() * (nthreads < 1 ? 1 : nthreads);
}

/* C = A * B + bias[:, None] (bias may be NULL) with B the strided matrix b,
 * or from `b_src` when that is not NULL.  `store` is 0 or FC_STORE_STREAM
 * (honoured when k fits one K block: C is then written once).  Threads split
 * the columns: each packs its own.  The conv kernels' GEMM. */
static void FC_FN(gemm_source_)(int64_t m, int64_t n, int64_t k, const SCALAR *a, int64_t rs_a,
                                int64_t cs_a, const SCALAR *b, int64_t rs_b, int64_t cs_b,
                                const fc_b_source *b_src, SCALAR *c, fc_c_layout c_layout,
                                const SCALAR *bias, int store, SCALAR *ws, fc_stop *stop,
                                int nthreads)
{
    if (m <= 0 || n <= 0 || k <= 0) return;  /* callers never ask for an empty sum */
    FC_FN(gemm_parallel_)(m, n, k, a, rs_a, cs_a, b_src ? NULL : b, rs_b, cs_b, b_src, c,
                          c_layout, store & FC_STORE_STREAM, bias, ws, stop, nthreads);
}

/* Products with nothing to multiply: no C (m or n 0), or an empty sum (k 0:
 * C = 0 unless accumulating).  Returns 1 when it has done the call. */
static int FC_FN(gemm_trivial_)(int64_t m, int64_t n, int64_t k, SCALAR *c, int64_t ldc,
                                int accumulate)
{
    if (m <= 0 || n <= 0) return 1;
    if (k > 0) return 0;
    if (!accumulate)
        for (int64_t i = 0; i < m; ++i) memset(c + i * ldc, 0, (size_t)n * sizeof(SCALAR));
    return 1;
}

/* fc_gemm. */
static void FC_FN(gemm_)(int64_t m, int64_t n, int64_t k, const void *a_, int64_t rs_a,
                         int64_t cs_a, const void *b_, int64_t rs_b, int64_t cs_b, void *c_,
                         int64_t ldc, int accumulate, void *ws, int nthreads)
{
    const SCALAR *a = a_, *b = b_;
    SCALAR *c = c_;
    if (FC_FN(gemm_trivial_)(m, n, k, c, ldc, accumulate)) return;
    FC_FN(gemm_parallel_)(m, n, k, a, rs_a, cs_a, b, rs_b, cs_b, NULL, c, fc_c_plain(ldc),
                          accumulate ? FC_STORE_ADD : 0, NULL, ws, fc_stop_flag(), nthreads);
}

/* ------------------------------------------------- small products, unpacked
 * Below a few hundred thousand multiply-adds, packing both operands and
 * computing whole MR x NR tiles for a 10-wide edge costs more than the
 * product (a classifier head, x (64, 256) by w (10, 256), ran ~8x slower
 * than NumPy's matmul).  These kernels read A and B where they lie, on one
 * thread, in one of two orientations chosen by B's layout:
 *   rows: B's rows contiguous; a tile of C rows accumulates broadcast
 *         elements of A times vectors of B's rows (the micro-kernel's
 *         arithmetic without the panels);
 *   dot:  B's columns and A's rows contiguous (x @ w.T, linear's forward);
 *         each element of C is a dot product vectorised along k.
 * Any other layout takes a plain strided loop (callers copy an operand
 * instead: see functional/_linear.py). */

#ifndef FC_GEMM_SMALL_TUNABLES
#define FC_GEMM_SMALL_TUNABLES
/* The dot tile: 4 rows of A x 3 columns of B, 12 vector sums and 7 loads per
 * step, which fit AVX2's 16 registers. */
#define FC_DOT_ROWS 4
#define FC_DOT_COLS 3
#endif

/* The first `count` (1..LANES) elements at p, zero past them, never reading
 * past them: the instruction set's masked load (G_LOAD_HEAD) where it has one. */
static inline __attribute__((always_inline)) TARGET FC_FN(vec_)
FC_FN(load_head_)(const SCALAR *p, int64_t count)
{
#ifdef G_LOAD_HEAD
    return G_LOAD_HEAD(p, count);
#else
    FC_FN(vec_) v = {0};
    for (int64_t l = 0; l < count; ++l) v[l] = p[l];
    return v;
#endif
}

/* The sum of v's lanes: log2(LANES) swaps of halves and adds, where the
 * compiler has shuffles, instead of LANES extracts (a dot tile ends in 12). */
static inline __attribute__((always_inline)) TARGET SCALAR FC_FN(sum_lanes_)(FC_FN(vec_) v)
{
#if G_HAVE_TRANSPOSE
    const FC_FN(ivec_) lane = FC_FN(iota_)();
    for (int h = FC_LANES / 2; h >= 1; h /= 2) v += __builtin_shuffle(v, lane ^ h);
    return v[0];
#else
    SCALAR s = 0;
    for (int64_t l = 0; l < FC_LANES; ++l) s += v[l];
    return s;
#endif
}

/* C[i, j] = s or C[i, j] += s. */
static inline __attribute__((always_inline)) void
FC_FN(small_store_)(SCALAR *c, SCALAR s, int add)
{
    *c = add ? *c + s : s;
}

/* Rows form: C rows [0, rows) x columns [0, nv vectors), the last vector
 * only its first `tail` lanes when `partial`; rows, nv and partial are
 * constants once inlined. */
static inline __attribute__((always_inline)) TARGET void
FC_FN(small_rows_tile_)(int64_t k, const SCALAR *a, int64_t rs_a, int64_t cs_a,
                        const SCALAR *b, int64_t rs_b, SCALAR *c, int64_t ldc, int add,
                        const int rows, const int nv, const int partial, int64_t tail)
{
    typedef FC_FN(vec_) vec;
    typedef FC_FN(uvec_) uvec;
    vec acc[MR][NV];
    for (int i = 0; i < rows; ++i)
        for (int v = 0; v < nv; ++v) acc[i][v] = (vec){0};
    for (int64_t p = 0; p < k; ++p, a += cs_a, b += rs_b) {
        vec bv[NV];
        for (int v = 0; v < nv; ++v)
            bv[v] = partial && v == nv - 1 ? FC_FN(load_head_)(b + v * FC_LANES, tail)
                                           : *(const uvec *)(b + v * FC_LANES);
        for (int i = 0; i < rows; ++i) {
            const SCALAR ai = a[i * rs_a];
            for (int v = 0; v < nv; ++v) acc[i][v] += ai * bv[v];
        }
    }
    for (int i = 0; i < rows; ++i)
        for (int v = 0; v < nv; ++v) {
            SCALAR *dst = c + i * ldc + v * FC_LANES;
            if (partial && v == nv - 1) {
                for (int64_t l = 0; l < tail; ++l) FC_FN(small_store_)(dst + l, acc[i][v][l], add);
                continue;
            }
            uvec *d = (uvec *)dst;
            *d = add ? *d + acc[i][v] : acc[i][v];
        }
}

/* One block of C rows in the rows form: NR-wide tiles, then the columns
 * left one vector at a time (the last one partial). */
static inline __attribute__((always_inline)) TARGET void
FC_FN(small_rows_block_)(int64_t n, int64_t k, const SCALAR *a, int64_t rs_a, int64_t cs_a,
                         const SCALAR *b, int64_t rs_b, SCALAR *c, int64_t ldc, int add,
                         const int rows)
{
    int64_t j = 0;
    for (; j + FC_NR <= n; j += FC_NR)
        FC_FN(small_rows_tile_)(k, a, rs_a, cs_a, b + j, rs_b, c + j, ldc, add, rows, NV, 0, 0);
    for (; j + FC_LANES <= n; j += FC_LANES)
        FC_FN(small_rows_tile_)(k, a, rs_a, cs_a, b + j, rs_b, c + j, ldc, add, rows, 1, 0, 0);
    if (j < n)
        FC_FN(small_rows_tile_)(k, a, rs_a, cs_a, b + j, rs_b, c + j, ldc, add, rows, 1, 1,
                                n - j);
}

static TARGET void FC_FN(small_rows_)(int64_t m, int64_t n, int64_t k, const SCALAR *a,
                                      int64_t rs_a, int64_t cs_a, const SCALAR *b,
                                      int64_t rs_b, SCALAR *c, int64_t ldc, int add)
{
    int64_t i = 0;
    for (; i + MR <= m; i += MR)
        FC_FN(small_rows_block_)(n, k, a + i * rs_a, rs_a, cs_a, b, rs_b, c + i * ldc, ldc,
                                 add, MR);
    for (; i < m; ++i)
        FC_FN(small_rows_block_)(n, k, a + i * rs_a, rs_a, cs_a, b, rs_b, c + i * ldc, ldc,
                                 add, 1);
}

/* Dot form: C rows [0, rows) x columns [0, cols), A's rows rs_a apart and
 * B's columns cs_b apart, both contiguous along k; rows and cols are
 * constants once inlined. */
static inline __attribute__((always_inline)) TARGET void
FC_FN(small_dot_tile_)(int64_t k, const SCALAR *a, int64_t rs_a, const SCALAR *b,
                       int64_t cs_b, SCALAR *c, int64_t ldc, int add, const int rows,
                       const int cols)
{
    typedef FC_FN(vec_) vec;
    typedef FC_FN(uvec_) uvec;
    vec acc[FC_DOT_ROWS][FC_DOT_COLS];
    for (int i = 0; i < rows; ++i)
        for (int j = 0; j < cols; ++j) acc[i][j] = (vec){0};
    int64_t p = 0;
    for (; p + FC_LANES <= k; p += FC_LANES) {
        vec bv[FC_DOT_COLS];
        for (int j = 0; j < cols; ++j) bv[j] = *(const uvec *)(b + j * cs_b + p);
        for (int i = 0; i < rows; ++i) {
            const vec av = *(const uvec *)(a + i * rs_a + p);
            for (int j = 0; j < cols; ++j) acc[i][j] += av * bv[j];
        }
    }
    if (p < k) {  /* the last partial vector: zero lanes add nothing */
        vec bv[FC_DOT_COLS];
        for (int j = 0; j < cols; ++j) bv[j] = FC_FN(load_head_)(b + j * cs_b + p, k - p);
        for (int i = 0; i < rows; ++i) {
            const vec av = FC_FN(load_head_)(a + i * rs_a + p, k - p);
            for (int j = 0; j < cols; ++j) acc[i][j] += av * bv[j];
        }
    }
    for (int i = 0; i < rows; ++i)
        for (int j = 0; j < cols; ++j)
            FC_FN(small_store_)(c + i * ldc + j, FC_FN(sum_lanes_)(acc[i][j]), add);
}

/* One block of C rows in the dot form: FC_DOT_COLS columns at a time, then
 * the columns left one by one. */
static inline __attribute__((always_inline)) TARGET void
FC_FN(small_dot_block_)(int64_t n, int64_t k, const SCALAR *a, int64_t rs_a, const SCALAR *b,
                        int64_t cs_b, SCALAR *c, int64_t ldc, int add, const int rows)
{
    int64_t j = 0;
    for (; j + FC_DOT_COLS <= n; j += FC_DOT_COLS)
        FC_FN(small_dot_tile_)(k, a, rs_a, b + j * cs_b, cs_b, c + j, ldc, add, rows,
                               FC_DOT_COLS);
    for (; j < n; ++j)
        FC_FN(small_dot_tile_)(k, a, rs_a, b + j * cs_b, cs_b, c + j, ldc, add, rows, 1);
}

static TARGET void FC_FN(small_dot_)(int64_t m, int64_t n, int64_t k, const SCALAR *a,
                                     int64_t rs_a, const SCALAR *b, int64_t cs_b, SCALAR *c,
                                     int64_t ldc, int add)
{
    int64_t i = 0;
    for (; i + FC_DOT_ROWS <= m; i += FC_DOT_ROWS)
        FC_FN(small_dot_block_)(n, k, a + i * rs_a, rs_a, b, cs_b, c + i * ldc, ldc, add,
                                FC_DOT_ROWS);
    for (; i < m; ++i)
        FC_FN(small_dot_block_)(n, k, a + i * rs_a, rs_a, b, cs_b, c + i * ldc, ldc, add, 1);
}

/* fc_gemm_small. */
static void FC_FN(gemm_small_)(int64_t m, int64_t n, int64_t k, const void *a_, int64_t rs_a,
                               int64_t cs_a, const void *b_, int64_t rs_b, int64_t cs_b,
                               void *c_, int64_t ldc, int accumulate)
{
    const SCALAR *a = a_, *b = b_;
    SCALAR *c = c_;
    if (FC_FN(gemm_trivial_)(m, n, k, c, ldc, accumulate)) return;
    /* A stride along an axis of length 1 is never used: NumPy may give any. */
    const int rows_ok = cs_b == 1 || n == 1;
    const int dot_ok = (rs_b == 1 && cs_a == 1) || k == 1;
    /* Fewer columns than a vector waste the rows form's lanes, not the dot's. */
    if (dot_ok && (!rows_ok || n < FC_LANES)) {
        FC_FN(small_dot_)(m, n, k, a, rs_a, b, cs_b, c, ldc, accumulate);
    } else if (rows_ok) {
        FC_FN(small_rows_)(m, n, k, a, rs_a, cs_a, b, rs_b, c, ldc, accumulate);
    } else {
        for (int64_t i = 0; i < m; ++i)
            for (int64_t j = 0; j < n; ++j) {
                SCALAR s = 0;
                for (int64_t p = 0; p < k; ++p) s += a[i * rs_a + p * cs_a] * b[p * rs_b + j * cs_b];
                FC_FN(small_store_)(c + i * ldc + j, s, accumulate);
            }
    }
}
