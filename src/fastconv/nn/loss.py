"""Losses, as torch.nn's: CrossEntropyLoss, NLLLoss, BCELoss,
BCEWithLogitsLoss, MSELoss, L1Loss, SmoothL1Loss.

``forward(input, target)`` returns a float with reduction='mean' (the default)
or 'sum', and an array of per-element losses with reduction='none'.
``backward(grad_output=None)`` returns the gradient with respect to `input`:
grad_output is a scalar for 'mean'/'sum' and an array of the per-element
shape for 'none' (default: ones). Like every Module, a loss keeps one cache
per forward call, consumed by backward in reverse order.

Arguments after the first are keyword-only: PyTorch's positional order still
has the deprecated ``size_average`` and ``reduce``, so a positional call that
means something in PyTorch would mean something else here.
"""
from typing import NamedTuple

import numpy as np

from .. import _args
from . import _checks
from .module import Module, is_grad_enabled

__all__ = ["CrossEntropyLoss", "NLLLoss", "BCELoss", "BCEWithLogitsLoss", "MSELoss",
           "L1Loss", "SmoothL1Loss"]


class _Loss(Module):
    """forward = per-element losses (from _elementwise) reduced; backward =
    the per-element gradient (from _grad) times grad_output."""

    def __init__(self, reduction="mean"):
        super().__init__()
        self.reduction = _checks.choice(reduction, "reduction", type(self).__name__,
                                        ("none", "mean", "sum"))

    def _elementwise(self, input, target):
        """(per-element losses, the divisor of 'mean', ctx for _grad)."""
        raise NotImplementedError

    def _grad(self, ctx, grad_elements):
        """d(sum(losses * grad_elements)) / d input."""
        raise NotImplementedError

    def forward(self, input, target):
        losses, divisor, ctx = self._elementwise(input, target)
        if self.reduction == "none":
            self._save((ctx, divisor, losses.shape), losses)
            return losses
        total = losses.sum(dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):     # empty: NaN, as PyTorch
            value = float(total / divisor) if self.reduction == "mean" else float(total)
        self._save((ctx, divisor, losses.shape), np.zeros((), losses.dtype))
        return value

    def backward(self, grad_output=None):
        owner = f"{type(self).__name__}.backward"
        if self._pending:
            _, shape, dtype, _ = self._pending[-1]
            if grad_output is None:
                grad_output = np.ones(shape, dtype)
            elif self.reduction != "none":
                g = np.asarray(_checks.plain_array(grad_output, "grad_output", owner))
                if g.shape != () or g.dtype.kind not in "fiu":
                    raise TypeError(f"{owner}: grad_output must be a real scalar for "
                                    f"reduction={self.reduction!r}, got {grad_output!r:.60}")
                grad_output = g.astype(dtype)
        (ctx, divisor, shape), g = self._restore(grad_output)
        if self.reduction == "mean":
            g = np.full(shape, g / divisor if divisor else np.nan, g.dtype)
        elif self.reduction == "sum":
            g = np.full(shape, g, g.dtype)
        return self._grad(ctx, g)

    def extra_repr(self):
        return f"reduction={self.reduction!r}"


def _same_shape_pair(owner, input, target):
    x = _checks.float_input(input, owner)
    t = _checks.float_input(target, owner, "target")
    _args.same_dtype(owner, input=x, target=t)
    if x.shape != t.shape:
        raise ValueError(f"{owner}: input shape {x.shape} and target shape {t.shape} "
                         f"differ (no broadcasting)")
    return x, t


class MSELoss(_Loss):
    """(input - target)^2 per element."""

    def __init__(self, *, reduction="mean"):
        super().__init__(reduction)

    def _elementwise(self, input, target):
        x, t = _same_shape_pair("MSELoss", input, target)
        diff = x - t
        return diff * diff, diff.size, diff

    def _grad(self, diff, g):
        return 2 * diff * g


class L1Loss(_Loss):
    """|input - target| per element (gradient sign(diff), 0 at 0)."""

    def __init__(self, *, reduction="mean"):
        super().__init__(reduction)

    def _elementwise(self, input, target):
        x, t = _same_shape_pair("L1Loss", input, target)
        diff = x - t
        return np.abs(diff), diff.size, np.sign(diff)

    def _grad(self, sign, g):
        return sign * g


class SmoothL1Loss(_Loss):
    """0.5 * diff^2 / beta where |diff| < beta, else |diff| - 0.5 * beta
    (beta=0: L1)."""

    def __init__(self, *, reduction="mean", beta=1.0):
        super().__init__(reduction)
        self.beta = _checks.real(beta, "beta", "SmoothL1Loss", low=0)

    def _elementwise(self, input, target):
        x, t = _same_shape_pair("SmoothL1Loss", input, target)
        diff = x - t
        absdiff = np.abs(diff)
        if self.beta == 0:
            return absdiff, diff.size, np.sign(diff)
        quadratic = absdiff < self.beta
        losses = np.where(quadratic, 0.5 * diff * diff / self.beta, absdiff - 0.5 * self.beta)
        slope = np.where(quadratic, diff / self.beta, np.sign(diff))
        return losses.astype(x.dtype, copy=False), diff.size, slope.astype(x.dtype, copy=False)

    def _grad(self, slope, g):
        return slope * g

    def extra_repr(self):
        return f"reduction={self.reduction!r}, beta={self.beta}"


def _optional_weight(weight, owner, name="weight"):
    if weight is None:
        return None
    return np.array(_checks.float_input(weight, owner, name), copy=True)


def _broadcast_weight(weight, shape, dtype, owner, name="weight"):
    if weight is None:
        return None
    try:
        return np.broadcast_to(weight.astype(dtype, copy=False), shape)
    except ValueError:
        raise ValueError(f"{owner}: {name} of shape {weight.shape} does not broadcast to "
                         f"the input's shape {shape}") from None


class BCELoss(_Loss):
    """-weight * (t * log(p) + (1 - t) * log(1 - p)) on probabilities p in
    [0, 1]; each log is clamped at -100, as PyTorch does."""

    def __init__(self, weight=None, *, reduction="mean"):
        super().__init__(reduction)
        self.register_buffer("weight", _optional_weight(weight, "BCELoss"))

    def _elementwise(self, input, target):
        p, t = _same_shape_pair("BCELoss", input, target)
        if p.size and not (p.min() >= 0 and p.max() <= 1):
            raise ValueError("BCELoss: every input element must be a probability in [0, 1]")
        w = _broadcast_weight(self.weight, p.shape, p.dtype, "BCELoss")
        with np.errstate(divide="ignore"):
            losses = -(t * np.maximum(np.log(p), -100) + (1 - t) * np.maximum(np.log1p(-p),
                                                                                -100))
        if w is not None:
            losses = losses * w
        return losses, p.size, (p, t, w)

    def _grad(self, ctx, g):
        p, t, w = ctx
        eps = p.dtype.type(1e-12)               # PyTorch's clamp of the denominator
        grad = (p - t) / np.maximum((1 - p) * p, eps) * g
        return grad if w is None else grad * w


class BCEWithLogitsLoss(_Loss):
    """BCELoss(sigmoid(x)) in a stable form: -weight * (pos_weight * t *
    log(sigmoid(x)) + (1 - t) * log(1 - sigmoid(x))); pos_weight broadcasts
    along the last dim (classes), as PyTorch."""

    def __init__(self, weight=None, *, reduction="mean", pos_weight=None):
        super().__init__(reduction)
        self.register_buffer("weight", _optional_weight(weight, "BCEWithLogitsLoss"))
        self.register_buffer("pos_weight", _optional_weight(pos_weight, "BCEWithLogitsLoss",
                                                            "pos_weight"))

    def _elementwise(self, input, target):
        owner = "BCEWithLogitsLoss"
        x, t = _same_shape_pair(owner, input, target)
        w = _broadcast_weight(self.weight, x.shape, x.dtype, owner)
        pw = _broadcast_weight(self.pos_weight, x.shape, x.dtype, owner, "pos_weight")
        log_weight = 1 if pw is None else (pw - 1) * t + 1
        # softplus(-x) = log(1 + exp(-x)), without overflow for any x
        softplus_neg = np.log1p(np.exp(-np.abs(x))) + np.maximum(-x, 0)
        losses = (1 - t) * x + log_weight * softplus_neg
        if w is not None:
            losses = losses * w
        return losses, x.size, (x, t, w, log_weight)

    def _grad(self, ctx, g):
        x, t, w, log_weight = ctx
        sigmoid_neg = (1 - np.tanh(x * 0.5)) * 0.5          # sigmoid(-x)
        grad = ((1 - t) - log_weight * sigmoid_neg) * g
        return grad if w is None else grad * w


class _ClassLoss(_Loss):
    """Losses over a class dim: input (N, C, d1, ...), (N, C) or unbatched
    (C,); target class indices (N, d1, ...) or, for CrossEntropyLoss, class
    probabilities of the input's shape."""

    def __init__(self, weight, ignore_index, reduction):
        super().__init__(reduction)
        name = type(self).__name__
        self.register_buffer("weight", _optional_weight(weight, name))
        if self.weight is not None and self.weight.ndim != 1:
            raise ValueError(f"{name}: weight must be 1-D (one per class), "
                             f"got shape {self.weight.shape}")
        self.ignore_index = _args.as_int(ignore_index, "ignore_index", name)

    def _rows(self, input, target, allow_probabilities):
        """The input as (M, C) rows (class last), the target as (M,) int labels
        or (M, C) probabilities, per-element shape, class weights (C,)."""
        name = type(self).__name__
        x = _checks.float_input(input, name)
        t = np.asarray(_checks.plain_array(target, "target", name))
        if x.ndim == 0:
            raise ValueError(f"{name}: input must be (N, C, ...) or (C,) logits, got a scalar")
        c = x.shape[0] if x.ndim == 1 else x.shape[1]
        per_shape = () if x.ndim == 1 else (x.shape[0],) + x.shape[2:]
        rows = np.moveaxis(x, 0 if x.ndim == 1 else 1, -1).reshape(-1, c)
        weight = (np.ones(c, x.dtype) if self.weight is None
                  else self.weight.astype(x.dtype, copy=False))
        if weight.shape != (c,):
            raise ValueError(f"{name}: weight has {weight.shape[0]} entries but the input "
                             f"has C={c} classes")
        if t.dtype.kind == "f" and allow_probabilities and t.shape == x.shape:
            _args.same_dtype(name, input=x, target=t)
            probs = np.moveaxis(t, 0 if x.ndim == 1 else 1, -1).reshape(-1, c)
            return rows, probs, per_shape, weight
        if t.dtype.kind not in "iu":
            what = " or class probabilities of the input's shape" if allow_probabilities else ""
            raise TypeError(f"{name}: target must hold integer class labels{what}, "
                            f"got dtype {t.dtype} and shape {t.shape}")
        if t.shape != per_shape:
            raise ValueError(f"{name}: input (logits) of shape {x.shape} needs a target of "
                             f"shape {per_shape}, got shape {t.shape}")
        labels = t.reshape(-1).astype(np.int64)
        valid = labels != self.ignore_index
        bad = valid & ((labels < 0) | (labels >= c))
        if bad.any():
            raise ValueError(f"{name}: target labels must be in [0, {c}) (or ignore_index="
                             f"{self.ignore_index}), got {labels[bad][0]}")
        return rows, labels, per_shape, weight

    @staticmethod
    def _label_weights(labels, weight, ignore_index):
        """Each row's label (0 where ignored), its weight (0 where ignored) and
        whether it counts."""
        valid = labels != ignore_index
        safe = np.where(valid, labels, 0)
        return safe, weight[safe] * valid, valid

    def _to_input_layout(self, grad_rows, per_shape):
        c = grad_rows.shape[1]
        if not per_shape:
            return grad_rows.reshape(c)
        grad = grad_rows.reshape(per_shape[:1] + per_shape[1:] + (c,))
        return np.ascontiguousarray(np.moveaxis(grad, -1, 1))


class _LabelsCtx(NamedTuple):
    """What CrossEntropyLoss's backward needs for integer labels."""
    backend: object
    input: np.ndarray
    labels: np.ndarray
    weight: object
    options: dict


class CrossEntropyLoss(_ClassLoss):
    """log-softmax + negative log-likelihood, as torch.nn.CrossEntropyLoss:
    class weights, ignore_index (labels only), label_smoothing, and targets as
    labels or as probabilities. 'mean' divides by the summed weights of the
    non-ignored labels (by the number of elements for probabilities)."""

    def __init__(self, weight=None, *, ignore_index=-100, reduction="mean",
                 label_smoothing=0.0):
        super().__init__(weight, ignore_index, reduction)
        self.label_smoothing = _checks.real(label_smoothing, "label_smoothing",
                                            "CrossEntropyLoss", 0, 1)

    def _elementwise(self, input, target):
        t = np.asarray(_checks.plain_array(target, "target", "CrossEntropyLoss"))
        if t.dtype.kind in "iu":
            return self._label_losses(input, t)
        rows, t, per_shape, weight = self._rows(input, target, allow_probabilities=True)
        m, c = rows.shape
        eps = self.label_smoothing
        # Probabilities: loss = -sum_c A[:, c] * log_softmax[:, c] for the
        # coefficient matrix A, whose gradient is sum(A) * softmax - A.
        coeff = ((t * (1 - eps) + eps / max(c, 1)) * weight).astype(rows.dtype, copy=False)
        if m and c:
            shifted = rows - rows.max(axis=1, keepdims=True)
            log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        else:
            log_p = rows.copy()
        losses = -(coeff * log_p).sum(axis=1)
        return losses.reshape(per_shape), m, (coeff, np.exp(log_p), per_shape)

    def _label_losses(self, input, labels):
        """Integer labels: the backend's cross_entropy op (one C pass) per
        position; 'mean' divides by the summed weights of the counted labels."""
        x = _checks.float_input(input, "CrossEntropyLoss")
        backend = self._backend_now()
        weight = None if self.weight is None else self.weight.astype(x.dtype, copy=False)
        options = dict(ignore_index=self.ignore_index, label_smoothing=self.label_smoothing)
        losses = self._ops_of(backend).cross_entropy(x, labels, weight, reduction="none",
                                                     **options)
        counted = labels != self.ignore_index
        divisor = (np.count_nonzero(counted) if weight is None
                   else weight[labels[counted]].sum(dtype=np.float64))
        if is_grad_enabled():      # the caller may edit its arrays before backward
            x, labels = self._private_copy(x), labels.copy()
        return losses, divisor, _LabelsCtx(backend, x, labels, weight, options)

    def _grad(self, ctx, g):
        if isinstance(ctx, _LabelsCtx):
            return self._ops_of(ctx.backend).cross_entropy_backward(
                g, ctx.input, ctx.labels, ctx.weight, reduction="none", **ctx.options)
        coeff, probs, per_shape = ctx
        rows = (coeff.sum(axis=1, keepdims=True) * probs - coeff) * g.reshape(-1, 1)
        return self._to_input_layout(rows, per_shape)

    def extra_repr(self):
        return (f"reduction={self.reduction!r}, ignore_index={self.ignore_index}, "
                f"label_smoothing={self.label_smoothing}")


class NLLLoss(_ClassLoss):
    """-weight[t] * input[t] on log-probabilities (e.g. LogSoftmax's output),
    as torch.nn.NLLLoss; 'mean' divides by the summed weights of the
    non-ignored labels."""

    def __init__(self, weight=None, *, ignore_index=-100, reduction="mean"):
        super().__init__(weight, ignore_index, reduction)

    def _elementwise(self, input, target):
        rows, labels, per_shape, weight = self._rows(input, target, allow_probabilities=False)
        safe, row_weight, _ = self._label_weights(labels, weight, self.ignore_index)
        picked = rows[np.arange(rows.shape[0]), safe]
        losses = -(row_weight * picked)
        divisor = row_weight.sum(dtype=np.float64)
        return losses.reshape(per_shape), divisor, (safe, row_weight, rows.shape, per_shape)

    def _grad(self, ctx, g):
        safe, row_weight, shape, per_shape = ctx
        rows = np.zeros(shape, g.dtype)
        rows[np.arange(shape[0]), safe] = -row_weight * g.reshape(-1)
        return self._to_input_layout(rows, per_shape)

    def extra_repr(self):
        return f"reduction={self.reduction!r}, ignore_index={self.ignore_index}"
