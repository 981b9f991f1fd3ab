"""The measuring process of one implementation.

The coordinator (runner.py) starts one worker process per implementation and
thread count, so each library runs under its own runtime defaults: a worker
imports its implementation's `preload` modules before anything else (torch's
OpenMP runtime then starts with torch's own wait policy, fastconv's with
fastconv's), and its environment pins the thread counts and the allocator
policy from the first instruction on.  The coordinator asks one worker at a
time, so the implementations of a cell take turns and never compete for the
cores.

Protocol: one JSON object per line, commands on the worker's stdin, replies
on the file descriptor given on its command line (stdout belongs to the
libraries; the worker sends it to stderr).  The same `Worker` object also
runs inside the coordinator's process for ``--in-process``.
"""
import ctypes
import importlib
import json
import os
import signal
import sys
import time

import numpy as np

from . import cases as case_table
from . import impls as impl_table
from . import timing

# Tolerances of the result check made before timing (relative to the size of
# the result): float32 convolutions sum thousands of products, and Winograd
# rounds differently from the direct sum.
CHECK_RTOL = {"float32": 1e-3, "float64": 1e-9}


def fingerprint(arrays):
    """A compact, layout-independent summary of result arrays, compared across
    implementations (see `same_result`): shape, 2-norm and a projection on a
    fixed pseudo-random vector per array."""
    out = []
    for a in arrays:
        a = np.ascontiguousarray(a)
        r = np.random.default_rng(a.size).uniform(-1, 1, a.size)
        flat = a.reshape(-1).astype(np.float64)
        out.append({"shape": list(a.shape), "integer": a.dtype.kind in "iu",
                    "norm": float(np.linalg.norm(flat)), "projection": float(flat @ r),
                    "rms_r": float(np.sqrt(np.mean(r * r))) if a.size else 0.0})
    return out


def same_result(got, want, dtype):
    """None when fingerprint `got` matches `want`, else what differs.  A wrong
    result changes the projection by about its own size; a rounding
    difference of relative size rtol by about rtol of it, so the bound
    (10 rtol) tells them apart."""
    if len(got) != len(want):
        return f"{len(got)} result arrays, expected {len(want)}"
    rtol = CHECK_RTOL[dtype]
    for k, (g, w) in enumerate(zip(got, want)):
        if g["shape"] != w["shape"]:
            return f"result {k} has shape {tuple(g['shape'])}, expected {tuple(w['shape'])}"
        tol = 0 if w["integer"] and g["integer"] else 10 * rtol * w["norm"]
        if abs(g["norm"] - w["norm"]) > tol or \
                abs(g["projection"] - w["projection"]) > tol * max(w["rms_r"], 1e-300):
            return (f"result {k} differs (norm {g['norm']:.6g} vs {w['norm']:.6g}, "
                    f"projection {g['projection']:.6g} vs {w['projection']:.6g})")
    return None


class Worker:
    """Holds one implementation and the inputs of the current (case, dtype)."""

    def __init__(self, impl_name):
        self.impl = impl_table.get(impl_name)
        self.case = self.inputs = None

    def handle(self, cmd, **kw):
        return getattr(self, "do_" + cmd)(**kw)

    def do_setup(self, threads):
        note = self.impl.set_threads(threads)
        env = timing.environment([self.impl])
        return {"environment": env, "thread_note": note, "version": self.impl.version(),
                "omp_wait_policy": _wait_policy(self.impl)}

    def do_limits(self, dtypes, gemm_n, copy_bytes):
        return {"gemm": {d: timing.gemm_rate(d, n=gemm_n) for d in dtypes},
                "copy": timing.copy_bandwidth(copy_bytes)}

    def do_prepare(self, case, dtype, directions, seed):
        """Build this cell's inputs (the same arrays in every worker: same
        seed), convert them to the library's layout, and run each direction
        once, untimed, returning the results' fingerprints (or an error)."""
        self.case = {c.name: c for c in case_table.ALL_CASES}[case]
        self.inputs = None
        raw = self.case.make_inputs(dtype, "fwd+bwd" if "fwd+bwd" in directions else "fwd",
                                    seed=seed)
        self.inputs = self.impl.convert(raw)
        del raw
        out = {}
        for direction in directions:
            reason = impl_table.why_not_run(self.impl, self.case, direction, dtype)
            if reason:
                out[direction] = {"unsupported": reason}
                continue
            try:
                result = self.impl.call(self.case, direction)(self.inputs)
                arrays = (self.impl.outputs(self.case, direction, result)
                          if hasattr(self.impl, "outputs") else impl_table.to_numpy(result))
                out[direction] = {"fingerprint": fingerprint(self.case.compared(arrays))}
            except Exception as exc:  # noqa: BLE001 - reported in the table
                out[direction] = {"error": f"{type(exc).__name__}: {exc}"}
            result = None
        return out

    def do_time(self, direction, budget, min_repeats, max_repeats, pause):
        time.sleep(pause)
        try:
            fn = self.impl.call(self.case, direction)
            return {"times": timing.time_calls(fn, self.inputs, budget=budget,
                                               min_repeats=min_repeats,
                                               max_repeats=max_repeats)}
        except Exception as exc:  # noqa: BLE001 - reported in the table
            return {"error": f"{type(exc).__name__}: {exc}"}

    def do_release(self):
        self.case = self.inputs = None
        return {}


def _wait_policy(impl):
    """How this process's OpenMP runtime waits: the user's OMP_WAIT_POLICY
    or GOMP_SPINCOUNT, else the default of whoever loaded the runtime first."""
    value = ", ".join(f"{k}={os.environ[k]}" for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
                      if os.environ.get(k))
    if value:
        return f"{value} (set by the user)"
    if impl.preload:
        return f"OpenMP runtime default ({', '.join(impl.preload)} loaded it first)"
    from fastconv import _threads
    return _threads.wait_policy_at_load


def _die_with_parent():
    """Linux: the kernel kills this process when the coordinator dies, even
    by SIGKILL, so a measuring process is never left behind."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def main(argv):
    """`python -c ... IMPL FD`: serve commands from stdin, replies on FD."""
    impl_name, fd = argv[0], int(argv[1])
    _die_with_parent()
    if os.getppid() == 1:
        return 1
    replies = os.fdopen(fd, "w", buffering=1)
    impl_table.in_own_process = True
    worker = Worker(impl_name)
    try:
        for line in sys.stdin:
            msg = json.loads(line)
            if msg["cmd"] == "exit":
                break
            try:
                reply = {"ok": worker.handle(msg["cmd"], **msg.get("args", {}))}
            except Exception as exc:  # noqa: BLE001 - the coordinator reports it
                reply = {"failed": f"{type(exc).__name__}: {exc}"}
            replies.write(json.dumps(reply) + "\n")
    except (KeyboardInterrupt, BrokenPipeError):
        return 1
    return 0


# Run by the coordinator as `python -c LAUNCHER PRELOAD IMPL FD`: the preload
# modules are imported before fastconv (which `-m fastconv.bench...` would
# import first, as the package of the module).
LAUNCHER = ("import importlib, sys\n"
            "for m in filter(None, sys.argv[1].split(',')): importlib.import_module(m)\n"
            "from fastconv.bench.worker import main\n"
            "sys.exit(main(sys.argv[2:]))")
