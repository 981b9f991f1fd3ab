"""Fully connected layer in plain NumPy: y = x W^T + b and its gradients,
each product one np.dot in float64 over the leading axes flattened."""
from math import prod

import numpy as np


def linear(input, weight, bias=None):
    x, w = np.asarray(input), np.asarray(weight)
    rows = x.reshape(prod(x.shape[:-1]), x.shape[-1]).astype(np.float64)
    y = np.dot(rows, w.astype(np.float64).T)
    if bias is not None:
        y += np.asarray(bias, np.float64)
    return y.astype(x.dtype.type).reshape(x.shape[:-1] + (w.shape[0],))


def linear_backward(grad_output, input, weight, *, input_grad=True):
    g, x, w = np.asarray(grad_output), np.asarray(input), np.asarray(weight)
    dtype = x.dtype.type
    g2 = g.reshape(prod(g.shape[:-1]), w.shape[0]).astype(np.float64)
    x2 = x.reshape(prod(x.shape[:-1]), w.shape[1]).astype(np.float64)
    grad_input = np.dot(g2, w.astype(np.float64)).reshape(x.shape)
    grad_weight = np.dot(g2.T, x2)
    grad_bias = g2.sum(axis=0)
    return (grad_input.astype(dtype) if input_grad else None, grad_weight.astype(dtype),
            grad_bias.astype(dtype))
