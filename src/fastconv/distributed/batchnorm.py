"""SyncBatchNorm: BatchNorm2d whose batch statistics are those of the whole
batch spread over the ranks, not of each rank's share."""
import numpy as np

from ..functional import _batch_norm as _bn
from ..nn import BatchNorm2d
from . import _comm

__all__ = ["SyncBatchNorm"]


class SyncBatchNorm(BatchNorm2d):
    """BatchNorm2d over (N, C, H, W) input whose training statistics span
    every rank of `comm` (default MPI.COMM_WORLD): with a small batch per
    rank, the mean and variance of each rank's few samples would be noisy,
    and the model would differ from one trained on the whole batch.

    In training, forward gathers every rank's count, mean and variance per
    channel (BatchNorm's kernel computes the rank's own) and combines them
    into the whole batch's mean and biased variance, which the same kernel
    normalises with; the running statistics are updated from them as
    BatchNorm2d updates its own (the unbiased variance, momentum, or a
    cumulative average for momentum=None), so they stay equal on every
    rank. Backward sums ``sum(dy)``, ``sum(dy * (x - mean))`` and the count
    over the ranks (one Allreduce of 2C+1 numbers) for the input gradient; the weight and bias gradients stay the rank's own, for
    DistributedDataParallel to average with the others, so the result
    equals BatchNorm2d on the concatenated batch. Every rank must call
    forward and backward the same number of times; a rank may bring an
    empty batch. In eval mode it is BatchNorm2d with the running
    statistics and no communication.

    The ranks' statistics are combined as (count, mean, variance) triples
    (Chan et al.'s parallel formula), not as sums of squares, so a channel
    whose mean is far from zero keeps its variance's precision.

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

    # BatchNorm's two hooks: the batch statistics and the gradient sums of
    # the whole batch over the ranks (only training uses batch statistics:
    # a SyncBatchNorm always tracks running ones).

    def _normalize_batch(self, x, weight, bias):
        c = self.num_features
        count = x.size // max(c, 1)
        mean, var = _bn._batch_statistics(x) if count else (np.zeros(c), np.zeros(c))
        ranks = self._communicator().allgather((count, mean, var))
        counts = np.array([n for n, _, _ in ranks], np.float64)
        total = int(counts.sum())
        self._check_count(total, f"{x.shape} here, {total} values per channel over all ranks")
        means = np.stack([m for _, m, _ in ranks])
        mean = counts @ means / total
        var = counts @ (np.stack([v for _, _, v in ranks]) + (means - mean) ** 2) / total
        y = _bn._normalize(x, weight, bias, self.eps, mean, var)[0]
        return y, mean, var, total

    def _grad_sums(self, grad_output, x, mean):
        c = self.num_features
        local = (_bn._grad_sums(grad_output, x, mean) if x.size
                 else (np.zeros(c), np.zeros(c)))
        sums = np.concatenate([local[0], local[1], [x.size // max(c, 1)]])
        _comm.allreduce_sum_(self._communicator(), sums)
        return local, (sums[:c], sums[c:2 * c]), int(sums[2 * c])

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

