"""Thread count for every compiled op and for the BLAS under NumPy: one place.

The default honours OMP_NUM_THREADS, else uses every core this process may run
on.  set_num_threads also caps the threads of NumPy's OpenBLAS (found among the
loaded libraries) so that "1 thread" means one thread for the whole op.
"""
import ctypes
import os
import threading

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


def _find_blas_setter():
    """openblas_set_num_threads of the OpenBLAS NumPy loaded, or None."""
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "openblas" in line.lower()}
    except OSError:
        return None, None
    names = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
             "openblas_set_num_threads64_", "openblas_set_num_threads")
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name in names:
            fn = getattr(lib, name, None)
            if fn is not None:
                fn.argtypes = [ctypes.c_int]
                fn.restype = None
                return fn, os.path.basename(path)
    return None, None


import numpy  # noqa: E402  (loads the BLAS so that it can be found)

_blas_set_threads, BLAS_LIBRARY = _find_blas_setter()
_num_threads = _default_threads()


def _apply_blas(n):
    if _blas_set_threads is not None:
        _blas_set_threads(n)


def set_num_threads(n):
    """Use `n` threads in fastconv's kernels and NumPy's BLAS (1 <= n <= MAX_THREADS)."""
    global _num_threads
    from ._args import positive_int
    n = positive_int(n, "n", "set_num_threads")
    if n > MAX_THREADS:
        raise ValueError(f"set_num_threads: n must be at most {MAX_THREADS}, got n={n}")
    with _lock:
        _num_threads = n
        _apply_blas(n)


def get_num_threads():
    """The thread count fastconv's ops use."""
    return _num_threads


_apply_blas(_num_threads)
