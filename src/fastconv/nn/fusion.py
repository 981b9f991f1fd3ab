"""Eval-time fusion: ``fuse(model)`` returns an inference-only copy of a
network with fewer passes over the activations.

In every Sequential of the copy (nested ones too, e.g. a Residual's body and
shortcut):

* a Conv1d/2d/3d followed by the BatchNorm of the same rank (tracking running
  statistics) becomes one convolution: in eval mode BatchNorm is the affine
  map ``y = (x - mean) * gamma / sqrt(var + eps) + beta`` per channel, so
  ``scale = gamma / sqrt(var + eps)`` multiplies each output channel's
  weights and ``(bias - mean) * scale + beta`` is the new bias (computed in
  float64, stored in the convolution's dtype): one pass and one array fewer;
* a convolution (folded or not) followed by ReLU applies the ReLU in place on
  the convolution's fresh output: no second array, no derivative mask.

The result (a :class:`FusedConv` per fused group) computes what the original
computes in eval mode, up to rounding.  It is for inference only: the folded
BatchNorm's batch statistics and the ReLU's gradient are gone, so a
FusedConv refuses to run in train mode and has no backward; train the
original and fuse it again.  The original model is left unchanged
(``fuse`` works on a deep copy), and a convolution or BatchNorm registered in
more than one place is left unfused (folding would change the other use).
The copy's state_dict keys differ from the original's (the BatchNorm layers
are gone), as with torch.fx's ``fuse``.  Run the fused model under
``no_grad()`` as any inference: the unfused layers around it still cache for a
backward otherwise.
"""
import collections
import copy

import numpy as np

from .activation import ReLU
from .container import Sequential
from .conv import Conv1d, Conv2d, Conv3d
from .module import Module, no_grad
from .normalization import BatchNorm1d, BatchNorm2d, BatchNorm3d

__all__ = ["fuse", "FusedConv"]

# The BatchNorm that follows each convolution of the same rank.
_NORM_OF_CONV = {Conv1d: BatchNorm1d, Conv2d: BatchNorm2d, Conv3d: BatchNorm3d}


class FusedConv(Module):
    """A convolution with a folded BatchNorm and/or an in-place ReLU (see
    :func:`fuse`); inference only."""

    def __init__(self, conv, relu):
        super().__init__()
        self.conv = conv
        self.relu = bool(relu)
        self.training = False

    def forward(self, x):
        if self.training:
            raise RuntimeError("FusedConv: a fused model is for inference only (its "
                               "BatchNorm is folded into the convolution); call eval(), or "
                               "train the original model and fuse it again")
        with no_grad():
            y = self.conv(x)
        if self.relu:   # y is the op's fresh output: nobody else holds it
            np.maximum(y, y.dtype.type(0), out=y)
        return y

    def backward(self, grad_output):
        raise RuntimeError("FusedConv.backward: a fused model is for inference only; train "
                           "the original model and fuse it again")

    def extra_repr(self):
        return f"relu={self.relu}"


def fuse(model):
    """An inference-only copy of `model` (a fastconv.nn Module) in eval mode,
    with each convolution + BatchNorm folded into one convolution and each
    convolution + ReLU fused (see the module docstring).  `model` is left
    unchanged.  Raises TypeError when `model` is not a Module."""
    if not isinstance(model, Module):
        raise TypeError(f"fuse: model must be a fastconv.nn Module, got {model!r}")
    fused = copy.deepcopy(model)
    fused.clear_pending()
    fused.eval()
    uses = collections.Counter(id(child) for m in fused.modules()
                               for child in m._modules.values() if child is not None)
    for m in list(fused.modules()):
        if isinstance(m, Sequential):
            _fuse_sequence(m, lambda layer: uses[id(layer)] == 1)
    return fused


def _foldable(conv, norm):
    return (type(norm) is _NORM_OF_CONV.get(type(conv)) and norm.track_running_stats
            and norm.num_features == conv.out_channels)


def _fuse_sequence(seq, used_once):
    """Replace, in place, each conv [+ BatchNorm] [+ ReLU] run of `seq`'s
    layers by one FusedConv under the convolution's name."""
    items = list(seq._modules.items())
    kept, i = [], 0
    while i < len(items):
        name, layer = items[i]
        following = [m for _, m in items[i + 1:i + 3]]
        if type(layer) in _NORM_OF_CONV and used_once(layer):
            folded = bool(following) and _foldable(layer, following[0]) \
                and used_once(following[0])
            if folded:
                _fold_batch_norm(layer, following.pop(0))
            relu = bool(following) and type(following[0]) is ReLU
            if folded or relu:
                layer = FusedConv(layer, relu)
                i += folded + relu
        kept.append((name, layer))
        i += 1
    if len(kept) == len(items):
        return
    for name, _ in items:
        seq.__dict__.pop(name, None)
    seq._modules.clear()
    renumber = all(name.isdigit() for name, _ in items)  # keep Sequential's "0", "1", ...
    for k, (name, layer) in enumerate(kept):
        seq.add_module(str(k) if renumber else name, layer)


def _fold_batch_norm(conv, norm):
    """conv's weight and bias (created if absent) absorb eval-mode `norm`."""
    weight = conv.params["weight"]
    gamma = norm.params["weight"] if norm.affine else 1.0
    beta = norm.params["bias"] if norm.affine else 0.0
    scale = np.asarray(gamma, np.float64) / np.sqrt(
        np.asarray(norm.running_var, np.float64) + norm.eps)
    bias = np.asarray(conv.params.get("bias", 0.0), np.float64)
    new_bias = (bias - np.asarray(norm.running_mean, np.float64)) * scale + beta
    weight[...] = weight * scale.reshape((-1,) + (1,) * (weight.ndim - 1))
    if "bias" in conv.params:
        conv.params["bias"][...] = new_bias
    else:
        conv.register_parameter("bias", new_bias.astype(weight.dtype))
