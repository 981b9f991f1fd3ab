"""Coordinate the measuring workers of one thread count and build its run record.

One worker per implementation (worker.py), in its own process unless
``--in-process``.  A cell is (case, direction, dtype); every worker builds the
same inputs for it (same seed), runs it once untimed, and the coordinator
checks the results agree before anything is timed.  The implementations then
take turns over `rounds` interleaved rounds (A B C, B C A, C A B, ...), one
worker measuring at a time, so background load that comes and goes over
seconds hits all implementations of a cell alike.

`Session.cells()` yields each cell as soon as it is measured, and the run
record (`Session.run`) holds every finished cell at any moment, so an
interrupted run keeps what it measured.
"""
import json
import os
import subprocess
import sys

import numpy as np

from . import timing
from .worker import LAUNCHER, Worker, same_result


class WorkerDied(RuntimeError):
    """A measuring process ended or answered garbage."""


def _stderr_fd():
    """Where a worker's stdout goes: our stderr (stdout is the table's)."""
    try:
        return sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):   # e.g. a captured stderr
        return subprocess.DEVNULL


class LocalWorker:
    """A Worker in this process (``--in-process``)."""

    def __init__(self, impl):
        self.impl = impl
        self.worker = Worker(impl.name)

    def call(self, cmd, **args):
        return self.worker.handle(cmd, **args)

    def close(self):
        self.worker = None


class ProcessWorker:
    """A Worker in a child process started with `env`; see worker.py.

    The child gets its own session, so a Ctrl-C in the terminal reaches only
    the coordinator, which then stops it (close()); it also dies with the
    coordinator (PR_SET_PDEATHSIG) if that is killed outright."""

    def __init__(self, impl, env):
        self.impl = impl
        read_fd, write_fd = os.pipe()
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", LAUNCHER, ",".join(impl.preload), impl.name,
                 str(write_fd)],
                stdin=subprocess.PIPE, stdout=_stderr_fd(), env=env,
                pass_fds=(write_fd,), start_new_session=True, text=True)
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        self.replies = os.fdopen(read_fd, "r")

    def call(self, cmd, **args):
        try:
            self.proc.stdin.write(json.dumps({"cmd": cmd, "args": args}) + "\n")
            self.proc.stdin.flush()
            line = self.replies.readline()
        except (BrokenPipeError, OSError) as exc:
            raise WorkerDied(f"{self.impl.name} measuring process: {exc}") from None
        if not line:
            code = self.proc.wait()
            raise WorkerDied(f"the {self.impl.name} measuring process ended "
                             f"(exit code {code}) during {cmd!r}")
        reply = json.loads(line)
        if "failed" in reply:
            raise WorkerDied(f"{self.impl.name} {cmd}: {reply['failed']}")
        return reply["ok"]

    def close(self, grace=5.0):
        """Stop the process (asked to exit, then SIGTERM, then SIGKILL) and
        reap it: nothing is left running."""
        proc = self.proc
        try:
            if proc.poll() is None:
                try:
                    proc.stdin.write(json.dumps({"cmd": "exit"}) + "\n")
                    proc.stdin.flush()
                except (BrokenPipeError, OSError):
                    pass
                try:
                    proc.wait(timeout=0.2)
                except subprocess.TimeoutExpired:
                    proc.terminate()
                    try:
                        proc.wait(timeout=grace)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
        finally:
            for stream in (proc.stdin, self.replies):
                try:
                    stream.close()
                except OSError:
                    pass


class Progress:
    """One line per measurement on stderr; a single updating line on a TTY."""

    def __init__(self, total, stream=None):
        self.total, self.done = total, 0
        self.stream = stream or sys.stderr
        self.tty = getattr(self.stream, "isatty", lambda: False)()
        self.width = 0

    def __call__(self, text):
        self.done += 1
        line = f"[{self.done:>3}/{self.total}] {text}"
        if self.tty:
            pad = max(0, self.width - len(line))
            self.width = len(line)
            self.stream.write("\r" + line + " " * pad)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self):
        if self.tty and self.width:
            self.stream.write("\n")
            self.stream.flush()


def format_seconds(t):
    if t is None:
        return "-"
    if t >= 1:
        return f"{t:.3g} s"
    if t >= 1e-3:
        return f"{t * 1e3:.3g} ms"
    return f"{t * 1e6:.3g} us"


def _judge(replies, direction):
    """Whose result the others' must match: the reference's, else fastconv's
    (the reference runs no network)."""
    ran = lambda name: "fingerprint" in replies.get(name, {}).get(direction, {})  # noqa: E731
    return "reference" if ran("reference") else "fastconv"


class Session:
    """The workers of one thread count and the run record they fill.

    Use: start(); for cell in cells(...): ...; finish(); and always close().
    """

    def __init__(self, impls, threads, settings, env=None, in_process=False,
                 progress=True, rounds=3):
        self.impls, self.threads, self.s = impls, threads, settings
        self.env, self.in_process, self.rounds = env, in_process, rounds
        self.progress = progress
        self.workers = {}
        self.dead = {}      # impl name -> why its worker is gone
        self.run = None
        self.report = lambda text: None

    # -- lifecycle -------------------------------------------------------
    def start(self, dtypes, n_measurements, process_note, limits=True):
        """Start the workers and measure the machine's limits (GEMM rate and
        memory bandwidth, the yardsticks of the op rows; not with
        limits=False)."""
        steps = (2 * (len(dtypes) + 1) if limits else 0) + n_measurements
        if self.progress:
            self.report = Progress(steps)
        for impl in self.impls:
            extra = getattr(impl, "extra_env", lambda threads: {})(self.threads)
            self.workers[impl.name] = (LocalWorker(impl) if self.in_process
                                       else ProcessWorker(impl, dict(self.env or {}, **extra)))
        infos = {impl.name: self.workers[impl.name].call("setup", threads=self.threads)
                 for impl in self.impls}
        env = dict(infos["fastconv"]["environment"])
        env["versions"] = {name: info["version"] for name, info in infos.items()}
        for info in infos.values():   # e.g. torch_threads, torch_mkldnn
            env.update({k: v for k, v in info["environment"].items() if k.startswith("torch")})
        limits = self._limits(dtypes, "start") if limits else {"gemm": {}, "copy": None}
        s = self.s
        self.run = {
            "threads": self.threads, "environment": env, "process": process_note,
            "thread_notes": sorted({i["thread_note"] for i in infos.values() if i["thread_note"]}),
            "omp_wait_policy": {name: info["omp_wait_policy"] for name, info in infos.items()},
            "settings": {"budget_s": s["budget"], "min_repeats": s["min_repeats"],
                         "max_repeats": s["max_repeats"], "warmup_calls": 1,
                         "pause_s": s["pause"], "rounds": self.rounds, "seed": s["seed"]},
            "impls": [impl.name for impl in self.impls],
            "gemm": limits["gemm"], "copy": limits["copy"],
            "results": [], "complete": False,
        }
        self.run["environment"]["loadavg_start"] = self.run["environment"].get("loadavg")
        return self.run

    def finish(self):
        """The limits measured again after the cases (kept beside the first:
        a large drift means the machine's load changed), and the record
        marked complete."""
        if self.run["gemm"]:
            limits = self._limits(list(self.run["gemm"]), "end")
            self.run["gemm_end"], self.run["copy_end"] = limits["gemm"], limits["copy"]
        self.run["environment"]["loadavg"] = (list(os.getloadavg())
                                              if hasattr(os, "getloadavg") else None)
        self.run["complete"] = True
        return self.run

    def close(self):
        if self.progress and hasattr(self.report, "close"):
            self.report.close()
        for worker in self.workers.values():
            worker.close()
        self.workers = {}

    # -- measuring -------------------------------------------------------
    def _limits(self, dtypes, when):
        s = self.s
        got = self.workers["fastconv"].call("limits", dtypes=list(dtypes), gemm_n=s["gemm_n"],
                                            copy_bytes=s["copy_bytes"])
        for dtype, g in got["gemm"].items():
            self.report(f"GEMM {s['gemm_n']}^3 {dtype} ({when}): {g['gflops']:.1f} GFLOP/s")
        self.report(f"memory copy {s['copy_bytes'] >> 20} MiB ({when}): "
                    f"{got['copy']['gbps']:.1f} GB/s")
        return got

    def _call(self, name, cmd, **args):
        """A worker's reply, or {"error": ...} once its process is gone."""
        if name in self.dead:
            return {"error": self.dead[name]}
        try:
            return self.workers[name].call(cmd, **args)
        except WorkerDied as exc:
            self.dead[name] = str(exc)
            return {"error": str(exc)}

    def _prepare(self, case, dtype, directions):
        """({impl: {direction: error text or None}}, {impl: {direction: why
        not run}}): each worker runs the cell once; a result that disagrees
        with the reference (else fastconv) is an error and is not timed; a
        cell a library cannot run is left out of its column."""
        got = {impl.name: self._call(impl.name, "prepare", case=case.name, dtype=dtype,
                                     directions=directions, seed=self.s["seed"])
               for impl in self.impls}
        status, skipped = {}, {}
        for name, reply in got.items():
            status[name], skipped[name] = {}, {}
            for d in directions:
                mine = reply.get(d, reply)
                judge = _judge(got, d)
                want = got[judge].get(d, {})
                if "unsupported" in mine:
                    skipped[name][d] = mine["unsupported"]
                elif "error" in mine:
                    status[name][d] = mine["error"]
                elif name != judge and "fingerprint" in want:
                    diff = same_result(mine["fingerprint"], want["fingerprint"], dtype)
                    status[name][d] = diff and f"wrong result, not timed: {diff} ({judge}'s)"
                else:
                    status[name][d] = None
        return status, skipped

    def _time_cell(self, case, direction, errors):
        """Times of each implementation on one cell: `rounds` rounds, each
        giving every implementation a 1/rounds share of the budget and
        repeats, in an order rotated by one per round."""
        s, rounds = self.s, self.rounds
        per_round = -(-s["min_repeats"] // rounds)   # at least min_repeats in all
        times = {impl.name: [] for impl in self.impls}
        for r in range(rounds):
            for i in range(len(self.impls)):
                name = self.impls[(i + r) % len(self.impls)].name
                if name not in errors or errors[name]:   # not run here, or failed
                    continue
                got = self._call(name, "time", direction=direction,
                                 budget=s["budget"] / rounds, min_repeats=per_round,
                                 max_repeats=max(per_round, s["max_repeats"] // rounds),
                                 pause=s["pause"])
                if "error" in got:
                    errors[name] = got["error"]
                else:
                    times[name] += got["times"]
        return times

    def cells(self, cases, dtypes, directions):
        """Measure every cell, yielding each (also appended to run["results"])."""
        for dtype in dtypes:
            for case in cases:
                status, skipped = self._prepare(case, dtype, directions)
                for direction in directions:
                    errors = {name: st[direction] for name, st in status.items()
                              if direction in st}
                    times = self._time_cell(case, direction, errors)
                    cell = {"case": case.name, "op": case.op, "layer": case.describe(),
                            "direction": direction, "dtype": dtype,
                            "flops": case.flops(direction),
                            "images": getattr(case, "images", None),
                            "bytes": case.bytes_moved(direction, np.dtype(dtype).itemsize),
                            "impls": {}, "not_run": {}}
                    for impl in self.impls:
                        label = f"{case.name} {direction} {dtype} {impl.name}"
                        if impl.name not in errors:   # a pass or dtype this library lacks
                            cell["not_run"][impl.name] = skipped[impl.name][direction]
                            self.report(f"{label}: not run ({skipped[impl.name][direction]})")
                            continue
                        if errors[impl.name]:
                            cell["impls"][impl.name] = {"error": errors[impl.name]}
                            self.report(f"{label}: ERROR {errors[impl.name]}")
                            continue
                        stats = timing.summarize(times[impl.name])
                        cell["impls"][impl.name] = stats
                        self.report(f"{label}: {format_seconds(stats['median'])} "
                                    f"(median of {stats['repeats']})")
                    self.run["results"].append(cell)
                    yield cell
                for impl in self.impls:
                    self._call(impl.name, "release")
