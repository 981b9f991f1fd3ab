"""Batch normalisation in plain NumPy, textbook style: the statistics with
np.mean / np.var over every axis but the channel axis, then the formula."""
import numpy as np


def _axes(x):
    return (0,) + tuple(range(2, x.ndim))


def _channel(v, x):
    """A per-channel vector shaped to broadcast along x's axis 1."""
    return np.asarray(v).reshape((1, -1) + (1,) * (x.ndim - 2))


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """(x - mean) / sqrt(var + eps) * weight + bias; in training the batch
    statistics, with the running ones updated in place (unbiased variance)."""
    x = np.asarray(input)
    if training:
        mean, var = x.mean(axis=_axes(x)), x.var(axis=_axes(x))
        count = x.size // max(x.shape[1], 1)
        if running_mean is not None and x.size:
            running_mean *= 1 - momentum
            running_mean += momentum * mean
            running_var *= 1 - momentum
            running_var += momentum * var * count / (count - 1)
    else:
        mean, var = np.asarray(running_mean), np.asarray(running_var)
    y = (x - _channel(mean, x)) / np.sqrt(_channel(var, x) + eps)
    if weight is not None:
        y = y * _channel(weight, x)
    if bias is not None:
        y = y + _channel(bias, x)
    return y.astype(x.dtype)


def batch_norm_backward(grad_output, input, running_mean, running_var, weight=None,
                        training=False, eps=1e-5):
    """(grad_input, grad_weight, grad_bias) by the chain rule through the
    formula, the batch statistics' own gradient included in training."""
    x, g = np.asarray(input), np.asarray(grad_output)
    axes = _axes(x)
    if training:
        mean, var = x.mean(axis=axes), x.var(axis=axes)
    else:
        mean, var = np.asarray(running_mean), np.asarray(running_var)
    invstd = 1 / np.sqrt(var + eps)
    xhat = (x - _channel(mean, x)) * _channel(invstd, x)
    w = np.ones(x.shape[1], x.dtype) if weight is None else np.asarray(weight)
    grad_bias = g.sum(axis=axes)
    grad_weight = (g * xhat).sum(axis=axes)
    grad_xhat = g * _channel(w, x)
    if training:
        count = x.size // max(x.shape[1], 1)
        # d/dx of xhat with the batch mean and variance depending on x
        grad_input = _channel(invstd, x) * (
            grad_xhat - _channel(grad_xhat.mean(axis=axes), x)
            - xhat * _channel((grad_xhat * xhat).sum(axis=axes) / count, x))
    else:
        grad_input = grad_xhat * _channel(invstd, x)
    return (grad_input.astype(x.dtype), grad_weight.astype(x.dtype),
            grad_bias.astype(x.dtype))


def batch_norm_relu(input, running_mean, running_var, weight=None, bias=None,
                    training=False, momentum=0.1, eps=1e-5):
    """max(batch_norm(...), 0), NaN staying NaN."""
    y = batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)
    return np.where(y < 0, y.dtype.type(0), y)


def batch_norm_relu_backward(grad_output, output, input, running_mean, running_var,
                             weight=None, training=False, eps=1e-5):
    """batch_norm_backward of the gradient masked by output > 0 (ReLU's)."""
    g = np.asarray(grad_output)
    masked = np.where(np.asarray(output) > 0, g, g.dtype.type(0))
    return batch_norm_backward(masked, input, running_mean, running_var, weight, training, eps)
