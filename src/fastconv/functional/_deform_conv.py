"""Deformable convolution v1 and v2 (torchvision.ops.deform_conv2d), forward
and backward.

A deformable im2col (csrc/deform_conv_template.h: bilinear samples at the
offset taps, times the mask, into a column buffer) feeds fastconv's GEMM, a
chunk of images at a time so the scratch stays near the plan's
CHUNK_SCRATCH_BYTES whatever the batch (_plan.batch_chunk).  Backward: the column
gradient W^T @ grad_output (GEMM), then one kernel scatters it back to the
input (threads own whole planes, so no races) and another reduces it to the
offset and mask gradients; the weight gradient is grad_output @ columns^T.
"""
from __future__ import annotations

from math import prod
from typing import Optional

import numpy as np

from .. import _args, _kernels, _threads, _workspace
from .._types import Array, ArrayLike, DeformGrads, Size2
from . import _plan
from ._conv import gemm, parse_conv_args


def _parse(op, input, offset, weight, bias, stride, padding, dilation, mask,
           grad_output=_args.NO_GRAD):
    """Every argument checked once: (x, offset, w, b, mask, gout, window,
    groups, offset_groups), arrays C-contiguous.  Weight groups and offset
    groups are implied by the shapes, as in torchvision."""
    x = _args.as_float_array(input, "input", op)
    w = _args.as_float_array(weight, "weight", op)
    _args.check_ndim(x, 4, "input", op, "(N, C_in, H, W)")
    _args.check_ndim(w, 4, "weight", op, "(C_out, C_in // groups, kH, kW)")
    if x.shape[1] < 1 or w.shape[1] < 1 or x.shape[1] % w.shape[1]:
        raise ValueError(f"{op}: weight shape {w.shape} needs C_in to be a positive "
                         f"multiple of its C_in // groups = {w.shape[1]}, but input shape "
                         f"{x.shape} has C_in={x.shape[1]}")
    if isinstance(padding, str):
        raise ValueError(f"{op}: padding must be an int or a tuple of 2 ints, got "
                         f"padding={padding!r}")
    x, w, b, gout, win, groups = parse_conv_args(op, 2, x, w, bias, stride, padding,
                                                 dilation, x.shape[1] // w.shape[1],
                                                 grad_output)
    off = _args.as_float_array(offset, "offset", op)
    m = None if mask is None else _args.as_float_array(mask, "mask", op)
    _args.same_dtype(op, input=x, offset=off, mask=m)
    n, taps = x.shape[0], prod(win.kernel)
    _args.check_ndim(off, 4, "offset", op, "(N, 2*offset_groups*kH*kW, OH, OW)")
    if off.shape[1] < 1 or off.shape[1] % (2 * taps):
        raise ValueError(f"{op}: offset must have 2*offset_groups*kH*kW channels (a positive "
                         f"multiple of {2 * taps}), got offset shape {off.shape}")
    offset_groups = off.shape[1] // (2 * taps)
    if x.shape[1] % offset_groups:
        raise ValueError(f"{op}: input channels C_in={x.shape[1]} not divisible by the "
                         f"offset_groups={offset_groups} of offset shape {off.shape}")
    if off.shape != (n, 2 * offset_groups * taps) + win.out_size:
        raise ValueError(f"{op}: offset must have shape "
                         f"{(n, 2 * offset_groups * taps) + win.out_size}, got {off.shape}")
    if m is not None and m.shape != (n, offset_groups * taps) + win.out_size:
        raise ValueError(f"{op}: mask must have shape "
                         f"{(n, offset_groups * taps) + win.out_size}, got {m.shape}")
    return (x, _args.contiguous(off), w, b, None if m is None else _args.contiguous(m),
            gout, win, groups, offset_groups)


class _Plan:
    """Geometry, chunking and scratch of one call."""

    def __init__(self, op, x, w, win, groups, offset_groups):
        n, c_in = x.shape[:2]
        self.op = op
        self.geom = win.kernel_geometry(c_in)
        self.groups, self.offset_groups = groups, offset_groups
        self.L = win.out_count
        self.rows = c_in * win.taps                      # column rows
        self.group_rows = self.rows // groups
        self.group_out = w.shape[0] // groups
        self.w = w.reshape(groups, self.group_out, self.group_rows)
        self.chunk = _plan.batch_chunk(n, self.rows * self.L * x.dtype.itemsize)
        self.nthreads = _threads.get_num_threads()

    def columns(self, slot, nb, dtype):
        """A (rows, nb*L) scratch buffer, C-contiguous."""
        buf = _workspace.scratch(slot, (self.rows * self.chunk * self.L,), dtype, self.op,
                                 "the channels, kernel size and output size")
        return buf[:self.rows * nb * self.L].reshape(self.rows, nb * self.L)

    def blocks(self, b, g):
        """(column rows, column cols) of image b and group g."""
        return (slice(g * self.group_rows, (g + 1) * self.group_rows),
                slice(b * self.L, (b + 1) * self.L))

    def out_block(self, out, b, g):
        """Group g's channels of image b of an (N, C_out, OH, OW) array, (co, L)."""
        return out[b, g * self.group_out:(g + 1) * self.group_out].reshape(self.group_out,
                                                                            self.L)

    def im2col(self, x, off, m, b0, nb, col):
        s = slice(b0, b0 + nb)
        _kernels.deform_im2col(x[s].reshape(-1), off[s].reshape(-1),
                               None if m is None else m[s].reshape(-1), nb, self.geom,
                               self.offset_groups, col.reshape(-1), self.nthreads)


def deform_conv2d(input: ArrayLike, offset: ArrayLike, weight: ArrayLike,
                  bias: Optional[ArrayLike] = None, stride: Size2 = 1, padding: Size2 = 0,
                  dilation: Size2 = 1, mask: Optional[ArrayLike] = None) -> Array:
    """Deformable 2-D convolution (v1, and v2 with a mask), as
    torchvision.ops.deform_conv2d.

    Kernel tap k = i * kW + j of output position (oh, ow) samples input
    channel c (of offset group og = c // (C_in // offset_groups)) at

        y = oh * stride_h - pad_h + i * dilation_h + offset[n, 2 * (og * kH * kW + k), oh, ow]
        x = ow * stride_w - pad_w + j * dilation_w + offset[n, 2 * (og * kH * kW + k) + 1, oh, ow]

    bilinearly: a sample reads 0 unless -1 < y < H and -1 < x < W, and its
    corners outside the image count as 0.  With a mask each sample is
    multiplied by mask[n, og * kH * kW + k, oh, ow].  The samples are then
    convolved with weight as conv2d does (groups = C_in // weight.shape[1]).

    Args:
        input: (N, C_in, H, W) array.
        offset: (N, 2 * offset_groups * kH * kW, OH, OW) array of (dy, dx)
            pairs per offset group and tap; offset_groups (>= 1, dividing
            C_in) is implied by its channel count.
        weight: (C_out, C_in // groups, kH, kW) array; groups is implied by
            C_in // weight.shape[1] and must divide C_out.
        bias: (C_out,) array added to every output position, or None.
        stride: step between windows, an int or a tuple of 2 ints (each >= 1).
        padding: zeros on both sides, an int or a tuple of 2 ints (each >= 0);
            strings are refused.
        dilation: spacing between taps, an int or a tuple of 2 ints (each >= 1).
        mask: (N, offset_groups * kH * kW, OH, OW) array (v2), or None (v1).

    Returns:
        (N, C_out, OH, OW) array, per axis
        out = floor((in + 2 * padding - dilation * (k - 1) - 1) / stride) + 1.

    Every array must be float32 or float64 (array-likes of floats are
    accepted), all of one dtype; any memory layout works and inputs are never
    modified.  The result is a fresh C-contiguous array of the input's dtype.
    Batch size 0 is valid.

    Raises:
        TypeError: an array that is None, not float32/float64, or of mixed
            dtypes; a size argument that is not an int or a tuple of ints.
        ValueError: input, weight, offset or mask not 4-D; C_in not a
            positive multiple of weight.shape[1] or groups not dividing
            C_out; an offset channel count that is not a positive multiple
            of 2 * kH * kW, or whose offset_groups does not divide C_in;
            offset or mask not of the shapes above; bias not of shape
            (C_out,); a non-positive stride or dilation, a negative or string
            padding, a size past 2**40, or an empty output.
        MemoryError: an output or scratch larger than this machine's memory.
    """
    op = "deform_conv2d"
    x, off, w, b, m, _, win, groups, offset_groups = _parse(
        op, input, offset, weight, bias, stride, padding, dilation, mask)
    plan = _Plan(op, x, w, win, groups, offset_groups)
    n = x.shape[0]
    out = np.empty((n, w.shape[0]) + win.out_size, dtype=x.dtype)
    for b0 in range(0, n, plan.chunk):
        _forward_chunk(plan, x, off, m, b0, min(plan.chunk, n - b0), out)
    if b is not None:
        out += b.reshape(-1, 1, 1)
    return out


def deform_conv2d_backward(grad_output: ArrayLike, input: ArrayLike, offset: ArrayLike,
                           weight: ArrayLike, stride: Size2 = 1, padding: Size2 = 0,
                           dilation: Size2 = 1,
                           mask: Optional[ArrayLike] = None) -> DeformGrads:
    """Gradients of deform_conv2d with respect to its input, offset, weight,
    bias and mask.

    The offset gradient is the derivative of the bilinear sample (one-sided
    at integer sample positions, as torchvision's); samples outside
    (-1, H) x (-1, W) contribute nothing.

    Args:
        grad_output: (N, C_out, OH, OW) array, the gradient of the loss with
            respect to deform_conv2d's output.
        input, offset, weight, stride, padding, dilation, mask: those of the
            forward call (see deform_conv2d).

    Returns:
        (grad_input, grad_offset, grad_weight, grad_bias, grad_mask): arrays
        of the shapes of input, offset, weight, (C_out,) and mask; grad_mask
        is None when mask is None.  grad_bias = grad_output summed over
        every axis but 1.

    Every array must be float32 or float64, all of one dtype; any memory
    layout works, inputs are never modified, and the results are fresh
    C-contiguous arrays.

    Raises:
        TypeError: as deform_conv2d, grad_output included.
        ValueError: grad_output not of the forward output's shape, and every
            error of deform_conv2d.
        MemoryError: a result or scratch larger than this machine's memory.
    """
    op = "deform_conv2d_backward"
    x, off, w, _, m, gout, win, groups, offset_groups = _parse(
        op, input, offset, weight, None, stride, padding, dilation, mask, grad_output)
    plan = _Plan(op, x, w, win, groups, offset_groups)
    n, dtype = x.shape[0], x.dtype
    grad_input = np.empty(x.shape, dtype)
    grad_offset = np.empty(off.shape, dtype)
    grad_mask = None if m is None else np.empty(m.shape, dtype)
    grad_weight = np.zeros(w.shape, dtype)
    gw = grad_weight.reshape(plan.w.shape)
    for b0 in range(0, n, plan.chunk):
        _backward_chunk(plan, x, off, m, gout, b0, min(plan.chunk, n - b0),
                        grad_input, grad_offset, grad_mask, gw)
    grad_bias = gout.sum(axis=(0, 2, 3))
    return grad_input, grad_offset, grad_weight, grad_bias, grad_mask


# One function per chunk: its column buffers' views die when it returns, so
# the next chunk reuses them (a live view keeps scratch from being handed
# out again: _workspace).

def _forward_chunk(plan, x, off, m, b0, nb, out):
    """Images b0 .. b0 + nb of the forward: columns, then a GEMM per image
    and group into out."""
    col = plan.columns("deform_cols", nb, x.dtype)
    plan.im2col(x, off, m, b0, nb, col)
    for i in range(nb):
        for g in range(plan.groups):
            rows, cols = plan.blocks(i, g)
            gemm(plan.w[g], col[rows, cols], plan.out_block(out, b0 + i, g))


def _backward_chunk(plan, x, off, m, gout, b0, nb, grad_input, grad_offset, grad_mask, gw):
    """Images b0 .. b0 + nb of the backward: the column gradient by GEMM,
    scattered to grad_input and reduced to grad_offset and grad_mask; the
    weight gradient accumulated into gw."""
    dtype, s = x.dtype, slice(b0, b0 + nb)
    col = plan.columns("deform_cols", nb, dtype)
    gcol = plan.columns("deform_grad_cols", nb, dtype)
    plan.im2col(x, off, m, b0, nb, col)
    for i in range(nb):
        for g in range(plan.groups):
            rows, cols = plan.blocks(i, g)
            go = plan.out_block(gout, b0 + i, g)
            gemm(plan.w[g].T, go, gcol[rows, cols])
            gemm(go, col[rows, cols].T, gw[g], accumulate=True)
    ms = None if m is None else m[s].reshape(-1)
    _kernels.deform_col2im(gcol.reshape(-1), off[s].reshape(-1), ms, nb, plan.geom,
                           plan.offset_groups, grad_input[s].reshape(-1), plan.nthreads)
    _kernels.deform_offset_mask_grad(
        gcol.reshape(-1), x[s].reshape(-1), off[s].reshape(-1), ms, nb, plan.geom,
        plan.offset_groups, grad_offset[s].reshape(-1),
        None if grad_mask is None else grad_mask[s].reshape(-1), plan.nthreads)
