# Type stubs for fastconv.functional (kept in sync with the runtime signatures
# by tests/test_packaging.py::test_stubs_match_runtime_signatures).
from typing import Any, Literal, Optional, Tuple, Union, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

_Array = NDArray[np.floating[Any]]
# Sizes of the conv and pooling ops: a one-element tuple broadcasts (PyTorch).
_Size1 = Union[int, Tuple[int]]
_Size2 = Union[int, Tuple[int], Tuple[int, int]]
_Size3 = Union[int, Tuple[int], Tuple[int, int, int]]
# Sizes of im2col/col2im: PyTorch's _pair, no broadcasting.
_Pair = Union[int, Tuple[int, int]]
_Grads = Tuple[_Array, _Array, _Array]
_Indices = NDArray[np.int64]

def conv1d(input: ArrayLike, weight: ArrayLike, bias: Optional[ArrayLike] = None,
           stride: _Size1 = 1, padding: Union[_Size1, Literal["valid", "same"]] = 0,
           dilation: _Size1 = 1, groups: int = 1) -> _Array: ...
def conv2d(input: ArrayLike, weight: ArrayLike, bias: Optional[ArrayLike] = None,
           stride: _Size2 = 1, padding: Union[_Size2, Literal["valid", "same"]] = 0,
           dilation: _Size2 = 1, groups: int = 1) -> _Array: ...
def conv3d(input: ArrayLike, weight: ArrayLike, bias: Optional[ArrayLike] = None,
           stride: _Size3 = 1, padding: Union[_Size3, Literal["valid", "same"]] = 0,
           dilation: _Size3 = 1, groups: int = 1) -> _Array: ...
def conv1d_backward(grad_output: ArrayLike, input: ArrayLike, weight: ArrayLike,
                    stride: _Size1 = 1, padding: Union[_Size1, Literal["valid", "same"]] = 0,
                    dilation: _Size1 = 1, groups: int = 1) -> _Grads: ...
def conv2d_backward(grad_output: ArrayLike, input: ArrayLike, weight: ArrayLike,
                    stride: _Size2 = 1, padding: Union[_Size2, Literal["valid", "same"]] = 0,
                    dilation: _Size2 = 1, groups: int = 1) -> _Grads: ...
def conv3d_backward(grad_output: ArrayLike, input: ArrayLike, weight: ArrayLike,
                    stride: _Size3 = 1, padding: Union[_Size3, Literal["valid", "same"]] = 0,
                    dilation: _Size3 = 1, groups: int = 1) -> _Grads: ...

def conv_transpose1d(input: ArrayLike, weight: ArrayLike, bias: Optional[ArrayLike] = None,
                     stride: _Size1 = 1, padding: _Size1 = 0, output_padding: _Size1 = 0,
                     groups: int = 1, dilation: _Size1 = 1) -> _Array: ...
def conv_transpose2d(input: ArrayLike, weight: ArrayLike, bias: Optional[ArrayLike] = None,
                     stride: _Size2 = 1, padding: _Size2 = 0, output_padding: _Size2 = 0,
                     groups: int = 1, dilation: _Size2 = 1) -> _Array: ...
def conv_transpose3d(input: ArrayLike, weight: ArrayLike, bias: Optional[ArrayLike] = None,
                     stride: _Size3 = 1, padding: _Size3 = 0, output_padding: _Size3 = 0,
                     groups: int = 1, dilation: _Size3 = 1) -> _Array: ...
def conv_transpose1d_backward(grad_output: ArrayLike, input: ArrayLike, weight: ArrayLike,
                              stride: _Size1 = 1, padding: _Size1 = 0,
                              output_padding: _Size1 = 0, groups: int = 1,
                              dilation: _Size1 = 1) -> _Grads: ...
def conv_transpose2d_backward(grad_output: ArrayLike, input: ArrayLike, weight: ArrayLike,
                              stride: _Size2 = 1, padding: _Size2 = 0,
                              output_padding: _Size2 = 0, groups: int = 1,
                              dilation: _Size2 = 1) -> _Grads: ...
def conv_transpose3d_backward(grad_output: ArrayLike, input: ArrayLike, weight: ArrayLike,
                              stride: _Size3 = 1, padding: _Size3 = 0,
                              output_padding: _Size3 = 0, groups: int = 1,
                              dilation: _Size3 = 1) -> _Grads: ...

_Shape = Union[Tuple[int, ...], list[int]]
# Pooling's stride: None or () means kernel_size.
_OptSize1 = Optional[Union[_Size1, Tuple[()]]]
_OptSize2 = Optional[Union[_Size2, Tuple[()]]]
_OptSize3 = Optional[Union[_Size3, Tuple[()]]]

@overload
def max_pool1d(input: ArrayLike, kernel_size: _Size1, stride: _OptSize1 = None,
               padding: _Size1 = 0, dilation: _Size1 = 1, ceil_mode: bool = False,
               return_indices: Literal[False] = False) -> _Array: ...
@overload
def max_pool1d(input: ArrayLike, kernel_size: _Size1, stride: _OptSize1 = None,
               padding: _Size1 = 0, dilation: _Size1 = 1, ceil_mode: bool = False, *,
               return_indices: Literal[True]) -> Tuple[_Array, _Indices]: ...
@overload
def max_pool2d(input: ArrayLike, kernel_size: _Size2, stride: _OptSize2 = None,
               padding: _Size2 = 0, dilation: _Size2 = 1, ceil_mode: bool = False,
               return_indices: Literal[False] = False) -> _Array: ...
@overload
def max_pool2d(input: ArrayLike, kernel_size: _Size2, stride: _OptSize2 = None,
               padding: _Size2 = 0, dilation: _Size2 = 1, ceil_mode: bool = False, *,
               return_indices: Literal[True]) -> Tuple[_Array, _Indices]: ...
@overload
def max_pool3d(input: ArrayLike, kernel_size: _Size3, stride: _OptSize3 = None,
               padding: _Size3 = 0, dilation: _Size3 = 1, ceil_mode: bool = False,
               return_indices: Literal[False] = False) -> _Array: ...
@overload
def max_pool3d(input: ArrayLike, kernel_size: _Size3, stride: _OptSize3 = None,
               padding: _Size3 = 0, dilation: _Size3 = 1, ceil_mode: bool = False, *,
               return_indices: Literal[True]) -> Tuple[_Array, _Indices]: ...
def max_pool1d_backward(grad_output: ArrayLike, indices: ArrayLike,
                        input_shape: _Shape) -> _Array: ...
def max_pool2d_backward(grad_output: ArrayLike, indices: ArrayLike,
                        input_shape: _Shape) -> _Array: ...
def max_pool3d_backward(grad_output: ArrayLike, indices: ArrayLike,
                        input_shape: _Shape) -> _Array: ...

def avg_pool1d(input: ArrayLike, kernel_size: _Size1, stride: _OptSize1 = None,
               padding: _Size1 = 0, ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: Optional[int] = None) -> _Array: ...
def avg_pool2d(input: ArrayLike, kernel_size: _Size2, stride: _OptSize2 = None,
               padding: _Size2 = 0, ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: Optional[int] = None) -> _Array: ...
def avg_pool3d(input: ArrayLike, kernel_size: _Size3, stride: _OptSize3 = None,
               padding: _Size3 = 0, ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: Optional[int] = None) -> _Array: ...
def avg_pool1d_backward(grad_output: ArrayLike, input_shape: _Shape, kernel_size: _Size1,
                        stride: _OptSize1 = None, padding: _Size1 = 0, ceil_mode: bool = False,
                        count_include_pad: bool = True,
                        divisor_override: Optional[int] = None) -> _Array: ...
def avg_pool2d_backward(grad_output: ArrayLike, input_shape: _Shape, kernel_size: _Size2,
                        stride: _OptSize2 = None, padding: _Size2 = 0, ceil_mode: bool = False,
                        count_include_pad: bool = True,
                        divisor_override: Optional[int] = None) -> _Array: ...
def avg_pool3d_backward(grad_output: ArrayLike, input_shape: _Shape, kernel_size: _Size3,
                        stride: _OptSize3 = None, padding: _Size3 = 0, ceil_mode: bool = False,
                        count_include_pad: bool = True,
                        divisor_override: Optional[int] = None) -> _Array: ...

_OptOut1 = Union[int, Tuple[Optional[int]]]
_OptOut2 = Union[int, Tuple[Optional[int], Optional[int]]]
_OptOut3 = Union[int, Tuple[Optional[int], Optional[int], Optional[int]]]

def adaptive_avg_pool1d(input: ArrayLike, output_size: _OptOut1) -> _Array: ...
def adaptive_avg_pool2d(input: ArrayLike, output_size: _OptOut2) -> _Array: ...
def adaptive_avg_pool3d(input: ArrayLike, output_size: _OptOut3) -> _Array: ...
def adaptive_avg_pool1d_backward(grad_output: ArrayLike, input_shape: _Shape) -> _Array: ...
def adaptive_avg_pool2d_backward(grad_output: ArrayLike, input_shape: _Shape) -> _Array: ...
def adaptive_avg_pool3d_backward(grad_output: ArrayLike, input_shape: _Shape) -> _Array: ...
@overload
def adaptive_max_pool1d(input: ArrayLike, output_size: _OptOut1,
                        return_indices: Literal[False] = False) -> _Array: ...
@overload
def adaptive_max_pool1d(input: ArrayLike, output_size: _OptOut1, *,
                        return_indices: Literal[True]) -> Tuple[_Array, _Indices]: ...
@overload
def adaptive_max_pool2d(input: ArrayLike, output_size: _OptOut2,
                        return_indices: Literal[False] = False) -> _Array: ...
@overload
def adaptive_max_pool2d(input: ArrayLike, output_size: _OptOut2, *,
                        return_indices: Literal[True]) -> Tuple[_Array, _Indices]: ...
@overload
def adaptive_max_pool3d(input: ArrayLike, output_size: _OptOut3,
                        return_indices: Literal[False] = False) -> _Array: ...
@overload
def adaptive_max_pool3d(input: ArrayLike, output_size: _OptOut3, *,
                        return_indices: Literal[True]) -> Tuple[_Array, _Indices]: ...
def adaptive_max_pool1d_backward(grad_output: ArrayLike, indices: ArrayLike,
                                 input_shape: _Shape) -> _Array: ...
def adaptive_max_pool2d_backward(grad_output: ArrayLike, indices: ArrayLike,
                                 input_shape: _Shape) -> _Array: ...
def adaptive_max_pool3d_backward(grad_output: ArrayLike, indices: ArrayLike,
                                 input_shape: _Shape) -> _Array: ...

_InterpMode = Literal["nearest", "nearest-exact", "linear", "bilinear", "trilinear"]
_AnySize = Union[int, Tuple[int, ...]]
_Scale = Union[float, Tuple[float, ...]]

def interpolate(input: ArrayLike, size: Optional[_AnySize] = None,
                scale_factor: Optional[_Scale] = None, mode: _InterpMode = "nearest",
                align_corners: Optional[bool] = None) -> _Array: ...
def interpolate_backward(grad_output: ArrayLike, input_shape: _Shape,
                         size: Optional[_AnySize] = None, scale_factor: Optional[_Scale] = None,
                         mode: _InterpMode = "nearest",
                         align_corners: Optional[bool] = None) -> _Array: ...

def deform_conv2d(input: ArrayLike, offset: ArrayLike, weight: ArrayLike,
                  bias: Optional[ArrayLike] = None, stride: _Size2 = 1, padding: _Size2 = 0,
                  dilation: _Size2 = 1, mask: Optional[ArrayLike] = None) -> _Array: ...
def deform_conv2d_backward(grad_output: ArrayLike, input: ArrayLike, offset: ArrayLike,
                           weight: ArrayLike, stride: _Size2 = 1, padding: _Size2 = 0,
                           dilation: _Size2 = 1, mask: Optional[ArrayLike] = None
                           ) -> Tuple[_Array, _Array, _Array, _Array, Optional[_Array]]: ...

def pixel_shuffle(input: ArrayLike, upscale_factor: int) -> _Array: ...
def pixel_unshuffle(input: ArrayLike, downscale_factor: int) -> _Array: ...
def channel_shuffle(input: ArrayLike, groups: int) -> _Array: ...
def pixel_shuffle_backward(grad_output: ArrayLike, upscale_factor: int) -> _Array: ...
def pixel_unshuffle_backward(grad_output: ArrayLike, downscale_factor: int) -> _Array: ...
def channel_shuffle_backward(grad_output: ArrayLike, groups: int) -> _Array: ...

def im2col(input: ArrayLike, kernel_size: _Pair, stride: _Pair = 1, padding: _Pair = 0,
           dilation: _Pair = 1) -> _Array: ...
def col2im(cols: ArrayLike, output_size: _Pair, kernel_size: _Pair, stride: _Pair = 1,
           padding: _Pair = 0, dilation: _Pair = 1) -> _Array: ...

def set_num_threads(n: int) -> None: ...
def get_num_threads() -> int: ...

__all__: list[str]
