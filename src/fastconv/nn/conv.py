"""Convolution layers: Conv1d/2d/3d and ConvTranspose1d/2d/3d, one _ConvNd base.

Parameters, shapes and default initialisation are PyTorch's: weight
(C_out, C_in // groups, *kernel) for a convolution, (C_in, C_out // groups,
*kernel) for a transposed one, bias (C_out,); kaiming_uniform_(a=sqrt(5)) with
fan_in = weight.shape[1] * prod(kernel). The layer checks what it needs to
shape the weight (channels, kernel_size, groups); the op checks stride,
padding, dilation and output_padding, when called, and accepts unbatched
input where it does.
"""
import numpy as np

from .. import _args
from . import _checks, init
from .module import Module, input_grad_kwargs, skips_input_grad

__all__ = ["Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d",
           "ConvTranspose3d"]


class _ConvNd(Module):
    dims = None             # spatial dims: 1, 2 or 3
    _pure = True
    transposed = False

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation,
                 groups, bias, dtype, rng, output_padding=0, padding_mode="zeros"):
        super().__init__()
        name = type(self).__name__
        self.in_channels = _checks.size(in_channels, "in_channels", name)
        self.out_channels = _checks.size(out_channels, "out_channels", name)
        self.kernel_size = _args.int_tuple(kernel_size, self.dims, "kernel_size", name, 1)
        self.groups = _checks.size(groups, "groups", name, minimum=1)
        for arg in ("in_channels", "out_channels"):
            if getattr(self, arg) % self.groups:
                raise ValueError(f"{name}: {arg}={getattr(self, arg)} must be divisible by "
                                 f"groups={self.groups}")
        # Only zero padding: the ops pad with zeros.
        _checks.choice(padding_mode, "padding_mode", name, ("zeros",))
        self.stride, self.padding, self.dilation = stride, padding, dilation
        self.output_padding = output_padding
        self.dtype = _checks.float_dtype(dtype, name)
        if self.transposed:
            shape = (self.in_channels, self.out_channels // self.groups)
        else:
            shape = (self.out_channels, self.in_channels // self.groups)
        self.register_parameter("weight", np.zeros(shape + self.kernel_size, self.dtype))
        if _checks.flag(bias, "bias", name):
            self.register_parameter("bias", np.zeros(self.out_channels, self.dtype))
        init.default_layer_init(self.params["weight"], self.params.get("bias"), rng)

    def _op_name(self):
        return f"conv_transpose{self.dims}d" if self.transposed else f"conv{self.dims}d"

    def _op_args(self, output_padding):
        if self.transposed:
            return self.stride, self.padding, output_padding, self.groups, self.dilation
        return self.stride, self.padding, self.dilation, self.groups

    def _output_padding(self, x, output_size):
        """The output_padding giving a transposed conv's output `output_size`
        (spatial sizes, optionally after N and C), as PyTorch's forward does."""
        name, n = type(self).__name__, self.dims
        if not self.transposed:
            raise TypeError(f"{name}.forward: output_size is for transposed convolutions")
        sizes = tuple(_args.as_int(v, "output_size", name) for v in output_size)[-n:]
        if len(sizes) != n or x.ndim < n:
            raise ValueError(f"{name}: output_size must end with {n} spatial sizes, "
                             f"got output_size={output_size!r}")
        geometry = zip(x.shape[-n:], sizes, self.kernel_size,
                       _args.int_tuple(self.stride, n, "stride", name, 1),
                       _args.int_tuple(self.padding, n, "padding", name, 0),
                       _args.int_tuple(self.dilation, n, "dilation", name, 1))
        padding = []
        for size, wanted, k, s, p, d in geometry:
            smallest = (size - 1) * s - 2 * p + d * (k - 1) + 1
            if not smallest <= wanted < smallest + s:
                raise ValueError(f"{name}: output_size={output_size!r} cannot be reached: "
                                 f"for an input of size {size} each output size must be "
                                 f"in [{smallest}, {smallest + s - 1}]")
            padding.append(wanted - smallest)
        return tuple(padding)

    def forward(self, x, output_size=None):
        """The convolution of x; a transposed convolution may be given the
        `output_size` it must produce, instead of its output_padding."""
        x = self._private_copy(_checks.float_input(x, type(self).__name__))
        output_padding = (self.output_padding if output_size is None
                          else self._output_padding(x, output_size))
        backend = self._backend_now()
        op = getattr(self._ops(), self._op_name())
        y = op(x, self.params["weight"], self.params.get("bias"),
               *self._op_args(output_padding))
        self._save((backend, x, output_padding), y)
        return y

    @skips_input_grad
    def backward(self, grad_output, *, input_grad=True):
        """grad_input of the pending forward (None when input_grad is False:
        see fastconv.nn.module, "Input gradients nobody needs"); adds into
        the parameters' grads."""
        input_grad = _checks.flag(input_grad, "input_grad", f"{type(self).__name__}.backward")
        (backend, x, output_padding), g = self._restore(grad_output)
        op = getattr(self._ops_of(backend), self._op_name() + "_backward")
        gx, gw, gb = op(g, x, self.params["weight"], *self._op_args(output_padding),
                        **input_grad_kwargs(backend, input_grad))
        self.grads["weight"] += gw
        if "bias" in self.params:
            self.grads["bias"] += gb
        return gx if input_grad else None

    def extra_repr(self):
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}, padding={self.padding}")
        if self.transposed:
            s += f", output_padding={self.output_padding}"
        return s + (f", dilation={self.dilation}, groups={self.groups}, "
                    f"bias={'bias' in self.params}, dtype={self.dtype}")


class _Conv(_ConvNd):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, dtype=np.float32, rng=None, *,
                 padding_mode="zeros"):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, dtype, rng, padding_mode=padding_mode)


class _ConvTranspose(_ConvNd):
    transposed = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, dtype=np.float32,
                 rng=None, *, padding_mode="zeros"):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, dtype, rng, output_padding, padding_mode)


class Conv1d(_Conv):
    """1-D convolution of (N, C_in, L) input, as torch.nn.Conv1d."""
    dims = 1


class Conv2d(_Conv):
    """2-D convolution of (N, C_in, H, W) input, as torch.nn.Conv2d; padding
    may be an int, a pair, 'valid' or 'same'."""
    dims = 2


class Conv3d(_Conv):
    """3-D convolution of (N, C_in, D, H, W) input, as torch.nn.Conv3d."""
    dims = 3


class ConvTranspose1d(_ConvTranspose):
    """1-D transposed convolution, as torch.nn.ConvTranspose1d."""
    dims = 1


class ConvTranspose2d(_ConvTranspose):
    """2-D transposed convolution, as torch.nn.ConvTranspose2d."""
    dims = 2


class ConvTranspose3d(_ConvTranspose):
    """3-D transposed convolution, as torch.nn.ConvTranspose3d."""
    dims = 3
