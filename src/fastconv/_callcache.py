"""Memoised shape-only work: the per-call fast path of every op.

Half of what an op does before its kernel runs depends on the call's shapes,
dtype, size arguments and thread count only, never on the data: validating
the sizes, the output shape, the plan, the kernel geometry.  On a small input
that half costs more than the kernel, so the functions doing it are wrapped in
`memoize`, which keeps their results by their arguments, as oneDNN's
primitive cache keeps a primitive by its descriptor.  The array checks that
look at the data's type (float dtype, ndim) still run on every call.

A call is served from the cache only when an earlier call with the same
arguments of the same types succeeded: the key holds each argument's type
next to its value, so `True` never hits the entry of `1`, nor
`np.int64(1)` that of `1`, and any error is raised afresh by the function
itself (errors are never cached).  Arguments of other types (lists, arrays,
user objects) are never cached, so they always take the full checks.
"""
import threading

import numpy as np

from . import _kernels

# Entries per memoised function.  A training loop or an inference server
# cycles through a few dozen distinct shapes; a program that keeps changing
# shapes evicts the oldest entries, so memory stays bounded.
MAX_ENTRIES = 512

# Argument types whose equal values are interchangeable for a memoised
# function (tuples qualify when every element is an int or None).  Frozen dataclasses
# of such values (the windows) register themselves with `plain_type`.
# Floats are left out: 0.0 == -0.0, and no memoised function needs one.
_PLAIN = {int, bool, str, type(None), type(np.dtype(np.float32)), type(np.dtype(np.float64))}

_caches = []
_changing = threading.Lock()


def plain_type(cls):
    """Class decorator: instances of the frozen dataclass `cls` (built from
    plain values only) may be memoisation keys."""
    _PLAIN.add(cls)
    return cls


def memoize(fn):
    """`fn` (a pure function of its positional arguments) with its results
    kept by argument values and types; see the module docstring.  The hit
    path (the key and the lookup) is _kernels.Memo, in C; a miss runs here."""
    cache = {}

    def miss(args, key):
        result = fn(*args)
        if key is None:     # an argument that is not plain: never kept
            return result
        # Ops run from several threads at once: every change to a cache
        # happens under the lock (a lookup needs none), so two threads never
        # evict the same entry nor iterate a dict another one changes.
        with _changing:
            while len(cache) >= MAX_ENTRIES:
                del cache[next(iter(cache))]      # the oldest (insertion order)
            cache[key] = result
        return result

    memoized = _kernels.Memo(fn, cache, _PLAIN, miss)
    _caches.append(cache)
    return memoized


def clear():
    """Forget every memoised result (after changing a plan threshold by hand,
    as tests do)."""
    with _changing:
        for cache in _caches:
            cache.clear()
