"""Implementation adapters: how each library runs a case.

Every adapter turns (case, direction) into a callable taking the dict of
NumPy inputs that `Case.make_inputs` built (after `adapter.convert`, which is
done once, outside the timed region).  What is timed, per direction::

  fwd      the forward op (conv1d/2d/3d, conv_transpose2d or deform_conv2d
           with bias / max_pool2d / avg_pool2d / adaptive_max_pool2d /
           adaptive_avg_pool2d / interpolate)
  fwd+bwd  the forward op, then its backward op given a fixed random
           upstream gradient gy: conv*_backward -> (grad_x, grad_w, grad_b);
           deform_conv2d_backward (also grad_offset and grad_mask);
           max_pool2d(return_indices=True) + max_pool2d_backward (adaptive
           max pooling alike); avg_pool2d + avg_pool2d_backward (adaptive
           average pooling alike);
           interpolate + interpolate_backward.

PyTorch runs the same math without autograd: forward through
torch.nn.functional, backward by calling the ATen backward ops directly
(aten.convolution_backward, aten.max_pool2d_with_indices_backward,
aten.avg_pool2d_backward), so no graph is recorded and no autograd overhead
is timed -- the same "grad in, grads out" work fastconv's ``*_backward`` does.
Tensors share memory with the NumPy inputs (torch.from_numpy).  JAX (when
installed) runs jitted jax.lax ops, its backward by jax.vjp; ONNX Runtime
(when installed, with the onnx package) runs forward passes only; JAX and
TensorFlow (when installed) run channels-last (NHWC), their fastest layout.
A cell a library has no op, pass or dtype for is left out of its column; its
`unsupported` reason starts with "n/a: " when the library lacks the op or
dtype (the report prints "n/a" and the reason).  Deformable convolution has no
PyTorch op (torchvision's CPU build does not install beside this torch): its
torch column is deform_conv2d_torch below, the same algorithm in torch ops,
differentiated by autograd.

Network cases (nets.py, op "net") run a training step ("train") and an
inference forward ("infer") of a fastconv.nn model and of its torch.nn twin;
the plain-NumPy reference and the other libraries have no network column.

Each adapter runs in a worker process of its own (worker.py); `preload`
names modules it imports first, `set_threads(n)` applies the thread count
(returning a note for the report when the library cannot honour it as
asked), `extra_env(threads)` (optional) variables its
worker starts with, `directions` (optional) the passes it can run,
`outputs(case, direction, result)` (optional) its results in the reference
layout for the check made before timing.
"""
import importlib
import importlib.util

import numpy as np

from . import nets

# True in a measuring process of its own (worker.main sets it): an adapter
# may then change process-wide state such as the CPU affinity.
in_own_process = False

IMPL_NAMES = ("fastconv", "reference", "torch", "jax", "onnxruntime", "tensorflow")
# what an adapter runs unless it says otherwise
DIRECTIONS = ("fwd", "fwd+bwd") + nets.NET_DIRECTIONS + nets.NET_EXTRA_DIRECTIONS


def to_numpy(out):
    """An adapter's result (arrays, tensors, nested tuples) as a flat list of
    ndarrays, for checking results (outside the timed region)."""
    if isinstance(out, (tuple, list)):
        return [a for item in out for a in to_numpy(item)]
    return [np.asarray(out.numpy() if hasattr(out, "numpy") else out)]


def set_blas_threads(n):
    """Cap the threads of the BLAS under NumPy at n in this process (fastconv's
    set_num_threads leaves it alone); returns how, for the report.  The CLI's
    child process also has OPENBLAS_NUM_THREADS/MKL_NUM_THREADS=n from the start."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return "NumPy's BLAS threads not capped in-process (threadpoolctl not installed)"
    threadpool_limits(limits=n, user_api="blas")
    return f"NumPy's BLAS capped at {n} via threadpoolctl"


class NumpyImpl:
    """fastconv or fastconv.reference: same names and signatures."""

    # Modules the measuring process imports before anything else, so their
    # runtimes load under their own defaults (see worker.py).
    preload = ()

    def __init__(self, name, module_name):
        self.name = name
        self.module_name = module_name

    def available(self):
        return True

    @property
    def module(self):
        return importlib.import_module(self.module_name)

    def version(self):
        import fastconv
        return fastconv.__version__

    def set_threads(self, n):
        # fastconv's kernels, and the BLAS under NumPy (the reference's GEMMs).
        import fastconv
        fastconv.set_num_threads(n)
        return set_blas_threads(n)

    def unsupported(self, case, dtype, direction):
        if case.kind == "net" and self.name != "fastconv":
            return f"no network column for {self.name} (a step of its plain-NumPy layers " \
                   "takes seconds)"
        return None

    def convert(self, inputs):
        return nets.fastconv_state(inputs) if "model" in inputs else inputs

    def call(self, case, direction):
        if case.op == "net":
            return nets.fastconv_pass(direction)
        m = self.module
        s, p = case.stride, case.padding
        if case.op.startswith("conv"):   # conv1d/2d/3d, conv_transpose1d/2d/3d
            forward, backward = getattr(m, case.op), getattr(m, case.op + "_backward")
            kw = dict(stride=s, padding=p, groups=case.groups, dilation=case.dilation)
            if direction == "fwd":
                return lambda a: forward(a["x"], a["w"], a["b"], **kw)

            def conv_fwd_bwd(a):
                y = forward(a["x"], a["w"], a["b"], **kw)
                return y, backward(a["gy"], a["x"], a["w"], **kw)
            return conv_fwd_bwd
        if case.op == "deform_conv2d":
            if direction == "fwd":
                return lambda a: m.deform_conv2d(a["x"], a["offset"], a["w"], a["b"], s, p,
                                                 mask=a.get("mask"))

            def deform_fwd_bwd(a):
                y = m.deform_conv2d(a["x"], a["offset"], a["w"], a["b"], s, p,
                                    mask=a.get("mask"))
                return y, m.deform_conv2d_backward(a["gy"], a["x"], a["offset"], a["w"], s, p,
                                                   mask=a.get("mask"))
            return deform_fwd_bwd
        if case.op == "interpolate":
            kw = dict(scale_factor=case.param("scale_factor"), mode=case.param("mode"))
            if direction == "fwd":
                return lambda a: m.interpolate(a["x"], **kw)

            def interpolate_fwd_bwd(a):
                return m.interpolate(a["x"], **kw), m.interpolate_backward(a["gy"], a["x"].shape,
                                                                         **kw)
            return interpolate_fwd_bwd
        if case.op == "adaptive_max_pool2d":
            o = case.param("output_size")
            if direction == "fwd":
                return lambda a: m.adaptive_max_pool2d(a["x"], o)

            def adaptive_fwd_bwd(a):
                y, idx = m.adaptive_max_pool2d(a["x"], o, return_indices=True)
                return y, m.adaptive_max_pool2d_backward(a["gy"], idx, a["x"].shape)
            return adaptive_fwd_bwd
        if case.op == "adaptive_avg_pool2d":
            o = case.param("output_size")
            if direction == "fwd":
                return lambda a: m.adaptive_avg_pool2d(a["x"], o)

            def adaptive_avg_fwd_bwd(a):
                return (m.adaptive_avg_pool2d(a["x"], o),
                        m.adaptive_avg_pool2d_backward(a["gy"], a["x"].shape))
            return adaptive_avg_fwd_bwd
        k = case.kernel
        if case.op == "max_pool2d":
            if direction == "fwd":
                return lambda a: m.max_pool2d(a["x"], k, s, p)

            def max_fwd_bwd(a):
                y, idx = m.max_pool2d(a["x"], k, s, p, return_indices=True)
                return y, m.max_pool2d_backward(a["gy"], idx, a["x"].shape)
            return max_fwd_bwd
        if case.op == "avg_pool2d":
            if direction == "fwd":
                return lambda a: m.avg_pool2d(a["x"], k, s, p)

            def avg_fwd_bwd(a):
                y = m.avg_pool2d(a["x"], k, s, p)
                return y, m.avg_pool2d_backward(a["gy"], a["x"].shape, k, s, p)
            return avg_fwd_bwd
        raise ValueError(f"unknown op {case.op!r}")


class OptionalLibrary:
    """An adapter for a library that may be absent.  `available` asks only
    whether `requires` can be imported (find_spec, not import: the CLI
    process never loads the library; an installed but broken one shows up as
    "error" cells instead)."""

    preload = ()
    module = None       # the library whose version is reported
    # The ops its call() knows; a case of another op is left out of its column.
    ops = ("conv2d", "max_pool2d", "avg_pool2d")

    @property
    def requires(self):
        return (self.module,)

    def available(self):
        return all(importlib.util.find_spec(m) is not None for m in self.requires)

    def version(self):
        return importlib.import_module(self.module).__version__


class TorchImpl(OptionalLibrary):
    """PyTorch CPU (optional): forward via torch.nn.functional, backward via
    the ATen backward ops called directly (no autograd)."""

    name = module = "torch"
    ops = None   # every op of the case table (NumpyImpl's twin)
    # torch first: its OpenMP runtime (libgomp, shared with fastconv's when
    # both are loaded) then starts with torch's default wait policy, not
    # the bounded spin fastconv chooses for a runtime it loads itself.
    preload = ("torch",)

    def set_threads(self, n):
        import torch
        torch.set_num_threads(n)

    def convert(self, inputs):
        import torch
        if "model" in inputs:
            return nets.torch_state(inputs)
        return {k: torch.from_numpy(v) for k, v in inputs.items()}

    def call(self, case, direction):
        if case.op == "net":
            return nets.torch_pass(direction)
        import torch
        import torch.nn.functional as F
        aten = torch.ops.aten
        s, p = case.stride, case.padding
        if case.op.startswith("conv"):   # conv1d/2d/3d, conv_transpose1d/2d/3d
            g, d, nd = case.groups, case.dilation, len(case.x) - 2
            forward = getattr(F, case.op)
            # F.conv_transpose* takes output_padding before groups and dilation
            args = (s, p, 0, g, d) if case.transposed else (s, p, d, g)
            if direction == "fwd":
                def conv_fwd(a):
                    with torch.no_grad():
                        return forward(a["x"], a["w"], a["b"], *args)
                return conv_fwd

            def conv_fwd_bwd(a):
                with torch.no_grad():
                    y = forward(a["x"], a["w"], a["b"], *args)
                    return y, aten.convolution_backward(
                        a["gy"], a["x"], a["w"], [case.out_shape[1]], [s] * nd, [p] * nd,
                        [d] * nd, case.transposed, [0] * nd, g, [True, True, True])
            return conv_fwd_bwd
        if case.op == "deform_conv2d":
            if direction == "fwd":
                def deform_fwd(a):
                    with torch.no_grad():
                        return deform_conv2d_torch(a["x"], a["offset"], a["w"], a["b"], s, p,
                                                   mask=a.get("mask"))
                return deform_fwd

            def deform_fwd_bwd(a):
                leaves = {k: a[k].detach().requires_grad_()
                          for k in ("x", "offset", "w", "b", "mask") if k in a}
                y = deform_conv2d_torch(leaves["x"], leaves["offset"], leaves["w"],
                                        leaves["b"], s, p, mask=leaves.get("mask"))
                y.backward(a["gy"])
                # grads in deform_conv2d_backward's order: input, offset, weight, bias, mask
                return y.detach(), tuple(t.grad for t in leaves.values())
            return deform_fwd_bwd
        if case.op == "interpolate":
            scale, mode = case.param("scale_factor"), case.param("mode")
            if direction == "fwd":
                def interpolate_fwd(a):
                    with torch.no_grad():
                        return F.interpolate(a["x"], scale_factor=scale, mode=mode)
                return interpolate_fwd

            if mode != "bilinear":
                raise ValueError(f"no torch backward op wired for interpolate mode {mode!r}")

            def interpolate_fwd_bwd(a):
                with torch.no_grad():
                    y = F.interpolate(a["x"], scale_factor=scale, mode=mode)
                    # the bilinear backward op (the benchmark's upsampling cases)
                    return y, aten.upsample_bilinear2d_backward(
                        a["gy"], list(y.shape[2:]), list(a["x"].shape), False, scale, scale)
            return interpolate_fwd_bwd
        if case.op == "adaptive_max_pool2d":
            o = case.param("output_size")
            if direction == "fwd":
                def adaptive_fwd(a):
                    with torch.no_grad():
                        return F.adaptive_max_pool2d(a["x"], o)
                return adaptive_fwd

            def adaptive_fwd_bwd(a):
                with torch.no_grad():
                    y, idx = F.adaptive_max_pool2d(a["x"], o, return_indices=True)
                    return y, aten.adaptive_max_pool2d_backward(a["gy"], a["x"], idx)
            return adaptive_fwd_bwd
        if case.op == "adaptive_avg_pool2d":
            o = case.param("output_size")
            if direction == "fwd":
                def adaptive_avg_fwd(a):
                    with torch.no_grad():
                        return F.adaptive_avg_pool2d(a["x"], o)
                return adaptive_avg_fwd

            def adaptive_avg_fwd_bwd(a):
                with torch.no_grad():
                    y = F.adaptive_avg_pool2d(a["x"], o)
                    return y, aten._adaptive_avg_pool2d_backward(a["gy"], a["x"])
            return adaptive_avg_fwd_bwd
        k = case.kernel
        if case.op == "max_pool2d":
            if direction == "fwd":
                def max_fwd(a):
                    with torch.no_grad():
                        return F.max_pool2d(a["x"], k, s, p)
                return max_fwd

            def max_fwd_bwd(a):
                with torch.no_grad():
                    y, idx = F.max_pool2d(a["x"], k, s, p, return_indices=True)
                    return y, aten.max_pool2d_with_indices_backward(
                        a["gy"], a["x"], [k, k], [s, s], [p, p], [1, 1], False, idx)
            return max_fwd_bwd
        if case.op == "avg_pool2d":
            if direction == "fwd":
                def avg_fwd(a):
                    with torch.no_grad():
                        return F.avg_pool2d(a["x"], k, s, p)
                return avg_fwd

            def avg_fwd_bwd(a):
                with torch.no_grad():
                    y = F.avg_pool2d(a["x"], k, s, p)
                    return y, aten.avg_pool2d_backward(
                        a["gy"], a["x"], [k, k], [s, s], [p, p], False, True, None)
            return avg_fwd_bwd
        raise ValueError(f"unknown op {case.op!r}")


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def deform_conv2d_torch(input, offset, weight, bias=None, stride=1, padding=0, dilation=1,
                        mask=None):
    """Deformable convolution in torch ops (torchvision.ops.deform_conv2d's
    algorithm and boundary rules; autograd gives its backward): the
    benchmark's torch column, since torchvision's CPU build cannot be
    installed beside this torch.  Unlike torchvision's C++ kernel, which
    fills the column buffer with one fused loop per image and scatters its
    gradients with per-element loops, this builds the columns from four
    whole-tensor gathers (one per bilinear corner) and lets autograd
    differentiate them, so it moves more memory."""
    import torch
    n, c_in, h, w = input.shape
    c_out, c_group, kh, kw = weight.shape
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    oh, ow = offset.shape[2:]
    taps, groups = kh * kw, c_in // c_group
    offset_groups = offset.shape[1] // (2 * taps)
    dt = input.dtype
    ki = (torch.arange(kh).repeat_interleave(kw) * dh).to(dt)
    kj = (torch.arange(kw).repeat(kh) * dw).to(dt)
    off = offset.reshape(n, offset_groups, taps, 2, oh, ow)
    y = (torch.arange(oh) * sh - ph).to(dt)[None, :, None] + ki[:, None, None] + off[:, :, :, 0]
    x = (torch.arange(ow) * sw - pw).to(dt)[None, None, :] + kj[:, None, None] + off[:, :, :, 1]
    inside = (y > -1) & (y < h) & (x > -1) & (x < w)
    y, x = torch.where(inside, y, 0), torch.where(inside, x, 0)
    y0, x0 = torch.floor(y).detach(), torch.floor(x).detach()
    ly, lx = y - y0, x - x0
    per_group = c_in // offset_groups
    flat = input.reshape(n, offset_groups, per_group, h * w)
    cols = 0
    for dy, dx in ((0, 0), (0, 1), (1, 0), (1, 1)):
        yi, xi = y0 + dy, x0 + dx
        ok = inside & (yi >= 0) & (yi < h) & (xi >= 0) & (xi < w)
        weight_corner = (ly if dy else 1 - ly) * (lx if dx else 1 - lx) * ok.to(dt)
        index = (yi.clamp(0, h - 1) * w + xi.clamp(0, w - 1)).long()
        picked = torch.gather(flat, 3, index.reshape(n, offset_groups, 1, -1)
                              .expand(-1, -1, per_group, -1))
        cols = cols + picked * weight_corner.reshape(n, offset_groups, 1, -1)
    if mask is not None:
        cols = cols * mask.reshape(n, offset_groups, 1, -1)
    cols = cols.reshape(n, groups, c_group * taps, oh * ow)
    out = torch.matmul(weight.reshape(groups, c_out // groups, c_group * taps), cols)
    out = out.reshape(n, c_out, oh, ow)
    return out if bias is None else out + bias.reshape(1, -1, 1, 1)


def adaptive_window(case):
    """The (kh, kw) window of an adaptive pooling case whose input divides
    evenly into its output (then it is plain pooling with stride = window,
    which is how the libraries without adaptive pooling run it), else None."""
    o = case.param("output_size")
    size = case.x[2:]
    if any(i % o for i in size):
        return None
    return tuple(i // o for i in size)


# Shared "n/a" reasons of the peer libraries (no such op there).
NO_DEFORM = "n/a: {} has no deformable convolution op"
NO_ADAPTIVE = "n/a: {} pools adaptively only where the input divides into the output"


class ChannelsLastLibrary(OptionalLibrary):
    """JAX and TensorFlow run fastest channels-last: activations NCHW -> NHWC
    (likewise 1-D and 3-D), weights (C_out, C_in/groups, *kernel) ->
    (*kernel, C_in/groups, C_out) (a transposed conv's (C_in, C_out/groups,
    *kernel) by the same transpose, which is TensorFlow's and
    lax.conv_transpose's layout), converted once, outside the timed region;
    results go back to the reference layout only to be checked."""

    label = None     # the library's name in "n/a" reasons
    ops = ("conv1d", "conv2d", "conv3d", "conv_transpose2d", "max_pool2d", "avg_pool2d",
           "adaptive_max_pool2d", "adaptive_avg_pool2d", "interpolate")

    def unsupported(self, case, dtype, direction):
        if case.op == "deform_conv2d":
            return NO_DEFORM.format(self.label)
        if case.op == "adaptive_max_pool2d" and adaptive_window(case) is None:
            return NO_ADAPTIVE.format(self.label)
        if case.op == "adaptive_avg_pool2d" and case.param("output_size") != 1:
            return f"n/a: adaptive average pooling in {self.label}: to 1x1 only (a mean)"
        if case.op == "interpolate" and case.param("mode") != "bilinear":
            return f"n/a: {self.label}'s {case.param('mode')} resize rounds differently"
        return None

    @staticmethod
    def to_channels_last(inputs):
        """The NumPy inputs in the channels-last layouts (class docstring)."""
        out = {k: np.ascontiguousarray(np.moveaxis(v, 1, -1))
               for k, v in inputs.items() if k in ("x", "gy")}
        if "w" in inputs:
            w = inputs["w"]
            out["w"] = np.ascontiguousarray(w.transpose(*range(2, w.ndim), 1, 0))
            out["b"] = inputs["b"]
        return out

    def weight_back(self, case, gw):
        """A weight gradient in the library's layout -> the reference's."""
        nd = len(case.x) - 2
        return gw.transpose(nd + 1, nd, *range(nd))

    def outputs(self, case, direction, result):
        """Results back in the reference layout, for the check before timing."""
        names = ["y"] + (["gx"] if direction != "fwd" else [])
        if case.kind == "conv" and direction != "fwd":
            names += ["gw", "gb"]
        back = []
        for name, a in zip(names, to_numpy(result)):
            if name in ("y", "gx"):
                a = np.moveaxis(a, -1, 1)
            elif name == "gw":
                a = self.weight_back(case, a)
            back.append(np.ascontiguousarray(a))
        return back


class JaxImpl(ChannelsLastLibrary):
    """JAX on CPU (optional): jax.lax ops channels-last (see
    ChannelsLastLibrary), each pass one jitted function (compiled by the
    untimed first call); the backward pass by jax.vjp of the forward.  JAX
    dispatches asynchronously, so every timed call waits for its results."""

    name = module = "jax"
    label = "JAX"

    def unsupported(self, case, dtype, direction):
        if case.transposed and case.groups != 1:
            return "n/a: jax.lax.conv_transpose has no groups"
        return super().unsupported(case, dtype, direction)

    def set_threads(self, n):
        """XLA has no thread setting (XLA_FLAGS' xla_cpu_multi_thread_eigen no
        longer limits its CPU runtime): its CPU client sizes its thread pool
        by the cores the process may use, read when the first computation
        starts, which is after this.  So a measuring process of its own is
        pinned to the first n of its cores; in-process (where pinning would
        bind every library) XLA keeps them all, and the report says so."""
        import os
        cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        if not cores or n >= len(cores):
            return None
        if in_own_process:
            os.sched_setaffinity(0, cores[:n])
            return f"jax: its process pinned to {n} of the {len(cores)} cores " \
                   "(XLA has no thread setting)"
        return f"jax: XLA runs on all {len(cores)} cores in-process (it has no thread setting)"

    def convert(self, inputs):
        import jax
        jax.config.update("jax_enable_x64", True)   # else float64 silently becomes float32
        return {k: jax.device_put(v) for k, v in self.to_channels_last(inputs).items()}

    def _forward(self, case):
        """(forward function of NHWC arrays, names of its inputs)."""
        import jax
        import jax.numpy as jnp
        from jax import lax
        s, p, d, nd = case.stride, case.padding, case.dilation, len(case.x) - 2
        spatial = "DHW"[3 - nd:]
        layout = ("N" + spatial + "C", spatial + "IO", "N" + spatial + "C")
        if case.kind == "conv":
            if case.transposed:   # the adjoint conv: pad by d*(k-1)-p, flipped kernel
                pads = [(d * (k - 1) - p,) * 2 for k in case.w[2:]]

                def conv(x, w):
                    return lax.conv_transpose(x, w, (s,) * nd, pads, rhs_dilation=(d,) * nd,
                                              dimension_numbers=layout, transpose_kernel=True)
            else:
                def conv(x, w):
                    return lax.conv_general_dilated(x, w, (s,) * nd, [(p, p)] * nd,
                                                    rhs_dilation=(d,) * nd,
                                                    dimension_numbers=layout,
                                                    feature_group_count=case.groups)
            return (lambda x, w, b: conv(x, w) + b), ("x", "w", "b")
        if case.op == "adaptive_avg_pool2d":   # to 1x1 only (see unsupported)
            return (lambda x: jnp.mean(x, axis=(1, 2), keepdims=True)), ("x",)
        if case.op == "interpolate":   # bilinear, half-pixel centres (align_corners=False)
            shape = (case.x[0],) + case.out_shape[2:] + (case.x[1],)
            return (lambda x: jax.image.resize(x, shape, "bilinear")), ("x",)
        if case.op == "adaptive_max_pool2d":   # divisible sizes (see unsupported)
            window = adaptive_window(case)
            k, strides, pads = (1,) + window + (1,), (1,) + window + (1,), [(0, 0)] * 4
        else:
            k, strides = (1, case.kernel, case.kernel, 1), (1, s, s, 1)
            pads = [(0, 0), (p, p), (p, p), (0, 0)]
        if case.op == "avg_pool2d":   # count_include_pad=True, as the others' default
            # Python scalars as initial values: JAX then knows the monoid
            # (max or sum) and uses its differentiable reduce_window.
            return (lambda x: lax.reduce_window(x, 0.0, lax.add, k, strides, pads)
                    / (case.kernel ** 2)), ("x",)
        return (lambda x: lax.reduce_window(x, -jnp.inf, lax.max, k, strides, pads)), ("x",)

    def call(self, case, direction):
        import jax
        forward, names = self._forward(case)
        if direction == "fwd":
            compiled = jax.jit(forward)
            return lambda a: compiled(*(a[n] for n in names)).block_until_ready()

        def forward_backward(gy, *args):
            y, pullback = jax.vjp(forward, *args)
            grads = pullback(gy)
            return y, grads if len(grads) > 1 else grads[0]
        compiled = jax.jit(forward_backward)
        return lambda a: jax.block_until_ready(compiled(a["gy"], *(a[n] for n in names)))


class OnnxRuntimeImpl(OptionalLibrary):
    """ONNX Runtime on CPU (optional, forward only: it has no training ops
    for these layers): one ONNX graph per case and dtype (Conv or
    ConvTranspose with bias, MaxPool, AveragePool with count_include_pad=1,
    GlobalAveragePool, Resize; adaptive max pooling as a MaxPool where the
    input divides into the output), built with the `onnx` package and
    loaded into a session once, outside the timed region; the session's
    intra-op threads are the thread count."""

    name = module = "onnxruntime"
    requires = ("onnxruntime", "onnx")
    directions = ("fwd",)
    OPSET = 17

    def __init__(self):
        self.threads = 1
        self.sessions = {}

    def set_threads(self, n):
        self.threads = n
        self.sessions.clear()
        return None

    # Ops whose float64 kernel ONNX Runtime's CPU provider has (it lacks
    # Conv and AveragePool in float64).
    FLOAT64_OPS = ("max_pool2d", "adaptive_max_pool2d")

    ops = ("conv1d", "conv2d", "conv3d", "conv_transpose2d", "max_pool2d", "avg_pool2d",
           "adaptive_max_pool2d", "adaptive_avg_pool2d", "interpolate")

    def unsupported(self, case, dtype, direction):
        if case.op == "deform_conv2d":
            return NO_DEFORM.format("ONNX Runtime's CPU provider")
        if dtype == "float64" and case.op not in self.FLOAT64_OPS:
            return f"n/a: ONNX Runtime's CPU provider has no float64 {case.op}"
        if case.op == "adaptive_avg_pool2d" and case.param("output_size") != 1:
            return "n/a: ONNX has adaptive average pooling to 1x1 only (GlobalAveragePool)"
        if case.op == "adaptive_max_pool2d" and adaptive_window(case) is None:
            return NO_ADAPTIVE.format("ONNX")
        if case.op == "interpolate" and case.param("mode") != "bilinear":
            return f"n/a: ONNX Runtime's {case.param('mode')} Resize rounds differently"
        return None

    def convert(self, inputs):
        return inputs

    def _session(self, case, dtype):
        key = (case.name, dtype)
        if key not in self.sessions:
            import onnx
            import onnxruntime as ort
            from onnx import TensorProto, helper
            elem = {"float32": TensorProto.FLOAT, "float64": TensorProto.DOUBLE}[str(dtype)]
            s, p, nd = case.stride, case.padding, len(case.x) - 2
            names, initializers = ["x"], []
            if case.kind == "conv":
                names += ["w", "b"]
                node = helper.make_node("ConvTranspose" if case.transposed else "Conv", names,
                                        ["y"], kernel_shape=list(case.w[2:]), strides=[s] * nd,
                                        pads=[p] * 2 * nd, dilations=[case.dilation] * nd,
                                        group=case.groups)
            elif case.op == "adaptive_avg_pool2d":   # to 1x1 only (see unsupported)
                node = helper.make_node("GlobalAveragePool", names, ["y"])
            elif case.op == "adaptive_max_pool2d":   # divisible sizes (see unsupported)
                window = list(adaptive_window(case))
                node = helper.make_node("MaxPool", names, ["y"], kernel_shape=window,
                                        strides=window)
            elif case.op == "interpolate":   # bilinear, as align_corners=False
                scale = case.param("scale_factor")
                initializers.append(helper.make_tensor("scales", TensorProto.FLOAT, [4],
                                                       [1.0, 1.0, scale, scale]))
                node = helper.make_node("Resize", ["x", "", "scales"], ["y"], mode="linear",
                                        coordinate_transformation_mode="half_pixel")
            else:
                kind = "MaxPool" if case.op == "max_pool2d" else "AveragePool"
                extra = {} if kind == "MaxPool" else {"count_include_pad": 1}
                node = helper.make_node(kind, names, ["y"], kernel_shape=[case.kernel] * 2,
                                        strides=[s, s], pads=[p] * 4, **extra)
            shapes = {"x": case.x, "w": case.w, "b": case.out_shape[1:2]}
            graph = helper.make_graph(
                [node], case.name,
                [helper.make_tensor_value_info(n, elem, list(shapes[n])) for n in names],
                [helper.make_tensor_value_info("y", elem, list(case.out_shape))],
                initializer=initializers)
            model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.OPSET)])
            onnx.checker.check_model(model)
            options = ort.SessionOptions()
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
            self.sessions[key] = (ort.InferenceSession(model.SerializeToString(), options,
                                                       providers=["CPUExecutionProvider"]),
                                  names)
        return self.sessions[key]

    def call(self, case, direction):
        if direction not in self.directions:
            raise ValueError(f"onnxruntime runs forward passes only, not {direction}")

        def forward(a):
            session, names = self._session(case, a["x"].dtype)
            return session.run(None, {n: a[n] for n in names})[0]
        return forward


class TensorFlowImpl(ChannelsLastLibrary):
    """TensorFlow on CPU (optional) channels-last (see ChannelsLastLibrary;
    depthwise weights further reshaped to (*kernel, C_in, multiplier), the
    same memory).  Each pass is one tf.function (traced by the untimed first
    call); the backward pass is tf.GradientTape's with the given upstream
    gradient.  Padding is explicit (pooling: tf.pad then VALID, zeros for
    average pooling, as count_include_pad=True counts them)."""

    name = module = "tensorflow"
    label = "TensorFlow"

    def extra_env(self, threads):
        return {"TF_CPP_MIN_LOG_LEVEL": "2"}   # no start-up banners in the report

    def set_threads(self, n):
        import tensorflow as tf
        tf.config.threading.set_intra_op_parallelism_threads(n)
        tf.config.threading.set_inter_op_parallelism_threads(1)

    @staticmethod
    def _depthwise(case):
        return case.op == "conv2d" and case.groups > 1 and case.groups == case.x[1]

    def unsupported(self, case, dtype, direction):
        if case.transposed and case.groups != 1:
            return "n/a: TensorFlow has no grouped transposed convolution"
        if direction != "fwd" and case.kind == "conv" and 1 < case.groups < case.x[1]:
            return "n/a: TensorFlow's CPU Conv2D has no grouped weight gradient"
        if case.op == "interpolate" and dtype == "float64":
            return "n/a: tf.image.resize computes in float32 (no float64 bilinear resize)"
        return super().unsupported(case, dtype, direction)

    def convert(self, inputs):
        import tensorflow as tf
        out = self.to_channels_last(inputs)
        if "w" in out and inputs["w"].shape[1] == 1 and inputs["x"].shape[1] > 1:
            *kernel, _, c_out = out["w"].shape   # depthwise
            c_in = inputs["x"].shape[1]
            out["w"] = out["w"].reshape(*kernel, c_in, c_out // c_in)
        return {k: tf.constant(v) for k, v in out.items()}

    def weight_back(self, case, gw):
        if self._depthwise(case):
            gw = gw.reshape(*gw.shape[:-2], 1, -1)
        return super().weight_back(case, gw)

    def _forward(self, case, direction):
        """(forward function of NHWC tensors, names of its inputs)."""
        import tensorflow as tf
        s, p, d, nd = case.stride, case.padding, case.dilation, len(case.x) - 2
        pads = [[0, 0]] + [[p, p]] * nd + [[0, 0]]
        if case.kind == "conv":
            if self._depthwise(case):
                def conv(x, w):
                    return tf.nn.depthwise_conv2d(tf.pad(x, pads), w, [1, s, s, 1], "VALID",
                                                  dilations=[d, d])
            elif case.transposed:
                shape = (case.x[0],) + case.out_shape[2:] + case.out_shape[1:2]

                def conv(x, w):
                    return tf.nn.conv2d_transpose(x, w, shape, s, pads, dilations=d)
            elif nd == 2 and (d == 1 or direction == "fwd"):
                def conv(x, w):
                    return tf.nn.conv2d(x, w, s, pads, dilations=d)
            else:
                # tf.nn.convolution pads by name only; it runs a dilated conv
                # through space_to_batch, whose gradient the CPU has (that of
                # Conv2D with dilations > 1 is not implemented on CPU)
                def conv(x, w):
                    return tf.nn.convolution(tf.pad(x, pads), w, s, "VALID", dilations=d)
            return (lambda x, w, b: tf.nn.bias_add(conv(x, w), b)), ("x", "w", "b")
        if case.op == "adaptive_avg_pool2d":   # to 1x1 only (see unsupported)
            return (lambda x: tf.reduce_mean(x, axis=[1, 2], keepdims=True)), ("x",)
        if case.op == "interpolate":   # bilinear, half-pixel centres (align_corners=False)
            size = case.out_shape[2:]
            return (lambda x: tf.image.resize(x, size, "bilinear")), ("x",)
        if case.op == "adaptive_max_pool2d":   # divisible sizes (see unsupported)
            window = adaptive_window(case)
            return (lambda x: tf.nn.max_pool2d(x, window, window, "VALID")), ("x",)
        k, is_max = case.kernel, case.op == "max_pool2d"

        def forward(x):
            if p:
                x = tf.pad(x, pads, constant_values=-np.inf if is_max else 0)
            pool = tf.nn.max_pool2d if is_max else tf.nn.avg_pool2d
            return pool(x, k, s, "VALID")
        return forward, ("x",)

    def call(self, case, direction):
        import tensorflow as tf
        forward, names = self._forward(case, direction)
        if direction == "fwd":
            # autograph=False: there is no control flow to convert, and
            # autograph reuses its conversion of a lambda (same code, other
            # closure) in a later case: a 1-D conv then ran the 2-D case's
            # conv2d and failed (seen in a full run)
            compiled = tf.function(forward, autograph=False)
            return lambda a: compiled(*(a[n] for n in names))

        @tf.function(autograph=False)
        def forward_backward(gy, *args):
            with tf.GradientTape() as tape:
                tape.watch(args)
                y = forward(*args)
            grads = tape.gradient(y, args, output_gradients=gy)
            return y, tuple(grads) if len(grads) > 1 else grads[0]
        return lambda a: forward_backward(a["gy"], *(a[n] for n in names))



def why_not_run(adapter, case, direction, dtype):
    """None when `adapter` runs this cell, else why not (a pass or a dtype
    its library lacks: the cell is left out of its column, not an error)."""
    ops = getattr(adapter, "ops", None)
    if case.kind == "net" and ops is not None and "net" not in ops:
        return f"no network column for {adapter.name}"
    check = getattr(adapter, "unsupported", None)
    reason = check(case, str(dtype), direction) if check else None
    if reason:   # first: says why the library has no such op ("n/a: ...")
        return reason
    if direction not in getattr(adapter, "directions", DIRECTIONS):
        return f"{adapter.name} runs no {direction} pass"
    if ops is not None and case.op not in ops:
        return f"no {case.op} adapter for {adapter.name} yet"
    return None


def get(name):
    """The adapter called `name` (one of IMPL_NAMES)."""
    if name == "fastconv":
        return NumpyImpl("fastconv", "fastconv")
    if name == "reference":
        return NumpyImpl("reference", "fastconv.reference")
    if name == "torch":
        return TorchImpl()
    if name == "jax":
        return JaxImpl()
    if name == "onnxruntime":
        return OnnxRuntimeImpl()
    if name == "tensorflow":
        return TensorFlowImpl()
    raise ValueError(f"unknown implementation {name!r}; choose from {', '.join(IMPL_NAMES)}")


def available_impls(names=IMPL_NAMES):
    """Adapters for `names` that can run here (torch, jax and onnxruntime only
    when installed)."""
    return [impl for impl in map(get, names) if impl.available()]
