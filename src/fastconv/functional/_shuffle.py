"""Pixel shuffle, pixel unshuffle and channel shuffle: pure permutations of
the elements, as torch.nn.functional's ops of the same names.

Each is one reshape + transpose view of the input copied once into a fresh
C-contiguous array by NumPy (np.copyto walks the strided view with its
optimised copy loops). A C kernel would do the same gather; without a
measurement showing it faster, the NumPy form keeps one less kernel to
maintain. Each op's gradient is the inverse permutation, exposed as
`<op>_backward` (pixel_shuffle's is pixel_unshuffle and vice versa;
channel_shuffle's is channel_shuffle with C // groups groups).
"""
import numpy as np

from .. import _args


def _input(op, input, name, min_ndim):
    x = _args.as_float_array(input, name, op)
    if x.ndim < min_ndim:
        raise ValueError(f"{op}: {name} must have at least {min_ndim} dims "
                         f"({'(*, C, H, W)' if min_ndim == 3 else '(N, C, *)'}), "
                         f"got shape {x.shape}")
    return x


def _permuted(x, split_shape, axes, out_shape):
    """x viewed as split_shape, axes permuted, copied into a fresh
    C-contiguous array of out_shape (native byte order)."""
    out = np.empty(out_shape, dtype=x.dtype.newbyteorder("="))
    if out.size == 0:  # split_shape may then hold sizes no array can have
        return out
    np.copyto(out.reshape([split_shape[a] for a in axes]),
              x.reshape(split_shape).transpose(axes))
    return out


def _pixel_shuffle(op, input, factor, name="input", factor_name="upscale_factor"):
    x = _input(op, input, name, 3)
    r = _args.positive_int(factor, factor_name, op)
    *batch, c, h, w = x.shape
    if c % (r * r):
        raise ValueError(f"{op}: the channel count {c} of {name} (shape {x.shape}) must be "
                         f"divisible by {factor_name}**2 = {r * r}")
    nb = len(batch)
    # (*, C, r, r, H, W) -> (*, C, H, r, W, r)
    axes = list(range(nb)) + [nb, nb + 3, nb + 1, nb + 4, nb + 2]
    return _permuted(x, (*batch, c // (r * r), r, r, h, w), axes,
                     (*batch, c // (r * r), h * r, w * r))


def _pixel_unshuffle(op, input, factor, name="input", factor_name="downscale_factor"):
    x = _input(op, input, name, 3)
    r = _args.positive_int(factor, factor_name, op)
    *batch, c, h, w = x.shape
    if h % r or w % r:
        raise ValueError(f"{op}: the height and width of {name} (shape {x.shape}) must be "
                         f"divisible by {factor_name}={r}")
    nb = len(batch)
    # (*, C, H/r, r, W/r, r) -> (*, C, r, r, H/r, W/r)
    axes = list(range(nb)) + [nb, nb + 2, nb + 4, nb + 1, nb + 3]
    return _permuted(x, (*batch, c, h // r, r, w // r, r), axes,
                     (*batch, c * r * r, h // r, w // r))


def _channel_shuffle(op, input, groups, name="input"):
    x = _input(op, input, name, 3)
    g = _args.positive_int(groups, "groups", op)
    n, c, *rest = x.shape
    if c % g:
        raise ValueError(f"{op}: the channel count {c} of {name} (shape {x.shape}) must be "
                         f"divisible by groups={g}")
    # (N, g, C/g, *) -> (N, C/g, g, *)
    axes = [0, 2, 1] + list(range(3, 3 + len(rest)))
    return _permuted(x, (n, g, c // g, *rest), axes, x.shape)


def pixel_shuffle(input, upscale_factor):
    """(*, C*r*r, H, W) -> (*, C, H*r, W*r), as torch.nn.functional.pixel_shuffle:
    output[..., c, h*r + i, w*r + j] = input[..., c*r*r + i*r + j, h, w]."""
    return _pixel_shuffle("pixel_shuffle", input, upscale_factor)


def pixel_unshuffle(input, downscale_factor):
    """(*, C, H*r, W*r) -> (*, C*r*r, H, W), the inverse of pixel_shuffle, as
    torch.nn.functional.pixel_unshuffle."""
    return _pixel_unshuffle("pixel_unshuffle", input, downscale_factor)


def channel_shuffle(input, groups):
    """(N, C, *) with C = groups * k: output channel j*groups + i is input
    channel i*k + j (ShuffleNet), as torch.nn.functional.channel_shuffle."""
    return _channel_shuffle("channel_shuffle", input, groups)


def pixel_shuffle_backward(grad_output, upscale_factor):
    """Gradient of pixel_shuffle: the inverse permutation (pixel_unshuffle)."""
    return _pixel_unshuffle("pixel_shuffle_backward", grad_output, upscale_factor,
                            "grad_output", "upscale_factor")


def pixel_unshuffle_backward(grad_output, downscale_factor):
    """Gradient of pixel_unshuffle: the inverse permutation (pixel_shuffle)."""
    return _pixel_shuffle("pixel_unshuffle_backward", grad_output, downscale_factor,
                          "grad_output", "downscale_factor")


def channel_shuffle_backward(grad_output, groups):
    """Gradient of channel_shuffle(input, groups): the inverse permutation,
    channel_shuffle with C // groups groups."""
    op = "channel_shuffle_backward"
    g = _input(op, grad_output, "grad_output", 3)
    groups = _args.positive_int(groups, "groups", op)
    if g.shape[1] % groups:
        raise ValueError(f"{op}: the channel count {g.shape[1]} of grad_output (shape "
                         f"{g.shape}) must be divisible by groups={groups}")
    return _channel_shuffle(op, g, g.shape[1] // groups if g.shape[1] else 1, "grad_output")
