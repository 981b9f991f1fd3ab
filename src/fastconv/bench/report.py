"""Turn run records into the printed table, the JSON file and the PNG plot."""
import json
import math
import os
import tempfile

from .runner import format_seconds

IMPL_LABELS = {"fastconv": "fastconv", "reference": "reference", "torch": "torch", "jax": "jax",
               "onnxruntime": "ort", "tensorflow": "tf"}
RATIO_LABELS = {"reference": "ref"}   # column "ref/fc"; others "<label>/fc"


def median(cell, impl):
    stats = cell["impls"].get(impl)
    return None if stats is None or "error" in stats else stats["median"]


def speedup(cell, other, base="fastconv"):
    """other's median time / base's median time (None when either is missing)."""
    t_other, t_base = median(cell, other), median(cell, base)
    if t_other is None or not t_base:
        return None
    return t_other / t_base


def rate(cell, run, impl="fastconv"):
    """(value, unit, percent of the machine limit) for impl on this cell."""
    t = median(cell, impl)
    if t is None:
        return None, "", None
    if cell["flops"]:
        gflops = cell["flops"] / t / 1e9
        limit = run["gemm"].get(cell["dtype"], {}).get("gflops")
        return gflops, "GFLOP/s", (100 * gflops / limit if limit else None)
    if cell["bytes"]:
        gbps = cell["bytes"] / t / 1e9
        limit = (run.get("copy") or {}).get("gbps")
        return gbps, "GB/s", (100 * gbps / limit if limit else None)
    if cell.get("images"):
        return cell["images"] / t, "img/s", None
    return None, "", None


def geomean(values):
    values = [v for v in values if v]
    if not values:
        return None
    return math.exp(sum(map(math.log, values)) / len(values))


def _fmt_x(v):
    return "-" if v is None else (f"{v:.1f}x" if v >= 10 else f"{v:.2f}x")


def _table(rows, header, align):
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    fmt = lambda r: "  ".join(  # noqa: E731
        (str(c).ljust(w) if a == "<" else str(c).rjust(w)) for c, w, a in zip(r, widths, align))
    lines = [fmt(header), "  ".join("-" * w for w in widths)]
    lines += [fmt(r) for r in rows]
    return lines


# fastconv config() keys printed on other header lines (or not informative there).
_SHOWN_ELSEWHERE = {"fastconv", "compiler", "flags", "openmp", "python", "numpy",
                    "platform", "threads"}


def _load(values):
    return "?" if not values else " ".join(f"{v:.2f}" for v in values)


def noise(cell):
    """Worst relative spread (interquartile range / median) among the
    implementations of a cell: how much to trust its ratios."""
    spreads = [(s["q3"] - s["q1"]) / s["median"] for s in cell["impls"].values()
               if "error" not in s and s["median"] > 0]
    return max(spreads) if spreads else None


def header_lines(run, notices=()):
    env = run["environment"]
    fc = env["fastconv"]
    blas = env.get("blas", {})
    blas_text = " ".join(str(v) for v in (blas.get("name"), blas.get("version")) if v)
    if blas.get("architecture"):
        blas_text += f" ({blas['architecture']} kernels)"
    versions = [f"python {env['python']}", f"numpy {env['numpy']}"
                + (f" [{blas_text}]" if blas_text else "")]
    for name, version in env["versions"].items():
        if name not in ("fastconv", "reference"):
            versions.append(f"{name} {version}" + (" [oneDNN/mkldnn on]" if name == "torch"
                                                   and env.get("torch_mkldnn") else ""))
    load = env.get("loadavg")
    n = run["threads"]
    thread_how = [f"fastconv.set_num_threads({n})"] + run.get("thread_notes", [])
    if "torch" in run["impls"]:
        thread_how.append(f"torch.set_num_threads({n})")
    set_env = {k: v for k, v in env["env"].items() if v}
    s = run["settings"]
    lines = [
        f"fastconv.bench{' networks' if run.get('kind') == 'nets' else ''}: "
        f"{', '.join(IMPL_LABELS[i] for i in run['impls'])} "
        f"at {n} thread{'s' if n != 1 else ''}",
        f"  date      {env['date_utc']} UTC",
        f"  machine   {env['cpu']}; {env['logical_cpus']} logical CPUs "
        f"({env['usable_cpus']} usable); {env['mem_total_gib']} GiB RAM"
        + (f"; load average (1/5/15 min) at start {_load(env.get('loadavg_start'))}"
           if load else ""),
        f"  platform  {env['platform']}",
        f"  versions  " + "; ".join(versions),
        f"  fastconv  {fc.get('fastconv', '?')} built by {fc.get('compiler', '?')} "
        f"[{fc.get('flags', '?')}], OpenMP {'on' if fc.get('openmp') else 'off'}"
        + "".join(f", {k.replace('_', ' ')}: {v}" for k, v in fc.items()
                  if k not in _SHOWN_ELSEWHERE),
        f"  threads   {n}: " + ", ".join(thread_how),
        f"  process   {run['process']}",
        "  env       " + (" ".join(f"{k}={v}" for k, v in set_env.items()) or "(none set)"),
        f"  timing    median of repeated calls in one process; repeats sized to "
        f"~{s['budget_s']:g} s per measurement (min {s['min_repeats']}, "
        f"max {s['max_repeats']}), taken in {s.get('rounds', 1)} interleaved round(s), each "
        f"after a {s.get('pause_s', 0):g} s idle pause and 1 warm-up call; every "
        "implementation gets the same inputs",
    ]
    if run["gemm"]:
        lines.append(
            "  limits    GEMM (best of np.matmul and fastconv's GEMM, " + ", ".join(
                f"{g['n']}^3 {d}: {g['gflops']:.1f} GFLOP/s [numpy "
                f"{g.get('numpy_gflops', 0):.0f}, fastconv {g.get('fastconv_gflops', 0):.0f}]"
                for d, g in run["gemm"].items())
            + f"); memory copy (np.copyto {run['copy']['nbytes'] >> 20} MiB): "
            f"{run['copy']['gbps']:.1f} GB/s; medians measured before the cases (again after "
            "them: see below the table)")
    if run.get("omp_wait_policy"):
        lines.insert(-2 if run["gemm"] else -1,
                     "  OpenMP    each implementation in its own process, wait policy "
                     + "; ".join(f"{k}: {v}" for k, v in run["omp_wait_policy"].items()))
    lines += [f"  NOTE      {text}" for text in notices]
    return lines


class Table:
    """The results table of one run with fixed column widths, so rows can be
    printed one by one as cells finish (and the same rows again from JSON)."""

    def __init__(self, run, case_names):
        self.run = run
        self.impls = run["impls"]
        self.others = [i for i in self.impls if i != "fastconv"]
        header = ["case", "pass", "dtype"] + [IMPL_LABELS.get(i, i) for i in self.impls]
        header += [f"{RATIO_LABELS.get(o, IMPL_LABELS.get(o, o))}/fc" for o in self.others]
        header += ["fastconv rate", "% limit", "noise", "repeats"]
        widths = [max([4] + [len(n) for n in case_names]), 7, 7]
        widths += [8] * len(self.impls) + [6] * len(self.others)
        widths += [11, 7, 5, 4 * len(self.impls) - 1]
        self.widths = [max(w, len(h)) for w, h in zip(widths, header)]
        self.align = "<<<" + ">" * (len(header) - 3)
        self.header = header

    def _fmt(self, row):
        return "  ".join((str(c).ljust(w) if a == "<" else str(c).rjust(w))
                         for c, w, a in zip(row, self.widths, self.align)).rstrip()

    def head(self):
        return [self._fmt(self.header), "  ".join("-" * w for w in self.widths)]

    def row(self, c):
        row = [c["case"], c["direction"], c["dtype"]]
        for i in self.impls:
            stats = c["impls"].get(i, {})
            row.append("error" if "error" in stats else
                       "n/a" if _not_applicable(c, i) else format_seconds(stats.get("median")))
        row += [_fmt_x(speedup(c, o)) for o in self.others]
        value, unit, pct = rate(c, self.run)
        row.append("-" if value is None else f"{value:.3g} {unit}" if value < 100
                   else f"{value:.0f} {unit}")
        row.append("-" if pct is None else f"{pct:.0f}%")
        spread = noise(c)
        row.append("-" if spread is None else f"{100 * spread:.0f}%")
        row.append("/".join(str(c["impls"].get(i, {}).get("repeats", "-")) for i in self.impls))
        return self._fmt(row)

    def summary(self, dtype):
        """The geometric-mean line of one dtype's cells (None without others)."""
        cells = [c for c in self.run["results"] if c["dtype"] == dtype]
        parts = [f"{o} {_fmt_x(geomean([speedup(c, o) for c in cells]))}" for o in self.others]
        if not parts or not cells:
            return None
        return (f"geometric-mean speedup of fastconv over {len(cells)} {dtype} cells: "
                + ", ".join(parts))

    def errors(self):
        """One line per error text (a cell's 'error' entries say only that)."""
        seen = {}
        for c in self.run["results"]:
            for impl, stats in c["impls"].items():
                if "error" in stats:
                    seen.setdefault((impl, stats["error"]), []).append(
                        f"{c['case']} {c['direction']} {c['dtype']}")
        return [f"error: {impl} on {', '.join(where)}: {text}"
                for (impl, text), where in seen.items()]

    def not_applicable(self):
        """One line per reason a library has no such op or pass (its "n/a"
        cells); a library merely lacking a backward pass ("-") goes unsaid."""
        seen = {}
        for c in self.run["results"]:
            for impl in self.impls:
                where = seen.setdefault((impl, c["not_run"].get(impl)), [])
                if _not_applicable(c, impl) and c["case"] not in where:
                    where.append(c["case"])
        return [f"n/a: {IMPL_LABELS.get(impl, impl)} on {', '.join(where)}: "
                f"{text[len('n/a: '):]}" for (impl, text), where in seen.items() if where]


def _not_applicable(cell, impl):
    """True when `impl` was not run on this cell because its library has no
    such op, pass or dtype (the adapters' reasons starting "n/a")."""
    return cell.get("not_run", {}).get(impl, "").startswith("n/a")


def end_lines(run):
    """What the run measured after the cases, or that it was interrupted."""
    if not run.get("complete"):
        return [f"INTERRUPTED: {len(run['results'])} cell(s) measured at "
                f"{run['threads']} thread(s) before the run was stopped; they are kept.", ""]
    gemm = ", ".join(f"{d} {g['gflops']:.1f} GFLOP/s (before: {run['gemm'][d]['gflops']:.1f})"
                     for d, g in run.get("gemm_end", {}).items())
    copy = run.get("copy_end")
    if not gemm:
        return []
    return [f"limits measured again after the cases: GEMM {gemm}; memory copy "
            f"{copy['gbps']:.1f} GB/s (before: {run['copy']['gbps']:.1f}); "
            "% limit used the first measurement; load average at end "
            f"{_load(run['environment'].get('loadavg'))}", ""]


LEGEND = [
    "columns: times are medians per call.  ref/fc = reference time / fastconv time and "
    "torch/fc = PyTorch time / fastconv time, likewise jax/fc, tf/fc and ort/fc (ONNX "
    "Runtime, forward only) (> 1 means fastconv is faster).",
    "  fastconv rate: conv rows GFLOP/s = 2*N*C_out*(C_in/groups)*kH*kW*OH*OW / time "
    "(x3 for fwd+bwd), % limit = share of the measured GEMM rate of that dtype (the",
    "  better of NumPy's BLAS and fastconv's GEMM on a large square product): the "
    "physical limit for convolution via GEMM;",
    "  the rate counts the direct sum's multiply-adds, so 3x3 stride-1 convs, run by "
    "Winograd F(2x2,3x3) with 2.25x fewer, can pass 100%;",
    "  pool rows GB/s = least bytes read+written / time, % limit = share of the measured "
    "memory-copy bandwidth.",
    "  noise = largest interquartile range / median among the implementations of the row "
    "(large values: a busy machine; rerun before trusting that row).",
    "  repeats = timed calls per implementation in column order.  fwd+bwd = forward then the "
    "backward op on a given upstream gradient; torch backward calls the ATen",
    "  backward ops directly (no autograd).  Every implementation's result is checked "
    "against the reference (else fastconv) before it is timed.",
    "  network rows (--nets): train = one training step (zero_grad, forward, "
    "CrossEntropyLoss, backward, SGD momentum 0.9 step) of fastconv.nn vs torch.nn",
    "  (autograd) with the same weights; infer = one eval-mode forward under no_grad; "
    "fastconv rate = images per second; the first step's loss and every",
    "  gradient, and the inference output, are checked against fastconv's before timing.",
]


def case_lines(cases):
    lines = ["cases:"]
    for case in cases:
        lines.append(f"  {case.name:<13} {case.describe():<40} {case.note}".rstrip())
    return lines


class Printer:
    """Writes the report line by line as a run progresses: header, then a
    table row per finished cell, then the summaries (see render)."""

    def __init__(self, write, cases, notices=()):
        self.write, self.cases, self.notices = write, cases, list(notices)
        self.first = True
        self.table = self.last = None

    def _lines(self, lines):
        for line in lines:
            self.write(line)

    def begin(self, run):
        lines = header_lines(run, self.notices if self.first else ()) + [""]
        if self.first:
            lines += case_lines(self.cases) + [""]
        self.first = False
        self.table = Table(run, [c.name for c in self.cases])
        self.last = None
        self._lines(lines + self.table.head())

    def cell(self, c):
        if self.last is not None and c["dtype"] != self.last:
            self._lines([self.table.summary(self.last) or "", ""] + self.table.head())
        self.write(self.table.row(c))
        self.last = c["dtype"]

    def end(self, run):
        lines = [self.table.summary(self.last)] if self.last else []
        self._lines([line for line in lines if line] + self.table.errors()
                    + self.table.not_applicable() + [""]
                    + end_lines(run))

    def legend(self):
        self._lines(LEGEND)


def render(doc, cases):
    """The full printed report for a result document (see write_json): the
    same lines the command printed while it measured."""
    lines = []
    printer = Printer(lines.append, cases, doc.get("notices", ()))
    for run in doc["runs"]:
        printer.begin(run)
        for c in run["results"]:
            printer.cell(c)
        printer.end(run)
    printer.legend()
    return "\n".join(lines)


def check_writable(path, option):
    """None when a file can be created at `path` (tried for real, with a
    temporary file in its directory, removed again), else why not."""
    path = os.path.abspath(path)
    if os.path.isdir(path):
        return f"{option} {path} is a directory"
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        return f"{option}: directory {directory} does not exist"
    if os.path.exists(path) and not os.access(path, os.W_OK):
        return f"{option}: {path} is not writable"
    try:
        fd, probe = tempfile.mkstemp(dir=directory, prefix=".fastconv-bench-probe-")
    except OSError as exc:
        return f"{option}: cannot create files in {directory} ({exc.strerror or exc})"
    os.close(fd)
    os.unlink(probe)
    return None


def write_atomic(path, write):
    """Write a file through a temporary file in the same directory, renamed
    over `path` only when complete: a failed write leaves the previous file
    as it was and no temporary file behind."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.",
                               suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_json(doc, path):
    write_atomic(path, lambda f: f.write((json.dumps(doc, indent=1) + "\n").encode()))


def require_matplotlib():
    """matplotlib.pyplot (Agg backend), or SystemExit naming the `plot` extra."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise SystemExit(f"--plot needs matplotlib, which is not installed ({exc}). "
                         "Install the optional extra: pip install 'fastconv[plot]' "
                         "(or pip install matplotlib).") from None
    return plt


# One colour per implementation, the same in every panel and every chart.
IMPL_COLOURS = {"reference": "#4C72B0", "torch": "#DD8452", "jax": "#55A868",
                "onnxruntime": "#8172B3", "tensorflow": "#C44E52"}
_TICKS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000)


def _panels(doc):
    """(run, dtype, cells) per panel: one panel per thread count and dtype."""
    for run in doc["runs"]:
        for dtype in dict.fromkeys(c["dtype"] for c in run["results"]):
            yield run, dtype, [c for c in run["results"] if c["dtype"] == dtype]


def plot(doc, path):
    """Bar chart of fastconv's speedup over each other implementation: one
    panel per thread count and dtype, cells grouped by case and pass, one
    colour per implementation, each bar labelled with its value, and a line
    at 1x (above it fastconv is faster).  Returns the panels' titles and bar
    labels (what a reader sees), for tests."""
    plt = require_matplotlib()
    from matplotlib.ticker import FixedLocator, NullLocator
    panels = list(_panels(doc))
    if not panels:
        raise ValueError("no measured cell to plot")
    most = max(len(cells) for _, _, cells in panels)
    fig, axes = plt.subplots(len(panels), 1, squeeze=False,
                             figsize=(max(8.0, 1.3 * most + 2), 3.6 * len(panels)))
    shown = []
    for ax, (run, dtype, cells) in zip(axes[:, 0], panels):
        others = [i for i in run["impls"] if i != "fastconv"]
        width = 0.8 / max(1, len(others))
        values_all = []
        labels = []
        for j, other in enumerate(others):
            values = [speedup(c, other) for c in cells]
            xs = [i + (j - (len(others) - 1) / 2) * width for i in range(len(cells))]
            bars = ax.bar(xs, [v if v else float("nan") for v in values], width * 0.95,
                          color=IMPL_COLOURS.get(other, "#937860"),
                          label=f"{IMPL_LABELS.get(other, other)} time / fastconv time")
            texts = [_fmt_x(v) if v else "" for v in values]
            ax.bar_label(bars, labels=texts, fontsize=7, padding=2)
            labels += texts
            values_all += [v for v in values if v]
        ax.axhline(1, color="black", linewidth=1, linestyle="--")
        ax.text(1.0, 1, " 1x", transform=ax.get_yaxis_transform(), va="center", fontsize=8)
        ax.set_yscale("log")
        low = min(values_all + [1]) / 1.6
        high = max(values_all + [1]) * 2.0
        ax.set_ylim(low, high)
        ax.yaxis.set_major_locator(FixedLocator([t for t in _TICKS if low <= t <= high]))
        ax.yaxis.set_minor_locator(NullLocator())
        ax.set_yticklabels([f"{t:g}x" for t in _TICKS if low <= t <= high])
        ax.set_xticks(range(len(cells)))
        ax.set_xticklabels([f"{c['case']}\n{c['direction']}" for c in cells], fontsize=8)
        ax.set_xlim(-0.6, len(cells) - 0.4)
        ax.set_ylabel("speedup of fastconv")
        ax.grid(axis="y", alpha=0.3)
        threads = run["threads"]
        title = (f"{dtype}, {threads} thread{'s' if threads != 1 else ''}: how many times "
                 f"faster fastconv is ({run['environment']['cpu']})")
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=8, loc="upper left")
        shown.append({"title": title, "labels": labels})
    fig.tight_layout()
    write_atomic(path, lambda f: fig.savefig(f, format="png", dpi=110))
    plt.close(fig)
    return shown
