"""The ResNet of train_resnet.py trained data-parallel over MPI on
scikit-learn's digits: every rank holds the model, trains on its share of
each batch (DistributedSampler), and the gradients are averaged over the
ranks after each backward (DistributedDataParallel); its BatchNorm layers
are SyncBatchNorm, so the statistics are the whole batch's (--local-bn:
each rank's own, with no communication in forward).

    mpiexec -n 2 python examples/train_distributed.py --threads 1
    mpiexec -n 2 python examples/train_distributed.py --tiny --checkpoint run.pkl
    mpiexec -n 2 python examples/train_distributed.py --resume run.pkl --epochs 3

--batch-size is the global batch (each rank takes batch-size / ranks). Each
epoch prints every rank's throughput and the time its gradient averaging
took per step; the end prints the test accuracy and the bucket sizes.
Needs `pip install "fastconv[mpi,examples]"`.
"""
import argparse
import time

import numpy as np

from fastconv import nn, optim
from fastconv.distributed import (DistributedDataParallel, DistributedSampler, SyncBatchNorm,
                                  abort_on_error, load_checkpoint, save_checkpoint)

import _common
from train_digits import accuracy
from train_resnet import resnet


def own_arguments(argv):
    """This example's options; the rest are _common's."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--bucket-mb", type=float, default=25,
                   help="size of one gradient Allreduce message (MB)")
    p.add_argument("--local-bn", action="store_true",
                   help="keep BatchNorm2d (per-rank statistics) instead of SyncBatchNorm")
    p.add_argument("--checkpoint", help="rank 0 saves model + optimizer here each epoch")
    p.add_argument("--resume", help="every rank loads this checkpoint before training")
    return p.parse_known_args(argv)


def test_accuracy(net, x, y, comm):
    """Each rank scores a slice of the test set; the counts are summed."""
    mine = np.array_split(np.arange(len(x)), comm.Get_size())[comm.Get_rank()]
    correct = round(accuracy(net, x[mine], y[mine]) * len(mine))
    return comm.allreduce(correct) / max(len(x), 1)


def train_epoch(model, loss_fn, opt, x, y, indices, per_rank):
    """One pass over this rank's indices: (summed loss, steps, seconds)."""
    model.train()
    total_loss, steps = 0.0, 0
    start = time.perf_counter()
    for i in range(0, len(indices), per_rank):
        batch = indices[i:i + per_rank]
        total_loss += loss_fn(model(x[batch]), y[batch]) * len(batch)
        opt.zero_grad()
        model.backward(loss_fn.backward(), input_grad=False)   # averaged over the ranks
        opt.step()
        steps += 1
    return total_loss, steps, time.perf_counter() - start


def main(argv=None):
    own, rest = own_arguments(argv)
    args = _common.parse_args(__doc__.split("\n\n")[0], rest, epochs=15)
    with abort_on_error() as comm:
        rank, size = comm.Get_rank(), comm.Get_size()
        xtr, ytr, xte, yte = _common.digits(args)
        net = resnet(np.random.default_rng(args.seed))
        if not own.local_bn:
            net = SyncBatchNorm.convert_sync_batchnorm(net)
        model = DistributedDataParallel(net, comm, bucket_mb=own.bucket_mb)
        opt = optim.Adam(model, lr=args.lr)
        schedule = optim.lr_scheduler.CosineAnnealingLR(opt, args.epochs)
        first_epoch = 0
        if own.resume:
            saved = load_checkpoint(own.resume, model, opt)
            first_epoch = saved["epoch"]
            schedule.load_state_dict(saved["schedule"])
        sampler = DistributedSampler(len(xtr), seed=args.seed)
        per_rank = max(args.batch_size // size, 1)
        loss_fn = nn.CrossEntropyLoss()
        if rank == 0:
            print(f"ResNet on digits, {size} ranks x {per_rank} examples per step, "
                  f"{len(sampler)} examples per rank and epoch", flush=True)
        for epoch in range(first_epoch, args.epochs):
            sampler.set_epoch(epoch)
            indices = sampler.indices()
            comm.Barrier()
            reduce_before = model.allreduce_seconds
            total_loss, steps, seconds = train_epoch(model, loss_fn, opt, xtr, ytr, indices,
                                                     per_rank)
            schedule.step()
            loss = comm.allreduce(total_loss) / (size * len(indices))
            acc = test_accuracy(model.module, xte, yte, comm)
            rows = comm.gather((len(indices) / seconds,
                                (model.allreduce_seconds - reduce_before) / max(steps, 1)))
            if rank == 0:
                print(f"epoch {epoch + 1:2d}/{args.epochs}  loss {loss:.4f}  "
                      f"test acc {acc:6.2%}", flush=True)
                for r, (rate, reduce_s) in enumerate(rows):
                    print(f"  rank {r}: {rate:8.1f} examples/s  "
                          f"allreduce {reduce_s * 1e3:.2f} ms/step", flush=True)
            if own.checkpoint:
                save_checkpoint(own.checkpoint, model, opt, comm=comm,
                                extra={"epoch": epoch + 1, "schedule": schedule.state_dict()})
        acc = test_accuracy(model.module, xte, yte, comm)
        if rank == 0:
            buckets = ", ".join(f"{b / 2**10:.1f} KiB" for b in model.bucket_nbytes)
            print(f"final test accuracy: {acc:.4f}  ({size} ranks; gradient buckets: "
                  f"{buckets or 'none yet'})", flush=True)
        return {"test_acc": acc, "ranks": size}


if __name__ == "__main__":
    main()
