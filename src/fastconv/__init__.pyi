# Type stubs for the top-level fastconv namespace: everything in
# fastconv.functional, plus show_config and __version__.
from typing import IO, Any, Callable, Optional

from numpy.typing import ArrayLike

from . import functional as functional
from . import nn as nn
from . import optim as optim
from . import reference as reference
from ._gradcheck import GradcheckResult
from .functional import adaptive_avg_pool1d as adaptive_avg_pool1d
from .functional import adaptive_avg_pool1d_backward as adaptive_avg_pool1d_backward
from .functional import adaptive_avg_pool3d as adaptive_avg_pool3d
from .functional import adaptive_avg_pool3d_backward as adaptive_avg_pool3d_backward
from .functional import adaptive_max_pool1d as adaptive_max_pool1d
from .functional import adaptive_max_pool1d_backward as adaptive_max_pool1d_backward
from .functional import adaptive_max_pool2d as adaptive_max_pool2d
from .functional import adaptive_max_pool2d_backward as adaptive_max_pool2d_backward
from .functional import adaptive_max_pool3d as adaptive_max_pool3d
from .functional import adaptive_max_pool3d_backward as adaptive_max_pool3d_backward
from .functional import interpolate as interpolate
from .functional import deform_conv2d as deform_conv2d
from .functional import deform_conv2d_backward as deform_conv2d_backward
from .functional import interpolate_backward as interpolate_backward
from .functional import pixel_shuffle as pixel_shuffle
from .functional import pixel_unshuffle as pixel_unshuffle
from .functional import channel_shuffle as channel_shuffle
from .functional import pixel_shuffle_backward as pixel_shuffle_backward
from .functional import pixel_unshuffle_backward as pixel_unshuffle_backward
from .functional import channel_shuffle_backward as channel_shuffle_backward
from .nn import summary as summary
from .functional import adaptive_avg_pool2d as adaptive_avg_pool2d
from .functional import adaptive_avg_pool2d_backward as adaptive_avg_pool2d_backward
from .functional import avg_pool1d as avg_pool1d
from .functional import avg_pool1d_backward as avg_pool1d_backward
from .functional import avg_pool2d as avg_pool2d
from .functional import avg_pool2d_backward as avg_pool2d_backward
from .functional import avg_pool3d as avg_pool3d
from .functional import avg_pool3d_backward as avg_pool3d_backward
from .functional import max_pool1d as max_pool1d
from .functional import max_pool1d_backward as max_pool1d_backward
from .functional import max_pool2d as max_pool2d
from .functional import max_pool2d_backward as max_pool2d_backward
from .functional import max_pool3d as max_pool3d
from .functional import max_pool3d_backward as max_pool3d_backward
from .functional import col2im as col2im
from .functional import conv1d as conv1d
from .functional import conv1d_backward as conv1d_backward
from .functional import conv2d as conv2d
from .functional import conv2d_backward as conv2d_backward
from .functional import conv3d as conv3d
from .functional import conv3d_backward as conv3d_backward
from .functional import conv_transpose1d as conv_transpose1d
from .functional import conv_transpose1d_backward as conv_transpose1d_backward
from .functional import conv_transpose2d as conv_transpose2d
from .functional import conv_transpose2d_backward as conv_transpose2d_backward
from .functional import conv_transpose3d as conv_transpose3d
from .functional import conv_transpose3d_backward as conv_transpose3d_backward
from .functional import get_num_threads as get_num_threads
from .functional import im2col as im2col
from .functional import set_num_threads as set_num_threads

__version__: str
__all__: list[str]

def show_config(file: Optional[IO[str]] = None) -> None: ...
def gradcheck(fn: Callable[..., Any], *arrays: ArrayLike, eps: float = 1e-6,
              atol: float = 1e-5, rtol: float = 1e-3, n_samples: int = 30, seed: int = 0,
              raise_exception: bool = True) -> GradcheckResult: ...
