"""Type aliases of the public signatures (the package ships py.typed, and the
ops carry their annotations inline)."""
from typing import Any, List, Literal, Optional, Tuple, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["ArrayLike", "Array", "Indices", "Grads", "Size1", "Size2", "Size3", "Pair", "ConvPadding1",
           "ConvPadding2", "ConvPadding3", "OptSize1", "OptSize2", "OptSize3", "Shape",
           "OutSize1", "OutSize2", "OutSize3", "AnySize", "Scale", "InterpMode", "DeformGrads"]

# A float32 or float64 array (results always have the input's dtype).
Array = NDArray[np.floating[Any]]
# Max-pooling indices: int64, the output's shape.
Indices = NDArray[np.int64]
# (grad_input, grad_weight, grad_bias) of a convolution.
Grads = Tuple[Array, Array, Array]

# kernel_size, stride, padding, dilation...: an int or one int per spatial axis
# (a one-element tuple broadcasts, as PyTorch's conv and pooling ops take it).
Size1 = Union[int, Tuple[int]]
Size2 = Union[int, Tuple[int], Tuple[int, int]]
Size3 = Union[int, Tuple[int], Tuple[int, int, int]]
# im2col/col2im's sizes: PyTorch's unfold/fold take an int or a full pair only.
Pair = Union[int, Tuple[int, int]]
# A convolution's padding may also be "valid" (none) or "same" (stride 1).
ConvPadding1 = Union[Size1, Literal["valid", "same"]]
ConvPadding2 = Union[Size2, Literal["valid", "same"]]
ConvPadding3 = Union[Size3, Literal["valid", "same"]]
# Pooling's stride: None (or an empty tuple) means kernel_size.
OptSize1 = Optional[Union[Size1, Tuple[()]]]
OptSize2 = Optional[Union[Size2, Tuple[()]]]
OptSize3 = Optional[Union[Size3, Tuple[()]]]
# An input_shape argument: the shape of the forward call's input.
Shape = Union[Tuple[int, ...], List[int]]
# Adaptive pooling's output_size: an int, or one entry per spatial axis where
# None keeps that axis's input size.
OutSize1 = Union[int, Tuple[Optional[int]]]
OutSize2 = Union[int, Tuple[Optional[int], Optional[int]]]
OutSize3 = Union[int, Tuple[Optional[int], Optional[int], Optional[int]]]
# interpolate's size and scale_factor: one value for every spatial axis, or
# one per axis.
AnySize = Union[int, Tuple[int, ...]]
Scale = Union[float, Tuple[float, ...]]
InterpMode = Literal["nearest", "nearest-exact", "linear", "bilinear", "trilinear"]
# (grad_input, grad_offset, grad_weight, grad_bias, grad_mask) of
# deform_conv2d; grad_mask is None without a mask.
DeformGrads = Tuple[Array, Array, Array, Array, Optional[Array]]
