"""The benchmark ResNet's 3x3 convolutions, pass by pass, against torch and
against fastconv's other algorithms.

`python -m fastconv.bench --nets` times the ResNet (`resnet`: batch 32,
3x32x32 images, widths 16/32/64) as a whole; this script splits its 3x3
convolutions into their three passes (forward, data gradient, weight
gradient) and times, for each, the algorithm fastconv's plan chooses, every
other algorithm of fastconv that can compute the pass (forced through
`_plan.plan_conv(..., algorithm=...)`; for the data gradient as a flipped
conv, each forward algorithm that conv can run), and torch 2.x's
(`F.conv2d`, and `aten.convolution_backward` with an output mask giving one
gradient at a time).

All variants run in ONE process, in interleaved rounds (the order rotated
each round), so load that comes and goes hits them alike; each round times a
few calls of each variant after a warm-up call and keeps the fastest, and
the table shows the median over the rounds as a ratio: torch time / variant
time (above 1: faster than torch) and plan time / variant time (above 1: the
forced algorithm beats the plan's choice); `min ms` is the fastest round's
time (at 2 threads on a loaded machine the medians can hold a scheduler
tick, a thread of the team waiting for its core: compare the minima then).

    PYTHONPATH=src python benchmarks/resnet_convs.py --threads 1,2 --rounds 9

On a loaded machine the numbers are indicative only; rerun on a quiet one.
"""
import argparse
import dataclasses
import os
import statistics
import time

import numpy as np

import fastconv
from fastconv.bench.timing import configure_malloc
from fastconv.functional import _conv, _plan

# (name, input shape, weight shape, stride): the ResNet's 3x3 convs at batch 32
# (padding 1); the stem's 3-channel conv for completeness.
SHAPES = [
    ("stem 3->16 32x32", (32, 3, 32, 32), (16, 3, 3, 3), 1),
    ("16->16 32x32", (32, 16, 32, 32), (16, 16, 3, 3), 1),
    ("32->32 16x16", (32, 32, 16, 16), (32, 32, 3, 3), 1),
    ("64->64 8x8", (32, 64, 8, 8), (64, 64, 3, 3), 1),
    ("16->32 /2", (32, 16, 32, 32), (32, 16, 3, 3), 2),
    ("32->64 /2", (32, 32, 16, 16), (64, 32, 3, 3), 2),
]

# The algorithms that compute a pass of an ungrouped dense conv (the others
# are for grouped/depthwise convs, empty sums or the compositions).
OUTPUT_ALGORITHMS = (_plan.WINOGRAD_F2X2_3X3, _plan.GEMM_PER_IMAGE, _plan.GEMM_SIDE_BY_SIDE)
GRAD_WEIGHT_ALGORITHMS = (_plan.WINOGRAD_F2X2_3X3, _plan.WEIGHT_GRAD_GEMM)


def forced_plan(computes, x, w, win, algorithm):
    """plan_conv's plan of `computes` forced to `algorithm`, or None where it
    cannot run."""
    try:
        return _plan.plan_conv(computes, x.shape[0], x.shape[1], w.shape[0], win, 1, x.dtype,
                               algorithm=algorithm)
    except ValueError:
        return None


def flipped_via(x, w, win, algorithm):
    """The data gradient as a flipped conv whose forward runs `algorithm`
    (or None where either cannot run)."""
    flipped = _plan.data_grad_window(win)
    plan = forced_plan(_plan.GRAD_INPUT, x, w, win, _plan.FLIPPED_CONV)
    if plan is None or flipped is None:
        return None
    try:
        via = _plan.plan_conv(_plan.OUTPUT, x.shape[0], w.shape[0], x.shape[1], flipped, 1,
                              x.dtype, algorithm=algorithm)
    except ValueError:
        return None
    return dataclasses.replace(plan, via=via, workspace=via.workspace, chunk=via.chunk)


def variants(x, w, g, win, stride, torch_arrays):
    """{pass: [(label, zero-argument callable)]}: the plan's choice first,
    then every forced fastconv algorithm, then torch."""
    shape = x.shape
    sizes = (x.shape[0], x.shape[1], w.shape[0], win, 1, x.dtype)
    chosen = {computes: _plan.plan_conv(computes, *sizes, operands=ops) for computes, ops in
              ((_plan.OUTPUT, (x, w)), (_plan.GRAD_INPUT, (g, w)), (_plan.GRAD_WEIGHT, (x, g)))}

    def fwd(plan):
        return lambda: _conv.conv_forward(x, w, None, win, 1, plan=plan)

    def dgrad(plan):
        return lambda: _conv.conv_grad_input(g, w, win, 1, shape, plan=plan)

    def wgrad(plan):
        return lambda: _conv.conv_grad_weight(x, g, w, win, 1, plan=plan)

    def label(plan):
        via = f" via {plan.via.algorithm}" if plan.via is not None else ""
        return f"{plan.algorithm}{via}"

    out = {"fwd": [("plan: " + label(chosen[_plan.OUTPUT]), fwd(chosen[_plan.OUTPUT]))],
           "dgrad": [("plan: " + label(chosen[_plan.GRAD_INPUT]),
                      dgrad(chosen[_plan.GRAD_INPUT]))],
           "wgrad": [("plan: " + label(chosen[_plan.GRAD_WEIGHT]),
                      wgrad(chosen[_plan.GRAD_WEIGHT]))]}
    for algorithm in OUTPUT_ALGORITHMS:
        plan = forced_plan(_plan.OUTPUT, x, w, win, algorithm)
        if plan is not None and label(plan) != label(chosen[_plan.OUTPUT]):
            out["fwd"].append((label(plan), fwd(plan)))
        plan = flipped_via(x, w, win, algorithm)
        if plan is not None and label(plan) != label(chosen[_plan.GRAD_INPUT]):
            out["dgrad"].append((label(plan), dgrad(plan)))
    plan = forced_plan(_plan.GRAD_INPUT, x, w, win, _plan.GEMM_COL2IM)
    if plan is not None and label(plan) != label(chosen[_plan.GRAD_INPUT]):
        out["dgrad"].append((label(plan), dgrad(plan)))
    for algorithm in GRAD_WEIGHT_ALGORITHMS:
        plan = forced_plan(_plan.GRAD_WEIGHT, x, w, win, algorithm)
        if plan is not None and label(plan) != label(chosen[_plan.GRAD_WEIGHT]):
            out["wgrad"].append((label(plan), wgrad(plan)))
    if torch_arrays is not None:
        import torch
        tx, tw, tg = torch_arrays
        backward = torch.ops.aten.convolution_backward

        def torch_grad(mask):
            return lambda: backward(tg, tx, tw, None, [stride] * 2, [1, 1], [1, 1], False,
                                    [0, 0], 1, mask)
        out["fwd"].append(("torch", lambda: torch.nn.functional.conv2d(
            tx, tw, None, stride, 1)))
        out["dgrad"].append(("torch", torch_grad([True, False, False])))
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


def run(threads, dtype, rounds, calls_per_round, shapes, with_torch):
    fastconv.set_num_threads(threads)
    torch = None
    if with_torch:
        import torch
        torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    print(f"\n## {threads} thread(s), {np.dtype(dtype).name}: median over {rounds} rounds "
          f"of the fastest of {calls_per_round} calls")
    print(f"{'shape':18s} {'pass':6s} {'variant':45s} {'ms':>8s} {'torch/it':>9s} "
          f"{'plan/it':>8s} {'min ms':>8s}")
    for name, xs, ws, stride in shapes:
        x = rng.standard_normal(xs).astype(dtype)
        w = rng.standard_normal(ws).astype(dtype)
        x, w, _, _, win, _ = _conv.parse_conv_args("conv2d", 2, x, w, None, stride, 1, 1, 1)
        y = fastconv.conv2d(x, w, stride=stride, padding=1)
        g = rng.standard_normal(y.shape).astype(dtype)
        torch_arrays = None
        if torch is not None:
            torch_arrays = tuple(torch.from_numpy(a) for a in (x, w, g))
        for direction, calls in variants(x, w, g, win, stride, torch_arrays).items():
            check_variants(calls, calls[0][1]())
            times = time_rounds(calls, rounds, calls_per_round)
            medians = {k: statistics.median(v) for k, v in times.items()}
            plan_time = medians[calls[0][0]]
            torch_time = medians.get("torch")
            for label, t in medians.items():
                vs_torch = f"{torch_time / t:9.2f}" if torch_time else f"{'-':>9s}"
                print(f"{name:18s} {direction:6s} {label:45s} {t * 1e3:8.3f} {vs_torch} "
                      f"{plan_time / t:8.2f} {min(times[label]) * 1e3:8.3f}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,2", help="thread counts, e.g. 1,2")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64", "both"))
    parser.add_argument("--rounds", type=int, default=9, help="interleaved rounds (>= 7)")
    parser.add_argument("--calls", type=int, default=3, help="timed calls per variant and round")
    parser.add_argument("--shapes", default="", help="substrings of the shape names to run")
    parser.add_argument("--no-torch", action="store_true")
    args = parser.parse_args()
    print(configure_malloc())
    print("load average at start:", os.getloadavg())
    shapes = [s for s in SHAPES if not args.shapes
              or any(p in s[0] for p in args.shapes.split(","))]
    dtypes = ("float32", "float64") if args.dtype == "both" else (args.dtype,)
    for threads in (int(t) for t in args.threads.split(",")):
        for dtype in dtypes:
            run(threads, dtype, args.rounds, args.calls, shapes, not args.no_torch)


if __name__ == "__main__":
    main()
