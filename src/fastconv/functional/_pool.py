"""Pooling forward and backward (1-D, 2-D, 3-D max, average, adaptive average and
adaptive max), with PyTorch's semantics in every detail.

Arguments are validated here, once; output sizes come from _shapes; the C
kernels (csrc/pool_template.h) run direct loops on each (n, c) plane, the 1-D
and 2-D ops lifted to 3-D so one loop nest serves all three.
"""
from dataclasses import dataclass
from math import prod

import numpy as np

from .. import _args, _kernels, _shapes, _threads
from ._geometry import lift

_LAYOUTS = {1: "(N, C, L)", 2: "(N, C, H, W)", 3: "(N, C, D, H, W)"}


@dataclass(frozen=True)
class PoolWindow:
    """Pooling geometry over nd spatial axes (tuples of length nd)."""
    in_size: tuple
    kernel: tuple
    stride: tuple
    padding: tuple
    dilation: tuple
    ceil_mode: bool

    @property
    def out_size(self):
        return tuple(_shapes.pool_output_size(n, k, s, p, d, self.ceil_mode)
                     for n, k, s, p, d in zip(self.in_size, self.kernel, self.stride,
                                              self.padding, self.dilation))

    def kernel_geometry(self, planes):
        """The tuple the C kernels take, with the batch folded into planes."""
        return (planes, lift(self.in_size, 1), lift(self.out_size, 1),
                lift(self.kernel, 1), lift(self.stride, 1), lift(self.padding, 0),
                lift(self.dilation, 1))


def _flag(value, name, op):
    """A bool from a bool (or the ints 0 and 1); anything else is a TypeError
    rather than a silent truth test."""
    if isinstance(value, (bool, np.bool_)) or (
            isinstance(value, (int, np.integer)) and value in (0, 1)):
        return bool(value)
    raise TypeError(f"{op}: {name} must be a bool, got {name}={value!r}")


def _window(op, nd, in_size, kernel_size, stride, padding, dilation, ceil_mode):
    """Validated PoolWindow of a pooling call (PyTorch's rules)."""
    kernel = _args.int_tuple(kernel_size, nd, "kernel_size", op, minimum=1)
    stride = kernel if stride is None else _args.int_tuple(stride, nd, "stride", op,
                                                           minimum=1)
    padding = _args.int_tuple(padding, nd, "padding", op, minimum=0)
    dilation = _args.int_tuple(dilation, nd, "dilation", op, minimum=1)
    ceil_mode = _flag(ceil_mode, "ceil_mode", op)
    # A larger padding would allow windows of padding only (PyTorch's rule).
    if any(p > k // 2 for p, k in zip(padding, kernel)):
        raise ValueError(f"{op}: padding must be at most kernel_size // 2, got "
                         f"padding={padding} for kernel_size={kernel}")
    win = PoolWindow(tuple(in_size), kernel, stride, padding, dilation, ceil_mode)
    if any(o < 1 for o in win.out_size):
        raise ValueError(
            f"{op}: output would be empty (size {win.out_size}): input spatial size "
            f"{win.in_size} with padding={padding} is smaller than the dilated kernel "
            f"{tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))}")
    for axis, (n, k, s, p, d, o) in enumerate(zip(win.in_size, kernel, stride, padding,
                                                   dilation, win.out_size)):
        # padding <= kernel // 2 keeps an input tap in every window, except
        # that dilation can step a window over a tiny input: such a window
        # has no element to pick (PyTorch returns -inf and an index outside
        # the plane there), so it is an error here.
        # Only windows starting in the left padding can miss: the output-size
        # rule starts every other window inside the input.
        if d > 1 and any(_first_tap_inside(i * s - p, d) >= n
                         for i in range(min(o, p // s + 1))):
            raise ValueError(
                f"{op}: a window covers padding only (axis {axis}: input size {n}, "
                f"kernel_size={k}, padding={p}, dilation={d}); use a smaller "
                f"padding or dilation")
    return win


def _first_tap_inside(start, dilation):
    """The first tap position >= 0 of a window starting at `start`."""
    return start if start >= 0 else start + -(start // dilation) * dilation


def _input(op, nd, input, name="input"):
    x = _args.as_float_array(input, name, op)
    _args.check_ndim(x, nd + 2, name, op, _LAYOUTS[nd])
    return x


def _input_shape(op, nd, input_shape):
    """input_shape as a tuple of nd + 2 non-negative ints."""
    if not isinstance(input_shape, (tuple, list)) or len(input_shape) != nd + 2:
        raise ValueError(f"{op}: input_shape must be a tuple of {nd + 2} ints "
                         f"{_LAYOUTS[nd]}, got input_shape={input_shape!r}")
    shape = tuple(_args.as_int(v, "input_shape", op) for v in input_shape)
    if any(v < 0 for v in shape):
        raise ValueError(f"{op}: input_shape must be non-negative, got "
                         f"input_shape={input_shape!r}")
    if any(v > _args.MAX_SIZE for v in shape):
        raise ValueError(f"{op}: input_shape entries must be at most 2**40, got "
                         f"input_shape={input_shape!r}")
    return shape


def _check_grad_output(op, g, expected):
    if g.shape != tuple(expected):
        raise ValueError(f"{op}: grad_output must have shape {tuple(expected)}, "
                         f"got {g.shape}")


def _divisor(value, op):
    """divisor_override: None (0 for the kernels) or a non-zero int."""
    if value is None:
        return 0
    d = _args.as_int(value, "divisor_override", op)
    if d == 0:
        raise ValueError(f"{op}: divisor_override must be a non-zero int, "
                         f"got divisor_override={value!r}")
    return d


# ---------------------------------------------------------------------------
# Max pooling
# ---------------------------------------------------------------------------

def _max_pool(op, nd, input, kernel_size, stride, padding, dilation, ceil_mode,
              return_indices):
    x = _input(op, nd, input)
    win = _window(op, nd, x.shape[2:], kernel_size, stride, padding, dilation, ceil_mode)
    return_indices = _flag(return_indices, "return_indices", op)
    x = _args.contiguous(x)
    n, c = x.shape[:2]
    out = np.empty((n, c) + win.out_size, dtype=x.dtype)
    indices = np.empty(out.shape, dtype=np.int64) if return_indices else None
    _kernels.max_pool(x.reshape(-1), win.kernel_geometry(n * c), out.reshape(-1),
                      None if indices is None else indices.reshape(-1),
                      _threads.get_num_threads())
    return (out, indices) if return_indices else out


def _max_pool_backward(op, nd, grad_output, indices, input_shape):
    g = _input(op, nd, grad_output, "grad_output")
    shape = _input_shape(op, nd, input_shape)
    if not isinstance(indices, np.ndarray):
        indices = np.asarray(indices)
    if indices.dtype != np.int64:
        raise TypeError(f"{op}: indices must have dtype int64, got dtype {indices.dtype}")
    if indices.shape != g.shape:
        raise ValueError(f"{op}: indices must have grad_output's shape {g.shape}, "
                         f"got {indices.shape}")
    if g.shape[:2] != shape[:2]:
        raise ValueError(f"{op}: grad_output shape {g.shape} does not match "
                         f"input_shape={shape} in batch and channels")
    n, c = shape[:2]
    in_size, out_size = shape[2:], g.shape[2:]
    g = _args.contiguous(g)
    indices = np.require(indices, np.dtype(np.int64).newbyteorder("="), ("C", "A"))
    _args.check_alloc(op, "grad_input", shape, g.dtype, f"input_shape={shape}")
    grad_input = np.empty(shape, dtype=g.dtype)
    # The scatter-add needs only the sizes: the indices say where each goes.
    one = (1, 1, 1)
    geom = (n * c, lift(in_size, 1), lift(out_size, 1), one, one, (0, 0, 0), one)
    bad = _kernels.max_pool_backward(g.reshape(-1), indices.reshape(-1), geom,
                                     grad_input.reshape(-1), _threads.get_num_threads())
    if bad >= 0:
        where = np.unravel_index(bad, g.shape)
        raise ValueError(f"{op}: indices{list(map(int, where))} = "
                         f"{int(indices.reshape(-1)[bad])} is outside the input plane "
                         f"of {prod(in_size)} elements (input_shape={shape})")
    return grad_input


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """1-D max pooling of (N, C, L) input, as torch.nn.functional.max_pool1d.
    With return_indices also returns int64 indices: the position l of each
    maximum inside its (n, c) row."""
    return _max_pool("max_pool1d", 1, input, kernel_size, stride, padding, dilation,
                     ceil_mode, return_indices)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """2-D max pooling of (N, C, H, W) input, as torch.nn.functional.max_pool2d.

    stride=None means kernel_size; padding (at most kernel_size // 2) counts
    as -inf; ceil_mode rounds the output size up but drops a last window that
    would start in the right padding. NaN propagates (a window holding NaN
    outputs NaN, its index pointing at a NaN); on ties the first maximum in
    row-major window order wins. With return_indices, also returns int64
    indices, the flat h * W + w of each maximum inside its own (n, c) plane."""
    return _max_pool("max_pool2d", 2, input, kernel_size, stride, padding, dilation,
                     ceil_mode, return_indices)


def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """3-D max pooling of (N, C, D, H, W) input, as torch.nn.functional.max_pool3d;
    indices are the flat d*H*W + h*W + w inside each (n, c) volume."""
    return _max_pool("max_pool3d", 3, input, kernel_size, stride, padding, dilation,
                     ceil_mode, return_indices)


def max_pool1d_backward(grad_output, indices, input_shape):
    """Gradient of max_pool1d: grad_output added at `indices` of a zero
    (N, C, L) = input_shape array."""
    return _max_pool_backward("max_pool1d_backward", 1, grad_output, indices, input_shape)


def max_pool2d_backward(grad_output, indices, input_shape):
    """Gradient of max_pool2d with respect to its input: each grad_output
    element is added at its index inside its (n, c) plane of a zero array of
    input_shape (overlapping windows accumulate). indices must be int64 with
    grad_output's shape and every value inside the plane, else ValueError
    (checked before anything is written)."""
    return _max_pool_backward("max_pool2d_backward", 2, grad_output, indices, input_shape)


def max_pool3d_backward(grad_output, indices, input_shape):
    """Gradient of max_pool3d (indices flat d*H*W + h*W + w per volume)."""
    return _max_pool_backward("max_pool3d_backward", 3, grad_output, indices, input_shape)


# ---------------------------------------------------------------------------
# Average pooling
# ---------------------------------------------------------------------------

def _avg_args(op, nd, in_size, kernel_size, stride, padding, ceil_mode,
              count_include_pad, divisor_override):
    win = _window(op, nd, in_size, kernel_size, stride, padding, 1, ceil_mode)
    return (win, _flag(count_include_pad, "count_include_pad", op),
            _divisor(divisor_override, op))


def _avg_pool(op, nd, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
              divisor_override):
    x = _input(op, nd, input)
    win, include_pad, divisor = _avg_args(op, nd, x.shape[2:], kernel_size, stride,
                                          padding, ceil_mode, count_include_pad,
                                          divisor_override)
    x = _args.contiguous(x)
    n, c = x.shape[:2]
    out = np.empty((n, c) + win.out_size, dtype=x.dtype)
    _kernels.avg_pool(x.reshape(-1), win.kernel_geometry(n * c), include_pad, divisor,
                      out.reshape(-1), _threads.get_num_threads())
    return out


def _avg_pool_backward(op, nd, grad_output, input_shape, kernel_size, stride, padding,
                       ceil_mode, count_include_pad, divisor_override):
    g = _input(op, nd, grad_output, "grad_output")
    shape = _input_shape(op, nd, input_shape)
    win, include_pad, divisor = _avg_args(op, nd, shape[2:], kernel_size, stride,
                                          padding, ceil_mode, count_include_pad,
                                          divisor_override)
    _check_grad_output(op, g, shape[:2] + win.out_size)
    g = _args.contiguous(g)
    grad_input = np.empty(shape, dtype=g.dtype)
    _kernels.avg_pool_backward(g.reshape(-1), win.kernel_geometry(shape[0] * shape[1]),
                               include_pad, divisor, grad_input.reshape(-1),
                               _threads.get_num_threads())
    return grad_input


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """1-D average pooling of (N, C, L) input, as torch.nn.functional.avg_pool1d
    (divisor_override is an extension: PyTorch's avg_pool1d lacks it)."""
    return _avg_pool("avg_pool1d", 1, input, kernel_size, stride, padding, ceil_mode,
                     count_include_pad, divisor_override)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """2-D average pooling of (N, C, H, W) input, as torch.nn.functional.avg_pool2d.

    The divisor is divisor_override (a non-zero int) when given; else with
    count_include_pad the number of window taps inside the padded input
    (padding counts, the ceil_mode overhang past it never does); without it
    the number of taps inside the input."""
    return _avg_pool("avg_pool2d", 2, input, kernel_size, stride, padding, ceil_mode,
                     count_include_pad, divisor_override)


def avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """3-D average pooling of (N, C, D, H, W) input, as torch.nn.functional.avg_pool3d."""
    return _avg_pool("avg_pool3d", 3, input, kernel_size, stride, padding, ceil_mode,
                     count_include_pad, divisor_override)


def avg_pool1d_backward(grad_output, input_shape, kernel_size, stride=None, padding=0,
                        ceil_mode=False, count_include_pad=True, divisor_override=None):
    """Gradient of avg_pool1d with respect to its (N, C, L) = input_shape input."""
    return _avg_pool_backward("avg_pool1d_backward", 1, grad_output, input_shape,
                              kernel_size, stride, padding, ceil_mode, count_include_pad,
                              divisor_override)


def avg_pool2d_backward(grad_output, input_shape, kernel_size, stride=None, padding=0,
                        ceil_mode=False, count_include_pad=True, divisor_override=None):
    """Gradient of avg_pool2d with respect to its input of shape input_shape:
    each window spreads grad / divisor over its in-bounds taps (overlapping
    windows accumulate). grad_output must have avg_pool2d's output shape."""
    return _avg_pool_backward("avg_pool2d_backward", 2, grad_output, input_shape,
                              kernel_size, stride, padding, ceil_mode, count_include_pad,
                              divisor_override)


def avg_pool3d_backward(grad_output, input_shape, kernel_size, stride=None, padding=0,
                        ceil_mode=False, count_include_pad=True, divisor_override=None):
    """Gradient of avg_pool3d with respect to its (N, C, D, H, W) = input_shape input."""
    return _avg_pool_backward("avg_pool3d_backward", 3, grad_output, input_shape,
                              kernel_size, stride, padding, ceil_mode, count_include_pad,
                              divisor_override)


# ---------------------------------------------------------------------------
# Adaptive pooling (average and max, 1-D, 2-D, 3-D)
# ---------------------------------------------------------------------------

def _adaptive_geometry(planes, in_size, out_size):
    """The kernels' geometry tuple of an op that maps each plane's in_size
    onto out_size with no window (adaptive pooling, interpolation)."""
    one = (1, 1, 1)
    return (planes, lift(in_size, 1), lift(out_size, 1), one, one, (0, 0, 0), one)


def _adaptive_input(op, nd, input, output_size):
    """(input array, output spatial size) of an adaptive pooling call; a None
    entry of output_size keeps that input size (as PyTorch)."""
    x = _input(op, nd, input)
    in_size = x.shape[2:]
    if isinstance(output_size, (tuple, list)):
        if len(output_size) != nd:
            raise ValueError(f"{op}: output_size must be an int or a tuple of {nd} ints, "
                             f"got output_size={output_size!r}")
        out_size = tuple(n if o is None else _args.as_int(o, "output_size", op)
                         for o, n in zip(output_size, in_size))
    else:
        out_size = (_args.as_int(output_size, "output_size", op),) * nd
    if any(o < 1 for o in out_size):
        raise ValueError(f"{op}: output_size must be positive, got "
                         f"output_size={output_size!r}")
    if any(o > _args.MAX_SIZE for o in out_size):
        raise ValueError(f"{op}: output_size must be at most 2**40, got "
                         f"output_size={output_size!r}")
    if any(n < 1 for n in in_size):
        raise ValueError(f"{op}: input spatial size must be positive, got input shape "
                         f"{x.shape}")
    _args.check_alloc(op, "output", x.shape[:2] + out_size, x.dtype,
                      f"output_size={output_size!r}")
    return _args.contiguous(x), out_size


def _adaptive_avg_pool(op, nd, input, output_size):
    x, out_size = _adaptive_input(op, nd, input, output_size)
    n, c = x.shape[:2]
    out = np.empty((n, c) + out_size, dtype=x.dtype)
    _kernels.adaptive_avg_pool(x.reshape(-1), _adaptive_geometry(n * c, x.shape[2:], out_size),
                               out.reshape(-1), _threads.get_num_threads())
    return out


def _adaptive_avg_pool_backward(op, nd, grad_output, input_shape):
    g = _input(op, nd, grad_output, "grad_output")
    shape = _input_shape(op, nd, input_shape)
    if g.shape[:2] != shape[:2]:
        raise ValueError(f"{op}: grad_output shape {g.shape} does not match "
                         f"input_shape={shape} in batch and channels")
    if any(o < 1 for o in g.shape[2:]) or any(n < 1 for n in shape[2:]):
        raise ValueError(f"{op}: spatial sizes must be positive, got grad_output shape "
                         f"{g.shape} and input_shape={shape}")
    _args.check_alloc(op, "grad_input", shape, g.dtype, f"input_shape={shape}")
    g = _args.contiguous(g)
    grad_input = np.empty(shape, dtype=g.dtype)
    _kernels.adaptive_avg_pool_backward(
        g.reshape(-1), _adaptive_geometry(shape[0] * shape[1], shape[2:], g.shape[2:]),
        grad_input.reshape(-1), _threads.get_num_threads())
    return grad_input


def _adaptive_max_pool(op, nd, input, output_size, return_indices):
    x, out_size = _adaptive_input(op, nd, input, output_size)
    return_indices = _flag(return_indices, "return_indices", op)
    n, c = x.shape[:2]
    out = np.empty((n, c) + out_size, dtype=x.dtype)
    indices = np.empty(out.shape, dtype=np.int64) if return_indices else None
    _kernels.max_pool(x.reshape(-1), _adaptive_geometry(n * c, x.shape[2:], out_size),
                      out.reshape(-1), None if indices is None else indices.reshape(-1),
                      _threads.get_num_threads(), adaptive=True)
    return (out, indices) if return_indices else out


def adaptive_avg_pool1d(input, output_size):
    """Adaptive 1-D average pooling of (N, C, L) input to (N, C, output_size),
    as torch.nn.functional.adaptive_avg_pool1d: output i averages
    [floor(i*L/out), ceil((i+1)*L/out))."""
    return _adaptive_avg_pool("adaptive_avg_pool1d", 1, input, output_size)


def adaptive_avg_pool2d(input, output_size):
    """Adaptive 2-D average pooling of (N, C, H, W) input to (N, C, oh, ow), as
    torch.nn.functional.adaptive_avg_pool2d: output (i, j) averages rows
    [floor(i*H/oh), ceil((i+1)*H/oh)) and the same for columns. output_size is
    an int or (oh, ow); a None entry keeps that input size (as PyTorch)."""
    return _adaptive_avg_pool("adaptive_avg_pool2d", 2, input, output_size)


def adaptive_avg_pool3d(input, output_size):
    """Adaptive 3-D average pooling of (N, C, D, H, W) input, as
    torch.nn.functional.adaptive_avg_pool3d (bins as adaptive_avg_pool2d)."""
    return _adaptive_avg_pool("adaptive_avg_pool3d", 3, input, output_size)


def adaptive_avg_pool1d_backward(grad_output, input_shape):
    """Gradient of adaptive_avg_pool1d with respect to its (N, C, L) input of
    shape input_shape; the output size is grad_output's."""
    return _adaptive_avg_pool_backward("adaptive_avg_pool1d_backward", 1, grad_output,
                                       input_shape)


def adaptive_avg_pool2d_backward(grad_output, input_shape):
    """Gradient of adaptive_avg_pool2d with respect to its input of shape
    input_shape; the output size is grad_output's."""
    return _adaptive_avg_pool_backward("adaptive_avg_pool2d_backward", 2, grad_output,
                                       input_shape)


def adaptive_avg_pool3d_backward(grad_output, input_shape):
    """Gradient of adaptive_avg_pool3d with respect to its (N, C, D, H, W)
    input of shape input_shape; the output size is grad_output's."""
    return _adaptive_avg_pool_backward("adaptive_avg_pool3d_backward", 3, grad_output,
                                       input_shape)


def adaptive_max_pool1d(input, output_size, return_indices=False):
    """Adaptive 1-D max pooling of (N, C, L) input, as
    torch.nn.functional.adaptive_max_pool1d (bins as adaptive_avg_pool1d).
    NaN propagates and the first maximum wins ties, as max_pool1d; with
    return_indices also returns int64 indices, the position l of each maximum
    inside its (n, c) row."""
    return _adaptive_max_pool("adaptive_max_pool1d", 1, input, output_size, return_indices)


def adaptive_max_pool2d(input, output_size, return_indices=False):
    """Adaptive 2-D max pooling of (N, C, H, W) input to (N, C, oh, ow), as
    torch.nn.functional.adaptive_max_pool2d: bins as adaptive_avg_pool2d,
    NaN propagates, the first maximum in row-major order wins ties; indices
    (int64, with return_indices) are the flat h * W + w inside each plane."""
    return _adaptive_max_pool("adaptive_max_pool2d", 2, input, output_size, return_indices)


def adaptive_max_pool3d(input, output_size, return_indices=False):
    """Adaptive 3-D max pooling of (N, C, D, H, W) input, as
    torch.nn.functional.adaptive_max_pool3d; indices are the flat
    d*H*W + h*W + w inside each (n, c) volume."""
    return _adaptive_max_pool("adaptive_max_pool3d", 3, input, output_size, return_indices)


def adaptive_max_pool1d_backward(grad_output, indices, input_shape):
    """Gradient of adaptive_max_pool1d: grad_output added at `indices` of a
    zero (N, C, L) = input_shape array (checked as max_pool1d_backward)."""
    return _max_pool_backward("adaptive_max_pool1d_backward", 1, grad_output, indices,
                              input_shape)


def adaptive_max_pool2d_backward(grad_output, indices, input_shape):
    """Gradient of adaptive_max_pool2d: each grad_output element added at its
    index inside its (n, c) plane of a zero array of input_shape (bins may
    overlap: they accumulate). Checked as max_pool2d_backward."""
    return _max_pool_backward("adaptive_max_pool2d_backward", 2, grad_output, indices,
                              input_shape)


def adaptive_max_pool3d_backward(grad_output, indices, input_shape):
    """Gradient of adaptive_max_pool3d (indices flat d*H*W + h*W + w)."""
    return _max_pool_backward("adaptive_max_pool3d_backward", 3, grad_output, indices,
                              input_shape)
