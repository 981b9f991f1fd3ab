"""Reusable scratch buffers for the ops' temporaries.

Freshly mapped memory is slow to touch on the first pass (page faults), so
scratch buffers live on across calls, with three limits:

* Bounded.  Each Python thread keeps at most KEEP_BYTES of them.  A call that
  needs more gets its buffer for that call only, freed when the call
  returns: its page faults are small next to the work of a call that size.
  Within a call, the plans chunk the batch and large column matrices
  (functional/_plan.py), so scratch grows with neither.
* Releasable.  release_workspace() drops every thread's kept buffers.
* Re-entrant.  A buffer is handed out again only when no array from its
  last hand-out is alive.  An op run by a signal handler, a gc callback or a
  __del__ while an op on the same thread holds scratch between two steps
  (deformable conv's columns before their GEMM) gets a buffer of its own,
  and the outer op's data stays untouched.

Buffers are per Python thread, so concurrent calls never share them, and
per slot, so one op can hold several at once.
"""
import sys
import threading
import weakref
from math import prod

import numpy as np

from . import _args, _kernels

ALIGNMENT = 64

# Scratch each thread keeps between calls: the plans' chunks
# (CHUNK_SCRATCH_BYTES, 32 MiB) and the GEMM's and Winograd's blocks of a
# typical layer fit; larger requests are not kept.
KEEP_BYTES = 64 << 20


class _Pool:
    """One thread's kept buffers: slot -> aligned uint8 array."""

    def __init__(self):
        self.buffers = {}

    def kept_bytes(self):
        return sum(buf.nbytes for buf in self.buffers.values())


_local = threading.local()
# Every live thread's pool (a pool goes when its thread's locals do), so
# release_workspace can reach them all.
_pools = weakref.WeakSet()
_pools_lock = threading.Lock()


def _pool():
    pool = getattr(_local, "pool", None)
    if pool is None:
        pool = _local.pool = _Pool()
        with _pools_lock:
            _pools.add(pool)
    return pool


def _in_use(buf):
    """Whether an array handed out from `buf` is still alive.  Every view
    of buf has buf's owner as its .base, so the owner's reference count
    above the two this check holds (buf's own .base and the call's
    argument) counts them."""
    return sys.getrefcount(buf.base) > 2


def scratch(slot, shape, dtype, op="fastconv", blame="the array sizes"):
    """An uninitialised C-contiguous array of `shape`, reused across calls
    while no earlier hand-out of `slot` is alive (else a fresh one).  When
    memory runs out: MemoryError naming `op`, the bytes and `blame` (the
    arguments that size this scratch), also for a size no machine this
    size could allocate (_args.check_alloc)."""
    dtype = np.dtype(dtype)
    nbytes = prod(shape) * dtype.itemsize
    pool = _pool()
    buf = pool.buffers.get(slot)
    if buf is not None and 0 <= nbytes <= buf.nbytes and not _in_use(buf):
        # The per-call path: a kept buffer fits (so the size was checked
        # when it was made).  A 1-D view needs no reshape.
        view = buf[:nbytes].view(dtype)
        return view if len(shape) == 1 else view.reshape(shape)
    _args.check_alloc(op, f"scratch ({slot})", shape, dtype, blame)
    if buf is not None and _in_use(buf):
        buf = _aligned_bytes(nbytes, op, f"scratch ({slot})", blame)   # nested call
    elif buf is None or buf.nbytes < nbytes:
        pool.buffers.pop(slot, None)   # before allocating: the old one may be freed
        buf = _aligned_bytes(max(nbytes, 64), op, f"scratch ({slot})", blame)
        if pool.kept_bytes() + buf.nbytes <= KEEP_BYTES:
            pool.buffers[slot] = buf
    return buf[:nbytes].view(dtype).reshape(shape)


def aligned_empty(shape, dtype, op="fastconv", what="result", blame="the array sizes"):
    """A fresh uninitialised C-contiguous array starting on a cache line:
    the kernels then write whole aligned vectors (streaming stores need
    that)."""
    dtype = np.dtype(dtype)
    nbytes = prod(shape) * dtype.itemsize
    return _kernels.aligned_view(_raw_bytes(nbytes, op, what, blame), shape, dtype, nbytes,
                                 ALIGNMENT)


def _raw_bytes(nbytes, op, what, blame, alignment=ALIGNMENT):
    """A fresh uint8 array of nbytes + alignment: room for nbytes from an
    `alignment`-byte boundary."""
    try:
        return np.empty(nbytes + alignment, np.uint8)
    except MemoryError:
        # NumPy's "Unable to allocate" names neither the op nor an argument.
        raise MemoryError(f"{op}: not enough memory for its {what} of {_args._human(nbytes)} "
                          f"({nbytes} bytes); it grows with {blame}. "
                          f"fastconv.release_workspace() frees kept scratch") from None


def scratch_bytes(slot, nbytes, op="fastconv", blame="the array sizes"):
    """scratch(slot, (nbytes,), np.uint8), for a kernel that lays out its
    own scratch: the kept buffer's hit path without a dtype view."""
    buf = getattr(_local, "pool", None) and _local.pool.buffers.get(slot)
    # As _in_use: buf's own .base reference and getrefcount's argument.
    if buf is not None and nbytes <= buf.nbytes and sys.getrefcount(buf.base) <= 2:
        return buf[:nbytes]
    return scratch(slot, (nbytes,), np.uint8, op, blame)


def _aligned_bytes(nbytes, op, what, blame, alignment=ALIGNMENT):
    """A uint8 array of nbytes starting on an `alignment`-byte boundary, so
    SIMD kernels see whole cache lines."""
    return _kernels.aligned_view(_raw_bytes(nbytes, op, what, blame, alignment), (nbytes,),
                                 np.uint8, nbytes, alignment)


def kept_bytes():
    """Bytes of scratch the calling thread keeps between calls."""
    return _pool().kept_bytes()


def release_workspace() -> int:
    """Free the scratch memory fastconv keeps between calls; returns the
    bytes released.

    The ops keep their temporary buffers (padded images, column blocks,
    Winograd transforms) for the next call, up to 64 MiB per Python thread
    (a call needing more frees its scratch when it returns), so repeated
    calls do not pay for fresh memory each time.  This drops the kept
    buffers of every thread, the analogue of torch.cuda.empty_cache():
    the memory goes back to the allocator (and, for large buffers, to the
    system), and the next call allocates again.  A buffer an op is using
    right now (in another thread, or in the op this call interrupts) is
    freed when that op returns.  Threads that end free theirs themselves.
    Safe to call at any time, from any thread.
    """
    with _pools_lock:
        pools = list(_pools)
    released = 0
    for pool in pools:
        buffers, pool.buffers = pool.buffers, {}
        released += sum(buf.nbytes for buf in buffers.values())
    return released
