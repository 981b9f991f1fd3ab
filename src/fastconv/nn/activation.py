"""Activation layers, as torch.nn's: ReLU, LeakyReLU, PReLU (learnable slope),
RReLU (random slope in train, mean slope in eval), ELU, GELU, SiLU, Sigmoid,
Tanh, Softmax, LogSoftmax.

Each runs its functional op (one C pass; fastconv.functional's relu, gelu ...)
on the layer's backend. ``inplace=True`` (where PyTorch has it) writes the
output into the input's buffer, as PyTorch does, when the input is a writable
ndarray (otherwise the output is fresh); without it inputs are never modified.
For backward a layer keeps a private copy of what its backward op reads - the
output for ReLU, Sigmoid, Tanh and (Log)Softmax, the input for the others -
so editing the input or the output before backward cannot change the gradient;
inside a container the array itself when the container granted it private
("Private intermediates" in fastconv.nn.module): an in-place layer's output is
its input, so it keeps it uncopied only when both are private.
"""
import warnings

import numpy as np

from .. import _args
from ..functional import _activation
from . import _checks
from .module import Module, fresh_copy, is_grad_enabled

_FASTCONV = "fastconv.functional"    # the backend whose ops forward_keeping fuses

__all__ = ["ReLU", "LeakyReLU", "PReLU", "RReLU", "ELU", "GELU", "SiLU", "Sigmoid",
           "Tanh", "Softmax", "LogSoftmax"]


class _Elementwise(Module):
    """y = op(x, **self._op_kwargs()) and op_backward(g, saved, **kwargs),
    saved = the output (saves_output) or the input."""
    op = None                # the functional op's name
    saves_output = False     # its backward takes the forward's output

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = _checks.flag(inplace, "inplace", type(self).__name__)

    def _op_kwargs(self):
        return {}

    def forward(self, x):
        x = _checks.float_input(x, type(self).__name__)
        backend = self._backend_now()
        kwargs = self._op_kwargs()
        inplace = self.inplace and x.flags.writeable
        if inplace:
            kwargs["inplace"] = True
        op = getattr(self._ops_of(backend), self.op)
        if not is_grad_enabled():
            return op(x, **kwargs)
        if self._keeps_uncopied(x, inplace):
            y = op(x, **kwargs)
            saved = y if self.saves_output else x
        elif backend == _FASTCONV:
            # the kernel writes the output and the backward's private copy
            # in one pass
            y, saved = _activation.forward_keeping(self.op, x, **kwargs)
        else:
            # The input's value must be kept before an in-place op overwrites it.
            saved = None if self.saves_output else fresh_copy(x)
            y = op(x, **kwargs)
            if self.saves_output:
                saved = fresh_copy(y)
        self._save((backend, saved), y)
        return y

    def _keeps_uncopied(self, x, inplace):
        """Whether backward may keep the array it reads itself, without a
        copy: the output when its container granted it private (an in-place
        output is the input, so that must be private too), or the input
        when private and not overwritten here."""
        input_private, output_private = self._privacy(x)
        if not x.flags.c_contiguous:
            return False
        if self.saves_output:
            return output_private and (input_private or not inplace)
        return input_private and not inplace

    def _is_pure(self):
        return not self.inplace

    def backward(self, grad_output):
        (backend, saved), g = self._restore(grad_output)
        return self._backward_saved(backend, saved, g)

    def _backward_saved(self, backend, saved, g):
        """The input gradient from what forward kept (`saved`, on `backend`)."""
        return getattr(self._ops_of(backend), self.op + "_backward")(g, saved,
                                                                    **self._op_kwargs())

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


# What a ReLU fused into the BatchNorm or Residual before it keeps
# (Sequential's pairing): that layer's backward applies the mask, so this
# backward passes the gradient through.  A string, so pending caches still
# pickle.
_MASKED_BY_PRODUCER = "mask applied by the backward of the layer it ran fused into"


class ReLU(_Elementwise):
    """max(x, 0); the gradient at 0 is 0, as in PyTorch."""
    op, saves_output = "relu", True

    def _save_masked_by_producer(self, y):
        """Record a forward whose output `y` the layer before this one (a
        BatchNorm or a Residual) wrote already ReLU'd, and whose mask its
        backward applies."""
        self._save((None, _MASKED_BY_PRODUCER), y)

    def _backward_saved(self, backend, saved, g):
        # An array unless this forward ran fused (a string: compared by value,
        # since a pickled cache holds a copy of it).
        if isinstance(saved, str) and saved == _MASKED_BY_PRODUCER:
            return g
        return super()._backward_saved(backend, saved, g)


class LeakyReLU(_Elementwise):
    """x if x > 0 else negative_slope * x."""
    op = "leaky_relu"

    def __init__(self, negative_slope=0.01, inplace=False):
        super().__init__(inplace)
        self.negative_slope = _checks.real(negative_slope, "negative_slope", "LeakyReLU")

    def _op_kwargs(self):
        return {"negative_slope": self.negative_slope}

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class RReLU(_Elementwise):
    """Randomized leaky ReLU: in train mode each non-positive element gets its
    own slope drawn from U(lower, upper) (from `rng`); in eval mode the slope
    is (lower + upper) / 2, as torch.nn.RReLU."""

    def _is_pure(self):
        return True     # forward writes a fresh array, inplace or not

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

    def backward(self, grad_output):
        slope, g = self._restore(grad_output)
        return g * slope

    def extra_repr(self):
        return f"lower={self.lower}, upper={self.upper}"


class PReLU(Module):
    """x if x > 0 else a * x with a learnable slope: one (num_parameters=1) or
    one per channel (dim 1 of the input), initialised to `init`, as
    torch.nn.PReLU. Parameter: weight (num_parameters,)."""

    _pure = True

    def __init__(self, num_parameters=1, init=0.25, dtype=np.float32):
        super().__init__()
        self.num_parameters = _checks.size(num_parameters, "num_parameters", "PReLU", 1)
        self.dtype = _checks.float_dtype(dtype, "PReLU")
        init = _checks.real(init, "init", "PReLU")
        self.register_parameter("weight", np.full(self.num_parameters, init, self.dtype))

    def forward(self, x):
        x = _checks.float_input(x, "PReLU", dtype=self.dtype)
        channels = x.shape[1] if x.ndim > 1 else 1
        if self.num_parameters != 1 and channels != self.num_parameters:
            raise ValueError(f"PReLU: num_parameters={self.num_parameters} but the input "
                             f"(shape {x.shape}) has {channels} channels (dim 1)")
        backend = self._backend_now()
        x = self._private_copy(x)
        y = self._ops_of(backend).prelu(x, self.params["weight"])
        self._save((backend, x), y)
        return y

    def backward(self, grad_output):
        (backend, x), g = self._restore(grad_output)
        grad_input, grad_weight = self._ops_of(backend).prelu_backward(
            g, x, self.params["weight"])
        self.grads["weight"] += grad_weight
        return grad_input

    def extra_repr(self):
        return f"num_parameters={self.num_parameters}"


class ELU(_Elementwise):
    """x if x > 0 else alpha * (exp(x) - 1)."""
    op = "elu"

    def __init__(self, alpha=1.0, inplace=False):
        super().__init__(inplace)
        self.alpha = _checks.real(alpha, "alpha", "ELU")

    def _op_kwargs(self):
        return {"alpha": self.alpha}

    def extra_repr(self):
        return f"alpha={self.alpha}"


class GELU(_Elementwise):
    """x * Phi(x) with Phi the standard normal CDF (approximate='none', the
    exact erf form) or PyTorch's tanh approximation (approximate='tanh')."""
    op = "gelu"

    def __init__(self, approximate="none"):
        super().__init__()
        self.approximate = _checks.choice(approximate, "approximate", "GELU",
                                          ("none", "tanh"))

    def _op_kwargs(self):
        return {"approximate": self.approximate}

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class SiLU(_Elementwise):
    """x * sigmoid(x) (swish)."""
    op = "silu"


class Sigmoid(_Elementwise):
    """1 / (1 + exp(-x)), with no overflow for any x."""
    op, saves_output = "sigmoid", True

    def __init__(self):
        super().__init__()


class Tanh(_Elementwise):
    op, saves_output = "tanh", True

    def __init__(self):
        super().__init__()


class _SoftmaxBase(Module):
    _pure = True

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

    def forward(self, x):
        x = _checks.float_input(x, type(self).__name__)
        axis = self._axis(x)
        backend = self._backend_now()
        y = getattr(self._ops_of(backend), self.op)(x, axis)
        # A copy unless private: the caller may edit y before backward.
        self._save((backend, axis, self._keep_output(y)), y)
        return y

    def backward(self, grad_output):
        (backend, axis, y), g = self._restore(grad_output)
        return getattr(self._ops_of(backend), self.op + "_backward")(g, y, axis)

    def extra_repr(self):
        return f"dim={self.dim}"


class Softmax(_SoftmaxBase):
    """exp(x) / sum(exp(x)) along dim (max-shifted: no overflow)."""
    op = "softmax"


class LogSoftmax(_SoftmaxBase):
    """x - log(sum(exp(x))) along dim (max-shifted: no overflow)."""
    op = "log_softmax"
