"""Interpolation in plain NumPy, textbook style: resize one spatial axis at a
time (every mode here is separable), each axis a gather of whole slices at
PyTorch's source positions; the backward pass scatters back with np.add.at.

Independent of fastconv's tables and kernel (its own argument handling and
index formulas, written from PyTorch's documented rules), so it can serve as
their oracle.
"""
import math

import numpy as np

_LINEAR = {"linear": 1, "bilinear": 2, "trilinear": 3}


def _sizes(in_size, size, scale_factor):
    """(output sizes, scales or None per axis): PyTorch's
    recompute_scale_factor=None rule, out = floor(in * scale)."""
    nd = len(in_size)
    if size is not None:
        return (tuple(size) if isinstance(size, (tuple, list)) else (size,) * nd), (None,) * nd
    scales = tuple(scale_factor) if isinstance(scale_factor, (tuple, list)) \
        else (scale_factor,) * nd
    return tuple(math.floor(n * float(s)) for n, s in zip(in_size, scales)), \
        tuple(float(s) for s in scales)


def _nearest_source(n_in, n_out, scale, exact, special_cases):
    """PyTorch's nearest / nearest-exact source index of every output position,
    computed in float32 as its forward kernels do (its 2-D nearest kernel has
    two special cases: out == in copies, out == 2 * in halves)."""
    f = np.float32(1.0 / scale) if scale else np.float32(n_in) / np.float32(n_out)
    src = []
    for dst in range(n_out):
        if exact:
            i = math.floor(np.float32((dst + 0.5) * float(f)))
        elif special_cases and n_out == n_in:
            i = dst
        elif special_cases and n_out == 2 * n_in:
            i = dst // 2
        else:
            i = math.floor(np.float32(dst) * f)
        src.append(min(i, n_in - 1))
    return np.array(src, dtype=np.int64)


def _linear_source(n_in, n_out, scale, align_corners, dtype):
    """(left index, right index, weight of the right one) of every output
    position: PyTorch's area_pixel_compute_source_index, clamped at 0, in the
    data's precision."""
    t = np.dtype(dtype).type
    if n_out == n_in:
        i = np.arange(n_out)
        return i, i, np.zeros(n_out, dtype)
    if align_corners:
        ratio = t(n_in - 1) / t(n_out - 1) if n_out > 1 else t(0)
        real = [ratio * t(d) for d in range(n_out)]
    else:
        ratio = t(1.0 / scale) if scale else t(n_in) / t(n_out)
        real = [max(ratio * (t(d) + t(0.5)) - t(0.5), t(0)) for d in range(n_out)]
    left = np.array([min(math.floor(np.float32(r)), n_in - 1) for r in real], np.int64)
    lam = np.array([min(max(r - i, 0), 1) for r, i in zip(real, left)], dtype)
    right = np.minimum(left + 1, n_in - 1)
    return left, right, lam


def _axis_plan(mode, n_in, n_out, scale, align_corners, dtype, nd):
    """[(source indices, weights)] of one axis: one term for the nearest
    modes, two for the linear ones."""
    if mode in _LINEAR:
        left, right, lam = _linear_source(n_in, n_out, scale, bool(align_corners), dtype)
        return [(left, (1 - lam).astype(dtype)), (right, lam)]
    src = _nearest_source(n_in, n_out, scale, mode == "nearest-exact",
                          special_cases=mode == "nearest" and nd == 2)
    return [(src, None)]


def _shape_for(axis, ndim):
    shape = [1] * ndim
    shape[axis] = -1
    return shape


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    """torch.nn.functional.interpolate on (N, C, L), (N, C, H, W), (N, C, D, H, W)."""
    x = np.asarray(input)
    out, scales = _sizes(x.shape[2:], size, scale_factor)
    for k in range(len(out)):
        axis = 2 + k
        plan = _axis_plan(mode, x.shape[axis], out[k], scales[k], align_corners, x.dtype,
                          len(out))
        resized = None
        for src, weight in plan:
            part = np.take(x, src, axis=axis)
            if weight is not None:
                part = part * weight.reshape(_shape_for(axis, x.ndim))
            resized = part if resized is None else resized + part
        x = resized
    return np.ascontiguousarray(x)


def interpolate_backward(grad_output, input_shape, size=None, scale_factor=None,
                         mode="nearest", align_corners=None):
    """Gradient of interpolate: the axes undone last to first, each output
    slice's gradient added back (np.add.at) at the slices it read."""
    g = np.asarray(grad_output)
    in_size = tuple(input_shape[2:])
    out, scales = _sizes(in_size, size, scale_factor)
    for k in reversed(range(len(out))):
        axis = 2 + k
        plan = _axis_plan(mode, in_size[k], out[k], scales[k], align_corners, g.dtype,
                          len(out))
        shape = list(g.shape)
        shape[axis] = in_size[k]
        back = np.zeros(shape, dtype=g.dtype)
        moved = np.moveaxis(back, axis, 0)
        for src, weight in plan:
            part = g if weight is None else g * weight.reshape(_shape_for(axis, g.ndim))
            np.add.at(moved, src, np.moveaxis(part, axis, 0))
        g = back
    return g
