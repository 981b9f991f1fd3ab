"""`python -m fastconv.bench compare OLD.json NEW.json`: regression or noise?

Both files come from ``python -m fastconv.bench --json``, which keeps every
timed repeat.  For each cell (thread count, case, pass, dtype) measured in
both, the repeats of one implementation (fastconv by default) are compared:

* the ratio of medians, new / old (above 1: slower now);
* a 95% bootstrap confidence interval of that ratio (the repeats of each run
  resampled with replacement, a fixed seed, so the output is reproducible);
* a two-sided Mann-Whitney U test (exact for small samples, else the normal
  approximation with tie correction), its p-values adjusted for the number of
  cells compared (Holm), so that a suite of a hundred cells does not report
  its five unlucky ones as regressions.

A cell is "slower" only when all three agree: the adjusted p-value is below
--alpha, the ratio exceeds 1 + --threshold, and the whole interval lies above
1 ("faster" likewise).  Too few repeats to reach --alpha at all is reported
as "inconclusive", never as a verdict.  The exit status is 1 when any cell is
slower, so a script can gate on it.

Repeats within one run share that run's machine state, so a machine that is
busier during one whole run shifts every cell alike: the summary also prints
how the other implementations (which did not change) moved, as a control.
"""
import argparse
import json
import math
import sys

import numpy as np

BOOTSTRAP_SAMPLES = 2000
EXACT_LIMIT = 12   # both samples at most this long: exact U distribution


def _key(run, cell):
    return (run["threads"], cell["case"], cell["direction"], cell["dtype"])


def _times(doc, impl):
    """{cell key: repeats (seconds)} of `impl` in a result document."""
    out = {}
    for run in doc["runs"]:
        for cell in run["results"]:
            stats = cell["impls"].get(impl)
            if stats and "times" in stats:
                out[_key(run, cell)] = list(stats["times"])
    return out


def _u_statistic(a, b):
    """Mann-Whitney U of sample a (ties count one half) and the pooled ranks."""
    pooled = np.concatenate([a, b])
    order = np.argsort(pooled, kind="mergesort")
    ranks = np.empty(len(pooled))
    sorted_vals = pooled[order]
    i = 0
    while i < len(pooled):   # average ranks over ties
        j = i
        while j + 1 < len(pooled) and sorted_vals[j + 1] == sorted_vals[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    u = ranks[:len(a)].sum() - len(a) * (len(a) + 1) / 2
    return u, sorted_vals


def _exact_counts(n, m):
    """Number of arrangements giving each U = 0..n*m (no ties), by the
    recurrence f(n, m, u) = f(n-1, m, u-m) + f(n, m-1, u)."""
    table = {}

    def f(n, m):
        if (n, m) in table:
            return table[(n, m)]
        if n == 0 or m == 0:
            counts = np.zeros(n * m + 1)
            counts[0] = 1
        else:
            counts = np.zeros(n * m + 1)
            counts[m:] += f(n - 1, m)
            counts[:n * (m - 1) + 1] += f(n, m - 1)
        table[(n, m)] = counts
        return counts
    return f(n, m)


def mann_whitney_p(a, b):
    """Two-sided p-value of the Mann-Whitney U test of samples a and b."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    n, m = len(a), len(b)
    u, pooled = _u_statistic(a, b)
    mean = n * m / 2
    if max(n, m) <= EXACT_LIMIT and len(np.unique(pooled)) == n + m:
        counts = _exact_counts(n, m)
        lo = min(u, n * m - u)
        return float(min(1.0, 2 * counts[:int(math.floor(lo)) + 1].sum() / counts.sum()))
    _, tie_counts = np.unique(pooled, return_counts=True)
    total = n + m
    var = n * m / 12 * ((total + 1) - (tie_counts ** 3 - tie_counts).sum() / (total * (total - 1)))
    if var <= 0:
        return 1.0
    z = (abs(u - mean) - 0.5) / math.sqrt(var)
    return float(min(1.0, math.erfc(max(z, 0) / math.sqrt(2))))


def smallest_p(n, m):
    """The smallest two-sided p-value any data can give with n and m repeats."""
    return 2 / math.comb(n + m, n)


def bootstrap_ratio_ci(old, new, level=0.95, seed=0):
    """Bootstrap interval of median(new) / median(old)."""
    rng = np.random.default_rng(seed)
    old, new = np.asarray(old, float), np.asarray(new, float)
    mo = np.median(rng.choice(old, (BOOTSTRAP_SAMPLES, len(old))), axis=1)
    mn = np.median(rng.choice(new, (BOOTSTRAP_SAMPLES, len(new))), axis=1)
    tail = (1 - level) / 2 * 100
    return tuple(float(v) for v in np.percentile(mn / mo, [tail, 100 - tail]))


def holm(pvalues):
    """Holm-Bonferroni adjusted p-values, in the input order."""
    order = sorted(range(len(pvalues)), key=lambda i: pvalues[i])
    adjusted = [1.0] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(pvalues) - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def compare(old_doc, new_doc, impl="fastconv", threshold=0.1, alpha=0.05):
    """One dict per cell measured in both documents: ratio, interval, p,
    adjusted p and verdict ('slower', 'faster', 'same', 'inconclusive')."""
    old, new = _times(old_doc, impl), _times(new_doc, impl)
    rows = []
    for key in [k for k in old if k in new]:
        a, b = old[key], new[key]
        row = {"key": key, "old": float(np.median(a)), "new": float(np.median(b)),
               "repeats": (len(a), len(b))}
        row["ratio"] = row["new"] / row["old"]
        row["ci"] = bootstrap_ratio_ci(a, b)
        row["p"] = mann_whitney_p(a, b)
        row["testable"] = smallest_p(len(a), len(b)) < alpha
        rows.append(row)
    adjusted = holm([r["p"] for r in rows if r["testable"]])
    testable = iter(adjusted)
    for r in rows:
        r["p_adj"] = next(testable) if r["testable"] else None
        if not r["testable"]:
            r["verdict"] = "inconclusive"
        elif r["p_adj"] < alpha and r["ratio"] > 1 + threshold and r["ci"][0] > 1:
            r["verdict"] = "slower"
        elif r["p_adj"] < alpha and r["ratio"] < 1 / (1 + threshold) and r["ci"][1] < 1:
            r["verdict"] = "faster"
        else:
            r["verdict"] = "same"
    return rows


def _geomean_ratio(old_doc, new_doc, impl):
    old, new = _times(old_doc, impl), _times(new_doc, impl)
    ratios = [np.median(new[k]) / np.median(old[k]) for k in old if k in new]
    return math.exp(np.mean(np.log(ratios))) if ratios else None


def report_lines(old_doc, new_doc, rows, impl, threshold, alpha, show_all=False):
    lines = [f"{impl}: new / old median time per cell (above 1 = slower now); verdicts need "
             f"Holm-adjusted Mann-Whitney p < {alpha:g}, a change beyond {threshold:.0%} and a "
             "95% bootstrap interval on the same side of 1", ""]
    header = f"{'threads':>7}  {'case':<13} {'pass':<7} {'dtype':<7} {'old':>9} {'new':>9} " \
             f"{'new/old':>7}  {'95% interval':<15} {'p (adj)':>8}  verdict"
    lines += [header, "-" * len(header)]
    from .runner import format_seconds
    for r in rows:
        if not show_all and r["verdict"] == "same":
            continue
        threads, case, direction, dtype = r["key"]
        p = "-" if r["p_adj"] is None else f"{r['p_adj']:.3g}"
        verdict = r["verdict"] + (f" ({r['repeats'][0]}/{r['repeats'][1]} repeats)"
                                  if r["verdict"] == "inconclusive" else "")
        lines.append(f"{threads:>7}  {case:<13} {direction:<7} {dtype:<7} "
                     f"{format_seconds(r['old']):>9} {format_seconds(r['new']):>9} "
                     f"{r['ratio']:>7.3f}  [{r['ci'][0]:.3f}, {r['ci'][1]:.3f}]  {p:>8}  "
                     f"{verdict}")
    counts = {v: sum(r["verdict"] == v for r in rows)
              for v in ("slower", "faster", "same", "inconclusive")}
    lines += ["", f"{len(rows)} cells compared: " + ", ".join(f"{n} {v}" for v, n in counts.items())
              + ("" if show_all else " (only cells that are not 'same' listed; --all lists every cell)")]
    controls = []
    for other in sorted({i for run in new_doc["runs"] for i in run["impls"]} - {impl}):
        g = _geomean_ratio(old_doc, new_doc, other)
        if g:
            controls.append(f"{other} {g:.3f}")
    if controls:
        lines.append("control (implementations that did not change; far from 1.000 means the "
                     "machine changed between the runs): geometric-mean new/old "
                     + ", ".join(controls))
    return lines


def build_parser():
    p = argparse.ArgumentParser(
        prog="python -m fastconv.bench compare",
        description="Compare two `python -m fastconv.bench --json` files and tell "
                    "regressions from noise, using every timed repeat they keep. Exit "
                    "status 1 when a cell is significantly slower.")
    p.add_argument("old", help="the baseline JSON (before the change)")
    p.add_argument("new", help="the JSON to judge (after the change)")
    p.add_argument("--impl", default="fastconv", help="implementation to compare "
                   "(default fastconv)")
    p.add_argument("--threshold", type=float, default=0.1,
                   help="smallest relative change reported (default 0.1 = 10%%)")
    p.add_argument("--alpha", type=float, default=0.05,
                   help="significance level after the Holm adjustment (default 0.05)")
    p.add_argument("--all", action="store_true", help="list every cell, not only changes")
    return p


def _load(path, parser):
    try:
        with open(path) as f:
            doc = json.load(f)
    except (OSError, ValueError) as exc:
        parser.error(f"cannot read {path}: {exc}")
    if not isinstance(doc, dict) or not str(doc.get("schema", "")).startswith("fastconv.bench/"):
        parser.error(f"{path} is not a `python -m fastconv.bench --json` file")
    return doc


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not (0 < args.alpha < 1) or not (args.threshold >= 0):
        parser.error("need 0 < --alpha < 1 and --threshold >= 0")
    old, new = _load(args.old, parser), _load(args.new, parser)
    rows = compare(old, new, args.impl, args.threshold, args.alpha)
    if not rows:
        parser.error(f"no cell with {args.impl} times is in both files")
    for line in report_lines(old, new, rows, args.impl, args.threshold, args.alpha, args.all):
        print(line)
    return 1 if any(r["verdict"] == "slower" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
