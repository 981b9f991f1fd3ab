"""Convolution forward and backward (1-D, 2-D, 3-D): argument checking, then
the plans of _plan.py executed.

Forward: the C kernel pads and stride-splits each image once and the GEMM
packs its column blocks from there (no column matrix); large images get a
GEMM each, written in place, small ones go side by side in chunks of bounded
scratch; 3x3 stride-1 convs with enough channels run Winograd F(2x2, 3x3), and
dilated 3x3, kD x 3 x 3 and larger stride-1 kernels run it by composition
(_winograd_compose.py).
Backward: the weight gradient is one fused kernel per group over the whole
batch; the data gradient of a stride-1 conv is a conv of grad_output with the
flipped kernel, otherwise a GEMM into columns folded back by col2im, image by
image.  Depthwise convs (groups == C_in) and grouped convs with few channels
per group have their own direct kernels, in all three passes.
Which of these runs is _plan.plan_conv's decision alone.
"""

from __future__ import annotations

import functools
from math import prod
from typing import Optional

import numpy as np

from .. import _args, _callcache, _kernels, _shapes, _threads, _workspace
from .._conventions import CONV, CONV_BACKWARD, pytorch_forms
from .._types import Array, ArrayLike, ConvPadding1, ConvPadding2, ConvPadding3, Grads, \
    Size1, Size2, Size3
from . import _plan, _winograd_compose
from ._doc import CONV_BACKWARD_DOC, CONV_DOC, filled
from ._geometry import Window

_LAYOUTS = {1: "(N, C, L)", 2: "(N, C, H, W)", 3: "(N, C, D, H, W)"}


def _padding(padding, nd, kernel, stride, dilation, op):
    """(pad_before, pad_after) from an int, a tuple, 'valid' or 'same'."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0,) * nd, (0,) * nd
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(f"{op}: padding='same' needs stride 1, got stride={stride}")
            pads = [_shapes.same_padding(k, d) for k, d in zip(kernel, dilation)]
            return tuple(p[0] for p in pads), tuple(p[1] for p in pads)
        raise ValueError(f"{op}: padding must be 'same', 'valid', an int or a tuple, "
                         f"got padding={padding!r}")
    pad = _args.int_tuple(padding, nd, "padding", op, minimum=0)
    return pad, pad


def parse_conv_arrays(op, input, weight, bias, grad_output):
    """The array arguments of a (transposed) conv as ndarrays; their dtypes
    and ndims are checked with the sizes (check_conv_arrays, memoised).
    grad_output is NO_GRAD for a forward call (so None there is the caller's
    error)."""
    x = _args.as_array(input, "input", op)
    w = _args.as_array(weight, "weight", op)
    b = None if bias is None else _args.as_array(bias, "bias", op)
    g = None if grad_output is _args.NO_GRAD else _args.as_array(grad_output, "grad_output", op)
    return x, w, b, g


def array_meta(*arrays):
    """(shape, dtype) of each array, flat, (None, None) for no array: the
    memoised checks' arguments."""
    return sum(((None, None) if a is None else (a.shape, a.dtype) for a in arrays), ())


def check_conv_arrays(op, nd, x, w, b, g, weight_layout):
    """The dtype and ndim rules of a (transposed) conv's arrays (ArrayMeta or
    None), in the order the docstrings list them."""
    for name, arr in (("input", x), ("weight", w), ("bias", b), ("grad_output", g)):
        if arr is not None:
            _args.check_float_dtype(arr.dtype, name, op)
    _args.same_dtype(op, input=x, weight=w, bias=b, grad_output=g)
    _args.check_ndim(x, nd + 2, "input", op, _LAYOUTS[nd])
    _args.check_ndim(w, nd + 2, "weight", op, weight_layout)


def contiguous_arrays(*arrays):
    """The validated arrays as the kernels take them (None stays None)."""
    return tuple(None if a is None else _args.contiguous(a) for a in arrays)


def parse_conv_args(op, nd, input, weight, bias, stride, padding, dilation, groups,
                    grad_output=_args.NO_GRAD):
    """Validate a conv call once; returns (x, w, b, gout, window, groups) with
    the arrays C-contiguous and every argument rule of the conv docstrings
    checked."""
    arrays = parse_conv_arrays(op, input, weight, bias, grad_output)
    win, groups = conv_window(op, nd, *array_meta(*arrays), stride, padding, dilation, groups)
    return contiguous_arrays(*arrays) + (win, groups)


@_callcache.memoize
def conv_window(op, nd, x_shape, dtype, w_shape, w_dtype, b_shape, b_dtype, g_shape, g_dtype,
                stride, padding, dilation, groups):
    """The shape-only checks of a conv call (they depend on no value, so they
    run once per distinct call): (window, groups as an int)."""
    check_conv_arrays(op, nd, _args.meta(x_shape, dtype), _args.meta(w_shape, w_dtype),
                      _args.meta(b_shape, b_dtype), _args.meta(g_shape, g_dtype),
                      "(C_out, C_in // groups, *kernel)")
    groups = _args.positive_int(groups, "groups", op)
    n, c_in = x_shape[:2]
    c_out, c_per_group = w_shape[:2]
    kernel = tuple(w_shape[2:])
    if any(k < 1 for k in kernel):
        raise ValueError(f"{op}: kernel size must be positive, got weight shape {w_shape}")
    if c_in % groups:
        raise ValueError(f"{op}: input channels C_in={c_in} not divisible by groups={groups}")
    if c_out % groups:
        raise ValueError(f"{op}: output channels C_out={c_out} not divisible by "
                         f"groups={groups}")
    if c_per_group * groups != c_in:
        raise ValueError(f"{op}: weight shape {w_shape} expects C_in = "
                         f"{c_per_group}*groups = {c_per_group * groups}, but input "
                         f"shape {x_shape} has C_in={c_in}")
    if b_shape is not None and b_shape != (c_out,):
        raise ValueError(f"{op}: bias must have shape ({c_out},), got {b_shape}")
    stride = _args.int_tuple(stride, nd, "stride", op, minimum=1)
    dilation = _args.int_tuple(dilation, nd, "dilation", op, minimum=1)
    pad_before, pad_after = _padding(padding, nd, kernel, stride, dilation, op)
    win = Window(tuple(x_shape[2:]), kernel, stride, pad_before, pad_after, dilation)
    if any(o < 1 for o in win.out_size):
        raise ValueError(f"{op}: output would be empty: input spatial size "
                         f"{win.in_size} with padding {padding!r} is smaller than the "
                         f"dilated kernel {tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))}")
    _args.check_alloc(op, "output", (n, c_out) + win.out_size, dtype,
                      f"padding={padding!r}, stride={stride}, dilation={dilation}")
    if g_shape is not None and g_shape != (n, c_out) + win.out_size:
        raise ValueError(f"{op}: grad_output must have shape "
                         f"{(n, c_out) + win.out_size}, got {g_shape}")
    return win, groups


def _gemm_workspace(dtype, nthreads):
    return _workspace.scratch("gemm", (_kernels.gemm_workspace_size(dtype.char, nthreads),),
                              dtype)


def gemm(a, b, c, accumulate=False):
    """c = a @ b (or c += a @ b) on 2-D views of any strides, with fastconv's
    packed GEMM, or its unpacked one for small products (_plan.plan_gemm;
    SIMD micro-kernels chosen for this CPU)."""
    (m, k), n = a.shape, b.shape[1]
    if _plan.plan_gemm(m, n, k) == _plan.GEMM_SMALL:
        if not _plan.small_gemm_reads_in_place(a, b):
            b = np.ascontiguousarray(b)
        _kernels.gemm_small(a, b, c, accumulate)
        return
    nthreads = _threads.get_num_threads()
    _kernels.gemm(a, b, c, accumulate, _gemm_workspace(a.dtype, nthreads), nthreads)


def _bias(b, dtype):
    """The bias as the kernels take it: an empty array for none."""
    return np.empty(0, dtype) if b is None else b


def conv_forward(x, w, b, win, groups, op="conv", plan=None):
    """Output (N, C_out, *out) of a validated conv call (`op` names it in
    errors), computed as `plan` (an OUTPUT ConvPlan; default: plan_conv's)."""
    n, c_in = x.shape[:2]
    c_out = w.shape[0]
    if plan is None:
        plan = _plan.plan_conv(_plan.OUTPUT, n, c_in, c_out, win, groups, x.dtype)
    layout = _output_layout(n, c_in, c_out, win, groups)
    return layout.run(plan, op, x, w, b)


_OUTPUT_BLAME = "the batch, channel and output sizes"
_SCRATCH_BLAME = "the image size, padding, stride and dilation"


class _OutputLayout:
    """The shape-only part of running a conv forward: the kernel geometry,
    the output's shapes and the offsets table's size, worked out once per
    distinct call (_output_layout)."""

    def __init__(self, n, c_in, c_out, win, groups):
        self.groups, self.win = groups, win
        self.c_out = c_out
        self.geom = win.kernel_geometry(c_in)
        self.out_shape = (n, c_out, win.out_count)
        self.result_shape = (n, c_out) + win.out_size
        self.offsets = c_in * win.taps

    def run(self, plan, op, x, w, b, kernel=None):
        """The output of validated C-contiguous x, w, b computed as `plan`
        (`kernel`: the plan's ConvForward, when the caller kept one)."""
        out = _workspace.aligned_empty(self.out_shape, x.dtype, op, "output", _OUTPUT_BLAME)
        _OUTPUT_RUNS[plan.algorithm](plan, op, x, w, b, self, out, kernel)
        return out.reshape(self.result_shape)

    def kernel(self, plan, dtype, per_image):
        """The implicit GEMM's typed call object for `plan`."""
        return _kernels.ConvForward(dtype.char, self.geom, self.groups, self.c_out,
                                    per_image=per_image,
                                    threads_over_images=plan.threads_over_images,
                                    stream_stores=plan.stream_stores,
                                    pointwise=plan.pointwise)

    def scratch_bytes(self, plan, dtype):
        """Bytes of the implicit GEMM's one scratch buffer: its workspace,
        then (from the next cache line) the offsets table (ConvForward.run)."""
        return -(-plan.workspace * dtype.itemsize // 64) * 64 + self.offsets * 8


@_callcache.memoize
def _output_layout(n, c_in, c_out, win, groups):
    return _OutputLayout(n, c_in, c_out, win, groups)


def _output_empty_sum(plan, op, x, w, b, layout, out, kernel=None):
    out[...] = 0 if b is None else b[:, None]


def _output_depthwise(plan, op, x, w, b, layout, out, kernel=None):
    ws = _workspace.scratch("depthwise", (plan.workspace,), x.dtype, op,
                            "the kernel size and channel counts")
    _kernels.depthwise_forward(x.reshape(-1), w.reshape(-1), _bias(b, x.dtype), x.shape[0],
                               layout.geom, w.shape[0] // layout.groups, w.shape[1],
                               out.reshape(-1), ws, plan.threads)


def _output_winograd(plan, op, x, w, b, layout, out, kernel=None):
    """Winograd F(2x2, 3x3) into out (N, C_out, L); its scratch does not grow
    with the batch."""
    ws = _workspace.scratch("winograd", (plan.workspace,), x.dtype, op, "the channel counts")
    _kernels.conv_winograd(x.reshape(-1), x.shape[0], layout.geom, layout.groups,
                           w.reshape(-1), _bias(b, x.dtype), w.shape[0], out.reshape(-1), ws,
                           plan.threads)


def _implicit_gemm(plan, op, x, w, b, layout, out, per_image, kernel=None):
    """The implicit-GEMM kernel on images x into out (N, C_out, L): one GEMM
    per image, in place, when per_image, else the images side by side.
    `kernel`: the call's ConvForward when the caller kept one."""
    if kernel is None:
        kernel = layout.kernel(plan, x.dtype, per_image)
    ws = _workspace.scratch_bytes("conv", layout.scratch_bytes(plan, x.dtype), op,
                                  _SCRATCH_BLAME)
    kernel.run(x, x.shape[0], w, b, out, ws, plan.threads)


def _output_per_image(plan, op, x, w, b, layout, out, kernel=None):
    _implicit_gemm(plan, op, x, w, b, layout, out, True, kernel)


def _output_side_by_side(plan, op, x, w, b, layout, out, kernel=None):
    """Chunks of plan.chunk images side by side (the kernel's GEMM writes
    each chunk's output in place)."""
    n = x.shape[0]
    for b0 in range(0, n, plan.chunk):
        nb = min(plan.chunk, n - b0)
        _implicit_gemm(plan, op, x[b0:b0 + nb], w, b, layout, out[b0:b0 + nb], False,
                       kernel)


def _output_winograd_composed(plan, op, x, w, b, layout, out, kernel=None):
    """Winograd F(2x2, 3x3) by composition (_winograd_compose.py)."""
    _winograd_compose.OUTPUT_RUNS[plan.algorithm](plan, op, x, w, b, layout.win, layout.groups,
                                                  out)


_OUTPUT_RUNS = {_plan.EMPTY_SUM: _output_empty_sum, _plan.DEPTHWISE: _output_depthwise,
                _plan.DIRECT_GROUPED: _output_depthwise,
                _plan.WINOGRAD_F2X2_3X3: _output_winograd,
                **dict.fromkeys(_plan.WINOGRAD_COMPOSED, _output_winograd_composed),
                _plan.GEMM_PER_IMAGE: _output_per_image,
                _plan.GEMM_SIDE_BY_SIDE: _output_side_by_side}


def conv_grad_input(gout, w, win, groups, input_shape, plan=None, op="conv_backward"):
    """grad_input (of input_shape) of a validated conv call, computed as
    `plan` (a GRAD_INPUT ConvPlan; default: plan_conv's).  Each path
    allocates grad_input where it writes all of it: an unused large np.empty
    still moves the heap around and makes fresh pages for the next call."""
    n, c_out = gout.shape[:2]
    c_in = input_shape[1]
    if plan is None:
        plan = _plan.plan_conv(_plan.GRAD_INPUT, n, c_in, c_out, win, groups, gout.dtype)
    if plan.algorithm == _plan.EMPTY_SUM:
        return np.zeros(input_shape, gout.dtype)
    if plan.algorithm == _plan.FLIPPED_CONV:
        flipped = _plan.data_grad_window(win)
        grad_input = conv_forward(gout, _flipped_weight(w, groups), None, flipped, groups,
                                  op, plan.via)
        return grad_input.reshape(input_shape)
    geom = win.kernel_geometry(c_in)
    grad_input = _workspace.aligned_empty(input_shape, gout.dtype, op, "result",
                                          "the batch, channel and image sizes")
    if plan.algorithm in (_plan.DEPTHWISE, _plan.DIRECT_GROUPED):
        ws = _workspace.scratch("depthwise", (plan.workspace,), gout.dtype, op,
                                "the kernel size and channel counts")
        _kernels.depthwise_backward_input(gout.reshape(-1), w.reshape(-1), n, geom,
                                          c_out // groups, c_in // groups,
                                          grad_input.reshape(-1), ws, plan.threads)
        return grad_input
    # GEMM + col2im, image by image in the C kernel, each image's columns in
    # per-thread scratch.
    cols = _workspace.scratch("cols", (plan.workspace,), gout.dtype, op,
                              "the column matrix of one image (channels, kernel size and "
                              "image size) times the threads")
    if plan.channels_per_call is None:
        _kernels.conv_data_grad(gout.reshape(-1), n, geom, groups, w.reshape(-1), c_out,
                                grad_input.reshape(-1), cols, plan.threads,
                                threads_over_images=plan.threads_over_images)
    else:
        _data_grad_in_channel_blocks(plan, gout, w, win, groups, grad_input, cols)
    return grad_input


def _data_grad_in_channel_blocks(plan, gout, w, win, groups, grad_input, cols):
    """GEMM + col2im for one image, one group and plan.channels_per_call of
    its input channels per kernel call: a channel's gradient needs only its
    own rows of the columns, so `cols` holds a block's."""
    c_out_group, c_in_group = w.shape[0] // groups, w.shape[1]
    for g in range(groups):
        outs = slice(g * c_out_group, (g + 1) * c_out_group)
        for c0 in range(0, c_in_group, plan.channels_per_call):
            c1 = min(c0 + plan.channels_per_call, c_in_group)
            w_block = np.ascontiguousarray(w[outs, c0:c1])
            geom = win.kernel_geometry(c1 - c0)
            for b in range(gout.shape[0]):
                _kernels.conv_data_grad(
                    gout[b, outs].reshape(-1), 1, geom, 1, w_block.reshape(-1), c_out_group,
                    grad_input[b, g * c_in_group + c0:g * c_in_group + c1].reshape(-1), cols,
                    plan.threads, threads_over_images=False)


def _flipped_weight(w, groups):
    """(C_in, C_out // groups, *kernel) weight of the data-gradient conv:
    each group's (out, in) channel roles swapped and every kernel axis
    reversed."""
    c_out, c_in_group = w.shape[:2]
    kernel = w.shape[2:]
    grouped = w.reshape((groups, c_out // groups, c_in_group) + kernel)
    flipped = grouped.swapaxes(1, 2)[(Ellipsis,) + (slice(None, None, -1),) * len(kernel)]
    return np.ascontiguousarray(flipped).reshape((groups * c_in_group, c_out // groups) + kernel)


def conv_grad_weight(x, gout, w, win, groups, plan=None, op="conv_backward"):
    """grad_weight (w's shape) of a validated conv call, computed as `plan`
    (a GRAD_WEIGHT ConvPlan; default: plan_conv's)."""
    n, c_in = x.shape[:2]
    c_out, l = gout.shape[1], win.out_count
    c_in_group, c_out_group = c_in // groups, c_out // groups
    if plan is None:
        plan = _plan.plan_conv(_plan.GRAD_WEIGHT, n, c_in, c_out, win, groups, x.dtype)
    if plan.algorithm in _plan.WINOGRAD_COMPOSED:
        return _winograd_compose.GRAD_WEIGHT_RUNS[plan.algorithm](plan, op, x, gout, w, win,
                                                                  groups)
    grad_weight = np.zeros((groups, c_out_group, c_in_group * win.taps), x.dtype)
    if plan.algorithm == _plan.EMPTY_SUM:
        return grad_weight.reshape(w.shape)
    if plan.algorithm in (_plan.DEPTHWISE, _plan.DIRECT_GROUPED):
        ws = _workspace.scratch("depthwise", (plan.workspace,), x.dtype, op,
                                "the kernel size and channel counts")
        _kernels.depthwise_backward_weight(gout.reshape(-1), x.reshape(-1), n,
                                           win.kernel_geometry(c_in), c_out_group, c_in_group,
                                           grad_weight.reshape(-1), ws, plan.threads)
        return grad_weight.reshape(w.shape)
    # One fused kernel per group over the whole batch: the GEMM packs its
    # panels straight from x and grad_output, so neither the column matrix
    # nor a transposed grad_output is ever built.
    winograd = plan.algorithm == _plan.WINOGRAD_F2X2_3X3
    ws = _workspace.scratch("weight_grad", (plan.workspace,), x.dtype, op, "the channel counts")
    plane, geom = x[0, 0].size, win.kernel_geometry(c_in_group)
    for g in range(groups):
        _kernels.conv_weight_grad(x.reshape(-1), g * c_in_group * plane, c_in * plane,
                                  gout.reshape(-1), g * c_out_group * l, c_out * l, n, geom,
                                  grad_weight[g], ws, plan.threads, winograd)
    return grad_weight.reshape(w.shape)


def bias_grad(gout):
    """Gradient of a per-channel bias: grad_output summed over all but axis 1."""
    return gout.sum(axis=(0,) + tuple(range(2, gout.ndim)))


def forward_arrays(op, input, weight, bias):
    """(x, w, b, meta): the array arguments of a (transposed) conv forward
    as ndarrays and what its memoised checks see of them, (x.shape, dtype,
    w.shape, w_dtype, b_shape, b_dtype) with the dtypes as memo keys."""
    if type(input) is np.ndarray and type(weight) is np.ndarray and (
            bias is None or type(bias) is np.ndarray):
        x, w, b = input, weight, bias   # parse_conv_arrays would return them as they are
    else:
        x, w, b, _ = parse_conv_arrays(op, input, weight, bias, _args.NO_GRAD)
    dtype = _args.dtype_key(x.dtype)
    w_dtype = dtype if w.dtype is x.dtype else _args.dtype_key(w.dtype)
    if b is None:
        return x, w, b, (x.shape, dtype, w.shape, w_dtype, None, None)
    b_dtype = dtype if b.dtype is x.dtype else _args.dtype_key(b.dtype)
    return x, w, b, (x.shape, dtype, w.shape, w_dtype, b.shape, b_dtype)


def _conv(op, nd, input, weight, bias, stride, padding, dilation, groups, explain=False):
    """conv{nd}d's output, or with `explain` the plan that computes it."""
    x, w, b, meta = forward_arrays(op, input, weight, bias)
    call = _conv_call(op, nd, *meta, stride, padding, dilation, groups,
                      _threads.get_num_threads())
    if call.whole is not None and not explain:
        # The per-call path of small calls: one typed call does the rest
        # (layout checks and copies, the result, the kernel).
        return call.whole.forward(x, w, b, _workspace.scratch_bytes(
            "conv", call.scratch_bytes, op, _SCRATCH_BLAME))
    x, w = _args.contiguous(x), _args.contiguous(w)
    b = None if b is None else _args.contiguous(b)
    plan = call.plan
    if call.reads_values:
        plan = _plan.plan_conv(_plan.OUTPUT, x.shape[0], x.shape[1], w.shape[0], call.win,
                               call.groups, x.dtype, plan.threads, operands=(x, w))
    if explain:
        return plan
    return call.layout.run(plan, op, x, w, b, call.kernel)


class _ConvCall:
    """What a conv forward call's shapes, dtypes, size arguments and thread
    count decide, worked out once per distinct call (_conv_call): the checks
    passed, the window, the plan by the shape rules and the output layout."""

    def __init__(self, op, nd, x_shape, dtype, w_shape, w_dtype, b_shape, b_dtype, stride,
                 padding, dilation, groups, threads):
        native_keys = (dtype, w_dtype) if b_dtype is None else (dtype, w_dtype, b_dtype)
        dtype, w_dtype = _args.key_dtype(dtype), _args.key_dtype(w_dtype)
        b_dtype = None if b_dtype is None else _args.key_dtype(b_dtype)
        self.win, self.groups = conv_window(op, nd, x_shape, dtype, w_shape, w_dtype,
                                            b_shape, b_dtype, None, None, stride, padding,
                                            dilation, groups)
        n, c_in, c_out = x_shape[0], x_shape[1], w_shape[0]
        self.plan = _plan.plan_conv(_plan.OUTPUT, n, c_in, c_out, self.win, self.groups,
                                    dtype, threads)
        # Winograd, when the shape rules pick it, runs only if the values
        # allow (plan_conv with the operands reads them on every call).
        self.reads_values = _plan.runs_winograd(self.plan)
        self.layout = _output_layout(n, c_in, c_out, self.win, self.groups)
        # The implicit GEMM, the plan of most small calls, typed once.
        self.kernel = self.whole = None
        if self.plan.algorithm in _IMPLICIT_GEMMS and not self.reads_values:
            per_image = self.plan.algorithm == _plan.GEMM_PER_IMAGE
            self.kernel = self.layout.kernel(self.plan, dtype, per_image)
            # One kernel call for the whole call (images in one chunk) on
            # native arrays (dtype keys "f"/"d"; _args.dtype_key): the typed
            # call also makes the layout checks and the result.
            if (per_image or n <= self.plan.chunk) and all(
                    type(key) is str for key in native_keys):
                aligned = (self.plan.stream_stores or ALIGNED_RESULT_MIN_BYTES
                           <= prod(self.layout.result_shape) * dtype.itemsize)
                self.whole = self.kernel.whole_call(
                    self.layout.result_shape, self.plan.threads, aligned, _args.contiguous,
                    functools.partial(_workspace.aligned_empty, self.layout.result_shape,
                                      dtype, op, "output", _OUTPUT_BLAME))
                self.scratch_bytes = self.layout.scratch_bytes(self.plan, dtype)


_IMPLICIT_GEMMS = (_plan.GEMM_PER_IMAGE, _plan.GEMM_SIDE_BY_SIDE)

# Smaller results of the whole typed call are NumPy's plain arrays, not
# cache-line aligned ones.  A cache-line start matters to streamed stores
# (the kernel streams only the tiles that start on one, so streamed results
# are always aligned); to the others it is at most a split vector per row,
# which on a few KiB weighs less than the aligned allocation's extra NumPy
# call (docs/performance.md, "Per-call overhead", fifth round).
ALIGNED_RESULT_MIN_BYTES = 16 << 10

# One memo lookup per conv forward call for all its shape-only work.
_conv_call = _callcache.memoize(_ConvCall)


def _conv_backward(op, nd, grad_output, input, weight, stride, padding, dilation, groups,
                   input_grad=True, explain=False):
    """conv{nd}d's gradients, or with `explain` the plans (grad_input,
    grad_weight) that compute them; without input_grad, grad_input (and its
    plan) is None."""
    input_grad = _args.as_bool(input_grad, "input_grad", op)
    x, w, _, g, win, groups = parse_conv_args(op, nd, input, weight, None, stride,
                                              padding, dilation, groups, grad_output)
    sizes = (x.shape[0], x.shape[1], w.shape[0], win, groups, x.dtype)
    plans = (_plan.plan_conv(_plan.GRAD_INPUT, *sizes, operands=(g, w)) if input_grad else None,
             _plan.plan_conv(_plan.GRAD_WEIGHT, *sizes, operands=(x, g)))
    if explain:
        return plans
    grad_weight = conv_grad_weight(x, g, w, win, groups, plans[1], op)
    grad_input = conv_grad_input(g, w, win, groups, x.shape, plans[0], op) if input_grad else None
    return grad_input, grad_weight, bias_grad(g)


@pytorch_forms(CONV, nd=1)
@filled(CONV_DOC, 1)
def conv1d(input: ArrayLike, weight: ArrayLike, bias: Optional[ArrayLike] = None,
           stride: Size1 = 1, padding: ConvPadding1 = 0, dilation: Size1 = 1,
           groups: int = 1) -> Array:
    return _conv("conv1d", 1, input, weight, bias, stride, padding, dilation, groups)


@pytorch_forms(CONV, nd=2)
@filled(CONV_DOC, 2)
def conv2d(input: ArrayLike, weight: ArrayLike, bias: Optional[ArrayLike] = None,
           stride: Size2 = 1, padding: ConvPadding2 = 0, dilation: Size2 = 1,
           groups: int = 1) -> Array:
    return _conv("conv2d", 2, input, weight, bias, stride, padding, dilation, groups)


@pytorch_forms(CONV, nd=3)
@filled(CONV_DOC, 3)
def conv3d(input: ArrayLike, weight: ArrayLike, bias: Optional[ArrayLike] = None,
           stride: Size3 = 1, padding: ConvPadding3 = 0, dilation: Size3 = 1,
           groups: int = 1) -> Array:
    return _conv("conv3d", 3, input, weight, bias, stride, padding, dilation, groups)


@pytorch_forms(CONV_BACKWARD, nd=1)
@filled(CONV_BACKWARD_DOC, 1)
def conv1d_backward(grad_output: ArrayLike, input: ArrayLike, weight: ArrayLike,
                    stride: Size1 = 1, padding: ConvPadding1 = 0, dilation: Size1 = 1,
                    groups: int = 1, *, input_grad: bool = True) -> Grads:
    return _conv_backward("conv1d_backward", 1, grad_output, input, weight, stride,
                          padding, dilation, groups, input_grad)


@pytorch_forms(CONV_BACKWARD, nd=2)
@filled(CONV_BACKWARD_DOC, 2)
def conv2d_backward(grad_output: ArrayLike, input: ArrayLike, weight: ArrayLike,
                    stride: Size2 = 1, padding: ConvPadding2 = 0, dilation: Size2 = 1,
                    groups: int = 1, *, input_grad: bool = True) -> Grads:
    return _conv_backward("conv2d_backward", 2, grad_output, input, weight, stride,
                          padding, dilation, groups, input_grad)


@pytorch_forms(CONV_BACKWARD, nd=3)
@filled(CONV_BACKWARD_DOC, 3)
def conv3d_backward(grad_output: ArrayLike, input: ArrayLike, weight: ArrayLike,
                    stride: Size3 = 1, padding: ConvPadding3 = 0, dilation: Size3 = 1,
                    groups: int = 1, *, input_grad: bool = True) -> Grads:
    return _conv_backward("conv3d_backward", 3, grad_output, input, weight, stride,
                          padding, dilation, groups, input_grad)
