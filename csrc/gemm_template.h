/* Packed, register-blocked GEMM for one (scalar type, instruction set):
 * C (m x n) = A (m x k) * B (k x n), or C += A * B, for any element strides.
 *
 * Included by gemm.c once per combination with:
 *   SCALAR, SFX        the C type and its name suffix (f32, f64)
 *   ISA                name suffix of the instruction set (avx512, avx2, generic)
 *   TARGET             function attribute enabling that instruction set
 *   VBYTES             vector register width in bytes
 *   MR, NV             micro-tile: MR rows x NV vectors (NR = NV * lanes columns)
 *
 * The structure is BLIS's: B is packed in KC x NC blocks of NR-wide panels,
 * A in MC x KC blocks of MR-tall panels, and the micro-kernel keeps an MR x NR
 * tile of C in registers for the whole KC loop.  Packing also absorbs any
 * strides, so transposed operands cost nothing extra. */

#define G_FN(name) FC_CAT(FC_CAT(FC_CAT(name, ISA), _), SFX)
#define G_LANES ((int64_t)(VBYTES / sizeof(SCALAR)))
#define G_NR (NV * G_LANES)

/* Callers size per-panel tables by FC_MAX_PANEL: fail the build, not them. */
typedef char G_FN(nr_fits_)[G_NR <= FC_MAX_PANEL ? 1 : -1];

typedef SCALAR G_FN(vec_) __attribute__((vector_size(VBYTES)));
/* Same vector, alignment of one scalar: for loads/stores of C rows. */
typedef SCALAR G_FN(uvec_) __attribute__((vector_size(VBYTES), aligned(sizeof(SCALAR))));

/* acc = A_panel (MR x kc) * B_panel (kc x NR, rows ldb apart) (+ bias[i] on
 * row i when bias is not NULL); then C = acc or C += acc (store flags
 * FC_STORE_*; streaming needs C's rows aligned to VBYTES).  Only the first nv
 * vectors of each row (a constant once inlined) are used: NV for full tiles,
 * fewer for a narrow last panel. */
static inline __attribute__((always_inline)) TARGET void
G_FN(micro_kernel_ldb_)(int64_t kc, const SCALAR *restrict a, const SCALAR *restrict b,
                        int64_t ldb, SCALAR *restrict c, int64_t ldc, int store,
                        const SCALAR *bias, const int nv)
{
    typedef G_FN(vec_) vec;
    typedef G_FN(uvec_) uvec;
    vec acc[MR][NV];
    /* Starting the sums at the bias fuses it for free: no pass over C. */
    for (int i = 0; i < MR; ++i)
        for (int v = 0; v < nv; ++v) acc[i][v] = (vec){0} + (bias ? bias[i] : (SCALAR)0);
    for (int64_t p = 0; p < kc; ++p, a += MR, b += ldb) {
        vec bv[NV];
        /* Unaligned-type loads: pre-packed panels may live in caller memory. */
        for (int v = 0; v < nv; ++v) bv[v] = *(const uvec *)(b + v * G_LANES);
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
                SCALAR *dst = c + i * ldc + v * G_LANES;
                G_STREAM(dst, add ? *(const vec *)dst + acc[i][v] : acc[i][v]);
            }
        return;
    }
#endif
    for (int i = 0; i < MR; ++i)
        for (int v = 0; v < nv; ++v) {
            uvec *dst = (uvec *)(c + i * ldc + v * G_LANES);
            *dst = add ? *dst + acc[i][v] : acc[i][v];
        }
}

/* The micro-kernel on a packed B panel (rows NR apart). */
static TARGET void G_FN(micro_kernel_)(int64_t kc, const SCALAR *restrict a,
                                       const SCALAR *restrict b, SCALAR *restrict c,
                                       int64_t ldc, int store, const SCALAR *bias)
{
    G_FN(micro_kernel_ldb_)(kc, a, b, G_NR, c, ldc, store, bias, NV);
}

/* C += A_panel * B_panel's first `cols` columns (C rows need only those, up
 * to a whole vector): a narrow last panel costs its own width, not NR's. */
static TARGET void G_FN(micro_kernel_cols_)(int64_t kc, const SCALAR *restrict a,
                                            const SCALAR *restrict b, SCALAR *restrict c,
                                            int64_t ldc, int64_t cols)
{
    switch ((cols + G_LANES - 1) / G_LANES) {
    case 1: G_FN(micro_kernel_ldb_)(kc, a, b, G_NR, c, ldc, 1, NULL, 1); break;
#if NV > 2
    case 2: G_FN(micro_kernel_ldb_)(kc, a, b, G_NR, c, ldc, 1, NULL, 2); break;
#endif
    default: G_FN(micro_kernel_ldb_)(kc, a, b, G_NR, c, ldc, 1, NULL, NV); break;
    }
}

/* ... and on B panels cut from a row-major matrix (Winograd's V blocks),
 * which then need no packing pass. */
static TARGET void G_FN(micro_kernel_strided_)(int64_t kc, const SCALAR *restrict a,
                                               const SCALAR *restrict b, int64_t ldb,
                                               SCALAR *restrict c, int64_t ldc,
                                               int accumulate)
{
    G_FN(micro_kernel_ldb_)(kc, a, b, ldb, c, ldc, accumulate, NULL, NV);
}

/* Pack rows [0, mc) x cols [0, kc) of A into MR-tall panels, zero-filling
 * the rows past mc so the micro-kernel never branches. */
static void G_FN(pack_a_)(int64_t mc, int64_t kc, const SCALAR *a, int64_t rs, int64_t cs,
                          SCALAR *restrict dst)
{
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
static void G_FN(pack_b_)(int64_t kc, int64_t nc, const SCALAR *b, int64_t rs, int64_t cs,
                          SCALAR *restrict dst)
{
    if (cs == 1) {
        /* Row-major B: read each row once, left to right, dealing its NR-wide
         * pieces out to the panels.  One sequential stream per row, which the
         * hardware prefetcher follows; panel by panel, kc short runs kc rows
         * apart stalled on memory (strided data gradient: 22.8 -> 20.5 ms). */
        for (int64_t p = 0; p < kc; ++p) {
            const SCALAR *src = b + p * rs;
            /* The same piece 4 rows down: the prefetcher restarts at each row
             * (a 4 KiB page for cifar's 32x32 planes: 3.2 -> 3.0 ms). */
            const SCALAR *ahead = p + 4 < kc ? src + 4 * rs : src;
            SCALAR *row = dst + p * G_NR;
            int64_t j0 = 0;
            for (; j0 + G_NR <= nc; j0 += G_NR, row += kc * G_NR) {
                for (int64_t q = 0; q < G_NR; q += 64 / (int64_t)sizeof(SCALAR))
                    __builtin_prefetch(ahead + j0 + q, 0, 2);
                memcpy(row, src + j0, (size_t)G_NR * sizeof(SCALAR));   /* inlined */
            }
            if (j0 < nc) {
                memcpy(row, src + j0, (size_t)(nc - j0) * sizeof(SCALAR));
                for (int64_t j = nc - j0; j < G_NR; ++j) row[j] = 0;
            }
        }
        return;
    }
    for (int64_t j0 = 0; j0 < nc; j0 += G_NR, dst += kc * G_NR) {
        const int64_t cols = nc - j0 < G_NR ? nc - j0 : G_NR;
        const SCALAR *src = b + j0 * cs;
        if (rs == 1) {
            /* B is a transposed view: walk down its columns so every read is
             * sequential; the scattered writes stay inside one cached panel. */
            for (int64_t j = 0; j < cols; ++j)
                for (int64_t p = 0; p < kc; ++p) dst[p * G_NR + j] = src[j * cs + p];
            for (int64_t p = 0; p < kc; ++p)
                for (int64_t j = cols; j < G_NR; ++j) dst[p * G_NR + j] = 0;
            continue;
        }
        for (int64_t p = 0; p < kc; ++p) {
            SCALAR *row = dst + p * G_NR;
            int64_t j = 0;
            for (; j < cols; ++j) row[j] = src[p * rs + j * cs];
            for (; j < G_NR; ++j) row[j] = 0;
        }
    }
}

/* Elements of workspace one thread needs. */
static int64_t G_FN(workspace_)(void)
{
    return FC_GEMM_MC * FC_GEMM_KC + FC_GEMM_KC * FC_GEMM_NC_PANELS * G_NR
           + 2 * FC_GEMM_ALIGN / (int64_t)sizeof(SCALAR);
}

/* The whole product on one thread, with `ws` (workspace_() elements); bias
 * (m values, or NULL) is added to C's rows unless accumulating.  `store`:
 * FC_STORE_* flags; streaming applies to aligned full tiles of a C written
 * in one K block. */
static void G_FN(gemm_serial_)(int64_t m, int64_t n, int64_t k,
                               const SCALAR *a, int64_t rs_a, int64_t cs_a,
                               const SCALAR *b, int64_t rs_b, int64_t cs_b,
                               const fc_b_source *b_src, int64_t b_col0,
                               SCALAR *c, int64_t ldc, int store, const SCALAR *bias,
                               SCALAR *ws)
{
    const int accumulate = store & FC_STORE_ADD;
    /* Streaming saves reading C's lines in only when C is written once: with
     * several K blocks the earlier ones have brought C into cache already
     * (strided fwd, K = 576, ran ~1 ms slower streamed at 2 threads). */
    const int stream = G_HAVE_STREAM && (store & FC_STORE_STREAM) && !accumulate
                       && k <= FC_GEMM_KC && (ldc * (int64_t)sizeof(SCALAR)) % VBYTES == 0;
    /* A packing callback builds each B block just before use: keep the block
     * small enough (~0.75 MiB) to stay in L2 until the micro-kernels read it. */
    const int64_t nc_max = (b_src ? FC_GEMM_NC_SOURCE_PANELS : FC_GEMM_NC_PANELS) * G_NR;
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
                b_src->pack(b_src, pc, kc, b_col0 + jc, nc, G_NR, pb);
            else
                G_FN(pack_b_)(kc, nc, b + pc * rs_b + jc * cs_b, rs_b, cs_b, pb);
            for (int64_t ic = 0; ic < m; ic += FC_GEMM_MC) {
                const int64_t mc = m - ic < FC_GEMM_MC ? m - ic : FC_GEMM_MC;
                G_FN(pack_a_)(mc, kc, a + ic * rs_a + pc * cs_a, rs_a, cs_a, pa);
                if (add_bias)
                    for (int64_t i = 0; i < FC_GEMM_MC + MR; ++i)
                        bias_block[i] = i < mc ? bias[ic + i] : 0;
                for (int64_t jr = 0; jr < nc; jr += G_NR) {
                    const int64_t nr = nc - jr < G_NR ? nc - jr : G_NR;
                    const SCALAR *bp = pb + jr * kc;
                    for (int64_t ir = 0; ir < mc; ir += MR) {
                        const int64_t mr = mc - ir < MR ? mc - ir : MR;
                        const SCALAR *ap = pa + ir * kc;
                        const SCALAR *tile_bias = add_bias ? bias_block + ir : NULL;
                        SCALAR *ct = c + (ic + ir) * ldc + jc + jr;
                        if (mr == MR && nr == G_NR) {
                            const int streamed = stream && (uintptr_t)ct % VBYTES == 0;
                            G_FN(micro_kernel_)(kc, ap, bp, ct, ldc,
                                                (acc ? FC_STORE_ADD : 0)
                                                | (streamed ? FC_STORE_STREAM : 0),
                                                tile_bias);
                            continue;
                        }
                        /* Edge tile: compute in full, keep the valid part. */
                        G_FN(micro_kernel_)(kc, ap, bp, edge, G_NR, 0, tile_bias);
                        for (int64_t i = 0; i < mr; ++i)
                            for (int64_t j = 0; j < nr; ++j)
                                ct[i * ldc + j] = (acc ? ct[i * ldc + j] : 0)
                                                  + edge[i * G_NR + j];
                    }
                }
            }
        }
    }
#if G_HAVE_STREAM
    if (stream) G_SFENCE();   /* streamed stores visible before other threads read C */
#endif
}

/* Split C into column slabs, one per thread: disjoint outputs, no races. */
static void G_FN(gemm_)(int64_t m, int64_t n, int64_t k,
                        const SCALAR *a, int64_t rs_a, int64_t cs_a,
                        const SCALAR *b, int64_t rs_b, int64_t cs_b,
                        const fc_b_source *b_src,
                        SCALAR *c, int64_t ldc, int store, const SCALAR *bias,
                        SCALAR *ws, int nthreads)
{
    const int64_t per_thread = G_FN(workspace_)();
    const int64_t panels = (n + G_NR - 1) / G_NR;
    /* One multiply-add is far cheaper than touching an element: a product
     * below ~16M of them runs faster on one thread than waking the others. */
    int nt = fc_threads_for(nthreads, m * n * k / 64);
    if (nt > panels) nt = (int)panels;
    if (nt <= 1) {
        G_FN(gemm_serial_)(m, n, k, a, rs_a, cs_a, b, rs_b, cs_b, b_src, 0, c, ldc,
                           store, bias, ws);
        return;
    }
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
    for (int t = 0; t < nt; ++t) {
        const int64_t j0 = panels * t / nt * G_NR;
        int64_t j1 = panels * (t + 1) / nt * G_NR;
        if (j1 > n) j1 = n;
        G_FN(gemm_serial_)(m, j1 - j0, k, a, rs_a, cs_a, b ? b + j0 * cs_b : b, rs_b, cs_b,
                           b_src, j0, c + j0, ldc, store, bias,
                           ws + t * per_thread);
    }
}

#undef G_FN
#undef G_LANES
#undef G_NR
