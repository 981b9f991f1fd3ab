"""Pooling layers: MaxPool1d/2d/3d, AvgPool1d/2d/3d, AdaptiveAvgPool1d/2d/3d,
AdaptiveMaxPool1d/2d/3d.

The ops check every argument when called; a layer keeps them as given.
"""
from . import _checks
from .module import Module

__all__ = ["MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d",
           "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d", "AdaptiveMaxPool1d",
           "AdaptiveMaxPool2d", "AdaptiveMaxPool3d"]


class _PoolNd(Module):
    """A pooling op and its backward; the input's shape is all a backward
    needs (max pooling adds its indices)."""
    dims = None
    kind = None     # "max_pool", "avg_pool", "adaptive_avg_pool", "adaptive_max_pool"
    _pure = True

    def _op_name(self):
        return f"{self.kind}{self.dims}d"

    def _op_args(self):
        raise NotImplementedError

    def _backward_args(self, input_shape):
        """The backward op's arguments after grad_output."""
        raise NotImplementedError

    def _run(self, x, **kwargs):
        """(backend, input, output of the op) for this call."""
        x = _checks.float_input(x, type(self).__name__)
        backend = self._backend_now()
        return backend, x, getattr(self._ops_of(backend), self._op_name())(
            x, *self._op_args(), **kwargs)

    def forward(self, x):
        backend, x, y = self._run(x)
        self._save((backend, x.shape), y)
        return y

    def backward(self, grad_output):
        (backend, shape), g = self._restore(grad_output)
        op = getattr(self._ops_of(backend), self._op_name() + "_backward")
        return op(g, *self._backward_args(shape))

    def extra_repr(self):
        return ", ".join(f"{k}={getattr(self, k)}" for k in self._repr_keys)


class _MaxPoolNd(_PoolNd):
    kind = "max_pool"
    _repr_keys = ("kernel_size", "stride", "padding", "dilation", "ceil_mode")

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1,
                 return_indices=False, ceil_mode=False):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.dilation, self.ceil_mode = dilation, ceil_mode
        self.return_indices = _checks.flag(return_indices, "return_indices",
                                           type(self).__name__)

    def _op_args(self):
        return self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode

    def forward(self, x):
        """The pooled array, or (pooled, indices) with return_indices."""
        backend, x, (y, indices) = self._run(x, return_indices=True)
        self._save((backend, x.shape, indices), y)
        return (y, indices.copy()) if self.return_indices else y

    def _is_pure(self):
        return not self.return_indices    # the next layer would get a tuple

    def backward(self, grad_output):
        (backend, shape, indices), g = self._restore(grad_output)
        return getattr(self._ops_of(backend), self._op_name() + "_backward")(g, indices, shape)


class _AvgPoolNd(_PoolNd):
    kind = "avg_pool"
    _repr_keys = ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad")

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad
        self.divisor_override = divisor_override

    def _op_args(self):
        return (self.kernel_size, self.stride, self.padding, self.ceil_mode,
                self.count_include_pad, self.divisor_override)

    def _backward_args(self, input_shape):
        return (input_shape,) + self._op_args()


class _AdaptiveAvgPoolNd(_PoolNd):
    kind = "adaptive_avg_pool"
    _repr_keys = ("output_size",)

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def _op_args(self):
        return (self.output_size,)

    def _backward_args(self, input_shape):
        return (input_shape,)


class _AdaptiveMaxPoolNd(_MaxPoolNd):
    """Max pooling over adaptive bins: max pooling's forward (always keeping
    the indices) and backward (a scatter at them)."""
    kind = "adaptive_max_pool"
    _repr_keys = ("output_size",)

    def __init__(self, output_size, return_indices=False):
        Module.__init__(self)
        self.output_size = output_size
        self.return_indices = _checks.flag(return_indices, "return_indices",
                                           type(self).__name__)

    def _op_args(self):
        return (self.output_size,)


class MaxPool1d(_MaxPoolNd):
    """As torch.nn.MaxPool1d."""
    dims = 1


class MaxPool2d(_MaxPoolNd):
    """As torch.nn.MaxPool2d."""
    dims = 2


class MaxPool3d(_MaxPoolNd):
    """As torch.nn.MaxPool3d."""
    dims = 3


class AvgPool1d(_AvgPoolNd):
    """As torch.nn.AvgPool1d (which has no divisor_override)."""
    dims = 1

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True):
        super().__init__(kernel_size, stride, padding, ceil_mode, count_include_pad)


class AvgPool2d(_AvgPoolNd):
    """As torch.nn.AvgPool2d."""
    dims = 2


class AvgPool3d(_AvgPoolNd):
    """As torch.nn.AvgPool3d."""
    dims = 3


class AdaptiveAvgPool2d(_AdaptiveAvgPoolNd):
    """Adaptive average pooling to output_size (an int or (oh, ow)), as
    torch.nn.AdaptiveAvgPool2d."""
    dims = 2


class AdaptiveAvgPool1d(_AdaptiveAvgPoolNd):
    """Adaptive average pooling of (N, C, L) to output_size, as
    torch.nn.AdaptiveAvgPool1d."""
    dims = 1


class AdaptiveAvgPool3d(_AdaptiveAvgPoolNd):
    """Adaptive average pooling to output_size (an int or (od, oh, ow)), as
    torch.nn.AdaptiveAvgPool3d."""
    dims = 3


class AdaptiveMaxPool1d(_AdaptiveMaxPoolNd):
    """Adaptive max pooling of (N, C, L), as torch.nn.AdaptiveMaxPool1d."""
    dims = 1


class AdaptiveMaxPool2d(_AdaptiveMaxPoolNd):
    """Adaptive max pooling to output_size (an int or (oh, ow)), as
    torch.nn.AdaptiveMaxPool2d; with return_indices forward returns
    (output, indices)."""
    dims = 2


class AdaptiveMaxPool3d(_AdaptiveMaxPoolNd):
    """Adaptive max pooling of (N, C, D, H, W), as torch.nn.AdaptiveMaxPool3d."""
    dims = 3
