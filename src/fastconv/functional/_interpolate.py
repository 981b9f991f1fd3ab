"""Interpolation (resizing) forward and backward, with PyTorch's semantics
(torch.nn.functional.interpolate without antialias).

PyTorch's index rules live here, once: each axis gets a small table of input
positions and weights (one tap for the nearest modes, two for the linear
ones), computed in the precision PyTorch computes them in (float32 for the
nearest modes and for float32 data), so indices match PyTorch's exactly.
The C kernel (csrc/interpolate_template.h) only applies the tables, and the
backward pass is the same tables' adjoint.
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np

from .. import _args, _callcache, _kernels, _threads
from .._types import AnySize, Array, ArrayLike, InterpMode, Scale, Shape
from ._pool import _flag, _input_shape, _sizes_geometry

# mode -> the spatial rank it needs (None: any of 1, 2, 3)
_MODES = {"nearest": None, "nearest-exact": None, "linear": 1, "bilinear": 2,
          "trilinear": 3}
_LAYOUTS = {3: "(N, C, L)", 4: "(N, C, H, W)", 5: "(N, C, D, H, W)"}


def _scale_factors(op, scale_factor, nd):
    """scale_factor as a tuple of nd positive finite floats."""
    values = scale_factor if isinstance(scale_factor, (tuple, list)) else (scale_factor,) * nd
    if len(values) != nd:
        raise ValueError(f"{op}: scale_factor must be a number or a tuple of {nd} numbers "
                         f"(one per spatial dim), got scale_factor={scale_factor!r}")
    out = []
    for v in values:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer,
                                                                  np.floating)):
            raise TypeError(f"{op}: scale_factor must be a number or a tuple of numbers, "
                            f"got scale_factor={scale_factor!r}")
        v = float(v)
        if not (math.isfinite(v) and v > 0):
            raise ValueError(f"{op}: scale_factor must be positive and finite, got "
                             f"scale_factor={scale_factor!r}")
        out.append(v)
    return tuple(out)


@_callcache.memoize
def _plan(op, shape, size, scale_factor, mode, align_corners):
    """(output spatial size, per-axis scales or None, mode, align_corners)
    for an input of `shape`, checked as torch.nn.functional.interpolate does."""
    nd = len(shape) - 2
    if not isinstance(mode, str) or mode not in _MODES:
        raise ValueError(f"{op}: mode must be one of {', '.join(map(repr, _MODES))}, "
                         f"got mode={mode!r}")
    rank = _MODES[mode]
    if rank is not None and rank != nd:
        raise ValueError(f"{op}: mode={mode!r} needs {rank + 2}-D input "
                         f"{_LAYOUTS[rank + 2]}, got {nd + 2}-D shape {tuple(shape)}")
    if align_corners is None:
        align_corners = False
    elif rank is None:
        raise ValueError(f"{op}: align_corners can only be set with the interpolating "
                         f"modes linear, bilinear and trilinear, got "
                         f"align_corners={align_corners!r} with mode={mode!r}")
    else:
        align_corners = _flag(align_corners, "align_corners", op)
    if (size is None) == (scale_factor is None):
        raise ValueError(f"{op}: exactly one of size and scale_factor must be given, got "
                         f"size={size!r} and scale_factor={scale_factor!r}")
    in_size = tuple(shape[2:])
    if any(n < 1 for n in in_size):
        raise ValueError(f"{op}: input spatial size must be positive, got shape "
                         f"{tuple(shape)}")
    if size is not None:
        out_size = _args.int_tuple(size, nd, "size", op, minimum=1)
        scales = (None,) * nd
    else:
        # recompute_scale_factor=None: the output size is floor(in * scale)
        # and the given scale, not out / in, drives the index math.
        scales = _scale_factors(op, scale_factor, nd)
        out_size = tuple(math.floor(n * s) for n, s in zip(in_size, scales))
        if any(o < 1 for o in out_size):
            raise ValueError(f"{op}: output size {out_size} is empty: input size "
                             f"{in_size} times scale_factor={scale_factor!r}")
        if any(o > _args.MAX_SIZE for o in out_size):
            raise ValueError(f"{op}: output size {out_size} from scale_factor="
                             f"{scale_factor!r} is past 2**40")
    # The per-axis tables are the one allocation an empty batch still makes.
    _args.check_alloc(op, "index tables", (2 * sum(out_size),), np.int64,
                      f"size={size!r} and scale_factor={scale_factor!r}")
    return out_size, scales, mode, align_corners


def _nearest_table(n_in, n_out, scale, exact, shortcuts):
    """Source index of every output position, as PyTorch's forward kernels
    compute it in float32: min(floor(dst * ratio), in - 1), or
    floor((dst + 0.5) * ratio) for nearest-exact, ratio = 1 / scale_factor or
    in / out.  PyTorch's 2-D 'nearest' kernel (`shortcuts`) first maps
    out == in to dst and out == 2 * in to dst // 2, which differs from the
    formula when a scale_factor such as 1.1 or 2.0000001 lands there; its 1-D
    and 3-D kernels do not.  (Its backward kernels always take the shortcuts,
    so in 1-D/3-D they are not the gradient of its forward there;
    fastconv's backward always is.)"""
    dst = np.arange(n_out)
    if shortcuts and n_out == n_in:
        return dst
    if shortcuts and n_out == 2 * n_in:
        return dst >> 1
    ratio = np.float32(1.0 / scale) if scale is not None else \
        np.float32(n_in) / np.float32(n_out)
    if exact:  # (dst + 0.5) is a double in PyTorch; floorf rounds it to float
        src = ((dst + 0.5) * np.float64(ratio)).astype(np.float32)
    else:
        src = dst.astype(np.float32) * ratio
    return np.minimum(np.floor(src).astype(np.int64), n_in - 1)


def _linear_table(n_in, n_out, scale, align_corners, dtype):
    """(index (n_out, 2), weight (n_out, 2)) of linear interpolation along one
    axis: PyTorch's area_pixel_compute_scale, area_pixel_compute_source_index
    and guard_index_and_lambda, in the data's precision."""
    dst = np.arange(n_out)
    if n_out == n_in:  # PyTorch copies: index i with weights (1, 0)
        return np.stack([dst, dst], 1), np.stack([np.ones(n_out, dtype),
                                                  np.zeros(n_out, dtype)], 1)
    t = dtype.type
    if align_corners:
        ratio = t(n_in - 1) / t(n_out - 1) if n_out > 1 else t(0)
        src = ratio * dst.astype(dtype)
    else:
        ratio = t(1.0 / scale) if scale is not None else t(n_in) / t(n_out)
        src = np.maximum(ratio * (dst.astype(dtype) + t(0.5)) - t(0.5), t(0))
    i0 = np.minimum(np.floor(src.astype(np.float32)).astype(np.int64), n_in - 1)
    lam1 = np.clip(src - i0.astype(dtype), t(0), t(1))
    i1 = i0 + (i0 < n_in - 1)
    return np.stack([i0, i1], 1), np.stack([t(1) - lam1, lam1], 1)


@_callcache.memoize
def _tables(in_size, out_size, scales, mode, align_corners, dtype):
    """The kernel's (index, weight, taps) for the 3-D lifted geometry, made
    once per distinct call and read-only (the kernels only read them)."""
    nd = len(in_size)
    index, weight, taps = [], [], []
    for axis in range(3):
        k = axis - (3 - nd)
        if k < 0:  # lifted axis: one tap at 0
            idx, w, t = np.zeros((1, 2), np.int64), np.array([[1, 0]], dtype), 1
        elif mode in ("nearest", "nearest-exact"):
            src = _nearest_table(in_size[k], out_size[k], scales[k], mode == "nearest-exact",
                                 shortcuts=mode == "nearest" and nd == 2)
            idx = np.stack([src, src], 1)
            w, t = np.tile(np.array([1, 0], dtype), (len(src), 1)), 1
        else:
            (idx, w), t = _linear_table(in_size[k], out_size[k], scales[k], align_corners,
                                        dtype), 2
        index.append(idx.reshape(-1))
        weight.append(w.reshape(-1))
        taps.append(t)
    index = np.ascontiguousarray(np.concatenate(index), np.int64)
    weight = np.ascontiguousarray(np.concatenate(weight), dtype)
    index.flags.writeable = weight.flags.writeable = False
    return index, weight, tuple(taps)


def _check_input(op, x, name):
    if x.ndim not in _LAYOUTS:
        raise ValueError(f"{op}: {name} must be 3-D (N, C, L), 4-D (N, C, H, W) or 5-D "
                         f"(N, C, D, H, W), got shape {x.shape}")


def interpolate(input: ArrayLike, size: Optional[AnySize] = None,
                scale_factor: Optional[Scale] = None, mode: InterpMode = "nearest",
                align_corners: Optional[bool] = None) -> Array:
    """Resize (N, C, L), (N, C, H, W) or (N, C, D, H, W) input, as
    torch.nn.functional.interpolate (recompute_scale_factor=None, no antialias).

    Each spatial axis is resampled on its own (every mode is separable): an
    output position reads one input position (nearest modes) or the two
    around its source coordinate, linearly weighted (linear modes).

    Args:
        input: (N, C, L), (N, C, H, W) or (N, C, D, H, W) array with every
            spatial size >= 1.
        size: the output's spatial size: an int for every axis or a tuple of
            one int >= 1 per spatial axis; None when scale_factor is given
            (exactly one of the two must be).
        scale_factor: a positive finite number for every axis or a tuple of
            one per spatial axis; the output size is floor(in * scale_factor)
            and the given factor, not out / in, drives the index math
            (PyTorch's recompute_scale_factor=None); None when size is given.
        mode: "nearest" (source floor(dst * in / out), PyTorch's legacy
            rule), "nearest-exact" (floor((dst + 0.5) * in / out)), or
            "linear", "bilinear", "trilinear" for 3-, 4- and 5-D input.
        align_corners: bool or None (= False), linear modes only: True maps
            the centres of the corner elements onto each other, False the
            outer edges of the pixel areas.

    Returns:
        The (N, C, *output size) resized array.

    Every array must be float32 or float64 (array-likes of floats are
    accepted); any memory layout works and the input is never modified.  The
    result is a fresh C-contiguous array of the input's dtype.  Batch size 0
    and channel count 0 are valid.

    Raises:
        TypeError: input None or not float32/float64; a size that is not an
            int or a tuple of ints; a scale_factor that is not a number or a
            tuple of numbers; an align_corners that is not a bool.
        ValueError: input not 3-, 4- or 5-D or with an empty spatial axis;
            both or neither of size and scale_factor; a tuple of the wrong
            length; a non-positive size, a non-positive or non-finite
            scale_factor, or an output size that is empty or past 2**40; an
            unknown mode or a linear mode of the wrong rank; align_corners
            with a nearest mode.
        MemoryError: an output larger than this machine's memory.
    """
    op = "interpolate"
    x = _args.as_float_array(input, "input", op)
    _check_input(op, x, "input")
    out_size, scales, mode, align_corners = _plan(op, x.shape, size, scale_factor, mode,
                                                   align_corners)
    n, c = x.shape[:2]
    _args.check_alloc(op, "output", (n, c) + out_size, x.dtype,
                      f"size={size!r} and scale_factor={scale_factor!r}")
    x = _args.contiguous(x)
    index, weight, taps = _tables(x.shape[2:], out_size, scales, mode, align_corners,
                                  x.dtype)
    out = np.empty((n, c) + out_size, dtype=x.dtype)
    geom = _sizes_geometry(n * c, x.shape[2:], out_size)
    _kernels.interpolate(x.reshape(-1), geom, index, weight, taps, out.reshape(-1),
                         _threads.get_num_threads())
    return out


def interpolate_backward(grad_output: ArrayLike, input_shape: Shape,
                         size: Optional[AnySize] = None, scale_factor: Optional[Scale] = None,
                         mode: InterpMode = "nearest",
                         align_corners: Optional[bool] = None) -> Array:
    """Gradient of interpolate with respect to its input: each output's
    gradient goes back to the input positions it read, times their weights
    (overlaps accumulate), the exact adjoint of the forward.

    Args:
        grad_output: (N, C, *output size) array, the gradient of the loss
            with respect to interpolate's output.
        input_shape: the forward input's shape, a tuple or list of 3, 4 or 5
            ints in [0, 2**40].
        size, scale_factor, mode, align_corners: those of the forward call
            (see interpolate).

    Returns:
        grad_input: a fresh C-contiguous array of input_shape and
        grad_output's dtype.

    Raises:
        TypeError: grad_output None or not float32/float64; input_shape
            entries that are not ints; size, scale_factor or align_corners
            of the wrong type (as interpolate).
        ValueError: input_shape not a tuple or list of 3, 4 or 5 ints in
            [0, 2**40]; grad_output not of the forward output's shape; every
            argument error of interpolate.
        MemoryError: a result larger than this machine's memory.
    """
    op = "interpolate_backward"
    g = _args.as_float_array(grad_output, "grad_output", op)
    if not isinstance(input_shape, (tuple, list)) or len(input_shape) not in _LAYOUTS:
        raise ValueError(f"{op}: input_shape must be a tuple of 3, 4 or 5 ints, got "
                         f"input_shape={input_shape!r}")
    shape = _input_shape(op, len(input_shape) - 2, input_shape)
    out_size, scales, mode, align_corners = _plan(op, shape, size, scale_factor, mode,
                                                   align_corners)
    if g.shape != shape[:2] + out_size:
        raise ValueError(f"{op}: grad_output must have shape {shape[:2] + out_size}, "
                         f"got {g.shape}")
    _args.check_alloc(op, "grad_input", shape, g.dtype, f"input_shape={input_shape!r}")
    g = _args.contiguous(g)
    index, weight, taps = _tables(shape[2:], out_size, scales, mode, align_corners, g.dtype)
    grad_input = np.empty(shape, dtype=g.dtype)
    geom = _sizes_geometry(shape[0] * shape[1], shape[2:], out_size)
    _kernels.interpolate_backward(g.reshape(-1), geom, index, weight, taps,
                                  grad_input.reshape(-1), _threads.get_num_threads())
    return grad_input

