"""fastconv.distributed: data-parallel training over MPI (the extra
``pip install 'fastconv[mpi]'``: mpi4py and MPICH from wheels).

Every rank (process) holds the whole model and trains on its share of each
batch; after backward the gradients are averaged over the ranks, so every
rank takes the same optimizer step, the one a single process would take on
the whole batch. Run a script on N ranks with ``mpiexec -n N python
script.py`` (on one machine or, with a host file, on many)::

    from fastconv.distributed import (DistributedDataParallel, DistributedSampler,
                                      SyncBatchNorm, abort_on_error)
    with abort_on_error():                 # one rank failing ends them all
        net = DistributedDataParallel(SyncBatchNorm.convert_sync_batchnorm(build()))
        opt = fastconv.optim.SGD(net, lr=0.1)
        sampler = DistributedSampler(len(x_train))
        for epoch in range(epochs):
            sampler.set_epoch(epoch)
            idx = sampler.indices()
            for i in range(0, len(idx), batch_per_rank):
                b = idx[i:i + batch_per_rank]
                loss = loss_fn(net(x_train[b]), y_train[b])
                opt.zero_grad()
                net.backward(loss_fn.backward())      # gradients averaged here
                opt.step()

Importing this package needs no MPI; mpi4py is imported when a
communicator is first needed (an ImportError names the extra).
"""
from ._comm import abort_on_error
from .batchnorm import SyncBatchNorm
from .checkpoint import load_checkpoint, save_checkpoint
from .parallel import DistributedDataParallel
from .sampler import DistributedSampler

__all__ = ["DistributedDataParallel", "DistributedSampler", "SyncBatchNorm",
           "abort_on_error", "save_checkpoint", "load_checkpoint"]
