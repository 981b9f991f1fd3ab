"""Pixel and channel shuffles in plain NumPy, textbook style: one strided
slice assignment per sub-pixel offset or per group, straight from the
definitions (independent of fastconv's reshape/transpose form)."""
import numpy as np


def pixel_shuffle(input, upscale_factor):
    """output[..., c, h*r + i, w*r + j] = input[..., c*r*r + i*r + j, h, w]."""
    x, r = np.asarray(input), upscale_factor
    *batch, c, h, w = x.shape
    y = np.empty((*batch, c // (r * r), h * r, w * r), dtype=x.dtype)
    for i in range(r):
        for j in range(r):
            y[..., i::r, j::r] = x[..., i * r + j::r * r, :, :]
    return y


def pixel_unshuffle(input, downscale_factor):
    """The inverse of pixel_shuffle."""
    x, r = np.asarray(input), downscale_factor
    *batch, c, h, w = x.shape
    y = np.empty((*batch, c * r * r, h // r, w // r), dtype=x.dtype)
    for i in range(r):
        for j in range(r):
            y[..., i * r + j::r * r, :, :] = x[..., i::r, j::r]
    return y


def channel_shuffle(input, groups):
    """Output channel j*groups + i is input channel i*(C // groups) + j."""
    x = np.asarray(input)
    per_group = x.shape[1] // groups
    y = np.empty_like(x)
    for i in range(groups):
        y[:, i::groups] = x[:, i * per_group:(i + 1) * per_group]
    return y


def pixel_shuffle_backward(grad_output, upscale_factor):
    return pixel_unshuffle(grad_output, upscale_factor)


def pixel_unshuffle_backward(grad_output, downscale_factor):
    return pixel_shuffle(grad_output, downscale_factor)


def channel_shuffle_backward(grad_output, groups):
    g = np.asarray(grad_output)
    return channel_shuffle(g, g.shape[1] // groups)
