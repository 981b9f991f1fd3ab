"""fastconv.summary(model, input_shape): a per-layer table of output shape,
parameters, multiply-adds and receptive field.

The model runs once on zeros of `input_shape` (batch dim included), in eval
mode and under no_grad (no running statistics move, nothing is cached; the
modes are restored afterwards). Every leaf layer call is one row.

* Parameters: a layer's own, counted at its first call (a shared layer's
  later calls show 0); the total counts each parameter once.
* Multiply-adds: convolutions N*C_out*prod(out)*C_in/groups*prod(kernel)
  (transposed: N*C_in*prod(in)*C_out/groups*prod(kernel)), Linear
  prod(out) * in_features; other layers count 0.
* Receptive field r (in input pixels, per spatial dim) and jump j (the input
  distance between neighbouring outputs), the textbook recurrences
  r_l = r_{l-1} + (k_l - 1) * d_l * j_{l-1} and j_l = j_{l-1} * s_l
  (a transposed conv divides the jump by its stride). A layer's input is
  found by array identity; the output of a composite (Residual, Concat, a
  user's block) takes the largest field among its layers. Linear and
  adaptive pooling see the whole input.
"""
import math
import sys

import numpy as np

from .. import _args
from .conv import _ConvNd
from .linear import Linear
from .module import Module, no_grad
from .pooling import _AdaptiveAvgPoolNd, _AdaptiveMaxPoolNd, _AvgPoolNd, _MaxPoolNd

__all__ = ["summary", "ModelSummary"]


class ModelSummary:
    """summary()'s result: ``rows`` (dicts: name, type, output_shape, params,
    mult_adds, receptive_field, jump), ``total_params``, ``total_mult_adds``;
    ``str()`` is the table."""

    def __init__(self, rows, total_params, input_shape):
        self.rows = rows
        self.total_params = total_params
        self.total_mult_adds = sum(r["mult_adds"] for r in rows)
        self.input_shape = input_shape

    def __str__(self):
        def dims(values):
            return "x".join(f"{v:g}" for v in values)

        header = ("layer", "output shape", "params", "mult-adds", "receptive field", "jump")
        table = [header] + [
            (f"{r['name']} ({r['type']})", str(r["output_shape"]), f"{r['params']:,}",
             f"{r['mult_adds']:,}", dims(r["receptive_field"]), dims(r["jump"]))
            for r in self.rows]
        widths = [max(len(row[i]) for row in table) for i in range(len(header))]
        lines = ["  ".join(cell.ljust(w) if i < 2 else cell.rjust(w)
                           for i, (cell, w) in enumerate(zip(row, widths)))
                 for row in table]
        rule = "-" * len(lines[0])
        return "\n".join([f"input shape {self.input_shape}", rule, lines[0], rule,
                          *lines[1:], rule,
                          f"total params: {self.total_params:,}",
                          f"total mult-adds: {self.total_mult_adds:,}"])

    __repr__ = __str__


def _geometry(layer, spatial):
    """(kernel, stride, dilation, transposed) of a windowed layer, else None."""
    if isinstance(layer, _ConvNd):
        n = layer.dims
        stride = _args.int_tuple(layer.stride, n, "stride", "summary", 1)
        dilation = _args.int_tuple(layer.dilation, n, "dilation", "summary", 1)
        return layer.kernel_size, stride, dilation, layer.transposed
    if isinstance(layer, (_MaxPoolNd, _AvgPoolNd)):
        n = layer.dims
        kernel = _args.int_tuple(layer.kernel_size, n, "kernel_size", "summary", 1)
        stride = (kernel if layer.stride is None or layer.stride == ()
                  else _args.int_tuple(layer.stride, n, "stride", "summary", 1))
        dilation = (_args.int_tuple(layer.dilation, n, "dilation", "summary", 1)
                    if isinstance(layer, _MaxPoolNd) else (1,) * n)
        return kernel, stride, dilation, False
    return None


def _field(layer, field, whole):
    """(r, j) after `layer` from (r, j) before it."""
    r, j = field
    # adaptive max pooling subclasses max pooling but has no window: test it first
    if isinstance(layer, (Linear, _AdaptiveAvgPoolNd, _AdaptiveMaxPoolNd)):
        return whole, j
    geometry = _geometry(layer, len(r))
    if geometry is None or len(geometry[0]) != len(r):
        return r, j
    kernel, stride, dilation, transposed = geometry
    j_out = tuple(jj / s if transposed else jj * s for jj, s in zip(j, stride))
    j_step = j_out if transposed else j
    r_out = tuple(rr + (k - 1) * d * jj for rr, k, d, jj in zip(r, kernel, dilation, j_step))
    return r_out, j_out


def _mult_adds(layer, x, y):
    if isinstance(layer, _ConvNd):
        taps = math.prod(layer.kernel_size)
        if layer.transposed:
            return int(np.size(x)) * (layer.out_channels // layer.groups) * taps
        return int(np.size(y)) * (layer.in_channels // layer.groups) * taps
    if isinstance(layer, Linear):
        return int(np.size(y)) * layer.in_features
    return 0


def _shape_of(out):
    if isinstance(out, tuple):
        return tuple(np.shape(o) for o in out)
    return np.shape(out)


def summary(model, input_shape, dtype=None, file=None):
    """Print (to `file`, default stdout) and return a ModelSummary of `model`
    run on an input of `input_shape` (batch dim included): per layer the
    output shape, parameters, multiply-adds and receptive field; totals."""
    if not isinstance(model, Module):
        raise TypeError(f"summary: model must be a fastconv.nn Module, got {model!r:.60}")
    shape = tuple(_args.as_int(s, "input_shape", "summary") for s in input_shape)
    if len(shape) < 1 or min(shape) < 0:
        raise ValueError(f"summary: input_shape must be non-negative sizes, got {input_shape}")
    if dtype is None:
        dtype = next((p.dtype for _, p in model.parameters()), np.dtype(np.float32))
    spatial = shape[2:]
    whole = tuple(float(s) for s in spatial)
    start = ((1.0,) * len(spatial), (1.0,) * len(spatial))
    rows, fields, alive, seen = [], {}, [], set()
    last = [start]                    # the field after the latest leaf call

    def input_field(args):
        return fields.get(id(args[0]), last[0]) if args else last[0]

    def wrap(name, m, leaf):
        original = m.forward

        def forward(*args, **kwargs):
            first_row = len(rows)
            before = input_field(args)
            out = original(*args, **kwargs)
            primary = out[0] if isinstance(out, tuple) else out
            if leaf:
                after = _field(m, before, whole)
                rows.append(dict(name=name or type(m).__name__, type=type(m).__name__,
                                 output_shape=_shape_of(out),
                                 params=0 if id(m) in seen else
                                 sum(p.size for p in m.params.values()),
                                 mult_adds=_mult_adds(m, args[0] if args else None, primary),
                                 receptive_field=after[0], jump=after[1]))
                seen.add(id(m))
            else:
                inner = [(r["receptive_field"], r["jump"]) for r in rows[first_row:]]
                after = max(inner, key=lambda f: math.prod(f[0]), default=before)
            fields[id(primary)] = after
            alive.append(primary)     # keep ids unique while the run lasts
            last[0] = after
            return out
        return forward

    modules = list(model.named_modules())
    modes = [(m, m.training) for _, m in modules]
    try:
        for name, m in modules:
            m.forward = wrap(name, m, leaf=not any(True for _ in m.children()))
        model.eval()
        x = np.zeros(shape, dtype)
        alive.append(x)
        fields[id(x)] = start
        with no_grad():
            model(x)
    finally:
        for _, m in modules:
            m.__dict__.pop("forward", None)
        for m, mode in modes:
            m.training = mode
    result = ModelSummary(rows, sum(p.size for _, p in model.parameters()), shape)
    print(result, file=file if file is not None else sys.stdout)
    return result
