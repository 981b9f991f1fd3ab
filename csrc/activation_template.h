/* Activations (elementwise, with PReLU's per-channel slope), softmax and
 * log-softmax, cross-entropy on logits, forward and backward, and the sum
 * of two arrays with ReLU fused on request, for one scalar type and
 * instruction set.  Included by isa_template.h once per dtype.
 *
 * Elementwise kernels run one tight loop per kind over a contiguous range;
 * the selects (ReLU, leaky ReLU and the backward of ReLU, sigmoid, tanh) are
 * vectorised by the compiler for the table's target (TARGET).  exp, expm1,
 * erfc and tanh come from libm one element at a time: its float32 and
 * float64 functions are correctly rounded to within an ulp or so, the
 * accuracy PyTorch's own kernels are compared at (a polynomial of our own
 * would need its own error analysis for a few percent of a training step).
 *
 * Layout of the row ops (softmax, cross-entropy): (outer, classes, inner)
 * contiguous, classes `inner` apart; (N, C) has inner = 1 and (N, C, d1, ...)
 * inner = d1 * ...  Positions are handled in tiles of up to FC_ROW_TILE
 * neighbours along inner, so the class loops run over unit-stride vectors
 * of positions when inner > 1.  Threads own disjoint tiles (or ranges). */

#ifndef FC_ACTIVATION_SHARED
#define FC_ACTIVATION_SHARED
/* The loops below select between computed values (clamps, kinks): they are
 * FC_NOTRAP (common.h), or they would not vectorise. */
/* Positions per tile of the row ops: running maxima and sums for a tile
 * live on the stack (the kernels never allocate). */
#define FC_ROW_TILE 64

/* A libm call costs about as much as this many selects or adds.  Work is
 * counted in select units against FC_MIN_PARALLEL_WORK (common.h), so a
 * transcendental activation goes parallel on 16x fewer elements than ReLU,
 * where waking the workers is worth it sooner. */
#define FC_TRANSCENDENTAL_COST 16

/* What backward reads for `kind` (fc_activation's `save`): the output for
 * ReLU, sigmoid and tanh (so in-place layers need no copy of the input),
 * the input for the others. */
static inline int fc_activation_saves_output(int kind)
{
    return kind == FC_ACT_RELU || kind == FC_ACT_SIGMOID || kind == FC_ACT_TANH;
}

static inline int fc_activation_is_cheap(int kind)
{
    return kind == FC_ACT_RELU || kind == FC_ACT_LEAKY_RELU;
}

/* Threads for an elementwise kernel of `kind` on n elements. */
static inline int fc_activation_threads(int kind, int64_t n, int nthreads, int backward)
{
    /* backward of relu, leaky relu, sigmoid and tanh are selects and products */
    const int cheap = fc_activation_is_cheap(kind) ||
                      (backward && (kind == FC_ACT_SIGMOID || kind == FC_ACT_TANH));
#ifdef _OPENMP
    return fc_threads_for(nthreads, cheap ? n : fc_mul_sat(n, FC_TRANSCENDENTAL_COST));
#else
    (void)cheap, (void)n, (void)nthreads;
    return 1;     /* the callers' parallel branches need OpenMP */
#endif
}

/* Tiles of (outer, classes, inner), and the threads for a pass over them
 * (`cost` per element: 1, or FC_TRANSCENDENTAL_COST with an exp). */
static inline int64_t fc_row_tile_count(int64_t outer, int64_t inner)
{
    return outer * ((inner + FC_ROW_TILE - 1) / FC_ROW_TILE);
}

static inline int fc_row_threads(int nthreads, int64_t outer, int64_t classes, int64_t inner,
                                 int64_t cost)
{
    return fc_threads_for(nthreads, fc_mul_sat(fc_mul_sat(outer * classes, inner), cost));
}

/* Range [lo, hi) of n elements for thread t of nt: contiguous chunks whose
 * starts are multiples of 16 elements (whole cache lines for float32), so
 * no two threads write one line. */
static inline void fc_chunk_range(int64_t n, int t, int nt, int64_t *lo, int64_t *hi)
{
    const int64_t blocks = (n + 15) / 16;
    const int64_t b0 = blocks * t / nt, b1 = blocks * (t + 1) / nt;
    *lo = b0 * 16 < n ? b0 * 16 : n;
    *hi = b1 * 16 < n ? b1 * 16 : n;
}
/* Tile t of (outer, classes, inner): its first position's offset and length. */
static inline int64_t fc_row_tile(int64_t t, int64_t classes, int64_t inner, int64_t *len)
{
    const int64_t tiles_per_outer = (inner + FC_ROW_TILE - 1) / FC_ROW_TILE;
    const int64_t o = t / tiles_per_outer, j0 = (t % tiles_per_outer) * FC_ROW_TILE;
    *len = inner - j0 < FC_ROW_TILE ? inner - j0 : FC_ROW_TILE;
    return o * classes * inner + j0;
}
#endif

/* libm's function `fn` for this dtype: fn##f for float, fn for double. */
#define ACT_MATH(fn, v) ((SCALAR)(sizeof(SCALAR) == sizeof(float) ? fn##f((float)(v)) \
                                                                   : fn((double)(v))))

/* 1 / sqrt(2), 1 / sqrt(2 pi), sqrt(2 / pi) and the tanh-GELU cubic term:
 * PyTorch's constants. */
#define ACT_SQRT1_2 0.70710678118654752440
#define ACT_INV_SQRT_2PI 0.39894228040143267794
#define ACT_SQRT_2_OVER_PI 0.79788456080286535588
#define ACT_GELU_KAPPA 0.044715

/* exp(v) in straight-line code the compiler vectorises (libm's exp is one
 * call per element): v = n ln2 + r with |r| <= ln2 / 2 (Cody and Waite's
 * two-part ln2, so n ln2 is exact), exp(r) by its Taylor polynomial (degree 7
 * for float, 13 for double: truncation below 1e-8 and 1e-17, the rest
 * rounding), times 2^n built in the exponent bits in two halves (so results
 * down to the subnormals need no special case).  Overflow gives inf,
 * underflow 0, NaN stays NaN. */
typedef __typeof__(__builtin_choose_expr(sizeof(SCALAR) == 4, (int32_t)0, (int64_t)0))
    FC_FN(act_int_);
static inline __attribute__((always_inline)) FC_NOTRAP SCALAR FC_FN(pow2_)(FC_FN(act_int_) n)
{
    const int mant = sizeof(SCALAR) == 4 ? 23 : 52, bias = sizeof(SCALAR) == 4 ? 127 : 1023;
    const FC_FN(act_int_) bits = (n + bias) << mant;
    SCALAR r;
    memcpy(&r, &bits, sizeof r);
    return r;
}

static inline __attribute__((always_inline)) FC_NOTRAP SCALAR FC_FN(vexp_)(SCALAR v)
{
    const int f32 = sizeof(SCALAR) == 4;
    /* beyond these exp is inf or 0 (the clamp keeps 2^n's halves normal) */
    const SCALAR hi = f32 ? (SCALAR)89 : (SCALAR)710, lo = f32 ? (SCALAR)-104 : (SCALAR)-746;
    /* One unconditional select per line: a comparison under a condition may
     * raise FP exceptions the compiler may not speculate, which would keep
     * the whole loop scalar. */
    SCALAR x = v != v ? 0 : v;
    x = x > hi ? hi : x;
    x = x < lo ? lo : x;
    /* round(x / ln2) by adding 1.5 * 2^mantissa: no libm call, no branch */
    const SCALAR shifter = f32 ? (SCALAR)12582912.0 : (SCALAR)6755399441055744.0;
    const SCALAR n = (x * (SCALAR)1.44269504088896340736 + shifter) - shifter;
    const SCALAR ln2_hi = f32 ? (SCALAR)0.693145751953125 : (SCALAR)6.93147180369123816490e-01;
    const SCALAR ln2_lo = f32 ? (SCALAR)1.428606765330187045e-06
                              : (SCALAR)1.90821492927058770002e-10;
    const SCALAR r = (x - n * ln2_hi) - n * ln2_lo;
    SCALAR p;
    if (f32) {
        p = (SCALAR)(1.0 / 5040);
        p = p * r + (SCALAR)(1.0 / 720);
        p = p * r + (SCALAR)(1.0 / 120);
        p = p * r + (SCALAR)(1.0 / 24);
        p = p * r + (SCALAR)(1.0 / 6);
        p = p * r + (SCALAR)0.5;
        p = p * r + 1;
        p = p * r + 1;
    } else {
        p = (SCALAR)(1.0 / 6227020800.0);
        p = p * r + (SCALAR)(1.0 / 479001600.0);
        p = p * r + (SCALAR)(1.0 / 39916800.0);
        p = p * r + (SCALAR)(1.0 / 3628800.0);
        p = p * r + (SCALAR)(1.0 / 362880.0);
        p = p * r + (SCALAR)(1.0 / 40320.0);
        p = p * r + (SCALAR)(1.0 / 5040.0);
        p = p * r + (SCALAR)(1.0 / 720.0);
        p = p * r + (SCALAR)(1.0 / 120.0);
        p = p * r + (SCALAR)(1.0 / 24.0);
        p = p * r + (SCALAR)(1.0 / 6.0);
        p = p * r + (SCALAR)0.5;
        p = p * r + 1;
        p = p * r + 1;
    }
    const FC_FN(act_int_) ni = (FC_FN(act_int_))n, half = ni / 2;
    SCALAR e = p * FC_FN(pow2_)(half) * FC_FN(pow2_)(ni - half);
    e = x == hi ? (SCALAR)INFINITY : e;
    return v != v ? v : e;
}

/* Forward of one element v of `kind` (alpha: leaky ReLU's slope, ELU's alpha). */
static inline __attribute__((always_inline)) FC_NOTRAP SCALAR
FC_FN(act_value_)(int kind, SCALAR v, SCALAR alpha)
{
    const SCALAR one = 1, half = (SCALAR)0.5;
    switch (kind) {
    case FC_ACT_RELU: return v < 0 ? 0 : v;                 /* NaN stays NaN */
    case FC_ACT_LEAKY_RELU: return v > 0 ? v : v * alpha;
    case FC_ACT_ELU: return v > 0 ? v : alpha * ACT_MATH(expm1, v);
    /* Phi(v) = erfc(-v / sqrt 2) / 2: no cancellation in 1 + erf(v / sqrt 2)
     * for negative v, where float32 would keep only a few digits */
    case FC_ACT_GELU: return half * v * ACT_MATH(erfc, -v * (SCALAR)ACT_SQRT1_2);
    case FC_ACT_GELU_TANH: {
        const SCALAR inner = (SCALAR)ACT_SQRT_2_OVER_PI * (v + (SCALAR)ACT_GELU_KAPPA * v * v * v);
        return half * v * (one + ACT_MATH(tanh, inner));
    }
    case FC_ACT_SILU: return v / (one + FC_FN(vexp_)(-v));
    case FC_ACT_SIGMOID: return one / (one + FC_FN(vexp_)(-v));
    default: return ACT_MATH(tanh, v);                      /* FC_ACT_TANH */
    }
}

/* Gradient of one element: g times the derivative, from s, the saved value
 * of fc_activation_saves_output(kind) (the output or the input). */
static inline __attribute__((always_inline)) FC_NOTRAP SCALAR
FC_FN(act_grad_)(int kind, SCALAR g, SCALAR s, SCALAR alpha)
{
    const SCALAR one = 1, half = (SCALAR)0.5;
    switch (kind) {
    case FC_ACT_RELU: return s <= 0 ? 0 : g;                /* s: output; 0 at the kink */
    case FC_ACT_LEAKY_RELU: return s > 0 ? g : g * alpha;   /* s: input */
    case FC_ACT_ELU: return s <= 0 ? g * alpha * FC_FN(vexp_)(s) : g;   /* s: input */
    case FC_ACT_GELU: {
        const SCALAR cdf = half * ACT_MATH(erfc, -s * (SCALAR)ACT_SQRT1_2);
        const SCALAR pdf = (SCALAR)ACT_INV_SQRT_2PI * FC_FN(vexp_)(-half * s * s);
        return g * (cdf + s * pdf);
    }
    case FC_ACT_GELU_TANH: {
        const SCALAR k = (SCALAR)ACT_SQRT_2_OVER_PI, kappa = (SCALAR)ACT_GELU_KAPPA;
        const SCALAR t = ACT_MATH(tanh, k * (s + kappa * s * s * s));
        const SCALAR dinner = k * (one + 3 * kappa * s * s);
        return g * (half * (one + t) + half * s * (one - t * t) * dinner);
    }
    case FC_ACT_SILU: {
        const SCALAR sig = one / (one + FC_FN(vexp_)(-s));
        return g * sig * (one + s * (one - sig));
    }
    case FC_ACT_SIGMOID: return g * (one - s) * s;          /* s: output */
    default: return g * (one - s * s);                      /* FC_ACT_TANH, s: output */
    }
}

/* One tight loop per kind (the switch hoisted out of the loop, so each loop
 * is the compiler's to vectorise): y[i] = f(x[i]), and save[i] = the value
 * backward needs when save is not NULL.  y may be x (in place). */
#define ACT_FORWARD_CASE(KIND)                                                         \
    case KIND:                                                                         \
        if (!save)                                                                     \
            for (int64_t i = lo; i < hi; ++i) y[i] = FC_FN(act_value_)(KIND, x[i], a); \
        else if (save_output)                                                          \
            for (int64_t i = lo; i < hi; ++i) {                                        \
                const SCALAR r = FC_FN(act_value_)(KIND, x[i], a);                     \
                y[i] = r;                                                              \
                save[i] = r;                                                           \
            }                                                                          \
        else                                                                           \
            for (int64_t i = lo; i < hi; ++i) {                                        \
                const SCALAR v = x[i];                                                 \
                save[i] = v;                                                           \
                y[i] = FC_FN(act_value_)(KIND, v, a);                                  \
            }                                                                          \
        break;

static TARGET FC_NOTRAP void FC_FN(act_forward_range_)(int kind, const SCALAR *x, SCALAR *y,
                                             SCALAR *restrict save, int save_output,
                                             int64_t lo, int64_t hi, SCALAR a)
{
    switch (kind) {
    ACT_FORWARD_CASE(FC_ACT_RELU)
    ACT_FORWARD_CASE(FC_ACT_LEAKY_RELU)
    ACT_FORWARD_CASE(FC_ACT_ELU)
    ACT_FORWARD_CASE(FC_ACT_GELU)
    ACT_FORWARD_CASE(FC_ACT_GELU_TANH)
    ACT_FORWARD_CASE(FC_ACT_SILU)
    ACT_FORWARD_CASE(FC_ACT_SIGMOID)
    ACT_FORWARD_CASE(FC_ACT_TANH)
    default: break;
    }
}
#undef ACT_FORWARD_CASE

#define ACT_BACKWARD_CASE(KIND)                                                        \
    case KIND:                                                                         \
        for (int64_t i = lo; i < hi; ++i) gx[i] = FC_FN(act_grad_)(KIND, gy[i], s[i], a); \
        break;

static TARGET FC_NOTRAP void FC_FN(act_backward_range_)(int kind, const SCALAR *gy, const SCALAR *s,
                                              SCALAR *gx, int64_t lo, int64_t hi, SCALAR a)
{
    switch (kind) {
    ACT_BACKWARD_CASE(FC_ACT_RELU)
    ACT_BACKWARD_CASE(FC_ACT_LEAKY_RELU)
    ACT_BACKWARD_CASE(FC_ACT_ELU)
    ACT_BACKWARD_CASE(FC_ACT_GELU)
    ACT_BACKWARD_CASE(FC_ACT_GELU_TANH)
    ACT_BACKWARD_CASE(FC_ACT_SILU)
    ACT_BACKWARD_CASE(FC_ACT_SIGMOID)
    ACT_BACKWARD_CASE(FC_ACT_TANH)
    default: break;
    }
}
#undef ACT_BACKWARD_CASE

/* fc_activation. */
static TARGET FC_NOTRAP void FC_FN(activation_)(int kind, const void *x_, int64_t n, double alpha, void *y_,
                               void *save_, int nthreads)
{
    const SCALAR *x = x_;
    SCALAR *y = y_, *save = save_;
    const int save_output = fc_activation_saves_output(kind);
    const int nt = fc_activation_threads(kind, n, nthreads, 0);
    if (nt == 1) {
        FC_FN(act_forward_range_)(kind, x, y, save, save_output, 0, n, (SCALAR)alpha);
        return;
    }
#ifdef _OPENMP
#pragma omp parallel num_threads(nt)
    {
        int64_t lo, hi;
        fc_chunk_range(n, omp_get_thread_num(), omp_get_num_threads(), &lo, &hi);
        FC_FN(act_forward_range_)(kind, x, y, save, save_output, lo, hi, (SCALAR)alpha);
    }
#endif
}

/* fc_activation_backward. */
static TARGET FC_NOTRAP void FC_FN(activation_backward_)(int kind, const void *gy_, const void *saved_,
                                        int64_t n, double alpha, void *gx_, int nthreads)
{
    const SCALAR *gy = gy_, *saved = saved_;
    SCALAR *gx = gx_;
    const int nt = fc_activation_threads(kind, n, nthreads, 1);
    if (nt == 1) {
        FC_FN(act_backward_range_)(kind, gy, saved, gx, 0, n, (SCALAR)alpha);
        return;
    }
#ifdef _OPENMP
#pragma omp parallel num_threads(nt)
    {
        int64_t lo, hi;
        fc_chunk_range(n, omp_get_thread_num(), omp_get_num_threads(), &lo, &hi);
        FC_FN(act_backward_range_)(kind, gy, saved, gx, lo, hi, (SCALAR)alpha);
    }
#endif
}

/* ------------------------------------------------------------------------ */
/* Sums of two arrays (a residual block's add), ReLU fused on request       */
/* ------------------------------------------------------------------------ */

/* y = a + b over [lo, hi), then ReLU'd with relu (ReLU's own select, so the
 * fused sum equals the sum then fc_activation's ReLU to the bit).  y may be
 * a or b: each element is read before it is written. */
static inline TARGET FC_NOTRAP void FC_FN(add_range_)(const SCALAR *a, const SCALAR *b,
                                                     SCALAR *y, int relu, int64_t lo,
                                                     int64_t hi)
{
    if (relu)
        for (int64_t i = lo; i < hi; ++i)
            y[i] = FC_FN(act_value_)(FC_ACT_RELU, a[i] + b[i], 0);
    else
        for (int64_t i = lo; i < hi; ++i) y[i] = a[i] + b[i];
}

/* fc_add: one pass where NumPy's `a + b` then a ReLU take two, on the
 * activation kernels' threads (a sum is as cheap per element as ReLU). */
static TARGET FC_NOTRAP void FC_FN(add_)(const void *a_, const void *b_, int64_t n, int relu,
                                         void *y_, int nthreads)
{
    const SCALAR *a = a_, *b = b_;
    SCALAR *y = y_;
    const int nt = fc_activation_threads(FC_ACT_RELU, n, nthreads, 0);
    if (nt == 1) {
        FC_FN(add_range_)(a, b, y, relu, 0, n);
        return;
    }
#ifdef _OPENMP
#pragma omp parallel num_threads(nt)
    {
        int64_t lo, hi;
        fc_chunk_range(n, omp_get_thread_num(), omp_get_num_threads(), &lo, &hi);
        FC_FN(add_range_)(a, b, y, relu, lo, hi);
    }
#endif
}

/* ------------------------------------------------------------------------ */
/* PReLU: x (outer, channels, inner), one slope per channel                 */
/* ------------------------------------------------------------------------ */

static TARGET void FC_FN(prelu_row_)(const SCALAR *x, SCALAR a, SCALAR *y, int64_t inner)
{
    for (int64_t i = 0; i < inner; ++i) y[i] = x[i] > 0 ? x[i] : a * x[i];
}

/* fc_prelu: threads own (outer, channel) rows. */
static void FC_FN(prelu_)(const void *x_, const void *w_, int64_t outer, int64_t channels,
                          int64_t inner, void *y_, int nthreads)
{
    const SCALAR *x = x_, *w = w_;
    SCALAR *y = y_;
    const int64_t rows = outer * channels;
    const int nt = fc_threads_for(nthreads, fc_mul_sat(rows, inner));
    (void)nt;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
    for (int64_t r = 0; r < rows; ++r)
        FC_FN(prelu_row_)(x + r * inner, w[r % channels], y + r * inner, inner);
}

/* One (outer, channel) row of PReLU's backward: gx, and the row's share of
 * the slope's gradient (sum of g * x where x <= 0), summed in double. */
static TARGET double FC_FN(prelu_backward_row_)(const SCALAR *gy, const SCALAR *x, SCALAR a,
                                                SCALAR *gx, int64_t inner)
{
    double gw = 0;
    for (int64_t i = 0; i < inner; ++i) {
        const int positive = x[i] > 0;
        gx[i] = positive ? gy[i] : a * gy[i];
        gw += positive ? 0 : (double)gy[i] * x[i];
    }
    return gw;
}

/* fc_prelu_backward: threads own channels (each sums its own slope's
 * gradient over the outer rows: no reduction across threads), or, with one
 * channel, contiguous runs of rows whose sums are added in a fixed order. */
static void FC_FN(prelu_backward_)(const void *gy_, const void *x_, const void *w_,
                                   int64_t outer, int64_t channels, int64_t inner, void *gx_,
                                   void *gw_, int nthreads)
{
    const SCALAR *gy = gy_, *x = x_, *w = w_;
    SCALAR *gx = gx_, *gw = gw_;
#ifdef _OPENMP
    const int nt = fc_threads_for(nthreads, fc_mul_sat(outer * channels, inner));
#else
    const int nt = 1;     /* the one-slope branch below needs OpenMP */
    (void)nthreads;
#endif
    if (channels > 1 || nt == 1) {
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(channels > 1 ? nt : 1)
#endif
        for (int64_t c = 0; c < channels; ++c) {
            double sum = 0;
            for (int64_t o = 0; o < outer; ++o) {
                const int64_t off = (o * channels + c) * inner;
                sum += FC_FN(prelu_backward_row_)(gy + off, x + off, w[c], gx + off, inner);
            }
            gw[c] = (SCALAR)sum;
        }
        return;
    }
#ifdef _OPENMP
    /* One slope: the whole array is one run of outer * inner elements, cut
     * into a contiguous range per thread whose sums add in thread order. */
    const int64_t n = outer * inner;
    double partial[64] = {0};
#pragma omp parallel num_threads(nt < 64 ? nt : 64)
    {
        int64_t lo, hi;
        const int t = omp_get_thread_num();
        fc_chunk_range(n, t, omp_get_num_threads(), &lo, &hi);
        partial[t] = FC_FN(prelu_backward_row_)(gy + lo, x + lo, w[0], gx + lo, hi - lo);
    }
    double sum = 0;
    for (int t = 0; t < 64; ++t) sum += partial[t];
    gw[0] = (SCALAR)sum;
#endif
}

/* ------------------------------------------------------------------------ */
/* Softmax and log-softmax over the classes axis                            */
/* ------------------------------------------------------------------------ */

/* BODY for every class c and position j of a tile (i = c * inner + j):
 * with inner == 1 (tiles of one position, the (N, C) case) one loop over
 * the contiguous classes, which the compiler vectorises. */
#define ROW_FOR_EACH(BODY)                                                              \
    if (inner == 1) {                                                                   \
        const int64_t j = 0;                                                            \
        for (int64_t c = 0; c < classes; ++c) { const int64_t i = c; BODY }             \
    } else {                                                                            \
        for (int64_t c = 0; c < classes; ++c)                                           \
            for (int64_t j = 0; j < len; ++j) { const int64_t i = c * inner + j; BODY } \
    }

/* Sum of f(i) for i < n in 8 independent partial sums, so the adds (which
 * the compiler may not reorder itself) vectorise. */
#define SUM8(n, result, EXPR)                                                           \
    do {                                                                                \
        SCALAR acc_[8] = {0};                                                           \
        int64_t i = 0;                                                                  \
        for (; i + 8 <= (n); i += 8)                                                    \
            for (int k_ = 0; k_ < 8; ++k_) { const int64_t i_ = i + k_; acc_[k_] += EXPR(i_); } \
        SCALAR tail_ = 0;                                                               \
        for (; i < (n); ++i) tail_ += EXPR(i);                                          \
        (result) = ((acc_[0] + acc_[1]) + (acc_[2] + acc_[3]))                          \
                   + ((acc_[4] + acc_[5]) + (acc_[6] + acc_[7])) + tail_;               \
    } while (0)

/* Max over classes m[j] of the tile of `len` positions starting at x
 * (classes `inner` apart).  A NaN may be skipped here: it reaches every
 * result through exp(NaN - max) in the sum. */
static inline TARGET FC_NOTRAP void FC_FN(row_max_)(const SCALAR *x, int64_t classes,
                                                        int64_t inner, int64_t len, SCALAR *m)
{
    for (int64_t j = 0; j < len; ++j) m[j] = -(SCALAR)INFINITY;
    if (inner == 1) {
        /* 8 running maxima, vectorised as SUM8's sums are */
        SCALAR mx[8];
        for (int k = 0; k < 8; ++k) mx[k] = -(SCALAR)INFINITY;
        int64_t c = 0;
        for (; c + 8 <= classes; c += 8)
            for (int k = 0; k < 8; ++k) mx[k] = x[c + k] > mx[k] ? x[c + k] : mx[k];
        for (; c < classes; ++c) mx[0] = x[c] > mx[0] ? x[c] : mx[0];
        for (int k = 1; k < 8; ++k) mx[0] = mx[k] > mx[0] ? mx[k] : mx[0];
        m[0] = mx[0];
        return;
    }
    for (int64_t c = 0; c < classes; ++c) {
        const SCALAR *xc = x + c * inner;
        for (int64_t j = 0; j < len; ++j) m[j] = (xc[j] > m[j] || xc[j] != xc[j]) ? xc[j] : m[j];
    }
}

/* Sums over classes s[j] of v[c * inner + j] for the tile. */
static inline TARGET FC_NOTRAP void FC_FN(row_sum_)(const SCALAR *v, int64_t classes,
                                                        int64_t inner, int64_t len, SCALAR *s)
{
    if (inner == 1) {
#define VALUE(c) v[c]
        SUM8(classes, s[0], VALUE);
#undef VALUE
        return;
    }
    for (int64_t j = 0; j < len; ++j) s[j] = 0;
    for (int64_t c = 0; c < classes; ++c)
        for (int64_t j = 0; j < len; ++j) s[j] += v[c * inner + j];
}

/* Max m[j] and the sum of exp(x - max) s[j] of the tile (all -inf gives
 * NaN, as PyTorch). */
static inline TARGET FC_NOTRAP void FC_FN(row_max_sum_)(const SCALAR *x, int64_t classes,
                                                            int64_t inner, int64_t len,
                                                            SCALAR *m, SCALAR *s)
{
    FC_FN(row_max_)(x, classes, inner, len, m);
    if (inner == 1) {
#define EXP_SHIFTED(c) FC_FN(vexp_)(x[c] - m[0])
        SUM8(classes, s[0], EXP_SHIFTED);
#undef EXP_SHIFTED
        return;
    }
    for (int64_t j = 0; j < len; ++j) s[j] = 0;
    for (int64_t c = 0; c < classes; ++c) {
        const SCALAR *xc = x + c * inner;
        for (int64_t j = 0; j < len; ++j) s[j] += FC_FN(vexp_)(xc[j] - m[j]);
    }
}

/* fc_softmax: y = softmax or log_softmax of x along the classes. */
static TARGET FC_NOTRAP void FC_FN(softmax_)(const void *x_, int64_t outer, int64_t classes, int64_t inner,
                            int log_softmax, void *y_, int nthreads)
{
    const SCALAR *x = x_;
    SCALAR *y = y_;
    const int64_t tiles = fc_row_tile_count(outer, inner);
    const int nt = fc_row_threads(nthreads, outer, classes, inner, FC_TRANSCENDENTAL_COST);
    (void)nt;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
    for (int64_t t = 0; t < tiles; ++t) {
        int64_t len;
        const int64_t off = fc_row_tile(t, classes, inner, &len);
        SCALAR m[FC_ROW_TILE], s[FC_ROW_TILE];
        const SCALAR *xt = x + off;
        SCALAR *yt = y + off;
        /* PyTorch's forms: (x - max) - log(sum) and exp(x - max) / sum */
        if (log_softmax) {
            FC_FN(row_max_sum_)(xt, classes, inner, len, m, s);
            for (int64_t j = 0; j < len; ++j) s[j] = ACT_MATH(log, s[j]);
            ROW_FOR_EACH(yt[i] = (xt[i] - m[j]) - s[j];)
        } else {   /* one exp per element: y holds exp(x - max) until scaled */
            FC_FN(row_max_)(xt, classes, inner, len, m);
            ROW_FOR_EACH(yt[i] = FC_FN(vexp_)(xt[i] - m[j]);)
            FC_FN(row_sum_)(yt, classes, inner, len, s);
            for (int64_t j = 0; j < len; ++j) s[j] = 1 / s[j];
            ROW_FOR_EACH(yt[i] *= s[j];)
        }
    }
}

/* fc_softmax_backward from the forward's output y:
 * softmax: gx = y * (g - sum(g * y)); log_softmax: gx = g - exp(y) * sum(g). */
static TARGET FC_NOTRAP void FC_FN(softmax_backward_)(const void *gy_, const void *y_, int64_t outer,
                                     int64_t classes, int64_t inner, int log_softmax, void *gx_,
                                     int nthreads)
{
    const SCALAR *gy = gy_, *y = y_;
    SCALAR *gx = gx_;
    const int64_t tiles = fc_row_tile_count(outer, inner);
    const int nt = fc_row_threads(nthreads, outer, classes, inner,
                                  log_softmax ? FC_TRANSCENDENTAL_COST : 1);
    (void)nt;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
    for (int64_t t = 0; t < tiles; ++t) {
        int64_t len;
        const int64_t off = fc_row_tile(t, classes, inner, &len);
        const SCALAR *gt = gy + off, *yt = y + off;
        SCALAR *gxt = gx + off;
        SCALAR dot[FC_ROW_TILE];
        for (int64_t j = 0; j < len; ++j) dot[j] = 0;
        if (inner == 1) {
#define GRAD(c) gt[c]
#define GRAD_Y(c) gt[c] * yt[c]
            if (log_softmax)
                SUM8(classes, dot[0], GRAD);
            else
                SUM8(classes, dot[0], GRAD_Y);
#undef GRAD
#undef GRAD_Y
        } else {
            for (int64_t c = 0; c < classes; ++c)
                for (int64_t j = 0; j < len; ++j)
                    dot[j] += log_softmax ? gt[c * inner + j] : gt[c * inner + j] * yt[c * inner + j];
        }
        if (log_softmax) {
            ROW_FOR_EACH(gxt[i] = gt[i] - FC_FN(vexp_)(yt[i]) * dot[j];)
        } else {
            ROW_FOR_EACH(gxt[i] = yt[i] * (gt[i] - dot[j]);)
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Cross-entropy on logits with integer targets                             */
/* ------------------------------------------------------------------------ */
/* Per position with label t (not ignore_index), weights w (1 when NULL) and
 * smoothing eps, the loss is -sum_c A_c * log_softmax_c with coefficients
 * A_c = (1 - eps) * w_t * [c == t] + eps / C * w_c (PyTorch's definition),
 * and its gradient sum(A) * softmax - A.  Ignored positions: loss 0,
 * gradient 0, no weight. */

/* Sum of the class weights (C when there are none). */
static double FC_FN(ce_weight_total_)(const SCALAR *w, int64_t classes)
{
    double total = 0;
    for (int64_t c = 0; c < classes; ++c) total += w ? (double)w[c] : 1.0;
    return total;
}

/* fc_cross_entropy: losses (outer * inner) overwritten; returns the sum of
 * w[target] over the counted positions (the divisor of reduction='mean'). */
static TARGET FC_NOTRAP double FC_FN(cross_entropy_)(const void *x_, const int64_t *target, const void *w_,
                                    int64_t outer, int64_t classes, int64_t inner,
                                    int64_t ignore_index, double label_smoothing,
                                    void *losses_, int nthreads)
{
    const SCALAR *x = x_, *w = w_;
    SCALAR *losses = losses_;
    const int64_t tiles = fc_row_tile_count(outer, inner);
    const SCALAR eps = (SCALAR)label_smoothing;
    const SCALAR smooth = classes ? eps / (SCALAR)classes : 0;
    double weight_sum = 0;
    const int nt = fc_row_threads(nthreads, outer, classes, inner, FC_TRANSCENDENTAL_COST);
    (void)nt;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt) reduction(+:weight_sum)
#endif
    for (int64_t t = 0; t < tiles; ++t) {
        int64_t len;
        const int64_t off = fc_row_tile(t, classes, inner, &len);
        const int64_t o = off / (classes * inner), j0 = off - o * classes * inner;
        const int64_t *tgt = target + o * inner + j0;
        SCALAR *loss = losses + o * inner + j0;
        SCALAR m[FC_ROW_TILE], lse[FC_ROW_TILE];
        FC_FN(row_max_sum_)(x + off, classes, inner, len, m, lse);
        for (int64_t j = 0; j < len; ++j) lse[j] = m[j] + ACT_MATH(log, lse[j]);
        for (int64_t j = 0; j < len; ++j) {
            if (tgt[j] == ignore_index) { loss[j] = 0; continue; }
            const SCALAR wt = w ? w[tgt[j]] : 1;
            loss[j] = (1 - eps) * wt * (lse[j] - x[off + tgt[j] * inner + j]);
            weight_sum += wt;
        }
        if (eps != 0) {
            for (int64_t c = 0; c < classes; ++c) {
                const SCALAR *xc = x + off + c * inner;
                const SCALAR wc = w ? w[c] : 1;
                for (int64_t j = 0; j < len; ++j)
                    if (tgt[j] != ignore_index) loss[j] += smooth * wc * (lse[j] - xc[j]);
            }
        }
    }
    return weight_sum;
}

/* fc_cross_entropy_backward: gx (outer, classes, inner) overwritten with
 * grad[p] * (sum(A) * softmax - A) at each position p (grad read with
 * stride grad_stride: 0 broadcasts one value, as reduction='mean'/'sum'). */
static TARGET FC_NOTRAP void FC_FN(cross_entropy_backward_)(const void *grad_, int64_t grad_stride,
                                           const void *x_, const int64_t *target,
                                           const void *w_, int64_t outer, int64_t classes,
                                           int64_t inner, int64_t ignore_index,
                                           double label_smoothing, void *gx_, int nthreads)
{
    const SCALAR *grad = grad_, *x = x_, *w = w_;
    SCALAR *gx = gx_;
    const int64_t tiles = fc_row_tile_count(outer, inner);
    const SCALAR eps = (SCALAR)label_smoothing;
    const SCALAR smooth = classes ? eps / (SCALAR)classes : 0;
    const SCALAR weight_total = (SCALAR)FC_FN(ce_weight_total_)(w, classes);
    const int nt = fc_row_threads(nthreads, outer, classes, inner, FC_TRANSCENDENTAL_COST);
    (void)nt;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
    for (int64_t t = 0; t < tiles; ++t) {
        int64_t len;
        const int64_t off = fc_row_tile(t, classes, inner, &len);
        const int64_t o = off / (classes * inner), j0 = off - o * classes * inner;
        const int64_t *tgt = target + o * inner + j0;
        const int64_t p0 = o * inner + j0;
        SCALAR m[FC_ROW_TILE], s[FC_ROW_TILE], total[FC_ROW_TILE], scale[FC_ROW_TILE];
        FC_FN(row_max_sum_)(x + off, classes, inner, len, m, s);
        for (int64_t j = 0; j < len; ++j) {
            const int ignored = tgt[j] == ignore_index;
            const SCALAR wt = ignored ? 0 : w ? w[tgt[j]] : 1;
            /* grad * sum(A) / sum(exp) multiplies exp(x - max); ignored: 0 */
            scale[j] = ignored ? 0 : grad[(p0 + j) * grad_stride];
            total[j] = ignored ? 0 : scale[j] * ((1 - eps) * wt + smooth * weight_total) / s[j];
        }
        const SCALAR *xt = x + off;
        SCALAR *gt = gx + off;
        /* ignored positions have total = scale = 0, but exp may be inf or NaN */
        if (w) {
            ROW_FOR_EACH(gt[i] = tgt[j] == ignore_index ? 0
                         : total[j] * FC_FN(vexp_)(xt[i] - m[j]) - scale[j] * smooth * w[c];)
        } else {
            ROW_FOR_EACH(gt[i] = tgt[j] == ignore_index ? 0
                         : total[j] * FC_FN(vexp_)(xt[i] - m[j]) - scale[j] * smooth;)
        }
        for (int64_t j = 0; j < len; ++j) {
            if (tgt[j] == ignore_index) continue;
            const SCALAR wt = w ? w[tgt[j]] : 1;
            gx[off + tgt[j] * inner + j] -= scale[j] * (1 - eps) * wt;
        }
    }
}

#undef ACT_MATH
#undef ROW_FOR_EACH
#undef SUM8
