"""Gradient clipping, as torch.nn.utils: clip_grad_norm_ and clip_grad_value_.

Both take a Module, an iterable of Modules, (param, grad) pairs (what
``Module.parameters()`` yields) or gradient arrays, and scale or clip the
gradients in place; a gradient reached twice (a shared parameter) is clipped once.
"""
import math

import numpy as np

from . import _checks
from .module import Module

__all__ = ["clip_grad_norm_", "clip_grad_value_"]


def _gradients(parameters, owner):
    items = [parameters] if isinstance(parameters, (Module, np.ndarray)) else parameters
    grads, seen = [], set()
    try:
        items = list(items)
    except TypeError:
        raise TypeError(f"{owner}: parameters must be a Module, Modules, (param, grad) "
                        f"pairs or gradient arrays, got {parameters!r:.60}") from None
    for item in items:
        if isinstance(item, Module):
            found = [g for _, g in item.parameters()]
        elif isinstance(item, tuple) and len(item) == 2:
            found = [item[1]]
        elif isinstance(item, np.ndarray):
            found = [item]
        else:
            raise TypeError(f"{owner}: parameters must be a Module, Modules, (param, grad) "
                            f"pairs or gradient arrays, got an item {item!r:.60}")
        for g in found:
            if not isinstance(g, np.ndarray) or g.dtype not in _checks.FLOAT_DTYPES:
                raise TypeError(f"{owner}: a gradient must be a float32/float64 ndarray, "
                                f"got {g!r:.60}")
            if id(g) not in seen:
                seen.add(id(g))
                grads.append(g)
    return grads


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """Scale the gradients in place so that their total norm (the norm of the
    per-array norms, of order norm_type; 'inf' for the max) is at most
    max_norm; returns the total norm before clipping, as a float."""
    owner = "clip_grad_norm_"
    grads = _gradients(parameters, owner)
    max_norm = _checks.real(max_norm, "max_norm", owner)
    norm_type = _checks.real(float(norm_type) if isinstance(norm_type, str) else norm_type,
                             "norm_type", owner, low=0, low_open=True)
    if not grads:
        return 0.0
    if math.isinf(norm_type):
        total = max((float(np.abs(g).max()) for g in grads if g.size), default=0.0)
    else:
        norms = [np.linalg.norm(g.ravel().astype(np.float64), ord=norm_type) for g in grads]
        total = float(np.linalg.norm(np.array(norms), ord=norm_type))
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"{owner}: the total norm of order {norm_type} of the gradients "
                           f"is {total}; set error_if_nonfinite=False to clip anyway")
    coef = min(max_norm / (total + 1e-6), 1.0)      # PyTorch's 1e-6 guard
    for g in grads:
        g *= g.dtype.type(coef)
    return total


def clip_grad_value_(parameters, clip_value):
    """Clip every gradient element into [-clip_value, clip_value], in place."""
    owner = "clip_grad_value_"
    grads = _gradients(parameters, owner)
    clip_value = _checks.real(clip_value, "clip_value", owner, low=0)
    for g in grads:
        np.clip(g, -clip_value, clip_value, out=g)
