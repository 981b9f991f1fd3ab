"""Batch normalisation forward and backward, with PyTorch's semantics
(torch.nn.functional.batch_norm).

The C kernel (csrc/batchnorm_template.h) sees the input as (N, C, S), S the
product of the spatial sizes, and works per channel: statistics (one pass,
shifted sums in double) and output in one call, the gradient sums and the
input gradient in another.  The statistics are float64 vectors whatever the
dtype.  The private helpers below are the layers' entry points
(fastconv.nn.BatchNorm*): they keep the statistics and the gradient sums
separable from the normalisation, so a caller that reduces them over several
processes (SyncBatchNorm) can pass its own in.

batch_norm_relu and batch_norm_relu_backward are BatchNorm followed by ReLU
in the same kernel calls: the forward clamps the output it writes anyway
(no second pass over the activation), and the backward masks the gradient
by that output inside its two passes (no masked gradient array).  They
check their arguments exactly as batch_norm does (the same helpers) and
give the same results to the bit as batch_norm then relu.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from .. import _args, _kernels, _threads
from .._types import Array, ArrayLike, Grads

_LAYOUT = "2-D (N, C), 3-D (N, C, L), 4-D (N, C, H, W) or 5-D (N, C, D, H, W)"


def _input(op: str, value: ArrayLike, name: str) -> Array:
    x = _args.as_float_array(value, name, op)
    if not 2 <= x.ndim <= 5:
        raise ValueError(f"{op}: {name} must be {_LAYOUT}, got shape {x.shape}")
    return x


def _vector(op: str, value: Optional[ArrayLike], name: str, channels: int) -> Optional[Array]:
    """A per-channel array of shape (channels,), or None."""
    if value is None:
        return None
    v = _args.as_float_array(value, name, op)
    if v.shape != (channels,):
        raise ValueError(f"{op}: {name} must have shape ({channels},) (one value per channel "
                         f"of input), got shape {v.shape}")
    return v


def _running(op, running_mean, running_var, channels, training):
    """The running statistics (both or neither None), checked; in training
    they must be writable ndarrays, since they are updated in place."""
    if (running_mean is None) != (running_var is None):
        given = "running_mean" if running_var is None else "running_var"
        raise ValueError(f"{op}: running_mean and running_var must both be arrays or both "
                         f"be None, got only {given}")
    if running_mean is None:
        if not training:
            raise ValueError(f"{op}: running_mean and running_var must be given when "
                             f"training=False (eval normalises with them)")
        return None, None
    stats = []
    for name, value in (("running_mean", running_mean), ("running_var", running_var)):
        v = _vector(op, value, name, channels)
        if training and not isinstance(value, np.ndarray):
            raise TypeError(f"{op}: {name} must be an ndarray when training=True (it is "
                            f"updated in place), got {type(value).__name__}")
        if training and not v.flags.writeable:
            raise ValueError(f"{op}: {name} must be writable when training=True (it is "
                             f"updated in place)")
        stats.append(v)
    return stats[0], stats[1]


def _view(x: Array) -> Tuple[int, int, int]:
    """(N, C, S): the kernel's view of a (N, C, *spatial) array."""
    n, c = x.shape[:2]
    return n, c, int(np.prod(x.shape[2:], dtype=np.int64))


def _per_channel(v: Optional[Array], channels: int, dtype, fill: float) -> Array:
    if v is None:
        return np.full(channels, fill, dtype)
    return _args.contiguous(v)


def _normalize(x: Array, weight: Optional[Array], bias: Optional[Array], eps: float,
               mean: Optional[np.ndarray] = None, var: Optional[np.ndarray] = None,
               relu: bool = False) -> Tuple[Array, np.ndarray, np.ndarray]:
    """(y, mean, var) for a validated C-contiguous x: y normalised with the
    given float64 mean and (biased) var, or with x's batch statistics
    (computed in the same kernel call and returned) when they are None;
    with relu, y is then max(y, 0) from the same pass.  An empty x gives NaN
    batch statistics, as the mean of nothing."""
    n, c, s = _view(x)
    y = np.empty(x.shape, x.dtype)
    compute = mean is None
    if compute:
        mean, var = np.full(c, np.nan), np.full(c, np.nan)
        if x.size == 0:
            return y, mean, var
    else:
        # copies: the kernel's statistics buffers are writable (read-only
        # running statistics in eval are fine)
        mean, var = np.array(mean, np.float64), np.array(var, np.float64)
    _kernels.batch_norm_forward(x.reshape(-1), n, c, s, compute, mean, var,
                                _per_channel(weight, c, x.dtype, 1),
                                _per_channel(bias, c, x.dtype, 0), eps, relu, y.reshape(-1),
                                _threads.get_num_threads())
    return y, mean, var


def _batch_statistics(x: Array) -> Tuple[np.ndarray, np.ndarray]:
    """(mean, biased var) of a validated C-contiguous, non-empty x, float64,
    without normalising."""
    n, c, s = _view(x)
    mean, var = np.empty(c), np.empty(c)
    _kernels.batch_norm_forward(x.reshape(-1), n, c, s, True, mean, var, np.ones(c, x.dtype),
                                np.zeros(c, x.dtype), 0.0, False, None,
                                _threads.get_num_threads())
    return mean, var


def _grad_sums(grad_output: Array, x: Array, mean: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Per channel sum(dy) and sum(dy * (x - mean)), float64, for validated
    C-contiguous arrays of one shape, without the input gradient."""
    n, c, s = _view(x)
    sum_dy, sum_dy_xmu = np.empty(c), np.empty(c)
    _kernels.batch_norm_backward(grad_output.reshape(-1), None, x.reshape(-1), n, c, s,
                                 np.ascontiguousarray(mean, np.float64), np.ones(c),
                                 np.ones(c, x.dtype), False, True, n * s, sum_dy, sum_dy_xmu,
                                 None, _threads.get_num_threads())
    return sum_dy, sum_dy_xmu


def _input_grad(grad_output: Array, x: Array, mean: np.ndarray, invstd: np.ndarray,
                weight: Optional[Array], batch_stats: bool,
                sums: Optional[Tuple[np.ndarray, np.ndarray]] = None,
                count: Optional[int] = None,
                relu_output: Optional[Array] = None) -> Tuple[Array, np.ndarray, np.ndarray]:
    """(grad_input, sum_dy, sum_dy_xmu) for validated C-contiguous arrays of
    one shape.  mean and invstd (float64) are the statistics the forward
    normalised with; batch_stats says whether they were x's own batch
    statistics (their gradient then flows into grad_input).  sums and count
    (the values per channel they cover) default to this x's own.  With
    relu_output (the fused forward's output), grad_output is ReLU's output
    gradient: dy is grad_output where relu_output > 0, else 0."""
    n, c, s = _view(x)
    gx = np.empty(x.shape, x.dtype)
    if sums is None:
        sum_dy, sum_dy_xmu = np.empty(c), np.empty(c)
    else:
        sum_dy, sum_dy_xmu = (np.array(v, np.float64) for v in sums)   # writable copies
    _kernels.batch_norm_backward(grad_output.reshape(-1),
                                 None if relu_output is None else relu_output.reshape(-1),
                                 x.reshape(-1), n, c, s,
                                 np.ascontiguousarray(mean, np.float64),
                                 np.ascontiguousarray(invstd, np.float64),
                                 _per_channel(weight, c, x.dtype, 1), batch_stats, sums is None,
                                 n * s if count is None else count, sum_dy, sum_dy_xmu,
                                 gx.reshape(-1), _threads.get_num_threads())
    return gx, sum_dy, sum_dy_xmu


def _update_running(running_mean: Array, running_var: Array, mean: np.ndarray,
                    var: np.ndarray, count: int, momentum: float) -> None:
    """running = (1 - momentum) * running + momentum * batch, in place, with
    the unbiased variance (count values per channel), as PyTorch."""
    unbiased = var * (count / (count - 1))
    for running, batch in ((running_mean, mean), (running_var, unbiased)):
        running *= 1 - momentum
        running += (momentum * batch).astype(running.dtype)


def _check_count(op: str, x: Array, count: int) -> None:
    if count == 1:
        raise ValueError(f"{op}: training needs more than 1 value per channel, got input "
                         f"shape {x.shape}")


def _common(op, input, running_mean, running_var, weight, bias, training, eps):
    """(x, running_mean, running_var, weight, bias, training, eps) checked."""
    x = _input(op, input, "input")
    training = _args.as_bool(training, "training", op)
    eps = _args.as_real(eps, "eps", op, low=0)
    c = x.shape[1]
    rm, rv = _running(op, running_mean, running_var, c, training)
    w, b = _vector(op, weight, "weight", c), _vector(op, bias, "bias", c)
    _args.same_dtype(op, input=x, running_mean=rm, running_var=rv, weight=w, bias=b)
    return x, rm, rv, w, b, training, eps


def _invstd(var: np.ndarray, eps: float) -> np.ndarray:
    """1 / sqrt(var + eps): inf where both are 0, as PyTorch (no warning)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return 1 / np.sqrt(var + eps)


def batch_norm(input: ArrayLike, running_mean: Optional[ArrayLike],
               running_var: Optional[ArrayLike], weight: Optional[ArrayLike] = None,
               bias: Optional[ArrayLike] = None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5) -> Array:
    """Batch normalisation of (N, C, *) input per channel, as
    torch.nn.functional.batch_norm:

        output = (input - mean) / sqrt(var + eps) * weight + bias

    with mean and (biased) var over every axis but the channel axis (1):
    the batch statistics when training, else running_mean and running_var.
    In training the running statistics (when given) are updated in place:
    running = (1 - momentum) * running + momentum * batch statistic, with the
    unbiased variance (times count / (count - 1)) going into running_var; an
    empty batch leaves them unchanged.  momentum=None (a cumulative average)
    is the layers' business: fastconv.nn.BatchNorm* pass
    1 / num_batches_tracked.

    Args:
        {forward_args}

    Returns:
        The normalised array of input's shape.

    Every array must be float32 or float64 of one dtype (array-likes of
    floats are accepted where nothing is written); any memory layout works
    and no argument but the running statistics is modified.  The result is
    a fresh C-contiguous array of the input's dtype.  Batch size 0 and
    channel count 0 are valid.

    Raises:
        TypeError: an array None (where not allowed) or not float32/float64;
            mixed dtypes; a running statistic that is not an ndarray in
            training; training not a bool; momentum or eps not a real number.
        ValueError: input not 2- to 5-D; a per-channel array not of shape
            (C,); only one running statistic given, or none with
            training=False; a read-only running statistic in training;
            training with one value per channel; momentum or eps not finite,
            eps negative.
    """
    return _forward("batch_norm", input, running_mean, running_var, weight, bias, training,
                    momentum, eps, relu=False)


def _forward(op, input, running_mean, running_var, weight, bias, training, momentum, eps,
             relu):
    """batch_norm (with relu, batch_norm_relu) as op, arguments checked."""
    x, rm, rv, w, b, training, eps = _common(op, input, running_mean, running_var, weight,
                                             bias, training, eps)
    momentum = _args.as_real(momentum, "momentum", op)
    x = _args.contiguous(x)
    n, c, s = _view(x)
    if not training:
        return _normalize(x, w, b, eps, rm, rv, relu)[0]
    _check_count(op, x, n * s)
    y, mean, var = _normalize(x, w, b, eps, relu=relu)
    if rm is not None and n * s > 0 and c > 0:
        _update_running(rm, rv, mean, var, n * s, momentum)
    return y


def batch_norm_backward(grad_output: ArrayLike, input: ArrayLike,
                        running_mean: Optional[ArrayLike], running_var: Optional[ArrayLike],
                        weight: Optional[ArrayLike] = None, training: bool = False,
                        eps: float = 1e-5) -> Grads:
    """Gradients of batch_norm with respect to its input, weight and bias.

    Takes the forward's arguments (bias and momentum play no part) and its
    output's gradient.  With training=True the statistics are input's batch
    statistics (recomputed here), and their own gradient flows into
    grad_input; with training=False they are running_mean and running_var,
    constants, so grad_input = grad_output * weight / sqrt(running_var + eps).

    Args:
        grad_output: array of input's shape, the gradient of the loss with
            respect to batch_norm's output.
        {backward_args}

    Returns:
        (grad_input, grad_weight, grad_bias): grad_input of input's shape;
        grad_weight = sum(grad_output * normalised input) and grad_bias =
        sum(grad_output) over every axis but 1, both (C,) (the gradients of
        a weight of ones and a bias of zeros when weight is None); fresh
        C-contiguous arrays of input's dtype.

    Raises:
        TypeError: an array None (where not allowed) or not float32/float64;
            mixed dtypes; training not a bool; eps not a real number.
        ValueError: input not 2- to 5-D; grad_output not of input's shape; a
            per-channel array not of shape (C,); only one running statistic
            given, or none with training=False; training with one value per
            channel; eps not finite or negative.
    """
    return _backward("batch_norm_backward", grad_output, None, input, running_mean,
                     running_var, weight, training, eps)


def _check_like_input(op, x, a, name):
    """The backward's arrays beside the input have its dtype and shape."""
    _args.same_dtype(op, **{"input": x, name: a})
    if a.shape != x.shape:
        raise ValueError(f"{op}: {name} must have input's shape {x.shape}, got {a.shape}")


def _backward(op, grad_output, output, input, running_mean, running_var, weight, training,
              eps):
    """batch_norm_backward (with the fused forward's output, not None:
    batch_norm_relu_backward) as op, arguments checked."""
    g = _args.as_float_array(grad_output, "grad_output", op)
    x, rm, rv, w, _, training, eps = _common(op, input, running_mean, running_var, weight,
                                             None, training, eps)
    _check_like_input(op, x, g, "grad_output")
    relu_output = None
    if output is not None:
        relu_output = _args.as_float_array(output, "output", op)
        _check_like_input(op, x, relu_output, "output")
        relu_output = _args.contiguous(relu_output)
    x, g = _args.contiguous(x), _args.contiguous(g)
    n, c, s = _view(x)
    if training:
        _check_count(op, x, n * s)
        mean, var = _batch_statistics(x) if x.size else (np.zeros(c), np.zeros(c))
    else:
        mean, var = rm.astype(np.float64), rv.astype(np.float64)
    invstd = _invstd(var, eps)
    gx, sum_dy, sum_dy_xmu = _input_grad(g, x, mean, invstd, w, training,
                                         relu_output=relu_output)
    return gx, (sum_dy_xmu * invstd).astype(x.dtype), sum_dy.astype(x.dtype)


def batch_norm_relu(input: ArrayLike, running_mean: Optional[ArrayLike],
                    running_var: Optional[ArrayLike], weight: Optional[ArrayLike] = None,
                    bias: Optional[ArrayLike] = None, training: bool = False,
                    momentum: float = 0.1, eps: float = 1e-5) -> Array:
    """relu(batch_norm(...)) in one pass over the output: BatchNorm followed
    by ReLU, as most CNNs use them, without the second pass (and second
    array) of a separate relu.

    Takes batch_norm's arguments, checks them as batch_norm does, updates
    the running statistics as batch_norm does, and returns exactly (to the
    bit) what ``relu(batch_norm(...))`` returns: max(normalised, 0), NaN
    staying NaN.  Keep the result for :func:`batch_norm_relu_backward`: it
    is also the ReLU's mask.

    Args:
        {forward_args}

    Returns:
        The normalised array after ReLU, of input's shape: a fresh
        C-contiguous array of input's dtype.

    Raises:
        TypeError: as batch_norm (an array None where not allowed or not
            float32/float64; mixed dtypes; a running statistic that is not
            an ndarray in training; training not a bool; momentum or eps not
            a real number).
        ValueError: as batch_norm (input not 2- to 5-D; a per-channel array
            not of shape (C,); only one running statistic given, or none
            with training=False; a read-only running statistic in training;
            training with one value per channel; momentum or eps not
            finite, eps negative).
    """
    return _forward("batch_norm_relu", input, running_mean, running_var, weight, bias,
                    training, momentum, eps, relu=True)


def batch_norm_relu_backward(grad_output: ArrayLike, output: ArrayLike, input: ArrayLike,
                             running_mean: Optional[ArrayLike],
                             running_var: Optional[ArrayLike],
                             weight: Optional[ArrayLike] = None, training: bool = False,
                             eps: float = 1e-5) -> Grads:
    """Gradients of batch_norm_relu with respect to its input, weight and
    bias: ``batch_norm_backward(relu_backward(grad_output, output), input,
    ...)`` without the masked gradient array (the mask is applied inside
    batch norm's two passes), equal to it to the bit.

    Args:
        grad_output: array of input's shape, the gradient of the loss with
            respect to batch_norm_relu's output.
        output: batch_norm_relu's output (its ReLU mask: the gradient flows
            where output > 0).
        {backward_args}

    Returns:
        (grad_input, grad_weight, grad_bias) as batch_norm_backward's, for
        the gradient through the ReLU: grad_input of input's shape,
        grad_weight and grad_bias (C,); fresh C-contiguous arrays of
        input's dtype.

    Raises:
        TypeError: as batch_norm_backward (an array None where not allowed
            or not float32/float64; mixed dtypes, output's included;
            training not a bool; eps not a real number).
        ValueError: as batch_norm_backward (input not 2- to 5-D;
            grad_output or output not of input's shape; a per-channel array
            not of shape (C,); only one running statistic given, or none
            with training=False; training with one value per channel; eps
            not finite or negative).
    """
    if output is None:   # None means "no ReLU" to _backward: refuse it here
        raise TypeError("batch_norm_relu_backward: output must be batch_norm_relu's output "
                        "array, got None")
    return _backward("batch_norm_relu_backward", grad_output, output, input, running_mean,
                     running_var, weight, training, eps)


# The arguments the plain and fused ops share, documented once.
_FORWARD_ARGS = """input: (N, C), (N, C, L), (N, C, H, W) or (N, C, D, H, W) array.
        running_mean, running_var: (C,) arrays, or both None (only with
            training=True); with training=True writable ndarrays of input's
            dtype, updated in place.
        weight: (C,) array (gamma), or None for ones.
        bias: (C,) array (beta), or None for zeros.
        training: True to normalise with the batch statistics (and update
            the running ones), False to use running_mean and running_var.
        momentum: the running statistics' update factor, a finite real.
        eps: added to the variance, a finite real >= 0."""
_BACKWARD_ARGS = """input: the forward's (N, C, *) input.
        running_mean, running_var: the forward's (C,) arrays (read only
            here), or both None with training=True.
        weight: the forward's (C,) weight, or None (ones).
        training: the forward's training flag.
        eps: the forward's eps."""
for _fn in (batch_norm, batch_norm_backward, batch_norm_relu, batch_norm_relu_backward):
    _fn.__doc__ = _fn.__doc__.format(forward_args=_FORWARD_ARGS, backward_args=_BACKWARD_ARGS)
