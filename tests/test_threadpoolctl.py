"""fastconv's thread count follows the OpenMP runtime and threadpoolctl, and
importing fastconv leaves the environment as it found it.

Thread counts are observed from outside the Python API: the number of OS
threads of a fresh child process (/proc/self/task), before and after a
convolution large enough to run in parallel.  libgomp starts its workers at
the first parallel region and keeps them, so a conv that ran on one thread
leaves the count unchanged."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import fastconv

threadpoolctl = pytest.importorskip("threadpoolctl")
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
needs_openmp = pytest.mark.skipif(not fastconv._kernels.build_info()["openmp"],
                                  reason="built without OpenMP: every op is serial")

PRELUDE = """
import os
import numpy as np
import fastconv
from threadpoolctl import threadpool_limits, threadpool_info

def tasks():
    return len(os.listdir("/proc/self/task"))

def probe_threads_gone():
    # fastconv's first get_num_threads() at a count above 1 starts and joins
    # n - 1 plain threads (the thread-start probe, _threads._startable); a
    # joined thread stays listed in /proc/self/task until the OS has torn it
    # down, a moment later (most of the time still there right after the
    # join).  Probe now, and wait for them to leave, so that the counts
    # below see only OpenMP's workers.
    import time
    base = tasks()
    fastconv.get_num_threads()
    deadline = time.monotonic() + 10
    while tasks() > base and time.monotonic() < deadline:
        time.sleep(0.001)

rng = np.random.default_rng(0)
x = rng.standard_normal((8, 32, 32, 32))
w = rng.standard_normal((32, 32, 3, 3))
conv = lambda: fastconv.conv2d(x, w, padding=1)
big = rng.standard_normal((16, 32, 64, 64))
ops = {"conv2d": conv,
       # An implicit GEMM: the memo's hit runs one typed call (ConvForward.forward).
       "conv2d-whole": lambda: fastconv.conv2d(x, w, stride=2),
       # The per-call paths that read the count on every call, with the memo hit.
       "max_pool2d": lambda: fastconv.max_pool2d(big, 2),
       "avg_pool2d": lambda: fastconv.avg_pool2d(big, 3, 1, 1),
       "conv_transpose2d": lambda: fastconv.conv_transpose2d(x, w, stride=2)}
"""


def _run(code, **env_extra):
    env = dict(os.environ)
    env.pop("OMP_WAIT_POLICY", None)
    env.update(env_extra)
    pkg_parent = str(Path(fastconv.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([pkg_parent] + [p for p in env.get(
        "PYTHONPATH", "").split(os.pathsep) if p])
    proc = subprocess.run([sys.executable, "-c", PRELUDE + textwrap.dedent(code)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@linux_only
@needs_openmp
@pytest.mark.parametrize("setup, omp_num_threads", [
    ("", "2"),                                   # the OpenMP runtime's count
    ("fastconv.set_num_threads(2)", "1"),        # a count set by set_num_threads
])
@pytest.mark.parametrize("op", ["conv2d", "conv2d-whole", "max_pool2d", "avg_pool2d",
                                "conv_transpose2d"])
def test_threadpool_limits_makes_a_conv_single_threaded(setup, omp_num_threads, op):
    out = _run(f"""
{setup}
op = ops[{op!r}]
probe_threads_gone()
before = tasks()
with threadpool_limits(1):
    assert fastconv.get_num_threads() == 1
    op()
    op()                                       # the memo's hit
    during = tasks()
assert fastconv.get_num_threads() == 2     # restored on exit
op()
print(before, during, tasks())
""", OMP_NUM_THREADS=omp_num_threads).stdout.split()
    before, during, after = map(int, out)
    assert during == before, "a conv under threadpool_limits(1) started worker threads"
    assert after > before, "the conv never ran in parallel: the test would prove nothing"


def test_threadpool_info_reports_the_count_in_use():
    old = fastconv.get_num_threads()
    try:
        fastconv.set_num_threads(3)
        (info,) = [i for i in threadpoolctl.threadpool_info() if i["internal_api"] == "fastconv"]
        assert info["num_threads"] == 3 and info["version"] == fastconv.__version__
        with threadpoolctl.threadpool_limits(1):
            (info,) = [i for i in threadpoolctl.threadpool_info()
                       if i["internal_api"] == "fastconv"]
            assert info["num_threads"] == 1 == fastconv.get_num_threads()
        assert fastconv.get_num_threads() == 3
    finally:
        fastconv.set_num_threads(old)


def test_default_follows_the_openmp_runtime():
    out = _run("""
        print(fastconv.get_num_threads())
        with threadpool_limits(2, user_api="blas"):   # BLAS limits leave fastconv alone
            print(fastconv.get_num_threads())
    """, OMP_NUM_THREADS="3").stdout.split()
    expected = "3" if fastconv._kernels.build_info()["openmp"] else "1"
    assert out == [expected, expected]


@needs_openmp
def test_import_leaves_gomp_spincount_unset_but_its_runtime_spinning_a_bounded_time():
    """libgomp starts with fastconv's bounded spin (OMP_DISPLAY_ENV=VERBOSE
    makes it print its settings when it loads), yet neither os.environ nor a
    child process sees the variable afterwards."""
    proc = _run("""
        import subprocess, sys
        print(os.environ.get("GOMP_SPINCOUNT"), os.environ.get("OMP_WAIT_POLICY"))
        subprocess.run([sys.executable, "-c", "import os; "
                        "print(os.environ.get('GOMP_SPINCOUNT'), os.environ.get('OMP_WAIT_POLICY'))"],
                       check=True)
        print(fastconv._config.config()["omp_wait_policy"])
    """, OMP_DISPLAY_ENV="VERBOSE")
    assert proc.stdout.split()[:4] == ["None", "None", "None", "None"]
    assert f"GOMP_SPINCOUNT = '{fastconv._threads.SPIN_COUNT}'" in proc.stderr
    assert f"GOMP_SPINCOUNT={fastconv._threads.SPIN_COUNT}" in proc.stdout


@needs_openmp
@pytest.mark.parametrize("name, value", [("OMP_WAIT_POLICY", "ACTIVE"),
                                         ("GOMP_SPINCOUNT", "1234")])
def test_a_users_wait_setting_is_kept(name, value):
    """The user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT reaches the runtime
    unchanged, and fastconv's spin count is not added beside it."""
    proc = _run(f"print(os.environ.get({name!r}), os.environ.get('GOMP_SPINCOUNT'))",
                OMP_DISPLAY_ENV="VERBOSE", **{name: value})
    assert proc.stdout.split() == [value, value if name == "GOMP_SPINCOUNT" else "None"]
    assert f"{name} = '{value}'" in proc.stderr
