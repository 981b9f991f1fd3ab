"""fastconv.nn: a layer library for NumPy training code, laid out as
torch.nn.modules is. Each layer composes fastconv's ops (or plain NumPy).

Every layer has ``forward(x) -> y`` and ``backward(grad_y) -> grad_x``,
``params`` / ``grads`` (its own parameters and their gradients, which
backward ACCUMULATES into until ``zero_grad()``), ``parameters()`` yielding
(param, grad) pairs over the module tree, ``named_parameters()``,
``state_dict()`` / ``load_state_dict()``, ``train()`` / ``eval()`` and
``set_backend()``. Parameter names, shapes and default initialisation are
PyTorch's. See :mod:`fastconv.nn.module` for the rules of the pending-forward
caches (a layer may be used several times before backward; run inference
under ``no_grad()``). ``fuse(model)`` returns an inference-only copy with
each convolution + BatchNorm folded into one convolution and ReLU applied in
place (:mod:`fastconv.nn.fusion`).
"""
from . import init, utils
from ._summary import ModelSummary, summary
from .activation import (ELU, GELU, PReLU, ReLU, RReLU, LeakyReLU, LogSoftmax, Sigmoid,
                         SiLU, Softmax, Tanh)
from .container import Add, Concat, ModuleDict, ModuleList, Residual, Sequential
from .conv import Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from .deform_conv import DeformConv2d
from .dropout import Dropout
from .flatten import Flatten
from .fusion import FusedConv, fuse
from .linear import Identity, Linear
from .loss import (BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, MSELoss, NLLLoss,
                   SmoothL1Loss)
from .module import Module, enable_grad, get_backend, is_grad_enabled, no_grad, use_backend
from .normalization import BatchNorm1d, BatchNorm2d, BatchNorm3d
from .pixelshuffle import ChannelShuffle, PixelShuffle, PixelUnshuffle
from .pooling import (AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveAvgPool3d,
                      AdaptiveMaxPool1d, AdaptiveMaxPool2d, AdaptiveMaxPool3d, AvgPool1d,
                      AvgPool2d, AvgPool3d, MaxPool1d, MaxPool2d, MaxPool3d)
from .upsampling import Upsample

__all__ = [
    "Module", "no_grad", "enable_grad", "is_grad_enabled", "use_backend", "get_backend",
    "Sequential", "ModuleList", "ModuleDict", "Residual", "Concat", "Add", "Identity",
    "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d",
    "MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d",
    "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d", "AdaptiveMaxPool1d",
    "AdaptiveMaxPool2d", "AdaptiveMaxPool3d", "DeformConv2d", "Upsample", "PixelShuffle",
    "PixelUnshuffle", "ChannelShuffle", "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "Linear", "Flatten",
    "Dropout", "ReLU", "LeakyReLU", "PReLU", "RReLU", "ELU", "GELU", "SiLU", "Sigmoid",
    "Tanh", "Softmax", "LogSoftmax", "CrossEntropyLoss", "NLLLoss", "BCELoss",
    "BCEWithLogitsLoss", "MSELoss", "L1Loss", "SmoothL1Loss", "init", "utils", "summary",
    "ModelSummary", "fuse", "FusedConv",
]
