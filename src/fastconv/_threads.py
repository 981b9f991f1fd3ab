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


def set_num_threads(n: int) -> None:
    """Use `n` threads in fastconv's kernels, from the next call on (every
    Python thread shares the setting).

    Args:
        n: int, 1 <= n <= 1024.

    Raises:
        TypeError: n not an int (bools and floats included).
        ValueError: n < 1 or n > 1024.
    """
    global _num_threads
    from ._args import positive_int
    n = positive_int(n, "n", "set_num_threads")
    if n > MAX_THREADS:
        raise ValueError(f"set_num_threads: n must be at most {MAX_THREADS}, got n={n}")
    with _lock:
        _num_threads = n


def get_num_threads() -> int:
    """The thread count fastconv's ops use: set_num_threads's value, else
    OMP_NUM_THREADS (capped at 1024), else the cores this process may run on.
    Small ops still run on the calling thread alone."""
    return _num_threads
