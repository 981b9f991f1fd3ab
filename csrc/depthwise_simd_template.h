/* Depthwise convolution inner loops for one (scalar type, instruction set),
 * on one plane already staged in a thread's scratch by depthwise_template.h.
 * Included by depthwise.c once per combination with SCALAR, SFX (as
 * instantiate.h defines them), ISA, TARGET and VBYTES (as for gemm_template.h).
 *
 * Staging pads the plane with zeros on every side, so tap t of every output
 * row reads the run starting `off[t]` past the row's base: no bounds checks,
 * and each loop is unaligned vector loads and multiply-adds.  Rows end with
 * one vector overlapping the one before rather than a scalar tail (typical
 * depthwise rows are short: 56 wide, 3.5 AVX-512 vectors of floats). */

#define DS_FN(name) FC_CAT(FC_CAT(FC_CAT(name, ISA), _), SFX)
#define DS_LANES ((int64_t)(VBYTES / sizeof(SCALAR)))

typedef SCALAR DS_FN(dw_vec_) __attribute__((vector_size(VBYTES)));
/* Same vector, alignment of one scalar: rows start anywhere. */
typedef SCALAR DS_FN(dw_uvec_) __attribute__((vector_size(VBYTES), aligned(sizeof(SCALAR))));
/* Integer lanes as wide as SCALAR: a mask ANDed in one instruction. */
typedef FC_CAT(FC_DW_LANE_INT_, SFX) DS_FN(dw_mask_) __attribute__((vector_size(VBYTES)));

#define DS_LOAD(p) (*(const DS_FN(dw_uvec_) *)(p))
#define DS_STORE(p, v) (*(DS_FN(dw_uvec_) *)(p) = (v))

/* out[i] = sum_t wt[t] * src[off[t] + i], i in [0, n): all taps of one output
 * row at once, so each output vector is stored once while the few input rows
 * it reads stay in L1.  Four vectors at a time (independent sums hide the
 * multiply-add latency); the last ones start at n - L instead of running
 * past the row, recomputing shared elements to the same values. */
static inline TARGET void DS_FN(dw_row_)(SCALAR *restrict out, int64_t n, const SCALAR *src,
                                         const int64_t *restrict off, int64_t ntaps,
                                         const SCALAR *restrict wt)
{
    typedef DS_FN(dw_vec_) vec;
    const int64_t L = DS_LANES, last = n - L;
    if (n < L) {  /* rows narrower than a vector */
        for (int64_t i = 0; i < n; ++i) {
            SCALAR s = 0;
            for (int64_t t = 0; t < ntaps; ++t) s += wt[t] * src[off[t] + i];
            out[i] = s;
        }
        return;
    }
    for (int64_t i = 0; i < n; i += 4 * L) {
#define DS_CLAMP(j) ((j) < last ? (j) : last)
        const int64_t i0 = DS_CLAMP(i), i1 = DS_CLAMP(i + L), i2 = DS_CLAMP(i + 2 * L);
        const int64_t i3 = DS_CLAMP(i + 3 * L);
#undef DS_CLAMP
        vec a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
        for (int64_t t = 0; t < ntaps; ++t) {
            const SCALAR *s = src + off[t];
            const SCALAR w = wt[t];
            a0 += w * DS_LOAD(s + i0);
            a1 += w * DS_LOAD(s + i1);
            a2 += w * DS_LOAD(s + i2);
            a3 += w * DS_LOAD(s + i3);
        }
        DS_STORE(out + i0, a0);
        DS_STORE(out + i1, a1);
        DS_STORE(out + i2, a2);
        DS_STORE(out + i3, a3);
    }
}

/* A plane of rows (rows_d x rows_h, each n long, contiguous in out), row
 * (a, b) computed by dw_row_ from src + a * step_d + b * step_h: the forward
 * pass on a staged input, the input gradient on staged output gradients. */
static TARGET void DS_FN(dw_rows_)(const SCALAR *src, const fc_dw_rows *r, const int64_t *off,
                                   int64_t ntaps, const SCALAR *w, SCALAR *out)
{
    for (int64_t a = 0; a < r->rows[0]; ++a)
        for (int64_t b = 0; b < r->rows[1]; ++b, out += r->n)
            DS_FN(dw_row_)(out, r->n, src + a * r->step[0] + b * r->step[1], off, ntaps, w);
}

/* s0..s3 += a[i] * b[i] lane-wise, i in [0, n), n >= L: whole vectors
 * round-robin, then one vector ending at n, `keep` zeroing its lanes already
 * summed.  Four sums the caller carries across rows: independent chains. */
static inline TARGET void DS_FN(dw_dot_)(const SCALAR *restrict a, const SCALAR *restrict b,
                                         int64_t n, DS_FN(dw_mask_) keep, DS_FN(dw_vec_) *s0,
                                         DS_FN(dw_vec_) *s1, DS_FN(dw_vec_) *s2,
                                         DS_FN(dw_vec_) *s3)
{
    typedef DS_FN(dw_vec_) vec;
    typedef DS_FN(dw_mask_) mask;
    const int64_t L = DS_LANES;
    int64_t i = 0;
    for (; i + 4 * L <= n; i += 4 * L) {
        *s0 += DS_LOAD(a + i) * DS_LOAD(b + i);
        *s1 += DS_LOAD(a + i + L) * DS_LOAD(b + i + L);
        *s2 += DS_LOAD(a + i + 2 * L) * DS_LOAD(b + i + 2 * L);
        *s3 += DS_LOAD(a + i + 3 * L) * DS_LOAD(b + i + 3 * L);
    }
    if (i + L <= n) { *s0 += DS_LOAD(a + i) * DS_LOAD(b + i); i += L; }
    if (i + L <= n) { *s1 += DS_LOAD(a + i) * DS_LOAD(b + i); i += L; }
    if (i + L <= n) { *s2 += DS_LOAD(a + i) * DS_LOAD(b + i); i += L; }
    if (i < n) *s3 += (vec)((mask)DS_LOAD(a + n - L) & keep) * DS_LOAD(b + n - L);
}

/* gw[t] += sum over the output plane gy (rows as r describes) of gy times
 * the staged input under tap t.  One tap at a time over the whole plane:
 * both planes stay in L1 and the four sums in registers. */
static TARGET void DS_FN(dw_weight_plane_)(const SCALAR *xs, const fc_dw_rows *r,
                                           const int64_t *off, int64_t ntaps, const SCALAR *gy,
                                           double *gw)
{
    typedef DS_FN(dw_vec_) vec;
    typedef DS_FN(dw_mask_) mask;
    const int64_t L = DS_LANES, n = r->n;
    /* Lanes of the overlapping last vector not yet summed: the top n % L. */
    mask keep;
    for (int64_t l = 0; l < L; ++l) keep[l] = l >= L - n % L ? -1 : 0;
    for (int64_t t = 0; t < ntaps; ++t) {
        /* Two rows at a time into separate sums: eight independent chains. */
        vec s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0}, u0 = {0}, u1 = {0}, u2 = {0}, u3 = {0};
        double sum = 0;
        const SCALAR *gr = gy;
        for (int64_t a = 0; a < r->rows[0]; ++a) {
            const SCALAR *xr = xs + a * r->step[0] + off[t];
            int64_t b = 0;
            if (n >= L)
                for (; b + 2 <= r->rows[1]; b += 2, gr += 2 * n, xr += 2 * r->step[1]) {
                    DS_FN(dw_dot_)(gr, xr, n, keep, &s0, &s1, &s2, &s3);
                    DS_FN(dw_dot_)(gr + n, xr + r->step[1], n, keep, &u0, &u1, &u2, &u3);
                }
            for (; b < r->rows[1]; ++b, gr += n, xr += r->step[1]) {
                if (n >= L)
                    DS_FN(dw_dot_)(gr, xr, n, keep, &s0, &s1, &s2, &s3);
                else  /* rows narrower than a vector */
                    for (int64_t i = 0; i < n; ++i) sum += gr[i] * xr[i];
            }
        }
        const vec s = ((s0 + u0) + (s1 + u1)) + ((s2 + u2) + (s3 + u3));
        for (int64_t l = 0; l < L; ++l) sum += s[l];
        gw[t] += sum;
    }
}

#undef DS_FN
#undef DS_LANES
#undef DS_LOAD
#undef DS_STORE
