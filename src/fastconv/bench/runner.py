"""Measure a set of cells in this process and return the raw results.

A cell is (case, direction, dtype); every implementation runs it on the same
inputs (built once per case and dtype, outside the timed region), in
`rounds` interleaved rounds (A B C, B C A, C A B, ...), so background load
that comes and goes over seconds hits all implementations of a cell alike.
"""
import os
import sys
import time

import numpy as np

from . import timing


class Progress:
    """One line per measurement on stderr; a single updating line on a TTY."""

    def __init__(self, total, stream=None):
        self.total, self.done = total, 0
        self.stream = stream or sys.stderr
        self.tty = getattr(self.stream, "isatty", lambda: False)()
        self.width = 0

    def __call__(self, text):
        self.done += 1
        line = f"[{self.done:>3}/{self.total}] {text}"
        if self.tty:
            pad = max(0, self.width - len(line))
            self.width = len(line)
            self.stream.write("\r" + line + " " * pad)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def note(self, text):
        if self.tty and self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.width = 0
        self.stream.write(text + "\n")
        self.stream.flush()

    def close(self):
        if self.tty and self.width:
            self.stream.write("\n")
            self.stream.flush()


def format_seconds(t):
    if t is None:
        return "-"
    if t >= 1:
        return f"{t:.3g} s"
    if t >= 1e-3:
        return f"{t * 1e3:.3g} ms"
    return f"{t * 1e6:.3g} us"


def _limits(dtypes, gemm_n, copy_bytes, report, when):
    gemm = {}
    for dtype in dtypes:
        gemm[dtype] = timing.gemm_rate(dtype, n=gemm_n)
        report(f"GEMM {gemm_n}^3 {dtype} ({when}): {gemm[dtype]['gflops']:.1f} GFLOP/s")
    copy = timing.copy_bandwidth(copy_bytes)
    report(f"memory copy {copy_bytes >> 20} MiB ({when}): {copy['gbps']:.1f} GB/s")
    return gemm, copy


def _best(first, last, key):
    """The better of two limit measurements (the machine can do at least that)."""
    best = dict(max(first, last, key=lambda m: m[key]))
    best["measurements"] = [first[key], last[key]]
    return best


def _time_cell(impls, case, direction, converted, budget, min_repeats, max_repeats, pause,
               rounds):
    """Times (or an error text) of each implementation on one cell: `rounds`
    rounds, each giving every implementation a 1/rounds share of the budget
    and repeats (one warm-up call first, after `pause` idle seconds), in an
    order rotated by one per round."""
    times = {impl.name: [] for impl in impls}
    errors = {}
    for r in range(rounds):
        for i in range(len(impls)):
            impl = impls[(i + r) % len(impls)]
            if impl.name in errors:
                continue
            time.sleep(pause)
            try:
                fn = impl.call(case, direction)
                per_round = -(-min_repeats // rounds)   # at least min_repeats in all
                times[impl.name] += timing.time_calls(
                    fn, converted[impl.name], budget=budget / rounds, min_repeats=per_round,
                    max_repeats=max(per_round, max_repeats // rounds))
            except Exception as exc:  # noqa: BLE001 - recorded, shown in the table
                errors[impl.name] = f"{type(exc).__name__}: {exc}"
    return times, errors


def measure(cases, dtypes, directions, impls, threads, budget=0.5, min_repeats=3,
            max_repeats=100, gemm_n=2048, copy_bytes=256 << 20, seed=0, pause=0.15,
            progress=True, process_note="", rounds=3):
    """Run every cell; returns the run record (see README "Benchmarks").

    The machine limits (GEMM rate per dtype, copy bandwidth) are measured
    before and after the cells; the better of the two is the limit, so a
    burst of background load during one of them does not inflate % limit.
    `pause` seconds of idle time precede every measurement, so worker threads
    still spinning after the previous implementation's call (OpenBLAS spins
    ~0.1 s) have gone to sleep and do not compete with the next one.  Each
    cell's implementations take turns over `rounds` rounds (see _time_cell).
    """
    thread_notes = [note for note in (impl.set_threads(threads) for impl in impls) if note]
    steps = 2 * (len(dtypes) + 1) + len(cases) * len(dtypes) * len(directions) * len(impls)
    report = Progress(steps) if progress else (lambda text: None)
    load_start = list(os.getloadavg()) if hasattr(os, "getloadavg") else None

    gemm_first, copy_first = _limits(dtypes, gemm_n, copy_bytes, report, "start")
    results = []
    for dtype in dtypes:
        for case in cases:
            inputs = case.make_inputs(dtype, "fwd+bwd" if "fwd+bwd" in directions else "fwd",
                                      seed=seed)
            converted = {impl.name: impl.convert(inputs) for impl in impls}
            for direction in directions:
                cell = {"case": case.name, "op": case.op, "layer": case.describe(),
                        "direction": direction, "dtype": dtype,
                        "flops": case.flops(direction),
                        "bytes": case.bytes_moved(direction, np.dtype(dtype).itemsize),
                        "impls": {}}
                times, errors = _time_cell(impls, case, direction, converted, budget,
                                           min_repeats, max_repeats, pause, rounds)
                for impl in impls:
                    label = f"{case.name} {direction} {dtype} {impl.name}"
                    if impl.name in errors:
                        cell["impls"][impl.name] = {"error": errors[impl.name]}
                        report(f"{label}: ERROR {errors[impl.name]}")
                        continue
                    stats = timing.summarize(times[impl.name])
                    cell["impls"][impl.name] = stats
                    report(f"{label}: {format_seconds(stats['median'])} "
                           f"(median of {stats['repeats']})")
                results.append(cell)
            del inputs, converted
    gemm_last, copy_last = _limits(dtypes, gemm_n, copy_bytes, report, "end")
    if progress:
        report.close()
    env = timing.environment(impls)
    env["loadavg_start"] = load_start
    gemm = {d: _best(gemm_first[d], gemm_last[d], "gflops") for d in dtypes}
    return {"threads": threads, "environment": env, "process": process_note,
            "thread_notes": sorted(set(thread_notes)),
            "settings": {"budget_s": budget, "min_repeats": min_repeats,
                         "max_repeats": max_repeats, "warmup_calls": 1, "pause_s": pause,
                         "rounds": rounds, "seed": seed},
            "impls": [impl.name for impl in impls],
            "gemm": gemm, "copy": _best(copy_first, copy_last, "gbps"), "results": results}
