"""Docstrings of the ops that share text: one template per family, filled in
per dimension by the `filled` decorator (so the 1-D, 2-D and 3-D ops cannot
drift apart).  These docstrings are the API reference: they say everything a
caller may rely on."""
from typing import Any, Callable, TypeVar


_DIMS = {
    1: dict(layout="(N, C, L)", spatial="L", out="OL", kernel="k",
            flat="l", plane="row"),
    2: dict(layout="(N, C, H, W)", spatial="H, W", out="OH, OW", kernel="kH, kW",
            flat="h * W + w", plane="plane"),
    3: dict(layout="(N, C, D, H, W)", spatial="D, H, W", out="OD, OH, OW",
            kernel="kD, kH, kW", flat="d * H * W + h * W + w", plane="volume"),
}


# The decorated op keeps its own signature for type checkers.
_Op = TypeVar("_Op", bound=Callable[..., Any])


def filled(template: str, nd: int, torch_note: str = "") -> Callable[[_Op], _Op]:
    """A decorator setting the op's docstring to `template` filled in for
    `nd` spatial dims ({name} is the op's own name), followed by whatever
    docstring the op already had (e.g. from an inner decorator)."""
    def apply(fn):
        sizes = "an int or a tuple of 1 int" if nd == 1 else f"an int or a tuple of {nd} ints"
        name = fn.__name__
        forward = name[:-len("_backward")] if name.endswith("_backward") else name
        doc = template.format(name=name, forward=forward, nd=nd, nd_plus_2=nd + 2, sizes=sizes,
                              dtypes=_DTYPES, size_errors=_SIZE_ERRORS, torch_note=torch_note,
                              layout_in=_DIMS[nd]["layout"].replace("C", "C_in"), **_DIMS[nd])
        own = (fn.__doc__ or "").strip()
        fn.__doc__ = doc + ("\n" + own + "\n" if own else "")
        return fn
    return apply


_DTYPES = """\
Every array must be float32 or float64 (array-likes of floats are accepted),
all of one dtype; any memory layout works (non-contiguous, Fortran order,
negative strides, either byte order) and inputs are never modified.  Results
are fresh C-contiguous arrays of the input's dtype.  Batch size 0 and channel
count 0 are valid and give correctly shaped (empty or zero) results."""

_SIZE_ERRORS = """\
    TypeError: an array that is None, not float32/float64, or of mixed
        dtypes (the message names both); a size argument that is not an int
        or a tuple of ints (bools and floats included).
    ValueError: an array of the wrong ndim; a tuple of the wrong length; a
        non-positive kernel size, stride or dilation, a negative padding, or
        a size past 2**40;"""

CONV_DOC = """\
{nd}-D convolution (cross-correlation) of {layout_in} input, as
torch.nn.functional.{name}.

    y[n, o, p] = bias[o] + sum over the input channels c of o's group and the
                 kernel taps t of weight[o, c, t] * x[n, c, p * stride + t * dilation]

where x is the input padded with zeros.

Args:
    input: {layout_in} array: N images of C_in channels.
    weight: (C_out, C_in // groups, {kernel}) array.
    bias: (C_out,) array added to every output position, or None.
    stride: step between windows, {sizes} (each >= 1).
    padding: zeros added before and after each spatial axis, {sizes}
        (each >= 0); or "valid" (no padding); or "same" (the output keeps the
        input's size; needs stride 1; an odd total padding puts the extra
        zero after, at the bottom/right, as PyTorch does).
    dilation: spacing between kernel taps, {sizes} (each >= 1).
    groups: int >= 1 dividing C_in and C_out; output channel group g sees
        only input channel group g (groups == C_in is a depthwise conv).

Returns:
    (N, C_out, {out}) array; per axis
    out = floor((in + pad_before + pad_after - dilation * (k - 1) - 1) / stride) + 1.

{dtypes}

fastconv.explain("{name}", ...) shows which algorithm the call runs.

Raises:
{size_errors}
        C_in or C_out not divisible by groups, weight's C_in // groups not
        matching the input, bias not of shape (C_out,), padding="same" with a
        stride > 1, an unknown padding string, or an empty output (the input
        smaller than the dilated kernel).
    MemoryError: an output or scratch larger than this machine's memory.
"""

CONV_TRANSPOSE_DOC = """\
{nd}-D transposed convolution ("deconvolution", the adjoint of conv{nd}d with
the same weight) of {layout_in} input, as torch.nn.functional.{name}.

Args:
    input: {layout_in} array: N images of C_in channels.
    weight: (C_in, C_out // groups, {kernel}) array (PyTorch's layout).
    bias: (C_out,) array added to every output position, or None.
    stride: {sizes} (each >= 1): output step between input positions.
    padding: {sizes} (each >= 0): dilation * (k - 1) - padding zeros are
        added to each side of the input; strings are refused.
    output_padding: {sizes} (each >= 0 and < max(stride, dilation) on its
        axis): extra size added to one side of the output.
    groups: int >= 1 dividing C_in and C_out.
    dilation: spacing between kernel taps, {sizes} (each >= 1).

Returns:
    (N, C_out, {out}) array; per axis
    out = (in - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1.

{dtypes}

fastconv.explain("{name}", ...) shows which algorithm the call runs.

Raises:
{size_errors}
        weight.shape[0] != C_in, C_in not divisible by groups, bias not of
        shape (C_out,), output_padding >= max(stride, dilation), a string
        padding, or an empty output.
    MemoryError: an output or scratch larger than this machine's memory.
"""

_CONV_GRADS = """\
Gradients of {forward} with respect to its input, weight and bias.

Args:
    grad_output: (N, C_out, {out}) array, the gradient of the loss with
        respect to {forward}'s output.
    [FORWARD_ARGS]: those of the forward call (see {forward}).
    input_grad: keyword-only bool (default True); False skips grad_input,
        which is then None (PyTorch skips it for an input that does not
        require grad: a network's images).

Returns:
    (grad_input, grad_weight, grad_bias): arrays of the input's shape
    {layout_in}, the weight's shape [WEIGHT_SHAPE] and (C_out,);
    grad_bias = grad_output summed over every axis but 1.

{dtypes}

fastconv.explain("{name}", ...) shows which algorithms compute grad_input
and grad_weight.

Raises:
{size_errors}
        grad_output not of the forward output's shape, and every error of
        {forward}.
    MemoryError: a result or scratch larger than this machine's memory.
"""

CONV_BACKWARD_DOC = _CONV_GRADS.replace(
    "[FORWARD_ARGS]", "input, weight, stride, padding, dilation, groups").replace(
    "[WEIGHT_SHAPE]", "(C_out, C_in // groups, {kernel})")

CONV_TRANSPOSE_BACKWARD_DOC = _CONV_GRADS.replace(
    "[FORWARD_ARGS]",
    "input, weight, stride, padding, output_padding, groups, dilation").replace(
    "[WEIGHT_SHAPE]", "(C_in, C_out // groups, {kernel})")

_POOL_WINDOW_ARGS = """\
    kernel_size: window size, {sizes} (each >= 1).
    stride: step between windows, {sizes} (each >= 1); None means
        kernel_size.
    padding: implicit padding on both sides, {sizes} (each >= 0 and at most
        kernel_size // 2 on its axis)."""

_POOL_SIZE = """\
    Per axis out = floor((in + 2 * padding - dilation * (k - 1) - 1) / stride) + 1
    (dilation is 1 for average pooling); with ceil_mode the division rounds
    up, but a last window that would start in the right padding is dropped
    (PyTorch's rule)."""

_POOL_ERRORS = """\
{size_errors}
        padding > kernel_size // 2 or an empty output (input smaller than the
        dilated kernel).
        A flag that is not a bool (or 0/1) is a TypeError."""

MAX_POOL_DOC = """\
{nd}-D max pooling of {layout} input, as torch.nn.functional.{name}.

Args:
    input: {layout} array.
""" + _POOL_WINDOW_ARGS + """
    dilation: spacing between window taps, {sizes} (each >= 1).
    ceil_mode: bool, round the output size up instead of down.
    return_indices: bool, also return where each maximum was.

Returns:
    The (N, C, {out}) maxima, and with return_indices an int64 array of the
    same shape: the flat index {flat} of each maximum inside its own (n, c)
    {plane} of the input (PyTorch's convention; max_pool{nd}d_backward takes
    it).
""" + _POOL_SIZE + """

Padding counts as -inf.  NaN propagates: a window holding NaN gives NaN, its
index pointing at a NaN.  On ties the first maximum in row-major window order
wins.  A window that dilation steps over the whole input (padding only)
gives -inf and, as PyTorch, the flat index of its first tap at or past 0 on
each axis, which can lie past the plane (max_pool{nd}d_backward refuses
such an index).

{dtypes}

Raises:
""" + _POOL_ERRORS + """
    MemoryError: an output larger than this machine's memory.
"""

MAX_POOL_BACKWARD_DOC = """\
Gradient of max_pool{nd}d with respect to its input: each grad_output
element is added at its index inside its (n, c) {plane} of a zero array of
input_shape (overlapping windows accumulate).

Args:
    grad_output: (N, C, {out}) array, the gradient of the loss with respect
        to max_pool{nd}d's output.
    indices: the int64 indices max_pool{nd}d(..., return_indices=True)
        returned (grad_output's shape; flat {flat} per {plane}; int64 of
        either byte order).
    input_shape: the forward input's shape {layout}, a tuple or list of
        {nd_plus_2} ints >= 0.

Returns:
    grad_input: an array of input_shape.

{dtypes}

Raises:
    TypeError: grad_output None or not float32/float64; indices not int64;
        input_shape entries that are not ints.
    ValueError: grad_output of the wrong ndim; indices not of grad_output's
        shape; input_shape of the wrong length, negative, past 2**40 or not
        matching grad_output in N and C; an index outside its {plane}
        (checked before anything is written).
    MemoryError: a result larger than this machine's memory.
"""

AVG_POOL_DOC = """\
{nd}-D average pooling of {layout} input, as torch.nn.functional.{name}{torch_note}.

Args:
    input: {layout} array.
""" + _POOL_WINDOW_ARGS + """
    ceil_mode: bool, round the output size up instead of down.
    count_include_pad: bool; with it the divisor counts the window's taps
        inside the padded input (padding counts, the ceil_mode overhang past
        it never does); without it only the taps inside the input.
    divisor_override: a non-zero int dividing every window's sum instead,
        or None.

Returns:
    The (N, C, {out}) averages.
""" + _POOL_SIZE + """

{dtypes}

Raises:
""" + _POOL_ERRORS + """
        divisor_override == 0 or of magnitude 2**63 or more is a ValueError.
    MemoryError: an output larger than this machine's memory.
"""

AVG_POOL_BACKWARD_DOC = """\
Gradient of avg_pool{nd}d with respect to its input: each window spreads
grad_output / divisor over its taps inside the input (overlapping windows
accumulate).

Args:
    grad_output: (N, C, {out}) array, the gradient of the loss with respect
        to avg_pool{nd}d's output.
    input_shape: the forward input's shape {layout}, a tuple or list of
        {nd_plus_2} ints >= 0.
    kernel_size, stride, padding, ceil_mode: those of the forward call (see
        avg_pool{nd}d), as are count_include_pad and divisor_override.

Returns:
    grad_input: an array of input_shape.

{dtypes}

Raises:
""" + _POOL_ERRORS + """
        input_shape of the wrong length, negative or past 2**40, and
        grad_output not of the forward output's shape.
    MemoryError: a result larger than this machine's memory.
"""

IM2COL_DOC = """\
Sliding windows of (N, C, H, W) input as columns, exactly
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

{dtypes}

Raises:
    TypeError: input None or not float32/float64; a size argument that is
        not an int or a tuple of ints.
    ValueError: input not 4-D; a tuple of the wrong length; a
        non-positive kernel size, stride or dilation, a negative padding,
        a size past 2**40; no window fits (the padded input smaller than
        the dilated kernel).
    MemoryError: an output larger than this machine's memory.
"""

COL2IM_DOC = """\
Sum columns back into images, exactly torch.nn.functional.fold: the
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

{dtypes}

Raises:
    TypeError: cols None or not float32/float64; a size argument that is
        not an int or a tuple of ints.
    ValueError: cols not 3-D; cols.shape[1] not a multiple of kH * kW;
        cols.shape[2] not the number of windows; a bad size argument (as
        im2col); no window fits.
    MemoryError: an output larger than this machine's memory.
"""

_ADAPTIVE_BINS = """\
Output index i along an axis of input size n and output size o covers input
positions [floor(i * n / o), ceil((i + 1) * n / o)) (PyTorch's bins; they
may overlap and o may exceed n)."""

_ADAPTIVE_OUTPUT_SIZE = """\
    output_size: the output's spatial size ({out}): an int for every axis or
        a tuple of {nd} entries, each an int >= 1 or None (keep that axis's
        input size)."""

_ADAPTIVE_ERRORS = """\
    TypeError: input None or not float32/float64; output_size entries that
        are not ints (or None); a flag that is not a bool (or 0/1).
    ValueError: input not {nd_plus_2}-D or with an empty spatial axis;
        output_size not an int or a tuple of {nd}, non-positive or past
        2**40.
    MemoryError: an output larger than this machine's memory."""

ADAPTIVE_AVG_POOL_DOC = """\
Adaptive {nd}-D average pooling of {layout} input to (N, C, {out}), as
torch.nn.functional.{name}: each output element averages its bin.

Args:
    input: {layout} array, every spatial size >= 1.
""" + _ADAPTIVE_OUTPUT_SIZE + """

Returns:
    The (N, C, {out}) averages.

""" + _ADAPTIVE_BINS + """

{dtypes}

Raises:
""" + _ADAPTIVE_ERRORS + "\n"

ADAPTIVE_AVG_POOL_BACKWARD_DOC = """\
Gradient of {forward} with respect to its input: each output bin spreads
its gradient evenly over its input elements (overlapping bins accumulate).

Args:
    grad_output: (N, C, {out}) array, the gradient of the loss with respect
        to {forward}'s output (its spatial size gives the bins).
    input_shape: the forward input's shape {layout}, a tuple or list of
        {nd_plus_2} ints.

Returns:
    grad_input: an array of input_shape.

{dtypes}

Raises:
    TypeError: grad_output None or not float32/float64; input_shape
        entries that are not ints.
    ValueError: grad_output not {nd_plus_2}-D; input_shape of the wrong
        length, negative or past 2**40, not matching grad_output in N and C,
        or with an empty spatial size (or grad_output's).
    MemoryError: a result larger than this machine's memory.
"""

ADAPTIVE_MAX_POOL_DOC = """\
Adaptive {nd}-D max pooling of {layout} input to (N, C, {out}), as
torch.nn.functional.{name}: each output element is the maximum of its bin.

Args:
    input: {layout} array, every spatial size >= 1.
""" + _ADAPTIVE_OUTPUT_SIZE + """
    return_indices: bool, also return where each maximum was.

Returns:
    The (N, C, {out}) maxima, and with return_indices an int64 array of the
    same shape: the flat index {flat} of each maximum inside its own (n, c)
    {plane} of the input ({forward}_backward takes it).

""" + _ADAPTIVE_BINS + """  NaN propagates (a bin holding NaN gives NaN,
its index pointing at a NaN); on ties the first maximum in row-major order
wins, as max_pool{nd}d.

{dtypes}

Raises:
""" + _ADAPTIVE_ERRORS + "\n"

ADAPTIVE_MAX_POOL_BACKWARD_DOC = MAX_POOL_BACKWARD_DOC.replace(
    "max_pool{nd}d", "adaptive_max_pool{nd}d").replace(
    "(overlapping windows accumulate)", "(overlapping bins accumulate)")
