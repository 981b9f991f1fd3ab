"""Plain-NumPy twins of every fastconv op: slow, obviously correct, and the
oracle of the tests and the baseline of the benchmarks. Shares no compiled code."""
from .. import functional as _functional
from ._batch_norm import (batch_norm, batch_norm_backward, batch_norm_relu,
                          batch_norm_relu_backward)
from ._activation import (elu, elu_backward, gelu, gelu_backward, leaky_relu,
                          leaky_relu_backward, log_softmax, log_softmax_backward, prelu,
                          prelu_backward, relu, relu_backward, sigmoid, sigmoid_backward, silu,
                          silu_backward, softmax, softmax_backward, tanh, tanh_backward)
from ._conv import (col2im, conv1d, conv1d_backward, conv2d, conv2d_backward, conv3d,
                    conv3d_backward, im2col)
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

unfold, fold = im2col, col2im   # PyTorch's names, as in fastconv.functional

# Every op of fastconv.functional (its thread controls aside: nothing here is
# threaded) has its twin here, with the same signature (tests/test_packaging.py).
__all__ = [name for name in _functional.__all__
           if name not in ("set_num_threads", "get_num_threads")]
