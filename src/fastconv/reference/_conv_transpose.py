"""Transposed convolution in plain NumPy, by its definition: every input pixel
scatters weight * value into the output at i*stride + k*dilation - padding."""
from itertools import product

import numpy as np

from .._conventions import CONV, CONV_BACKWARD, nd_ops
from ._conv import _tuple


def _setup(x, weight, stride, padding, output_padding, dilation):
    nd = x.ndim - 2
    kernel = weight.shape[2:]
    stride, padding = _tuple(stride, nd), _tuple(padding, nd)
    output_padding, dilation = _tuple(output_padding, nd), _tuple(dilation, nd)
    # The uncropped output: every tap of every input pixel, plus output_padding.
    full = tuple((i - 1) * s + d * (k - 1) + 1 + o for i, k, s, d, o
                 in zip(x.shape[2:], kernel, stride, dilation, output_padding))
    return kernel, stride, padding, dilation, full


def _taps(offset, stride, dilation, size):
    """Slices of the full output hit by kernel offset `offset` from all inputs."""
    return tuple(slice(k * d, k * d + s * (n - 1) + 1, s)
                 for k, s, d, n in zip(offset, stride, dilation, size))


def _crop(full, padding):
    return tuple(slice(p, n - p) for n, p in zip(full, padding))


def conv_transpose_nd(input, weight, bias=None, stride=1, padding=0, output_padding=0,
                      groups=1, dilation=1):
    x, weight = np.asarray(input), np.asarray(weight)
    kernel, stride, padding, dilation, full = _setup(x, weight, stride, padding,
                                                     output_padding, dilation)
    n, c_in = x.shape[:2]
    ci_g, co_g = c_in // groups, weight.shape[1]
    y = np.zeros((n, co_g * groups) + full, dtype=x.dtype)
    for g in range(groups):
        xg = x[:, g * ci_g:(g + 1) * ci_g]
        for offset in product(*(range(k) for k in kernel)):
            w_k = weight[(slice(g * ci_g, (g + 1) * ci_g), slice(None)) + offset]  # (ci, co)
            contrib = np.moveaxis(np.tensordot(xg, w_k, axes=([1], [0])), -1, 1)
            y[(slice(None), slice(g * co_g, (g + 1) * co_g))
              + _taps(offset, stride, dilation, x.shape[2:])] += contrib
    y = y[(slice(None), slice(None)) + _crop(full, padding)]
    if bias is not None:
        y = y + np.asarray(bias).reshape((-1,) + (1,) * (x.ndim - 2))
    return np.ascontiguousarray(y)


def conv_transpose_nd_backward(grad_output, input, weight, stride=1, padding=0,
                               output_padding=0, groups=1, dilation=1, *, input_grad=True):
    """(grad_input, grad_weight, grad_bias) of conv_transpose_nd; grad_input
    None without input_grad."""
    x, weight, gy = np.asarray(input), np.asarray(weight), np.asarray(grad_output)
    kernel, stride, padding, dilation, full = _setup(x, weight, stride, padding,
                                                     output_padding, dilation)
    n, c_in = x.shape[:2]
    ci_g, co_g = c_in // groups, weight.shape[1]
    gy_full = np.zeros((n, co_g * groups) + full, dtype=gy.dtype)
    gy_full[(slice(None), slice(None)) + _crop(full, padding)] = gy
    grad_input = np.zeros_like(x)
    grad_weight = np.zeros_like(weight)
    for g in range(groups):
        ci, co = slice(g * ci_g, (g + 1) * ci_g), slice(g * co_g, (g + 1) * co_g)
        for offset in product(*(range(k) for k in kernel)):
            gy_k = gy_full[(slice(None), co) + _taps(offset, stride, dilation, x.shape[2:])]
            w_k = weight[(ci, slice(None)) + offset]  # (ci, co)
            grad_input[:, ci] += np.moveaxis(np.tensordot(gy_k, w_k, axes=([1], [1])), -1, 1)
            axes = [0] + list(range(2, x.ndim))
            grad_weight[(ci, slice(None)) + offset] = np.tensordot(x[:, ci], gy_k,
                                                                   axes=(axes, axes))
    return (grad_input if input_grad else None, grad_weight,
            gy.sum(axis=(0,) + tuple(range(2, gy.ndim))))


conv_transpose1d, conv_transpose2d, conv_transpose3d = \
    nd_ops(CONV, conv_transpose_nd, "conv_transpose{}d")
conv_transpose1d_backward, conv_transpose2d_backward, conv_transpose3d_backward = \
    nd_ops(CONV_BACKWARD, conv_transpose_nd_backward, "conv_transpose{}d_backward")
