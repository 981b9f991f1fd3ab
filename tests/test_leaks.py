"""Every op called thousands of times: resident memory stays flat and no
reference to an input is left behind (a leaked view keeps its base alive).

Kept short for the default suite; FASTCONV_LEAK_CALLS raises the count.  For
a byte-exact check run the suite under valgrind (see CONTRIBUTING.md).
"""
import gc
import os
import sys

import numpy as np
import pytest

from optable import COMPUTE_OPS

import fastconv

CALLS = int(os.environ.get("FASTCONV_LEAK_CALLS", "2000"))
# RSS may move by a few pages (allocator bookkeeping); a leak of even one
# small output per call grows it by CALLS * (>= 1 KiB) = 2 MB or more.
SLACK = 1 << 20

# AddressSanitizer quarantines freed memory and valgrind replaces the
# allocator, so RSS grows by design under them: only the reference checks run.
RSS_MEANINGFUL = not any(tool in os.environ.get("LD_PRELOAD", "")
                         for tool in ("asan", "vgpreload"))


def _rss():
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        pytest.skip("needs /proc/self/statm")


def _bad_call(op, rng):
    """A call of `op` that fails validation (exercises the error path)."""
    if op.extra:
        label, make, allowed, _ = op.extra[0]
        return make(rng, np.float32), allowed
    return None, None


@pytest.mark.parametrize("op", COMPUTE_OPS, ids=lambda op: op.name)
def test_rss_flat_and_no_leaked_references(op):
    rng = np.random.default_rng(0)
    calls = []
    for dtype in (np.float32, np.float64):
        kwargs = op.make(rng, dtype)
        # A non-contiguous input takes the copying path too.
        first = op.arrays[0]
        kwargs_nc = dict(kwargs, **{first: np.asfortranarray(kwargs[first])})
        calls += [kwargs, kwargs_nc]
    bad, allowed = _bad_call(op, rng)

    def run(n):
        for _ in range(n):
            for kw in calls:
                op.call(kw)
            if bad is not None:
                try:
                    op.call(bad)
                except allowed:
                    pass

    arrays = [v for kw in calls for v in kw.values() if isinstance(v, np.ndarray)]
    run(50)  # warm up: workspace buffers, caches
    gc.collect()
    refs = [sys.getrefcount(a) for a in arrays]
    # Two windows of CALLS calls: a leak grows RSS in both, while a one-off
    # step (NumPy asks for transparent huge pages on big arrays, so a
    # 2 MiB page may appear whenever the kernel has one) shows in one only.
    growth = []
    for _ in range(2):
        before = _rss()
        run(CALLS // len(calls))
        gc.collect()
        growth.append(_rss() - before)
    assert [sys.getrefcount(a) for a in arrays] == refs, "an op keeps a reference to an input"
    if not RSS_MEANINGFUL:
        pytest.skip("RSS is meaningless under ASan/valgrind (references were checked)")
    assert min(growth) < SLACK, \
        f"{op.name}: RSS grew by {growth[0]} then {growth[1]} bytes over 2 x {CALLS} calls"


def test_rss_flat_under_threads_and_thread_count_changes():
    """Per-thread workspace buffers (about 1 MB here) die with their thread,
    and changing the thread count does not pile up OpenMP/BLAS pools: 80
    short-lived threads would leave 80+ MB behind otherwise.  The slack
    covers glibc's per-thread malloc arenas, which are kept for reuse."""
    import threading
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 16, 32, 32)).astype(np.float32)
    w = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
    gy = fastconv.conv2d(x, w, padding=1)

    def work():
        for _ in range(3):
            fastconv.conv2d_backward(gy, x, w, padding=1)

    def round_():
        for n in (1, 2):
            fastconv.set_num_threads(n)
            ts = [threading.Thread(target=work) for _ in range(4)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()

    if not RSS_MEANINGFUL:
        pytest.skip("RSS is meaningless under ASan/valgrind")
    old = fastconv.get_num_threads()
    try:
        for _ in range(3):
            round_()
        gc.collect()
        before = _rss()
        for _ in range(10):
            round_()
        gc.collect()
        grown = _rss() - before
    finally:
        fastconv.set_num_threads(old)
    assert grown < 24 * SLACK, f"RSS grew by {grown} bytes over 80 threads"
