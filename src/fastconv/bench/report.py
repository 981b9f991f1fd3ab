"""Turn run records into the printed table, the JSON file and the PNG plot."""
import json
import math

from .runner import format_seconds

IMPL_LABELS = {"fastconv": "fastconv", "reference": "reference", "torch": "torch"}


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
        limit = run.get("copy", {}).get("gbps")
        return gbps, "GB/s", (100 * gbps / limit if limit else None)
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
    if "torch" in env["versions"]:
        versions.append(f"torch {env['versions']['torch']}"
                        + (" [oneDNN/mkldnn on]" if env.get("torch_mkldnn") else ""))
    load = env.get("loadavg")
    n = run["threads"]
    thread_how = [f"fastconv.set_num_threads({n})"] + run.get("thread_notes", [])
    if "torch" in run["impls"]:
        thread_how.append(f"torch.set_num_threads({n})")
    set_env = {k: v for k, v in env["env"].items() if v}
    s = run["settings"]
    lines = [
        f"fastconv.bench: {', '.join(IMPL_LABELS[i] for i in run['impls'])} "
        f"at {n} thread{'s' if n != 1 else ''}",
        f"  date      {env['date_utc']} UTC",
        f"  machine   {env['cpu']}; {env['logical_cpus']} logical CPUs "
        f"({env['usable_cpus']} usable); {env['mem_total_gib']} GiB RAM"
        + (f"; load average (1/5/15 min) at start {_load(env.get('loadavg_start'))}, "
           f"at end {_load(load)}" if load else ""),
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
        "  limits    GEMM (best of np.matmul and fastconv's GEMM, " + ", ".join(
            f"{g['n']}^3 {d}: {g['gflops']:.1f} GFLOP/s [numpy {g.get('numpy_gflops', 0):.0f}, "
            f"fastconv {g.get('fastconv_gflops', 0):.0f}]" for d, g in run["gemm"].items())
        + f"); memory copy (np.copyto {run['copy']['nbytes'] >> 20} MiB): "
        f"{run['copy']['gbps']:.1f} GB/s; each the better median of a measurement before "
        "and after the cases",
    ]
    lines += [f"  NOTE      {text}" for text in notices]
    return lines


def table_lines(run):
    impls = run["impls"]
    others = [i for i in impls if i != "fastconv"]
    header = ["case", "pass", "dtype"] + [f"{IMPL_LABELS[i]}" for i in impls]
    header += [f"{'ref' if o == 'reference' else o}/fc" for o in others]
    header += ["fastconv rate", "% limit", "noise", "repeats"]
    align = "<<<" + ">" * (len(header) - 3)
    lines = []
    for dtype in dict.fromkeys(c["dtype"] for c in run["results"]):
        cells = [c for c in run["results"] if c["dtype"] == dtype]
        rows = []
        for c in cells:
            row = [c["case"], c["direction"], c["dtype"]]
            for i in impls:
                stats = c["impls"].get(i, {})
                row.append("error" if "error" in stats else format_seconds(stats.get("median")))
            row += [_fmt_x(speedup(c, o)) for o in others]
            value, unit, pct = rate(c, run)
            row.append("-" if value is None else f"{value:.3g} {unit}")
            row.append("-" if pct is None else f"{pct:.0f}%")
            spread = noise(c)
            row.append("-" if spread is None else f"{100 * spread:.0f}%")
            row.append("/".join(str(c["impls"].get(i, {}).get("repeats", "-")) for i in impls))
            rows.append(row)
        lines += _table(rows, header, align)
        summary = [f"{'reference' if o == 'reference' else o} {_fmt_x(geomean([speedup(c, o) for c in cells]))}"
                   for o in others]
        if summary:
            lines.append(f"geometric-mean speedup of fastconv over {len(cells)} {dtype} cells: "
                         + ", ".join(summary))
        lines.append("")
    return lines


LEGEND = [
    "columns: times are medians per call.  ref/fc = reference time / fastconv time and "
    "torch/fc = PyTorch time / fastconv time (> 1 means fastconv is faster).",
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
    "  backward ops directly (no autograd).",
]


def case_lines(runs, cases):
    names = dict.fromkeys(c["case"] for run in runs for c in run["results"])
    by_name = {c.name: c for c in cases}
    lines = ["cases:"]
    for name in names:
        case = by_name.get(name)
        if case is not None:
            lines.append(f"  {name:<13} {case.describe():<40} {case.note}")
    return lines


def render(doc, cases):
    """The full printed report for a result document (see write_json)."""
    lines = []
    for k, run in enumerate(doc["runs"]):
        lines += header_lines(run, doc.get("notices", ()) if k == 0 else ())
        lines.append("")
        if k == 0:
            lines += case_lines(doc["runs"], cases) + [""]
        lines += table_lines(run)
    lines += LEGEND
    return "\n".join(lines)


def write_json(doc, path):
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


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


def plot(doc, path):
    """Bar chart of fastconv's speedups (log scale), one panel per thread count."""
    plt = require_matplotlib()
    runs = doc["runs"]
    fig, axes = plt.subplots(len(runs), 1, squeeze=False,
                             figsize=(max(8, 0.35 * len(runs[0]["results"]) + 2), 4 * len(runs)))
    for ax, run in zip(axes[:, 0], runs):
        others = [i for i in run["impls"] if i != "fastconv"]
        cells = run["results"]
        labels = [f"{c['case']} {c['direction']} {c['dtype'].replace('float', 'f')}"
                  for c in cells]
        width = 0.8 / max(1, len(others))
        for j, other in enumerate(others):
            values = [speedup(c, other) or 0 for c in cells]
            xs = [i + (j - (len(others) - 1) / 2) * width for i in range(len(cells))]
            ax.bar(xs, values, width, label=f"{other} time / fastconv time")
        ax.axhline(1, color="black", linewidth=0.8)
        ax.set_yscale("log")
        ax.set_xticks(range(len(cells)))
        ax.set_xticklabels(labels, rotation=70, ha="right", fontsize=7)
        ax.set_ylabel("speedup of fastconv (log)")
        env = run["environment"]
        ax.set_title(f"fastconv speedup, {run['threads']} thread(s), {env['cpu']}", fontsize=9)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
