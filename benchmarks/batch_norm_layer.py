"""BatchNorm2d alone: the fastconv.nn layer's forward then backward (training
mode) against torch.nn.BatchNorm2d's, in one process, interleaved rounds.

    PYTHONPATH=src python benchmarks/batch_norm_layer.py [--threads 1,2]
        [--dtypes float32,float64] [--rounds 9]

The allocator gets the benchmark's policy first (fastconv.bench.timing's
configure_malloc: freed memory stays mapped), so neither side pays first-touch
page faults on its fresh outputs.  Each round times one call of each side after
three warm-up calls; the table gives the median of the rounds and torch time /
fastconv time.  Times on a shared machine are indicative.
"""
import argparse
import time

import numpy as np

import fastconv
import fastconv.nn as nn
from fastconv.bench.timing import configure_malloc

SHAPES = ((64, 64, 32, 32), (64, 32, 16, 16), (32, 128, 28, 28))


def _time_into(fn, times):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)


def measure(torch, shape, dtype, threads, rounds):
    torch.set_num_threads(threads)
    fastconv.set_num_threads(threads)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(dtype)
    gy = rng.standard_normal(shape).astype(dtype)
    ours = nn.BatchNorm2d(shape[1], dtype=dtype)
    theirs = torch.nn.BatchNorm2d(shape[1]).to(getattr(torch, np.dtype(dtype).name))
    xt = torch.from_numpy(x).requires_grad_(True)
    gyt = torch.from_numpy(gy)

    def fastconv_step():
        ours(x)
        ours.backward(gy)

    def torch_step():
        theirs(xt).backward(gyt)

    for _ in range(3):
        fastconv_step()
        torch_step()
    ours_s, theirs_s = [], []
    for _ in range(rounds):
        _time_into(fastconv_step, ours_s)
        _time_into(torch_step, theirs_s)
    return np.median(ours_s) * 1e3, np.median(theirs_s) * 1e3


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--dtypes", default="float32,float64")
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    import torch
    print(configure_malloc())
    print(f"{'shape':<20} {'dtype':<8} threads  fastconv ms  torch ms  torch/fastconv")
    for dtype in args.dtypes.split(","):
        for threads in map(int, args.threads.split(",")):
            for shape in SHAPES:
                ours, theirs = measure(torch, shape, np.dtype(dtype).type, threads,
                                       args.rounds)
                print(f"{str(shape):<20} {dtype:<8} {threads:>7}  {ours:>11.2f}  "
                      f"{theirs:>8.2f}  {theirs / ours:>14.2f}", flush=True)


if __name__ == "__main__":
    main()
