"""Cross-entropy on logits with integer class labels, as
torch.nn.functional.cross_entropy, and its backward: one C kernel per
direction (row max, exp-sum, log-sum-exp, loss; gradient softmax - onehot,
scaled), never materialising the log-probabilities.

Arguments after `weight` are keyword-only: PyTorch's positional order still
has the deprecated ``size_average`` and ``reduce`` there.
"""
from __future__ import annotations

from math import prod
from typing import Literal, Optional

import numpy as np

from .. import _args, _kernels, _threads
from .._types import Array, ArrayLike

_REDUCTIONS = ("none", "mean", "sum")


def _problem(op, input, target, weight, ignore_index, reduction, label_smoothing):
    """Checked arguments: (x, labels int64 flat, weight or None, outer,
    classes, inner, per-position shape, ignore_index, label_smoothing)."""
    x = _args.as_float_array(input, "input", op)
    if x.ndim == 0:
        raise ValueError(f"{op}: input must be (N, C, *) or unbatched (C,) logits, "
                         f"got a 0-d array")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: reduction must be 'none', 'mean' or 'sum', "
                         f"got reduction={reduction!r}")
    ignore = _args.as_int(ignore_index, "ignore_index", op)
    eps = _args.as_real(label_smoothing, "label_smoothing", op, 0.0, 1.0)
    if target is None or isinstance(target, (bool, np.bool_)):
        raise TypeError(f"{op}: target must be an array of integer class labels, "
                        f"got {target!r}")
    t = np.asarray(target)
    if t.dtype.kind not in "iu":
        raise TypeError(f"{op}: target must hold integer class labels, got dtype "
                        f"{t.dtype} (class-probability targets: nn.CrossEntropyLoss)")
    per_shape = () if x.ndim == 1 else (x.shape[0],) + x.shape[2:]
    if t.shape != per_shape:
        raise ValueError(f"{op}: input (logits) of shape {x.shape} needs a target of shape "
                         f"{per_shape}, got shape {t.shape}")
    classes = x.shape[0] if x.ndim == 1 else x.shape[1]
    labels = np.ascontiguousarray(t, dtype=np.int64).reshape(-1)
    if t.dtype.kind == "u" and t.size and t.max() > np.iinfo(np.int64).max:
        raise ValueError(f"{op}: target labels must be in [0, {classes}), got {t.max()}")
    bad = (labels != ignore) & ((labels < 0) | (labels >= classes))
    if bad.any():
        raise ValueError(f"{op}: target labels must be in [0, {classes}) (or ignore_index="
                         f"{ignore}), got {labels[bad][0]}")
    w = None
    if weight is not None:
        w = _args.as_float_array(weight, "weight", op)
        _args.same_dtype(op, input=x, weight=w)
        if w.shape != (classes,):
            raise ValueError(f"{op}: weight must be 1-D with one value per class "
                             f"({classes}), got shape {w.shape}")
        w = _args.contiguous(np.asarray(w))
    outer = 1 if x.ndim == 1 else x.shape[0]
    inner = prod(x.shape[2:])
    xs = _args.contiguous(np.asarray(x))
    return xs, labels, w, outer, classes, inner, per_shape, ignore, eps


def cross_entropy(input: ArrayLike, target: ArrayLike, weight: Optional[ArrayLike] = None,
                  *, ignore_index: int = -100,
                  reduction: Literal["none", "mean", "sum"] = "mean",
                  label_smoothing: float = 0.0) -> Array:
    """Cross-entropy between logits and integer class labels, as
    torch.nn.functional.cross_entropy: log-softmax over the classes (dim 1,
    or dim 0 of unbatched (C,) logits) then the weighted negative
    log-likelihood, with label smoothing eps: each position's loss is
    -sum_c A_c * log_softmax_c with A_c = (1 - eps) * w_t * [c == t] +
    eps / C * w_c.

    Args:
        input: float32 or float64 logits (N, C), (N, C, d1, ...) or (C,).
        target: integer labels (N,), (N, d1, ...) or 0-d, each in [0, C) or
            equal to ignore_index.
        weight: optional 1-D array of C class weights (the input's dtype).
        ignore_index: label whose positions count for nothing (default -100).
        reduction: 'none' (per-position losses), 'mean' (their sum divided by
            the summed weights w[target] of the positions not ignored; NaN
            when there are none, as PyTorch) or 'sum'.
        label_smoothing: eps in [0, 1].

    Returns:
        For 'mean' and 'sum' a 0-d array of the input's dtype; for 'none' a
        fresh array of the target's shape.

    Raises:
        TypeError: input or weight None or not float, of different dtypes;
            target not integer; ignore_index not an int; label_smoothing not
            a real.
        ValueError: target of the wrong shape or with a label outside [0, C);
            weight not (C,); reduction unknown; label_smoothing outside [0, 1].
    """
    op = "cross_entropy"
    x, labels, w, outer, classes, inner, per_shape, ignore, eps = _problem(
        op, input, target, weight, ignore_index, reduction, label_smoothing)
    losses = np.empty(per_shape, x.dtype)
    total_weight = _kernels.cross_entropy(x.reshape(-1), labels, w, outer, classes, inner,
                                          ignore, eps, losses.reshape(-1),
                                          _threads.get_num_threads())
    if reduction == "none":
        return losses
    total = losses.sum(dtype=np.float64)
    if reduction == "mean":
        total = total / total_weight if total_weight else np.nan
    return np.asarray(total, dtype=x.dtype)


def cross_entropy_backward(grad_output: ArrayLike, input: ArrayLike, target: ArrayLike,
                           weight: Optional[ArrayLike] = None, *, ignore_index: int = -100,
                           reduction: Literal["none", "mean", "sum"] = "mean",
                           label_smoothing: float = 0.0) -> Array:
    """Gradient of cross_entropy with respect to its input (the logits):
    grad_output times (sum(A) * softmax - A) at each position (A as in
    cross_entropy), divided by the summed weights for 'mean'; 0 at ignored
    positions.

    Args:
        grad_output: the gradient of the loss with respect to cross_entropy's
            result: a real scalar (or 0-d array) for 'mean' and 'sum', an
            array of the target's shape for 'none'.
        input: the forward's logits (N, C), (N, C, d1, ...) or (C,).
        target: the forward's integer labels.
        weight: the forward's class weights, or None.
        ignore_index: the forward's ignore_index.
        reduction: the forward's reduction.
        label_smoothing: the forward's label_smoothing.

    Returns:
        grad_input: a fresh C-contiguous array of the input's shape and dtype.

    Raises:
        TypeError: as cross_entropy; grad_output not float (or, for
            'mean'/'sum', not a real scalar).
        ValueError: as cross_entropy; grad_output of the wrong shape.
    """
    op = "cross_entropy_backward"
    x, labels, w, outer, classes, inner, per_shape, ignore, eps = _problem(
        op, input, target, weight, ignore_index, reduction, label_smoothing)
    if reduction == "none":
        g = _args.as_float_array(grad_output, "grad_output", op)
        _args.same_dtype(op, grad_output=g, input=x)
        if g.shape != per_shape:
            raise ValueError(f"{op}: grad_output must have the target's shape {per_shape} "
                             f"for reduction='none', got shape {g.shape}")
        grad = _args.contiguous(np.asarray(g)).reshape(-1)
    else:
        if isinstance(grad_output, np.ndarray):
            if grad_output.shape != () or grad_output.dtype.kind != "f":
                raise TypeError(f"{op}: grad_output must be a real scalar for "
                                f"reduction={reduction!r}, got shape {grad_output.shape} "
                                f"dtype {grad_output.dtype}")
            value = float(grad_output)
        else:
            value = _args.as_real(grad_output, "grad_output", op)
        if reduction == "mean":
            valid = labels != ignore
            divisor = (np.count_nonzero(valid) if w is None
                       else w[labels[valid]].sum(dtype=np.float64))
            value = value / divisor if divisor else np.nan
        grad = np.full(1, value, x.dtype)
    grad_input = np.empty(x.shape, x.dtype)
    if x.size:
        _kernels.cross_entropy_backward(grad, x.reshape(-1), labels, w, outer, classes,
                                        inner, ignore, eps, grad_input.reshape(-1),
                                        _threads.get_num_threads())
    return grad_input
