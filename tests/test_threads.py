"""Every op called concurrently from 8 Python threads on shared inputs gives
the serial results; set_num_threads from another thread meanwhile is safe."""
import threading

import numpy as np
import pytest

from optable import COMPUTE_OPS

import fastconv

THREADS = 8
ROUNDS = 5


def _as_tuple(result):
    return result if isinstance(result, tuple) else (result,)


def _check(op, got, want):
    for g, w in zip(_as_tuple(got), _as_tuple(want)):
        # The same thread count gives bit-identical results; a BLAS whose
        # thread count changed mid-run may sum in another order.
        tol = 1e-5 if g.dtype == np.float32 else 1e-12
        np.testing.assert_allclose(g, w, rtol=tol, atol=tol, err_msg=op.name)


def _hammer(calls, rounds, side_job=None):
    """Run `calls` (a list of (op, kwargs, expected)) from THREADS threads at
    once; returns the errors raised inside the threads."""
    errors = []
    barrier = threading.Barrier(THREADS + (side_job is not None))
    stop = threading.Event()

    def worker(i):
        try:
            barrier.wait()
            for r in range(rounds):
                # Each thread walks the ops in its own order, so different
                # ops really run at the same time.
                for j in range(len(calls)):
                    op, kwargs, want = calls[(j + i + r) % len(calls)]
                    _check(op, op.call(kwargs), want)
        except Exception as exc:  # noqa: BLE001 - reported by the caller
            errors.append(exc)

    def side():
        barrier.wait()
        side_job(stop)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    if side_job is not None:
        helper = threading.Thread(target=side)
        helper.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
        assert not t.is_alive(), "a worker thread hung"
    stop.set()
    if side_job is not None:
        helper.join(timeout=60)
    return errors


def _serial_calls(dtype, seed=0):
    rng = np.random.default_rng(seed)
    calls = []
    for op in COMPUTE_OPS:
        kwargs = op.make(rng, dtype)
        # Read-only inputs: any write by an op raises instead of corrupting.
        for v in kwargs.values():
            if isinstance(v, np.ndarray):
                v.flags.writeable = False
        calls.append((op, kwargs, op.call(kwargs)))
    return calls


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_concurrent_calls_match_serial(dtype):
    old = fastconv.get_num_threads()
    try:
        fastconv.set_num_threads(2)
        calls = _serial_calls(dtype)
        errors = _hammer(calls, ROUNDS)
    finally:
        fastconv.set_num_threads(old)
    assert not errors, errors[:3]


def test_set_num_threads_while_others_compute():
    old = fastconv.get_num_threads()
    seen = []

    def flip(stop):
        n = 0
        while not stop.is_set():
            fastconv.set_num_threads(1 + n % 4)
            seen.append(fastconv.get_num_threads())
            n += 1

    try:
        calls = _serial_calls(np.float64, seed=1)
        errors = _hammer(calls, 3, side_job=flip)
    finally:
        fastconv.set_num_threads(old)
    assert not errors, errors[:3]
    assert len(seen) > 10 and set(seen) <= {1, 2, 3, 4}


def test_bigger_parallel_kernels_concurrently():
    """Work large enough that the kernels open OpenMP regions (past the
    serial threshold) from several Python threads at once."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 8, 32, 32)).astype(np.float32)
    w = rng.standard_normal((8, 8, 3, 3)).astype(np.float32)
    old = fastconv.get_num_threads()
    try:
        fastconv.set_num_threads(2)
        y = fastconv.conv2d(x, w, padding=1)
        grads = fastconv.conv2d_backward(y, x, w, padding=1)
        cols = fastconv.im2col(x, 3, padding=1)
        folded = fastconv.col2im(cols, (32, 32), 3, padding=1)
        results = {}

        def work(i):
            results[i] = (fastconv.conv2d(x, w, padding=1),
                          fastconv.conv2d_backward(y, x, w, padding=1),
                          fastconv.im2col(x, 3, padding=1),
                          fastconv.col2im(cols, (32, 32), 3, padding=1))

        ts = [threading.Thread(target=work, args=(i,)) for i in range(THREADS)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    finally:
        fastconv.set_num_threads(old)
    assert len(results) == THREADS
    for got_y, got_g, got_cols, got_folded in results.values():
        np.testing.assert_allclose(got_y, y, rtol=1e-5, atol=1e-5)
        for a, b in zip(got_g, grads):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4)
        np.testing.assert_array_equal(got_cols, cols)
        np.testing.assert_allclose(got_folded, folded, rtol=1e-6, atol=1e-6)
