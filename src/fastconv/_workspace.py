"""Reusable scratch buffers for the ops' temporaries.

Freshly mapped memory is slow to touch on the first pass (page faults), so the
column buffers live on across calls.  Buffers are per Python thread, so
concurrent calls never share scratch space, and per slot, so one op can hold
several at once.  Their size is bounded by the plans' chunking
(functional/_plan.py), never by the batch size.
"""
import threading
from math import prod

import numpy as np

from . import _kernels

ALIGNMENT = 64

_local = threading.local()


def scratch(slot, shape, dtype):
    """An uninitialised C-contiguous array of `shape`, reused across calls."""
    dtype = np.dtype(dtype)
    nbytes = prod(shape) * dtype.itemsize
    buffers = getattr(_local, "buffers", None)
    if buffers is None:
        buffers = _local.buffers = {}
    buf = buffers.get(slot)
    if buf is None or buf.nbytes < nbytes:
        buf = buffers[slot] = _aligned_bytes(max(nbytes, 64))
    return buf[:nbytes].view(dtype).reshape(shape)


def aligned_empty(shape, dtype):
    """A fresh uninitialised C-contiguous array starting on a cache line:
    the kernels then write whole aligned vectors (streaming stores need
    that)."""
    dtype = np.dtype(dtype)
    nbytes = prod(shape) * dtype.itemsize
    return _aligned_bytes(nbytes).view(dtype).reshape(shape)


def _aligned_bytes(nbytes, alignment=ALIGNMENT):
    """A uint8 array of nbytes starting on an `alignment`-byte boundary, so
    SIMD kernels see whole cache lines."""
    raw = np.empty(nbytes + alignment, dtype=np.uint8)
    start = _kernels.misalignment(raw, alignment)
    return raw[start:start + nbytes]
