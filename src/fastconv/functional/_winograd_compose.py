"""Winograd F(2x2, 3x3) for other kernels, by composition: the plans named
_plan.WINOGRAD_COMPOSED, executed with the existing 3x3 Winograd passes on
rearranged copies of the operands (no kernel of their own).

- Dilated 3x3 (WINOGRAD_DILATED_PHASES): the outputs p + d*i of each output
  phase p are a dilation-1 3x3 conv of the input rows p - pad + d*j, so the
  phases (those of one geometry side by side as one batch) are Winograd
  convs of contiguous copies of those rows; the weight gradient sums over
  the phases as over the batch.
- kD x 3 x 3 conv3d (WINOGRAD_DEPTH_STACKED): output depth slice o sums, over
  kd, 3x3 convs of input slice o*stride + kd*dilation - pad; the kD slices
  are stacked as channels of one 2-D conv over (N * D_out) images.
- Larger 2-D kernels (WINOGRAD_KERNEL_BLOCKS): the kernel zero-padded to
  multiples of 3 is a grid of 3x3 blocks; block (i, j) reads the input
  shifted by (3i, 3j), so the shifted copies are stacked as channels of one
  3x3 conv.

The data gradients need nothing here: a stride-1 conv's data gradient is a
conv with the flipped kernel (_plan.FLIPPED_CONV), planned like a forward.
"""
from __future__ import annotations

import numpy as np

from .. import _copy, _workspace
from . import _conv, _plan


def _winograd_plan(computes, batch, c_in, c_out, win, groups, dtype, threads):
    """The Winograd plan of one composed 3x3 conv (the composed plan's
    rules and value check already chose Winograd)."""
    return _plan.plan_conv(computes, batch, c_in, c_out, win, groups, dtype, threads,
                           algorithm=_plan.WINOGRAD_F2X2_3X3)


# --------------------------------------------------------- dilated phases

def _phase_slices(phase, win):
    """(input rows and columns, output rows and columns) of a phase."""
    def every(starts):
        return (Ellipsis,) + tuple(slice(s, None, d) for s, d in zip(starts, win.dilation))
    return every(phase.in_start), every(phase.out_start)


def _phase_batches(win):
    """(window, phases) of the phases that read input, grouped by window:
    the phases of a group run as one Winograd conv over their images side
    by side (one call: more tiles for the threads to share)."""
    batches = {}
    for phase in _plan.dilated_phases(win):
        if all(phase.win.in_size):
            batches.setdefault(phase.win, []).append(phase)
    return batches.items()


def _stack_phases(a, phases, win, which, slot, op):
    """The phases' rows of `a` (which=0: input rows, 1: output rows) side
    by side as one batch (len(phases) * N, C, h, w)."""
    views = [a[_phase_slices(phase, win)[which]] for phase in phases]
    stacked = _workspace.scratch(slot, (len(views),) + views[0].shape, a.dtype, op,
                                 "the batch, the channels and the image size")
    for dst, view in zip(stacked, views):
        _copy.copy_into(dst, view)
    return stacked.reshape((-1,) + views[0].shape[1:])


def _phases_output(plan, op, x, w, b, win, groups, out):
    out = out.reshape(out.shape[:2] + win.out_size)
    for phase in _plan.dilated_phases(win):
        if not all(phase.win.in_size):   # the phase reads padding only
            rows = out[_phase_slices(phase, win)[1]]
            if b is None:
                _copy.fill_zero(rows)
            else:
                _copy.copy_into(rows, b[:, None, None])
    for sub, phases in _phase_batches(win):
        xs = _stack_phases(x, phases, win, 0, "winograd_stack", op)
        via = _winograd_plan(_plan.OUTPUT, xs.shape[0], x.shape[1], w.shape[0], sub, groups,
                             x.dtype, plan.threads)
        y = _conv.conv_forward(xs, w, b, sub, groups, op, via)
        for phase, y_phase in zip(phases, y.reshape((len(phases), -1) + y.shape[1:])):
            _copy.copy_into(out[_phase_slices(phase, win)[1]], y_phase)


def _phases_grad_weight(plan, op, x, gout, w, win, groups):
    grad_weight = np.zeros(w.shape, x.dtype)
    for sub, phases in _phase_batches(win):
        xs = _stack_phases(x, phases, win, 0, "winograd_stack", op)
        gs = _stack_phases(gout, phases, win, 1, "winograd_stack_grad", op)
        via = _winograd_plan(_plan.GRAD_WEIGHT, xs.shape[0], x.shape[1], w.shape[0], sub,
                             groups, x.dtype, plan.threads)
        grad_weight += _conv.conv_grad_weight(xs, gs, w, sub, groups, via, op)
    return grad_weight


# --------------------------------------------------- stacked compositions

class _DepthSlices:
    """kD x 3 x 3 conv3d: channel (g, kd, c) of image (n, o) of the stacked
    conv is input channel (g, c) at depth o*stride + kd*dilation - pad."""

    def __init__(self, win, groups):
        self.win, self.groups = win, groups

    def stack(self, x, op):
        n, c_in, depth = x.shape[:3]
        (kd, sd, dd, pd), d_out = ((self.win.kernel[0], self.win.stride[0],
                                    self.win.dilation[0], self.win.pad_before[0]),
                                   self.win.out_size[0])
        c_group = c_in // self.groups
        stacked = _workspace.scratch("winograd_stack", (n, d_out, self.groups, kd, c_group)
                                     + x.shape[3:], x.dtype, op,
                                     "the batch chunk, the channels and the kernel depth")
        xg = x.reshape((n, self.groups, c_group) + x.shape[2:])
        for t in range(kd):
            # Output slices o in [lo, hi) read input slices inside the input.
            first = t * dd - pd
            lo = min(d_out, max(0, -(first // sd)))
            hi = max(lo, min(d_out, -(-(depth - first) // sd)))
            _copy.fill_zero(stacked[:, :lo, :, t])
            _copy.fill_zero(stacked[:, hi:, :, t])
            if hi > lo:
                src = slice(first + lo * sd, first + (hi - 1) * sd + 1, sd)
                _copy.copy_into(stacked[:, lo:hi, :, t], np.moveaxis(xg[:, :, :, src], 3, 1))
        return stacked.reshape((n * d_out, -1) + x.shape[3:])

    def weight(self, w):
        """(C_out, C_in // groups, kD, 3, 3) as (C_out, kD * C_in // groups, 3, 3)."""
        return np.ascontiguousarray(w.swapaxes(1, 2)).reshape(w.shape[0], -1, 3, 3)

    def weight_grad(self, grad, w_shape):
        """The stacked conv's weight gradient in the conv3d weight's layout."""
        c_out, c_group, kd = w_shape[:3]
        return np.ascontiguousarray(grad.reshape(c_out, kd, c_group, 3, 3).swapaxes(1, 2))

    def unstack_output(self, sub_out, out):
        """(n * D_out, C_out, L) into out (n, C_out, D_out * L)."""
        n, c_out = out.shape[:2]
        _copy.copy_into(out.reshape(n, c_out, self.win.out_size[0], -1),
                        sub_out.reshape(n, self.win.out_size[0], c_out, -1).swapaxes(1, 2))

    def stack_grad_output(self, gout, op):
        n, c_out = gout.shape[:2]
        stacked = _workspace.scratch("winograd_stack_grad", (n, gout.shape[2], c_out)
                                     + gout.shape[3:], gout.dtype, op,
                                     "the batch chunk and grad_output's size")
        _copy.copy_into(stacked, gout.swapaxes(1, 2))
        return stacked.reshape((-1, c_out) + gout.shape[3:])


def _shifted_copy(first, n_in, n_stack):
    """(input slice, stack slice) of an axis whose stack row r holds input
    row first + r (zero where that is outside the input)."""
    lo = max(0, -first)
    hi = max(lo, min(n_stack, n_in - first))
    return slice(lo + first, hi + first), slice(lo, hi)


class _KernelBlocks:
    """A larger 2-D kernel: channel (g, i, j, c) of the stacked conv is input
    channel (g, c) shifted up by 3i rows and left by 3j columns (less the
    padding the stack holds itself: _plan.kernel_blocks_window; zeros past
    the input), convolved with the kernel's block (i, j)."""

    def __init__(self, win, groups):
        self.win, self.groups = win, groups
        self.blocks = _plan.kernel_blocks(win)
        self.sub = _plan.kernel_blocks_window(win)
        # Input row (column) of the stack's row 0 in block 0.
        self.start = tuple(q - p for p, q in zip(win.pad_before, self.sub.pad_before))

    def stack(self, x, op):
        n, c_in = x.shape[:2]
        rows, cols = self.blocks
        c_group = c_in // self.groups
        stacked = _workspace.scratch("winograd_stack", (n, self.groups, rows, cols, c_group)
                                     + self.sub.in_size, x.dtype, op,
                                     "the batch chunk, the channels and the kernel size")
        xg = x.reshape((n, self.groups, c_group) + x.shape[2:])
        for i in range(rows):
            for j in range(cols):
                block = stacked[:, :, i, j]
                _copy.fill_zero(block)
                src, dst = zip(*(_shifted_copy(s + 3 * b, n_in, n_stack) for s, b, n_in, n_stack
                                 in zip(self.start, (i, j), x.shape[2:], self.sub.in_size)))
                _copy.copy_into(block[(Ellipsis,) + dst], xg[(Ellipsis,) + src])
        return stacked.reshape((n, -1) + self.sub.in_size)

    def weight(self, w):
        """(C_out, C_in // groups, kH, kW) zero-padded, as its 3x3 blocks
        (C_out, blocks * C_in // groups, 3, 3)."""
        rows, cols = self.blocks
        c_out, c_group, kh, kw = w.shape
        padded = np.zeros((c_out, c_group, 3 * rows, 3 * cols), w.dtype)
        padded[:, :, :kh, :kw] = w
        return np.ascontiguousarray(padded.reshape(c_out, c_group, rows, 3, cols, 3)
                                    .transpose(0, 2, 4, 1, 3, 5)).reshape(c_out, -1, 3, 3)

    def weight_grad(self, grad, w_shape):
        """The blocks' weight gradient as the kernel's (the padding dropped)."""
        rows, cols = self.blocks
        c_out, c_group, kh, kw = w_shape
        full = grad.reshape(c_out, rows, cols, c_group, 3, 3).transpose(0, 3, 1, 4, 2, 5)
        return np.ascontiguousarray(full.reshape(c_out, c_group, 3 * rows, 3 * cols)
                                    [:, :, :kh, :kw])

    def unstack_output(self, sub_out, out):
        _copy.copy_into(out, sub_out)

    def stack_grad_output(self, gout, op):
        return gout


_STACKINGS = {_plan.WINOGRAD_DEPTH_STACKED: _DepthSlices,
              _plan.WINOGRAD_KERNEL_BLOCKS: _KernelBlocks}


def _chunks(plan, n):
    for n0 in range(0, n, plan.chunk):
        yield slice(n0, min(n, n0 + plan.chunk))


def _chunk_plan(plan, computes, stacked_x, c_out, sub, groups):
    """The Winograd plan of a chunk (plan.via, but for a shorter last chunk)."""
    if stacked_x.shape[0] == plan.via.batch:
        return plan.via
    return _winograd_plan(computes, stacked_x.shape[0], stacked_x.shape[1], c_out, sub,
                          groups, stacked_x.dtype, plan.threads)


def _stacked_output(plan, op, x, w, b, win, groups, out):
    stacking = _STACKINGS[plan.algorithm](win, groups)
    sub = _plan.winograd_composition(win)[1]
    c_out = w.shape[0]
    w_stacked = stacking.weight(w)
    for images in _chunks(plan, x.shape[0]):
        xs = stacking.stack(x[images], op)
        via = _chunk_plan(plan, _plan.OUTPUT, xs, c_out, sub, groups)
        layout = _conv._output_layout(xs.shape[0], xs.shape[1], c_out, sub, groups)
        if plan.algorithm == _plan.WINOGRAD_KERNEL_BLOCKS:   # same images: in place
            _conv._OUTPUT_RUNS[via.algorithm](via, op, xs, w_stacked, b, layout, out[images])
        else:
            stacking.unstack_output(layout.run(via, op, xs, w_stacked, b), out[images])


def _stacked_grad_weight(plan, op, x, gout, w, win, groups):
    stacking = _STACKINGS[plan.algorithm](win, groups)
    sub = _plan.winograd_composition(win)[1]
    c_out = w.shape[0]
    grad = None
    for images in _chunks(plan, x.shape[0]):
        xs = stacking.stack(x[images], op)
        gs = stacking.stack_grad_output(gout[images], op)
        via = _chunk_plan(plan, _plan.GRAD_WEIGHT, xs, c_out, sub, groups)
        # conv_grad_weight reads only the weight's shape.
        shape_only = np.broadcast_to(np.zeros((), x.dtype), (c_out, xs.shape[1] // groups, 3, 3))
        part = _conv.conv_grad_weight(xs, gs, shape_only, sub, groups, via, op)
        grad = part if grad is None else grad + part
    return stacking.weight_grad(grad, w.shape)


OUTPUT_RUNS = {_plan.WINOGRAD_DILATED_PHASES: _phases_output,
               _plan.WINOGRAD_DEPTH_STACKED: _stacked_output,
               _plan.WINOGRAD_KERNEL_BLOCKS: _stacked_output}

GRAD_WEIGHT_RUNS = {_plan.WINOGRAD_DILATED_PHASES: _phases_grad_weight,
                    _plan.WINOGRAD_DEPTH_STACKED: _stacked_grad_weight,
                    _plan.WINOGRAD_KERNEL_BLOCKS: _stacked_grad_weight}
