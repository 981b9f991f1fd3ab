"""SyncBatchNorm: BatchNorm2d whose batch statistics are those of the whole
batch spread over the ranks, not of each rank's share."""
import numpy as np

from ..nn import BatchNorm2d
from ..nn import _checks
from . import _comm

__all__ = ["SyncBatchNorm"]

_AXES = (0, 2, 3)      # every axis but the channels of (N, C, H, W)


class _SyncedForward:
    """A training forward's cache (tells backward it must reduce too)."""
    __slots__ = ("xhat", "invstd", "count")

    def __init__(self, xhat, invstd, count):
        self.xhat, self.invstd, self.count = xhat, invstd, count


def _channel(v):
    return v.reshape(1, -1, 1, 1)


class SyncBatchNorm(BatchNorm2d):
    """BatchNorm2d over (N, C, H, W) input whose training statistics span
    every rank of `comm` (default MPI.COMM_WORLD): with a small batch per
    rank, the mean and variance of each rank's few samples would be noisy,
    and the model would differ from one trained on the whole batch.

    In training, forward sums per channel the values, their squares and the
    count over the ranks (one Allreduce of 2C+1 float64 numbers) and
    normalises with the global mean and biased variance; the running
    statistics are updated from them as BatchNorm2d updates its own (the
    unbiased variance, momentum, or a cumulative average for momentum=None),
    so they stay equal on every rank. Backward sums ``sum(dy)`` and
    ``sum(dy * xhat)`` over the ranks (one Allreduce of 2C numbers) for the
    input gradient; the weight and bias gradients stay the rank's own, for
    DistributedDataParallel to average with the others, so the result
    equals BatchNorm2d on the concatenated batch. Every rank must call
    forward and backward the same number of times; a rank may bring an
    empty batch. In eval mode it is BatchNorm2d with the running
    statistics and no communication.

    The statistics are sums of float64 values, so the variance loses
    relative precision of about 1e-16 * mean**2 / variance: negligible
    unless a channel's mean is ~1e6 times its standard deviation.

    Args:
        num_features: C, the channels.
        eps: added to the variance.
        momentum: the running statistics' update factor (None: a
            cumulative average).
        dtype: float32 or float64 (parameters, buffers, input).
        comm: mpi4py communicator (None: MPI.COMM_WORLD, looked up at the
            first training forward; a module holding a communicator of its
            own cannot be pickled).

    Raises:
        ValueError: the input is not (N, C, H, W) with this C, or the whole
            batch has a single value per channel (in training).
        TypeError: a bad dtype, an input of another dtype, `comm` not a
            communicator.
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1, dtype=np.float32, comm=None):
        super().__init__(num_features, eps=eps, momentum=momentum, dtype=dtype)
        self.comm = None if comm is None else _comm.resolve(comm, "SyncBatchNorm")

    def _communicator(self):
        return _comm.world() if self.comm is None else self.comm

    def forward(self, x):
        if not self.training:
            return super().forward(x)
        name = type(self).__name__
        x = _checks.float_input(x, name, dtype=self.dtype)
        if x.ndim != 4 or x.shape[1] != self.num_features:
            raise ValueError(f"{name}: input must be (N, C, H, W) with C="
                             f"{self.num_features}, got shape {x.shape}")
        c = self.num_features
        sums = np.empty(2 * c + 1)
        sums[:c] = x.sum(axis=_AXES, dtype=np.float64)
        sums[c:2 * c] = np.square(x, dtype=np.float64).sum(axis=_AXES)
        sums[2 * c] = x.size // max(c, 1)
        _comm.allreduce_sum_(self._communicator(), sums)
        count = sums[2 * c]
        if count <= 1:
            raise ValueError(f"{name}: training needs more than 1 value per channel over "
                             f"all ranks, got {int(count)} (input shape here {x.shape})")
        mean = sums[:c] / count
        var = np.maximum(sums[c:2 * c] / count - mean * mean, 0.0)
        self._update_running_stats(mean, var * (count / (count - 1)))
        invstd = (1 / np.sqrt(var + self.eps)).astype(self.dtype)
        xhat = (x - _channel(mean.astype(self.dtype))) * _channel(invstd)
        y = xhat * _channel(self.params["weight"]) + _channel(self.params["bias"])
        self._save(_SyncedForward(xhat, invstd, count), y)
        return y

    def _update_running_stats(self, mean, unbiased_var):
        """BatchNorm2d's rule: running = (1 - m) * running + m * batch, m the
        momentum or 1/batches seen for momentum=None."""
        self.num_batches_tracked += 1
        m = (1.0 / float(self.num_batches_tracked) if self.momentum is None
             else self.momentum)
        for running, batch in ((self.running_mean, mean), (self.running_var, unbiased_var)):
            running *= 1 - m
            running += (m * batch).astype(running.dtype)

    def backward(self, grad_output):
        pending = self._pending
        if not pending or not isinstance(pending[-1][0], _SyncedForward):
            return super().backward(grad_output)     # an eval-mode forward's
        cache, g = self._restore(grad_output)
        c = self.num_features
        sums = np.empty(2 * c)
        sums[:c] = g.sum(axis=_AXES, dtype=np.float64)
        sums[c:] = (g * cache.xhat).sum(axis=_AXES, dtype=np.float64)
        self.grads["weight"] += sums[c:].astype(self.dtype)
        self.grads["bias"] += sums[:c].astype(self.dtype)
        _comm.allreduce_sum_(self._communicator(), sums)
        gsum, gxhat_sum = (_channel(s.astype(self.dtype) / self.dtype.type(cache.count))
                           for s in (sums[:c], sums[c:]))
        scale = _channel(self.params["weight"] * cache.invstd)
        return scale * (g - gsum - cache.xhat * gxhat_sum)

    @classmethod
    def convert_sync_batchnorm(cls, module, comm=None):
        """Replace every BatchNorm2d in `module`'s tree (affine, tracking
        running statistics, as SyncBatchNorm is) by a SyncBatchNorm with its
        settings, parameters and buffers; returns the module (or a new
        SyncBatchNorm when `module` itself is one). A BatchNorm2d used in
        several places becomes one SyncBatchNorm used in the same places."""
        if _convertible(module):
            return _converted(cls, module, comm)
        done = {}
        for parent in list(module.modules()):
            for name, child in list(parent._modules.items()):
                if _convertible(child):
                    if id(child) not in done:
                        done[id(child)] = _converted(cls, child, comm)
                    parent.add_module(name, done[id(child)])
        return module

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, " \
               f"dtype={self.dtype}"


def _convertible(module):
    return (isinstance(module, BatchNorm2d) and not isinstance(module, SyncBatchNorm)
            and module.affine and module.track_running_stats)


def _converted(cls, bn, comm):
    sync = cls(bn.num_features, eps=bn.eps, momentum=bn.momentum, dtype=bn.dtype, comm=comm)
    sync.load_state_dict(bn.state_dict())
    sync.train(bn.training)
    if bn.backend is not None:
        sync.set_backend(bn.backend)
    return sync

