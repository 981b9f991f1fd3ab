"""BatchNorm1d/2d/3d, as torch.nn's (plain NumPy).

Statistics are per channel (dim 1) over every other dim. In train mode (or
always, with track_running_stats=False) a layer normalises with the batch
mean and biased variance; with track_running_stats it also updates
``running_mean`` / ``running_var`` (the latter with the unbiased variance) as
``running = (1 - momentum) * running + momentum * batch`` (momentum=None: a
cumulative average) and counts ``num_batches_tracked``. In eval mode it uses
the running statistics. ``weight`` (gamma) and ``bias`` (beta) are the params
when affine; the running statistics are buffers (in state_dict, not trained).
"""
import numpy as np

from . import _checks
from .module import Module

__all__ = ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d"]


class _BatchNorm(Module):
    input_ndims = ()        # the input ranks accepted
    layout = ""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, dtype=np.float32):
        super().__init__()
        name = type(self).__name__
        self.num_features = _checks.size(num_features, "num_features", name)
        self.eps = _checks.real(eps, "eps", name, low=0, low_open=True)
        self.momentum = (None if momentum is None
                         else _checks.real(momentum, "momentum", name, 0, 1))
        self.affine = _checks.flag(affine, "affine", name)
        self.track_running_stats = _checks.flag(track_running_stats, "track_running_stats",
                                                name)
        self.dtype = _checks.float_dtype(dtype, name)
        c = self.num_features
        if self.affine:
            self.register_parameter("weight", np.ones(c, self.dtype))
            self.register_parameter("bias", np.zeros(c, self.dtype))
        tracking = self.track_running_stats
        self.register_buffer("running_mean", np.zeros(c, self.dtype) if tracking else None)
        self.register_buffer("running_var", np.ones(c, self.dtype) if tracking else None)
        self.register_buffer("num_batches_tracked",
                             np.zeros((), np.int64) if tracking else None)

    def _channel(self, v, ndim):
        """A per-channel vector shaped to broadcast along dim 1."""
        return v.reshape((1, -1) + (1,) * (ndim - 2))

    def forward(self, x):
        name = type(self).__name__
        x = _checks.float_input(x, name, dtype=self.dtype)
        if x.ndim not in self.input_ndims or x.shape[1] != self.num_features:
            raise ValueError(f"{name}: input must be {self.layout} with C="
                             f"{self.num_features}, got shape {x.shape}")
        axes = (0,) + tuple(range(2, x.ndim))
        count = x.size // max(self.num_features, 1)
        batch_stats = self.training or not self.track_running_stats
        if batch_stats:
            if self.training and count <= 1:
                raise ValueError(f"{name}: training needs more than 1 value per channel, "
                                 f"got input shape {x.shape}")
            mean, var = x.mean(axis=axes), x.var(axis=axes)
            if self.training and self.track_running_stats:
                self._update_running(mean, var * (count / (count - 1)))
        else:
            mean, var = self.running_mean, self.running_var
        invstd = (1 / np.sqrt(var + self.eps)).astype(self.dtype, copy=False)
        xhat = (x - self._channel(mean, x.ndim)) * self._channel(invstd, x.ndim)
        y = xhat
        if self.affine:
            y = (xhat * self._channel(self.params["weight"], x.ndim)
                 + self._channel(self.params["bias"], x.ndim))
        self._save((xhat, invstd, batch_stats), y)
        return y

    def _update_running(self, mean, unbiased_var):
        self.num_batches_tracked += 1
        m = (1.0 / float(self.num_batches_tracked) if self.momentum is None
             else self.momentum)
        self.running_mean *= 1 - m
        self.running_mean += m * mean
        self.running_var *= 1 - m
        self.running_var += m * unbiased_var

    def backward(self, grad_output):
        (xhat, invstd, batch_stats), g = self._restore(grad_output)
        axes = (0,) + tuple(range(2, g.ndim))
        gsum = g.sum(axis=axes)
        gxhat_sum = (g * xhat).sum(axis=axes)
        scale = invstd
        if self.affine:
            self.grads["weight"] += gxhat_sum
            self.grads["bias"] += gsum
            scale = self.params["weight"] * invstd
        scale = self._channel(scale, g.ndim)
        if not batch_stats:                   # running stats are constants
            return g * scale
        count = g.size // max(self.num_features, 1)
        return scale * (g - (self._channel(gsum, g.ndim)
                             + xhat * self._channel(gxhat_sum, g.ndim)) / count)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}, "
                f"dtype={self.dtype}")


class BatchNorm1d(_BatchNorm):
    """Over (N, C) or (N, C, L) input, as torch.nn.BatchNorm1d."""
    input_ndims = (2, 3)
    layout = "(N, C) or (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """Over (N, C, H, W) input, as torch.nn.BatchNorm2d."""
    input_ndims = (4,)
    layout = "(N, C, H, W)"


class BatchNorm3d(_BatchNorm):
    """Over (N, C, D, H, W) input, as torch.nn.BatchNorm3d."""
    input_ndims = (5,)
    layout = "(N, C, D, H, W)"
