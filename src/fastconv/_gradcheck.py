"""fastconv.gradcheck: analytic gradients against central differences."""
import numpy as np

from .nn import no_grad

__all__ = ["gradcheck", "GradcheckResult"]


class GradcheckResult:
    """Outcome of a gradcheck: ``passed``, ``max_rel_error`` and one row per
    array (``rows``: dicts with index, shape, checked, max_abs_error,
    max_rel_error, worst element, analytic and numerical values there);
    ``str()`` is the human-readable report."""

    def __init__(self, rows, atol, rtol):
        self.rows, self.atol, self.rtol = rows, atol, rtol
        self.passed = all(r["passed"] for r in rows)
        self.max_rel_error = max((r["max_rel_error"] for r in rows), default=0.0)

    def __bool__(self):
        return self.passed

    def __str__(self):
        lines = [f"gradcheck {'passed' if self.passed else 'FAILED'} "
                 f"(atol={self.atol:g}, rtol={self.rtol:g}; "
                 f"rel = |analytic - numerical| / max(|analytic|, |numerical|, atol))"]
        for r in self.rows:
            if r["checked"] == 0:
                lines.append(f"  array {r['index']} {r['shape']}: skipped ({r['why']})")
                continue
            lines.append(
                f"  array {r['index']} {r['shape']}: {r['checked']} of {r['size']} elements, "
                f"max abs err {r['max_abs_error']:.3e}, max rel err {r['max_rel_error']:.3e}"
                f" at {r['worst']} (analytic {r['analytic']:.6e}, numerical "
                f"{r['numerical']:.6e}){'' if r['passed'] else '  <-- FAIL'}")
        return "\n".join(lines)

    __repr__ = __str__


def gradcheck(fn, *arrays, eps=1e-6, atol=1e-5, rtol=1e-3, n_samples=30, seed=0,
              raise_exception=True):
    """Check the gradients `fn` computes against central differences.

    ``fn(*arrays)`` must return ``(output, backward)``: the output (an array or
    a scalar) and a function ``backward(grad_output)`` returning the gradient
    with respect to each of `arrays` (a tuple in the same order; None for an
    array not to check). This is the vector-Jacobian form, so a layer is
    checked by::

        def f(x, w, b):                 # w, b: the layer's own params arrays
            layer.zero_grad()           # backward adds into grads
            y = layer.forward(x)
            return y, lambda gy: (layer.backward(gy), layer.grads["weight"],
                                  layer.grads["bias"])
        fastconv.gradcheck(f, x, layer.params["weight"], layer.params["bias"])

    A random ``grad_output`` g (fixed by `seed`) turns the output into the
    scalar ``sum(output * g)``; for up to `n_samples` random elements of each
    array, that scalar is evaluated with the element moved by +eps and -eps
    (in place: `fn` sees the same array objects, so arrays held by a layer may
    be passed) and ``(f(+) - f(-)) / 2 eps`` is compared with the analytic
    gradient. Those evaluations run under fastconv.nn.no_grad(), so layers
    keep no cache for them. Every array must be float64: float32 differences
    are mostly rounding noise. An element passes when |analytic - numerical|
    <= atol + rtol * |numerical|.

    Returns a GradcheckResult (truthy when passed; ``print`` it for the
    per-array relative-error report); raises AssertionError carrying the report
    on failure unless ``raise_exception=False``. The arrays are restored
    afterwards.
    """
    for i, a in enumerate(arrays):
        if not isinstance(a, np.ndarray) or a.dtype != np.float64:
            raise TypeError(f"gradcheck: array {i} must be a float64 ndarray, got "
                            f"{type(a).__name__} of dtype {getattr(a, 'dtype', None)}; "
                            f"build layers with dtype=np.float64 to check them")
        if not a.flags.writeable:
            raise ValueError(f"gradcheck: array {i} must be writeable (it is perturbed "
                             f"in place)")
    rng = np.random.default_rng(seed)

    out, backward = fn(*arrays)
    out = np.asarray(out, dtype=np.float64)
    cot = rng.standard_normal(out.shape)
    grads = backward(cot if out.ndim else float(cot))
    if not isinstance(grads, (tuple, list)):
        grads = (grads,)
    if len(grads) != len(arrays):
        raise ValueError(f"gradcheck: backward returned {len(grads)} gradients for "
                         f"{len(arrays)} arrays")
    grads = [None if g is None else np.array(g, dtype=np.float64, copy=True) for g in grads]

    def value():
        # No backward follows these evaluations: fastconv.nn layers must not
        # keep a cache for each of them.
        with no_grad():
            return float(np.sum(np.asarray(fn(*arrays)[0], dtype=np.float64) * cot))

    rows = []
    for i, (a, g) in enumerate(zip(arrays, grads)):
        row = {"index": i, "shape": a.shape, "size": a.size, "checked": 0, "passed": True,
               "max_abs_error": 0.0, "max_rel_error": 0.0}
        rows.append(row)
        if g is None or a.size == 0:
            row["why"] = "no gradient given" if g is None else "empty"
            continue
        if g.shape != a.shape:
            raise ValueError(f"gradcheck: gradient {i} has shape {g.shape}, "
                             f"array has shape {a.shape}")
        picks = (np.arange(a.size) if a.size <= n_samples
                 else rng.choice(a.size, n_samples, replace=False))
        for k in picks:
            idx = np.unravel_index(k, a.shape)
            orig = a[idx]
            try:
                a[idx] = orig + eps
                plus = value()
                a[idx] = orig - eps
                minus = value()
            finally:
                a[idx] = orig
            num = (plus - minus) / (2 * eps)
            ana = g[idx]
            abs_err = abs(ana - num)
            rel = abs_err / max(abs(ana), abs(num), atol)
            ok = abs_err <= atol + rtol * abs(num)
            row["checked"] += 1
            if not ok:
                row["passed"] = False
            if rel >= row["max_rel_error"] or row["checked"] == 1:
                row.update(max_rel_error=rel, worst=tuple(int(j) for j in idx),
                           analytic=float(ana), numerical=float(num))
            row["max_abs_error"] = max(row["max_abs_error"], abs_err)
    result = GradcheckResult(rows, atol, rtol)
    if raise_exception and not result.passed:
        raise AssertionError(str(result))
    return result
