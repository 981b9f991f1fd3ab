"""Convolution forward and backward (1-D, 2-D, 3-D) as implicit GEMMs.

Forward: the C kernel pads and stride-splits each image once and the GEMM
packs its column blocks from there (no column matrix); large images get a
GEMM each, written in place, small ones go side by side in chunks whose
scratch stays near _workspace.WORKSPACE_BYTES.  Backward: the weight gradient
is one fused kernel per group over the whole batch; the data gradient of a
stride-1 conv is a conv of grad_output with the flipped kernel, otherwise a
GEMM into (K, B, L) columns folded back by col2im, chunk by chunk.  Depthwise
convs (groups == C_in) have their own direct kernels.
"""

import os

import numpy as np

from .. import _args, _kernels, _shapes, _threads, _workspace
from .._conventions import CONV, CONV_BACKWARD, pytorch_forms
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


def parse_conv_arrays(op, nd, input, weight, bias, groups, grad_output, weight_layout):
    """The array arguments of a (transposed) conv as float arrays of one dtype
    and the right ndim, plus groups as a positive int.  grad_output is NO_GRAD
    for a forward call (so None there is the caller's error)."""
    x = _args.as_float_array(input, "input", op)
    w = _args.as_float_array(weight, "weight", op)
    b = None if bias is None else _args.as_float_array(bias, "bias", op)
    g = (None if grad_output is _args.NO_GRAD
         else _args.as_float_array(grad_output, "grad_output", op))
    _args.same_dtype(op, input=x, weight=w, bias=b, grad_output=g)
    _args.check_ndim(x, nd + 2, "input", op, _LAYOUTS[nd])
    _args.check_ndim(w, nd + 2, "weight", op, weight_layout)
    return x, w, b, g, _args.positive_int(groups, "groups", op)


def parse_conv_args(op, nd, input, weight, bias, stride, padding, dilation, groups,
                    grad_output=_args.NO_GRAD):
    """Validate a conv call once; returns (x, w, b, gout, window, groups) with
    the arrays C-contiguous and every rule of API.md checked."""
    x, w, b, g, groups = parse_conv_arrays(op, nd, input, weight, bias, groups, grad_output,
                                           "(C_out, C_in // groups, *kernel)")
    n, c_in = x.shape[:2]
    c_out, c_per_group = w.shape[:2]
    kernel = tuple(w.shape[2:])
    if any(k < 1 for k in kernel):
        raise ValueError(f"{op}: kernel size must be positive, got weight shape {w.shape}")
    if c_in % groups:
        raise ValueError(f"{op}: input channels C_in={c_in} not divisible by groups={groups}")
    if c_out % groups:
        raise ValueError(f"{op}: output channels C_out={c_out} not divisible by "
                         f"groups={groups}")
    if c_per_group * groups != c_in:
        raise ValueError(f"{op}: weight shape {w.shape} expects C_in = "
                         f"{c_per_group}*groups = {c_per_group * groups}, but input "
                         f"shape {x.shape} has C_in={c_in}")
    if b is not None and b.shape != (c_out,):
        raise ValueError(f"{op}: bias must have shape ({c_out},), got {b.shape}")
    stride = _args.int_tuple(stride, nd, "stride", op, minimum=1)
    dilation = _args.int_tuple(dilation, nd, "dilation", op, minimum=1)
    pad_before, pad_after = _padding(padding, nd, kernel, stride, dilation, op)
    win = Window(tuple(x.shape[2:]), kernel, stride, pad_before, pad_after, dilation)
    if any(o < 1 for o in win.out_size):
        raise ValueError(f"{op}: output would be empty: input spatial size "
                         f"{win.in_size} with padding {padding!r} is smaller than the "
                         f"dilated kernel {tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))}")
    _args.check_alloc(op, "output", (n, c_out) + win.out_size, x.dtype,
                      f"padding={padding!r}, stride={stride}, dilation={dilation}")
    if g is not None and g.shape != (n, c_out) + win.out_size:
        raise ValueError(f"{op}: grad_output must have shape "
                         f"{(n, c_out) + win.out_size}, got {g.shape}")
    return (_args.contiguous(x), _args.contiguous(w),
            None if b is None else _args.contiguous(b),
            None if g is None else _args.contiguous(g), win, groups)


def _chunk_size(n, bytes_per_image):
    return max(1, min(n, _workspace.WORKSPACE_BYTES // max(1, bytes_per_image)))


def _gemm_workspace(dtype, nthreads):
    return _workspace.scratch("gemm", (_kernels.gemm_workspace_size(dtype.char, nthreads),),
                              dtype)


def gemm(a, b, c, accumulate=False):
    """c = a @ b (or c += a @ b) on 2-D views of any strides, with fastconv's
    packed GEMM (SIMD micro-kernel chosen for this CPU)."""
    nthreads = _threads.get_num_threads()
    _kernels.gemm(a, b, c, accumulate, _gemm_workspace(a.dtype, nthreads), nthreads)


# One GEMM per image (output written in place, no transposes; threads take
# whole images) pays once an image has >= 400 output positions: its panels
# are then mostly full.  Smaller images go side by side in chunks, with the
# output transposed into place afterwards (deep, 14x14: 41 ms against 49
# per image; lenet1, 24x24: 0.52 ms per image against 0.61).
def _per_image(l):
    return l >= 400


def _forward_implicit(op, x, w, b, geom, groups, out, per_image):
    """Convolve images x into `out` (+ bias b, or None) with the implicit-GEMM
    kernel: out is (N, C_out, L) when per_image (one GEMM per image, in
    place), else (C_out, N*L) (the images side by side)."""
    nb, dtype = x.shape[0], x.dtype
    nthreads = _threads.get_num_threads()
    size = _kernels.conv_workspace_size(dtype.char, geom, nb, per_image, nthreads)
    _args.check_alloc(op, "scratch of the padded input", (size,), dtype,
                      "padding, stride and dilation")
    ws = _workspace.scratch("conv", (size,), dtype)
    offsets = _workspace.scratch("conv_offsets", (x.shape[1] * w[0, 0].size,), np.int64)
    bias = np.empty(0, dtype) if b is None else b
    _kernels.conv_forward(x.reshape(-1), nb, geom, groups, w.reshape(-1), bias, w.shape[0],
                          out.reshape(-1), per_image, ws, offsets, nthreads)


# Winograd F(2x2, 3x3) does 2.25x fewer multiply-adds than the direct sum;
# it pays from 16 input channels per group (below, its transforms cost more
# than they save: cifar's 3 channels run 0.70x the implicit GEMM's speed, 8
# channels 0.9-1.5x) and while at least 70% of its 2x2 tiles' outputs are
# real (odd sizes waste a row and a column: 7x7 is 77% and still pays 1.1-1.3x,
# 3x3 is 56% and runs 0.85x).
#
# FASTCONV_WINOGRAD=0 turns it off (read once, at import), for results that
# round exactly as the direct sum does.
WINOGRAD = os.environ.get("FASTCONV_WINOGRAD", "1").strip().lower() not in (
    "0", "false", "no", "off")


def _winograd_applies(win, c_in_group):
    if not WINOGRAD:
        return False
    if win.kernel != (3, 3) or win.stride != (1, 1) or win.dilation != (1, 1):
        return False
    oh, ow = win.out_size
    tiles_out = 4 * ((oh + 1) // 2) * ((ow + 1) // 2)
    return c_in_group >= 16 and oh * ow >= 0.7 * tiles_out


def _forward_winograd(op, x, w, b, geom, groups, out):
    """Convolve x into out (N, C_out, L) (+ bias b, or None) by Winograd
    F(2x2, 3x3); its scratch does not grow with the batch."""
    dtype, nthreads = x.dtype, _threads.get_num_threads()
    size = _kernels.conv_winograd_workspace_size(dtype.char, geom, groups, w.shape[0],
                                                 nthreads)
    _args.check_alloc(op, "scratch of the Winograd transforms", (size,), dtype,
                      "the channel counts")
    _kernels.conv_winograd(x.reshape(-1), x.shape[0], geom, groups, w.reshape(-1),
                           np.empty(0, dtype) if b is None else b, w.shape[0],
                           out.reshape(-1), _workspace.scratch("winograd", (size,), dtype),
                           nthreads)


def _depthwise_workspace(dtype, geom, multiplier, nthreads):
    """The depthwise kernels' scratch (per-thread staged planes; they never
    allocate themselves), reused across calls."""
    size = _kernels.depthwise_workspace_size(dtype.char, geom, multiplier, nthreads)
    return _workspace.scratch("depthwise", (size,), dtype)


def _is_depthwise(c_in, groups):
    """One input channel per group: a GEMM per group would be 1 x taps thin."""
    return groups > 1 and groups == c_in


def conv_forward(x, w, b, win, groups, op="conv"):
    """Output (N, C_out, *out) of a validated conv call (`op` names it in
    errors)."""
    n, c_in = x.shape[:2]
    c_out = w.shape[0]
    c_out_group, k_group, l = c_out // groups, (c_in // groups) * win.taps, win.out_count
    out = _workspace.aligned_empty((n, c_out, l), x.dtype)
    geom = win.kernel_geometry(c_in)
    if not out.size:
        pass
    elif _is_depthwise(c_in, groups):
        nthreads = _threads.get_num_threads()
        _kernels.depthwise_forward(x.reshape(-1), w.reshape(-1),
                                   np.empty(0, x.dtype) if b is None else b, n, geom,
                                   c_out_group, out.reshape(-1),
                                   _depthwise_workspace(x.dtype, geom, c_out_group, nthreads),
                                   nthreads)
    elif k_group == 0:  # no input channels: an empty sum, plus the bias
        out[...] = 0 if b is None else b[:, None]
    elif _winograd_applies(win, c_in // groups):
        _forward_winograd(op, x, w, b, geom, groups, out)
    elif win.is_pointwise() or _per_image(l):
        # 1x1 convs read each image as its own column matrix.
        _forward_implicit(op, x, w, b, geom, groups, out, per_image=True)
    else:
        _forward_side_by_side(op, x, w, b, geom, groups, out)
    return out.reshape((n, c_out) + win.out_size)


def _forward_side_by_side(op, x, w, b, geom, groups, out):
    """Small images side by side, in chunks of bounded scratch; each chunk's
    (C_out, nb*L) output is then transposed into place."""
    n, (c_out, l) = x.shape[0], out.shape[1:]
    size = lambda nb: _kernels.conv_workspace_size(x.dtype.char, geom, nb, False, 1)  # noqa: E731
    chunk = _chunk_size(n, (size(2) - size(1) + c_out * l) * x.itemsize)
    for b0 in range(0, n, chunk):
        nb = min(chunk, n - b0)
        out_t = _workspace.scratch("out_t", (c_out, nb, l), x.dtype)
        _forward_implicit(op, x[b0:b0 + nb], w, b, geom, groups, out_t, per_image=False)
        np.copyto(out[b0:b0 + nb], out_t.transpose(1, 0, 2))


def conv_backward(gout, w, win, groups, x=None, input_shape=None):
    """Gradients of a validated conv call: (grad_input, grad_weight).

    grad_weight needs the input `x`; grad_input needs only its shape. Either
    half is skipped when its argument is None (transposed convolution uses the
    halves separately)."""
    n, c_out = gout.shape[:2]
    c_in = w.shape[1] * groups
    c_out_group = c_out // groups
    k_group, l = (c_in // groups) * win.taps, win.out_count
    dtype = gout.dtype
    grad_weight = None if x is None else np.zeros((groups, c_out_group, k_group), dtype)
    # Each path allocates grad_input where it writes all of it (the stride-1
    # path gets it from conv_forward): an unused 25 MB np.empty still moved
    # the heap around and made fresh pages for the next call.  Only an empty
    # sum needs zeros.
    if not (n and c_out and k_group):
        grad_input = None if input_shape is None else np.zeros(input_shape, dtype)
        return grad_input, None if x is None else grad_weight.reshape(w.shape)
    grad_input = None
    if _is_depthwise(c_in, groups):
        geom, nthreads = win.kernel_geometry(c_in), _threads.get_num_threads()
        ws = _depthwise_workspace(dtype, geom, c_out_group, nthreads)
        if x is not None:
            _kernels.depthwise_backward_weight(gout.reshape(-1), x.reshape(-1), n, geom,
                                               c_out_group, grad_weight.reshape(-1), ws,
                                               nthreads)
        if input_shape is not None:
            grad_input = _workspace.aligned_empty(input_shape, dtype)
            _kernels.depthwise_backward_input(gout.reshape(-1), w.reshape(-1), n, geom,
                                              c_out_group, grad_input.reshape(-1), ws, nthreads)
        return grad_input, None if x is None else grad_weight.reshape(w.shape)
    if x is not None:
        _weight_grad_fused(x, gout, win, groups, grad_weight)
    grad_weight = None if x is None else grad_weight.reshape(w.shape)
    if input_shape is None:
        return None, grad_weight
    # Stride 1: the data gradient is itself a convolution, run by the
    # forward's kernels (no column matrix, no col2im).  The implicit GEMM has
    # C_in/groups rows: below ~16 most of each micro-tile would be padding, and
    # GEMM + col2im is faster (cifar: 4.4 ms against 8.2; by Winograd 3.8
    # against 3.4).
    flipped = _data_grad_window(win) if c_in // groups >= 16 else None
    if flipped is not None:
        grad_input = conv_forward(gout, _flipped_weight(w, groups), None, flipped, groups)
        return grad_input.reshape(input_shape), grad_weight
    # Otherwise GEMM + col2im, image by image in the C kernel (threads take
    # whole images), each image's columns in per-thread scratch.
    geom, nthreads = win.kernel_geometry(c_in), _threads.get_num_threads()
    size = _kernels.conv_data_grad_workspace_size(dtype.char, geom, nthreads)
    _args.check_alloc("conv_backward", "column matrix of one image", (size,), dtype,
                      "the kernel size, stride and dilation")
    grad_input = _workspace.aligned_empty(input_shape, dtype)
    _kernels.conv_data_grad(gout.reshape(-1), n, geom, groups, w.reshape(-1), c_out,
                            grad_input.reshape(-1), _workspace.scratch("cols", (size,), dtype),
                            nthreads)
    return grad_input, grad_weight


def _data_grad_window(win):
    """The window of the convolution that computes a stride-1 conv's data
    gradient: grad_input[i] = sum_t W[t] grad_output[i + pad - t*d], i.e. a
    conv over grad_output with the kernel flipped and padding d*(k-1) - pad,
    whose output grid is the input's.  None when that does not apply (a
    stride > 1, or padding beyond the dilated kernel: negative padding)."""
    reach = tuple(d * (k - 1) for k, d in zip(win.kernel, win.dilation))
    if any(s != 1 for s in win.stride) or any(p > r for p, r in zip(win.pad_before, reach)):
        return None
    pad = tuple(r - p for p, r in zip(win.pad_before, reach))
    # Taps past grad_output's end read as zeros, so the trailing padding is
    # implied by the explicit output grid.
    return Window(win.out_size, win.kernel, win.stride, pad, pad, win.dilation,
                  explicit_out=win.in_size)


def _flipped_weight(w, groups):
    """(C_in, C_out // groups, *kernel) weight of the data-gradient conv:
    each group's (out, in) channel roles swapped and every kernel axis
    reversed."""
    c_out, c_in_group = w.shape[:2]
    kernel = w.shape[2:]
    grouped = w.reshape((groups, c_out // groups, c_in_group) + kernel)
    flipped = grouped.swapaxes(1, 2)[(Ellipsis,) + (slice(None, None, -1),) * len(kernel)]
    return np.ascontiguousarray(flipped).reshape((groups * c_in_group, c_out // groups) + kernel)


def _weight_grad_fused(x, gout, win, groups, grad_weight):
    """grad_weight (groups, C_out/groups, K) += grad_output @ columns.T over the
    whole batch in one fused kernel per group: the GEMM packs its panels
    straight from x and grad_output, so neither the column matrix nor a
    transposed grad_output is ever built."""
    n, c_in = x.shape[:2]
    c_out, l = gout.shape[1], win.out_count
    c_in_group, c_out_group = c_in // groups, c_out // groups
    plane = x[0, 0].size
    nthreads = _threads.get_num_threads()
    geom = win.kernel_geometry(c_in_group)
    winograd = _winograd_applies(win, c_in_group)
    if winograd:
        size = _kernels.conv_winograd_weight_grad_workspace_size(x.dtype.char, geom,
                                                                 c_out_group, nthreads)
        _args.check_alloc("conv_backward", "scratch of the Winograd transforms", (size,),
                          x.dtype, "the channel counts")
    else:
        size = _kernels.conv_weight_grad_workspace_size(x.dtype.char, c_out_group,
                                                        grad_weight.shape[2], nthreads)
    ws = _workspace.scratch("weight_grad", (size,), x.dtype)
    for g in range(groups):
        _kernels.conv_weight_grad(x.reshape(-1), g * c_in_group * plane, c_in * plane,
                                  gout.reshape(-1), g * c_out_group * l, c_out * l, n, geom,
                                  grad_weight[g], ws, nthreads, winograd)


def bias_grad(gout):
    """Gradient of a per-channel bias: grad_output summed over all but axis 1."""
    return gout.sum(axis=(0,) + tuple(range(2, gout.ndim)))


def _conv(op, nd, input, weight, bias, stride, padding, dilation, groups):
    x, w, b, _, win, groups = parse_conv_args(op, nd, input, weight, bias, stride,
                                              padding, dilation, groups)
    return conv_forward(x, w, b, win, groups, op)


def _conv_backward(op, nd, grad_output, input, weight, stride, padding, dilation, groups):
    x, w, _, g, win, groups = parse_conv_args(op, nd, input, weight, None, stride,
                                              padding, dilation, groups, grad_output)
    grad_input, grad_weight = conv_backward(g, w, win, groups, x=x, input_shape=x.shape)
    return grad_input, grad_weight, bias_grad(g)


@pytorch_forms(CONV, nd=1)
def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-D convolution (cross-correlation) of (N, C_in, L) input with
    (C_out, C_in // groups, k) weight, as torch.nn.functional.conv1d."""
    return _conv("conv1d", 1, input, weight, bias, stride, padding, dilation, groups)


@pytorch_forms(CONV, nd=2)
def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution (cross-correlation) of (N, C_in, H, W) input with
    (C_out, C_in // groups, kH, kW) weight, as torch.nn.functional.conv2d.

    padding: int, (pH, pW), 'valid' or 'same' (stride 1; an odd total padding
    puts the extra row/column at the bottom/right). Returns a fresh
    C-contiguous (N, C_out, OH, OW) array of the input's dtype."""
    return _conv("conv2d", 2, input, weight, bias, stride, padding, dilation, groups)


@pytorch_forms(CONV, nd=3)
def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """3-D convolution of (N, C_in, D, H, W) input with
    (C_out, C_in // groups, kD, kH, kW) weight, as torch.nn.functional.conv3d."""
    return _conv("conv3d", 3, input, weight, bias, stride, padding, dilation, groups)


@pytorch_forms(CONV_BACKWARD, nd=1)
def conv1d_backward(grad_output, input, weight, stride=1, padding=0, dilation=1, groups=1):
    """Gradients (grad_input, grad_weight, grad_bias) of conv1d."""
    return _conv_backward("conv1d_backward", 1, grad_output, input, weight, stride,
                          padding, dilation, groups)


@pytorch_forms(CONV_BACKWARD, nd=2)
def conv2d_backward(grad_output, input, weight, stride=1, padding=0, dilation=1, groups=1):
    """Gradients (grad_input, grad_weight, grad_bias) of conv2d with respect to
    its input, weight and bias; grad_bias = grad_output.sum((0, 2, 3))."""
    return _conv_backward("conv2d_backward", 2, grad_output, input, weight, stride,
                          padding, dilation, groups)


@pytorch_forms(CONV_BACKWARD, nd=3)
def conv3d_backward(grad_output, input, weight, stride=1, padding=0, dilation=1, groups=1):
    """Gradients (grad_input, grad_weight, grad_bias) of conv3d."""
    return _conv_backward("conv3d_backward", 3, grad_output, input, weight, stride,
                          padding, dilation, groups)
