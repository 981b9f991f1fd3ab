"""DistributedSampler: which samples each rank trains on in an epoch, with
PyTorch's torch.utils.data.DistributedSampler semantics."""
import numpy as np

from .. import _args
from ..nn import _checks
from . import _comm

__all__ = ["DistributedSampler", "shard"]

_OWNER = "DistributedSampler"


def per_rank_count(num_samples, num_replicas, drop_last):
    """How many indices each rank gets: every rank the same number, the
    total rounded up to a multiple of num_replicas by repeating indices, or
    down by dropping the tail with drop_last."""
    if drop_last:
        return num_samples // num_replicas
    return -(-num_samples // num_replicas)


def shard(order, num_replicas, rank, drop_last=False):
    """Rank `rank`'s indices from one epoch's `order` of every sample:
    padded by repeating `order` from its start (or cut, with drop_last) to
    num_replicas * per-rank count, then every num_replicas-th entry from
    `rank` on (PyTorch's split, so rank r gets the same positions of the
    order as in torch)."""
    order = np.asarray(order, dtype=np.int64)
    total = num_replicas * per_rank_count(len(order), num_replicas, drop_last)
    if total > len(order):
        order = np.resize(order, total) if len(order) else order
    return order[:total][rank:total:num_replicas]


class DistributedSampler:
    """The indices of `num_samples` samples that this rank trains on, one
    epoch at a time: iterate it (or call ``indices()``), and call
    ``set_epoch(e)`` before each epoch so the shuffle changes.

    As PyTorch's DistributedSampler: every rank gets ``len(sampler)``
    indices (the same count, so every rank runs the same number of steps
    and none waits in an Allreduce the others never reach); without
    drop_last the epoch is padded by repeating the first indices, with it
    the tail that does not fill every rank is dropped; with shuffle the
    order is a permutation seeded by ``seed + epoch``, the same on every
    rank, so the ranks' shares are disjoint and cover every sample once
    (plus the padding). The permutation comes from NumPy's generator
    (``np.random.default_rng(seed + epoch)``), so the shuffled order is not
    torch's; the padding and the split are (:func:`shard`).

    Args:
        num_samples: size of the data set (int >= 0).
        num_replicas: number of ranks (None: the size of MPI.COMM_WORLD).
        rank: this rank, 0 <= rank < num_replicas (None: MPI.COMM_WORLD's rank).
        shuffle: permute the samples each epoch.
        seed: the shuffle's seed, the same on every rank.
        drop_last: drop the tail instead of padding.

    Raises:
        ValueError: a negative count, seed or epoch, num_replicas < 1, rank
            outside [0, num_replicas), naming the argument.
        TypeError: a non-int count, seed or epoch, a non-bool flag.
    """

    def __init__(self, num_samples, num_replicas=None, rank=None, shuffle=True, seed=0,
                 drop_last=False):
        self.dataset_size = _checks.size(num_samples, "num_samples", _OWNER)
        if num_replicas is None:
            num_replicas = _comm.world().Get_size()
        self.num_replicas = _checks.size(num_replicas, "num_replicas", _OWNER, minimum=1)
        if rank is None:
            rank = _comm.world().Get_rank()
        self.rank = _args.as_int(rank, "rank", _OWNER)
        if not 0 <= self.rank < self.num_replicas:
            raise ValueError(f"{_OWNER}: rank must be in [0, num_replicas - 1] = "
                             f"[0, {self.num_replicas - 1}], got rank={rank!r}")
        self.shuffle = _checks.flag(shuffle, "shuffle", _OWNER)
        self.seed = _checks.size(seed, "seed", _OWNER)
        self.drop_last = _checks.flag(drop_last, "drop_last", _OWNER)
        self.epoch = 0
        self.total_size = self.num_replicas * len(self)

    def set_epoch(self, epoch):
        """Use `epoch`'s shuffle from now on (call it at the start of every
        epoch, with the same value on every rank)."""
        self.epoch = _checks.size(epoch, "epoch", _OWNER)

    def order(self):
        """This epoch's order of all the samples (the same on every rank)."""
        if self.shuffle:
            return np.random.default_rng(self.seed + self.epoch).permutation(
                self.dataset_size)
        return np.arange(self.dataset_size)

    def indices(self):
        """This rank's indices for the current epoch (int64 array)."""
        return shard(self.order(), self.num_replicas, self.rank, self.drop_last)

    def __iter__(self):
        return iter(self.indices().tolist())

    def __len__(self):
        return per_rank_count(self.dataset_size, self.num_replicas, self.drop_last)

    def __repr__(self):
        return (f"{_OWNER}({self.dataset_size}, num_replicas={self.num_replicas}, "
                f"rank={self.rank}, shuffle={self.shuffle}, seed={self.seed}, "
                f"drop_last={self.drop_last})")
