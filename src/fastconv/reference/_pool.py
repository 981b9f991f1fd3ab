"""Pooling in plain NumPy, textbook style: pad the input, then visit the kernel
offsets in row-major order, each one a strided slice holding that tap of every
window at once.

Deliberately independent of fastconv's compiled code and of its shape and
argument helpers (own output-size formula, own divisor rule), so that it can
serve as the oracle for both. The 1-D, 2-D and 3-D ops are one N-d function;
PyTorch's calling conventions (unbatched inputs, short tuples, stride=()) come
from fastconv._conventions, which rewrites arguments and computes nothing.
"""
from itertools import product
from math import prod

import numpy as np

from .._conventions import POOL, POOL_BACKWARD, nd_ops


def _tuple(v, nd):
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * nd


def _out_len(n, k, s, p, d, ceil_mode):
    """Pooling output length; ceil_mode drops a window starting in the right padding."""
    span = n + 2 * p - d * (k - 1) - 1
    if not ceil_mode:
        return span // s + 1
    out = -(-span // s) + 1
    return out - 1 if (out - 1) * s >= n + p else out


def _geometry(x_shape, kernel_size, stride, padding, dilation, ceil_mode):
    nd = len(x_shape) - 2
    kernel = _tuple(kernel_size, nd)
    stride = kernel if stride is None else _tuple(stride, nd)
    padding, dilation = _tuple(padding, nd), _tuple(dilation, nd)
    out = tuple(_out_len(n, k, s, p, d, ceil_mode) for n, k, s, p, d
                in zip(x_shape[2:], kernel, stride, padding, dilation))
    # Pad left by `padding`, right as far as the last window reaches (the
    # ceil-mode overhang may reach past the right padding).
    reach = [(o - 1) * s + d * (k - 1) + 1 for o, k, s, d in zip(out, kernel, stride, dilation)]
    pads = [(p, max(0, r - n - p)) for p, r, n in zip(padding, reach, x_shape[2:])]
    return kernel, stride, padding, dilation, out, pads


def _taps(xp, kernel, stride, dilation, out):
    """(offset, slice of xp holding that tap of every window), row-major."""
    lead = (slice(None),) * (xp.ndim - len(kernel))
    for offset in product(*(range(k) for k in kernel)):
        yield offset, lead + tuple(slice(t * d, t * d + s * (o - 1) + 1, s) for t, s, d, o
                                   in zip(offset, stride, dilation, out))


def max_pool_nd(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                return_indices=False):
    """N-d max pooling; max_pool1d/2d/3d are this on 3/4/5-D arrays."""
    x = np.asarray(input)
    kernel, stride, padding, dilation, out, pads = _geometry(
        x.shape, kernel_size, stride, padding, dilation, ceil_mode)
    xp = np.pad(x, [(0, 0), (0, 0)] + pads, constant_values=-np.inf)
    # Flat position of every input element inside its plane; -1 in the padding.
    pos = np.pad(np.arange(prod(x.shape[2:])).reshape(x.shape[2:]), pads,
                 constant_values=-1)
    best = np.full(x.shape[:2] + out, -np.inf, dtype=x.dtype)
    index = np.full(x.shape[:2] + out, -1, dtype=np.int64)
    for _, sl in _taps(xp, kernel, stride, dilation, out):
        v, p = xp[sl], pos[sl[2:]]
        # PyTorch's rule: the first in-bounds tap, then any strictly larger
        # value or any NaN. So the first maximum wins ties and NaN propagates.
        take = (p >= 0) & ((index < 0) | (v > best) | np.isnan(v))
        best = np.where(take, v, best)
        index = np.where(take, p, index)
    # A window with no input tap (dilation stepping over a tiny input) keeps
    # -inf; PyTorch's index for it is that of its first tap at or past 0 on
    # each axis, which may lie outside the plane.
    index = np.where(index < 0, _first_taps(x.shape[2:], stride, padding, dilation, out),
                     index)
    return (best, index) if return_indices else best


def _first_taps(in_size, stride, padding, dilation, out):
    """Flat plane index of every window's first tap at or past 0 on each
    axis (a row-major position, even past an axis' end)."""
    flat = 0
    for axis, (n, s, p, d, o) in enumerate(zip(in_size, stride, padding, dilation, out)):
        start = np.arange(o) * s - p
        first = np.where(start >= 0, start, start + (-start + d - 1) // d * d)
        shape = [1] * len(out)
        shape[axis] = o
        flat = flat * n + first.reshape(shape)
    return flat


def max_pool_nd_backward(grad_output, indices, input_shape):
    """Gradient of max_pool_nd: grad_output added at indices of each plane."""
    g, idx = np.asarray(grad_output), np.asarray(indices)
    n, c = input_shape[:2]
    plane = prod(input_shape[2:])
    if idx.size and (idx.min() < 0 or idx.max() >= plane):
        raise ValueError("indices outside the input plane")
    grad = np.zeros((n * c, plane), dtype=g.dtype)
    rows = np.arange(n * c)[:, None]
    outs = prod(g.shape[2:])
    np.add.at(grad, (rows, idx.reshape(n * c, outs)), g.reshape(n * c, outs))
    return grad.reshape(input_shape)


def _divisors(in_size, kernel, stride, padding, out, count_include_pad, divisor_override):
    """Divisor of every window: taps inside [-pad, in + pad) with
    count_include_pad (never the ceil overhang), else taps inside [0, in)."""
    if divisor_override is not None:
        return divisor_override
    counts = []
    for n, k, s, p, o in zip(in_size, kernel, stride, padding, out):
        lo, hi = (-p, n + p) if count_include_pad else (0, n)
        counts.append(np.array([sum(lo <= i * s - p + t < hi for t in range(k))
                                for i in range(o)]))
    div = counts[0]
    for cnt in counts[1:]:
        div = np.multiply.outer(div, cnt)
    return div


def avg_pool_nd(input, kernel_size, stride=None, padding=0, ceil_mode=False,
                count_include_pad=True, divisor_override=None):
    """N-d average pooling; avg_pool1d/2d/3d are this on 3/4/5-D arrays."""
    x = np.asarray(input)
    kernel, stride, padding, _, out, pads = _geometry(
        x.shape, kernel_size, stride, padding, 1, ceil_mode)
    xp = np.pad(x, [(0, 0), (0, 0)] + pads)
    total = np.zeros(x.shape[:2] + out, dtype=x.dtype)
    for _, sl in _taps(xp, kernel, stride, (1,) * len(kernel), out):
        total += xp[sl]
    div = _divisors(x.shape[2:], kernel, stride, padding, out, count_include_pad,
                    divisor_override)
    return (total / div).astype(x.dtype)


def avg_pool_nd_backward(grad_output, input_shape, kernel_size, stride=None, padding=0,
                         ceil_mode=False, count_include_pad=True, divisor_override=None):
    """Gradient of avg_pool_nd: each window spreads grad / divisor over its taps."""
    g = np.asarray(grad_output)
    kernel, stride, padding, _, out, pads = _geometry(
        tuple(input_shape), kernel_size, stride, padding, 1, ceil_mode)
    div = _divisors(input_shape[2:], kernel, stride, padding, out, count_include_pad,
                    divisor_override)
    share = g / div
    padded = tuple(input_shape[:2]) + tuple(n + a + b for n, (a, b) in
                                            zip(input_shape[2:], pads))
    gp = np.zeros(padded, dtype=g.dtype)
    for _, sl in _taps(gp, kernel, stride, (1,) * len(kernel), out):
        gp[sl] += share
    inner = tuple(slice(a, a + n) for (a, _), n in zip(pads, input_shape[2:]))
    return gp[(slice(None), slice(None)) + inner].copy()


def _adaptive_bins(n, o):
    """Bin i covers [floor(i*n/o), ceil((i+1)*n/o))."""
    return [(i * n // o, -(-(i + 1) * n // o)) for i in range(o)]


def _adaptive_out(x_shape, output_size):
    nd = len(x_shape) - 2
    return tuple(n if o is None else o for o, n in zip(_tuple(output_size, nd), x_shape[2:]))


def _bin_slices(in_size, out_size):
    """(output index, input slices) of every adaptive bin, row-major."""
    for index in product(*(range(o) for o in out_size)):
        yield index, tuple(slice(lo, hi) for (lo, hi) in
                           (_adaptive_bins(n, o)[i] for n, o, i in zip(in_size, out_size, index)))


def adaptive_avg_pool_nd(input, output_size):
    """torch.nn.functional.adaptive_avg_pool1d/2d/3d on (N, C, *spatial)."""
    x = np.asarray(input)
    out = _adaptive_out(x.shape, output_size)
    y = np.empty(x.shape[:2] + out, dtype=x.dtype)
    axes = tuple(range(2, x.ndim))
    for index, bins in _bin_slices(x.shape[2:], out):
        y[(Ellipsis,) + index] = x[(Ellipsis,) + bins].mean(axis=axes)
    return y


def adaptive_avg_pool_nd_backward(grad_output, input_shape):
    """Gradient of adaptive_avg_pool_nd: each bin spreads grad / size over itself."""
    g = np.asarray(grad_output)
    grad = np.zeros(tuple(input_shape), dtype=g.dtype)
    for index, bins in _bin_slices(input_shape[2:], g.shape[2:]):
        size = prod(b.stop - b.start for b in bins)
        grad[(Ellipsis,) + bins] += g[(Ellipsis,) + index][(Ellipsis,) + (None,) * len(bins)] / size
    return grad


def adaptive_max_pool_nd(input, output_size, return_indices=False):
    """torch.nn.functional.adaptive_max_pool1d/2d/3d on (N, C, *spatial): the
    max of each bin (NaN wins, the first maximum wins ties) and its flat index
    in the plane."""
    x = np.asarray(input)
    out = _adaptive_out(x.shape, output_size)
    nc = x.shape[:2]
    y = np.empty(nc + out, dtype=x.dtype)
    index = np.empty(nc + out, dtype=np.int64)
    pos = np.arange(prod(x.shape[2:])).reshape(x.shape[2:])
    for o, bins in _bin_slices(x.shape[2:], out):
        window = x[(Ellipsis,) + bins].reshape(nc + (-1,))
        # PyTorch's rule: the first maximum, but the last NaN when there is one
        nan = np.isnan(window)
        last_nan = window.shape[-1] - 1 - np.argmax(nan[..., ::-1], axis=-1)
        k = np.where(nan.any(axis=-1), last_nan, np.argmax(window, axis=-1))
        y[(Ellipsis,) + o] = np.take_along_axis(window, k[..., None], -1)[..., 0]
        index[(Ellipsis,) + o] = pos[bins].reshape(-1)[k]
    return (y, index) if return_indices else y


max_pool1d, max_pool2d, max_pool3d = nd_ops(POOL, max_pool_nd, "max_pool{}d")
max_pool1d_backward, max_pool2d_backward, max_pool3d_backward = \
    nd_ops(POOL_BACKWARD, max_pool_nd_backward, "max_pool{}d_backward")
avg_pool1d, avg_pool2d, avg_pool3d = nd_ops(POOL, avg_pool_nd, "avg_pool{}d")
avg_pool1d_backward, avg_pool2d_backward, avg_pool3d_backward = \
    nd_ops(POOL_BACKWARD, avg_pool_nd_backward, "avg_pool{}d_backward")
adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_avg_pool3d = \
    nd_ops(POOL, adaptive_avg_pool_nd, "adaptive_avg_pool{}d")
adaptive_avg_pool1d_backward, adaptive_avg_pool2d_backward, adaptive_avg_pool3d_backward = \
    nd_ops(POOL_BACKWARD, adaptive_avg_pool_nd_backward, "adaptive_avg_pool{}d_backward")
adaptive_max_pool1d, adaptive_max_pool2d, adaptive_max_pool3d = \
    nd_ops(POOL, adaptive_max_pool_nd, "adaptive_max_pool{}d")
adaptive_max_pool1d_backward, adaptive_max_pool2d_backward, adaptive_max_pool3d_backward = \
    nd_ops(POOL_BACKWARD, max_pool_nd_backward, "adaptive_max_pool{}d_backward")
