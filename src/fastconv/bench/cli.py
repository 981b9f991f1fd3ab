"""`python -m fastconv.bench` / `fastconv-bench`: the benchmark comparison.

The parent process only parses options and prints the report.  Each thread
count is measured in a fresh child process (`python -m fastconv.bench
--child-out FILE ...`) whose environment pins the thread count of every
runtime (OMP_NUM_THREADS, OPENBLAS_NUM_THREADS, MKL_NUM_THREADS) and the
allocator policy (timing.MALLOC_ENV) from the first instruction on, so every
implementation runs under the same threads and the same malloc behaviour.
"""
import argparse
import json
import os
import site
import subprocess
import sys
import tempfile

from . import cases as case_table
from . import impls as impl_table
from . import report, runner, timing

QUICK = {"budget": 0.05, "gemm_n": 1024, "copy_bytes": 64 << 20, "pause": 0.02}
FULL = {"budget": 0.4, "gemm_n": 2048, "copy_bytes": 256 << 20, "pause": 0.15}


def _list(value):
    return [v.strip() for v in value.split(",") if v.strip()]


def _threads(value):
    try:
        counts = [int(v) for v in _list(value)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected thread counts like 2 or 1,2; got {value!r}")
    if not counts or any(n < 1 for n in counts):
        raise argparse.ArgumentTypeError(f"thread counts must be >= 1, got {value!r}")
    return counts


def build_parser():
    p = argparse.ArgumentParser(
        prog="python -m fastconv.bench",
        description="Time fastconv against its plain-NumPy reference (and PyTorch when "
                    "installed) on realistic conv and pooling layers, forward and "
                    "forward+backward, and print speedups and achieved GFLOP/s against "
                    "this machine's measured GEMM rate.")
    p.add_argument("--quick", action="store_true",
                   help="small cases and short timing budget (< 30 s): a smoke test")
    p.add_argument("--threads", type=_threads, default=None, metavar="N[,N...]",
                   help="thread count(s); one child process and one table per count "
                        "(default: fastconv's default, %(default)s = all usable cores "
                        "unless OMP_NUM_THREADS is set)")
    p.add_argument("--dtype", default="float32,float64", metavar="DTYPES",
                   help="float32, float64 or both comma-separated (default: both)")
    p.add_argument("--cases", default=None, metavar="NAMES",
                   help="comma-separated case names or globs (e.g. mid,deep or '*pool*'); "
                        "see --list")
    p.add_argument("--direction", default="fwd,fwd+bwd", metavar="PASSES",
                   help="fwd, fwd+bwd or both comma-separated (default: both)")
    p.add_argument("--impls", default=",".join(impl_table.IMPL_NAMES), metavar="NAMES",
                   help="implementations to time (default: fastconv,reference,torch; torch "
                        "only when installed; fastconv is always included)")
    p.add_argument("--budget", type=float, default=None, metavar="SECONDS",
                   help=f"target seconds per measurement (default {FULL['budget']}, "
                        f"--quick {QUICK['budget']})")
    p.add_argument("--min-repeats", type=int, default=3, metavar="N",
                   help="at least N timed calls per measurement (default 3)")
    p.add_argument("--max-repeats", type=int, default=100, metavar="N",
                   help="at most N timed calls per measurement (default 100)")
    p.add_argument("--json", default=None, metavar="PATH",
                   help="write all raw results (every repeat, settings, machine) as JSON")
    p.add_argument("--plot", default=None, metavar="PATH",
                   help="write a PNG bar chart of the speedups (needs the 'plot' extra: "
                        "matplotlib)")
    p.add_argument("--list", action="store_true", help="list the known cases and exit")
    p.add_argument("--in-process", action="store_true",
                   help="measure in this process instead of a child process (thread "
                        "counts then set via the libraries' APIs, allocator via mallopt)")
    p.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--child-out", default=None, help=argparse.SUPPRESS)
    return p


def _resolve(args, parser):
    dtypes = _list(args.dtype.replace("both", "float32,float64"))
    bad = [d for d in dtypes if d not in case_table.DTYPES]
    if bad or not dtypes:
        parser.error(f"--dtype: choose float32, float64 or both, got {args.dtype!r}")
    directions = _list(args.direction.replace("both", "fwd,fwd+bwd"))
    bad = [d for d in directions if d not in case_table.DIRECTIONS]
    if bad or not directions:
        parser.error(f"--direction: choose fwd, fwd+bwd or both, got {args.direction!r}")
    names = _list(args.impls)
    bad = [n for n in names if n not in impl_table.IMPL_NAMES]
    if bad:
        parser.error(f"--impls: unknown {', '.join(bad)}; choose from "
                     + ", ".join(impl_table.IMPL_NAMES))
    names = ["fastconv"] + [n for n in names if n != "fastconv"]
    notices = []
    impls = []
    for name in names:
        impl = impl_table.get(name)
        if impl.available():
            impls.append(impl)
        else:
            notices.append(f"{name} is not installed: its column is left out")
    try:
        cases, case_notices = case_table.select(_list(args.cases) if args.cases else None,
                                                quick=args.quick)
    except ValueError as exc:
        parser.error(str(exc))
    notices += case_notices
    if not cases:
        parser.error("no case left to run" + (f" ({'; '.join(case_notices)})"
                                              if case_notices else ""))
    return dtypes, directions, impls, cases, notices


def _settings(args):
    s = dict(QUICK if args.quick else FULL)
    if args.budget is not None:
        s["budget"] = args.budget
    return s


def _child_env(threads):
    """This environment plus the pinned thread counts and malloc policy, with
    the directory of the fastconv being measured first on PYTHONPATH."""
    import fastconv
    env = dict(os.environ)
    for var in timing.THREAD_ENV_VARS:
        env[var] = str(threads)
    env.update(timing.MALLOC_ENV)
    pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(fastconv.__file__)))
    site_dirs = set(getattr(site, "getsitepackages", lambda: [])())
    site_dirs.add(getattr(site, "getusersitepackages", lambda: "")())
    if pkg_parent not in site_dirs:  # a source tree: make the child import the same one
        env["PYTHONPATH"] = os.pathsep.join([pkg_parent] + [p for p in env.get(
            "PYTHONPATH", "").split(os.pathsep) if p])
    return env


def _child_argv(args, threads, cases, dtypes, directions, impls, out):
    argv = [sys.executable, "-m", "fastconv.bench", "--threads", str(threads),
            "--dtype", ",".join(dtypes), "--direction", ",".join(directions),
            "--cases", ",".join(c.name for c in cases),
            "--impls", ",".join(i.name for i in impls),
            "--min-repeats", str(args.min_repeats), "--max-repeats", str(args.max_repeats),
            "--seed", str(args.seed), "--child-out", out]
    if args.quick:
        argv.append("--quick")
    if args.budget is not None:
        argv += ["--budget", str(args.budget)]
    return argv


def _measure_here(args, threads, cases, dtypes, directions, impls, process_note):
    s = _settings(args)
    return runner.measure(cases, dtypes, directions, impls, threads, budget=s["budget"],
                          min_repeats=args.min_repeats, max_repeats=args.max_repeats,
                          gemm_n=s["gemm_n"], copy_bytes=s["copy_bytes"], pause=s["pause"],
                          seed=args.seed,
                          process_note=process_note)


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.min_repeats < 1 or args.max_repeats < args.min_repeats:
        parser.error("need 1 <= --min-repeats <= --max-repeats")

    if args.list:
        import fastconv  # noqa: F401 - fail early and loudly if not built
        for title, group in (("default", case_table.DEFAULT_CASES),
                             ("--quick", case_table.QUICK_CASES)):
            print(f"{title} cases:")
            for c in group:
                state = "" if case_table.available(c) else "  [not available in this build]"
                print(f"  {c.name:<13} {c.describe():<40} {c.note}{state}")
        return 0

    dtypes, directions, impls, cases, notices = _resolve(args, parser)

    if args.child_out:  # we are the measuring child: env already pinned by the parent
        note = ("measured in a child process started with the thread and malloc "
                "environment below (freed memory stays mapped and is reused, so no "
                "implementation pays first-touch page faults after the warm-up)")
        run = _measure_here(args, args.threads[0], cases, dtypes, directions, impls, note)
        with open(args.child_out, "w") as f:
            json.dump(run, f)
        return 0

    import fastconv
    if args.plot:
        report.require_matplotlib()  # fail now, not after minutes of measuring
    thread_counts = args.threads or [fastconv.get_num_threads()]
    cells = len(cases) * len(dtypes) * len(directions)
    print(f"fastconv.bench: {cells} cells ({len(cases)} cases x {len(directions)} passes x "
          f"{len(dtypes)} dtypes) x {len(impls)} implementations at "
          f"{'/'.join(map(str, thread_counts))} thread(s)"
          + ("" if args.in_process else "; measuring in a child process per thread count"),
          file=sys.stderr, flush=True)
    runs = []
    for threads in thread_counts:
        if args.in_process:
            how = timing.configure_malloc()
            runs.append(_measure_here(args, threads, cases, dtypes, directions, impls,
                                      f"measured in this process (--in-process); {how}"))
            continue
        fd, out = tempfile.mkstemp(prefix="fastconv-bench-", suffix=".json")
        os.close(fd)
        try:
            proc = subprocess.run(_child_argv(args, threads, cases, dtypes, directions,
                                              impls, out), env=_child_env(threads))
            if proc.returncode != 0:
                print(f"fastconv.bench: the measuring process for {threads} thread(s) "
                      f"failed (exit code {proc.returncode})", file=sys.stderr)
                return proc.returncode or 1
            with open(out) as f:
                runs.append(json.load(f))
        finally:
            os.unlink(out)

    doc = {"schema": "fastconv.bench/1", "argv": sys.argv[1:] if argv is None else list(argv),
           "quick": args.quick, "notices": notices, "runs": runs,
           "cases": {c.name: {"op": c.op, "layer": c.describe(), "note": c.note,
                              "x": c.x, "w": c.w, "kernel": c.kernel, "stride": c.stride,
                              "padding": c.padding, "groups": c.groups} for c in cases}}
    print(report.render(doc, cases), flush=True)
    if args.json:
        report.write_json(doc, args.json)
        print(f"raw results written to {args.json}", file=sys.stderr)
    if args.plot:
        report.plot(doc, args.plot)
        print(f"speedup chart written to {args.plot}", file=sys.stderr)
    return 0
