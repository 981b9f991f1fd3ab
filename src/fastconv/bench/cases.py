"""The benchmark case table: the one list both front doors measure.

`python -m fastconv.bench` and the pytest-benchmark suite in `benchmarks/`
both import DEFAULT_CASES / QUICK_CASES from here, so a case means the same
shapes everywhere.  A case is one layer (shapes + hyper-parameters); it is
measured in each DIRECTION ("fwd", "fwd+bwd") and each dtype.

Pooling cases are listed unconditionally; `available()` filters them out
(with a notice from `select()`) when the fastconv being measured has no
pooling ops yet, so there are never placeholder results.
"""
import fnmatch
from dataclasses import dataclass
from math import prod

import numpy as np

# re-exported: the case table names every kind of case and pass
from .nets import (NET_CASES, NET_DIRECTIONS, NET_EXTRA_DIRECTIONS,  # noqa: F401
                   QUICK_NET_CASES)

DIRECTIONS = ("fwd", "fwd+bwd")
DTYPES = ("float32", "float64")


def _out(size, k, s, p, d=1):
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


@dataclass(frozen=True)
class Case:
    """One layer to measure.

    op is "conv1d", "conv2d", "conv3d", "conv_transpose2d",
    "deform_conv2d", "max_pool2d", "avg_pool2d", "adaptive_max_pool2d",
    "adaptive_avg_pool2d" or "interpolate"; `x` is (N, C, *spatial) with 1
    to 3 spatial dims.  Conv cases carry the weight shape `w` (PyTorch's:
    (C_out, C_in/groups, *kernel), transposed (C_in, C_out/groups, *kernel))
    and add a bias (as real layers do); stride, padding and dilation apply to
    every spatial dim.  A deformable conv also gets offsets (and a mask with
    params (("mask", True),)).  Pool cases carry the window `kernel`;
    adaptive pooling params (("output_size", o),), interpolation
    (("scale_factor", s), ("mode", m)).
    """
    name: str
    op: str
    x: tuple
    w: tuple = None
    kernel: int = None
    stride: int = 1
    padding: int = 0
    groups: int = 1
    dilation: int = 1
    note: str = ""
    params: tuple = ()          # op-specific (name, value) pairs

    @property
    def kind(self):
        return "conv" if self.op.startswith(("conv", "deform_conv")) else "pool"

    @property
    def transposed(self):
        return self.op.startswith("conv_transpose")

    def param(self, name, default=None):
        return dict(self.params).get(name, default)

    @property
    def out_shape(self):
        n, c, *size = self.x
        if self.op.startswith("adaptive_"):
            return (n, c) + (self.param("output_size"),) * len(size)
        if self.op == "interpolate":
            s = self.param("scale_factor")
            return (n, c) + tuple(int(i * s) for i in size)
        if self.transposed:
            _, c_out_g, *kernel = self.w
            return (n, c_out_g * self.groups) + tuple(
                (i - 1) * self.stride - 2 * self.padding + self.dilation * (k - 1) + 1
                for i, k in zip(size, kernel))
        if self.kind == "conv":
            c_out, _, *kernel = self.w
            return (n, c_out) + tuple(_out(i, k, self.stride, self.padding, self.dilation)
                                      for i, k in zip(size, kernel))
        k = self.kernel
        return (n, c) + tuple(_out(i, k, self.stride, self.padding) for i in size)

    def flops(self, direction):
        """Multiply-adds x 2 of the convolution GEMMs (None for pooling).

        Forward: 2*N*C_out*(C_in/groups)*prod(kernel)*prod(output spatial);
        a transposed conv is the adjoint of the conv from its output to its
        input, so its input's spatial size takes the output's place.  The
        backward pass is two GEMMs of the same size (grad_input and
        grad_weight), so fwd+bwd counts 3x forward.  Bias and grad_bias are
        ignored (lower order).
        """
        if self.kind != "conv":
            return None
        small = self.x if self.transposed else self.out_shape   # the conv's output side
        fwd = 2 * small[0] * prod(self.w) * prod(small[2:])
        return fwd if direction == "fwd" else 3 * fwd

    def bytes_moved(self, direction, itemsize):
        """Least bytes a pooling op must read + write (None for conv).

        fwd: read x, write y.  fwd+bwd adds: read grad_y, write grad_x, and
        for max pooling write + read the int64 indices.
        """
        if self.kind != "pool":
            return None
        nx, ny = prod(self.x), prod(self.out_shape)
        total = (nx + ny) * itemsize
        if direction == "fwd+bwd":
            total += (ny + nx) * itemsize
            if self.op in ("max_pool2d", "adaptive_max_pool2d"):
                total += 2 * ny * 8
        return total

    def describe(self):
        """Short human description of the layer, e.g. 'x=(32,64,56,56) w=(64,64,3,3) p1'."""
        shape = lambda t: "(" + ",".join(map(str, t)) + ")"  # noqa: E731
        parts = [f"x={shape(self.x)}"]
        if self.kind == "conv":
            parts.append(f"w={shape(self.w)}")
        elif self.kernel is not None:
            parts.append(f"k{self.kernel}")
        parts += [f"{k}={v}" for k, v in self.params]
        if self.stride != 1 or (self.kind == "pool" and self.kernel is not None):
            parts.append(f"s{self.stride}")
        if self.padding:
            parts.append(f"p{self.padding}")
        if self.dilation != 1:
            parts.append(f"d{self.dilation}")
        if self.groups != 1:
            parts.append(f"g{self.groups}")
        return " ".join(parts)

    def compared(self, arrays):
        """The result arrays checked across implementations: all of them."""
        return arrays

    def record(self):
        """What the JSON file says about this case."""
        return {"op": self.op, "layer": self.describe(), "note": self.note, "x": self.x,
                "w": self.w, "kernel": self.kernel, "stride": self.stride,
                "padding": self.padding, "groups": self.groups}

    def make_inputs(self, dtype, direction, seed=0):
        """Fresh random inputs as a dict of C-contiguous arrays of `dtype`:
        x, plus w and b for conv, plus gy (the upstream gradient) for fwd+bwd."""
        rng = np.random.default_rng(seed)
        dtype = np.dtype(dtype)
        inputs = {"x": rng.standard_normal(self.x, dtype=dtype)}
        if self.kind == "conv":
            fan_in = prod(self.w[1:])
            inputs["w"] = rng.standard_normal(self.w, dtype=dtype) * dtype.type(fan_in ** -0.5)
            inputs["b"] = rng.standard_normal(self.out_shape[1], dtype=dtype)
        if self.op == "deform_conv2d":
            _, _, oh, ow = self.out_shape
            taps = self.w[2] * self.w[3]
            inputs["offset"] = rng.standard_normal((self.x[0], 2 * taps, oh, ow), dtype=dtype)
            if self.param("mask"):
                inputs["mask"] = rng.uniform(0, 1, (self.x[0], taps, oh, ow)).astype(dtype)
        if direction == "fwd+bwd":
            inputs["gy"] = rng.standard_normal(self.out_shape, dtype=dtype)
        return inputs


def conv(name, x, w, stride=1, padding=0, groups=1, dilation=1, note="", transposed=False):
    """A convolution case; conv1d/2d/3d (or conv_transpose*d) from len(x)."""
    op = f"conv{'_transpose' if transposed else ''}{len(x) - 2}d"
    return Case(name, op, tuple(x), w=tuple(w), stride=stride, padding=padding,
                groups=groups, dilation=dilation, note=note)


def pool(name, op, x, kernel, stride=None, padding=0, note=""):
    return Case(name, op, tuple(x), kernel=kernel,
                stride=kernel if stride is None else stride, padding=padding, note=note)


def deform(name, x, w, padding=0, mask=True, note=""):
    return Case(name, "deform_conv2d", tuple(x), w=tuple(w), padding=padding, note=note,
                params=(("mask", mask),))


def adaptive_max(name, x, output_size, note=""):
    return Case(name, "adaptive_max_pool2d", tuple(x), note=note,
                params=(("output_size", output_size),))


def adaptive_avg(name, x, output_size, note=""):
    return Case(name, "adaptive_avg_pool2d", tuple(x), note=note,
                params=(("output_size", output_size),))


def upsample(name, x, scale_factor, mode, note=""):
    return Case(name, "interpolate", tuple(x), note=note,
                params=(("scale_factor", scale_factor), ("mode", mode)))


# The default set: realistic layers.  The performance work measures exactly
# these names and shapes; do not change them without saying so.
DEFAULT_CASES = (
    conv("lenet1", (64, 1, 28, 28), (30, 1, 5, 5), note="LeNet first layer"),
    conv("cifar", (128, 3, 32, 32), (32, 3, 3, 3), padding=1, note="CIFAR first layer"),
    conv("mid", (32, 64, 56, 56), (64, 64, 3, 3), padding=1, note="ResNet stage-1 3x3"),
    conv("deep", (32, 256, 14, 14), (256, 256, 3, 3), padding=1, note="ResNet stage-3 3x3"),
    conv("strided", (32, 64, 56, 56), (128, 64, 3, 3), stride=2, padding=1,
         note="ResNet downsampling 3x3"),
    conv("pw1x1", (32, 128, 28, 28), (256, 128, 1, 1), note="pointwise 1x1"),
    conv("depthwise", (32, 128, 56, 56), (128, 1, 3, 3), padding=1, groups=128,
         note="MobileNet depthwise 3x3"),
    pool("maxpool2x2", "max_pool2d", (64, 64, 56, 56), 2, 2, note="VGG-style max pool"),
    pool("maxpool3x3", "max_pool2d", (64, 64, 56, 56), 3, 2, padding=1,
         note="ResNet stem max pool"),
    pool("avgpool", "avg_pool2d", (64, 64, 56, 56), 2, 2, note="2x2 average pool"),
    # The shape classes beyond the seven conv layers (issue 16): one common
    # layer each, sized so the default run stays within its time budget.
    conv("stem7x7", (8, 3, 224, 224), (64, 3, 7, 7), stride=2, padding=3,
         note="ResNet stem 7x7 stride 2"),
    conv("conv5x5", (32, 32, 28, 28), (64, 32, 5, 5), padding=2, note="Inception 5x5"),
    conv("dilated", (8, 128, 28, 28), (128, 128, 3, 3), padding=2, dilation=2,
         note="DeepLab dilated 3x3 (d=2)"),
    conv("grouped", (16, 256, 28, 28), (256, 8, 3, 3), padding=1, groups=32,
         note="ResNeXt 32x4d grouped 3x3"),
    conv("proj1x1", (32, 64, 56, 56), (128, 64, 1, 1), stride=2,
         note="ResNet 1x1 stride-2 projection"),
    conv("deep-b1", (1, 256, 14, 14), (256, 256, 3, 3), padding=1,
         note="ResNet stage-3 3x3, batch 1"),
    conv("speech1d", (4, 64, 4000), (64, 64, 9), padding=4, note="speech conv1d, k=9"),
    conv("video3d", (4, 32, 8, 28, 28), (32, 32, 3, 3, 3), padding=1,
         note="video conv3d 3x3x3"),
    conv("dcgan", (8, 128, 16, 16), (128, 64, 4, 4), stride=2, padding=1, transposed=True,
         note="DCGAN conv_transpose2d 4x4 stride 2"),
    adaptive_avg("gap", (32, 2048, 7, 7), 1, note="global average pool (ResNet-50 head)"),
    pool("maxpool112", "max_pool2d", (8, 64, 112, 112), 3, 2, padding=1,
         note="ResNet stem max pool 3x3/2 on 112x112"),
)

# The other ops' layers (issue 14), measured on request (--cases
# deform,upsample,adaptivemax) so the default run stays the agreed one.
OP_CASES = (
    deform("deform", (8, 64, 56, 56), (64, 64, 3, 3), padding=1,
           note="ResNet stage-2 deformable 3x3 (v2, with mask)"),
    upsample("upsample", (16, 64, 56, 56), 2.0, "bilinear", note="2x bilinear upsampling"),
    adaptive_max("adaptivemax", (64, 64, 56, 56), 7, note="adaptive max pool to 7x7"),
)

# Layers so small that argument handling, not arithmetic, is most of a call
# (docs/performance.md, "Per-call overhead"); on request: --cases 'tiny-*'.
TINY_CASES = (
    conv("tiny-conv", (1, 8, 8, 8), (8, 8, 3, 3), padding=1,
         note="per-call overhead: batch 1, 8x8 digits"),
    pool("tiny-maxpool", "max_pool2d", (1, 8, 8, 8), 2, 2, note="per-call overhead"),
)

# --quick: the same kinds of layer, shrunk so the whole run takes seconds.
QUICK_CASES = (
    conv("q-lenet1", (8, 1, 28, 28), (6, 1, 5, 5)),
    conv("q-cifar", (16, 3, 32, 32), (16, 3, 3, 3), padding=1),
    conv("q-mid", (4, 32, 28, 28), (32, 32, 3, 3), padding=1),
    conv("q-strided", (4, 32, 28, 28), (64, 32, 3, 3), stride=2, padding=1),
    conv("q-pw1x1", (4, 64, 14, 14), (128, 64, 1, 1)),
    conv("q-depthwise", (4, 64, 28, 28), (64, 1, 3, 3), padding=1, groups=64),
    pool("q-maxpool2x2", "max_pool2d", (8, 32, 28, 28), 2, 2),
    pool("q-maxpool3x3", "max_pool2d", (8, 32, 28, 28), 3, 2, padding=1),
    pool("q-avgpool", "avg_pool2d", (8, 32, 28, 28), 2, 2),
    deform("q-deform", (2, 16, 14, 14), (16, 16, 3, 3), padding=1),
    upsample("q-upsample", (2, 16, 14, 14), 2.0, "bilinear"),
    adaptive_max("q-adaptivemax", (4, 16, 28, 28), 7),
    conv("q-dilated", (2, 16, 14, 14), (16, 16, 3, 3), padding=2, dilation=2),
    conv("q-grouped", (2, 32, 14, 14), (32, 4, 3, 3), padding=1, groups=8),
    conv("q-speech1d", (2, 16, 200), (16, 16, 9), padding=4),
    conv("q-video3d", (2, 8, 4, 10, 10), (8, 8, 3, 3, 3), padding=1),
    conv("q-dcgan", (2, 16, 8, 8), (16, 8, 4, 4), stride=2, padding=1, transposed=True),
    adaptive_avg("q-gap", (4, 64, 7, 7), 1),
)

# Whole networks (nets.py), measured with --nets and in the default run when
# torch is installed.
ALL_CASES = DEFAULT_CASES + OP_CASES + TINY_CASES + QUICK_CASES + NET_CASES + QUICK_NET_CASES


def required_ops(case):
    """Names every implementation must provide to run `case` (both directions;
    a network needs only fastconv.nn)."""
    return () if case.kind == "net" else (case.op, case.op + "_backward")


def available(case):
    """True when both fastconv and fastconv.reference have this case's ops."""
    import fastconv
    import fastconv.reference as reference
    return all(hasattr(fastconv, op) and hasattr(reference, op) for op in required_ops(case))


def select(patterns=None, quick=False, defaults=None):
    """(cases, notices): `defaults` (else the default or quick op cases), or
    the cases whose name matches one of `patterns` (fnmatch globs, e.g. "mid",
    "*pool*"), among every known case; cases whose ops this fastconv lacks are
    dropped with a one-line notice.  Unknown names raise ValueError."""
    if patterns:
        chosen = []
        for pat in patterns:
            hits = [c for c in ALL_CASES if fnmatch.fnmatchcase(c.name, pat)]
            if not hits:
                raise ValueError(f"--cases: no case matches {pat!r}; known cases: "
                                 + ", ".join(c.name for c in ALL_CASES))
            chosen += [c for c in hits if c not in chosen]
    else:
        chosen = list(defaults if defaults is not None
                      else QUICK_CASES if quick else DEFAULT_CASES)
    missing = [c for c in chosen if not available(c)]
    notices = []
    if missing:
        ops = sorted({op for c in missing for op in required_ops(c)})
        notices.append(f"skipped {len(missing)} case(s) ({', '.join(c.name for c in missing)}): "
                       f"fastconv (or fastconv.reference) has no {', '.join(ops)}")
    return [c for c in chosen if c not in missing], notices
