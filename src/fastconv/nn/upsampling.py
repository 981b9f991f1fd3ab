"""Upsample: resizing as a layer (torch.nn.Upsample), over interpolate and
interpolate_backward."""
from . import _checks
from .module import Module

__all__ = ["Upsample"]


class Upsample(Module):
    """As torch.nn.Upsample: exactly one of size and scale_factor; mode
    'nearest', 'nearest-exact', 'linear', 'bilinear' or 'trilinear' (the one
    matching the input's rank); align_corners for the linear modes. The op
    checks the arguments when called. recompute_scale_factor may only be
    None or False (the given scale drives the index math, as PyTorch's
    default)."""

    _pure = True

    def __init__(self, size=None, scale_factor=None, mode="nearest", align_corners=None,
                 recompute_scale_factor=None):
        super().__init__()
        if recompute_scale_factor not in (None, False):
            raise ValueError(f"Upsample: recompute_scale_factor must be None or False, got "
                             f"recompute_scale_factor={recompute_scale_factor!r}")
        self.size, self.scale_factor = size, scale_factor
        self.mode, self.align_corners = mode, align_corners

    def _op_args(self):
        return self.size, self.scale_factor, self.mode, self.align_corners

    def forward(self, x):
        x = _checks.float_input(x, type(self).__name__)
        backend = self._backend_now()
        y = self._ops_of(backend).interpolate(x, *self._op_args())
        self._save((backend, x.shape), y)
        return y

    def backward(self, grad_output):
        (backend, shape), g = self._restore(grad_output)
        return self._ops_of(backend).interpolate_backward(g, shape, *self._op_args())

    def extra_repr(self):
        what = f"size={self.size}" if self.size is not None else \
            f"scale_factor={self.scale_factor}"
        return f"{what}, mode={self.mode!r}"
