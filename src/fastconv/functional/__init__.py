"""The public ops: argument checking once, shapes, a plan, kernels.

`__all__` below is THE list of public ops: fastconv re-exports it,
fastconv.reference derives its own from it, and the tests check that
tests/optable.py covers it and that every op is annotated, documented and
has a reference twin of the same signature.
"""
from .._threads import get_num_threads, set_num_threads
from ._activation import (elu, elu_backward, gelu, gelu_backward, leaky_relu,
                          leaky_relu_backward, log_softmax, log_softmax_backward, prelu,
                          prelu_backward, relu, relu_backward, sigmoid, sigmoid_backward, silu,
                          silu_backward, softmax, softmax_backward, tanh, tanh_backward)
from ._batch_norm import (batch_norm, batch_norm_backward, batch_norm_relu,
                          batch_norm_relu_backward)
from ._conv import (conv1d, conv1d_backward, conv2d, conv2d_backward, conv3d,
                    conv3d_backward)
from ._conv_transpose import (conv_transpose1d, conv_transpose1d_backward, conv_transpose2d,
                              conv_transpose2d_backward, conv_transpose3d,
                              conv_transpose3d_backward)
from ._deform_conv import deform_conv2d, deform_conv2d_backward
from ._interpolate import interpolate, interpolate_backward
from ._linear import linear, linear_backward
from ._loss import cross_entropy, cross_entropy_backward
from ._pool import (adaptive_avg_pool1d, adaptive_avg_pool1d_backward, adaptive_avg_pool2d,
                    adaptive_avg_pool2d_backward, adaptive_avg_pool3d,
                    adaptive_avg_pool3d_backward, adaptive_max_pool1d,
                    adaptive_max_pool1d_backward, adaptive_max_pool2d,
                    adaptive_max_pool2d_backward, adaptive_max_pool3d,
                    adaptive_max_pool3d_backward, avg_pool1d, avg_pool1d_backward, avg_pool2d,
                    avg_pool2d_backward, avg_pool3d, avg_pool3d_backward, max_pool1d,
                    max_pool1d_backward, max_pool2d, max_pool2d_backward, max_pool3d,
                    max_pool3d_backward)
from ._shuffle import (channel_shuffle, channel_shuffle_backward, pixel_shuffle,
                       pixel_shuffle_backward, pixel_unshuffle, pixel_unshuffle_backward)
from ._unfold import col2im, im2col

# PyTorch's names for im2col/col2im: the same functions, with
# torch.nn.functional.unfold/fold's argument order.
unfold, fold = im2col, col2im

__all__ = [
    "conv1d", "conv1d_backward", "conv2d", "conv2d_backward", "conv3d", "conv3d_backward",
    "conv_transpose1d", "conv_transpose1d_backward", "conv_transpose2d",
    "conv_transpose2d_backward", "conv_transpose3d", "conv_transpose3d_backward",
    "max_pool1d", "max_pool1d_backward", "max_pool2d", "max_pool2d_backward",
    "max_pool3d", "max_pool3d_backward", "avg_pool1d", "avg_pool1d_backward",
    "avg_pool2d", "avg_pool2d_backward", "avg_pool3d", "avg_pool3d_backward",
    "adaptive_avg_pool1d", "adaptive_avg_pool1d_backward",
    "adaptive_avg_pool2d", "adaptive_avg_pool2d_backward",
    "adaptive_avg_pool3d", "adaptive_avg_pool3d_backward",
    "adaptive_max_pool1d", "adaptive_max_pool1d_backward",
    "adaptive_max_pool2d", "adaptive_max_pool2d_backward",
    "adaptive_max_pool3d", "adaptive_max_pool3d_backward",
    "interpolate", "interpolate_backward", "deform_conv2d", "deform_conv2d_backward",
    "pixel_shuffle", "pixel_shuffle_backward", "pixel_unshuffle", "pixel_unshuffle_backward",
    "channel_shuffle", "channel_shuffle_backward", "batch_norm", "batch_norm_backward",
    "batch_norm_relu", "batch_norm_relu_backward",
    "im2col", "col2im", "unfold", "fold",
    "relu", "relu_backward", "leaky_relu", "leaky_relu_backward", "elu", "elu_backward",
    "gelu", "gelu_backward", "silu", "silu_backward", "sigmoid", "sigmoid_backward",
    "tanh", "tanh_backward", "prelu", "prelu_backward", "softmax", "softmax_backward",
    "log_softmax", "log_softmax_backward", "cross_entropy", "cross_entropy_backward",
    "linear", "linear_backward",
    "set_num_threads", "get_num_threads",
]
