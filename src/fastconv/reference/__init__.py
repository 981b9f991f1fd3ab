"""Plain-NumPy twins of every fastconv op: slow, obviously correct, and the
oracle of the tests and the baseline of the benchmarks. Shares no compiled code."""
from ._conv import (col2im, conv1d, conv1d_backward, conv2d, conv2d_backward, conv3d,
                    conv3d_backward, im2col)

__all__ = ["conv1d", "conv1d_backward", "conv2d", "conv2d_backward", "conv3d",
           "conv3d_backward", "im2col", "col2im"]
