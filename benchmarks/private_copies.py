"""Copies a training step makes for backward, and its time, with the
containers' private intermediates (fastconv.nn.module, issue 15) against
copying everything (the rule before: no privacy granted).

    PYTHONPATH=src python benchmarks/private_copies.py [--nets mobilenet,vgg]
        [--threads 1] [--rounds 7] [--quick] [--no-time]

Bytes: every array a layer copies to keep for backward (Module._private_copy,
_keep_output, and the second array activation.forward_keeping writes), counted
over one float32 training step (the --nets step: forward, CrossEntropyLoss,
backward, SGD with momentum) after an untimed one.  They do not depend on load.

Time: both variants in this one process, each on its own model and batch, in
interleaved rounds (copies, private, copies, private, ...), after an untimed
step each; the minimum and the median per step.  On a shared machine the ratio
is indicative only.
"""
import argparse
import statistics
import time

import numpy as np

import fastconv
from fastconv import nn
from fastconv.bench import nets
from fastconv.functional import _activation
from fastconv.nn import activation, module

_GRANTING = nn.Module._privacy


def _set_private(on):
    nn.Module._privacy = _GRANTING if on else (lambda self, x: (False, False))


class _CopyCounter:
    """Counts the bytes of the copies kept for backward while installed."""

    def __init__(self):
        self.bytes = 0
        self._fresh_copy, self._keeping = module.fresh_copy, _activation.forward_keeping

    def _counted_copy(self, x):
        self.bytes += np.asarray(x).nbytes
        return self._fresh_copy(x)

    def _counted_keeping(self, op, x, **kwargs):
        y, saved = self._keeping(op, x, **kwargs)
        self.bytes += saved.nbytes
        return y, saved

    def __enter__(self):
        module.fresh_copy = activation.fresh_copy = self._counted_copy
        _activation.forward_keeping = self._counted_keeping
        return self

    def __exit__(self, *exc):
        module.fresh_copy = activation.fresh_copy = self._fresh_copy
        _activation.forward_keeping = self._keeping


def _state(case):
    return nets.fastconv_state(case.make_inputs(np.float32, "train"))


def copied_bytes(case, private):
    """Bytes copied for backward in one training step of `case`."""
    _set_private(private)
    step, state = nets.fastconv_pass("train"), _state(case)
    step(state)
    with _CopyCounter() as counter:
        step(state)
    return counter.bytes


def step_times(case, rounds):
    """{private: [seconds per step]} from interleaved rounds."""
    step = nets.fastconv_pass("train")
    states = {private: _state(case) for private in (False, True)}
    times = {False: [], True: []}
    for private in (False, True):
        _set_private(private)
        step(states[private])
    for _ in range(rounds):
        for private in (False, True):
            _set_private(private)
            start = time.perf_counter()
            step(states[private])
            times[private].append(time.perf_counter() - start)
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", default=None, help="comma-separated case names")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="the --quick shapes")
    parser.add_argument("--no-time", action="store_true", help="bytes only")
    args = parser.parse_args()
    fastconv.set_num_threads(args.threads)
    cases = nets.QUICK_NET_CASES if args.quick else nets.NET_CASES
    if args.nets:
        wanted = args.nets.split(",")
        cases = [c for c in cases if c.name in wanted]
    mib = 2.0 ** 20
    for case in cases:
        before, after = copied_bytes(case, False), copied_bytes(case, True)
        line = (f"{case.name}: copied for backward per step {before / mib:.2f} MiB -> "
                f"{after / mib:.2f} MiB")
        if not args.no_time:
            times = step_times(case, args.rounds)
            line += "; step min {:.0f} -> {:.0f} ms, median {:.0f} -> {:.0f} ms".format(
                *(1e3 * f(times[p]) for f in (min, statistics.median) for p in (False, True)))
        print(line, flush=True)
    _set_private(True)


if __name__ == "__main__":
    main()
