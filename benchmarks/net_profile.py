"""Where a benchmark network's time goes: CPU time per layer type and pass.

Runs one of the ``python -m fastconv.bench --nets`` networks (fastconv.nn)
in this process and charges the CPU time (``time.process_time``: every
thread's, so it adds up at any thread count and is less disturbed by other
processes than wall time) of each leaf layer's ``forward`` and ``backward``
to its type; convolutions are split by shape class (depthwise, 1x1, 3x3;
stride).  A training step is the benchmark's (zero_grad, forward,
CrossEntropyLoss, backward, SGD with momentum); "other" is what no leaf
layer ran: the loss, the optimizer, the containers (nn.Residual's add).
The first layer computes no input gradient (``input_grad=False``), as in
the bench's step.  The script re-runs itself in the environment the bench
gives its measuring workers (thread counts pinned, the allocator keeping
freed memory mapped: ``fastconv.bench.timing.MALLOC_ENV``), so its shares
are those of the bench's numbers.

    PYTHONPATH=src python benchmarks/net_profile.py resnet --threads 1 --steps 5

For the kernels below the ops, run the same under ``valgrind
--tool=callgrind`` with ``FASTCONV_SIMD=avx2`` on a ``FASTCONV_NO_STRIP=1``
build; for the Python above them, under cProfile (``-m cProfile -s tottime``:
a Cython kernel's time shows as its caller's own time).
"""
import argparse
import collections
import functools
import os
import sys
import time

import numpy as np

import fastconv
from fastconv import nn
from fastconv.bench import nets, timing

LEAF_TYPES = (nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.Linear, nn.AdaptiveAvgPool2d, nn.Flatten,
              nn.MaxPool2d)


def layer_kind(layer):
    """The row a layer's time goes to."""
    if isinstance(layer, nn.Conv2d):
        k, s = layer.weight.shape[-1], layer.stride
        s = s[0] if isinstance(s, tuple) else s
        if layer.groups > 1 and layer.groups == layer.in_channels:
            return f"Conv2d depthwise {k}x{k}/{s}"
        return f"Conv2d {k}x{k}/{s}"
    return type(layer).__name__


def charge_time(totals):
    """Wrap every leaf type's forward and backward to add their CPU time to
    totals[(kind, pass)]; returns a function that unwraps them."""
    originals = []
    for cls in LEAF_TYPES:
        originals.append((cls, cls.forward, cls.backward))

        def timed(method, direction):
            # wraps: the method's marks too (skips_input_grad: the first
            # layer is then told to skip its input gradient, as unwrapped).
            @functools.wraps(method)
            def run(self, *args, **kwargs):
                start = time.process_time()
                try:
                    return method(self, *args, **kwargs)
                finally:
                    totals[(layer_kind(self), direction)] += time.process_time() - start
            return run
        cls.forward, cls.backward = timed(cls.forward, "fwd"), timed(cls.backward, "bwd")

    def restore():
        for cls, forward, backward in originals:
            cls.forward, cls.backward = forward, backward
    return restore


def profile(case, dtype, direction, steps):
    """(CPU seconds per call, {(kind, pass): CPU seconds per call})."""
    state = nets.fastconv_state(case.make_inputs(dtype, direction))
    run = nets.fastconv_pass(direction)
    for _ in range(2):   # workspaces and the allocator's heap grown first
        run(state)
    totals = collections.defaultdict(float)
    restore = charge_time(totals)
    try:
        start = time.process_time()
        for _ in range(steps):
            run(state)
        total = time.process_time() - start
    finally:
        restore()
    return total / steps, {k: v / steps for k, v in totals.items()}


def in_bench_environment(threads):
    """Re-execute this script in the bench workers' environment
    (fastconv.bench's own function) unless it already runs in it: glibc
    reads the allocator's variables once, at start-up."""
    env = timing.worker_env(threads)
    pinned = tuple(timing.MALLOC_ENV) + timing.THREAD_ENV_VARS
    if any(os.environ.get(k) != env[k] for k in pinned):
        sys.stdout.flush()
        os.execve(sys.executable, [sys.executable] + sys.argv, env)


def main():
    names = [c.name for c in nets.NET_CASES]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("net", choices=names)
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    in_bench_environment(args.threads)
    print("environment:", ", ".join(f"{k}={os.environ[k]}" for k in timing.MALLOC_ENV))
    fastconv.set_num_threads(args.threads)
    case = next(c for c in nets.NET_CASES if c.name == args.net)
    for direction in ("train", "infer"):
        total, parts = profile(case, np.dtype(args.dtype), direction, args.steps)
        print(f"{case.name} {args.dtype} {args.threads} thread(s) {direction}: "
              f"{total * 1e3:.1f} ms CPU per call")
        for (kind, which), t in sorted(parts.items(), key=lambda item: -item[1]):
            print(f"  {kind:28s} {which}  {t * 1e3:8.2f} ms  {100 * t / total:5.1f}%")
        print(f"  {'other':28s}      {(total - sum(parts.values())) * 1e3:8.2f} ms")


if __name__ == "__main__":
    main()
