"""Scratch memory (fastconv._workspace): bounded, releasable, re-entrant, and
a MemoryError that names the op when it cannot be had."""
import os
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest

import fastconv
from fastconv import _workspace, reference
from fastconv.functional import _deform_conv

HERE = os.path.dirname(os.path.abspath(__file__))


def _deform_case(rng, n=2, c=3, size=(6, 5)):
    x = rng.standard_normal((n, c) + size)
    w = rng.standard_normal((4, c, 3, 3))
    off = 0.7 * rng.standard_normal((n, 18) + size)
    return x, off, w


# ------------------------------------------------------------ re-entrancy

class _RunsAnOpWhenCollected:
    """Its __del__ runs a deformable conv on data of its own, as a finaliser
    or a gc callback might in user code."""

    def __init__(self, args):
        self.args = args
        self.result = None

    def __del__(self):
        x, off, w = self.args
        results.append(fastconv.deform_conv2d(x, off, w, padding=1))


results = []


def _interrupt_by_del(inner):
    """A hook that drops the last reference to an object whose __del__ runs
    the inner op (once)."""
    pending = [_RunsAnOpWhenCollected(inner)]

    def hook():
        del pending[:]     # refcount 0: __del__ runs its op right here
    return hook


def _interrupt_by_signal(inner):
    """A hook that sends this process SIGUSR1, whose handler (installed here,
    restored by the test) runs the inner op: Python runs it in the main
    thread at its next bytecode."""
    signal.signal(signal.SIGUSR1, lambda *_: results.append(
        fastconv.deform_conv2d(inner[0], inner[1], inner[2], padding=1)))

    def hook():
        os.kill(os.getpid(), signal.SIGUSR1)
    return hook


@pytest.mark.parametrize("interrupt", [_interrupt_by_del, _interrupt_by_signal])
@pytest.mark.parametrize("backward", [False, True])
def test_an_op_run_between_two_steps_of_another_leaves_its_scratch_alone(
        monkeypatch, backward, interrupt):
    """Deformable conv keeps its columns in scratch between the kernel that
    builds them and the GEMMs that read them.  An op run there (by a
    __del__, or by a signal handler, right after the columns are built) must
    get scratch of its own: the outer result equals the reference's, and so
    does the inner one."""
    if interrupt is _interrupt_by_signal and (not hasattr(signal, "SIGUSR1") or
                                             threading.current_thread()
                                             is not threading.main_thread()):
        pytest.skip("needs SIGUSR1 and the main thread")
    rng = np.random.default_rng(0)
    outer, inner = _deform_case(rng), _deform_case(rng)
    previous = signal.getsignal(signal.SIGUSR1) if hasattr(signal, "SIGUSR1") else None
    fire = interrupt(inner)
    fired = []
    im2col = _deform_conv._Plan.im2col

    def im2col_then_interrupt(self, *args):
        im2col(self, *args)
        if not fired:
            fired.append(True)
            fire()

    monkeypatch.setattr(_deform_conv._Plan, "im2col", im2col_then_interrupt)
    try:
        _check_outer_and_inner(rng, outer, inner, backward)
    finally:
        if previous is not None:
            signal.signal(signal.SIGUSR1, previous)


def _check_outer_and_inner(rng, outer, inner, backward):
    results.clear()
    x, off, w = outer
    if backward:
        gy = rng.standard_normal((2, 4, 6, 5))
        got = fastconv.deform_conv2d_backward(gy, x, off, w, padding=1)
        want = reference.deform_conv2d_backward(gy, x, off, w, padding=1)
        for g, r in zip(got, want):
            if r is not None:
                np.testing.assert_allclose(g, r, rtol=1e-10, atol=1e-10)
    else:
        got = fastconv.deform_conv2d(x, off, w, padding=1)
        np.testing.assert_allclose(got, reference.deform_conv2d(x, off, w, padding=1),
                                   rtol=1e-10, atol=1e-10)
    assert len(results) == 1, "the nested call did not run"
    np.testing.assert_allclose(results[0], reference.deform_conv2d(*inner, padding=1),
                               rtol=1e-10, atol=1e-10)


def test_scratch_is_reused_once_its_arrays_are_gone():
    a = _workspace.scratch("test_slot", (100,), np.float64)
    b = _workspace.scratch("test_slot", (100,), np.float64)
    assert not np.shares_memory(a, b)          # a is alive: b is a buffer of its own
    address = a.ctypes.data
    del a, b
    c = _workspace.scratch("test_slot", (50,), np.float64)
    assert c.ctypes.data == address            # the kept buffer again
    del c
    _workspace.release_workspace()


# ------------------------------------------------------------ bounded

def test_scratch_past_the_cap_is_not_kept(monkeypatch):
    """A call whose scratch would push the thread's kept bytes past
    KEEP_BYTES gets it for that call only (freed on return); the result is
    right either way."""
    fastconv.release_workspace()
    monkeypatch.setattr(_workspace, "KEEP_BYTES", 1 << 16)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 8, 30, 30))
    w = rng.standard_normal((8, 4, 4, 4))   # transposed conv: GEMM + col2im columns
    y = fastconv.conv_transpose2d(x, w, stride=2)
    np.testing.assert_allclose(y, reference.conv_transpose2d(x, w, stride=2), rtol=1e-10,
                               atol=1e-10)
    assert fastconv.explain("conv_transpose2d", x, w, stride=2).workspace * 8 > 1 << 16
    assert _workspace.kept_bytes() <= 1 << 16


def test_release_workspace_frees_this_and_other_threads_buffers():
    """After an op, scratch is kept (per thread); release_workspace() drops
    the calling thread's and every other live thread's, and returns the
    bytes."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 16, 12, 12))
    w = rng.standard_normal((16, 16, 3, 3))
    fastconv.release_workspace()
    fastconv.conv2d(x, w, padding=1)
    mine = _workspace.kept_bytes()
    assert mine > 0
    ran, stop = threading.Event(), threading.Event()
    theirs = []

    def worker():
        fastconv.conv2d(x, w, padding=1)
        theirs.append(_workspace.kept_bytes())
        ran.set()
        stop.wait(30)
        theirs.append(_workspace.kept_bytes())

    t = threading.Thread(target=worker)
    t.start()
    try:
        assert ran.wait(30)
        assert fastconv.release_workspace() == mine + theirs[0]
        assert _workspace.kept_bytes() == 0
    finally:
        stop.set()
        t.join(30)
    assert theirs[1] == 0
    # The next call allocates again and is right.
    np.testing.assert_allclose(fastconv.conv2d(x, w, padding=1),
                               reference.conv2d(x, w, padding=1), rtol=1e-10, atol=1e-10)


# ------------------------------------------------------------ out of memory

class _NumpyWithoutMemory:
    """numpy, except that np.empty of more than `limit` bytes fails as it
    does when the memory is not there."""

    def __init__(self, limit):
        self.limit = limit

    def __getattr__(self, name):
        return getattr(np, name)

    def empty(self, shape, dtype=float):
        if int(np.prod(shape)) * np.dtype(dtype).itemsize > self.limit:
            raise MemoryError("Unable to allocate")
        return np.empty(shape, dtype)


def test_scratch_that_cannot_be_had_raises_memory_error_naming_the_op(monkeypatch):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 8, 30, 30)).astype(np.float32)
    w = rng.standard_normal((8, 4, 4, 4)).astype(np.float32)
    fastconv.release_workspace()
    nbytes = fastconv.explain("conv_transpose2d", x, w, stride=2).workspace * 4
    monkeypatch.setattr(_workspace, "np", _NumpyWithoutMemory(nbytes // 2))
    with pytest.raises(MemoryError) as info:
        fastconv.conv_transpose2d(x, w, stride=2)
    message = str(info.value)
    assert message.startswith("conv_transpose2d: not enough memory")
    assert f"({nbytes} bytes)" in message and "column matrix" in message
    assert "Unable to allocate" not in message


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS on Linux")
@pytest.mark.skipif("asan" in os.environ.get("LD_PRELOAD", ""),
                    reason="AddressSanitizer's own mappings fail first under an address-space "
                           "limit")
def test_out_of_memory_under_an_address_space_limit_names_the_op():
    """The issue's case at a size the suite can afford: under an
    address-space limit the transposed conv's column scratch cannot be had,
    and the error names the op and the bytes instead of NumPy's bare
    'Unable to allocate'."""
    code = """if True:
        import resource, numpy as np, fastconv
        fastconv.set_num_threads(1)
        x = np.ones((1, 64, 128, 128), np.float32)
        w = np.ones((64, 64, 4, 4), np.float32)
        with open("/proc/self/status") as f:
            vm = next(int(l.split()[1]) for l in f if l.startswith("VmSize")) * 1024
        resource.setrlimit(resource.RLIMIT_AS, (vm + (40 << 20), vm + (40 << 20)))
        try:
            fastconv.conv_transpose2d(x, w, stride=2, padding=1)
        except MemoryError as exc:
            print(exc)
    """
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert out.stdout.startswith("conv_transpose2d: not enough memory"), out
    assert "bytes" in out.stdout


# ------------------------------------------------ bounded within a call

def test_the_issues_transposed_conv_plans_bounded_scratch(monkeypatch):
    """conv_transpose2d on (4, 64, 256, 256), 4x4 stride 2 needed 526 MiB of
    scratch on 2 threads (each thread's whole column matrix of one image);
    its columns are now built a block of channels at a time, near
    CHUNK_SCRATCH_BYTES.  (explain only: the call is too slow for the suite.)"""
    from fastconv import _threads
    from fastconv.functional import _plan
    monkeypatch.setattr(_threads, "get_num_threads", lambda: 2)
    x = np.zeros((4, 64, 256, 256), np.float32)
    w = np.zeros((64, 64, 4, 4), np.float32)
    plan = fastconv.explain("conv_transpose2d", x, w, stride=2, padding=1)
    assert plan.algorithm == _plan.GEMM_COL2IM and plan.channels_per_call < 64
    assert plan.workspace * 4 <= 2 * _plan.CHUNK_SCRATCH_BYTES


@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_data_gradient_in_channel_blocks_matches_the_reference(monkeypatch, groups, dtype):
    """With a tiny scratch budget the GEMM + col2im data gradient runs one
    image, one group and a block of input channels per kernel call; the
    transposed conv (whose output it computes) and a strided conv's
    grad_input still equal the reference's."""
    from fastconv.functional import _plan
    monkeypatch.setattr(_plan, "CHUNK_SCRATCH_BYTES", 1 << 10)   # one channel per call
    rng = np.random.default_rng(4)
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-10)
    x = rng.standard_normal((3, 6, 9, 11)).astype(dtype)
    w = rng.standard_normal((6, 4 // groups, 4, 4)).astype(dtype)   # 4 output channels
    plan = fastconv.explain("conv_transpose2d", x, w, stride=2, groups=groups)
    assert plan.channels_per_call == 1
    np.testing.assert_allclose(fastconv.conv_transpose2d(x, w, stride=2, groups=groups),
                               reference.conv_transpose2d(x, w, stride=2, groups=groups), **tol)
    wc = rng.standard_normal((4, 6 // groups, 3, 3)).astype(dtype)
    gy = rng.standard_normal((3, 4, 5, 6)).astype(dtype)
    assert fastconv.explain("conv2d_backward", gy, x, wc, stride=2, padding=1,
                            groups=groups)[0].channels_per_call == 1
    np.testing.assert_allclose(
        fastconv.conv2d_backward(gy, x, wc, stride=2, padding=1, groups=groups)[0],
        reference.conv2d_backward(gy, x, wc, stride=2, padding=1, groups=groups)[0], **tol)
