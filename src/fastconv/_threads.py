"""Thread count for every compiled op: one place.

Until `set_num_threads` is called, an op uses the OpenMP runtime's count for
the calling thread (`omp_get_max_threads`): it honours OMP_NUM_THREADS, else
every core this process may run on, and follows threadpoolctl, whose
`threadpool_limits(1)` lowers exactly that count.  `set_num_threads(n)` then
fixes the count for the whole process, as torch.set_num_threads does; a
threadpoolctl controller (registered when threadpoolctl is installed) lets
`threadpool_limits` and `threadpool_info` see and change that count too.

fastconv's ops do all their heavy work in their own kernels (including the
GEMM), so NumPy's BLAS threads, which only the user's own code uses, are left
alone.
"""
import contextlib
import os
import threading

_lock = threading.Lock()

# Upper bound on the thread count.  libgomp segfaults when asked for ~100000
# threads (it cannot allocate their stacks), and an int past 2**31 cannot even
# reach the kernels; no machine this runs on has more cores than this.
MAX_THREADS = 1024

# The count set_num_threads chose, or None: follow the OpenMP runtime.
_num_threads = None

# OpenMP workers that spin after a parallel region steal the core from the
# Python thread that runs the rest of a training step on a busy machine, so
# fastconv's runtime sleeps instead, unless the user chose a policy.
WAIT_POLICY = "PASSIVE"
wait_policy_at_load = None  # what OMP_WAIT_POLICY was while the extension loaded


@contextlib.contextmanager
def openmp_load_environment():
    """While the compiled extension loads: OMP_WAIT_POLICY=PASSIVE unless the
    user set it.  libgomp reads its environment once, when it is loaded, so
    the setting applies to fastconv's runtime; os.environ is restored at once,
    so child processes and runtimes loaded later (e.g. another library's own
    libgomp copy) keep their own defaults."""
    global wait_policy_at_load
    user_set = "OMP_WAIT_POLICY" in os.environ
    if not user_set:
        os.environ["OMP_WAIT_POLICY"] = WAIT_POLICY
    wait_policy_at_load = os.environ["OMP_WAIT_POLICY"] + (
        " (set by the user)" if user_set else " (fastconv's default for its own runtime)")
    try:
        yield
    finally:
        if not user_set:
            os.environ.pop("OMP_WAIT_POLICY", None)


def runtime_threads():
    """The OpenMP runtime's thread count for the calling thread (1 without
    OpenMP), capped at MAX_THREADS."""
    from . import _kernels
    return max(1, min(_kernels.openmp_max_threads(), MAX_THREADS))


def set_num_threads(n: int) -> None:
    """Use `n` threads in fastconv's kernels, from the next call on, instead
    of the OpenMP runtime's count (every Python thread shares the setting;
    threadpoolctl's threadpool_limits still lowers it, and restores it).

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
    """The thread count fastconv's ops use: set_num_threads's value, else the
    OpenMP runtime's for the calling thread (OMP_NUM_THREADS, threadpoolctl's
    limits, else the cores this process may run on), capped at 1024.  Small
    ops still run on the calling thread alone."""
    n = _num_threads
    return runtime_threads() if n is None else n


def _register_threadpoolctl_controller():
    """Make threadpoolctl see fastconv's count: threadpool_info() lists it
    (internal_api "fastconv") and threadpool_limits() lowers and restores it,
    also after set_num_threads.  Skipped when threadpoolctl is absent or too
    old to take third-party controllers."""
    try:
        import threadpoolctl
        register, base = threadpoolctl.register, threadpoolctl.LibController
    except (ImportError, AttributeError):
        return False

    class FastconvController(base):
        user_api = "openmp"
        internal_api = "fastconv"
        # fastconv's extension module; the symbol tells it from other "_kernels".
        filename_prefixes = ("_kernels",)
        check_symbols = ("fc_openmp_max_threads",)

        def get_num_threads(self):
            return get_num_threads()

        def set_num_threads(self, num_threads):
            set_num_threads(max(1, min(int(num_threads), MAX_THREADS)))

        def get_version(self):
            from ._version import __version__
            return __version__

    register(FastconvController)
    return True


CONTROLLER_REGISTERED = _register_threadpoolctl_controller()
