"""im2col / col2im as public ops (torch.nn.functional.unfold / fold)."""
from __future__ import annotations

import numpy as np

from .. import _args, _kernels, _threads
from .._conventions import FOLD, UNFOLD, pytorch_forms
from .._types import Array, ArrayLike, Pair
from ._doc import COL2IM_DOC, IM2COL_DOC, filled
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


@pytorch_forms(UNFOLD, nd=2)
@filled(IM2COL_DOC, 2)
def im2col(input: ArrayLike, kernel_size: Pair, dilation: Pair = 1, padding: Pair = 0,
           stride: Pair = 1) -> Array:
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


@pytorch_forms(FOLD, nd=2)
@filled(COL2IM_DOC, 2)
def col2im(cols: ArrayLike, output_size: Pair, kernel_size: Pair, dilation: Pair = 1,
           padding: Pair = 0, stride: Pair = 1) -> Array:
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
