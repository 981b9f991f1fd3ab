"""Fully connected layer, as torch.nn.functional.linear, and its backward:
each product one call of fastconv's GEMM (the unpacked one for small
products, such as a classifier head's: _plan.plan_gemm).

The GEMM runs on fastconv's own OpenMP threads. NumPy's matmul would hand
these products to OpenBLAS, whose thread pool keeps spinning after each call
and so competes for the cores with the convolutions that follow a linear
layer in a network.
"""
from __future__ import annotations

from math import prod
from typing import Optional

import numpy as np

from .. import _args, _callcache, _kernels
from .._types import Array, ArrayLike, Grads
from . import _plan
from ._conv import gemm


def _gemm_operand(arr):
    """`arr` as the GEMM reads it: any non-negative strides are fine (the GEMMs
    read strided operands), so only misaligned, byte-swapped or negatively
    strided arrays are copied."""
    if arr.flags.aligned and arr.dtype.isnative and min(arr.strides, default=0) >= 0:
        return arr
    return np.require(arr, requirements=("C", "A"), dtype=arr.dtype.newbyteorder("="))


def _rows(x, features):
    """x (*, features) as a 2-D (rows, features) GEMM operand (a view where
    NumPy can make one)."""
    rows = prod(x.shape[:-1])  # not -1: NumPy cannot infer it when features == 0
    return _gemm_operand(x.reshape(rows, features) if x.ndim != 2 else x)


def _parse(op, input, weight, bias=None, grad_output=_args.NO_GRAD):
    """Checked arrays (x, w, b, g) and the output's shape: weight 2-D (out,
    in), input (*, in) with at least one axis, bias (out,) or None,
    grad_output (*, out) or NO_GRAD."""
    x = _args.as_array(input, "input", op)
    w = _args.as_array(weight, "weight", op)
    b = None if bias is None else _args.as_array(bias, "bias", op)
    g = (_args.NO_GRAD if grad_output is _args.NO_GRAD
         else _args.as_array(grad_output, "grad_output", op))
    dtype = _args.dtype_key(x.dtype)
    out_shape, whole = _check_shapes(
        op, x.shape, dtype, w.shape, _args.dtype_key(w.dtype),
        None if b is None else b.shape, None if b is None else _args.dtype_key(b.dtype),
        None if g is _args.NO_GRAD else g.shape,
        None if g is _args.NO_GRAD else _args.dtype_key(g.dtype))
    return x, w, b, g, out_shape, whole


@_callcache.memoize
def _check_shapes(op, x_shape, dtype, w_shape, w_dtype, b_shape, b_dtype, g_shape, g_dtype):
    """The dtype and shape rules of a linear call (they read no value, so
    they run once per distinct call); returns the output's shape and, for
    a forward call the small GEMM computes in one typed call, that call
    (_whole_forward), else None."""
    x, w, b, g = (_args.meta(shape, _args.key_dtype(key)) for shape, key in
                  ((x_shape, dtype), (w_shape, w_dtype), (b_shape, b_dtype), (g_shape, g_dtype)))
    for name, arr in (("input", x), ("weight", w), ("bias", b), ("grad_output", g)):
        if arr is not None:
            _args.check_float_dtype(arr.dtype, name, op)
    _args.same_dtype(op, input=x, weight=w, bias=b, grad_output=g)
    _args.check_ndim(w, 2, "weight", op, "(out_features, in_features)")
    out_features, in_features = w.shape
    if x.ndim < 1 or x.shape[-1] != in_features:
        raise ValueError(f"{op}: input must have shape (*, in_features) with in_features = "
                         f"{in_features} (weight shape {w.shape}), got input shape {x.shape}")
    if b is not None and b.shape != (out_features,):
        raise ValueError(f"{op}: bias must have shape ({out_features},) (out_features of "
                         f"weight shape {w.shape}), got {b.shape}")
    out_shape = x.shape[:-1] + (out_features,)
    if g is not None and g.shape != out_shape:
        raise ValueError(f"{op}: grad_output must have the output's shape {out_shape}, "
                         f"got {g.shape}")
    _args.check_alloc(op, "output", out_shape, x.dtype, "the input and weight shapes")
    whole = None
    if g is None:
        whole = _whole_forward(out_shape, in_features, (dtype, w_dtype, b_dtype))
    return out_shape, whole


def _whole_forward(out_shape, in_features, dtype_keys):
    """linear's typed call (_kernels.LinearForward) when it computes the
    whole forward: native operands (dtype keys "f"/"d", _args.dtype_key; it
    copies other layouts), a non-empty product small enough for the
    unpacked GEMM, which reads the weight's columns in place."""
    rows, out_features = prod(out_shape[:-1]), out_shape[-1]
    if (all(key is None or type(key) is str for key in dtype_keys)
            and rows * out_features * in_features > 0
            and _plan.plan_gemm(rows, out_features, in_features) == _plan.GEMM_SMALL
            and (out_features == 1 or in_features == 1
                 or _plan.small_gemm_dot_form(in_features, out_features))):
        return _kernels.LinearForward(dtype_keys[0], rows, out_features, in_features,
                                      out_shape, _args.contiguous)
    return None


def linear(input: ArrayLike, weight: ArrayLike, bias: Optional[ArrayLike] = None) -> Array:
    """y = input @ weight.T + bias, as torch.nn.functional.linear.

    Args:
        input: float32 or float64 array (*, in_features), at least 1-D.
        weight: (out_features, in_features) array of the input's dtype.
        bias: optional (out_features,) array of the input's dtype.

    Returns:
        A fresh C-contiguous (*, out_features) array of the input's dtype.

    Raises:
        TypeError: an array None (input, weight), not float, or of different
            dtypes.
        ValueError: weight not 2-D; input 0-d or its last axis not
            in_features; bias not (out_features,).
        MemoryError: an output larger than this machine's memory.
    """
    op = "linear"
    x, w, b, _, out_shape, whole = _parse(op, input, weight, bias)
    if whole is not None:
        return whole.forward(x, w, b)
    out_features, in_features = w.shape
    y = np.empty(out_shape, np.dtype(x.dtype.type))
    y2 = y.reshape(prod(y.shape[:-1]), out_features)
    if b is not None:
        y2[...] = b
    gemm(_rows(x, in_features), _gemm_operand(w).T, y2, accumulate=b is not None)
    return y


def linear_backward(grad_output: ArrayLike, input: ArrayLike, weight: ArrayLike, *,
                    input_grad: bool = True) -> Grads:
    """Gradients of linear with respect to its input, weight and bias.

    Args:
        grad_output: (*, out_features) array, the gradient of the loss with
            respect to linear's output.
        input: the forward's input (*, in_features).
        weight: the forward's weight (out_features, in_features).
        input_grad: keyword-only bool (default True); False skips grad_input,
            which is then None (PyTorch skips it for an input that does not
            require grad).

    Returns:
        (grad_input, grad_weight, grad_bias): fresh C-contiguous arrays of the
        input's shape (grad_output @ weight), the weight's shape
        (grad_output^T @ input over all leading axes) and (out_features,)
        (grad_output summed over all leading axes).

    Raises:
        TypeError: an array None, not float, or of different dtypes.
        ValueError: as linear; grad_output not of the output's shape
            (*, out_features).
        MemoryError: a result larger than this machine's memory.
    """
    op = "linear_backward"
    input_grad = _args.as_bool(input_grad, "input_grad", op)
    x, w, _, g, _, _ = _parse(op, input, weight, grad_output=grad_output)
    out_features, in_features = w.shape
    dtype = np.dtype(x.dtype.type)
    g2 = _rows(g, out_features)
    grad_input = None
    if input_grad:
        grad_input = np.empty(x.shape, dtype)
        gemm(g2, _gemm_operand(w), grad_input.reshape(g2.shape[0], in_features))
    grad_weight = np.empty(w.shape, dtype)
    gemm(g2.T, _rows(x, in_features), grad_weight)
    grad_bias = np.asarray(g2.sum(axis=0), dtype)
    return grad_input, grad_weight, grad_bias
