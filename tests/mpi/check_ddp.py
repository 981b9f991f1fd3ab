"""Multi-rank specifications of fastconv.distributed, run by
tests/test_distributed.py as ``mpiexec -n 2 python tests/mpi/check_ddp.py``
(any rank count works). Each rank also computes the single-process answer
on the whole batch itself, so every comparison happens on every rank; a
failed assertion aborts every rank (abort_on_error) and mpiexec exits
non-zero. Rank 0 prints "ALL OK" at the end."""
import os
import tempfile

import numpy as np

from fastconv import nn, optim
from fastconv.distributed import (DistributedDataParallel, DistributedSampler, SyncBatchNorm,
                                  abort_on_error, load_checkpoint, save_checkpoint)

F64 = np.float64
TIGHT = dict(rtol=1e-11, atol=1e-13)


def plain_net(rng, batchnorm):
    layers = [nn.Conv2d(3, 4, 3, padding=1, dtype=F64, rng=rng)]
    if batchnorm is not None:
        layers.append(batchnorm(4, dtype=F64))
    layers += [nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 4 * 4, 5, dtype=F64,
                                                                   rng=rng)]
    return nn.Sequential(*layers)


def train(net, optimizer, batches, input_grad=True):
    """One SGD step per (x, y) batch; CrossEntropy is a mean over the batch."""
    loss_fn = nn.CrossEntropyLoss()
    for x, y in batches:
        loss_fn(net(x), y)
        optimizer.zero_grad()
        net.backward(loss_fn.backward(), input_grad=input_grad)
        optimizer.step()


def same_state(a, b, what):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys(), (what, sa.keys(), sb.keys())
    for key in sa:
        np.testing.assert_allclose(sa[key], sb[key], err_msg=f"{what}: {key}", **TIGHT)


def check_steps_equal_one_process(comm, sync_bn, bucket_mb):
    """Two steps on `size` ranks x batch B give the parameters (and running
    statistics) of two steps of one process on the concatenated batch."""
    rank, size = comm.Get_rank(), comm.Get_size()
    per_rank = 3
    data = np.random.default_rng(7)
    batches = [(data.standard_normal((per_rank * size, 3, 8, 8)),
                data.integers(0, 5, per_rank * size)) for _ in range(2)]
    single = plain_net(np.random.default_rng(0), nn.BatchNorm2d if sync_bn else None)
    # each rank initialised differently: the wrapper must broadcast rank 0's
    mine = plain_net(np.random.default_rng(rank), SyncBatchNorm if sync_bn else None)
    ddp = DistributedDataParallel(mine, comm=comm, bucket_mb=bucket_mb)
    train(single, optim.SGD(single, lr=0.1, momentum=0.9), batches)
    share = slice(rank * per_rank, (rank + 1) * per_rank)
    # without the images' gradient, as a training loop runs it
    train(ddp, optim.SGD(ddp, lr=0.1, momentum=0.9),
          [(x[share], y[share]) for x, y in batches], input_grad=False)
    same_state(ddp, single, f"sync_bn={sync_bn} bucket_mb={bucket_mb}")
    assert ddp.allreduce_calls == 2
    if bucket_mb < 1e-3:
        assert len(ddp.bucket_nbytes) > 2, ddp.bucket_nbytes


def check_sync_batchnorm_uneven_shares(comm, shares):
    """Ranks holding `shares[r]` samples (one may hold none): outputs, input
    gradients and summed weight gradients are BatchNorm2d's on the whole."""
    rank = comm.Get_rank()
    shares = shares[:comm.Get_size()]
    data = np.random.default_rng(3)
    x = data.standard_normal((sum(shares), 3, 2, 2)) * 2 + 1
    g = data.standard_normal(x.shape)
    bn, sync = nn.BatchNorm2d(3, dtype=F64), SyncBatchNorm(3, dtype=F64, comm=comm)
    bn.params["weight"][:] = sync.params["weight"][:] = [0.5, 1.5, -2.0]
    lo = sum(shares[:rank])
    mine = slice(lo, lo + shares[rank])
    np.testing.assert_allclose(sync(x[mine]), bn(x)[mine], **TIGHT)
    np.testing.assert_allclose(sync.backward(g[mine]), bn.backward(g)[mine], **TIGHT)
    for key in ("weight", "bias"):
        total = comm.allreduce(sync.grads[key])
        np.testing.assert_allclose(total, bn.grads[key], **TIGHT)
    same_state(sync, bn, f"SyncBatchNorm shares {shares}")
    sync.eval(), bn.eval()     # eval: the running statistics, no communication
    np.testing.assert_allclose(sync(x[mine]), bn(x[mine]), **TIGHT)
    np.testing.assert_allclose(sync.backward(g[mine]), bn.backward(g[mine]), **TIGHT)


def check_no_sync_accumulates_then_averages(comm):
    """Two backwards, the first under no_sync: the gradients are the
    single process's accumulated over both batches (and the first backward
    left them local)."""
    rank, size = comm.Get_rank(), comm.Get_size()
    data = np.random.default_rng(9)
    batches = [(data.standard_normal((2 * size, 3, 8, 8)), data.integers(0, 5, 2 * size))
               for _ in range(2)]
    single = plain_net(np.random.default_rng(0), nn.BatchNorm2d)
    ddp = DistributedDataParallel(plain_net(np.random.default_rng(0), SyncBatchNorm), comm)
    loss_fn = nn.CrossEntropyLoss()
    share = slice(2 * rank, 2 * rank + 2)
    for step, (x, y) in enumerate(batches):
        loss_fn(single(x), y)
        single.backward(loss_fn.backward())
        loss_fn(ddp(x[share]), y[share])
        if step == 0:
            with ddp.no_sync():
                ddp.backward(loss_fn.backward())
            assert ddp.allreduce_calls == 0
        else:
            ddp.backward(loss_fn.backward())
    for (name, mine), (_, theirs) in zip(ddp.named_grads(), single.named_grads()):
        np.testing.assert_allclose(mine, theirs, err_msg=name, **TIGHT)


def check_float32(comm):
    """float32 model and data: the same as one process to float32 rounding."""
    rank, size = comm.Get_rank(), comm.Get_size()
    data = np.random.default_rng(2)
    x = data.standard_normal((2 * size, 3, 4, 4)).astype(np.float32)
    g = data.standard_normal(x.shape).astype(np.float32)
    bn, sync = nn.BatchNorm2d(3), SyncBatchNorm(3, comm=comm)
    share = slice(2 * rank, 2 * rank + 2)
    y = sync(x[share])
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, bn(x)[share], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(sync.backward(g[share]), bn.backward(g)[share],
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(sync.running_var, bn.running_var, rtol=1e-6)


def check_mismatch_raises_everywhere(comm):
    """Ranks that built different models, or chose different buckets, get
    the same ValueError naming the difference (no hang, no wrong sum)."""
    rank = comm.Get_rank()
    for net, bucket_mb, needle in (
            (nn.Linear(4, 5 + (rank == 1), dtype=F64), 25, "weight"),
            (nn.Linear(4, 5, dtype=F64), 25 + (rank == 1), "bucket_mb")):
        try:
            DistributedDataParallel(net, comm=comm, bucket_mb=bucket_mb)
        except ValueError as exc:
            message = str(exc)
            assert "ranks disagree" in message and needle in message, message
            assert "rank 1" in message, message
        else:
            raise AssertionError(f"rank {rank}: no ValueError for a {needle} mismatch")


def check_checkpoint_resume(comm):
    """Rank 0 saves model + optimizer; every rank loads them into a fresh
    model and optimizer, and the next step is the same as without the
    checkpoint."""
    rank = comm.Get_rank()
    folder = comm.bcast(tempfile.mkdtemp() if rank == 0 else None)
    path = os.path.join(folder, "checkpoint.pkl")
    data = np.random.default_rng(11)
    batches = [(data.standard_normal((2, 3, 8, 8)), data.integers(0, 5, 2)) for _ in range(2)]
    net = DistributedDataParallel(plain_net(np.random.default_rng(0), SyncBatchNorm), comm)
    opt = optim.Adam(net, lr=1e-2)
    train(net, opt, batches[:1])
    save_checkpoint(path, net, opt, extra={"epoch": 1}, comm=comm)
    resumed = DistributedDataParallel(plain_net(np.random.default_rng(5), SyncBatchNorm),
                                      comm)
    resumed_opt = optim.Adam(resumed, lr=1e-2)
    assert load_checkpoint(path, resumed, resumed_opt) == {"epoch": 1}
    train(net, opt, batches[1:])
    train(resumed, resumed_opt, batches[1:])
    same_state(resumed, net, "resumed from a checkpoint")
    comm.Barrier()
    if rank == 0:
        os.remove(path)
        os.rmdir(folder)


def check_sampler_covers_every_sample(comm):
    size = comm.Get_size()
    for n, drop_last in ((10 * size, False), (10 * size + 1, False), (10 * size + 1, True)):
        sampler = DistributedSampler(n, drop_last=drop_last, seed=4)
        for epoch in range(2):
            sampler.set_epoch(epoch)
            everyone = np.concatenate(comm.allgather(sampler.indices()))
            assert len(everyone) == size * len(sampler)
            counts = np.bincount(everyone, minlength=n)
            if n % size == 0:
                assert (counts == 1).all(), counts
            elif drop_last:
                assert counts.max() == 1 and counts.sum() == n - n % size
            else:
                assert counts.min() == 1 and counts.sum() == n + size - n % size


def main():
    with abort_on_error() as comm:
        assert comm.Get_size() >= 2, "run with mpiexec -n 2 (or more)"
        checks = [("DDP without BatchNorm, one bucket", check_steps_equal_one_process,
                   (comm, False, 25)),
                  ("DDP without BatchNorm, many small buckets", check_steps_equal_one_process,
                   (comm, False, 1e-4)),
                  ("DDP with SyncBatchNorm", check_steps_equal_one_process, (comm, True, 25)),
                  ("SyncBatchNorm on shares 3/5", check_sync_batchnorm_uneven_shares,
                   (comm, [3, 5] + [2] * 30)),
                  ("SyncBatchNorm on shares 0/4", check_sync_batchnorm_uneven_shares,
                   (comm, [0, 4] + [2] * 30)),
                  ("no_sync accumulates, the next backward averages",
                   check_no_sync_accumulates_then_averages, (comm,)),
                  ("float32 SyncBatchNorm", check_float32, (comm,)),
                  ("mismatched ranks raise everywhere", check_mismatch_raises_everywhere,
                   (comm,)),
                  ("checkpoint from rank 0, resumed everywhere", check_checkpoint_resume,
                   (comm,)),
                  ("sampler covers every sample", check_sampler_covers_every_sample,
                   (comm,))]
        for name, check, args in checks:
            check(*args)
            comm.Barrier()
            if comm.Get_rank() == 0:
                print(f"PASS {name}", flush=True)
        if comm.Get_rank() == 0:
            print("ALL OK", flush=True)


if __name__ == "__main__":
    main()
