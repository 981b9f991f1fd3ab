"""DeformConv2d: deformable convolution as a layer, with torchvision.ops.
DeformConv2d's constructor, parameters and initialisation."""
import numpy as np

from .. import _args
from . import _checks, init
from .module import Module

__all__ = ["DeformConv2d"]


class DeformConv2d(Module):
    """As torchvision.ops.DeformConv2d: weight (C_out, C_in // groups, kH, kW),
    bias (C_out,), PyTorch's default initialisation. ``forward(input, offset,
    mask=None)`` takes the offsets (and the v2 mask) from the caller, usually
    another layer; ``backward(grad_output)`` therefore returns
    (grad_input, grad_offset), or (grad_input, grad_offset, grad_mask) when
    forward had a mask."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, dtype=np.float32, rng=None):
        super().__init__()
        name = type(self).__name__
        self.in_channels = _checks.size(in_channels, "in_channels", name)
        self.out_channels = _checks.size(out_channels, "out_channels", name)
        self.kernel_size = _args.int_tuple(kernel_size, 2, "kernel_size", name, 1)
        self.groups = _checks.size(groups, "groups", name, minimum=1)
        for arg in ("in_channels", "out_channels"):
            if getattr(self, arg) % self.groups:
                raise ValueError(f"{name}: {arg}={getattr(self, arg)} must be divisible by "
                                 f"groups={self.groups}")
        self.stride, self.padding, self.dilation = stride, padding, dilation
        self.dtype = _checks.float_dtype(dtype, name)
        shape = (self.out_channels, self.in_channels // self.groups) + self.kernel_size
        self.register_parameter("weight", np.zeros(shape, self.dtype))
        if _checks.flag(bias, "bias", name):
            self.register_parameter("bias", np.zeros(self.out_channels, self.dtype))
        init.default_layer_init(self.params["weight"], self.params.get("bias"), rng)

    def forward(self, input, offset, mask=None):
        name = type(self).__name__
        x = self._private_copy(_checks.float_input(input, name))
        offset = self._private_copy(_checks.float_input(offset, name, "offset"))
        if mask is not None:
            mask = self._private_copy(_checks.float_input(mask, name, "mask"))
        backend = self._backend_now()
        y = self._ops_of(backend).deform_conv2d(x, offset, self.params["weight"],
                                                self.params.get("bias"), self.stride,
                                                self.padding, self.dilation, mask)
        self._save((backend, x, offset, mask), y)
        return y

    def backward(self, grad_output):
        (backend, x, offset, mask), g = self._restore(grad_output)
        gx, goff, gw, gb, gm = self._ops_of(backend).deform_conv2d_backward(
            g, x, offset, self.params["weight"], self.stride, self.padding, self.dilation,
            mask)
        self.grads["weight"] += gw
        if "bias" in self.params:
            self.grads["bias"] += gb
        return (gx, goff) if mask is None else (gx, goff, gm)

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
                f"groups={self.groups}, bias={'bias' in self.params}, dtype={self.dtype}")
