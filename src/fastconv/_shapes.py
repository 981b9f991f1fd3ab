"""Output-size arithmetic for every op: the one place (like ATen's Pool.h).

All divisions are floor divisions on ints (`//`): true division here is the
bug that broke CS231n's Cython code under Python 3.
"""


def conv_output_size(size, kernel, stride, pad_total, dilation):
    """floor((in + pads - dilation*(k-1) - 1) / stride) + 1 (may be <= 0)."""
    return (size + pad_total - dilation * (kernel - 1) - 1) // stride + 1


def transposed_output_size(size, kernel, stride, padding, output_padding, dilation):
    """(in - 1)*stride - 2*padding + dilation*(k - 1) + output_padding + 1."""
    return ((size - 1) * stride - 2 * padding + dilation * (kernel - 1)
            + output_padding + 1)


def same_padding(kernel, dilation):
    """(before, after) padding keeping the size at stride 1; an odd total puts
    the extra row/column after (bottom/right), as PyTorch does."""
    total = dilation * (kernel - 1)
    return total // 2, total - total // 2


def pool_output_size(size, kernel, stride, padding, dilation, ceil_mode):
    """Pooling output size. With ceil_mode a last window that would start in
    the right padding is dropped: it would pool nothing but padding."""
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    if ceil_mode:
        out = -(-span // stride) + 1
        if (out - 1) * stride >= size + padding:
            out -= 1
    else:
        out = span // stride + 1
    return out

