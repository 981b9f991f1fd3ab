"""A benchmark network's convolutions pass by pass, against torch and
against fastconv's other algorithms.

`python -m fastconv.bench --nets` times a network (`--net resnet`: batch 32,
3x32x32 images, widths 16/32/64; `--net mobilenet`: batch 64, 3x64x64, a 3x3
stem and depthwise-separable blocks) as a whole; this script takes every
distinct convolution of the network (its shapes read from one forward of
the `fastconv.bench.nets` model: the stem, the 3x3, depthwise 3x3 and 1x1
convs with their strides) and splits it into its three passes (forward,
data gradient, weight gradient).  For each pass it times the algorithm
fastconv's plan chooses, every other algorithm of fastconv that can compute
the pass (forced through `_plan.plan_conv(..., algorithm=...)`; for the data
gradient as a flipped conv, each forward algorithm that conv can run), and
torch 2.x's (`F.conv2d`, and `aten.convolution_backward` with an output mask
giving one gradient at a time).  The network's first conv needs no data
gradient (its images need none): its row is marked "(net skips)".

All variants run in ONE process, in interleaved rounds (the order rotated
each round), so load that comes and goes hits them alike; each round times a
few calls of each variant after a warm-up call and keeps the fastest, and
the table shows the median over the rounds as a ratio: torch time / variant
time (above 1: faster than torch) and plan time / variant time (above 1: the
forced algorithm beats the plan's choice); `min ms` is the fastest round's
time (at 2 threads on a loaded machine the medians can hold a scheduler
tick, a thread of the team waiting for its core: compare the minima then).

    PYTHONPATH=src python benchmarks/net_convs.py --net resnet --threads 1,2 --rounds 9
    PYTHONPATH=src python benchmarks/net_convs.py --net mobilenet --threads 1 --plan-only

On a loaded machine the numbers are indicative only; rerun on a quiet one.
"""
import argparse
import dataclasses
import os
import statistics
import time
from typing import NamedTuple, Tuple

import numpy as np

import fastconv
from fastconv import nn
from fastconv.bench import nets
from fastconv.bench.timing import configure_malloc
from fastconv.functional import _conv, _plan

# Every algorithm of a pass but the empty sum (which computes only convs
# with nothing to sum); those that cannot compute a conv are left out of its
# rows by plan_conv's own check.
FORCED = {computes: tuple(a for a in algorithms if a != _plan.EMPTY_SUM)
          for computes, algorithms in _plan.ALGORITHMS.items()}


class ConvShape(NamedTuple):
    """One distinct convolution of a network."""
    name: str
    x: Tuple[int, ...]
    w: Tuple[int, ...]
    stride: int
    padding: int
    groups: int
    first: bool          # the network's first conv: its data gradient is never asked for


def conv_name(x, w, stride, groups, first):
    """A short, greppable name: 'stem 3->32 64x64', 'dw3x3 64 32x32 /2',
    '1x1 64->128 16x16', '3x3 16->32 32x32 /2'."""
    size = f"{x[2]}x{x[3]}" + (f" /{stride}" if stride != 1 else "")
    if first:
        return f"stem {x[1]}->{w[0]} {size}"
    if groups > 1 and groups == x[1]:
        return f"dw{w[2]}x{w[3]} {x[1]} {size}"
    return f"{w[2]}x{w[3]} {x[1]}->{w[0]} {size}"


def net_conv_shapes(net_name):
    """The distinct Conv2d calls of one eval forward of the benchmark net
    `net_name`, in the order the net runs them."""
    case = next(c for c in nets.NET_CASES if c.name == net_name)
    inputs = case.make_inputs(np.float32, "infer")
    seen = []
    forward = nn.Conv2d.forward

    def recording(layer, x, *args, **kwargs):
        stride, padding = (v[0] if isinstance(v, tuple) else v
                           for v in (layer.stride, layer.padding))
        key = (tuple(x.shape), tuple(layer.weight.shape), stride, padding, layer.groups)
        if key not in [s[:5] for s in seen]:
            seen.append(key + (not seen,))
        return forward(layer, x, *args, **kwargs)
    nn.Conv2d.forward = recording
    try:
        model = inputs["model"]
        model.train(False)
        with nn.no_grad():
            model(inputs["x"])
    finally:
        nn.Conv2d.forward = forward
    return [ConvShape(conv_name(x, w, s, g, first), x, w, s, p, g, first)
            for x, w, s, p, g, first in seen]


def forced_plan(computes, x, w, win, groups, algorithm):
    """plan_conv's plan of `computes` forced to `algorithm`, or None where it
    cannot run."""
    try:
        return _plan.plan_conv(computes, x.shape[0], x.shape[1], w.shape[0], win, groups,
                               x.dtype, algorithm=algorithm)
    except ValueError:
        return None


def flipped_via(x, w, win, groups, algorithm):
    """The data gradient as a flipped conv whose forward runs `algorithm`
    (or None where either cannot run)."""
    flipped = _plan.data_grad_window(win)
    plan = forced_plan(_plan.GRAD_INPUT, x, w, win, groups, _plan.FLIPPED_CONV)
    if plan is None or flipped is None:
        return None
    try:
        via = _plan.plan_conv(_plan.OUTPUT, x.shape[0], w.shape[0], x.shape[1], flipped,
                              groups, x.dtype, algorithm=algorithm)
    except ValueError:
        return None
    return dataclasses.replace(plan, via=via, workspace=via.workspace, chunk=via.chunk)


def label(plan):
    via = f" via {plan.via.algorithm}" if plan.via is not None else ""
    return f"{plan.algorithm}{via}"


def variants(x, w, g, win, conv, torch_arrays, plan_only):
    """{pass: [(label, zero-argument callable)]}: the plan's choice first,
    then (unless plan_only) every forced fastconv algorithm, then torch."""
    groups, shape = conv.groups, x.shape
    sizes = (x.shape[0], x.shape[1], w.shape[0], win, groups, x.dtype)
    chosen = {computes: _plan.plan_conv(computes, *sizes, operands=ops) for computes, ops in
              ((_plan.OUTPUT, (x, w)), (_plan.GRAD_INPUT, (g, w)), (_plan.GRAD_WEIGHT, (x, g)))}
    run = {_plan.OUTPUT: lambda plan: lambda: _conv.conv_forward(x, w, None, win, groups,
                                                                   plan=plan),
           _plan.GRAD_INPUT: lambda plan: lambda: _conv.conv_grad_input(g, w, win, groups,
                                                                         shape, plan=plan),
           _plan.GRAD_WEIGHT: lambda plan: lambda: _conv.conv_grad_weight(x, g, w, win, groups,
                                                                           plan=plan)}
    names = {_plan.OUTPUT: "fwd", _plan.GRAD_INPUT: "dgrad", _plan.GRAD_WEIGHT: "wgrad"}
    out = {}
    for computes, plan in chosen.items():
        out[names[computes]] = calls = [("plan: " + label(plan), run[computes](plan))]
        if plan_only:
            continue
        forced = [forced_plan(computes, x, w, win, groups, a) for a in FORCED[computes]
                  if a != _plan.FLIPPED_CONV]
        if computes == _plan.GRAD_INPUT:
            forced += [flipped_via(x, w, win, groups, a) for a in FORCED[_plan.OUTPUT]]
        for other in forced:
            if other is not None and label(other) not in [c[0].replace("plan: ", "")
                                                           for c in calls]:
                calls.append((label(other), run[computes](other)))
    if conv.first:
        out["dgrad (net skips)"] = out.pop("dgrad")
    if torch_arrays is not None:
        import torch
        tx, tw, tg = torch_arrays
        backward = torch.ops.aten.convolution_backward
        stride, padding = [conv.stride] * 2, [conv.padding] * 2

        def torch_grad(mask):
            return lambda: backward(tg, tx, tw, None, stride, padding, [1, 1], False,
                                    [0, 0], groups, mask)
        out["fwd"].append(("torch", lambda: torch.nn.functional.conv2d(
            tx, tw, None, stride, padding, 1, groups)))
        next(v for k, v in out.items() if k.startswith("dgrad")).append(
            ("torch", torch_grad([True, False, False])))
        out["wgrad"].append(("torch", torch_grad([False, True, False])))
    return out
def check_variants(calls, want):
    """Every variant of a pass computes the same result (else a forced plan
    would be timed on a wrong answer)."""
    for name, call in calls:
        got = call()
        if isinstance(got, tuple):      # torch's backward: the one gradient asked for
            got = next(a for a in got if a is not None)
        got = got.numpy() if hasattr(got, "numpy") else got
        scale = float(np.abs(want).max()) or 1.0
        err = float(np.abs(got.reshape(want.shape) - want).max()) / scale
        if err > (1e-3 if want.dtype == np.float32 else 1e-9):
            raise AssertionError(f"{name}: relative error {err:.2e} against the plan's result")


def time_rounds(calls, rounds, calls_per_round):
    """{label: [fastest of each round]}: the variants interleaved, the order
    rotated every round."""
    times = {name: [] for name, _ in calls}
    for r in range(rounds):
        k = r % len(calls)
        for name, call in calls[k:] + calls[:k]:
            call()                      # warm-up: workspace, caches
            best = float("inf")
            for _ in range(calls_per_round):
                t0 = time.perf_counter()
                call()
                best = min(best, time.perf_counter() - t0)
            times[name].append(best)
    return times


def run(threads, dtype, rounds, calls_per_round, shapes, with_torch, plan_only):
    fastconv.set_num_threads(threads)
    torch = None
    if with_torch:
        import torch
        torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    print(f"\n## {threads} thread(s), {np.dtype(dtype).name}: median over {rounds} rounds "
          f"of the fastest of {calls_per_round} calls")
    print(f"{'conv':22s} {'pass':17s} {'variant':45s} {'ms':>8s} {'torch/it':>9s} "
          f"{'plan/it':>8s} {'min ms':>8s}")
    for conv in shapes:
        x = rng.standard_normal(conv.x).astype(dtype)
        w = rng.standard_normal(conv.w).astype(dtype)
        x, w, _, _, win, _ = _conv.parse_conv_args("conv2d", 2, x, w, None, conv.stride,
                                                   conv.padding, 1, conv.groups)
        y = fastconv.conv2d(x, w, stride=conv.stride, padding=conv.padding, groups=conv.groups)
        g = rng.standard_normal(y.shape).astype(dtype)
        torch_arrays = None
        if torch is not None:
            torch_arrays = tuple(torch.from_numpy(a) for a in (x, w, g))
        for direction, calls in variants(x, w, g, win, conv, torch_arrays, plan_only).items():
            check_variants(calls, calls[0][1]())
            times = time_rounds(calls, rounds, calls_per_round)
            medians = {k: statistics.median(v) for k, v in times.items()}
            plan_time = medians[calls[0][0]]
            torch_time = medians.get("torch")
            for name, t in medians.items():
                vs_torch = f"{torch_time / t:9.2f}" if torch_time else f"{'-':>9s}"
                print(f"{conv.name:22s} {direction:17s} {name:45s} {t * 1e3:8.3f} {vs_torch} "
                      f"{plan_time / t:8.2f} {min(times[name]) * 1e3:8.3f}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--net", default="resnet", choices=[c.name for c in nets.NET_CASES])
    parser.add_argument("--threads", default="1,2", help="thread counts, e.g. 1,2")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64", "both"))
    parser.add_argument("--rounds", type=int, default=9, help="interleaved rounds (>= 7)")
    parser.add_argument("--calls", type=int, default=3, help="timed calls per variant and round")
    parser.add_argument("--shapes", default="", help="substrings of the conv names to run")
    parser.add_argument("--plan-only", action="store_true",
                        help="time the plan's algorithm and torch only, no forced ones")
    parser.add_argument("--no-torch", action="store_true")
    args = parser.parse_args()
    print(configure_malloc())
    print("load average at start:", os.getloadavg())
    shapes = [s for s in net_conv_shapes(args.net) if not args.shapes
              or any(p in s.name for p in args.shapes.split(","))]
    dtypes = ("float32", "float64") if args.dtype == "both" else (args.dtype,)
    for threads in (int(t) for t in args.threads.split(",")):
        for dtype in dtypes:
            run(threads, dtype, args.rounds, args.calls, shapes, not args.no_torch,
                args.plan_only)


if __name__ == "__main__":
    main()
