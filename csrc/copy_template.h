/* Strided copies and zero fills (fc_strided_copy), for one scalar type and
 * instruction set: the rearranging copies of the ops and layers (operands
 * restacked for a composed Winograd conv, a layer's private copy of its
 * input), which NumPy's assignment runs on one thread.
 *
 * The index space is `rank` dims; strides are in elements and may be
 * negative, and zero for the source (a broadcast).  Rows are every index of
 * the dims but the last; each row is cut into pieces of at most
 * FC_COPY_PIECE elements, so one long row (a rank-1 copy) splits among
 * threads too.  Threads own contiguous runs of pieces: each writes its own
 * part of dst, in dst's order, so no two threads write one element. */

#ifndef FC_COPY_SHARED
#define FC_COPY_SHARED
/* Elements of one piece: long enough that the per-piece bookkeeping is lost
 * in the copy, short enough that a 1-D copy past FC_MIN_PARALLEL_WORK has
 * pieces for every thread. */
#define FC_COPY_PIECE ((int64_t)1 << 14)

/* Where a thread is in the rows: the multi-index of its row over dims
 * 0 .. rank-2 and that row's first element in dst and src. */
typedef struct {
    int64_t index[FC_COPY_MAX_RANK];
    int64_t dst, src;
} fc_copy_cursor;

/* The cursor at row `row` (row-major over dims 0 .. rank-2). */
static inline void fc_copy_seek(fc_copy_cursor *c, int rank, const int64_t *shape,
                                const int64_t *dst_strides, const int64_t *src_strides,
                                int64_t row)
{
    c->dst = c->src = 0;
    for (int k = rank - 2; k >= 0; --k) {
        c->index[k] = row % shape[k];
        row /= shape[k];
        c->dst += c->index[k] * dst_strides[k];
        c->src += c->index[k] * src_strides[k];
    }
}

/* The cursor one row on (an odometer: offsets updated, never recomputed).
 * Past the last row it wraps to row 0, harmlessly: no pointer is formed. */
static inline void fc_copy_next_row(fc_copy_cursor *c, int rank, const int64_t *shape,
                                    const int64_t *dst_strides, const int64_t *src_strides)
{
    for (int k = rank - 2; k >= 0; --k) {
        c->dst += dst_strides[k];
        c->src += src_strides[k];
        if (++c->index[k] < shape[k]) return;
        c->index[k] = 0;
        c->dst -= shape[k] * dst_strides[k];
        c->src -= shape[k] * src_strides[k];
    }
}
#endif

/* n elements from s (stride ss) into d (stride ds); s NULL writes zeros
 * (all bits clear: +0.0 in both dtypes).  Unit strides are memcpy/memset;
 * a unit-stride destination is a plain loop the compiler vectorises. */
static TARGET void FC_FN(copy_piece_)(SCALAR *d, int64_t ds, const SCALAR *s, int64_t ss,
                                      int64_t n)
{
    if (s == NULL) {
        if (ds == 1) {
            memset(d, 0, (size_t)n * sizeof(SCALAR));
        } else {
            for (int64_t j = 0; j < n; ++j) d[j * ds] = 0;
        }
    } else if (ds == 1 && ss == 1) {
        memcpy(d, s, (size_t)n * sizeof(SCALAR));
    } else if (ds == 1) {
        for (int64_t j = 0; j < n; ++j) d[j] = s[j * ss];
    } else {
        for (int64_t j = 0; j < n; ++j) d[j * ds] = s[j * ss];
    }
}

/* Pieces [lo, hi) of the copy (`pieces` per row). */
static TARGET void FC_FN(copy_pieces_)(int rank, const int64_t *shape, SCALAR *dst,
                                       const int64_t *dst_strides, const SCALAR *src,
                                       const int64_t *src_strides, int64_t pieces,
                                       int64_t lo, int64_t hi, fc_stop *stop)
{
    const int64_t inner = shape[rank - 1];
    const int64_t ds = dst_strides[rank - 1], ss = src ? src_strides[rank - 1] : 0;
    const int64_t poll_every = fc_stop_period(inner < FC_COPY_PIECE ? inner : FC_COPY_PIECE);
    fc_copy_cursor c;
    int64_t piece = lo % pieces;
    fc_copy_seek(&c, rank, shape, dst_strides, src_strides, lo / pieces);
    for (int64_t i = lo; i < hi; ++i) {
        if (fc_stopping_at(stop, i - lo, poll_every)) return;
        const int64_t j0 = piece * FC_COPY_PIECE;
        const int64_t n = inner - j0 < FC_COPY_PIECE ? inner - j0 : FC_COPY_PIECE;
        FC_FN(copy_piece_)(dst + c.dst + j0 * ds, ds, src ? src + c.src + j0 * ss : NULL, ss, n);
        if (++piece == pieces) {
            piece = 0;
            fc_copy_next_row(&c, rank, shape, dst_strides, src_strides);
        }
    }
}

/* fc_strided_copy. */
static TARGET void FC_FN(strided_copy_)(int rank, const int64_t *shape, void *dst_,
                                        const int64_t *dst_strides, const void *src_,
                                        const int64_t *src_strides, int nthreads)
{
    SCALAR *dst = dst_;
    const SCALAR *src = src_;
    if (rank < 1 || rank > FC_COPY_MAX_RANK) return;
    int64_t rows = 1;
    for (int k = 0; k < rank - 1; ++k) rows *= shape[k];
    const int64_t inner = shape[rank - 1];
    if (rows == 0 || inner == 0) return;
    const int64_t pieces = (inner + FC_COPY_PIECE - 1) / FC_COPY_PIECE;
    const int64_t items = rows * pieces;
#ifdef _OPENMP
    const int nt = fc_threads_for(nthreads, rows * inner);
#else
    const int nt = 1;   /* the parallel branch below needs OpenMP */
    (void)nthreads;
#endif
    fc_stop *stop = fc_stop_flag();
    if (nt == 1) {
        FC_FN(copy_pieces_)(rank, shape, dst, dst_strides, src, src_strides, pieces, 0, items,
                            stop);
        return;
    }
#ifdef _OPENMP
#pragma omp parallel num_threads(nt)
    {
        const int64_t t = omp_get_thread_num(), T = omp_get_num_threads();
        FC_FN(copy_pieces_)(rank, shape, dst, dst_strides, src, src_strides, pieces,
                            items * t / T, items * (t + 1) / T, stop);
    }
#endif
}
