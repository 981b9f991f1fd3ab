"""Timing primitives, machine limits and the environment record.

Rules every number follows:
  * one warm-up call first (not recorded): it pays one-off costs (lazy
    imports, first-touch of workspace and heap pages, BLAS thread start-up);
  * then `repeats` timed calls, each one call of the op, with the garbage
    collector off; outputs are freed after the clock stops;
  * repeats are chosen per cell from the warm-up time so a cell costs about
    `budget` seconds, but never fewer than `min_repeats` nor more than
    `max_repeats`;
  * the reported figure is the median of the repeats (all are kept).
"""
import ctypes
import ctypes.util
import gc
import math
import os
import platform
import site
import statistics
import sys
import time
from datetime import datetime, timezone

import numpy as np

# Environment of the measuring child process (see cli.py).  Big freed blocks
# stay in the heap instead of going back to the OS, so later calls re-use
# pages that are already mapped: no implementation pays page faults for its
# temporaries after the warm-up (on these VMs touching freshly mapped memory
# is slow, which would otherwise penalise whoever allocates most).
MALLOC_ENV = {
    "MALLOC_MMAP_MAX_": "0",
    "MALLOC_TRIM_THRESHOLD_": str(1 << 40),
    "MALLOC_TOP_PAD_": str(64 << 20),
}
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
# Other variables that change the numbers: recorded (and printed) when set.
OTHER_ENV_VARS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_PROC_BIND", "OMP_PLACES",
                  "OPENBLAS_CORETYPE", "GLIBC_TUNABLES", "MALLOC_ARENA_MAX")

_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_MAX = -1, -2, -4


def worker_env(threads):
    """The environment of a measuring worker process: this one plus the
    pinned thread counts and MALLOC_ENV, with the directory of the fastconv
    being measured first on PYTHONPATH (a source tree: the workers import
    the same one).  Also for scripts that should measure what the bench's
    workers measure (benchmarks/net_profile.py)."""
    import fastconv
    env = dict(os.environ)
    for var in THREAD_ENV_VARS:
        env[var] = str(threads)
    env.update(MALLOC_ENV)
    pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(fastconv.__file__)))
    site_dirs = set(getattr(site, "getsitepackages", lambda: [])())
    site_dirs.add(getattr(site, "getusersitepackages", lambda: "")())
    if pkg_parent not in site_dirs:
        env["PYTHONPATH"] = os.pathsep.join([pkg_parent] + [p for p in env.get(
            "PYTHONPATH", "").split(os.pathsep) if p])
    return env


def configure_malloc():
    """Apply the MALLOC_ENV policy to this running process via glibc's
    mallopt (for in-process runs such as pytest-benchmark).  Returns a
    description of what was done."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return "allocator unchanged (no glibc mallopt on this platform)"
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    ok = (mallopt(_M_MMAP_MAX, 0) == 1 and mallopt(_M_TRIM_THRESHOLD, 2 ** 31 - 1) == 1
          and mallopt(_M_TOP_PAD, 64 << 20) == 1)
    if not ok:
        return "allocator unchanged (mallopt refused)"
    return ("glibc mallopt: M_MMAP_MAX=0, M_TRIM_THRESHOLD=2GiB, M_TOP_PAD=64MiB "
            "(freed memory stays mapped and is reused)")


def repeats_for(first, budget, min_repeats, max_repeats):
    """How many timed calls fit `budget` seconds, given one call took `first`."""
    if first <= 0:
        return max_repeats
    return int(min(max_repeats, max(min_repeats, math.ceil(budget / first))))


def time_calls(fn, arg, budget=0.5, min_repeats=3, max_repeats=100, warmup=1):
    """Seconds of each timed call of fn(arg), after `warmup` untimed calls
    (the last warm-up's duration sets the repeat count)."""
    clock = time.perf_counter
    gc_was_on = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        first = None
        for _ in range(max(warmup, 1)):
            t0 = clock()
            out = fn(arg)
            first = clock() - t0
            del out
        times = []
        for _ in range(repeats_for(first, budget, min_repeats, max_repeats)):
            t0 = clock()
            out = fn(arg)
            times.append(clock() - t0)
            del out
    finally:
        if gc_was_on:
            gc.enable()
    return times


def summarize(times):
    """Median and spread of a list of seconds."""
    q = statistics.quantiles(times, n=4) if len(times) >= 2 else [times[0]] * 3
    return {"median": statistics.median(times), "min": min(times), "max": max(times),
            "q1": q[0], "q3": q[2], "repeats": len(times), "times": list(times)}


def gemm_rate(dtype, n=2048, repeats=7):
    """The machine's GEMM rate for (n x n) @ (n x n), GFLOP/s of the median
    call: the better of NumPy's BLAS (as configured here, e.g. pinned to AVX2
    kernels by OPENBLAS_CORETYPE) and fastconv's own GEMM, so that % limit is
    measured against the fastest product this machine was seen to run."""
    from fastconv.functional._conv import gemm as fastconv_gemm
    rng = np.random.default_rng(1)
    a = rng.standard_normal((n, n), dtype=np.dtype(dtype))
    b = rng.standard_normal((n, n), dtype=np.dtype(dtype))
    c = np.empty((n, n), dtype=dtype)
    rates = {}
    for name, call in (("numpy", lambda _: np.matmul(a, b, out=c)),
                       ("fastconv", lambda _: fastconv_gemm(a, b, c))):
        times = time_calls(call, None, budget=0, min_repeats=repeats, max_repeats=repeats)
        rates[name] = summarize(times)
    best = max(rates, key=lambda k: -rates[k]["median"])
    s = dict(rates[best])
    s.update(n=n, dtype=str(np.dtype(dtype)), source=best,
             gflops=2 * n ** 3 / s["median"] / 1e9, gflops_best=2 * n ** 3 / s["min"] / 1e9,
             **{f"{k}_gflops": 2 * n ** 3 / v["median"] / 1e9 for k, v in rates.items()})
    return s


def copy_bandwidth(nbytes=256 << 20, repeats=5):
    """Measured np.copyto bandwidth in GB/s (bytes read + bytes written)."""
    src = np.ones(nbytes // 8)
    dst = np.zeros_like(src)
    times = time_calls(lambda _: np.copyto(dst, src), None, budget=0,
                       min_repeats=repeats, max_repeats=repeats)
    s = summarize(times)
    s.update(nbytes=nbytes, gbps=2 * nbytes / s["median"] / 1e9)
    return s


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _mem_total_gib():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 2 ** 20, 1)
    except OSError:
        pass
    return None


def _blas():
    info = {}
    try:
        deps = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        info["name"], info["version"] = deps.get("name"), deps.get("version")
    except Exception:  # noqa: BLE001 - only descriptive
        pass
    try:
        from threadpoolctl import threadpool_info
        for lib in threadpool_info():
            if lib.get("user_api") == "blas":
                info.update(runtime=lib.get("internal_api"), threads=lib.get("num_threads"),
                            architecture=lib.get("architecture"))
                break
    except Exception:  # noqa: BLE001 - threadpoolctl is optional
        pass
    return info


def environment(impls):
    """Machine, versions and thread/allocator settings of this process."""
    import fastconv
    from fastconv._config import config
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = None
    env = {
        "date_utc": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
        "cpu": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": affinity,
        "mem_total_gib": _mem_total_gib(),
        "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "blas": _blas(),
        "fastconv": config(),
        "fastconv_threads": fastconv.get_num_threads(),
        "env": {k: os.environ.get(k)
                for k in THREAD_ENV_VARS + tuple(MALLOC_ENV) + OTHER_ENV_VARS},
        "versions": {impl.name: impl.version() for impl in impls},
    }
    if any(impl.name == "torch" for impl in impls):
        import torch
        env["torch_threads"] = torch.get_num_threads()
        env["torch_mkldnn"] = bool(torch.backends.mkldnn.is_available())
    return env
