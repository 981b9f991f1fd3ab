"""Transposed convolution (1-D, 2-D, 3-D), built from the conv engine.

A transposed conv is the adjoint of a conv with the same weight: its forward
is conv's data gradient, its input gradient is a conv forward, and its weight
gradient is conv's weight gradient with input and grad_output swapped; each
runs the plan _plan.plan_conv makes for that pass.  A strided one may
instead run as one stride-1 conv over its output phases (sub-pixel
decomposition, _Phases), where _plan.plan_conv_transpose says so.  Nothing
here touches a kernel directly.
"""
from __future__ import annotations

import itertools
from math import prod
from typing import Optional

import numpy as np

from .. import _args, _callcache, _kernels, _shapes, _threads, _workspace
from .._conventions import CONV, CONV_BACKWARD, pytorch_forms
from .._types import Array, ArrayLike, Grads, Size1, Size2, Size3
from . import _plan
from ._doc import CONV_TRANSPOSE_BACKWARD_DOC, CONV_TRANSPOSE_DOC, filled
from ._conv import (array_meta, bias_grad, check_conv_arrays, contiguous_arrays, conv_forward,
                    conv_grad_input, conv_grad_weight, forward_arrays, parse_conv_arrays)
from ._geometry import Window


def parse_conv_transpose_args(op, nd, input, weight, bias, stride, padding, output_padding,
                              groups, dilation, grad_output=_args.NO_GRAD):
    """Validate once; returns (x, w, b, gout, window, groups) where `window`
    is the equivalent conv's: image = this op's output, grid = its input."""
    arrays = parse_conv_arrays(op, input, weight, bias, grad_output)
    win, groups = conv_transpose_window(op, nd, *array_meta(*arrays), stride, padding,
                                        output_padding, groups, dilation)
    return contiguous_arrays(*arrays) + (win, groups)


@_callcache.memoize
def conv_transpose_window(op, nd, x_shape, dtype, w_shape, w_dtype, b_shape, b_dtype, g_shape,
                          g_dtype, stride, padding, output_padding, groups, dilation):
    """The shape-only checks of a transposed conv call (they depend on no
    value, so they run once per distinct call): (window, groups as an int)."""
    check_conv_arrays(op, nd, _args.meta(x_shape, dtype), _args.meta(w_shape, w_dtype),
                      _args.meta(b_shape, b_dtype), _args.meta(g_shape, g_dtype),
                      "(C_in, C_out // groups, *kernel)")
    groups = _args.positive_int(groups, "groups", op)
    n, c_in = x_shape[:2]
    kernel = tuple(w_shape[2:])
    if any(k < 1 for k in kernel):
        raise ValueError(f"{op}: kernel size must be positive, got weight shape {w_shape}")
    if w_shape[0] != c_in:
        raise ValueError(f"{op}: weight shape {w_shape} expects C_in={w_shape[0]}, but input "
                         f"shape {x_shape} has C_in={c_in}")
    if c_in % groups:
        raise ValueError(f"{op}: input channels C_in={c_in} not divisible by groups={groups}")
    c_out = w_shape[1] * groups
    if b_shape is not None and b_shape != (c_out,):
        raise ValueError(f"{op}: bias must have shape ({c_out},), got {b_shape}")
    stride = _args.int_tuple(stride, nd, "stride", op, minimum=1)
    dilation = _args.int_tuple(dilation, nd, "dilation", op, minimum=1)
    if isinstance(padding, str):
        raise ValueError(f"{op}: padding must be an int or a tuple of {nd} ints, "
                         f"got padding={padding!r}")
    padding = _args.int_tuple(padding, nd, "padding", op, minimum=0)
    output_padding = _args.int_tuple(output_padding, nd, "output_padding", op, minimum=0)
    for op_, s, d in zip(output_padding, stride, dilation):
        if op_ >= max(s, d):
            raise ValueError(f"{op}: output_padding must be smaller than max(stride, dilation) "
                             f"per axis, got output_padding={output_padding} with "
                             f"stride={stride}, dilation={dilation}")
    in_size = tuple(x_shape[2:])
    out_size = tuple(_shapes.transposed_output_size(i, k, s, p, o, d) for i, k, s, p, o, d
                     in zip(in_size, kernel, stride, padding, output_padding, dilation))
    if any(o < 1 for o in out_size):
        raise ValueError(f"{op}: output would be empty: input spatial size {in_size} gives "
                         f"output size {out_size} with padding={padding}")
    _args.check_alloc(op, "output", (n, c_out) + out_size, dtype,
                      f"stride={stride}, padding={padding}, output_padding={output_padding}, "
                      f"dilation={dilation}")
    if g_shape is not None and g_shape != (n, c_out) + out_size:
        raise ValueError(f"{op}: grad_output must have shape {(n, c_out) + out_size}, "
                         f"got {g_shape}")
    win = Window(out_size, kernel, stride, padding, padding, dilation, explicit_out=in_size)
    return win, groups


def _conv_transpose(op, nd, input, weight, bias, stride, padding, output_padding, groups,
                    dilation, explain=False):
    """conv_transpose{nd}d's output (the equivalent conv's grad_input), or
    with `explain` the plan that computes it."""
    x, w, b, meta = forward_arrays(op, input, weight, bias)
    call = _conv_transpose_call(op, nd, *meta, stride, padding, output_padding, groups,
                                dilation, _threads.get_num_threads())
    x, w = _args.contiguous(x), _args.contiguous(w)
    b = None if b is None else _args.contiguous(b)
    plan = call.plan
    if call.reads_values:
        plan = _plan.plan_conv_transpose(_plan.GRAD_INPUT, x.shape[0], call.c_out, x.shape[1],
                                         call.win, call.groups, x.dtype, plan.threads,
                                         operands=(x, w))
    if explain:
        return plan
    if call.kernel is not None:
        y = _workspace.aligned_empty(call.y_shape, x.dtype, op, "result",
                                     "the batch, channel and image sizes")
        scratch = _workspace.scratch_bytes("cols", call.scratch_bytes, op,
                                           "the column matrix of one image (channels, kernel "
                                           "size and image size) times the threads")
        call.kernel.run(x, x.shape[0], w, y, scratch, plan.threads)
    elif plan.algorithm == _plan.SUBPIXEL:
        phases = _phases(call.win)
        z = conv_grad_input(x, phases.weight(w), phases.sub, call.groups,
                            (x.shape[0], call.c_out * phases.count) + phases.sub.in_size,
                            plan.via, op)
        y = phases.to_image(z, call.y_shape)
    else:
        y = conv_grad_input(x, w, call.win, call.groups, call.y_shape, plan, op)
    if b is not None and y.size:
        y += b.reshape(call.bias_shape)
    return y


class _ConvTransposeCall:
    """What a transposed conv forward's shapes, dtypes, size arguments and
    thread count decide, worked out once per distinct call
    (_conv_transpose_call): the checks passed, the equivalent conv's window,
    the plan by the shape rules, the output's shape and, for GEMM + col2im
    (the plan of most small calls), its typed kernel call."""

    def __init__(self, op, nd, x_shape, dtype, w_shape, w_dtype, b_shape, b_dtype, stride,
                 padding, output_padding, groups, dilation, threads):
        dtype, w_dtype = _args.key_dtype(dtype), _args.key_dtype(w_dtype)
        b_dtype = None if b_dtype is None else _args.key_dtype(b_dtype)
        self.win, self.groups = conv_transpose_window(
            op, nd, x_shape, dtype, w_shape, w_dtype, b_shape, b_dtype, None, None, stride,
            padding, output_padding, groups, dilation)
        n, c_in = x_shape[:2]
        self.c_out = w_shape[1] * self.groups
        self.y_shape = (n, self.c_out) + self.win.in_size
        self.bias_shape = (self.c_out,) + (1,) * nd
        self.plan = _plan.plan_conv_transpose(_plan.GRAD_INPUT, n, self.c_out, c_in, self.win,
                                              self.groups, dtype, threads)
        # Winograd, when the shape rules pick it, runs only if the values
        # allow (the plan with the operands reads them on every call).
        self.reads_values = _plan.runs_winograd(self.plan)
        self.kernel = None
        if (self.plan.algorithm == _plan.GEMM_COL2IM and self.plan.channels_per_call is None
                and not self.reads_values):
            self.kernel = _kernels.ConvDataGrad(
                np.dtype(dtype).char, self.win.kernel_geometry(self.c_out), self.groups, c_in,
                threads_over_images=self.plan.threads_over_images)
            self.scratch_bytes = self.plan.workspace * np.dtype(dtype).itemsize


# One memo lookup per transposed conv forward call for all its shape-only work.
_conv_transpose_call = _callcache.memoize(_ConvTransposeCall)


def _conv_transpose_backward(op, nd, grad_output, input, weight, stride, padding,
                             output_padding, groups, dilation, input_grad=True,
                             explain=False):
    """conv_transpose{nd}d's gradients (the equivalent conv's output and
    grad_weight, input and grad_output swapped), or with `explain` the plans
    (grad_input, grad_weight) that compute them; without input_grad,
    grad_input (and its plan) is None."""
    input_grad = _args.as_bool(input_grad, "input_grad", op)
    x, w, _, g, win, groups = parse_conv_transpose_args(
        op, nd, input, weight, None, stride, padding, output_padding, groups, dilation,
        grad_output)
    sizes = (x.shape[0], g.shape[1], x.shape[1], win, groups, x.dtype)
    # The equivalent conv's input is grad_output, its grad_output our input.
    plans = (_plan.plan_conv_transpose(_plan.OUTPUT, *sizes, operands=(g, w))
             if input_grad else None,
             _plan.plan_conv_transpose(_plan.GRAD_WEIGHT, *sizes, operands=(g, x)))
    if explain:
        return plans
    subpixel = [p is not None and p.algorithm == _plan.SUBPIXEL for p in plans]
    if any(subpixel):
        # Both passes read grad_output and the weight split into phases:
        # split them once.
        phases = _phases(win)
        g_phases, w_phases = phases.from_image(g), phases.weight(w)
    if not input_grad:
        grad_input = None
    elif subpixel[0]:
        grad_input = conv_forward(g_phases, w_phases, None, phases.sub, groups, op,
                                  plans[0].via)
    else:
        grad_input = conv_forward(g, w, None, win, groups, op, plans[0])
    if subpixel[1]:
        phase_grad = conv_grad_weight(g_phases, x, w_phases, phases.sub, groups,
                                      plans[1].via, op)
        grad_weight = phases.kernel_from_phases(phase_grad, w.shape)
    else:
        grad_weight = conv_grad_weight(g, x, w, win, groups, plans[1], op)
    return grad_input, grad_weight, bias_grad(g)


class _Phases:
    """The sub-pixel decomposition of a transposed conv whose equivalent conv
    has window `win` (_plan.subpixel_window): its image (the transposed
    output, or its grad_output) padded by win.pad_before, cut into blocks of
    win.stride pixels and split by position in the block, phase p holding
    pixels p, p + s, p + 2s, ... of each axis: the phase image
    (N, C * s**nd, *sub.in_size), channel c's phases at c * s**nd + p
    (row-major over the axes), so groups stay contiguous blocks of channels.
    Its weight is the kernel padded to s * ceil(k/s) taps and split the same
    way.  The shape-only work is done once per window (_phases)."""

    def __init__(self, win):
        self.sub = _plan.subpixel_window(win)
        self.stride = win.stride
        self.count = prod(self.stride)
        # Per phase: (phase index, slices of the phase grid, slices of the
        # image); a phase or an image tail no pixel reaches has none.
        self.copies = []
        covered = 0
        for phase in itertools.product(*(range(s) for s in self.stride)):
            axes = [self._axis_copy(*args) for args in zip(
                phase, self.stride, win.pad_before, win.in_size, self.sub.in_size)]
            if all(count > 0 for count, _, _ in axes):
                self.copies.append((phase, tuple(z for _, z, _ in axes),
                                    tuple(i for _, _, i in axes)))
                covered += prod(count for count, _, _ in axes)
        # Pixels past the last phase block (an output_padding past the
        # kernel's reach) are read by no tap: zero in the output.
        self.image_covered = covered == prod(win.in_size)

    @staticmethod
    def _axis_copy(phase, stride, pad, image, phase_grid):
        """(count, phase-grid slice, image slice) of one axis: phase-grid
        position i holds image pixel stride*i + phase - pad."""
        first = max(0, -(-(pad - phase) // stride))
        stop = min(phase_grid, -(-(image + pad - phase) // stride))
        count = max(0, stop - first)
        start = stride * first + phase - pad
        return (count, slice(first, first + count),
                slice(start, start + stride * (count - 1) + 1, stride))

    def _phase_shape(self, n, c):
        return (n, c) + self.stride + self.sub.in_size

    def from_image(self, image):
        """(N, C, *image) -> the phase image (N, C * s**nd, *sub.in_size);
        zeros where the padding or the last block's overhang is."""
        n, c = image.shape[:2]
        z = np.zeros(self._phase_shape(n, c), image.dtype)
        for phase, z_slices, image_slices in self.copies:
            z[(slice(None), slice(None)) + phase + z_slices] = image[(Ellipsis,) + image_slices]
        return z.reshape((n, c * self.count) + self.sub.in_size)

    def to_image(self, z, image_shape):
        """The phase image's adjoint: (N, C * s**nd, *sub.in_size) back to
        the image (N, C, *image), the padding's positions dropped."""
        n, c = image_shape[:2]
        z = z.reshape(self._phase_shape(n, c))
        image = (np.empty if self.image_covered else np.zeros)(image_shape, z.dtype)
        for phase, z_slices, image_slices in self.copies:
            image[(Ellipsis,) + image_slices] = z[(slice(None), slice(None)) + phase + z_slices]
        return image

    def weight(self, w):
        """(C_o, C_g, *k) -> (C_o, C_g * s**nd, *ceil(k/s)): tap t * s + p of
        each axis is tap t of phase p; the padded taps are zeros."""
        nd = len(self.stride)
        padded = np.zeros(w.shape[:2] + tuple(k * s for k, s in zip(self.sub.kernel,
                                                                   self.stride)), w.dtype)
        padded[(Ellipsis,) + tuple(slice(k) for k in w.shape[2:])] = w
        split = padded.reshape(w.shape[:2] + sum(((k, s) for k, s in zip(self.sub.kernel,
                                                                          self.stride)), ()))
        order = (0, 1) + tuple(3 + 2 * a for a in range(nd)) + tuple(2 + 2 * a
                                                                     for a in range(nd))
        return np.ascontiguousarray(split.transpose(order)).reshape(
            (w.shape[0], w.shape[1] * self.count) + self.sub.kernel)

    def kernel_from_phases(self, phase_grad, w_shape):
        """weight()'s adjoint: the phase conv's weight gradient back to the
        kernel's shape, the padded taps dropped."""
        nd = len(self.stride)
        split = phase_grad.reshape(tuple(w_shape[:2]) + self.stride + self.sub.kernel)
        order = (0, 1) + sum(((2 + nd + a, 2 + a) for a in range(nd)), ())
        padded = split.transpose(order).reshape(
            tuple(w_shape[:2]) + tuple(k * s for k, s in zip(self.sub.kernel, self.stride)))
        return np.ascontiguousarray(padded[(Ellipsis,) + tuple(slice(k)
                                                                for k in w_shape[2:])])


_phases = _callcache.memoize(_Phases)


@pytorch_forms(CONV, nd=1)
@filled(CONV_TRANSPOSE_DOC, 1)
def conv_transpose1d(input: ArrayLike, weight: ArrayLike, bias: Optional[ArrayLike] = None,
                     stride: Size1 = 1, padding: Size1 = 0, output_padding: Size1 = 0,
                     groups: int = 1, dilation: Size1 = 1) -> Array:
    return _conv_transpose("conv_transpose1d", 1, input, weight, bias, stride, padding,
                           output_padding, groups, dilation)


@pytorch_forms(CONV, nd=2)
@filled(CONV_TRANSPOSE_DOC, 2)
def conv_transpose2d(input: ArrayLike, weight: ArrayLike, bias: Optional[ArrayLike] = None,
                     stride: Size2 = 1, padding: Size2 = 0, output_padding: Size2 = 0,
                     groups: int = 1, dilation: Size2 = 1) -> Array:
    return _conv_transpose("conv_transpose2d", 2, input, weight, bias, stride, padding,
                           output_padding, groups, dilation)


@pytorch_forms(CONV, nd=3)
@filled(CONV_TRANSPOSE_DOC, 3)
def conv_transpose3d(input: ArrayLike, weight: ArrayLike, bias: Optional[ArrayLike] = None,
                     stride: Size3 = 1, padding: Size3 = 0, output_padding: Size3 = 0,
                     groups: int = 1, dilation: Size3 = 1) -> Array:
    return _conv_transpose("conv_transpose3d", 3, input, weight, bias, stride, padding,
                           output_padding, groups, dilation)


@pytorch_forms(CONV_BACKWARD, nd=1)
@filled(CONV_TRANSPOSE_BACKWARD_DOC, 1)
def conv_transpose1d_backward(grad_output: ArrayLike, input: ArrayLike, weight: ArrayLike,
                              stride: Size1 = 1, padding: Size1 = 0,
                              output_padding: Size1 = 0, groups: int = 1,
                              dilation: Size1 = 1, *, input_grad: bool = True) -> Grads:
    return _conv_transpose_backward("conv_transpose1d_backward", 1, grad_output, input,
                                    weight, stride, padding, output_padding, groups, dilation,
                                    input_grad)


@pytorch_forms(CONV_BACKWARD, nd=2)
@filled(CONV_TRANSPOSE_BACKWARD_DOC, 2)
def conv_transpose2d_backward(grad_output: ArrayLike, input: ArrayLike, weight: ArrayLike,
                              stride: Size2 = 1, padding: Size2 = 0,
                              output_padding: Size2 = 0, groups: int = 1,
                              dilation: Size2 = 1, *, input_grad: bool = True) -> Grads:
    return _conv_transpose_backward("conv_transpose2d_backward", 2, grad_output, input,
                                    weight, stride, padding, output_padding, groups, dilation,
                                    input_grad)


@pytorch_forms(CONV_BACKWARD, nd=3)
@filled(CONV_TRANSPOSE_BACKWARD_DOC, 3)
def conv_transpose3d_backward(grad_output: ArrayLike, input: ArrayLike, weight: ArrayLike,
                              stride: Size3 = 1, padding: Size3 = 0,
                              output_padding: Size3 = 0, groups: int = 1,
                              dilation: Size3 = 1, *, input_grad: bool = True) -> Grads:
    return _conv_transpose_backward("conv_transpose3d_backward", 3, grad_output, input,
                                    weight, stride, padding, output_padding, groups, dilation,
                                    input_grad)
