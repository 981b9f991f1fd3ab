"""Argument and array checks shared by the layers (on top of fastconv._args).

Layers check only what they need to build their parameters (channel counts,
kernel sizes); the ops check the rest (stride, padding ...) when called.
"""
import numbers

import numpy as np

from .. import _args

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def float_dtype(dtype, owner):
    """np.dtype of float32/float64 (TypeError otherwise)."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{owner}: dtype must be float32 or float64, got dtype={dtype!r}") \
            from None
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"{owner}: dtype must be float32 or float64, got dtype={dt}")
    return dt


def size(value, name, owner, minimum=0):
    """A layer size argument (channels, features) as an int >= minimum."""
    out = _args.as_int(value, name, owner)
    if out < minimum:
        what = "positive" if minimum == 1 else "non-negative"
        raise ValueError(f"{owner}: {name} must be a {what} int, got {name}={value!r}")
    return out


def real(value, name, owner, low=-np.inf, high=np.inf, low_open=False, high_open=False):
    """A float argument inside [low, high] (ends open when asked); NaN refused."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {name} must be a real number, got {name}={value!r}")
    out = float(value)
    below = out <= low if low_open else out < low
    above = out >= high if high_open else out > high
    if out != out or below or above:
        lo, hi = "(" if low_open else "[", ")" if high_open else "]"
        raise ValueError(f"{owner}: {name} must be in {lo}{low}, {high}{hi}, "
                         f"got {name}={value!r}")
    return out


def flag(value, name, owner):
    """A bool argument (an int or a string passed by position is a mistake)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{owner}: {name} must be True or False, got {name}={value!r}")
    return bool(value)


def choice(value, name, owner, allowed):
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{owner}: {name} must be one of {', '.join(map(repr, allowed))}, "
                         f"got {name}={value!r}")
    return value


def rng(seed):
    """np.random.Generator from None, an int seed or a Generator."""
    return np.random.default_rng(seed)


def plain_array(value, name, owner):
    """`value` as a base-class ndarray: masked arrays are refused (their mask
    would be ignored), np.matrix and other subclasses are viewed as plain
    arrays (their operators differ: `*` is a matrix product for np.matrix)."""
    if isinstance(value, np.ma.MaskedArray):
        raise TypeError(f"{owner}: {name} is a masked array, whose mask would be ignored; "
                        f"pass np.ma.filled({name}, fill_value) or {name}.data instead")
    if isinstance(value, np.ndarray) and type(value) is not np.ndarray:
        return np.asarray(value)
    return value


def float_input(value, owner, name="input", dtype=None):
    """A plain float32/float64 ndarray; with `dtype`, exactly that dtype
    (TypeError rather than a silent cast)."""
    arr = _args.as_float_array(plain_array(value, name, owner), name, owner)
    if dtype is not None and arr.dtype.type is not dtype.type:
        raise TypeError(f"{owner}: {name} has dtype {arr.dtype} but the layer's parameters "
                        f"have dtype {dtype}; use one dtype (no silent casts)")
    return arr
