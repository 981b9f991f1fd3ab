"""Argument normalisation and validation for every public op: the one place.

Every error names the op, the argument and the offending value, so a user can
fix the call without reading our source.
"""
import math
import numbers
import operator
import os
import sys
from math import prod
from typing import NamedTuple

import numpy as np

from . import _copy

FLOAT_TYPES = (np.float32, np.float64)

# Default of a parser's grad_output parameter in a forward call: `None` cannot
# serve, since a backward call given grad_output=None must raise TypeError
# (it used to skip the check and die with an AttributeError).
NO_GRAD = object()

# Largest kernel_size/stride/padding/dilation/output_size value accepted.
# 2**40 is far past any real tensor, and keeps every sum and product of a few
# such values well inside the kernels' int64 index arithmetic (an unchecked
# stride=2**70 used to surface as an OverflowError from the Cython bridge).
MAX_SIZE = 2**40


def as_array(value, name, op):
    """`value` as an ndarray (array-likes via np.asarray), its dtype not yet
    checked: the ops check dtypes with the rest of the call's shape-only
    checks (check_float_dtype).  None and values NumPy cannot convert raise
    TypeError."""
    if isinstance(value, np.ndarray):
        return value
    if value is None:
        raise TypeError(f"{op}: {name} must be a float32 or float64 array, got None")
    try:
        return np.asarray(value)
    except (ValueError, TypeError) as exc:  # ragged lists, broken __array__
        raise TypeError(f"{op}: {name} must be a float32 or float64 array, and "
                        f"{type(value).__name__} {value!r:.80} is not convertible "
                        f"to one: {exc}") from None


_FLOAT32, _FLOAT64 = np.dtype(np.float32), np.dtype(np.float64)


def dtype_key(dtype):
    """`dtype` as a memo key (_callcache): "f" or "d" for the native float32
    and float64 dtypes, which NumPy hands out as these two objects (a short
    str hashes and compares in a few instructions, a dtype by its fields),
    else the dtype itself; key_dtype turns it back."""
    if dtype is _FLOAT32:
        return "f"
    if dtype is _FLOAT64:
        return "d"
    return dtype


def key_dtype(key):
    """The dtype a dtype_key stands for."""
    return np.dtype(key) if type(key) is str else key


def check_float_dtype(dtype, name, op):
    """Integer, bool, complex, object and string data raise TypeError:
    silently casting them would hide a bug in the caller's data pipeline."""
    if dtype.type not in FLOAT_TYPES:  # any byte order; contiguous() makes it native
        raise TypeError(f"{op}: {name} must have dtype float32 or float64, "
                        f"got dtype {dtype}")


def as_float_array(value, name, op):
    """`value` as an ndarray of float32/float64 (array-likes via np.asarray);
    other dtypes raise TypeError (check_float_dtype)."""
    arr = as_array(value, name, op)
    check_float_dtype(arr.dtype, name, op)
    return arr


class ArrayMeta(NamedTuple):
    """An array's shape and dtype, all the ops' memoised shape-only checks
    see of it (same_dtype and check_ndim take it as they take an array)."""
    shape: tuple
    dtype: np.dtype

    @property
    def ndim(self):
        return len(self.shape)


def meta(shape, dtype):
    """ArrayMeta(shape, dtype), or None for no array (shape None)."""
    return None if shape is None else ArrayMeta(shape, dtype)


def same_dtype(op, **arrays):
    """The common dtype of the named arrays (None entries skipped); mixing
    float32 and float64 raises TypeError naming both."""
    first_name, first = None, None
    for name, arr in arrays.items():
        if arr is None:
            continue
        if first is None:
            first_name, first = name, arr
        elif arr.dtype.type is not first.dtype.type:
            raise TypeError(f"{op}: {name} has dtype {arr.dtype} but {first_name} has "
                            f"dtype {first.dtype}; use one dtype for all arrays")
    return np.dtype(first.dtype.type)


def check_ndim(arr, ndim, name, op, layout):
    if arr.ndim != ndim:
        raise ValueError(f"{op}: {name} must be {ndim}-D {layout}, got shape {arr.shape}")


def as_int(value, name, op):
    """A Python int from an int-like (bools and floats are refused)."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{op}: {name} must be an int, got {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{op}: {name} must be an int or a tuple of ints, "
                        f"got {value!r}") from None


def as_real(value, name, op, low=None, high=None, low_inclusive=True, high_inclusive=True):
    """`value` as a finite Python float, checked against ``low <= value`` and
    ``value <= high`` (``<`` where `low_inclusive`/`high_inclusive` is False).

    Bools, strings and complex numbers raise TypeError (``float("0.1")`` would
    accept a string, and a bool usually means an argument landed in the wrong
    position); NaN, inf and out-of-range values raise ValueError.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{op}: {name} must be a real number, got {name}={value!r}")
    out = float(value)
    if not math.isfinite(out):
        raise ValueError(f"{op}: {name} must be finite, got {name}={value!r}")
    too_low = low is not None and (out < low if low_inclusive else out <= low)
    too_high = high is not None and (out > high if high_inclusive else out >= high)
    if too_low or too_high:
        if high is None:
            allowed = f"{'>=' if low_inclusive else '>'} {low}"
        elif low is None:
            allowed = f"{'<=' if high_inclusive else '<'} {high}"
        else:
            allowed = (f"in {'[' if low_inclusive else '('}{low}, "
                       f"{high}{']' if high_inclusive else ')'}")
        raise ValueError(f"{op}: {name} must be {allowed}, got {name}={value!r}")
    return out


def as_bool(value, name, op):
    """A Python bool from a bool or NumPy bool (ints and strings are refused:
    ``"False"`` is truthy)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{op}: {name} must be True or False, got {name}={value!r}")
    return bool(value)


def int_tuple(value, n, name, op, minimum):
    """`value` (an int or a tuple of n ints) as a tuple of n ints >= minimum."""
    if isinstance(value, (tuple, list)):
        if len(value) != n:
            raise ValueError(f"{op}: {name} must be an int or a tuple of {n} ints, "
                             f"got {value!r}")
        out = tuple(as_int(v, name, op) for v in value)
    else:
        out = (as_int(value, name, op),) * n
    if any(v < minimum for v in out):
        what = "positive" if minimum == 1 else "non-negative"
        raise ValueError(f"{op}: {name} must be {what}, got {name}={value!r}")
    if any(v > MAX_SIZE for v in out):
        raise ValueError(f"{op}: {name} must be at most 2**40 = {MAX_SIZE}, "
                         f"got {name}={value!r}")
    return out


def _memory_bytes():
    """Physical memory plus swap: no buffer larger than this can ever be used."""
    try:
        with open("/proc/meminfo") as f:
            info = dict(line.split(":", 1) for line in f)
        return (int(info["MemTotal"].split()[0]) + int(info["SwapTotal"].split()[0])) * 1024
    except (OSError, KeyError, ValueError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return sys.maxsize


_MEMORY_BYTES = _memory_bytes()


def _human(nbytes):
    value = float(nbytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if value < 1024 or unit == "EiB":
            return f"{value:.4g} {unit}"
        value /= 1024


def check_alloc(op, what, shape, dtype, blame):
    """MemoryError naming the arguments in `blame` when an array of `shape`
    could never be allocated on this machine (more bytes than memory + swap,
    or past the address space), instead of NumPy's messages that name no
    argument ("Maximum allowed dimension exceeded", "array is too big")."""
    nbytes = prod(shape) * np.dtype(dtype).itemsize
    if nbytes > min(_MEMORY_BYTES, sys.maxsize):
        raise MemoryError(f"{op}: the {what} of shape {tuple(shape)} would need "
                          f"{_human(nbytes)}, more than this machine's memory "
                          f"({_human(_MEMORY_BYTES)}); check {blame}")


def positive_int(value, name, op):
    out = as_int(value, name, op)
    if out < 1:
        raise ValueError(f"{op}: {name} must be a positive int, got {name}={value!r}")
    if out > MAX_SIZE:
        raise ValueError(f"{op}: {name} must be at most 2**40 = {MAX_SIZE}, "
                         f"got {name}={value!r}")
    return out


def contiguous(arr):
    """C-contiguous, aligned, native-byte-order view or copy of `arr`; the
    kernels read raw buffers, so every other layout is copied once here."""
    flags = arr.flags
    if flags.aligned and arr.dtype.isnative:
        if flags.c_contiguous:
            return arr  # already fine: np.require would decide the same, slower
        return _copy.fresh_copy(arr)   # large ones on the ops' threads
    return np.require(arr, requirements=("C", "A"), dtype=arr.dtype.newbyteorder("="))
