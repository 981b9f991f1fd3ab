"""Threaded strided copies and zero fills for the ops' and layers' own
rearrangements (restacked operands, private copies).

NumPy's assignment `dst[...] = src` runs on one thread: on a large copy
inside an op run at several threads it is the one serial pass left.
copy_into and fill_zero run the C kernel fc_strided_copy instead, at the
ops' thread count (_threads), when the copy is large enough for threads to
pay off; smaller copies, other dtypes and the layouts the kernel does not
take (overlapping operands, more dims than it merges into its rank) stay
with NumPy, whose result is the same.

A module of its own: functional ops and nn layers both use it, and it is
about neither scratch lifetimes (_workspace) nor one op.
"""
import numpy as np

from . import _kernels, _threads

# The dtypes the kernel copies.
_KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

# The copies the kernel takes: at least this many elements (below it the
# kernel would run on one thread: FC_MIN_PARALLEL_WORK) at this many threads
# or more (on one thread NumPy's copy moves the same bytes and costs less to
# call).  Module constants so the tests can send every copy to the kernel.
KERNEL_MIN_ELEMENTS = _kernels.MIN_PARALLEL_WORK
KERNEL_MIN_THREADS = 2


def _merged(shape, itemsize, *strides):
    """(shape, strides per operand in elements) with the size-1 dims dropped
    and every dim that continues the next one in every operand (stride =
    next stride * next size) merged into it; None when a stride is not a
    whole number of elements."""
    dims = [(n, [s[k] for s in strides]) for k, n in enumerate(shape) if n != 1]
    if any(st % itemsize for _, sts in dims for st in sts):
        return None
    merged = []
    for n, sts in reversed(dims):
        if merged and all(st == merged[-1][0] * inner for st, inner in zip(sts, merged[-1][1])):
            merged[-1] = (n * merged[-1][0], merged[-1][1])
        else:
            merged.append((n, sts))
    merged.reverse()
    if not merged:                                   # one element
        merged = [(1, [0] * len(strides))]
    return ([n for n, _ in merged],) + tuple([sts[i] // itemsize for _, sts in merged]
                                             for i in range(len(strides)))


def _kernel_takes(dst, src, threads):
    """Whether fc_strided_copy should write `dst` (from `src`, or zeros for
    None) at `threads`: a large enough copy of a kernel dtype, aligned,
    native byte order, the operands not overlapping."""
    if (dst.size == 0 or dst.size < KERNEL_MIN_ELEMENTS or threads < KERNEL_MIN_THREADS
            or dst.dtype not in _KERNEL_DTYPES):
        return False
    if not (dst.flags.aligned and dst.flags.writeable and dst.dtype.isnative):
        return False
    if src is None:
        return True
    return (src.dtype == dst.dtype and src.flags.aligned
            and not np.may_share_memory(dst, src))


def _run(dst, src, threads):
    """The kernel's copy of src (None: zeros) into dst on `threads`, or False
    when the merged layout has more dims than the kernel takes."""
    arrays = (dst,) if src is None else (dst, src)
    merged = _merged(dst.shape, dst.itemsize, *(a.strides for a in arrays))
    if merged is None or len(merged[0]) > _kernels.COPY_MAX_RANK:
        return False
    shape, dst_strides = merged[:2]
    src_strides = merged[2] if src is not None else None
    _kernels.strided_copy(dst.dtype.char, dst, src, shape, dst_strides, src_strides, threads)
    return True


def copy_into(dst, src):
    """dst[...] = src (src broadcast to dst's shape, cast to its dtype), on
    the ops' threads when the copy is large.  dst: a writeable ndarray."""
    src = np.asarray(src)
    if src.shape != dst.shape:
        src = np.broadcast_to(src, dst.shape)   # ValueError: shapes that do not broadcast
    threads = _threads.get_num_threads()
    if not (_kernel_takes(dst, src, threads) and _run(dst, src, threads)):
        dst[...] = src


def fill_zero(dst):
    """dst[...] = 0, on the ops' threads when dst is large."""
    threads = _threads.get_num_threads()
    if not (_kernel_takes(dst, None, threads) and _run(dst, None, threads)):
        dst[...] = 0


def fresh_copy(x):
    """A C-contiguous copy of ndarray `x` that nobody else holds."""
    if x.size < KERNEL_MIN_ELEMENTS or x.dtype not in _KERNEL_DTYPES:
        return np.array(x, order="C", copy=True)   # small, or not the kernel's
    out = np.empty(x.shape, x.dtype)
    copy_into(out, x)
    return out
