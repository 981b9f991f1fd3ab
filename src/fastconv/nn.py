"""A thin layer API for NumPy training code: each layer composes fastconv's ops.

Every layer has ``forward(x) -> y`` and ``backward(grad_y) -> grad_x`` (backward
uses what the last forward cached), ``params`` (name -> ndarray, updated in
place by the optimizers of :mod:`fastconv.optim`), ``grads`` (same keys;
``backward`` *overwrites* them in place, it does not accumulate), ``parameters()``
yielding ``(param, grad)`` pairs, and ``train()`` / ``eval()``.  Parameter
names, shapes and default initialisation are PyTorch's, so weights can be moved
between the two (``Sequential.state_dict`` uses PyTorch's keys too).

Which ops a layer runs
----------------------
Layers that convolve or pool take their ops from a *backend*: a module with the
names of :mod:`fastconv.functional` (``conv2d``, ``conv2d_backward``,
``max_pool2d`` ...).  The default is :mod:`fastconv.functional`;
:mod:`fastconv.reference` (the plain-NumPy oracle) is the other one.  Choose it
per layer or network with ``module.set_backend(fastconv.reference)``, or for a
block of code with ``with fastconv.nn.use_backend(fastconv.reference): ...``.
A layer's backward always uses the backend its forward used.

Argument checking: the ops validate their own arguments (stride, padding ...)
once, when called; layers only check what they need to build their parameters
(channel counts, kernel size, groups), raising ValueError naming the argument.
Layers keep their parameters in their ``dtype``; an input of another dtype
raises TypeError rather than being cast silently.  Elementwise layers, Linear,
BatchNorm2d and the losses are plain NumPy.
"""
import contextlib
import contextvars
import math
import operator

import numpy as np

from . import _args, functional

__all__ = [
    "Module", "Conv2d", "ConvTranspose2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d",
    "ReLU", "LeakyReLU", "ELU", "Sigmoid", "Tanh", "BatchNorm2d", "Linear", "Flatten",
    "Dropout", "Sequential", "CrossEntropyLoss", "MSELoss", "use_backend", "get_backend",
]

# --------------------------------------------------------------------------- backend

# A context variable, so that use_backend in one thread does not leak into others.
_default_backend = contextvars.ContextVar("fastconv_nn_backend", default=functional)


def _resolve_backend(backend):
    """A backend module from a module or one of the names 'fastconv',
    'functional', 'reference'."""
    if isinstance(backend, str):
        if backend in ("fastconv", "functional"):
            return functional
        if backend == "reference":
            from . import reference
            return reference
        raise ValueError(f"backend must be 'fastconv', 'functional', 'reference' or a "
                         f"module of ops, got backend={backend!r}")
    if not hasattr(backend, "conv2d"):
        raise ValueError(f"backend must be a module of ops such as fastconv.functional "
                         f"or fastconv.reference, got backend={backend!r}")
    return backend


def get_backend():
    """The ops module layers without a backend of their own use now."""
    return _default_backend.get()


@contextlib.contextmanager
def use_backend(backend):
    """Run layers that have no backend of their own on `backend` inside the
    block, e.g. ``with use_backend(fastconv.reference): net.forward(x)``."""
    token = _default_backend.set(_resolve_backend(backend))
    try:
        yield _default_backend.get()
    finally:
        _default_backend.reset(token)


# --------------------------------------------------------------------------- helpers

def _rng(rng):
    """np.random.Generator from None, an int seed or a Generator."""
    return np.random.default_rng(rng)


_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _float_dtype(dtype, owner):
    dt = np.dtype(dtype)
    if dt not in _FLOAT_DTYPES:
        raise TypeError(f"{owner}: dtype must be float32 or float64, got dtype={dt}")
    return dt


def _count(value, name, owner, minimum=0):
    """A layer size argument as an int >= minimum (ValueError naming it)."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{owner}: {name} must be an int, got {name}={value!r}")
    try:
        out = operator.index(value)
    except TypeError:
        raise TypeError(f"{owner}: {name} must be an int, got {name}={value!r}") from None
    if out < minimum:
        what = "positive" if minimum == 1 else "non-negative"
        raise ValueError(f"{owner}: {name} must be a {what} int, got {name}={value!r}")
    return out


def _pair(value, name, owner):
    """kernel_size as a pair of positive ints (needed to shape the weight)."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{owner}: {name} must be an int or a pair of ints, "
                             f"got {name}={value!r}")
        return tuple(_count(v, name, owner, minimum=1) for v in value)
    v = _count(value, name, owner, minimum=1)
    return (v, v)


def _uniform(rng, bound, shape, dtype):
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


def _kaiming_uniform(rng, shape, fan_in, dtype):
    """PyTorch's default weight init, kaiming_uniform_(a=sqrt(5)):
    gain = sqrt(2 / (1 + a^2)) = sqrt(1/3), bound = gain * sqrt(3 / fan_in)
    = 1 / sqrt(fan_in)."""
    gain = math.sqrt(2.0 / (1.0 + 5.0))
    bound = gain * math.sqrt(3.0 / fan_in) if fan_in > 0 else 0.0
    return _uniform(rng, bound, shape, dtype)


def _check_input(owner, x, dtype):
    """A float array of the layer's dtype (TypeError otherwise, never a cast)."""
    x = _args.as_float_array(x, "input", owner)
    if x.dtype.type is not dtype.type:      # any byte order, but no float32/64 mix
        raise TypeError(f"{owner}: input has dtype {x.dtype} but the layer's parameters "
                        f"have dtype {dtype}; use one dtype (no silent casts)")
    return x


# --------------------------------------------------------------------------- base

class Module:
    """Base class: parameters, gradients, train/eval mode and backend."""

    def __init__(self):
        self.params = {}
        self.grads = {}
        self.training = True
        self.backend = None     # None: use the default backend (see use_backend)
        self._cache = None

    # the computation -------------------------------------------------------
    def forward(self, x):
        raise NotImplementedError

    def backward(self, grad_output):
        raise NotImplementedError

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def _ops(self):
        return self.backend if self.backend is not None else _default_backend.get()

    def _need_cache(self):
        if self._cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        return self._cache

    # parameters ------------------------------------------------------------
    def _add_param(self, name, value):
        self.params[name] = value
        self.grads[name] = np.zeros_like(value)

    def _set_grad(self, name, value):
        # In place, so (param, grad) pairs handed out earlier stay valid.
        np.copyto(self.grads[name], value)

    def parameters(self):
        """Yield (param, grad) pairs."""
        for name, p in self.params.items():
            yield p, self.grads[name]

    def zero_grad(self):
        for _, g in self.parameters():
            g.fill(0)

    def buffers(self):
        """Name -> array of state that is saved but not trained (BatchNorm)."""
        return {}

    def state_dict(self):
        """Copies of params and buffers under PyTorch's names."""
        out = {name: p.copy() for name, p in self.params.items()}
        out.update({name: np.array(b, copy=True) for name, b in self.buffers().items()})
        return out

    def load_state_dict(self, state):
        """Copy arrays from a mapping (e.g. ``np.load("w.npz")``) into the
        params and buffers, in place. Missing or unexpected keys, or wrong
        shapes, raise ValueError; values are cast to each array's dtype."""
        targets = dict(self.params)
        targets.update(self.buffers())
        _load_into(targets, state, type(self).__name__)
        return self

    # modes and backend -----------------------------------------------------
    def train(self, mode=True):
        self.training = bool(mode)
        return self

    def eval(self):
        return self.train(False)

    def set_backend(self, backend):
        """Run this layer on `backend` (a module of ops or 'fastconv' /
        'reference'); None goes back to the default."""
        self.backend = None if backend is None else _resolve_backend(backend)
        return self

    def extra_repr(self):
        return ""

    def __repr__(self):
        return f"{type(self).__name__}({self.extra_repr()})"


def _load_into(targets, state, owner):
    keys = set(state.keys()) if hasattr(state, "keys") else set(state)
    missing = sorted(set(targets) - keys)
    unexpected = sorted(keys - set(targets))
    if missing or unexpected:
        raise ValueError(f"{owner}.load_state_dict: missing keys {missing}, "
                         f"unexpected keys {unexpected}")
    for name, target in targets.items():
        value = np.asarray(state[name])
        if value.shape != target.shape:
            raise ValueError(f"{owner}.load_state_dict: {name} has shape {value.shape}, "
                             f"expected {target.shape}")
        np.copyto(target, value, casting="unsafe")


# --------------------------------------------------------------------------- conv

class Conv2d(Module):
    """2-D convolution, as torch.nn.Conv2d. weight (C_out, C_in // groups, kH, kW),
    bias (C_out,). padding may be an int, a pair, 'valid' or 'same'."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, dtype=np.float32, rng=None):
        super().__init__()
        name = type(self).__name__
        self.in_channels = _count(in_channels, "in_channels", name)
        self.out_channels = _count(out_channels, "out_channels", name)
        self.kernel_size = _pair(kernel_size, "kernel_size", name)
        self.groups = _count(groups, "groups", name, minimum=1)
        if self.in_channels % self.groups:
            raise ValueError(f"{name}: in_channels={in_channels} must be divisible by "
                             f"groups={groups}")
        if self.out_channels % self.groups:
            raise ValueError(f"{name}: out_channels={out_channels} must be divisible by "
                             f"groups={groups}")
        self.stride, self.padding, self.dilation = stride, padding, dilation
        self.dtype = _float_dtype(dtype, name)
        rng = _rng(rng)
        shape = self._weight_shape()
        fan_in = shape[1] * self.kernel_size[0] * self.kernel_size[1]
        self._add_param("weight", _kaiming_uniform(rng, shape, fan_in, self.dtype))
        if bias:
            bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            self._add_param("bias", _uniform(rng, bound, (self.out_channels,), self.dtype))

    def _weight_shape(self):
        return (self.out_channels, self.in_channels // self.groups) + self.kernel_size

    def forward(self, x):
        ops = self._ops()
        y = ops.conv2d(x, self.params["weight"], self.params.get("bias"), self.stride,
                       self.padding, self.dilation, self.groups)
        self._cache = (ops, x)
        return y

    def backward(self, grad_output):
        ops, x = self._need_cache()
        gx, gw, gb = ops.conv2d_backward(grad_output, x, self.params["weight"],
                                         self.stride, self.padding, self.dilation,
                                         self.groups)
        self._set_grad("weight", gw)
        if "bias" in self.params:
            self._set_grad("bias", gb)
        return gx

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
                f"groups={self.groups}, bias={'bias' in self.params}, dtype={self.dtype}")


class ConvTranspose2d(Conv2d):
    """2-D transposed convolution, as torch.nn.ConvTranspose2d (same argument
    order). weight (C_in, C_out // groups, kH, kW); PyTorch computes the init
    fan_in from weight.shape[1] * kH * kW, and so do we."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, dtype=np.float32,
                 rng=None):
        self.output_padding = output_padding
        super().__init__(in_channels, out_channels, kernel_size, stride, padding,
                         dilation, groups, bias, dtype, rng)

    def _weight_shape(self):
        return (self.in_channels, self.out_channels // self.groups) + self.kernel_size

    def forward(self, x):
        ops = self._ops()
        y = ops.conv_transpose2d(x, self.params["weight"], self.params.get("bias"),
                                 self.stride, self.padding, self.output_padding,
                                 self.groups, self.dilation)
        self._cache = (ops, x)
        return y

    def backward(self, grad_output):
        ops, x = self._need_cache()
        gx, gw, gb = ops.conv_transpose2d_backward(
            grad_output, x, self.params["weight"], self.stride, self.padding,
            self.output_padding, self.groups, self.dilation)
        self._set_grad("weight", gw)
        if "bias" in self.params:
            self._set_grad("bias", gb)
        return gx

    def extra_repr(self):
        return super().extra_repr() + f", output_padding={self.output_padding}"


# --------------------------------------------------------------------------- pooling

class MaxPool2d(Module):
    """Max pooling, as torch.nn.MaxPool2d. ``ceil_mode`` is keyword-only here
    (PyTorch puts ``return_indices`` before it; a layer always keeps the indices
    for its backward, in ``self.indices``)."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, *, ceil_mode=False):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.dilation, self.ceil_mode = dilation, ceil_mode
        self.indices = None

    def forward(self, x):
        ops = self._ops()
        y, self.indices = ops.max_pool2d(x, self.kernel_size, self.stride, self.padding,
                                         self.dilation, self.ceil_mode, return_indices=True)
        self._cache = (ops, np.shape(x), self.indices)
        return y

    def backward(self, grad_output):
        ops, shape, indices = self._need_cache()
        return ops.max_pool2d_backward(grad_output, indices, shape)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class AvgPool2d(Module):
    """Average pooling, as torch.nn.AvgPool2d (same arguments)."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad
        self.divisor_override = divisor_override

    def _args(self):
        return (self.kernel_size, self.stride, self.padding, self.ceil_mode,
                self.count_include_pad, self.divisor_override)

    def forward(self, x):
        ops = self._ops()
        y = ops.avg_pool2d(x, *self._args())
        self._cache = (ops, np.shape(x))
        return y

    def backward(self, grad_output):
        ops, shape = self._need_cache()
        return ops.avg_pool2d_backward(grad_output, shape, *self._args())

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, ceil_mode={self.ceil_mode}, "
                f"count_include_pad={self.count_include_pad}, "
                f"divisor_override={self.divisor_override}")


class AdaptiveAvgPool2d(Module):
    """Adaptive average pooling to `output_size` (int or (oh, ow)), as
    torch.nn.AdaptiveAvgPool2d."""

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, x):
        ops = self._ops()
        y = ops.adaptive_avg_pool2d(x, self.output_size)
        self._cache = (ops, np.shape(x))
        return y

    def backward(self, grad_output):
        ops, shape = self._need_cache()
        return ops.adaptive_avg_pool2d_backward(grad_output, shape)

    def extra_repr(self):
        return f"output_size={self.output_size}"


# --------------------------------------------------------------------------- elementwise

class _Elementwise(Module):
    """y = f(x) elementwise; backward multiplies by f'(x), from the cache."""

    def forward(self, x):
        x = _args.as_float_array(x, "input", type(self).__name__)
        y, self._cache = self._forward(x)
        return y

    def backward(self, grad_output):
        return np.asarray(grad_output) * self._need_cache()


class ReLU(_Elementwise):
    """max(x, 0); the gradient at 0 is 0, as in PyTorch."""

    def _forward(self, x):
        mask = x > 0
        return np.where(mask, x, x.dtype.type(0)), mask


class LeakyReLU(_Elementwise):
    """x if x > 0 else negative_slope * x."""

    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = float(negative_slope)

    def _forward(self, x):
        slope = np.where(x > 0, x.dtype.type(1), x.dtype.type(self.negative_slope))
        return x * slope, slope

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class ELU(_Elementwise):
    """x if x > 0 else alpha * (exp(x) - 1)."""

    def __init__(self, alpha=1.0):
        super().__init__()
        self.alpha = float(alpha)

    def _forward(self, x):
        pos = x > 0
        neg = self.alpha * np.expm1(np.minimum(x, 0))          # no overflow for big x
        y = np.where(pos, x, neg).astype(x.dtype, copy=False)
        grad = np.where(pos, 1, neg + self.alpha).astype(x.dtype, copy=False)
        return y, grad

    def extra_repr(self):
        return f"alpha={self.alpha}"


class Sigmoid(_Elementwise):
    """1 / (1 + exp(-x)), computed as (1 + tanh(x/2)) / 2: no overflow."""

    def _forward(self, x):
        y = (np.tanh(x * 0.5) + 1) * 0.5
        y = y.astype(x.dtype, copy=False)
        return y, y * (1 - y)


class Tanh(_Elementwise):
    def _forward(self, x):
        y = np.tanh(x)
        return y, 1 - y * y


# --------------------------------------------------------------------------- others

class BatchNorm2d(Module):
    """Batch normalisation over (N, H, W) per channel, as torch.nn.BatchNorm2d.

    train(): normalise with the batch mean and biased variance, and update
    ``running_mean`` / ``running_var`` (the latter with the unbiased variance)
    as ``running = (1 - momentum) * running + momentum * batch``; with
    ``momentum=None`` a cumulative average. eval(): normalise with the running
    statistics. ``weight`` (gamma) and ``bias`` (beta) are the params;
    ``running_mean``, ``running_var`` and ``num_batches_tracked`` are buffers."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, dtype=np.float32):
        super().__init__()
        name = type(self).__name__
        self.num_features = _count(num_features, "num_features", name)
        if not eps > 0:
            raise ValueError(f"{name}: eps must be positive, got eps={eps!r}")
        if momentum is not None and not 0 <= momentum <= 1:
            raise ValueError(f"{name}: momentum must be in [0, 1] or None, "
                             f"got momentum={momentum!r}")
        self.eps, self.momentum = float(eps), momentum
        self.dtype = _float_dtype(dtype, name)
        self._add_param("weight", np.ones(self.num_features, self.dtype))
        self._add_param("bias", np.zeros(self.num_features, self.dtype))
        self.running_mean = np.zeros(self.num_features, self.dtype)
        self.running_var = np.ones(self.num_features, self.dtype)
        self.num_batches_tracked = np.zeros((), np.int64)

    def buffers(self):
        return {"running_mean": self.running_mean, "running_var": self.running_var,
                "num_batches_tracked": self.num_batches_tracked}

    def forward(self, x):
        name = type(self).__name__
        x = _check_input(name, x, self.dtype)
        if x.ndim != 4 or x.shape[1] != self.num_features:
            raise ValueError(f"{name}: input must be (N, {self.num_features}, H, W), "
                             f"got shape {x.shape}")
        count = x.shape[0] * x.shape[2] * x.shape[3]
        if self.training:
            if count <= 1:
                raise ValueError(f"{name}: training needs more than 1 value per channel, "
                                 f"got input shape {x.shape}")
            mean = x.mean(axis=(0, 2, 3))
            var = x.var(axis=(0, 2, 3))
            self._update_running(mean, var * (count / (count - 1)))
        else:
            mean, var = self.running_mean, self.running_var
        invstd = (1.0 / np.sqrt(var + self.eps)).astype(self.dtype, copy=False)
        xhat = (x - mean[:, None, None]) * invstd[:, None, None]
        y = xhat * self.params["weight"][:, None, None] + self.params["bias"][:, None, None]
        self._cache = (xhat, invstd, self.training)
        return y

    def _update_running(self, mean, unbiased_var):
        self.num_batches_tracked += 1
        m = (1.0 / float(self.num_batches_tracked) if self.momentum is None
             else self.momentum)
        self.running_mean *= 1 - m
        self.running_mean += m * mean
        self.running_var *= 1 - m
        self.running_var += m * unbiased_var

    def backward(self, grad_output):
        xhat, invstd, training = self._need_cache()
        g = np.asarray(grad_output)
        if g.shape != xhat.shape:
            raise ValueError(f"{type(self).__name__}: grad_output must have shape "
                             f"{xhat.shape}, got {g.shape}")
        gbeta = g.sum(axis=(0, 2, 3))
        ggamma = (g * xhat).sum(axis=(0, 2, 3))
        self._set_grad("weight", ggamma)
        self._set_grad("bias", gbeta)
        scale = (self.params["weight"] * invstd)[:, None, None]
        if not training:                       # running stats are constants
            return g * scale
        count = xhat.shape[0] * xhat.shape[2] * xhat.shape[3]
        return scale * (g - (gbeta[:, None, None] + xhat * ggamma[:, None, None]) / count)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"dtype={self.dtype}")


class Linear(Module):
    """y = x @ weight.T + bias on (*, in_features) input, as torch.nn.Linear;
    weight (out_features, in_features)."""

    def __init__(self, in_features, out_features, bias=True, dtype=np.float32, rng=None):
        super().__init__()
        name = type(self).__name__
        self.in_features = _count(in_features, "in_features", name)
        self.out_features = _count(out_features, "out_features", name)
        self.dtype = _float_dtype(dtype, name)
        rng = _rng(rng)
        fan_in = self.in_features
        self._add_param("weight", _kaiming_uniform(
            rng, (self.out_features, self.in_features), fan_in, self.dtype))
        if bias:
            bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            self._add_param("bias", _uniform(rng, bound, (self.out_features,), self.dtype))

    def forward(self, x):
        name = type(self).__name__
        x = _check_input(name, x, self.dtype)
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"{name}: input must have shape (*, {self.in_features}), "
                             f"got {x.shape}")
        y = x @ self.params["weight"].T
        if "bias" in self.params:
            y += self.params["bias"]
        self._cache = x
        return y

    def backward(self, grad_output):
        x = self._need_cache()
        g = np.asarray(grad_output)
        if g.shape != x.shape[:-1] + (self.out_features,):
            raise ValueError(f"{type(self).__name__}: grad_output must have shape "
                             f"{x.shape[:-1] + (self.out_features,)}, got {g.shape}")
        g2 = g.reshape(-1, self.out_features)
        self._set_grad("weight", g2.T @ x.reshape(-1, self.in_features))
        if "bias" in self.params:
            self._set_grad("bias", g2.sum(axis=0))
        return g @ self.params["weight"]

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={'bias' in self.params}, dtype={self.dtype}")


class Flatten(Module):
    """Flatten dims start_dim..end_dim into one, as torch.nn.Flatten."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        x = np.asarray(x)
        nd = x.ndim
        start = self.start_dim + nd if self.start_dim < 0 else self.start_dim
        end = self.end_dim + nd if self.end_dim < 0 else self.end_dim
        if not 0 <= start <= end < nd:
            raise ValueError(f"Flatten: start_dim={self.start_dim}, end_dim={self.end_dim} "
                             f"do not fit an input of shape {x.shape}")
        self._cache = x.shape
        return x.reshape(x.shape[:start] + (math.prod(x.shape[start:end + 1]),)
                         + x.shape[end + 1:])

    def backward(self, grad_output):
        return np.asarray(grad_output).reshape(self._need_cache())

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Dropout(Module):
    """Inverted dropout: in train mode zero each element with probability p and
    scale the survivors by 1 / (1 - p); identity in eval mode."""

    def __init__(self, p=0.5, rng=None):
        super().__init__()
        if isinstance(p, (bool, np.bool_)) or not isinstance(p, (int, float, np.floating,
                                                                  np.integer)):
            raise TypeError(f"Dropout: p must be a number in [0, 1), got p={p!r}")
        if not 0 <= p < 1:
            raise ValueError(f"Dropout: p must be in [0, 1), got p={p!r}")
        self.p = float(p)
        self.rng = _rng(rng)
        self._identity = None

    def forward(self, x):
        x = _args.as_float_array(x, "input", "Dropout")
        if not self.training or self.p == 0:
            self._cache = None
            self._identity = True
            return x.copy()
        self._identity = False
        keep = self.rng.random(x.shape) >= self.p
        self._cache = keep.astype(x.dtype) * x.dtype.type(1.0 / (1.0 - self.p))
        return x * self._cache

    def backward(self, grad_output):
        if self._identity is None:
            raise RuntimeError("Dropout.backward called before forward")
        g = np.asarray(grad_output)
        return g.copy() if self._identity else g * self._cache

    def extra_repr(self):
        return f"p={self.p}"


# --------------------------------------------------------------------------- containers

class Sequential(Module):
    """Layers applied in order; backward runs them in reverse. ``params`` and
    ``grads`` are flat dicts keyed like PyTorch's state_dict ("0.weight" ...)
    holding the layers' own arrays."""

    def __init__(self, *layers):
        # Not Module.__init__: params/grads are views of the layers' dicts.
        self.training, self.backend, self._cache = True, None, None
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(f"Sequential: argument {i} is not a fastconv.nn layer: "
                                f"{layer!r}")
        self.layers = list(layers)

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, grad_output):
        for layer in reversed(self.layers):
            grad_output = layer.backward(grad_output)
        return grad_output

    def __len__(self):
        return len(self.layers)

    def __getitem__(self, i):
        return self.layers[i]

    def __iter__(self):
        return iter(self.layers)

    def _named(self, attr):
        out = {}
        for i, layer in enumerate(self.layers):
            for name, value in getattr(layer, attr).items():
                out[f"{i}.{name}"] = value
        return out

    @property
    def params(self):
        return self._named("params")

    @property
    def grads(self):
        return self._named("grads")

    def buffers(self):
        out = {}
        for i, layer in enumerate(self.layers):
            for name, value in layer.buffers().items():
                out[f"{i}.{name}"] = value
        return out

    def parameters(self):
        for layer in self.layers:
            yield from layer.parameters()

    def train(self, mode=True):
        self.training = bool(mode)
        for layer in self.layers:
            layer.train(mode)
        return self

    def set_backend(self, backend):
        super().set_backend(backend)
        for layer in self.layers:
            layer.set_backend(backend)
        return self

    def __repr__(self):
        inner = "".join(f"\n  ({i}): {layer!r}" for i, layer in enumerate(self.layers))
        return f"Sequential({inner}\n)"


# --------------------------------------------------------------------------- losses

class CrossEntropyLoss(Module):
    """Softmax + negative log-likelihood on integer class labels, mean over the
    batch, as torch.nn.CrossEntropyLoss: ``forward(logits (N, C), target (N,))
    -> float``; ``backward() -> grad_logits``. The log-softmax subtracts the row
    maximum first, so large logits neither overflow nor lose precision."""

    def forward(self, pred, target):
        name = type(self).__name__
        x = _args.as_float_array(pred, "input", name)
        t = np.asarray(target)
        if x.ndim != 2:
            raise ValueError(f"{name}: input must be (N, C) logits, got shape {x.shape}")
        if t.dtype.kind not in "iu":
            raise TypeError(f"{name}: target must hold integer class labels, got dtype "
                            f"{t.dtype}")
        if t.shape != (x.shape[0],):
            raise ValueError(f"{name}: target must have shape ({x.shape[0]},), "
                             f"got {t.shape}")
        if t.size and (t.min() < 0 or t.max() >= x.shape[1]):
            raise ValueError(f"{name}: target labels must be in [0, {x.shape[1]}), got "
                             f"values in [{t.min()}, {t.max()}]")
        n = x.shape[0]
        shifted = x - x.max(axis=1, keepdims=True) if x.size else x
        log_z = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        log_p = shifted - log_z
        self._cache = (log_p, t)
        if n == 0:
            return float("nan")
        return float(-log_p[np.arange(n), t].mean())

    def backward(self, grad_output=None):
        """grad of the mean loss w.r.t. the logits, times grad_output (default 1)."""
        log_p, t = self._need_cache()
        n = log_p.shape[0]
        grad = np.exp(log_p)
        grad[np.arange(n), t] -= 1
        scale = (1.0 if grad_output is None else float(grad_output)) / max(n, 1)
        grad *= grad.dtype.type(scale)
        return grad


class MSELoss(Module):
    """mean((pred - target)^2) over every element; shapes must match."""

    def forward(self, pred, target):
        name = type(self).__name__
        x = _args.as_float_array(pred, "input", name)
        t = _args.as_float_array(target, "target", name)
        _args.same_dtype(name, input=x, target=t)
        if x.shape != t.shape:
            raise ValueError(f"{name}: input shape {x.shape} and target shape {t.shape} "
                             f"differ (no broadcasting)")
        diff = x - t
        self._cache = diff
        return float(np.mean(diff * diff)) if diff.size else float("nan")

    def backward(self, grad_output=None):
        diff = self._need_cache()
        scale = (1.0 if grad_output is None else float(grad_output)) * 2.0 / max(diff.size, 1)
        return diff * diff.dtype.type(scale)
