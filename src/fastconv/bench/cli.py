"""`python -m fastconv.bench` / `fastconv-bench`: the benchmark comparison.

This process parses the options, coordinates the measurement and prints the
report.  For each thread count, every implementation is measured in a fresh
worker process of its own (worker.py) whose environment pins the thread
count of every runtime (OMP_NUM_THREADS, OPENBLAS_NUM_THREADS,
MKL_NUM_THREADS) and the allocator policy (timing.MALLOC_ENV) from the first
instruction on; the workers take turns (runner.py).  Each table row is
printed as soon as its cell is measured.  Ctrl-C or SIGTERM stops the
workers and keeps what was measured: the rows printed so far, and the JSON
file with them (marked incomplete).

`python -m fastconv.bench compare OLD.json NEW.json` tells regressions from
noise (compare.py).
"""
import argparse
import math
import os
import signal
import sys
from typing import NamedTuple

from . import cases as case_table
from . import impls as impl_table
from . import report, runner, timing
from .._threads import machine_max_threads

QUICK = {"budget": 0.05, "gemm_n": 1024, "copy_bytes": 64 << 20, "pause": 0.02}
FULL = {"budget": 0.4, "gemm_n": 2048, "copy_bytes": 256 << 20, "pause": 0.15}


def _list(value):
    return [v.strip() for v in value.split(",") if v.strip()]


def _threads(value):
    try:
        counts = [int(v) for v in _list(value)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected thread counts like 2 or 1,2; got {value!r}")
    # fastconv would lower a larger count (with a warning) and the table would
    # name a count that never ran.
    cap = machine_max_threads()
    if not counts or any(n < 1 or n > cap for n in counts):
        raise argparse.ArgumentTypeError(
            f"thread counts must be between 1 and {cap} (4 per CPU this process may run "
            f"on, at least 8), got {value!r}")
    return counts


def _budget(value):
    try:
        budget = float(value)
    except ValueError:
        budget = math.nan
    if not (math.isfinite(budget) and budget > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {value!r}")
    return budget


def _cases(value):
    if not _list(value):
        raise argparse.ArgumentTypeError("expected case names or globs (see --list), got "
                                         f"{value!r}")
    return value


def build_parser():
    p = argparse.ArgumentParser(
        prog="python -m fastconv.bench",
        epilog="python -m fastconv.bench compare OLD.json NEW.json: regressions vs noise "
               "between two --json files (see compare --help).",
        description="Time fastconv against its plain-NumPy reference (and PyTorch and JAX when "
                    "installed) on realistic conv and pooling layers, forward and "
                    "forward+backward, and print speedups and achieved GFLOP/s against "
                    "this machine's measured GEMM rate.")
    p.add_argument("--quick", action="store_true",
                   help="small cases and short timing budget: a smoke test (longer with "
                        "each installed library that adds a column)")
    p.add_argument("--threads", type=_threads, default=None, metavar="N[,N...]",
                   help="thread count(s); one child process and one table per count "
                        "(default: fastconv's default, %(default)s = all usable cores "
                        "unless OMP_NUM_THREADS is set)")
    p.add_argument("--dtype", default="float32,float64", metavar="DTYPES",
                   help="float32, float64 or both comma-separated (default: both)")
    p.add_argument("--cases", type=_cases, default=None, metavar="NAMES",
                   help="comma-separated case names or globs (e.g. mid,deep or '*pool*'); "
                        "see --list")
    p.add_argument("--nets", action="store_true",
                   help="measure whole networks: a training step and an inference forward "
                        "of fastconv.nn models (SimpleConvNet, VGG-style, MobileNet-style, "
                        "ResNet) against their torch.nn twins; only them unless --cases "
                        "names others (the default run adds them when torch is installed)")
    p.add_argument("--direction", default="both", metavar="PASSES",
                   help="comma-separated passes: fwd, fwd+bwd (ops), infer, train, fused "
                        "(networks; fused = inference of nn.fuse's copy against "
                        "torch.fx's fuse), or both: fwd, fwd+bwd, infer and train (default)")
    p.add_argument("--impls", default=",".join(impl_table.IMPL_NAMES), metavar="NAMES",
                   help="implementations to time (default: fastconv,reference,torch,jax,"
                        "onnxruntime,tensorflow; the last four only when installed; fastconv "
                        "is always included)")
    p.add_argument("--budget", type=_budget, default=None, metavar="SECONDS",
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
                   help="measure in this process instead of a worker process per "
                        "implementation (thread counts then set via the libraries' APIs, "
                        "allocator via mallopt; all share one OpenMP runtime)")
    p.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    return p


class Phase(NamedTuple):
    """Cases of one kind ("ops" or "nets") with the passes and implementations
    they are measured in; one table per phase and thread count."""
    kind: str
    cases: list
    directions: list
    impls: list


PASSES = {"ops": case_table.DIRECTIONS,
          "nets": case_table.NET_DIRECTIONS + case_table.NET_EXTRA_DIRECTIONS}
# "both" (the default): every pass but the extra ones, measured when named.
DEFAULT_PASSES = case_table.DIRECTIONS + case_table.NET_DIRECTIONS
# Whole networks run on fastconv.nn and torch.nn only (nets.py).
NET_IMPLS = ("fastconv", "torch")


def _default_cases(args, impls, notices):
    """The op cases (unless --nets), and the network cases with --nets or
    when torch is measured."""
    chosen = [] if args.nets else list(case_table.QUICK_CASES if args.quick
                                       else case_table.DEFAULT_CASES)
    if args.nets or any(impl.name == "torch" for impl in impls):
        chosen += case_table.QUICK_NET_CASES if args.quick else case_table.NET_CASES
    else:
        notices.append("network cases (--nets) left out: torch is not measured")
    return chosen


def _phases(cases, directions, impls, notices):
    phases = []
    for kind, passes in PASSES.items():
        mine = [c for c in cases if (c.kind == "net") == (kind == "nets")]
        wanted = [d for d in directions if d in passes]
        if mine and not wanted:
            notices.append(f"--direction names no pass of the {kind} cases "
                           f"({', '.join(passes)}): they are left out")
        if not (mine and wanted):
            continue
        if kind == "nets":
            left_out = [i.name for i in impls if i.name not in NET_IMPLS]
            impls = [i for i in impls if i.name in NET_IMPLS]
            if left_out:
                notices.append(f"no network rows for {', '.join(left_out)} (networks run on "
                               "fastconv.nn and torch.nn only)")
            if "torch" not in [i.name for i in impls]:
                notices.append("torch is not measured: the network rows have no torch column")
        phases.append(Phase(kind, mine, wanted, impls))
    return phases


def _resolve(args, parser):
    dtypes = _list(args.dtype.replace("both", "float32,float64"))
    bad = [d for d in dtypes if d not in case_table.DTYPES]
    if bad or not dtypes:
        parser.error(f"--dtype: choose float32, float64 or both, got {args.dtype!r}")
    every_pass = [d for passes in PASSES.values() for d in passes]
    directions = _list(args.direction.replace("both", ",".join(DEFAULT_PASSES)))
    bad = [d for d in directions if d not in every_pass]
    if bad or not directions:
        parser.error(f"--direction: choose from {', '.join(every_pass)} or both, "
                     f"got {args.direction!r}")
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
        cases, case_notices = case_table.select(
            _list(args.cases) if args.cases else None, quick=args.quick,
            defaults=None if args.cases else _default_cases(args, impls, notices))
    except ValueError as exc:
        parser.error(str(exc))
    notices += case_notices
    phases = _phases(cases, directions, impls, notices)
    if not phases:
        parser.error("no case left to run" + (f" ({'; '.join(notices)})" if notices else ""))
    return dtypes, phases, notices


def _settings(args):
    s = dict(QUICK if args.quick else FULL)
    if args.budget is not None:
        s["budget"] = args.budget
    s.update(min_repeats=args.min_repeats, max_repeats=args.max_repeats, seed=args.seed)
    return s


class Stopped(Exception):
    """SIGTERM (or SIGINT) arrived: stop measuring, keep what was measured."""

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_stopped(signum, frame):
    raise Stopped(signum)


def _hold_signals():
    """From here on a second SIGTERM/SIGINT must not cut the report short."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_IGN)


def _stdout(line):
    print(line, flush=True)


def _measure(args, thread_counts, phases, dtypes, printers):
    """Every (thread count, phase)'s run record, streamed through its
    phase's printer; on Ctrl-C/SIGTERM, the runs so far (the last one
    incomplete) and the signal."""
    settings = _settings(args)
    runs, stopped = [], None
    for threads in thread_counts:
        for phase, printer in zip(phases, printers):
            if args.in_process:
                note = f"measured in this process (--in-process); {timing.configure_malloc()}"
            else:
                note = ("each implementation measured in its own worker process started with "
                        "the thread and malloc environment below (freed memory stays mapped "
                        "and is reused, so no implementation pays first-touch page faults "
                        "after the warm-up)")
            session = runner.Session(phase.impls, threads, settings,
                                     env=timing.worker_env(threads),
                                     in_process=args.in_process)
            begun = False
            try:
                run = session.start(dtypes, len(phase.cases) * len(dtypes)
                                    * len(phase.directions) * len(phase.impls), note,
                                    limits=phase.kind == "ops")
                run["kind"] = phase.kind
                runs.append(run)
                printer.begin(run)
                begun = True
                for cell in session.cells(phase.cases, dtypes, phase.directions):
                    printer.cell(cell)
                session.finish()
            except (Stopped, KeyboardInterrupt) as exc:
                _hold_signals()
                stopped = getattr(exc, "signum", signal.SIGINT)
            finally:
                session.close()
            if begun:
                printer.end(session.run)
            if stopped:
                return runs, stopped
    return runs, stopped


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["compare"]:
        from . import compare
        return compare.main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.min_repeats < 1 or args.max_repeats < args.min_repeats:
        parser.error("need 1 <= --min-repeats <= --max-repeats")

    if args.list:
        import fastconv  # noqa: F401 - fail early and loudly if not built
        for title, group in (("default", case_table.DEFAULT_CASES),
                             ("--quick", case_table.QUICK_CASES),
                             ("on request (--cases NAMES)",
                              case_table.OP_CASES + case_table.TINY_CASES),
                             ("network (--nets; the default run when torch is installed)",
                              case_table.NET_CASES),
                             ("--quick network", case_table.QUICK_NET_CASES)):
            print(f"{title} cases:")
            for c in group:
                state = "" if case_table.available(c) else "  [not available in this build]"
                print(f"  {c.name:<13} {c.describe():<40} {c.note}{state}")
        return 0

    dtypes, phases, notices = _resolve(args, parser)
    for option, path in (("--json", args.json), ("--plot", args.plot)):
        problem = path and report.check_writable(path, option)
        if problem:  # fail now, not after minutes of measuring
            parser.error(problem)
    if args.plot:
        report.require_matplotlib()

    import fastconv
    thread_counts = args.threads or [fastconv.get_num_threads()]
    for phase in phases:
        cells = len(phase.cases) * len(dtypes) * len(phase.directions)
        print(f"fastconv.bench: {phase.kind}: {cells} cells ({len(phase.cases)} cases x "
              f"{len(phase.directions)} passes x {len(dtypes)} dtypes) x "
              f"{len(phase.impls)} implementations at "
              f"{'/'.join(map(str, thread_counts))} thread(s)"
              + ("" if args.in_process else "; one worker process per implementation"),
              file=sys.stderr, flush=True)
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    signal.signal(signal.SIGTERM, _raise_stopped)
    try:
        printers = [report.Printer(_stdout, phase.cases, notices if not i else ())
                    for i, phase in enumerate(phases)]
        runs, stopped = _measure(args, thread_counts, phases, dtypes, printers)
        printers[0].legend()
        return _save(args, argv, runs, [c for p in phases for c in p.cases], notices,
                     stopped)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _save(args, argv, runs, cases, notices, stopped):
    """Write --json and --plot (whatever was measured); the exit status."""
    doc = {"schema": "fastconv.bench/1", "argv": argv, "quick": args.quick,
           "complete": not stopped and all(r["complete"] for r in runs),
           "notices": notices, "runs": runs,
           "cases": {c.name: c.record() for c in cases}}
    status = 128 + stopped if stopped else 0
    if stopped:
        print(f"fastconv.bench: stopped by {signal.Signals(stopped).name}; "
              f"{sum(len(r['results']) for r in runs)} measured cell(s) kept",
              file=sys.stderr, flush=True)
    if not any(r["results"] for r in runs) and stopped:
        return status   # nothing measured: leave any previous file alone
    for option, path, write in (("--json", args.json, report.write_json),
                                ("--plot", args.plot, report.plot)):
        if not path:
            continue
        try:
            write(doc, path)
        except OSError as exc:
            print(f"fastconv.bench: could not write {option} {path}: "
                  f"{exc.strerror or exc}; any previous file is unchanged", file=sys.stderr)
            status = status or 1
            continue
        print(f"{option[2:]} written to {path}", file=sys.stderr)
    return status
