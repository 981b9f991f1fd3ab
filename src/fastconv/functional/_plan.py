"""The convolution plan: the one place an algorithm is chosen.

`plan_conv` decides, for one pass of a convolution (its output, its
grad_input or its grad_weight), which kernel computes it, how the batch is
chunked, how much scratch the kernel needs, how the threads split the work
and how the output is stored.  The ops in _conv.py and _conv_transpose.py only
execute plans, and `fastconv.explain` returns the plans a call would run.
`plan_adaptive_avg_pool` (and `global_mean_prefetch`) choose adaptive average
pooling's kernel the same way, for _pool.py.

Every threshold is a named constant below, with the reason it has the value
it has; docs/performance.md ("Algorithm choice") records the measurements.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Optional, Tuple

import numpy as np

from .. import _callcache, _kernels, _threads
from ._geometry import Window

# --------------------------------------------------------------- thresholds

# One GEMM per image (output written in place, no transposes, threads take
# whole images) pays once an image has this many output positions: its GEMM
# panels are then mostly full.  Smaller images go side by side in chunks, the
# output transposed into place afterwards.
PER_IMAGE_MIN_POSITIONS = 400

# Winograd F(2x2, 3x3) does 2.25x fewer multiply-adds than the direct sum,
# but its input and output transforms cost a fixed amount per channel: below
# this many input channels per group they cost more than they save.
WINOGRAD_MIN_CHANNELS = 16

# Winograd computes whole 2x2 output tiles; an odd output size wastes a row
# or a column of them.  Below this share of real outputs among the tiles'
# outputs (7x7 has 77% and still pays, 3x3 has 56% and does not) the wasted
# work eats the saving.
WINOGRAD_MIN_TILE_USE = 0.7

# A stride-1 conv's data gradient is a conv of grad_output with the flipped
# kernel, run by the forward's kernels.  That conv's implicit GEMM has
# C_in / groups rows: below this most of each micro-tile would be padding,
# and GEMM + col2im is faster.
FLIPPED_CONV_MIN_CHANNELS = 16

# Outputs from this size on (bytes, whole call) leave the caches before
# anyone reads them back: the per-image GEMM writes them with streaming
# (non-temporal) stores instead of reading every cache line in first.
STREAM_MIN_BYTES = 4 << 20

# Target size of the scratch of one side-by-side chunk: the batch is cut into
# chunks whose padded images and transposed output stay near it, so scratch
# is bounded whatever the batch size.
CHUNK_SCRATCH_BYTES = 32 << 20

# Winograd's transforms add and subtract up to this many multiples of the
# largest operand product per term the direct sum adds (forward: the input
# transform 4x, the weight transform 2.25x, the output transform 9x;
# weight gradient: 4x, 4x and 4x per tile, fewer tiles than terms), so
# within it no intermediate can overflow where the direct sum does not: an
# overflowed intermediate minus another is NaN, where the direct sum gives
# inf or a large finite value.
WINOGRAD_GROWTH = 64

_SWITCH_VALUES = {"1": True, "true": True, "yes": True, "on": True,
                  "0": False, "false": False, "no": False, "off": False}


def _env_switch(name):
    """An on/off environment variable (default on); any other value is
    refused, as FASTCONV_SIMD's are, so a typo never leaves the switch in
    the state it was meant to change."""
    value = os.environ.get(name, "1").strip().lower() or "1"
    if value not in _SWITCH_VALUES:
        raise ImportError(f"{name}={os.environ[name]!r} is not one of the accepted values "
                          f"{sorted(_SWITCH_VALUES)} (0, false, no, off turn it off)")
    return _SWITCH_VALUES[value]


# FASTCONV_WINOGRAD=0 turns Winograd off (read once, at import), for results
# that round exactly as the direct sum does.
WINOGRAD = _env_switch("FASTCONV_WINOGRAD")

# ------------------------------------------------------------- the plan

# What a plan computes (the passes of a convolution).  A transposed
# convolution runs the passes of the convolution it is the adjoint of: its
# output is that conv's grad_input, its grad_input that conv's output.
OUTPUT = "output"
GRAD_INPUT = "grad_input"
GRAD_WEIGHT = "grad_weight"

# The algorithms.
EMPTY_SUM = "empty_sum"                    # nothing to multiply: zeros (+ bias)
DEPTHWISE = "depthwise"                    # direct SIMD loops, one channel per group
WINOGRAD_F2X2_3X3 = "winograd"             # Winograd F(2x2, 3x3), 16 GEMMs over tiles
GEMM_PER_IMAGE = "implicit_gemm_per_image"  # one implicit GEMM per image, in place
GEMM_SIDE_BY_SIDE = "implicit_gemm_side_by_side"  # a chunk of images as one GEMM
FLIPPED_CONV = "flipped_conv"              # grad_input as a conv with the flipped kernel
GEMM_COL2IM = "gemm_col2im"                # grad_input columns by GEMM, folded by col2im
WEIGHT_GRAD_GEMM = "weight_grad_gemm"      # fused GEMM over the whole batch

ALGORITHMS = {
    OUTPUT: (EMPTY_SUM, DEPTHWISE, WINOGRAD_F2X2_3X3, GEMM_PER_IMAGE, GEMM_SIDE_BY_SIDE),
    GRAD_INPUT: (EMPTY_SUM, DEPTHWISE, FLIPPED_CONV, GEMM_COL2IM),
    GRAD_WEIGHT: (EMPTY_SUM, DEPTHWISE, WINOGRAD_F2X2_3X3, WEIGHT_GRAD_GEMM),
}


@dataclass(frozen=True)
class ConvPlan:
    """How one pass of a convolution runs.

    computes: OUTPUT, GRAD_INPUT or GRAD_WEIGHT (of the convolution; see
        above for transposed convolutions).
    algorithm: one of ALGORITHMS[computes].
    reason: why the plan function chose it, in words.
    batch: images the pass runs over.
    chunk: images per kernel call (the batch is cut into chunks of this many
        images; == batch unless the scratch would grow with the batch).
    workspace: elements (of the call's dtype) of scratch the kernel needs.
    threads: threads the kernels use.
    threads_over_images: each thread takes whole images, else the threads
        split each image's work (the implicit GEMM per image and GEMM +
        col2im; the other kernels split their work their own way).
    stream_stores: the output is written with streaming stores (the
        implicit GEMM per image).
    pointwise: 1x1 kernel, stride 1, no padding: the GEMM reads the images
        themselves as its column matrix.
    via: for FLIPPED_CONV, the plan of the convolution it runs.
    channels_per_call: for GEMM_COL2IM, input channels whose columns one
        kernel call builds when one image's whole column matrix would pass
        CHUNK_SCRATCH_BYTES (image by image, group by group, block by block
        of channels: each input channel's gradient needs only its own rows
        of the columns); None: every channel of a chunk of images at once.
    """
    computes: str
    algorithm: str
    reason: str
    batch: int
    chunk: int
    workspace: int
    threads: int
    threads_over_images: bool = False
    stream_stores: bool = False
    pointwise: bool = False
    via: Optional[ConvPlan] = field(default=None)
    channels_per_call: Optional[int] = None

    def __str__(self):
        """A few readable lines (repr() has every field)."""
        flags = {"threads_over_images": "threads take whole images",
                 "stream_stores": "streaming stores", "pointwise": "images read in place"}
        lines = [f"{self.computes}: {self.algorithm} ({self.reason})",
                 f"  {self.batch} images in chunks of {self.chunk}, scratch of "
                 f"{self.workspace} elements, {self.threads} threads"
                 + "".join(f", {text}" for name, text in flags.items() if getattr(self, name))]
        if self.via is not None:
            lines.append("  via " + str(self.via).replace("\n", "\n  "))
        return "\n".join(lines)


# ------------------------------------------------------------- the rules

def is_depthwise(c_in: int, groups: int) -> bool:
    """One input channel per group: a GEMM per group would be 1 x taps thin."""
    return groups > 1 and groups == c_in


def is_pointwise(win: Window) -> bool:
    """1x1 kernel, stride 1, no padding, no dilation, output grid == input
    grid: the images are their own column matrices."""
    return (all(v == 1 for v in win.kernel + win.stride + win.dilation)
            and not any(win.pad_before + win.pad_after) and win.out_size == win.in_size)


def winograd_tile_use(win: Window) -> float:
    """Share of real outputs among the outputs of the 2x2 tiles covering a
    2-D output grid."""
    oh, ow = win.out_size
    return oh * ow / (4 * ((oh + 1) // 2) * ((ow + 1) // 2))


def winograd_fits(win: Window) -> bool:
    """The geometry Winograd F(2x2, 3x3) computes: 2-D, 3x3, stride 1,
    dilation 1 (any padding)."""
    return win.kernel == (3, 3) and win.stride == (1, 1) and win.dilation == (1, 1)


def max_abs(a: np.ndarray) -> float:
    """max |a| (NaN if a holds NaN, 0 if empty), in two read-only passes:
    np.abs(a).max() would allocate a copy of a."""
    return max(float(a.max()), -float(a.min())) if a.size else 0.0


def winograd_in_range(operands: Tuple[np.ndarray, np.ndarray], terms: int, dtype) -> bool:
    """Whether Winograd's transforms of `operands` (the pass's two arrays
    whose products it sums, `terms` products per result) stay finite: both
    finite, neither's transform overflowing, and WINOGRAD_GROWTH * terms
    times the largest product within the dtype's range.  NaN and inf fail
    every comparison here, so they go to the direct sum too."""
    limit = float(np.finfo(dtype).max)
    a, b = (max_abs(x) for x in operands)
    return (4 * a <= limit and 4 * b <= limit
            and WINOGRAD_GROWTH * terms * a * b <= limit)


def _winograd_reason(win, c_in_group):
    """Why Winograd runs (a string), or None when it does not pay or does
    not apply."""
    if not (WINOGRAD and winograd_fits(win) and c_in_group >= WINOGRAD_MIN_CHANNELS):
        return None
    use = winograd_tile_use(win)
    if use < WINOGRAD_MIN_TILE_USE:
        return None
    return (f"3x3 stride-1 kernel, {c_in_group} >= {WINOGRAD_MIN_CHANNELS} input channels "
            f"per group, {use:.0%} >= {WINOGRAD_MIN_TILE_USE:.0%} of its tiles' outputs real")


def _winograd_candidate(call):
    """(reason Winograd runs or None, note for the plan that runs instead):
    the shape rules, then the operands' range (plan_conv checks it)."""
    reason = _winograd_reason(call.win, call.c_in_group)
    if reason is None or call.winograd_values_ok:
        return reason, ""
    return None, ("; not Winograd: the operands hold inf/NaN, or values whose products "
                  "could overflow its transforms")


def data_grad_window(win: Window) -> Optional[Window]:
    """The window of the convolution that computes a stride-1 conv's data
    gradient: grad_input[i] = sum_t W[t] grad_output[i + pad - t*d], i.e. a
    conv over grad_output with the kernel flipped and padding d*(k-1) - pad,
    whose output grid is the input's.  None when that does not apply (a
    stride > 1, or padding beyond the dilated kernel: negative padding)."""
    reach = tuple(d * (k - 1) for k, d in zip(win.kernel, win.dilation))
    if any(s != 1 for s in win.stride) or any(p > r for p, r in zip(win.pad_before, reach)):
        return None
    pad = tuple(r - p for p, r in zip(win.pad_before, reach))
    # Taps past grad_output's end read as zeros, so the trailing padding is
    # implied by the explicit output grid.
    return Window(win.out_size, win.kernel, win.stride, pad, pad, win.dilation,
                  explicit_out=win.in_size)


def batch_chunk(batch: int, bytes_per_image: int, budget: Optional[int] = None) -> int:
    """Images per chunk so that a chunk's scratch stays near `budget`
    (CHUNK_SCRATCH_BYTES by default): at least 1, at most the batch."""
    budget = CHUNK_SCRATCH_BYTES if budget is None else budget
    return max(1, min(batch, budget // max(1, bytes_per_image)))


# ------------------------------------------------------------- planning

def plan_conv(computes: str, batch: int, c_in: int, c_out: int, win: Window, groups: int,
              dtype, threads: Optional[int] = None,
              algorithm: Optional[str] = None,
              operands: Optional[Tuple[np.ndarray, np.ndarray]] = None) -> ConvPlan:
    """The plan of one pass of a validated convolution: `computes` (OUTPUT,
    GRAD_INPUT or GRAD_WEIGHT) of a conv of `batch` images of `c_in`
    channels into `c_out` channels over window `win` with `groups` groups,
    in `dtype`, on `threads` threads (default: fastconv.get_num_threads()).

    `algorithm` forces one of ALGORITHMS[computes] instead of the rules'
    choice (to compare kernels); ValueError if it cannot compute this
    geometry.

    `operands` are the pass's two arrays whose products it sums (OUTPUT:
    input and weight; GRAD_INPUT: grad_output and weight; GRAD_WEIGHT: input
    and grad_output): given, Winograd runs only if their values cannot
    overflow its transforms (winograd_in_range; non-finite values never
    run it), else the direct sum's path does.  None: shapes only."""
    if computes not in ALGORITHMS:
        raise ValueError(f"plan_conv: computes must be one of {sorted(ALGORITHMS)}, "
                         f"got {computes!r}")
    if algorithm is not None and algorithm not in ALGORITHMS[computes]:
        raise ValueError(f"plan_conv: {computes} is computed by one of "
                         f"{ALGORITHMS[computes]}, got algorithm={algorithm!r}")
    threads = _threads.get_num_threads() if threads is None else threads
    dtype = np.dtype(dtype)
    sizes = (computes, batch, c_in, c_out, win, groups, dtype, threads, algorithm)
    plan = _plan(*sizes, True)
    # The one rule that reads values, so it stays outside the memo: only
    # when the shape rules chose Winograd (else the values cannot matter).
    if (operands is not None and WINOGRAD_F2X2_3X3 in (plan.algorithm, via_algorithm(plan))
            and not winograd_in_range(tuple(operands),
                                      _winograd_terms(computes, batch, c_in, c_out, win, groups),
                                      dtype)):
        plan = _plan(*sizes, False)
    return plan


def via_algorithm(plan):
    return None if plan.via is None else plan.via.algorithm


def _winograd_terms(computes, batch, c_in, c_out, win, groups):
    """Products the direct sum adds per result of this pass (the forward's
    reduction, the flipped conv's for GRAD_INPUT, the batch's positions for
    GRAD_WEIGHT): what Winograd's transforms may amplify."""
    if computes == GRAD_WEIGHT:
        return batch * win.out_count
    return (c_out if computes == GRAD_INPUT else c_in) // groups * win.taps


# A plan is a pure function of these values: made once per distinct call
# (the thresholds are constants; _callcache.clear() after changing one).
# `winograd_values_ok` False: the operands' values rule Winograd out.
@_callcache.memoize
def _plan(computes, batch, c_in, c_out, win, groups, dtype, threads, algorithm,
          winograd_values_ok):
    call = _Call(computes, batch, c_in, c_out, win, groups, dtype, threads, winograd_values_ok)
    planner = {OUTPUT: _plan_output, GRAD_INPUT: _plan_grad_input,
               GRAD_WEIGHT: _plan_grad_weight}[computes]
    return planner(call, algorithm)


@dataclass(frozen=True)
class _Call:
    """The sizes a plan depends on."""
    computes: str
    batch: int
    c_in: int
    c_out: int
    win: Window
    groups: int
    dtype: np.dtype
    threads: int
    winograd_values_ok: bool = True     # False: the operands' values rule it out

    @property
    def c_in_group(self):
        return self.c_in // self.groups

    @property
    def empty(self):
        """No products to sum: no images, output channels, input channels or
        output positions."""
        return not (self.batch and self.c_out and self.c_in and self.win.out_count)

    def plan(self, algorithm, reason, workspace=0, chunk=None, **flags):
        return ConvPlan(self.computes, algorithm, reason, self.batch,
                        self.batch if chunk is None else chunk, int(workspace),
                        self.threads, **flags)

    def threads_over_images(self):
        """Threads take whole images when there are images to spare (else
        they split each image's work)."""
        return self.threads > 1 and self.batch >= self.threads

    def first_candidates(self):
        """The rules every pass checks first: nothing to sum, then depthwise."""
        return [(EMPTY_SUM, "no products to sum" if self.empty else None),
                (DEPTHWISE, "one input channel per group"
                 if is_depthwise(self.c_in, self.groups) else None)]

    def depthwise_plan(self, reason):
        """The depthwise kernels share one scratch layout in all passes."""
        return self.plan(DEPTHWISE, reason, _kernels.depthwise_workspace_size(
            self.dtype.char, self.win.kernel_geometry(self.c_in), self.c_out // self.groups,
            self.threads))


def _choose(call, forced, candidates):
    """(algorithm, reason) of the first of `candidates` ((algorithm,
    reason-or-None) in rule order) whose reason is not None; or the forced
    algorithm, if it can compute the call."""
    chosen = next((a, r) for a, r in candidates if r is not None)
    if forced is None or forced == chosen[0]:
        return chosen
    if not _applies(call, forced):
        raise ValueError(f"plan_conv: {forced} cannot compute the {call.computes} of this "
                         f"convolution")
    return forced, "forced by the caller"


def _applies(call, algorithm):
    """Whether a forced algorithm can compute the call at all (it need not
    pay)."""
    if algorithm == DEPTHWISE:
        return is_depthwise(call.c_in, call.groups)
    if algorithm == WINOGRAD_F2X2_3X3:
        return winograd_fits(call.win) and not call.empty
    if algorithm == FLIPPED_CONV:
        return data_grad_window(call.win) is not None and not call.empty
    if algorithm == EMPTY_SUM:
        return call.empty
    return not call.empty


def _plan_output(call, forced):
    win, dtype, threads = call.win, call.dtype, call.threads
    per_image_reason = ("1x1 stride-1 unpadded kernel: each image is its own column matrix"
                        if is_pointwise(win) else
                        f"{win.out_count} >= {PER_IMAGE_MIN_POSITIONS} output positions per "
                        f"image" if win.out_count >= PER_IMAGE_MIN_POSITIONS else
                        # Side by side, one image would only be copied into place
                        # afterwards.
                        "one image: no others to put side by side, written in place"
                        if call.batch == 1 else None)
    winograd, not_winograd = _winograd_candidate(call)
    algorithm, reason = _choose(call, forced, [
        *call.first_candidates(),
        (WINOGRAD_F2X2_3X3, winograd),
        (GEMM_PER_IMAGE, per_image_reason),
        (GEMM_SIDE_BY_SIDE, f"{win.out_count} < {PER_IMAGE_MIN_POSITIONS} output positions "
                            f"per image: images side by side"),
    ])
    reason += not_winograd
    geom = win.kernel_geometry(call.c_in)
    if algorithm == DEPTHWISE:
        return call.depthwise_plan(reason)
    if algorithm == WINOGRAD_F2X2_3X3:
        return call.plan(algorithm, reason, _kernels.conv_winograd_workspace_size(
            dtype.char, geom, call.groups, call.c_out, threads))
    if algorithm == GEMM_PER_IMAGE:
        out_bytes = call.batch * call.c_out * win.out_count * dtype.itemsize
        return call.plan(algorithm, reason, _kernels.conv_workspace_size(
            dtype.char, geom, call.batch, call.c_out, True, threads),
            threads_over_images=call.threads_over_images(),
            stream_stores=out_bytes >= STREAM_MIN_BYTES, pointwise=is_pointwise(win))
    if algorithm == GEMM_SIDE_BY_SIDE:
        def scratch(nb):
            return _kernels.conv_workspace_size(dtype.char, geom, nb, call.c_out, False, 1)
        # A chunk holds its padded images and its GEMM output (which the
        # kernel copies into place).
        chunk = batch_chunk(call.batch, (scratch(2) - scratch(1)) * dtype.itemsize)
        return call.plan(algorithm, reason, _kernels.conv_workspace_size(
            dtype.char, geom, chunk, call.c_out, False, threads), chunk=chunk)
    return call.plan(algorithm, reason)


def _plan_grad_input(call, forced):
    win, dtype, threads = call.win, call.dtype, call.threads
    flipped = data_grad_window(win)
    flipped_reason = (f"stride 1, {call.c_in_group} >= {FLIPPED_CONV_MIN_CHANNELS} input "
                      f"channels per group: a conv of grad_output with the flipped kernel"
                      if flipped is not None and call.c_in_group >= FLIPPED_CONV_MIN_CHANNELS
                      else None)
    algorithm, reason = _choose(call, forced, [
        *call.first_candidates(),
        (FLIPPED_CONV, flipped_reason),
        (GEMM_COL2IM, "a stride > 1, few input channels per group or padding past the "
                      "kernel: columns by GEMM, folded by col2im"),
    ])
    if algorithm == DEPTHWISE:
        return call.depthwise_plan(reason)
    if algorithm == FLIPPED_CONV:
        # grad_output (batch, C_out, out) convolved into (batch, C_in, in).
        via = _plan(OUTPUT, call.batch, call.c_out, call.c_in, flipped, call.groups,
                    dtype, threads, None, call.winograd_values_ok)
        return call.plan(algorithm, reason, via.workspace, chunk=via.chunk, via=via)
    if algorithm == GEMM_COL2IM:
        def scratch(channels):
            return _kernels.conv_data_grad_workspace_size(
                dtype.char, win.kernel_geometry(channels), threads)
        if scratch(call.c_in) * dtype.itemsize <= CHUNK_SCRATCH_BYTES:
            return call.plan(algorithm, reason, scratch(call.c_in),
                             threads_over_images=call.threads_over_images())
        # Blocks of channels whose columns stay near CHUNK_SCRATCH_BYTES.
        per_channel = (scratch(2) - scratch(1)) * dtype.itemsize
        block = max(1, min(call.c_in_group, CHUNK_SCRATCH_BYTES // max(1, per_channel)))
        return call.plan(algorithm, reason + f"; one image's columns past "
                         f"{CHUNK_SCRATCH_BYTES >> 20} MiB: {block} channels at a time",
                         scratch(block), chunk=1, channels_per_call=block)
    return call.plan(algorithm, reason)


def _plan_grad_weight(call, forced):
    win, dtype, threads = call.win, call.dtype, call.threads
    c_out_group = call.c_out // call.groups
    winograd, not_winograd = _winograd_candidate(call)
    algorithm, reason = _choose(call, forced, [
        *call.first_candidates(),
        (WINOGRAD_F2X2_3X3, winograd),
        (WEIGHT_GRAD_GEMM, "grad_output times the input's columns, packed on the fly, "
                           "over the whole batch"),
    ])
    reason += not_winograd
    if algorithm == DEPTHWISE:
        return call.depthwise_plan(reason)
    if algorithm == WINOGRAD_F2X2_3X3:
        return call.plan(algorithm, reason, _kernels.conv_winograd_weight_grad_workspace_size(
            dtype.char, win.kernel_geometry(call.c_in_group), c_out_group, threads))
    if algorithm == WEIGHT_GRAD_GEMM:
        return call.plan(algorithm, reason, _kernels.conv_weight_grad_workspace_size(
            dtype.char, c_out_group, call.c_in_group * win.taps, threads))
    return call.plan(algorithm, reason)


# ------------------------------------------------- adaptive average pooling

# Global pooling prefetches its input from this size: larger than a typical
# last-level cache's share, it streams from memory, where the prefetch took a
# float64 ResNet head (26 MB) from 1.3 to 0.8-0.9 ms; a float32 one (13 MB,
# in cache between calls) ran 25% slower with it (docs/performance.md).
GLOBAL_MEAN_PREFETCH_MIN_BYTES = 16 << 20

# The algorithms of adaptive average pooling's forward.
ADAPTIVE_BINS = "adaptive_bins"    # any bins: each bin's bounds and runs, row by row
GLOBAL_MEAN = "global_mean"        # one bin per plane: whole planes summed, several at once


def plan_adaptive_avg_pool(out_size: Tuple[int, ...]) -> str:
    """The kernel of an adaptive average pooling forward to out_size: the mean
    of whole planes (global pooling, a classifier's head) needs no bin bounds,
    and its planes are short, so per-bin work would dominate; other sizes
    take the general bins."""
    return GLOBAL_MEAN if all(o == 1 for o in out_size) else ADAPTIVE_BINS


def global_mean_prefetch(input_bytes: int) -> bool:
    """Whether global pooling prefetches its input (one too big to stay in cache)."""
    return input_bytes >= GLOBAL_MEAN_PREFETCH_MIN_BYTES

# --------------------------------------------------------- matrix products

# A product of at most this many multiply-adds runs unpacked on the calling
# thread (fc_gemm_small): below it, packing both operands and computing whole
# micro-tiles for a narrow edge cost more than the product itself (a
# classifier head, x (64, 256) by w (10, 256): 164k); above it the packed
# GEMM's cache blocking and threads win (docs/performance.md, "Small
# products").
SMALL_GEMM_MAX_MACS = 1 << 20

# The small kernel's dot form (x @ w.T: B's columns and A's rows contiguous)
# ends each element of C with a sum across a vector's lanes; it beats copying
# B to row-major for the rows form only when k is at least this many times n
# (a narrow head, 10 outputs of 256 inputs: 3.6x fewer instructions; 64^3:
# 1.5x more).
SMALL_GEMM_DOT_MIN_K_PER_N = 4

# The algorithms of a matrix product (the `gemm` of _conv.py).
GEMM_PACKED = "gemm_packed"   # packed panels, register-blocked micro-kernel, threads
GEMM_SMALL = "gemm_small"     # operands read where they lie, one thread


def plan_gemm(m: int, n: int, k: int) -> str:
    """The kernel of C (m, n) = A (m, k) @ B (k, n): the small one for products
    whose packing would cost more than their arithmetic."""
    return GEMM_SMALL if m * n * k <= SMALL_GEMM_MAX_MACS else GEMM_PACKED


def small_gemm_reads_in_place(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether fc_gemm_small should read a @ b where it lies: B's rows
    contiguous (its rows form), or B's columns and A's rows with k long
    enough for its dot form; a stride along an axis of length 1 never
    matters.  Otherwise the caller copies B to row-major (k x n elements,
    against m x n x k multiply-adds)."""
    item = a.itemsize
    k, n = b.shape
    if n == 1 or k == 1 or b.strides[1] == item:
        return True
    return (b.strides[0] == item and a.strides[1] == item
            and k >= SMALL_GEMM_DOT_MIN_K_PER_N * n)
