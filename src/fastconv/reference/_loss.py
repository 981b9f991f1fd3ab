"""Cross-entropy with integer labels in plain NumPy: log-softmax, then the
coefficient matrix A (label smoothing and class weights) and -sum(A * logp)."""
import numpy as np


def _rows(input, target, weight, ignore_index, label_smoothing):
    """Logits as (M, C) rows, per-position shape, coefficients A (M, C), and
    the summed weights of the counted positions."""
    x = np.asarray(input, dtype=np.float64)
    unbatched = x.ndim == 1
    c = x.shape[0] if unbatched else x.shape[1]
    rows = x.reshape(1, c) if unbatched else np.moveaxis(x, 1, -1).reshape(-1, c)
    labels = np.asarray(target).reshape(-1).astype(np.int64)
    w = np.ones(c) if weight is None else np.asarray(weight, dtype=np.float64)
    valid = labels != ignore_index
    safe = np.where(valid, labels, 0)
    eps = label_smoothing
    coeff = np.outer(valid, w) * (eps / c if c else 0.0)
    coeff[np.arange(len(labels)), safe] += (1 - eps) * w[safe] * valid
    divisor = (w[safe] * valid).sum()
    per_shape = () if unbatched else (x.shape[0],) + x.shape[2:]
    return x, rows, per_shape, coeff, divisor


def _log_softmax_rows(rows):
    if rows.size == 0:
        return rows.copy()
    shifted = rows - rows.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def cross_entropy(input, target, weight=None, *, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0):
    x, rows, per_shape, coeff, divisor = _rows(input, target, weight, ignore_index,
                                               label_smoothing)
    losses = -(coeff * _log_softmax_rows(rows)).sum(axis=1)
    dtype = np.asarray(input).dtype.newbyteorder("=")
    if reduction == "none":
        return losses.reshape(per_shape).astype(dtype)
    total = losses.sum()
    if reduction == "mean":
        total = total / divisor if divisor else np.nan
    return np.asarray(total, dtype=dtype)


def cross_entropy_backward(grad_output, input, target, weight=None, *, ignore_index=-100,
                           reduction="mean", label_smoothing=0.0):
    x, rows, per_shape, coeff, divisor = _rows(input, target, weight, ignore_index,
                                               label_smoothing)
    g = np.asarray(grad_output, dtype=np.float64)
    if reduction == "none":
        g = g.reshape(-1, 1)
    elif reduction == "mean":
        g = g / divisor if divisor else np.nan
    probs = np.exp(_log_softmax_rows(rows))
    grad_rows = (coeff.sum(axis=1, keepdims=True) * probs - coeff) * g
    dtype = np.asarray(input).dtype.newbyteorder("=")
    if not per_shape:
        return grad_rows.reshape(x.shape).astype(dtype)
    grad = np.moveaxis(grad_rows.reshape((x.shape[0],) + x.shape[2:] + (x.shape[1],)), -1, 1)
    return np.ascontiguousarray(grad, dtype=dtype)
