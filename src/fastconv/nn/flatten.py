"""Flatten."""
import math

from . import _checks
from .module import Module

__all__ = ["Flatten"]


class Flatten(Module):
    """Flatten dims start_dim..end_dim into one, as torch.nn.Flatten."""

    _pure = True

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim = _checks.size(start_dim, "start_dim", "Flatten", minimum=-2**31)
        self.end_dim = _checks.size(end_dim, "end_dim", "Flatten", minimum=-2**31)

    def forward(self, x):
        x = _checks.float_input(x, "Flatten")
        nd = x.ndim
        start = self.start_dim + nd if self.start_dim < 0 else self.start_dim
        end = self.end_dim + nd if self.end_dim < 0 else self.end_dim
        if not 0 <= start <= end < max(nd, 1):
            raise ValueError(f"Flatten: start_dim={self.start_dim}, end_dim={self.end_dim} "
                             f"do not fit an input of shape {x.shape}")
        y = x.reshape(x.shape[:start] + (math.prod(x.shape[start:end + 1]),)
                      + x.shape[end + 1:]).copy()
        self._save(x.shape, y)
        return y

    def backward(self, grad_output):
        shape, g = self._restore(grad_output)
        return g.reshape(shape).copy()

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
