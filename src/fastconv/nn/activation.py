"""Activation layers, as torch.nn's: ReLU, LeakyReLU, PReLU (learnable slope),
RReLU (random slope in train, mean slope in eval), ELU, GELU, SiLU, Sigmoid,
Tanh, Softmax, LogSoftmax.

``inplace=`` is accepted where PyTorch has it, for drop-in code, and changes
nothing: results are always fresh arrays and inputs are never modified.
Elementwise layers cache the derivative (a fresh array) for backward, never the
input, so editing the input before backward cannot change the gradient.
"""
import functools
import math
import warnings

import numpy as np

from .. import _args
from . import _checks
from .module import Module, is_grad_enabled

__all__ = ["ReLU", "LeakyReLU", "PReLU", "RReLU", "ELU", "GELU", "SiLU", "Sigmoid",
           "Tanh", "Softmax", "LogSoftmax"]

def _erf(x):
    """erf elementwise, in x's dtype: SciPy's when it is installed, else
    math.erf element by element (SciPy is optional)."""
    return _erf_function()(x)


@functools.lru_cache(maxsize=None)
def _erf_function():
    # Imported on GELU's first use, not with fastconv: importing scipy.special
    # takes longer than importing the rest of fastconv.
    try:
        from scipy.special import erf
        return erf
    except ImportError:
        scalar_erf = np.frompyfunc(math.erf, 1, 1)
        return lambda x: scalar_erf(x).astype(x.dtype)


class _Elementwise(Module):
    """y = f(x); backward multiplies by f'(x), computed in forward only when a
    backward can come (not inside no_grad)."""

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = _checks.flag(inplace, "inplace", type(self).__name__)

    def forward(self, x):
        x = _checks.float_input(x, type(self).__name__)
        y = self._forward(x)
        if is_grad_enabled():
            self._save(self._derivative(x, y), y)
        return y

    def backward(self, grad_output):
        derivative, g = self._restore(grad_output)
        return g * derivative

    def _forward(self, x):
        raise NotImplementedError

    def _derivative(self, x, y):
        raise NotImplementedError

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


def _sigmoid(x):
    """1 / (1 + exp(-x)) as (1 + tanh(x/2)) / 2: no overflow for any x."""
    return ((np.tanh(x * 0.5) + 1) * 0.5).astype(x.dtype, copy=False)


class ReLU(_Elementwise):
    """max(x, 0); the gradient at 0 is 0, as in PyTorch."""

    def _forward(self, x):
        return np.maximum(x, x.dtype.type(0))

    def _derivative(self, x, y):
        return x > 0


class LeakyReLU(_Elementwise):
    """x if x > 0 else negative_slope * x."""

    def __init__(self, negative_slope=0.01, inplace=False):
        super().__init__(inplace)
        self.negative_slope = _checks.real(negative_slope, "negative_slope", "LeakyReLU")

    def _slope(self, x):
        return np.where(x > 0, x.dtype.type(1), x.dtype.type(self.negative_slope))

    def _forward(self, x):
        return x * self._slope(x)

    def _derivative(self, x, y):
        return self._slope(x)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class RReLU(_Elementwise):
    """Randomized leaky ReLU: in train mode each non-positive element gets its
    own slope drawn from U(lower, upper) (from `rng`); in eval mode the slope
    is (lower + upper) / 2, as torch.nn.RReLU."""

    def __init__(self, lower=1.0 / 8, upper=1.0 / 3, inplace=False, rng=None):
        super().__init__(inplace)
        self.lower = _checks.real(lower, "lower", "RReLU")
        self.upper = _checks.real(upper, "upper", "RReLU")
        if self.lower > self.upper:
            raise ValueError(f"RReLU: lower must be <= upper, got lower={lower!r}, "
                             f"upper={upper!r}")
        self.rng = _checks.rng(rng)

    def forward(self, x):
        x = _checks.float_input(x, "RReLU")
        t = x.dtype.type
        if self.training:
            slope = self.rng.uniform(self.lower, self.upper, x.shape).astype(x.dtype)
            slope = np.where(x <= 0, slope, t(1))
        else:
            slope = np.where(x > 0, t(1), t((self.lower + self.upper) / 2))
        y = x * slope
        self._save(slope, y)
        return y

    def extra_repr(self):
        return f"lower={self.lower}, upper={self.upper}"


class PReLU(Module):
    """x if x > 0 else a * x with a learnable slope: one (num_parameters=1) or
    one per channel (dim 1 of the input), initialised to `init`, as
    torch.nn.PReLU. Parameter: weight (num_parameters,)."""

    def __init__(self, num_parameters=1, init=0.25, dtype=np.float32):
        super().__init__()
        self.num_parameters = _checks.size(num_parameters, "num_parameters", "PReLU", 1)
        self.dtype = _checks.float_dtype(dtype, "PReLU")
        init = _checks.real(init, "init", "PReLU")
        self.register_parameter("weight", np.full(self.num_parameters, init, self.dtype))

    def _channel_shape(self, x):
        """The weight's shape for broadcasting against x."""
        if self.num_parameters == 1:
            return (1,) * x.ndim
        channels = x.shape[1] if x.ndim > 1 else 1
        if channels != self.num_parameters:
            raise ValueError(f"PReLU: num_parameters={self.num_parameters} but the input "
                             f"(shape {x.shape}) has {channels} channels (dim 1)")
        return (1, channels) + (1,) * (x.ndim - 2)

    def forward(self, x):
        x = _checks.float_input(x, "PReLU", dtype=self.dtype)
        a = self.params["weight"].reshape(self._channel_shape(x))
        positive = x > 0
        y = np.where(positive, x, a * x)
        if is_grad_enabled():
            self._save((positive, np.where(positive, x.dtype.type(0), x)), y)
        return y

    def backward(self, grad_output):
        (positive, negative_x), g = self._restore(grad_output)
        a = self.params["weight"].reshape(self._channel_shape(g))
        ga = g * negative_x
        self.grads["weight"] += (ga.sum() if self.num_parameters == 1 else
                                 ga.sum(axis=tuple(i for i in range(g.ndim) if i != 1)))
        return np.where(positive, g, a * g)

    def extra_repr(self):
        return f"num_parameters={self.num_parameters}"


class ELU(_Elementwise):
    """x if x > 0 else alpha * (exp(x) - 1)."""

    def __init__(self, alpha=1.0, inplace=False):
        super().__init__(inplace)
        self.alpha = _checks.real(alpha, "alpha", "ELU")

    def _forward(self, x):
        neg = self.alpha * np.expm1(np.minimum(x, 0))          # no overflow for big x
        return np.where(x > 0, x, neg).astype(x.dtype, copy=False)

    def _derivative(self, x, y):
        return np.where(x > 0, 1, y + self.alpha).astype(x.dtype, copy=False)

    def extra_repr(self):
        return f"alpha={self.alpha}"


_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


class GELU(_Elementwise):
    """x * Phi(x) with Phi the standard normal CDF (approximate='none', the
    exact erf form) or PyTorch's tanh approximation (approximate='tanh')."""

    def __init__(self, approximate="none"):
        super().__init__()
        self.approximate = _checks.choice(approximate, "approximate", "GELU",
                                          ("none", "tanh"))

    def _tanh_inner(self, x):
        return np.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x ** 3))

    def _forward(self, x):
        if self.approximate == "tanh":
            return (0.5 * x * (1 + self._tanh_inner(x))).astype(x.dtype, copy=False)
        return (0.5 * x * (1 + _erf(x / math.sqrt(2.0)))).astype(x.dtype, copy=False)

    def _derivative(self, x, y):
        if self.approximate == "tanh":
            t = self._tanh_inner(x)
            d = 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * _SQRT_2_OVER_PI * (
                1 + 3 * 0.044715 * x * x)
        else:
            cdf = 0.5 * (1 + _erf(x / math.sqrt(2.0)))
            d = cdf + x * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
        return d.astype(x.dtype, copy=False)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class SiLU(_Elementwise):
    """x * sigmoid(x) (swish)."""

    def _forward(self, x):
        return x * _sigmoid(x)

    def _derivative(self, x, y):
        s = _sigmoid(x)
        return s * (1 + x * (1 - s))


class Sigmoid(_Elementwise):
    """1 / (1 + exp(-x)), with no overflow for any x."""

    def __init__(self):
        super().__init__()

    def _forward(self, x):
        return _sigmoid(x)

    def _derivative(self, x, y):
        return y * (1 - y)


class Tanh(_Elementwise):
    def __init__(self):
        super().__init__()

    def _forward(self, x):
        return np.tanh(x)

    def _derivative(self, x, y):
        return 1 - y * y


class _SoftmaxBase(Module):
    def __init__(self, dim=None):
        super().__init__()
        self.dim = None if dim is None else _args.as_int(dim, "dim", type(self).__name__)

    def _axis(self, x):
        name = type(self).__name__
        if self.dim is None:
            # PyTorch's legacy choice for dim=None (it warns too).
            warnings.warn(f"{name}: dim=None picks dim by the input's rank, as PyTorch's "
                          f"legacy rule; pass dim explicitly", UserWarning, stacklevel=3)
            return 0 if x.ndim in (0, 1, 3) else 1
        if not -max(x.ndim, 1) <= self.dim < max(x.ndim, 1):
            raise ValueError(f"{name}: dim={self.dim} is out of range for an input of "
                             f"shape {x.shape}")
        return self.dim

    def _log_softmax(self, x, axis):
        if x.size == 0:
            return x.copy()
        shifted = x - x.max(axis=axis, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))

    def extra_repr(self):
        return f"dim={self.dim}"


class Softmax(_SoftmaxBase):
    """exp(x) / sum(exp(x)) along dim (max-shifted: no overflow)."""

    def forward(self, x):
        x = _checks.float_input(x, "Softmax")
        axis = self._axis(x)
        y = np.exp(self._log_softmax(x, axis))
        # A copy: the caller may edit y before backward.
        self._save((axis, y.copy() if is_grad_enabled() else None), y)
        return y

    def backward(self, grad_output):
        (axis, y), g = self._restore(grad_output)
        return y * (g - (g * y).sum(axis=axis, keepdims=True))


class LogSoftmax(_SoftmaxBase):
    """x - log(sum(exp(x))) along dim (max-shifted: no overflow)."""

    def forward(self, x):
        x = _checks.float_input(x, "LogSoftmax")
        axis = self._axis(x)
        y = self._log_softmax(x, axis)
        self._save((axis, y.copy() if is_grad_enabled() else None), y)
        return y

    def backward(self, grad_output):
        (axis, y), g = self._restore(grad_output)
        return g - np.exp(y) * g.sum(axis=axis, keepdims=True)
