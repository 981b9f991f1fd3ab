"""Soak test: random ops and fastconv.nn layers, each result checked against
fastconv.reference, run at once from several Python threads, from forked
workers (multiprocessing's 'fork' start method, while those threads compute)
and in a child process that receives SIGINT at random moments.  It fails on a
hang (every wait has a timeout, and a global one dumps every thread's stack),
a crash, a wrong answer, a KeyboardInterrupt that leaves fastconv unusable, or
resident memory that keeps growing.

Run by `.ci/extra soak`; by hand: `PYTHONPATH=src python .ci/soak.py
--seconds 60`.  Bounded by --seconds (default 120): the threads and the
forked workers share the first half, the SIGINT child the second.
"""
import argparse
import copy
import faulthandler
import json
import multiprocessing
import signal
import subprocess
import sys
import threading
import time
import traceback

import numpy as np

import fastconv
from fastconv import nn, reference

# Growth of resident memory allowed between the end of the warm-up and the
# end of a phase: scratch and allocator caches settle in the warm-up, so a
# leak of even a few KiB per call over the thousands of calls exceeds it.
RSS_GROWTH_BOUND = 64 << 20

# Tolerance relative to the largest magnitude of the expected result.
TOL = {np.float32: 2e-4, np.float64: 1e-9}


def rss_bytes():
    """Resident set size of this process (Linux), else 0: no check."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def check_close(name, got, want):
    got = got if isinstance(got, tuple) else (got,)
    want = want if isinstance(want, tuple) else (want,)
    for g, w in zip(got, want):
        if w is None:
            continue
        g, w = np.asarray(g), np.asarray(w)
        if g.shape != w.shape:
            raise AssertionError(f"{name}: shape {g.shape}, reference {w.shape}")
        if w.dtype == np.int64:
            bad = not np.array_equal(g, w)
        else:
            scale = max(1.0, float(np.abs(w).max(initial=0.0)))
            bad = not np.allclose(g / scale, w / scale, rtol=0, atol=TOL[w.dtype.type])
        if bad:
            raise AssertionError(f"{name}: differs from fastconv.reference")


# ----------------------------------------------------------- random calls

def _conv_case(rng, nd, dtype):
    groups = int(rng.integers(1, 3))
    c_in, c_out = groups * int(rng.integers(1, 4)), groups * int(rng.integers(1, 4))
    k = tuple(int(v) for v in rng.integers(1, 4, nd))
    dilation = tuple(int(v) for v in rng.integers(1, 3, nd))
    size = tuple((kk - 1) * d + int(rng.integers(1, 9)) for kk, d in zip(k, dilation))
    x = rng.standard_normal((int(rng.integers(0, 4)), c_in) + size).astype(dtype)
    w = rng.standard_normal((c_out, c_in // groups) + k).astype(dtype)
    b = rng.standard_normal(c_out).astype(dtype) if rng.integers(2) else None
    kw = dict(stride=int(rng.integers(1, 3)), padding=int(rng.integers(0, 2)),
              dilation=dilation, groups=groups)
    return x, w, b, kw


def call_conv(rng, dtype):
    nd = int(rng.integers(1, 4))
    x, w, b, kw = _conv_case(rng, nd, dtype)
    name = f"conv{nd}d"
    y = getattr(fastconv, name)(x, w, b, **kw)
    check_close(name, y, getattr(reference, name)(x, w, b, **kw))
    g = rng.standard_normal(y.shape).astype(dtype)
    check_close(name + "_backward", getattr(fastconv, name + "_backward")(g, x, w, **kw),
                getattr(reference, name + "_backward")(g, x, w, **kw))


def call_conv_transpose(rng, dtype):
    c_in, c_out, k = int(rng.integers(1, 4)), int(rng.integers(1, 4)), int(rng.integers(1, 4))
    x = rng.standard_normal((int(rng.integers(0, 3)), c_in) + tuple(
        int(v) for v in rng.integers(1, 7, 2))).astype(dtype)
    w = rng.standard_normal((c_in, c_out, k, k)).astype(dtype)
    kw = dict(stride=int(rng.integers(1, 3)), padding=int(rng.integers(0, (k + 1) // 2)))
    check_close("conv_transpose2d", fastconv.conv_transpose2d(x, w, **kw),
                reference.conv_transpose2d(x, w, **kw))


def _pool_case(rng, dtype):
    k = int(rng.integers(1, 5))
    size = tuple(k + int(v) for v in rng.integers(0, 12, 2))
    x = rng.standard_normal((int(rng.integers(0, 3)), int(rng.integers(1, 4))) + size)
    return x.astype(dtype), dict(kernel_size=k, stride=int(rng.integers(1, 4)),
                                 padding=int(rng.integers(0, k // 2 + 1)),
                                 ceil_mode=bool(rng.integers(2)))


def call_max_pool(rng, dtype):
    x, kw = _pool_case(rng, dtype)
    got = fastconv.max_pool2d(x, return_indices=True, **kw)
    check_close("max_pool2d", got, reference.max_pool2d(x, return_indices=True, **kw))
    check_close("max_pool2d_backward", fastconv.max_pool2d_backward(got[0], got[1], x.shape),
                reference.max_pool2d_backward(got[0], got[1], x.shape))


def call_avg_pool(rng, dtype):
    x, kw = _pool_case(rng, dtype)
    y = fastconv.avg_pool2d(x, **kw)
    check_close("avg_pool2d", y, reference.avg_pool2d(x, **kw))
    check_close("avg_pool2d_backward", fastconv.avg_pool2d_backward(y, x.shape, **kw),
                reference.avg_pool2d_backward(y, x.shape, **kw))


def call_misc(rng, dtype):
    x, _ = _pool_case(rng, dtype)
    out = tuple(int(v) for v in rng.integers(1, 6, 2))
    check_close("adaptive_avg_pool2d", fastconv.adaptive_avg_pool2d(x, out),
                reference.adaptive_avg_pool2d(x, out))
    check_close("interpolate", fastconv.interpolate(x, size=out, mode="bilinear"),
                reference.interpolate(x, size=out, mode="bilinear"))
    check_close("im2col", fastconv.im2col(x, 1, padding=1), reference.im2col(x, 1, padding=1))


def _net(seed):
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, dtype=np.float64, rng=seed),
                         nn.BatchNorm2d(4, dtype=np.float64), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Conv2d(4, 4, 3, groups=2, dtype=np.float64,
                                                    rng=seed + 1),
                         nn.AvgPool2d(2, ceil_mode=True), nn.Flatten(),
                         nn.Linear(4, 5, dtype=np.float64, rng=seed + 2))


def call_net(rng, dtype):
    """A small net's forward and backward on fastconv's ops against a copy on
    fastconv.reference's: output, input gradient, every parameter's."""
    net = _net(int(rng.integers(1000)))
    twin = copy.deepcopy(net)
    x = rng.standard_normal((int(rng.integers(1, 4)), 3, 8, 8))
    g = rng.standard_normal((x.shape[0], 5))
    results = []
    for model, backend in ((net, "fastconv"), (twin, "reference")):
        with nn.use_backend(backend):
            try:
                y = model(x)
                results.append((y, model.backward(g)) + tuple(
                    grad for _, grad in sorted(model.named_grads())))
            finally:
                model.clear_pending()
    check_close("nn.Sequential", results[0], results[1])


CALLS = [call_conv, call_conv_transpose, call_max_pool, call_avg_pool, call_misc, call_net]


def random_call(rng):
    dtype = (np.float32, np.float64)[int(rng.integers(2))]
    CALLS[int(rng.integers(len(CALLS)))](rng, dtype)


def run_calls(seed, seconds):
    """Random checked calls for `seconds`: their count."""
    rng = np.random.default_rng(seed)
    end, count = time.monotonic() + seconds, 0
    while time.monotonic() < end:
        random_call(rng)
        count += 1
    return count


# ------------------------------------------------------------------ phases

def _fork_job(args):
    seed, seconds = args
    count = run_calls(seed, seconds)
    return count, fastconv.get_num_threads()


def threads_and_forks(seconds, threads, workers, seed):
    """`threads` Python threads computing (one of them flipping the thread
    count) while a 'fork' Pool's workers compute too; the workers are forked
    again and again (maxtasksperchild) while the threads run."""
    errors, counts = [], [0] * threads
    warm_end = time.monotonic() + seconds * 0.25
    rss_after_warmup = []

    def worker(i):
        rng = np.random.default_rng(seed + i)
        end = time.monotonic() + seconds
        try:
            while time.monotonic() < end:
                if i == 0 and rng.integers(20) == 0:
                    fastconv.set_num_threads(int(rng.integers(1, 3)))
                random_call(rng)
                counts[i] += 1
                if i == 0 and not rss_after_warmup and time.monotonic() > warm_end:
                    rss_after_warmup.append(rss_bytes())
        except BaseException:
            errors.append(f"thread {i}:\n{traceback.format_exc()}")

    fastconv.set_num_threads(2)
    run_calls(seed, 1.0)      # the parent has run parallel ops before any fork
    pool_threads = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool_threads:
        t.start()
    jobs = [(seed + 1000 + j, 1.5) for j in range(int(seconds / 1.5) * workers)]
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(workers, maxtasksperchild=2) as pool:
        result = pool.map_async(_fork_job, jobs)
        try:
            fork_results = result.get(timeout=seconds * 3 + 60)
        except multiprocessing.TimeoutError:
            errors.append(f"the forked workers hung: no result within {seconds * 3 + 60:.0f} s")
            fork_results = []
    for t in pool_threads:
        t.join(timeout=seconds + 120)
        if t.is_alive():
            errors.append(f"{t.name} still running: hung")
    if errors:
        raise SystemExit("\n".join(errors))
    if any(n != 1 for _, n in fork_results):
        raise SystemExit(f"forked workers used {[n for _, n in fork_results]} threads, not 1")
    growth = rss_bytes() - rss_after_warmup[0] if rss_after_warmup else 0
    print(f"threads: {sum(counts)} checked calls on {threads} threads; forked workers: "
          f"{sum(c for c, _ in fork_results)} in {len(jobs)} jobs; RSS growth after "
          f"warm-up {growth / 2**20:.1f} MiB", flush=True)
    if growth > RSS_GROWTH_BOUND:
        raise SystemExit(f"RSS grew by {growth / 2**20:.1f} MiB after the warm-up")


def interrupted_child(seconds, seed):
    """In the child: random checked calls (some long enough to be cut short)
    until `seconds` have passed, each KeyboardInterrupt caught; after each,
    one call must still give the reference's result.  Prints a JSON summary."""
    # A SIGINT raises only while the try below is armed.  Python runs a
    # handler at any bytecode that checks for signals, the loop's jump back
    # included, which lies outside the try: a second signal landing while the
    # first one's exception unwinds would otherwise kill the child there.
    # One landing unarmed is counted and ignored (nothing to cut short).
    armed = [False]

    def on_sigint(signum, frame):
        if armed[0]:
            raise KeyboardInterrupt
        counts["unarmed"] += 1

    signal.signal(signal.SIGINT, on_sigint)
    rng = np.random.default_rng(seed)
    long_x = rng.standard_normal((4, 16, 128, 128))
    end = time.monotonic() + seconds
    warm_end = time.monotonic() + seconds * 0.25
    counts = dict(calls=0, interrupts=0, rechecked=0, unarmed=0)
    rss_warm = None
    # Everything runs inside the armed try, the "ready" line that lets the
    # signals start and the checks after an interrupt included.
    recheck = ready = False
    while True:
        try:
            armed[0] = True
            if not ready:
                print("ready", flush=True)
                ready = True
            if recheck:
                call_net(np.random.default_rng(counts["interrupts"]), np.float64)
                call_conv(np.random.default_rng(counts["interrupts"]), np.float32)
                counts["rechecked"] += 1
                recheck = False
            if time.monotonic() >= end:
                break
            if rng.integers(8) == 0:
                fastconv.avg_pool2d(long_x, 15, 1)        # a few kernel calls long
            random_call(rng)
            counts["calls"] += 1
            if rss_warm is None and time.monotonic() > warm_end:
                rss_warm = rss_bytes()
            armed[0] = False
        except KeyboardInterrupt:
            armed[0] = False
            counts["interrupts"] += 1
            recheck = True
    armed[0] = False
    counts["rss_growth"] = rss_bytes() - (rss_warm or rss_bytes())
    print(json.dumps(counts), flush=True)


def interrupts(seconds, seed):
    """A child computing while this process sends it SIGINT at random moments
    (from its "ready" line until a second before its end, so that neither its
    imports nor its summary are interrupted)."""
    child = subprocess.Popen([sys.executable, __file__, "--interrupted-child", str(seconds),
                              "--seed", str(seed)], stdout=subprocess.PIPE, text=True)
    rng = np.random.default_rng(seed)
    stop = time.monotonic() + seconds - 1.5
    sent = 0
    try:
        if child.stdout.readline() != "ready\n":
            raise SystemExit("the interrupted child did not start")
        while time.monotonic() < stop and child.poll() is None:
            child.send_signal(signal.SIGINT)
            sent += 1
            time.sleep(float(rng.uniform(0.02, 0.4)))
        out, _ = child.communicate(timeout=seconds + 60)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    if child.returncode != 0:
        raise SystemExit(f"the interrupted child exited with {child.returncode}")
    counts = json.loads(out.strip().splitlines()[-1])
    print(f"interrupts: {sent} SIGINTs sent, {counts}", flush=True)
    if counts["interrupts"] == 0 or counts["rechecked"] == 0:
        raise SystemExit("no SIGINT reached the child: the phase proved nothing")
    if counts["rss_growth"] > RSS_GROWTH_BOUND:
        raise SystemExit(f"the interrupted child's RSS grew by "
                         f"{counts['rss_growth'] / 2**20:.1f} MiB after the warm-up")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--threads", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=int(time.time()) % 100000)
    parser.add_argument("--interrupted-child", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.interrupted_child is not None:
        return interrupted_child(args.interrupted_child, args.seed)
    # A hang anywhere: every thread's stack, then exit 1.
    faulthandler.dump_traceback_later(args.seconds * 3 + 180, exit=True)
    print(f"soak: seed {args.seed}, {args.seconds:.0f} s", flush=True)
    threads_and_forks(args.seconds / 2, args.threads, args.workers, args.seed)
    interrupts(args.seconds / 2, args.seed)
    print("soak passed", flush=True)


if __name__ == "__main__":
    sys.exit(main())
