"""im2col / col2im as public ops (torch.nn.functional.unfold / fold)."""
from __future__ import annotations

import numpy as np

from .. import _args, _kernels, _threads
from .._types import Array, ArrayLike, Size2
from ._geometry import Window


def _window(op, in_size, kernel_size, stride, padding, dilation):
    kernel = _args.int_tuple(kernel_size, 2, "kernel_size", op, minimum=1)
    stride = _args.int_tuple(stride, 2, "stride", op, minimum=1)
    padding = _args.int_tuple(padding, 2, "padding", op, minimum=0)
    dilation = _args.int_tuple(dilation, 2, "dilation", op, minimum=1)
    win = Window(tuple(in_size), kernel, stride, padding, padding, dilation)
    if any(o < 1 for o in win.out_size):
        raise ValueError(f"{op}: output would be empty: spatial size {win.in_size} with "
                         f"padding {padding} is smaller than the dilated kernel "
                         f"{tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))}")
    return win


def im2col(input: ArrayLike, kernel_size: Size2, stride: Size2 = 1, padding: Size2 = 0,
           dilation: Size2 = 1) -> Array:
    """Sliding windows of (N, C, H, W) input as columns, exactly
    torch.nn.functional.unfold.

    cols[n, c * kH * kW + i * kW + j, oh * OW + ow] is the (zero-padded) input
    element x[n, c, oh * stride_h + i * dilation_h, ow * stride_w + j * dilation_w].

    Args:
        input: (N, C, H, W) array.
        kernel_size: window size, an int or a tuple of 2 ints (each >= 1).
        stride: step between windows, an int or a tuple of 2 ints (each >= 1).
        padding: zeros on both sides, an int or a tuple of 2 ints (each >= 0).
        dilation: spacing between taps, an int or a tuple of 2 ints (each >= 1).

    Returns:
        (N, C * kH * kW, L) columns, L = OH * OW windows with
        out = floor((in + 2 * padding - dilation * (k - 1) - 1) / stride) + 1.

    Every array must be float32 or float64 (array-likes of floats are
    accepted); any memory layout works and the input is never modified.  The
    result is a fresh C-contiguous array of the input's dtype.

    Raises:
        TypeError: input None or not float32/float64; a size argument that is
            not an int or a tuple of ints.
        ValueError: input not 4-D; a tuple of the wrong length; a
            non-positive kernel size, stride or dilation, a negative padding,
            a size past 2**40; no window fits (the padded input smaller than
            the dilated kernel).
        MemoryError: an output larger than this machine's memory.
    """
    op = "im2col"
    x = _args.as_float_array(input, "input", op)
    _args.check_ndim(x, 4, "input", op, "(N, C, H, W)")
    win = _window(op, x.shape[2:], kernel_size, stride, padding, dilation)
    n, c = x.shape[:2]
    rows, l = c * win.taps, win.out_count
    _args.check_alloc(op, "output", (n, rows, l), x.dtype,
                      f"kernel_size={kernel_size!r}, stride={stride!r}, padding={padding!r}, "
                      f"dilation={dilation!r}")
    x = _args.contiguous(x)
    cols = np.empty((n, rows, l), dtype=x.dtype)
    _kernels.im2col(x.reshape(-1), n, win.kernel_geometry(c), rows * l, l,
                    cols.reshape(-1), _threads.get_num_threads())
    return cols


def col2im(cols: ArrayLike, output_size: Size2, kernel_size: Size2, stride: Size2 = 1,
           padding: Size2 = 0, dilation: Size2 = 1) -> Array:
    """Sum columns back into images, exactly torch.nn.functional.fold: the
    adjoint of im2col (every column element is added at the input position
    im2col took it from; overlaps are summed, padding dropped).

    Args:
        cols: (N, C * kH * kW, L) array, L the number of windows im2col makes
            on an output_size image.
        output_size: the image size (H, W), an int or a tuple of 2 ints
            (each >= 1).
        kernel_size, stride, padding, dilation: as im2col's.

    Returns:
        (N, C, H, W) images.

    Every array must be float32 or float64 (array-likes of floats are
    accepted); any memory layout works and the input is never modified.  The
    result is a fresh C-contiguous array of the input's dtype.

    Raises:
        TypeError: cols None or not float32/float64; a size argument that is
            not an int or a tuple of ints.
        ValueError: cols not 3-D; cols.shape[1] not a multiple of kH * kW;
            cols.shape[2] not the number of windows; a bad size argument (as
            im2col); no window fits.
        MemoryError: an output larger than this machine's memory.
    """
    op = "col2im"
    c_arr = _args.as_float_array(cols, "cols", op)
    _args.check_ndim(c_arr, 3, "cols", op, "(N, C*kH*kW, L)")
    size = _args.int_tuple(output_size, 2, "output_size", op, minimum=1)
    win = _window(op, size, kernel_size, stride, padding, dilation)
    n, rows, l = c_arr.shape
    if rows % win.taps:
        raise ValueError(f"{op}: cols.shape[1]={rows} is not a multiple of "
                         f"kH*kW={win.taps} for kernel_size={win.kernel}")
    if l != win.out_count:
        raise ValueError(f"{op}: cols.shape[2]={l} does not match the {win.out_size} "
                         f"= {win.out_count} windows of output_size={size}")
    c = rows // win.taps
    _args.check_alloc(op, "output", (n, c) + size, c_arr.dtype,
                      f"output_size={output_size!r}")
    c_arr = _args.contiguous(c_arr)
    out = np.empty((n, c) + size, dtype=c_arr.dtype)
    _kernels.col2im(c_arr.reshape(-1), n, win.kernel_geometry(c), rows * l, l,
                    out.reshape(-1), _threads.get_num_threads())
    return out
