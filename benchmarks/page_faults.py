"""Page faults and time per training step, glibc's default allocator policy
against the benchmark's (fastconv.bench.timing.MALLOC_ENV: freed memory stays
mapped and is reused).

    PYTHONPATH=src python benchmarks/page_faults.py [--nets mobilenet,vgg]
        [--libs fastconv,torch] [--threads 1] [--steps 5] [--rounds 2]

Every (library, network, policy) runs in a fresh child process (the policy is
read by glibc at start-up and cannot be undone in a running process), in
interleaved rounds (default, tuned, default, tuned, ...), so load that comes and
goes hits both policies alike.  A child builds the network (nets.py), runs two
untimed steps, then `--steps` timed ones, and reports minor page faults
(getrusage) and the median time per step.  Times on a shared machine are
indicative; the fault counts are not sensitive to load.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

CHILD = "--child"


def _child(lib, name, threads, steps):
    if lib == "torch":
        import torch  # noqa: F401 - first, as the benchmark's torch worker does
    import numpy as np

    import fastconv
    from fastconv.bench import impls, nets
    case = {c.name: c for c in nets.NET_CASES + nets.QUICK_NET_CASES}[name]
    adapter = impls.get(lib)
    adapter.set_threads(threads)
    fastconv.set_num_threads(threads)
    state = adapter.convert(case.make_inputs(np.float32, "train"))
    step = adapter.call(case, "train")
    for _ in range(2):
        step(state)
    faults, times = [], []
    for _ in range(steps):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        t0 = time.perf_counter()
        step(state)
        times.append(time.perf_counter() - t0)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    print(json.dumps({"faults": statistics.median(faults), "time": statistics.median(times)}))


def _run(lib, name, threads, steps, tuned):
    from fastconv.bench import timing
    env = dict(os.environ)
    for var in timing.THREAD_ENV_VARS:
        env[var] = str(threads)
    for var in timing.MALLOC_ENV:
        env.pop(var, None)
    if tuned:
        env.update(timing.MALLOC_ENV)
    out = subprocess.run([sys.executable, __file__, CHILD, lib, name, str(threads),
                          str(steps)], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nets", default="simplecnn,vgg,mobilenet,resnet")
    p.add_argument("--libs", default="fastconv,torch")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args()
    print(f"{'library':<9} {'network':<10} {'policy':<8} {'faults/step':>11} "
          f"{'ms/step':>8}  (median per step; medians over {args.rounds} rounds)")
    for lib in args.libs.split(","):
        for name in args.nets.split(","):
            got = {False: [], True: []}
            for _ in range(args.rounds):
                for tuned in (False, True):
                    got[tuned].append(_run(lib, name, args.threads, args.steps, tuned))
            for tuned, results in got.items():
                print(f"{lib:<9} {name:<10} {'tuned' if tuned else 'default':<8} "
                      f"{statistics.median(r['faults'] for r in results):>11.0f} "
                      f"{1e3 * statistics.median(r['time'] for r in results):>8.1f}",
                      flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] == [CHILD]:
        _child(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    else:
        main()
