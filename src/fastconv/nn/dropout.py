"""Dropout."""
import numpy as np

from . import _checks
from .module import Module

__all__ = ["Dropout"]


class Dropout(Module):
    """Inverted dropout, as torch.nn.Dropout: in train mode each element is
    zeroed with probability p and the survivors are scaled by 1 / (1 - p)
    (p=1 zeroes everything); identity in eval mode. The mask comes from `rng`
    (None, an int seed or a Generator). ``inplace`` is accepted and changes
    nothing (results are fresh arrays)."""

    _pure = True

    def __init__(self, p=0.5, inplace=False, rng=None):
        super().__init__()
        self.p = _checks.real(p, "p", "Dropout", 0, 1)
        self.inplace = _checks.flag(inplace, "inplace", "Dropout")
        self.rng = _checks.rng(rng)

    def forward(self, x):
        x = _checks.float_input(x, "Dropout")
        if not self.training or self.p == 0:
            y = x.copy()
            self._save(None, y)
            return y
        keep = self.rng.random(x.shape) >= self.p
        scale = x.dtype.type(0 if self.p == 1 else 1 / (1 - self.p))
        mask = keep.astype(x.dtype) * scale
        y = x * mask
        self._save(mask, y)
        return y

    def backward(self, grad_output):
        mask, g = self._restore(grad_output)
        return g.copy() if mask is None else g * mask

    def extra_repr(self):
        return f"p={self.p}"
