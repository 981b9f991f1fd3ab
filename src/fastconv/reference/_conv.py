"""Convolution in plain NumPy, textbook style: im2col by strided slicing per
kernel offset, np.dot per group, col2im by +=.

Deliberately independent of fastconv's compiled code and of its shape and
argument helpers, so that it can serve as the oracle for both.  Only PyTorch's
calling conventions (unbatched inputs, one-element tuples) come from
fastconv._conventions, which rewrites arguments and computes nothing.
"""
from itertools import product
from math import prod

import numpy as np

from .._conventions import CONV, CONV_BACKWARD, FOLD, UNFOLD, nd_ops, pytorch_forms


def _tuple(v, nd):
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * nd


def _pads(padding, nd, kernel, dilation):
    """(before, after) per axis; 'same' puts an odd extra pad after."""
    if padding == "valid":
        return (0,) * nd, (0,) * nd
    if padding == "same":
        total = [d * (k - 1) for k, d in zip(kernel, dilation)]
        return tuple(t // 2 for t in total), tuple(t - t // 2 for t in total)
    p = _tuple(padding, nd)
    return p, p


def _out_size(size, kernel, stride, before, after, dilation):
    return tuple((n + b + a - d * (k - 1) - 1) // s + 1
                 for n, k, s, b, a, d in zip(size, kernel, stride, before, after, dilation))


def _window_slices(offset, stride, dilation, out):
    """Slices picking, for kernel offset `offset`, the input of every output."""
    return tuple(slice(o * d, o * d + s * (n - 1) + 1, s)
                 for o, s, d, n in zip(offset, stride, dilation, out))


def unfold(x, kernel, stride, before, after, dilation):
    """(N, C, *S) -> columns (N, C*prod(kernel), prod(out)) and out size."""
    n, c = x.shape[:2]
    out = _out_size(x.shape[2:], kernel, stride, before, after, dilation)
    xp = np.pad(x, [(0, 0), (0, 0)] + list(zip(before, after)))
    col = np.empty((n, c) + tuple(kernel) + out, dtype=x.dtype)
    for offset in product(*(range(k) for k in kernel)):
        col[(slice(None), slice(None)) + offset] = \
            xp[(slice(None), slice(None)) + _window_slices(offset, stride, dilation, out)]
    return col.reshape(n, c * prod(kernel), prod(out)), out


def fold(col, size, kernel, stride, before, after, dilation):
    """Adjoint of unfold: add columns back into (N, C, *size) images."""
    n = col.shape[0]
    c = col.shape[1] // prod(kernel)
    out = _out_size(size, kernel, stride, before, after, dilation)
    padded = tuple(s + b + a for s, b, a in zip(size, before, after))
    xp = np.zeros((n, c) + padded, dtype=col.dtype)
    col = col.reshape((n, c) + tuple(kernel) + out)
    for offset in product(*(range(k) for k in kernel)):
        xp[(slice(None), slice(None)) + _window_slices(offset, stride, dilation, out)] += \
            col[(slice(None), slice(None)) + offset]
    inner = tuple(slice(b, b + s) for b, s in zip(before, size))
    return xp[(slice(None), slice(None)) + inner]


def _setup(x, weight, stride, padding, dilation):
    nd = x.ndim - 2
    kernel = weight.shape[2:]
    stride, dilation = _tuple(stride, nd), _tuple(dilation, nd)
    before, after = _pads(padding, nd, kernel, dilation)
    return kernel, stride, before, after, dilation


def conv_nd(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """N-d convolution; conv1d/conv2d/conv3d are this on 3/4/5-D arrays."""
    x, weight = np.asarray(input), np.asarray(weight)
    kernel, stride, before, after, dilation = _setup(x, weight, stride, padding, dilation)
    col, out = unfold(x, kernel, stride, before, after, dilation)
    n, c_out = x.shape[0], weight.shape[0]
    k_group, o_group = col.shape[1] // groups, c_out // groups
    y = np.empty((n, c_out, prod(out)), dtype=x.dtype)
    for g in range(groups):
        w_g = weight[g * o_group:(g + 1) * o_group].reshape(o_group, k_group)
        for i in range(n):
            y[i, g * o_group:(g + 1) * o_group] = np.dot(w_g, col[i, g * k_group:(g + 1) * k_group])
    if bias is not None:
        y += np.asarray(bias)[:, None]
    return y.reshape((n, c_out) + out)


def conv_nd_backward(grad_output, input, weight, stride=1, padding=0, dilation=1, groups=1, *,
                     input_grad=True):
    """(grad_input, grad_weight, grad_bias) of conv_nd; grad_input None
    without input_grad."""
    x, weight, gy = np.asarray(input), np.asarray(weight), np.asarray(grad_output)
    kernel, stride, before, after, dilation = _setup(x, weight, stride, padding, dilation)
    col, out = unfold(x, kernel, stride, before, after, dilation)
    n, c_out = x.shape[0], weight.shape[0]
    k_group, o_group = col.shape[1] // groups, c_out // groups
    gy = gy.reshape(n, c_out, prod(out))
    grad_weight = np.zeros((c_out, k_group), dtype=x.dtype)
    grad_col = np.empty_like(col)
    for g in range(groups):
        rows, outs = slice(g * k_group, (g + 1) * k_group), slice(g * o_group, (g + 1) * o_group)
        w_g = weight[outs].reshape(o_group, k_group)
        for i in range(n):
            grad_weight[outs] += np.dot(gy[i, outs], col[i, rows].T)
            grad_col[i, rows] = np.dot(w_g.T, gy[i, outs])
    grad_input = fold(grad_col, x.shape[2:], kernel, stride, before, after, dilation) \
        if input_grad else None
    return grad_input, grad_weight.reshape(weight.shape), gy.sum(axis=(0, 2))


conv1d, conv2d, conv3d = nd_ops(CONV, conv_nd, "conv{}d")
conv1d_backward, conv2d_backward, conv3d_backward = \
    nd_ops(CONV_BACKWARD, conv_nd_backward, "conv{}d_backward")


@pytorch_forms(UNFOLD, nd=2)
def im2col(input, kernel_size, dilation=1, padding=0, stride=1):
    """torch.nn.functional.unfold on (N, C, H, W)."""
    pad = _tuple(padding, 2)
    return unfold(np.asarray(input), _tuple(kernel_size, 2), _tuple(stride, 2), pad, pad,
                  _tuple(dilation, 2))[0]


@pytorch_forms(FOLD, nd=2)
def col2im(cols, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """torch.nn.functional.fold to (N, C, H, W)."""
    pad = _tuple(padding, 2)
    return fold(np.asarray(cols), _tuple(output_size, 2), _tuple(kernel_size, 2),
                _tuple(stride, 2), pad, pad, _tuple(dilation, 2))
