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

Three limits keep the count runnable:

- It is capped at `machine_max_threads()` (a few threads per CPU this process
  may run on), with a RuntimeWarning naming the value asked for: more threads
  than that only cost memory (OMP_NUM_THREADS=99999 used to start 1024 threads
  and reserve gigabytes of per-thread workspace).
- Before a Python thread first runs an op at a count it has not reached
  before, the threads OpenMP is about to start are started once as plain
  threads: when the system refuses (a pids or address-space limit), the op
  runs on as many threads as could be started, with a RuntimeWarning, instead
  of libgomp's "Thread creation failed" exit(1).
- In a child made by os.fork() (multiprocessing's 'fork' start method) after
  a parallel op, the thread that called fork() runs every op on one thread:
  its OpenMP thread pool was the parent's, and its workers do not exist in the
  child, so a parallel region there would wait for them forever.  Other
  threads of the child (started after the fork) have pools of their own and
  use the full count; set_num_threads in the child sets that count.
"""
import contextlib
import functools
import os
import threading
import warnings

_lock = threading.Lock()

# Upper bound on the thread count.  libgomp segfaults when asked for ~100000
# threads (it cannot allocate their stacks), and an int past 2**31 cannot even
# reach the kernels; no machine this runs on has more cores than this.
MAX_THREADS = 1024

# Threads per CPU the cap allows (oversubscription for measurements), and a
# floor so 1-CPU containers can still exercise the multi-threaded paths.
THREADS_PER_CPU = 4
MIN_THREAD_CAP = 8

# The count set_num_threads chose, or None: follow the OpenMP runtime.
_num_threads = None

# A count above 1 was handed to an op: the calling thread's OpenMP pool may
# have started, so a fork() child must not use it from the forking thread.
_parallel_ran = False

# In a fork() child after a parallel op: threading.get_ident() of the thread
# that called fork(), which must stay on one thread.  None elsewhere.
_forked_thread = None


class _Started(threading.local):
    """Per Python thread: the largest count whose threads were tried, and
    how many of them could be started."""
    asked = 1
    reached = 1


_started = _Started()

# Counts already warned about, so an op in a loop warns once (set_num_threads
# warns at every call).
_warned = set()

# After a parallel region fastconv's OpenMP workers spin SPIN_COUNT rounds
# (a few milliseconds: libgomp's own default when no policy is set) before
# they sleep.  A network runs a parallel op every few hundred microseconds, and
# a sleeping worker must be woken through the kernel (on a virtual machine, by
# an interrupt to a halted virtual CPU), which can cost more than the op: with
# PASSIVE (no spin) whole-network steps at 2 threads were much slower
# (docs/performance.md, "Wait policy").  The spin is bounded, so an idle
# process stops using the cores soon after its last op.  A user's
# OMP_WAIT_POLICY or GOMP_SPINCOUNT wins.
SPIN_COUNT = "300000"
wait_policy_at_load = None  # how fastconv's runtime waits, as it was set while loading


@contextlib.contextmanager
def openmp_load_environment():
    """While the compiled extension loads: GOMP_SPINCOUNT=SPIN_COUNT unless the
    user set OMP_WAIT_POLICY or GOMP_SPINCOUNT.  libgomp reads its environment
    once, when it is loaded, so the setting applies to fastconv's runtime;
    os.environ is restored at once, so child processes and runtimes loaded
    later (e.g. another library's own libgomp copy) keep their own defaults."""
    global wait_policy_at_load
    users = [f"{k}={os.environ[k]}" for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
             if k in os.environ]
    if users:
        wait_policy_at_load = ", ".join(users) + " (set by the user)"
    else:
        os.environ["GOMP_SPINCOUNT"] = SPIN_COUNT
        wait_policy_at_load = (f"spin GOMP_SPINCOUNT={SPIN_COUNT} rounds, then sleep "
                               f"(fastconv's default for its own runtime)")
    try:
        yield
    finally:
        if not users:
            os.environ.pop("GOMP_SPINCOUNT", None)


def _usable_cpus():
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # no affinity masks (macOS)
        return os.cpu_count() or 1


@functools.lru_cache(maxsize=None)
def machine_max_threads() -> int:
    """The most threads an op uses: THREADS_PER_CPU per CPU this process may
    run on (its affinity mask when first asked: every op asks, and a system
    call per op would cost more than most small ops), at least
    MIN_THREAD_CAP, at most MAX_THREADS."""
    return min(MAX_THREADS, max(MIN_THREAD_CAP, THREADS_PER_CPU * _usable_cpus()))


def _warn_once(key, message):
    if key not in _warned:
        _warned.add(key)
        warnings.warn(message, RuntimeWarning, stacklevel=3)


def _capped(n, source, warn=_warn_once):
    cap = machine_max_threads()
    if n <= cap:
        return n
    warn(("cap", source, n), f"fastconv: {source} asks for {n} threads; using {cap} "
         f"({THREADS_PER_CPU} per CPU this process may run on, at least {MIN_THREAD_CAP})")
    return cap


def _warn_each_time(key, message):
    warnings.warn(message, RuntimeWarning, stacklevel=4)


# The compiled extension, imported on first use (it loads after this module,
# in openmp_load_environment): an import statement per op call cost more
# than the rest of get_num_threads.
_kernels = None


def runtime_threads():
    """The OpenMP runtime's thread count for the calling thread (1 without
    OpenMP), capped at machine_max_threads() with a warning."""
    global _kernels
    if _kernels is None:
        from . import _kernels
    n = _kernels.openmp_max_threads()
    return 1 if n <= 1 else _capped(n, "the OpenMP runtime (OMP_NUM_THREADS)")


def _startable(n):
    """`n`, or fewer when the system could not start n - 1 more threads.

    libgomp starts a calling thread's workers when it first needs them and
    calls exit(1) when it cannot; starting them here first, as plain threads
    that end at once, turns that into a warning and a smaller count.  Their
    stacks are the same default size, and the C library keeps them cached for
    the OpenMP workers that follow.  Checked once per thread and count: a
    thread keeps the count it reached for every count it has asked for."""
    if n <= _started.asked:
        return min(n, _started.reached)
    release = threading.Event()
    workers = []
    try:
        for _ in range(n - 1):
            worker = threading.Thread(target=release.wait, name="fastconv-probe", daemon=True)
            worker.start()
            workers.append(worker)
    except RuntimeError as exc:  # "can't start new thread"
        _warn_once(("start", n, len(workers)),
                   f"fastconv: cannot start {n} threads ({exc}); running on "
                   f"{len(workers) + 1}")
    finally:
        release.set()
        for worker in workers:
            worker.join()
    _started.asked, _started.reached = n, len(workers) + 1
    return _started.reached


def set_num_threads(n: int) -> None:
    """Use `n` threads in fastconv's kernels, from the next call on, instead
    of the OpenMP runtime's count (every Python thread shares the setting;
    threadpoolctl's threadpool_limits still lowers it, and restores it).

    Counts above machine_max_threads() are lowered to it with a
    RuntimeWarning.  In a fork() child, the thread that called fork() keeps
    running ops on one thread whatever `n` is (see the module's notes); run
    them from a thread started in the child, or use the 'spawn' or
    'forkserver' start method, to use `n`.

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
    n = _capped(n, "set_num_threads", _warn_each_time)
    with _lock:
        _num_threads = n


def get_num_threads() -> int:
    """The thread count fastconv's ops use: set_num_threads's value, else the
    OpenMP runtime's for the calling thread (OMP_NUM_THREADS, threadpoolctl's
    limits, else the cores this process may run on), capped at
    machine_max_threads() and at what the system lets this thread start;
    1 on the thread that called fork() in a fork() child after a parallel
    op.  Small ops still run on the calling thread alone."""
    global _parallel_ran
    if _forked_thread is not None and threading.get_ident() == _forked_thread:
        return 1
    n = _num_threads
    if n is None:
        n = runtime_threads()
    if n == 1:    # no thread to start: the per-call path of small calls
        return 1
    n = _startable(n)
    if n > 1:
        _parallel_ran = True
    return n


def _after_fork_in_child():
    """The forking thread is the child's only thread; if a parallel op may
    have started its OpenMP pool, that pool's workers stayed in the parent."""
    global _forked_thread
    _started.asked = _started.reached = 1  # the parent's threads stayed there
    if _parallel_ran:
        _forked_thread = threading.get_ident()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


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
