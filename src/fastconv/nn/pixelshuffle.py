"""PixelShuffle, PixelUnshuffle and ChannelShuffle: permutation layers over
the ops of the same names; backward is the op's inverse permutation."""
from . import _checks
from .module import Module

__all__ = ["PixelShuffle", "PixelUnshuffle", "ChannelShuffle"]


class _Permutation(Module):
    op = None       # the op's name; its gradient is op + "_backward"
    arg = None      # the layer's one argument (the op's second)

    _pure = True

    def __init__(self, factor):
        super().__init__()
        setattr(self, self.arg, _checks.size(factor, self.arg, type(self).__name__, 1))

    def forward(self, x):
        x = _checks.float_input(x, type(self).__name__)
        backend = self._backend_now()
        y = getattr(self._ops_of(backend), self.op)(x, getattr(self, self.arg))
        self._save(backend, y)
        return y

    def backward(self, grad_output):
        backend, g = self._restore(grad_output)
        return getattr(self._ops_of(backend), self.op + "_backward")(g, getattr(self, self.arg))

    def extra_repr(self):
        return f"{self.arg}={getattr(self, self.arg)}"


class PixelShuffle(_Permutation):
    """(*, C*r*r, H, W) -> (*, C, H*r, W*r), as torch.nn.PixelShuffle."""
    op, arg = "pixel_shuffle", "upscale_factor"


class PixelUnshuffle(_Permutation):
    """(*, C, H*r, W*r) -> (*, C*r*r, H, W), as torch.nn.PixelUnshuffle."""
    op, arg = "pixel_unshuffle", "downscale_factor"


class ChannelShuffle(_Permutation):
    """ShuffleNet's channel shuffle of (N, C, *) input, as torch.nn.ChannelShuffle."""
    op, arg = "channel_shuffle", "groups"
