"""fastconv.explain: the plans a convolution or adaptive average pooling
call would run, without running it."""
from __future__ import annotations

import re
from typing import Any, Tuple, Union

from . import functional
from .functional import _conv, _conv_transpose, _pool
from .functional._plan import ConvPlan, PoolPlan

# Op name -> the function that validates the op's arguments and (with
# explain=True) returns its plans instead of running them.
_PLANNED = (
    (re.compile(r"conv([123])d"), _conv._conv),
    (re.compile(r"conv([123])d_backward"), _conv._conv_backward),
    (re.compile(r"conv_transpose([123])d"), _conv_transpose._conv_transpose),
    (re.compile(r"conv_transpose([123])d_backward"), _conv_transpose._conv_transpose_backward),
    (re.compile(r"adaptive_avg_pool([123])d"), _pool._adaptive_avg_pool),
)


def explain(op_name: str, *args: Any, **kwargs: Any
            ) -> Union[ConvPlan, Tuple[ConvPlan, ConvPlan], PoolPlan]:
    """The plan(s) the call ``fastconv.<op_name>(*args, **kwargs)`` would run,
    without running it.

    Arguments are those of the op itself, checked exactly as the op checks
    them (so bad arguments raise the op's ValueError/TypeError).  For
    example, with x of shape (8, 64, 56, 56) and w of shape (64, 64, 3, 3)::

        plan = fastconv.explain("conv2d", x, w, padding=1)
        plan.algorithm   # 'winograd'
        plan.reason      # '3x3 stride-1 kernel, 64 >= 16 input channels per group, ...'

    Returns, for a forward op (conv1d/2d/3d, conv_transpose1d/2d/3d), the
    ConvPlan of its output; for a backward op (``*_backward``), the tuple
    (plan of grad_input, plan of grad_weight), in the order of the op's
    results (grad_bias is a plain sum and has no plan).

    A ConvPlan names what it computes (``computes``: "output", "grad_input"
    or "grad_weight" of the convolution; a transposed convolution runs the
    passes of the convolution it is the adjoint of, so its output is computed
    by a "grad_input" plan), the ``algorithm`` ("empty_sum", "depthwise", "direct_grouped",
    "winograd", "winograd_dilated_phases", "winograd_depth_stacked",
    "winograd_kernel_blocks", "implicit_gemm_per_image",
    "implicit_gemm_side_by_side", "flipped_conv", "gemm_col2im",
    "weight_grad_gemm", or for a strided transposed convolution "subpixel":
    its output phases as one stride-1 conv), the ``reason`` it
    was chosen, the ``batch``, the images per kernel call (``chunk``), the
    scratch elements (``workspace``), the ``threads``, whether threads take
    whole images (``threads_over_images``), whether the output is written
    with streaming stores (``stream_stores``), whether the images are read
    as their own column matrices (``pointwise``), for "flipped_conv" and
    "subpixel" the plan of the convolution it runs (``via``; for a
    "winograd_*" composition the Winograd plan of the 3x3 conv it runs), and
    for "gemm_col2im" on images whose column matrix would pass the scratch
    budget the input
    channels each kernel call covers (``channels_per_call``).  ``print(plan)`` shows it in
    a few lines.  The plan depends on the shapes, the dtype and
    fastconv.get_num_threads(), and on the values in one way only: Winograd
    runs only on values its transforms keep finite (no inf or NaN, products
    far from the dtype's overflow), the direct sum on any others.

    For adaptive_avg_pool1d/2d/3d it returns a PoolPlan: the ``algorithm``
    ("global_mean" for output size 1, the mean of whole planes; else
    "adaptive_bins"), the ``reason``, and whether global pooling
    ``prefetch``-es its input.

    Raises ValueError for an op name that is not one of these (the other
    ops have one algorithm each), and whatever the op raises for its
    arguments.
    """
    for pattern, planned in _PLANNED:
        match = pattern.fullmatch(op_name) if isinstance(op_name, str) else None
        if match:
            op = getattr(functional, op_name)
            try:
                # bind_arguments rewrites PyTorch's other forms (unbatched
                # input, one-element tuples) as the op itself does.
                bound = op.bind_arguments(*args, **kwargs)
            except TypeError as exc:
                raise TypeError(f"explain: arguments of {op_name}: {exc}") from None
            bound.apply_defaults()
            return planned(op_name, int(match.group(1)), **bound.arguments, explain=True)
    names = [n for n in functional.__all__ if any(p.fullmatch(n) for p, _ in _PLANNED)]
    raise ValueError(f"explain: op_name must be one of {names} (the other ops have one "
                     f"algorithm each), got op_name={op_name!r}")
