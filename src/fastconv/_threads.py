"""Thread count for every compiled op: one place.

The default honours OMP_NUM_THREADS, else uses every core this process may run
on.  fastconv's ops do all their heavy work in their own kernels (including
the GEMM), so this leaves NumPy's BLAS threads, which only the user's own code
uses, alone.
"""
import os
import threading

# OpenMP workers that spin after a parallel region steal the core from the
# Python thread that runs the rest of a training step on a busy machine.
# Sleep instead, unless the user chose.  libgomp reads this once, when
# fastconv._kernels loads it, so this module is imported before that.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

_lock = threading.Lock()

# Upper bound on the thread count.  libgomp segfaults when asked for ~100000
# threads (it cannot allocate their stacks), and an int past 2**31 cannot even
# reach the kernels; no machine this runs on has more cores than this.
MAX_THREADS = 1024


def _default_threads():
    env = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    if env.isdigit() and int(env) > 0:
        return min(int(env), MAX_THREADS)
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


_num_threads = _default_threads()


def set_num_threads(n):
    """Use `n` threads (1 <= n <= MAX_THREADS) in fastconv's kernels."""
    global _num_threads
    from ._args import positive_int
    n = positive_int(n, "n", "set_num_threads")
    if n > MAX_THREADS:
        raise ValueError(f"set_num_threads: n must be at most {MAX_THREADS}, got n={n}")
    with _lock:
        _num_threads = n


def get_num_threads():
    """The thread count fastconv's ops use."""
    return _num_threads
