"""Activations, PReLU, (log-)softmax and cross-entropy in plain NumPy,
straight from their definitions (PyTorch's formulas), in float64 and cast
back to the input's dtype."""
import math

import numpy as np

_erfc = np.vectorize(math.erfc, otypes=[np.float64])
_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)
_KAPPA = 0.044715


def _f64(a):
    return np.asarray(a, dtype=np.float64)


def _result(value, like, inplace=False):
    """`value` in like's dtype: fresh, or written into `like` (inplace)."""
    like = np.asarray(like)
    if inplace:
        np.copyto(like, value, casting="unsafe")
        return like
    return np.array(value, dtype=like.dtype.newbyteorder("="), order="C")   # 0-d stays 0-d


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def relu(input, inplace=False):
    x = _f64(input)
    return _result(np.where(x < 0, 0.0, x), input, inplace)


def relu_backward(grad_output, output):
    return _result(np.where(_f64(output) > 0, _f64(grad_output), 0.0), grad_output)


def leaky_relu(input, negative_slope=0.01, inplace=False):
    x = _f64(input)
    return _result(np.where(x > 0, x, negative_slope * x), input, inplace)


def leaky_relu_backward(grad_output, input, negative_slope=0.01):
    g = _f64(grad_output)
    return _result(np.where(_f64(input) > 0, g, negative_slope * g), grad_output)


def elu(input, alpha=1.0, inplace=False):
    x = _f64(input)
    with np.errstate(over="ignore"):
        return _result(np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0))), input, inplace)


def elu_backward(grad_output, input, alpha=1.0):
    x, g = _f64(input), _f64(grad_output)
    return _result(np.where(x > 0, g, g * alpha * np.exp(np.minimum(x, 0))), grad_output)


def gelu(input, approximate="none"):
    x = _f64(input)
    if approximate == "tanh":
        return _result(0.5 * x * (1 + np.tanh(_SQRT_2_OVER_PI * (x + _KAPPA * x ** 3))), input)
    return _result(0.5 * x * _erfc(-x / math.sqrt(2)), input)    # = x * Phi(x)


def gelu_backward(grad_output, input, approximate="none"):
    x, g = _f64(input), _f64(grad_output)
    if approximate == "tanh":
        t = np.tanh(_SQRT_2_OVER_PI * (x + _KAPPA * x ** 3))
        d = 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * _SQRT_2_OVER_PI * (1 + 3 * _KAPPA * x * x)
    else:
        d = 0.5 * _erfc(-x / math.sqrt(2)) + x * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
    return _result(g * d, grad_output)


def silu(input, inplace=False):
    x = _f64(input)
    with np.errstate(over="ignore"):
        return _result(x * _sigmoid(x), input, inplace)


def silu_backward(grad_output, input):
    x = _f64(input)
    with np.errstate(over="ignore"):
        s = _sigmoid(x)
    return _result(_f64(grad_output) * s * (1 + x * (1 - s)), grad_output)


def sigmoid(input):
    with np.errstate(over="ignore"):
        return _result(_sigmoid(_f64(input)), input)


def sigmoid_backward(grad_output, output):
    y = _f64(output)
    return _result(_f64(grad_output) * (1 - y) * y, grad_output)


def tanh(input):
    return _result(np.tanh(_f64(input)), input)


def tanh_backward(grad_output, output):
    y = _f64(output)
    return _result(_f64(grad_output) * (1 - y * y), grad_output)


def _slopes(x, weight):
    """The weight broadcast against x: one slope, or one per channel (dim 1)."""
    w = _f64(weight).reshape(-1)
    if w.size == 1:
        return w[0]
    return w.reshape((1, -1) + (1,) * (x.ndim - 2))


def prelu(input, weight):
    x = _f64(input)
    return _result(np.where(x > 0, x, _slopes(x, weight) * x), input)


def prelu_backward(grad_output, input, weight):
    x, g = _f64(input), _f64(grad_output)
    grad_input = np.where(x > 0, g, _slopes(x, weight) * g)
    contrib = np.where(x > 0, 0.0, g * x)
    w = np.asarray(weight)
    if w.size == 1:
        grad_weight = np.full(w.shape, contrib.sum())
    else:
        grad_weight = contrib.sum(axis=tuple(i for i in range(x.ndim) if i != 1))
    return _result(grad_input, grad_output), _result(grad_weight.reshape(w.shape), weight)


def _log_softmax(x, dim):
    if x.ndim == 0:
        return x - x
    shifted = x - x.max(axis=dim, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=dim, keepdims=True))


def softmax(input, dim):
    x = _f64(input)
    if x.size == 0:
        return _result(x, input)
    return _result(np.exp(_log_softmax(x, dim)), input)


def softmax_backward(grad_output, output, dim):
    y, g = _f64(output), _f64(grad_output)
    if y.ndim == 0:
        return _result(g - g, grad_output)
    return _result(y * (g - (g * y).sum(axis=dim, keepdims=True)), grad_output)


def log_softmax(input, dim):
    x = _f64(input)
    if x.size == 0:
        return _result(x, input)
    return _result(_log_softmax(x, dim), input)


def log_softmax_backward(grad_output, output, dim):
    y, g = _f64(output), _f64(grad_output)
    if y.ndim == 0:
        return _result(g - g, grad_output)
    return _result(g - np.exp(y) * g.sum(axis=dim, keepdims=True), grad_output)
