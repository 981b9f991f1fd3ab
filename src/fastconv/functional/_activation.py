"""Activations, PReLU and (log-)softmax, as torch.nn.functional's ops of the
same names, each with a `<op>_backward`.

One C kernel family serves them all (csrc/activation_template.h): one pass
over the elements per call, in place when asked. Backward ops take what a
training step has at hand: the forward's OUTPUT for relu, sigmoid, tanh and
(log-)softmax (so an in-place forward needs no copy of its input), the
forward's INPUT for the others (their output does not determine the slope:
ELU with alpha < 0, GELU and SiLU are not monotonic).
"""
from __future__ import annotations

from math import prod
from typing import Literal, Tuple

import numpy as np

from .. import _args, _kernels, _threads
from .._types import Array, ArrayLike


def _native(x):
    return x.dtype.newbyteorder("=")


def _forward(op, kind, input, alpha=0.0, inplace=False, keep=False):
    """f(input) from the activation kernel `kind`: a fresh array, or with
    inplace=True written into input (which is returned).  With keep=True,
    (result, a fresh copy of what the backward op reads) from the same pass."""
    x = _args.as_float_array(input, "input", op)
    inplace = _args.as_bool(inplace, "inplace", op)
    if inplace:
        if not isinstance(input, np.ndarray):
            raise TypeError(f"{op}: inplace=True needs a NumPy array as input, got "
                            f"{type(input).__name__}")
        if not x.flags.writeable:
            raise ValueError(f"{op}: inplace=True but input is read-only")
    src = _args.contiguous(np.asarray(x))
    out = src if inplace else np.empty(x.shape, _native(x))
    saved = np.empty(x.shape, _native(x)) if keep else None
    _kernels.activation(kind, src.reshape(-1), alpha, out.reshape(-1),
                        None if saved is None else saved.reshape(-1),
                        _threads.get_num_threads())
    if inplace and src is not x and not np.shares_memory(src, x):
        np.copyto(x, src)               # a strided or byte-swapped input: copied back
    result = x if inplace else out
    return (result, saved) if keep else result


def forward_keeping(op: str, input: np.ndarray, inplace: bool = False,
                    **kwargs) -> Tuple[Array, Array]:
    """For fastconv.nn's layers: (op(input, inplace=..., **kwargs), a private
    copy of what op's backward reads), both written by the one kernel pass:
    the layer needs no second pass to copy the output or the input."""
    kind, alpha = _KIND_OF[op](op, kwargs)
    return _forward(op, kind, input, alpha, inplace, keep=True)


def sum_of(a: np.ndarray, b: np.ndarray, relu: bool = False) -> Array:
    """For fastconv.nn's composites (Residual, Add): a fresh a + b, ReLU'd
    with relu, in one kernel pass on the ops' threads (NumPy's sum, then a
    ReLU, take two passes on one thread).  a and b: float arrays of one
    shape; of one native dtype, else NumPy's sum (and its type promotion)."""
    if a.dtype != b.dtype or a.dtype.char not in "fd" or not a.dtype.isnative:
        y = np.add(a, b)
        return np.maximum(y, y.dtype.type(0), out=y) if relu else y
    a, b = _args.contiguous(a), _args.contiguous(b)
    y = np.empty(a.shape, a.dtype)
    _kernels.add(a.reshape(-1), b.reshape(-1), relu, y.reshape(-1),
                 _threads.get_num_threads())
    return y


def _backward(op, kind, grad_output, saved, saved_name, alpha=0.0):
    """grad_output * f'(.) from `saved` (the forward's input or output)."""
    g = _args.as_float_array(grad_output, "grad_output", op)
    s = _args.as_float_array(saved, saved_name, op)
    _args.same_dtype(op, grad_output=g, **{saved_name: s})
    if g.shape != s.shape:
        raise ValueError(f"{op}: grad_output has shape {g.shape} but {saved_name} has shape "
                         f"{s.shape}; they must match")
    out = np.empty(g.shape, _native(g))
    _kernels.activation_backward(kind, _args.contiguous(np.asarray(g)).reshape(-1),
                                 _args.contiguous(np.asarray(s)).reshape(-1), alpha,
                                 out.reshape(-1), _threads.get_num_threads())
    return out


_FORWARD_RESULT = """Returns:
        The result, of the input's shape and dtype: a fresh C-contiguous array,
        or with inplace=True the input itself, overwritten."""

_INPLACE_ERRORS = """TypeError: input None or not float32/float64; inplace not a bool;
            inplace=True with an input that is not a NumPy array.
        ValueError: inplace=True with a read-only input."""


def relu(input: ArrayLike, inplace: bool = False) -> Array:
    """max(input, 0) elementwise, as torch.nn.functional.relu (NaN stays NaN).

    Args:
        input: float32 or float64 array of any shape and layout.
        inplace: write the result into input (which must be a writable
            ndarray) and return it; default False (input untouched).

    {result}

    Raises:
        {errors}
    """
    return _forward("relu", "relu", input, inplace=inplace)


def relu_backward(grad_output: ArrayLike, output: ArrayLike) -> Array:
    """Gradient of relu from its OUTPUT: grad_output where output > 0, else 0
    (0 at the kink, as PyTorch).

    Args:
        grad_output: gradient of the loss with respect to relu's output.
        output: relu's output (the forward's input works as well).

    Returns:
        grad_input: a fresh C-contiguous array of grad_output's shape.

    Raises:
        TypeError: an argument None, not float, or the two of different dtypes.
        ValueError: grad_output and output of different shapes.
    """
    return _backward("relu_backward", "relu", grad_output, output, "output")


def leaky_relu(input: ArrayLike, negative_slope: float = 0.01,
               inplace: bool = False) -> Array:
    """input where input > 0, else negative_slope * input, as
    torch.nn.functional.leaky_relu.

    Args:
        input: float32 or float64 array of any shape and layout.
        negative_slope: the slope for input <= 0, a finite real.
        inplace: write the result into input and return it (default False).

    {result}

    Raises:
        {errors} negative_slope not finite.
    """
    slope = _args.as_real(negative_slope, "negative_slope", "leaky_relu")
    return _forward("leaky_relu", "leaky_relu", input, slope, inplace)


def leaky_relu_backward(grad_output: ArrayLike, input: ArrayLike,
                        negative_slope: float = 0.01) -> Array:
    """Gradient of leaky_relu from its INPUT: grad_output where input > 0,
    else negative_slope * grad_output. With negative_slope >= 0 the output
    has the input's signs, so the forward's output may be passed instead
    (what an in-place layer keeps).

    Args:
        grad_output: gradient of the loss with respect to the output.
        input: the forward's input (or output, when negative_slope >= 0).
        negative_slope: the forward's slope, a finite real.

    Returns:
        grad_input: a fresh C-contiguous array of grad_output's shape.

    Raises:
        TypeError: an array None, not float, or of different dtypes.
        ValueError: shapes differ; negative_slope not finite.
    """
    slope = _args.as_real(negative_slope, "negative_slope", "leaky_relu_backward")
    return _backward("leaky_relu_backward", "leaky_relu", grad_output, input, "input", slope)


def elu(input: ArrayLike, alpha: float = 1.0, inplace: bool = False) -> Array:
    """input where input > 0, else alpha * (exp(input) - 1), as
    torch.nn.functional.elu.

    Args:
        input: float32 or float64 array of any shape and layout.
        alpha: scale of the negative part, a finite real.
        inplace: write the result into input and return it (default False).

    {result}

    Raises:
        {errors} alpha not finite.
    """
    a = _args.as_real(alpha, "alpha", "elu")
    return _forward("elu", "elu", input, a, inplace)


def elu_backward(grad_output: ArrayLike, input: ArrayLike, alpha: float = 1.0) -> Array:
    """Gradient of elu from its INPUT: grad_output where input > 0, else
    grad_output * alpha * exp(input).

    Args:
        grad_output: gradient of the loss with respect to the output.
        input: the forward's input.
        alpha: the forward's alpha, a finite real.

    Returns:
        grad_input: a fresh C-contiguous array of grad_output's shape.

    Raises:
        TypeError: an array None, not float, or of different dtypes.
        ValueError: shapes differ; alpha not finite.
    """
    a = _args.as_real(alpha, "alpha", "elu_backward")
    return _backward("elu_backward", "elu", grad_output, input, "input", a)


def _gelu_kind(op, approximate):
    if approximate not in ("none", "tanh"):
        raise ValueError(f"{op}: approximate must be 'none' or 'tanh', "
                         f"got approximate={approximate!r}")
    return "gelu" if approximate == "none" else "gelu_tanh"


def gelu(input: ArrayLike, approximate: Literal["none", "tanh"] = "none") -> Array:
    """input * Phi(input), Phi the standard normal CDF (erf form), or with
    approximate='tanh' PyTorch's tanh approximation, as
    torch.nn.functional.gelu.

    Args:
        input: float32 or float64 array of any shape and layout.
        approximate: 'none' (exact) or 'tanh'.

    Returns:
        A fresh C-contiguous array of the input's shape and dtype.

    Raises:
        TypeError: input None or not float32/float64.
        ValueError: approximate not 'none' or 'tanh'.
    """
    return _forward("gelu", _gelu_kind("gelu", approximate), input)


def gelu_backward(grad_output: ArrayLike, input: ArrayLike,
                  approximate: Literal["none", "tanh"] = "none") -> Array:
    """Gradient of gelu from its INPUT.

    Args:
        grad_output: gradient of the loss with respect to the output.
        input: the forward's input.
        approximate: the forward's 'none' or 'tanh'.

    Returns:
        grad_input: a fresh C-contiguous array of grad_output's shape.

    Raises:
        TypeError: an array None, not float, or of different dtypes.
        ValueError: shapes differ; approximate not 'none' or 'tanh'.
    """
    kind = _gelu_kind("gelu_backward", approximate)
    return _backward("gelu_backward", kind, grad_output, input, "input")


def silu(input: ArrayLike, inplace: bool = False) -> Array:
    """input * sigmoid(input) (swish), as torch.nn.functional.silu.

    Args:
        input: float32 or float64 array of any shape and layout.
        inplace: write the result into input and return it (default False).

    {result}

    Raises:
        {errors}
    """
    return _forward("silu", "silu", input, inplace=inplace)


def silu_backward(grad_output: ArrayLike, input: ArrayLike) -> Array:
    """Gradient of silu from its INPUT: grad_output * s * (1 + input * (1 - s)),
    s = sigmoid(input).

    Args:
        grad_output: gradient of the loss with respect to the output.
        input: the forward's input.

    Returns:
        grad_input: a fresh C-contiguous array of grad_output's shape.

    Raises:
        TypeError: an array None, not float, or of different dtypes.
        ValueError: shapes differ.
    """
    return _backward("silu_backward", "silu", grad_output, input, "input")


def sigmoid(input: ArrayLike) -> Array:
    """1 / (1 + exp(-input)) elementwise, as torch.sigmoid (no overflow
    warning for any input).

    Args:
        input: float32 or float64 array of any shape and layout.

    Returns:
        A fresh C-contiguous array of the input's shape and dtype.

    Raises:
        TypeError: input None or not float32/float64.
    """
    return _forward("sigmoid", "sigmoid", input)


def sigmoid_backward(grad_output: ArrayLike, output: ArrayLike) -> Array:
    """Gradient of sigmoid from its OUTPUT y: grad_output * (1 - y) * y.

    Args:
        grad_output: gradient of the loss with respect to the output.
        output: sigmoid's output.

    Returns:
        grad_input: a fresh C-contiguous array of grad_output's shape.

    Raises:
        TypeError: an array None, not float, or of different dtypes.
        ValueError: shapes differ.
    """
    return _backward("sigmoid_backward", "sigmoid", grad_output, output, "output")


def tanh(input: ArrayLike) -> Array:
    """tanh elementwise, as torch.tanh.

    Args:
        input: float32 or float64 array of any shape and layout.

    Returns:
        A fresh C-contiguous array of the input's shape and dtype.

    Raises:
        TypeError: input None or not float32/float64.
    """
    return _forward("tanh", "tanh", input)


def tanh_backward(grad_output: ArrayLike, output: ArrayLike) -> Array:
    """Gradient of tanh from its OUTPUT y: grad_output * (1 - y * y).

    Args:
        grad_output: gradient of the loss with respect to the output.
        output: tanh's output.

    Returns:
        grad_input: a fresh C-contiguous array of grad_output's shape.

    Raises:
        TypeError: an array None, not float, or of different dtypes.
        ValueError: shapes differ.
    """
    return _backward("tanh_backward", "tanh", grad_output, output, "output")


# op -> (kernel kind, alpha) from the op's keyword arguments (forward_keeping)
_KIND_OF = {
    "relu": lambda op, kw: ("relu", 0.0),
    "leaky_relu": lambda op, kw: ("leaky_relu", _args.as_real(kw.get("negative_slope", 0.01),
                                                               "negative_slope", op)),
    "elu": lambda op, kw: ("elu", _args.as_real(kw.get("alpha", 1.0), "alpha", op)),
    "gelu": lambda op, kw: (_gelu_kind(op, kw.get("approximate", "none")), 0.0),
    "silu": lambda op, kw: ("silu", 0.0),
    "sigmoid": lambda op, kw: ("sigmoid", 0.0),
    "tanh": lambda op, kw: ("tanh", 0.0),
}

for _fn in (relu, leaky_relu, elu, silu):
    _fn.__doc__ = _fn.__doc__.format(result=_FORWARD_RESULT, errors=_INPLACE_ERRORS)


# ---------------------------------------------------------------------- PReLU

def _prelu_layout(op, x, w):
    """(outer, channels, inner) of input x for a weight w of 1 or C values
    (C = x.shape[1], or 1 for inputs of fewer than 2 dims, as PyTorch)."""
    if w.ndim > 1:
        raise ValueError(f"{op}: weight must be 1-D (one slope, or one per channel), "
                         f"got shape {w.shape}")
    channels = x.shape[1] if x.ndim >= 2 else 1
    if w.size == 1:
        return 1, 1, x.size
    if w.size != channels:
        raise ValueError(f"{op}: weight has {w.size} slopes but the input (shape {x.shape}) "
                         f"has {channels} channels (dim 1); pass 1 or {channels}")
    return x.shape[0], channels, prod(x.shape[2:])


def prelu(input: ArrayLike, weight: ArrayLike) -> Array:
    """input where input > 0, else weight * input, as torch.nn.functional.prelu:
    one learnable slope, or one per channel (dim 1 of the input).

    Args:
        input: float32 or float64 array (N, C, *) (or of fewer dims: one channel).
        weight: 1-D array of 1 or C slopes, the input's dtype.

    Returns:
        A fresh C-contiguous array of the input's shape and dtype.

    Raises:
        TypeError: an array None, not float, or the two of different dtypes.
        ValueError: weight not 1-D, or neither 1 nor C slopes.
    """
    op = "prelu"
    x = _args.as_float_array(input, "input", op)
    w = _args.as_float_array(weight, "weight", op)
    _args.same_dtype(op, input=x, weight=w)
    outer, channels, inner = _prelu_layout(op, x, w)
    out = np.empty(x.shape, _native(x))
    _kernels.prelu(_args.contiguous(np.asarray(x)).reshape(-1),
                   _args.contiguous(np.asarray(w)).reshape(-1), outer, channels, inner,
                   out.reshape(-1), _threads.get_num_threads())
    return out


def prelu_backward(grad_output: ArrayLike, input: ArrayLike,
                   weight: ArrayLike) -> Tuple[Array, Array]:
    """Gradients of prelu with respect to its input and its slopes.

    Args:
        grad_output: gradient of the loss with respect to the output
            (the input's shape).
        input: the forward's input.
        weight: the forward's slopes (1-D, 1 or C values).

    Returns:
        (grad_input, grad_weight): fresh C-contiguous arrays of the input's
        and the weight's shapes; grad_weight sums grad_output * input over
        the elements with input <= 0 of each channel.

    Raises:
        TypeError: an array None, not float, or of different dtypes.
        ValueError: grad_output's shape differs from the input's; weight not
            1-D, or neither 1 nor C slopes.
    """
    op = "prelu_backward"
    g = _args.as_float_array(grad_output, "grad_output", op)
    x = _args.as_float_array(input, "input", op)
    w = _args.as_float_array(weight, "weight", op)
    _args.same_dtype(op, grad_output=g, input=x, weight=w)
    if g.shape != x.shape:
        raise ValueError(f"{op}: grad_output has shape {g.shape} but input has shape "
                         f"{x.shape}; they must match")
    outer, channels, inner = _prelu_layout(op, x, w)
    grad_input = np.empty(x.shape, _native(x))
    grad_weight = np.empty(w.shape, _native(w))
    _kernels.prelu_backward(_args.contiguous(np.asarray(g)).reshape(-1),
                            _args.contiguous(np.asarray(x)).reshape(-1),
                            _args.contiguous(np.asarray(w)).reshape(-1), outer, channels,
                            inner, grad_input.reshape(-1), grad_weight.reshape(-1),
                            _threads.get_num_threads())
    return grad_input, grad_weight


# -------------------------------------------------------------------- softmax

def _softmax_layout(op, x, dim):
    """(outer, classes, inner) of x around axis `dim` (a 0-d array is one class)."""
    d = _args.as_int(dim, "dim", op)
    ndim = max(x.ndim, 1)
    if not -ndim <= d < ndim:
        raise ValueError(f"{op}: dim={dim} is out of range for an array of shape {x.shape}")
    if x.ndim == 0:
        return 1, 1, 1
    d %= ndim
    return prod(x.shape[:d]), x.shape[d], prod(x.shape[d + 1:])


def _softmax(op, input, dim, log):
    x = _args.as_float_array(input, "input", op)
    outer, classes, inner = _softmax_layout(op, x, dim)
    out = np.empty(x.shape, _native(x))
    _kernels.softmax(_args.contiguous(np.asarray(x)).reshape(-1), outer, classes, inner, log,
                     out.reshape(-1), _threads.get_num_threads())
    return out


def _softmax_backward(op, grad_output, output, dim, log):
    g = _args.as_float_array(grad_output, "grad_output", op)
    y = _args.as_float_array(output, "output", op)
    _args.same_dtype(op, grad_output=g, output=y)
    if g.shape != y.shape:
        raise ValueError(f"{op}: grad_output has shape {g.shape} but output has shape "
                         f"{y.shape}; they must match")
    outer, classes, inner = _softmax_layout(op, y, dim)
    out = np.empty(g.shape, _native(g))
    _kernels.softmax_backward(_args.contiguous(np.asarray(g)).reshape(-1),
                              _args.contiguous(np.asarray(y)).reshape(-1), outer, classes,
                              inner, log, out.reshape(-1), _threads.get_num_threads())
    return out


def softmax(input: ArrayLike, dim: int) -> Array:
    """exp(input) / sum(exp(input)) along `dim`, max-shifted (no overflow), as
    torch.nn.functional.softmax (dim is required: PyTorch's dim=None picks one
    by the rank, with a deprecation warning).

    Args:
        input: float32 or float64 array of any shape and layout.
        dim: the axis to normalise over (negative counts from the end).

    Returns:
        A fresh C-contiguous array of the input's shape and dtype.

    Raises:
        TypeError: input None or not float32/float64; dim not an int.
        ValueError: dim out of range.
    """
    return _softmax("softmax", input, dim, False)


def softmax_backward(grad_output: ArrayLike, output: ArrayLike, dim: int) -> Array:
    """Gradient of softmax from its OUTPUT y: y * (g - sum(g * y, dim)).

    Args:
        grad_output: gradient of the loss with respect to the output.
        output: softmax's output.
        dim: the forward's dim.

    Returns:
        grad_input: a fresh C-contiguous array of grad_output's shape.

    Raises:
        TypeError: an array None, not float, or of different dtypes; dim not an int.
        ValueError: shapes differ; dim out of range.
    """
    return _softmax_backward("softmax_backward", grad_output, output, dim, False)


def log_softmax(input: ArrayLike, dim: int) -> Array:
    """input - log(sum(exp(input))) along `dim`, max-shifted, as
    torch.nn.functional.log_softmax (dim required).

    Args:
        input: float32 or float64 array of any shape and layout.
        dim: the axis to normalise over (negative counts from the end).

    Returns:
        A fresh C-contiguous array of the input's shape and dtype.

    Raises:
        TypeError: input None or not float32/float64; dim not an int.
        ValueError: dim out of range.
    """
    return _softmax("log_softmax", input, dim, True)


def log_softmax_backward(grad_output: ArrayLike, output: ArrayLike, dim: int) -> Array:
    """Gradient of log_softmax from its OUTPUT y: g - exp(y) * sum(g, dim).

    Args:
        grad_output: gradient of the loss with respect to the output.
        output: log_softmax's output.
        dim: the forward's dim.

    Returns:
        grad_input: a fresh C-contiguous array of grad_output's shape.

    Raises:
        TypeError: an array None, not float, or of different dtypes; dim not an int.
        ValueError: shapes differ; dim out of range.
    """
    return _softmax_backward("log_softmax_backward", grad_output, output, dim, True)
