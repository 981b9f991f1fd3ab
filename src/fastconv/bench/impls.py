"""Implementation adapters: how each library runs a case.

Every adapter turns (case, direction) into a callable taking the dict of
NumPy inputs that `Case.make_inputs` built (after `adapter.convert`, which is
done once, outside the timed region).  What is timed, per direction:

  fwd      the forward op (conv2d or deform_conv2d with bias / max_pool2d /
           avg_pool2d / adaptive_max_pool2d / interpolate)
  fwd+bwd  the forward op, then its backward op given a fixed random
           upstream gradient gy: conv2d_backward -> (grad_x, grad_w, grad_b);
           deform_conv2d_backward (also grad_offset and grad_mask);
           max_pool2d(return_indices=True) + max_pool2d_backward (adaptive
           max pooling alike); avg_pool2d + avg_pool2d_backward;
           interpolate + interpolate_backward.

PyTorch runs the same math without autograd: forward through
torch.nn.functional, backward by calling the ATen backward ops directly
(aten.convolution_backward, aten.max_pool2d_with_indices_backward,
aten.avg_pool2d_backward), so no graph is recorded and no autograd overhead
is timed -- the same "grad in, grads out" work fastconv's *_backward does.
Tensors share memory with the NumPy inputs (torch.from_numpy).  Deformable
convolution has no PyTorch op (torchvision's CPU build does not install
beside this torch): its torch column is deform_conv2d_torch below, the same
algorithm in torch ops, differentiated by autograd.
"""
import importlib
import importlib.util

IMPL_NAMES = ("fastconv", "reference", "torch")


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

    def convert(self, inputs):
        return inputs

    def call(self, case, direction):
        m = self.module
        s, p = case.stride, case.padding
        if case.op == "conv2d":
            g = case.groups
            if direction == "fwd":
                return lambda a: m.conv2d(a["x"], a["w"], a["b"], stride=s, padding=p, groups=g)

            def conv_fwd_bwd(a):
                y = m.conv2d(a["x"], a["w"], a["b"], stride=s, padding=p, groups=g)
                return y, m.conv2d_backward(a["gy"], a["x"], a["w"], stride=s, padding=p,
                                            groups=g)
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


class TorchImpl:
    """PyTorch CPU (optional): forward via torch.nn.functional, backward via
    the ATen backward ops called directly (no autograd)."""

    name = "torch"

    def available(self):
        # find_spec, not import: the parent CLI process never needs torch loaded
        # (an installed but broken torch shows up as "error" cells instead).
        return importlib.util.find_spec("torch") is not None

    def version(self):
        import torch
        return torch.__version__

    def set_threads(self, n):
        import torch
        torch.set_num_threads(n)

    def convert(self, inputs):
        import torch
        return {k: torch.from_numpy(v) for k, v in inputs.items()}

    def call(self, case, direction):
        import torch
        import torch.nn.functional as F
        aten = torch.ops.aten
        s, p = case.stride, case.padding
        if case.op == "conv2d":
            g = case.groups
            c_out = case.w[0]
            if direction == "fwd":
                def conv_fwd(a):
                    with torch.no_grad():
                        return F.conv2d(a["x"], a["w"], a["b"], s, p, 1, g)
                return conv_fwd

            def conv_fwd_bwd(a):
                with torch.no_grad():
                    y = F.conv2d(a["x"], a["w"], a["b"], s, p, 1, g)
                    return y, aten.convolution_backward(
                        a["gy"], a["x"], a["w"], [c_out], [s, s], [p, p], [1, 1], False,
                        [0, 0], g, [True, True, True])
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


def get(name):
    """The adapter called `name` (one of IMPL_NAMES)."""
    if name == "fastconv":
        return NumpyImpl("fastconv", "fastconv")
    if name == "reference":
        return NumpyImpl("reference", "fastconv.reference")
    if name == "torch":
        return TorchImpl()
    raise ValueError(f"unknown implementation {name!r}; choose from {', '.join(IMPL_NAMES)}")


def available_impls(names=IMPL_NAMES):
    """Adapters for `names` that can run here (torch only when installed)."""
    return [impl for impl in map(get, names) if impl.available()]
