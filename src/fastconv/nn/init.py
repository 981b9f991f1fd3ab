"""Parameter initialisation, as torch.nn.init: each function fills a float
ndarray in place and returns it. Random ones take ``rng`` (None, an int seed
or a np.random.Generator) where PyTorch takes ``generator``.

fan_in / fan_out follow PyTorch: for a weight of shape (d0, d1, *kernel),
fan_in = d1 * prod(kernel) and fan_out = d0 * prod(kernel).
"""
import math

import numpy as np

from . import _checks

__all__ = ["calculate_gain", "uniform_", "normal_", "constant_", "zeros_", "ones_",
           "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_"]

_LINEAR_GAIN = ("linear", "identity", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
                "conv_transpose2d", "conv_transpose3d", "sigmoid")


def calculate_gain(nonlinearity, param=None):
    """The recommended gain for a nonlinearity (torch.nn.init.calculate_gain)."""
    if nonlinearity in _LINEAR_GAIN:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else _checks.real(param, "param", "calculate_gain")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity={nonlinearity!r}")


def _target(array, owner):
    if not isinstance(array, np.ndarray) or array.dtype not in _checks.FLOAT_DTYPES:
        raise TypeError(f"{owner}: expected a float32/float64 ndarray, got {array!r:.60}")
    if not array.flags.writeable:
        raise ValueError(f"{owner}: the array is read-only")
    return array


def fans(array):
    """(fan_in, fan_out) of a weight array, as PyTorch computes them."""
    if array.ndim < 2:
        raise ValueError(f"fan in and fan out need an array of at least 2 dims, got shape "
                         f"{array.shape}")
    receptive = math.prod(array.shape[2:])
    return array.shape[1] * receptive, array.shape[0] * receptive


def _fan(array, mode, owner):
    _checks.choice(mode, "mode", owner, ("fan_in", "fan_out"))
    fan_in, fan_out = fans(array)
    return fan_in if mode == "fan_in" else fan_out


def uniform_(array, a=0.0, b=1.0, rng=None):
    _target(array, "uniform_")[...] = _checks.rng(rng).uniform(a, b, array.shape)
    return array


def normal_(array, mean=0.0, std=1.0, rng=None):
    _target(array, "normal_")[...] = _checks.rng(rng).normal(mean, std, array.shape)
    return array


def constant_(array, val):
    _target(array, "constant_").fill(val)
    return array


def zeros_(array):
    return constant_(array, 0.0)


def ones_(array):
    return constant_(array, 1.0)


def _bounded_uniform(array, bound, rng):
    # Drawn in float64 and rounded to the array's dtype, so a seed gives the
    # same parameters in float32 and float64 (up to rounding).
    array[...] = _checks.rng(rng).uniform(-bound, bound, array.shape)
    return array


def xavier_uniform_(array, gain=1.0, rng=None):
    """U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = fans(_target(array, "xavier_uniform_"))
    std = gain * math.sqrt(2.0 / max(fan_in + fan_out, 1))
    return _bounded_uniform(array, math.sqrt(3.0) * std, rng)


def xavier_normal_(array, gain=1.0, rng=None):
    """N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = fans(_target(array, "xavier_normal_"))
    return normal_(array, 0.0, gain * math.sqrt(2.0 / max(fan_in + fan_out, 1)), rng)


def kaiming_uniform_(array, a=0.0, mode="fan_in", nonlinearity="leaky_relu", rng=None):
    """U(-bound, bound), bound = gain * sqrt(3 / fan). Layers' default init is
    this with a=sqrt(5): bound = 1 / sqrt(fan_in)."""
    fan = _fan(_target(array, "kaiming_uniform_"), mode, "kaiming_uniform_")
    if fan == 0:
        return array                        # zero-size weight: nothing to draw
    gain = calculate_gain(nonlinearity, a)
    return _bounded_uniform(array, math.sqrt(3.0) * gain / math.sqrt(fan), rng)


def kaiming_normal_(array, a=0.0, mode="fan_in", nonlinearity="leaky_relu", rng=None):
    """N(0, std^2), std = gain / sqrt(fan)."""
    fan = _fan(_target(array, "kaiming_normal_"), mode, "kaiming_normal_")
    if fan == 0:
        return array
    return normal_(array, 0.0, calculate_gain(nonlinearity, a) / math.sqrt(fan), rng)


def default_layer_init(weight, bias, rng):
    """PyTorch's reset_parameters of Linear and the conv layers:
    kaiming_uniform_(a=sqrt(5)) for the weight, U(-1/sqrt(fan_in), ..) for the
    bias, both from one generator (weight first)."""
    rng = _checks.rng(rng)
    kaiming_uniform_(weight, a=math.sqrt(5), rng=rng)
    if bias is not None:
        fan_in = fans(weight)[0]
        _bounded_uniform(bias, 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0, rng)
