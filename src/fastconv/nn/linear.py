"""Identity and Linear."""
import numpy as np

from . import _checks, init
from .module import Module, input_grad_kwargs, skips_input_grad

__all__ = ["Identity", "Linear"]


class Identity(Module):
    """y = x (a fresh copy); accepts and ignores any constructor arguments,
    as torch.nn.Identity does."""
    _pure = True

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        y = _checks.float_input(x, "Identity").copy()
        self._save(None, y)
        return y

    def backward(self, grad_output):
        return self._restore(grad_output)[1].copy()


class Linear(Module):
    """y = x @ weight.T + bias on (*, in_features) input, as torch.nn.Linear;
    weight (out_features, in_features), bias (out_features,)."""

    _pure = True

    def __init__(self, in_features, out_features, bias=True, dtype=np.float32, rng=None):
        super().__init__()
        name = type(self).__name__
        self.in_features = _checks.size(in_features, "in_features", name)
        self.out_features = _checks.size(out_features, "out_features", name)
        self.dtype = _checks.float_dtype(dtype, name)
        self.register_parameter("weight", np.zeros((self.out_features, self.in_features),
                                                   self.dtype))
        if _checks.flag(bias, "bias", name):
            self.register_parameter("bias", np.zeros(self.out_features, self.dtype))
        init.default_layer_init(self.params["weight"], self.params.get("bias"), rng)

    def forward(self, x):
        name = type(self).__name__
        x = _checks.float_input(x, name, dtype=self.dtype)
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"{name}: input must have shape (*, {self.in_features}), "
                             f"got {x.shape}")
        x = self._private_copy(x)
        backend = self._backend_now()
        y = self._ops().linear(x, self.params["weight"], self.params.get("bias"))
        self._save((backend, x), y)
        return y

    @skips_input_grad
    def backward(self, grad_output, *, input_grad=True):
        """grad_input of the pending forward (None when input_grad is False:
        see fastconv.nn.module, "Input gradients nobody needs"); adds into
        the parameters' grads."""
        input_grad = _checks.flag(input_grad, "input_grad", f"{type(self).__name__}.backward")
        (backend, x), g = self._restore(grad_output)
        gx, gw, gb = self._ops_of(backend).linear_backward(
            g, x, self.params["weight"], **input_grad_kwargs(backend, input_grad))
        self.grads["weight"] += gw
        if "bias" in self.params:
            self.grads["bias"] += gb
        return gx if input_grad else None

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={'bias' in self.params}, dtype={self.dtype}")
