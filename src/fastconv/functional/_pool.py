"""Pooling forward and backward (1-D, 2-D, 3-D max, average, adaptive average and
adaptive max), with PyTorch's semantics in every detail.

Arguments are validated here, once; output sizes come from _shapes; the C
kernels (csrc/pool_template.h) run direct loops on each (n, c) plane, the 1-D
and 2-D ops lifted to 3-D so one loop nest serves all three.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from math import prod
from typing import Literal, Optional, Tuple, Union, overload

import numpy as np

from .. import _args, _callcache, _kernels, _shapes, _threads
from .._conventions import POOL, POOL_BACKWARD, pytorch_forms
from .._types import (Array, ArrayLike, Indices, OptSize1, OptSize2, OptSize3, OutSize1,
                      OutSize2, OutSize3, Shape, Size1, Size2, Size3)
from ._doc import (ADAPTIVE_AVG_POOL_BACKWARD_DOC, ADAPTIVE_AVG_POOL_DOC,
                   ADAPTIVE_MAX_POOL_BACKWARD_DOC, ADAPTIVE_MAX_POOL_DOC, AVG_POOL_BACKWARD_DOC,
                   AVG_POOL_DOC, MAX_POOL_BACKWARD_DOC, MAX_POOL_DOC, filled)
from . import _plan
from ._geometry import lift

_LAYOUTS = {1: "(N, C, L)", 2: "(N, C, H, W)", 3: "(N, C, D, H, W)"}


@_callcache.plain_type
@dataclass(frozen=True)
class PoolWindow:
    """Pooling geometry over nd spatial axes (tuples of length nd)."""
    in_size: tuple
    kernel: tuple
    stride: tuple
    padding: tuple
    dilation: tuple
    ceil_mode: bool

    @cached_property
    def out_size(self):
        return tuple(_shapes.pool_output_size(n, k, s, p, d, self.ceil_mode)
                     for n, k, s, p, d in zip(self.in_size, self.kernel, self.stride,
                                              self.padding, self.dilation))

    def kernel_geometry(self, planes):
        """The geometry the C kernels take, with the batch folded into planes."""
        return _pool_geometry(self, planes)


@_callcache.memoize
def _pool_geometry(win, planes):
    """PoolWindow.kernel_geometry, built once per window and plane count."""
    return _kernels.Geometry(planes, lift(win.in_size, 1), lift(win.out_size, 1),
                             lift(win.kernel, 1), lift(win.stride, 1),
                             lift(win.padding, 0), lift(win.dilation, 1))


def _flag(value, name, op):
    """A bool from a bool (or the ints 0 and 1); anything else is a TypeError
    rather than a silent truth test."""
    if isinstance(value, (bool, np.bool_)) or (
            isinstance(value, (int, np.integer)) and value in (0, 1)):
        return bool(value)
    raise TypeError(f"{op}: {name} must be a bool, got {name}={value!r}")


@_callcache.memoize
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
    # padding <= kernel // 2 keeps an input tap in every window, except that
    # dilation can step a window over a tiny input: such a window gives -inf
    # and, as in PyTorch, the index of its first tap at or past 0 on each
    # axis (the kernel's convention), which may lie outside the plane.
    return win


def _input(op, nd, input, name="input"):
    x = _args.as_float_array(input, name, op)
    _args.check_ndim(x, nd + 2, name, op, _LAYOUTS[nd])
    return x


@_callcache.memoize
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
    # The kernels take an int64 (as PyTorch's divisor_override is).
    if d == 0 or not -2**63 < d < 2**63:
        raise ValueError(f"{op}: divisor_override must be a non-zero int of magnitude "
                         f"below 2**63, got divisor_override={value!r}")
    return d


def _plane_call(win, planes, *arrays):
    """The arguments of the one kernel call of a pooling pass over `planes`
    (N * C) planes with window `win`: its geometry, the thread count and each
    C-contiguous array flat (None stays None).  (One call for the whole pass:
    the kernels poll for Ctrl-C themselves, csrc/stop.c.)"""
    return (_plane_geometry(win, planes), _threads.get_num_threads()) + tuple(
        None if a is None else a.reshape(-1) for a in arrays)


@_callcache.memoize
def _plane_geometry(win, planes):
    """The kernel geometry of `win` over `planes` planes, worked out once per
    window and plane count."""
    return win.kernel_geometry(planes)


# ---------------------------------------------------------------------------
# Max pooling
# ---------------------------------------------------------------------------

def _forward_input(op, input):
    """A forward's input as an ndarray; its dtype and ndim are checked with
    the call's other shape-only checks (_check_input, memoised)."""
    return input if type(input) is np.ndarray else _args.as_array(input, "input", op)


def _check_input(op, nd, x_shape, dtype_key):
    """The dtype and ndim rules of a pooling input, in the order _input
    checks them; returns its dtype."""
    dtype = _args.key_dtype(dtype_key)
    _args.check_float_dtype(dtype, "input", op)
    _args.check_ndim(_args.meta(x_shape, dtype), nd + 2, "input", op, _LAYOUTS[nd])
    return dtype


def _pool_forward(kind, win, x_shape, dtype, **options):
    """The typed kernel call (_kernels.PoolForward) of a pooling forward of
    `kind` with window `win` on an input of x_shape."""
    n, c = x_shape[:2]
    return _kernels.PoolForward(dtype.char, win.kernel_geometry(n * c), (n, c) + win.out_size,
                                kind, **options)


@_callcache.memoize
def _max_pool_call(op, nd, x_shape, dtype, kernel_size, stride, padding, dilation, ceil_mode,
                   return_indices):
    """Everything a max pooling forward's shapes, dtype and size arguments
    decide, once per distinct call: every check passed and its typed kernel
    call (which allocates the results) built."""
    dtype = _check_input(op, nd, x_shape, dtype)
    win = _window(op, nd, x_shape[2:], kernel_size, stride, padding, dilation, ceil_mode)
    with_indices = _flag(return_indices, "return_indices", op)
    return _pool_forward("max", win, x_shape, dtype, with_indices=with_indices)


def _max_pool(op, nd, input, kernel_size, stride, padding, dilation, ceil_mode,
              return_indices):
    x = _forward_input(op, input)
    call = _max_pool_call(op, nd, x.shape, _args.dtype_key(x.dtype), kernel_size, stride,
                          padding, dilation, ceil_mode, return_indices)
    return call.run(_args.contiguous(x), _threads.get_num_threads())


def _max_pool_backward(op, nd, grad_output, indices, input_shape):
    g = _input(op, nd, grad_output, "grad_output")
    shape = _input_shape(op, nd, input_shape)
    if not isinstance(indices, np.ndarray):
        indices = np.asarray(indices)
    # Either byte order: the require() below converts to the native one.
    if indices.dtype.newbyteorder("=") != np.int64:
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
    geom = _sizes_geometry(n * c, in_size, out_size)
    bad = _kernels.max_pool_backward(g.reshape(-1), indices.reshape(-1), geom,
                                     grad_input.reshape(-1), _threads.get_num_threads())
    if bad >= 0:
        where = np.unravel_index(bad, g.shape)
        raise ValueError(f"{op}: indices{list(map(int, where))} = "
                         f"{int(indices.reshape(-1)[bad])} is outside the input plane "
                         f"of {prod(in_size)} elements (input_shape={shape})")
    return grad_input


@overload
def max_pool1d(input: ArrayLike, kernel_size: Size1, stride: OptSize1 = None,
               padding: Size1 = 0, dilation: Size1 = 1, ceil_mode: bool = False,
               return_indices: Literal[False] = False) -> Array: ...
@overload
def max_pool1d(input: ArrayLike, kernel_size: Size1, stride: OptSize1 = None,
               padding: Size1 = 0, dilation: Size1 = 1, ceil_mode: bool = False, *,
               return_indices: Literal[True]) -> Tuple[Array, Indices]: ...
@overload
def max_pool1d(input: ArrayLike, kernel_size: Size1, stride: OptSize1 = None,
               padding: Size1 = 0, dilation: Size1 = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> Union[Array, Tuple[Array, Indices]]: ...


@pytorch_forms(POOL, nd=1)
@filled(MAX_POOL_DOC, 1)
def max_pool1d(input: ArrayLike, kernel_size: Size1, stride: OptSize1 = None,
               padding: Size1 = 0, dilation: Size1 = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> Union[Array, Tuple[Array, Indices]]:
    return _max_pool("max_pool1d", 1, input, kernel_size, stride, padding, dilation,
                     ceil_mode, return_indices)


@overload
def max_pool2d(input: ArrayLike, kernel_size: Size2, stride: OptSize2 = None,
               padding: Size2 = 0, dilation: Size2 = 1, ceil_mode: bool = False,
               return_indices: Literal[False] = False) -> Array: ...
@overload
def max_pool2d(input: ArrayLike, kernel_size: Size2, stride: OptSize2 = None,
               padding: Size2 = 0, dilation: Size2 = 1, ceil_mode: bool = False, *,
               return_indices: Literal[True]) -> Tuple[Array, Indices]: ...
@overload
def max_pool2d(input: ArrayLike, kernel_size: Size2, stride: OptSize2 = None,
               padding: Size2 = 0, dilation: Size2 = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> Union[Array, Tuple[Array, Indices]]: ...


@pytorch_forms(POOL, nd=2)
@filled(MAX_POOL_DOC, 2)
def max_pool2d(input: ArrayLike, kernel_size: Size2, stride: OptSize2 = None,
               padding: Size2 = 0, dilation: Size2 = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> Union[Array, Tuple[Array, Indices]]:
    return _max_pool("max_pool2d", 2, input, kernel_size, stride, padding, dilation,
                     ceil_mode, return_indices)


@overload
def max_pool3d(input: ArrayLike, kernel_size: Size3, stride: OptSize3 = None,
               padding: Size3 = 0, dilation: Size3 = 1, ceil_mode: bool = False,
               return_indices: Literal[False] = False) -> Array: ...
@overload
def max_pool3d(input: ArrayLike, kernel_size: Size3, stride: OptSize3 = None,
               padding: Size3 = 0, dilation: Size3 = 1, ceil_mode: bool = False, *,
               return_indices: Literal[True]) -> Tuple[Array, Indices]: ...
@overload
def max_pool3d(input: ArrayLike, kernel_size: Size3, stride: OptSize3 = None,
               padding: Size3 = 0, dilation: Size3 = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> Union[Array, Tuple[Array, Indices]]: ...


@pytorch_forms(POOL, nd=3)
@filled(MAX_POOL_DOC, 3)
def max_pool3d(input: ArrayLike, kernel_size: Size3, stride: OptSize3 = None,
               padding: Size3 = 0, dilation: Size3 = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> Union[Array, Tuple[Array, Indices]]:
    return _max_pool("max_pool3d", 3, input, kernel_size, stride, padding, dilation,
                     ceil_mode, return_indices)


@pytorch_forms(POOL_BACKWARD, nd=1)
@filled(MAX_POOL_BACKWARD_DOC, 1)
def max_pool1d_backward(grad_output: ArrayLike, indices: ArrayLike,
                        input_shape: Shape) -> Array:
    return _max_pool_backward("max_pool1d_backward", 1, grad_output, indices, input_shape)


@pytorch_forms(POOL_BACKWARD, nd=2)
@filled(MAX_POOL_BACKWARD_DOC, 2)
def max_pool2d_backward(grad_output: ArrayLike, indices: ArrayLike,
                        input_shape: Shape) -> Array:
    return _max_pool_backward("max_pool2d_backward", 2, grad_output, indices, input_shape)


@pytorch_forms(POOL_BACKWARD, nd=3)
@filled(MAX_POOL_BACKWARD_DOC, 3)
def max_pool3d_backward(grad_output: ArrayLike, indices: ArrayLike,
                        input_shape: Shape) -> Array:
    return _max_pool_backward("max_pool3d_backward", 3, grad_output, indices, input_shape)


# ---------------------------------------------------------------------------
# Average pooling
# ---------------------------------------------------------------------------

@_callcache.memoize
def _avg_args(op, nd, in_size, kernel_size, stride, padding, ceil_mode,
              count_include_pad, divisor_override):
    win = _window(op, nd, in_size, kernel_size, stride, padding, 1, ceil_mode)
    return (win, _flag(count_include_pad, "count_include_pad", op),
            _divisor(divisor_override, op))


@_callcache.memoize
def _avg_pool_call(op, nd, x_shape, dtype, kernel_size, stride, padding, ceil_mode,
                   count_include_pad, divisor_override):
    """As _max_pool_call, for an average pooling forward."""
    dtype = _check_input(op, nd, x_shape, dtype)
    win, include_pad, divisor = _avg_args(op, nd, x_shape[2:], kernel_size, stride, padding,
                                          ceil_mode, count_include_pad, divisor_override)
    return _pool_forward("avg", win, x_shape, dtype, flag=include_pad, divisor=divisor)


def _avg_pool(op, nd, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
              divisor_override):
    x = _forward_input(op, input)
    call = _avg_pool_call(op, nd, x.shape, _args.dtype_key(x.dtype), kernel_size, stride,
                          padding, ceil_mode, count_include_pad, divisor_override)
    return call.run(_args.contiguous(x), _threads.get_num_threads())


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
    geom, nthreads, g_flat, grad_flat = _plane_call(win, shape[0] * shape[1], g, grad_input)
    _kernels.avg_pool_backward(g_flat, geom, include_pad, divisor, grad_flat, nthreads)
    return grad_input


@pytorch_forms(POOL, nd=1)
@filled(AVG_POOL_DOC, 1,
        torch_note=" (divisor_override is an extension: PyTorch's avg_pool1d lacks it)")
def avg_pool1d(input: ArrayLike, kernel_size: Size1, stride: OptSize1 = None,
               padding: Size1 = 0, ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: Optional[int] = None) -> Array:
    return _avg_pool("avg_pool1d", 1, input, kernel_size, stride, padding, ceil_mode,
                     count_include_pad, divisor_override)


@pytorch_forms(POOL, nd=2)
@filled(AVG_POOL_DOC, 2)
def avg_pool2d(input: ArrayLike, kernel_size: Size2, stride: OptSize2 = None,
               padding: Size2 = 0, ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: Optional[int] = None) -> Array:
    return _avg_pool("avg_pool2d", 2, input, kernel_size, stride, padding, ceil_mode,
                     count_include_pad, divisor_override)


@pytorch_forms(POOL, nd=3)
@filled(AVG_POOL_DOC, 3)
def avg_pool3d(input: ArrayLike, kernel_size: Size3, stride: OptSize3 = None,
               padding: Size3 = 0, ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: Optional[int] = None) -> Array:
    return _avg_pool("avg_pool3d", 3, input, kernel_size, stride, padding, ceil_mode,
                     count_include_pad, divisor_override)


@pytorch_forms(POOL_BACKWARD, nd=1)
@filled(AVG_POOL_BACKWARD_DOC, 1)
def avg_pool1d_backward(grad_output: ArrayLike, input_shape: Shape, kernel_size: Size1,
                        stride: OptSize1 = None, padding: Size1 = 0, ceil_mode: bool = False,
                        count_include_pad: bool = True,
                        divisor_override: Optional[int] = None) -> Array:
    return _avg_pool_backward("avg_pool1d_backward", 1, grad_output, input_shape,
                              kernel_size, stride, padding, ceil_mode, count_include_pad,
                              divisor_override)


@pytorch_forms(POOL_BACKWARD, nd=2)
@filled(AVG_POOL_BACKWARD_DOC, 2)
def avg_pool2d_backward(grad_output: ArrayLike, input_shape: Shape, kernel_size: Size2,
                        stride: OptSize2 = None, padding: Size2 = 0, ceil_mode: bool = False,
                        count_include_pad: bool = True,
                        divisor_override: Optional[int] = None) -> Array:
    return _avg_pool_backward("avg_pool2d_backward", 2, grad_output, input_shape,
                              kernel_size, stride, padding, ceil_mode, count_include_pad,
                              divisor_override)


@pytorch_forms(POOL_BACKWARD, nd=3)
@filled(AVG_POOL_BACKWARD_DOC, 3)
def avg_pool3d_backward(grad_output: ArrayLike, input_shape: Shape, kernel_size: Size3,
                        stride: OptSize3 = None, padding: Size3 = 0, ceil_mode: bool = False,
                        count_include_pad: bool = True,
                        divisor_override: Optional[int] = None) -> Array:
    return _avg_pool_backward("avg_pool3d_backward", 3, grad_output, input_shape,
                              kernel_size, stride, padding, ceil_mode, count_include_pad,
                              divisor_override)


# ---------------------------------------------------------------------------
# Adaptive pooling (average and max, 1-D, 2-D, 3-D)
# ---------------------------------------------------------------------------

@_callcache.memoize
def _sizes_geometry(planes, in_size, out_size):
    """A geometry of sizes only (kernel, stride, dilation 1, no padding): the
    max-pool scatter, adaptive pooling and interpolation map each plane's
    in_size onto out_size and read nothing else."""
    one = (1, 1, 1)
    return _kernels.Geometry(planes, lift(in_size, 1), lift(out_size, 1), one, one,
                             (0, 0, 0), one)


def _adaptive_input(op, nd, input, output_size):
    """(input array, output spatial size) of an adaptive pooling call; a None
    entry of output_size keeps that input size (as PyTorch)."""
    x = _input(op, nd, input)
    return _args.contiguous(x), _adaptive_output_size(op, nd, x.shape, x.dtype, output_size)


@_callcache.memoize
def _adaptive_output_size(op, nd, x_shape, dtype, output_size):
    """The output spatial size of an adaptive pooling call on an input of
    x_shape (the shape half of its checks, run once per distinct call)."""
    in_size = x_shape[2:]
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
                         f"{x_shape}")
    _args.check_alloc(op, "output", x_shape[:2] + out_size, dtype,
                      f"output_size={output_size!r}")
    return out_size


def _adaptive_avg_pool(op, nd, input, output_size, explain=False):
    x, out_size = _adaptive_input(op, nd, input, output_size)
    if explain:
        return _plan.adaptive_avg_pool_plan(out_size, x.nbytes)
    n, c = x.shape[:2]
    out = np.empty((n, c) + out_size, dtype=x.dtype)
    geometry = _sizes_geometry(n * c, x.shape[2:], out_size)
    threads = _threads.get_num_threads()
    if _plan.plan_adaptive_avg_pool(out_size) == _plan.GLOBAL_MEAN:
        _kernels.global_avg_pool(x.reshape(-1), geometry, _plan.global_mean_prefetch(x.nbytes),
                                 out.reshape(-1), threads)
    else:
        _kernels.adaptive_avg_pool(x.reshape(-1), geometry, out.reshape(-1), threads)
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
        g.reshape(-1), _sizes_geometry(shape[0] * shape[1], shape[2:], g.shape[2:]),
        grad_input.reshape(-1), _threads.get_num_threads())
    return grad_input


def _adaptive_max_pool(op, nd, input, output_size, return_indices):
    x, out_size = _adaptive_input(op, nd, input, output_size)
    return_indices = _flag(return_indices, "return_indices", op)
    n, c = x.shape[:2]
    out = np.empty((n, c) + out_size, dtype=x.dtype)
    indices = np.empty(out.shape, dtype=np.int64) if return_indices else None
    _kernels.max_pool(x.reshape(-1), _sizes_geometry(n * c, x.shape[2:], out_size),
                      out.reshape(-1), None if indices is None else indices.reshape(-1),
                      _threads.get_num_threads(), adaptive=True)
    return (out, indices) if return_indices else out


@pytorch_forms(POOL, nd=1)
@filled(ADAPTIVE_AVG_POOL_DOC, 1)
def adaptive_avg_pool1d(input: ArrayLike, output_size: OutSize1) -> Array:
    return _adaptive_avg_pool("adaptive_avg_pool1d", 1, input, output_size)


@pytorch_forms(POOL, nd=2)
@filled(ADAPTIVE_AVG_POOL_DOC, 2)
def adaptive_avg_pool2d(input: ArrayLike, output_size: OutSize2) -> Array:
    return _adaptive_avg_pool("adaptive_avg_pool2d", 2, input, output_size)


@pytorch_forms(POOL, nd=3)
@filled(ADAPTIVE_AVG_POOL_DOC, 3)
def adaptive_avg_pool3d(input: ArrayLike, output_size: OutSize3) -> Array:
    return _adaptive_avg_pool("adaptive_avg_pool3d", 3, input, output_size)


@pytorch_forms(POOL_BACKWARD, nd=1)
@filled(ADAPTIVE_AVG_POOL_BACKWARD_DOC, 1)
def adaptive_avg_pool1d_backward(grad_output: ArrayLike, input_shape: Shape) -> Array:
    return _adaptive_avg_pool_backward("adaptive_avg_pool1d_backward", 1, grad_output,
                                       input_shape)


@pytorch_forms(POOL_BACKWARD, nd=2)
@filled(ADAPTIVE_AVG_POOL_BACKWARD_DOC, 2)
def adaptive_avg_pool2d_backward(grad_output: ArrayLike, input_shape: Shape) -> Array:
    return _adaptive_avg_pool_backward("adaptive_avg_pool2d_backward", 2, grad_output,
                                       input_shape)


@pytorch_forms(POOL_BACKWARD, nd=3)
@filled(ADAPTIVE_AVG_POOL_BACKWARD_DOC, 3)
def adaptive_avg_pool3d_backward(grad_output: ArrayLike, input_shape: Shape) -> Array:
    return _adaptive_avg_pool_backward("adaptive_avg_pool3d_backward", 3, grad_output,
                                       input_shape)


@overload
def adaptive_max_pool1d(input: ArrayLike, output_size: OutSize1,
                        return_indices: Literal[False] = False) -> Array: ...
@overload
def adaptive_max_pool1d(input: ArrayLike, output_size: OutSize1, *,
                        return_indices: Literal[True]) -> Tuple[Array, Indices]: ...
@overload
def adaptive_max_pool1d(input: ArrayLike, output_size: OutSize1,
                        return_indices: bool = False) -> Union[Array, Tuple[Array, Indices]]: ...


@pytorch_forms(POOL, nd=1)
@filled(ADAPTIVE_MAX_POOL_DOC, 1)
def adaptive_max_pool1d(input: ArrayLike, output_size: OutSize1,
                        return_indices: bool = False) -> Union[Array, Tuple[Array, Indices]]:
    return _adaptive_max_pool("adaptive_max_pool1d", 1, input, output_size, return_indices)


@overload
def adaptive_max_pool2d(input: ArrayLike, output_size: OutSize2,
                        return_indices: Literal[False] = False) -> Array: ...
@overload
def adaptive_max_pool2d(input: ArrayLike, output_size: OutSize2, *,
                        return_indices: Literal[True]) -> Tuple[Array, Indices]: ...
@overload
def adaptive_max_pool2d(input: ArrayLike, output_size: OutSize2,
                        return_indices: bool = False) -> Union[Array, Tuple[Array, Indices]]: ...


@pytorch_forms(POOL, nd=2)
@filled(ADAPTIVE_MAX_POOL_DOC, 2)
def adaptive_max_pool2d(input: ArrayLike, output_size: OutSize2,
                        return_indices: bool = False) -> Union[Array, Tuple[Array, Indices]]:
    return _adaptive_max_pool("adaptive_max_pool2d", 2, input, output_size, return_indices)


@overload
def adaptive_max_pool3d(input: ArrayLike, output_size: OutSize3,
                        return_indices: Literal[False] = False) -> Array: ...
@overload
def adaptive_max_pool3d(input: ArrayLike, output_size: OutSize3, *,
                        return_indices: Literal[True]) -> Tuple[Array, Indices]: ...
@overload
def adaptive_max_pool3d(input: ArrayLike, output_size: OutSize3,
                        return_indices: bool = False) -> Union[Array, Tuple[Array, Indices]]: ...


@pytorch_forms(POOL, nd=3)
@filled(ADAPTIVE_MAX_POOL_DOC, 3)
def adaptive_max_pool3d(input: ArrayLike, output_size: OutSize3,
                        return_indices: bool = False) -> Union[Array, Tuple[Array, Indices]]:
    return _adaptive_max_pool("adaptive_max_pool3d", 3, input, output_size, return_indices)


@pytorch_forms(POOL_BACKWARD, nd=1)
@filled(ADAPTIVE_MAX_POOL_BACKWARD_DOC, 1)
def adaptive_max_pool1d_backward(grad_output: ArrayLike, indices: ArrayLike,
                                 input_shape: Shape) -> Array:
    return _max_pool_backward("adaptive_max_pool1d_backward", 1, grad_output, indices,
                              input_shape)


@pytorch_forms(POOL_BACKWARD, nd=2)
@filled(ADAPTIVE_MAX_POOL_BACKWARD_DOC, 2)
def adaptive_max_pool2d_backward(grad_output: ArrayLike, indices: ArrayLike,
                                 input_shape: Shape) -> Array:
    return _max_pool_backward("adaptive_max_pool2d_backward", 2, grad_output, indices,
                              input_shape)


@pytorch_forms(POOL_BACKWARD, nd=3)
@filled(ADAPTIVE_MAX_POOL_BACKWARD_DOC, 3)
def adaptive_max_pool3d_backward(grad_output: ArrayLike, indices: ArrayLike,
                                 input_shape: Shape) -> Array:
    return _max_pool_backward("adaptive_max_pool3d_backward", 3, grad_output, indices,
                              input_shape)
