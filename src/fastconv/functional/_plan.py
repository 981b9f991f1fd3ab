"""The convolution plan: the one place an algorithm is chosen.

`plan_conv` decides, for one pass of a convolution (its output, its
grad_input or its grad_weight), which kernel computes it, how the batch is
chunked, how much scratch the kernel needs, how the threads split the work
and how the output is stored; `plan_conv_transpose` decides for a transposed
convolution's passes whether they run as one stride-1 conv over the output's
phases (sub-pixel decomposition) or as plan_conv's passes of the strided
conv it is the adjoint of.  The ops in _conv.py and _conv_transpose.py only
execute plans, and `fastconv.explain` returns the plans a call would run.
`plan_adaptive_avg_pool` (and `global_mean_prefetch`) choose adaptive average
pooling's kernel the same way, for _pool.py.

Every threshold is a named constant below, with the reason it has the value
it has; docs/performance.md ("Algorithm choice") records the measurements.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from math import prod
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

# A grouped conv with few channels per group (ResNeXt's 4-8) runs the
# depthwise kernels' direct loops, all the group's input planes as more taps
# of each output row: as a GEMM, each group is a product of C_out / groups
# rows (a micro-tile row or less) and a short K = C_in / groups * taps, where
# packing and tile edges cost more than the multiply-adds.  Up to this many
# input channels per group (from 16 Winograd runs, and was as fast), ...
DIRECT_GROUPED_MAX_CHANNELS = 8
# ... up to this many output channels per group (the loops reuse each input
# vector for blocks of 4 outputs, where a GEMM's micro-tile reuses it for a
# whole panel of rows: at 16 the two were even in the forward, the direct
# loops still ahead in both gradients) ...
DIRECT_GROUPED_MAX_OUT_CHANNELS = 16
# ... on output rows at least this wide: the loops vectorise along a row,
# and rows narrower than a vector (16 floats with AVX-512; ResNeXt's 14x14
# and 7x7 stages) run scalar, 5-30x slower than the GEMM.
DIRECT_GROUPED_MIN_WIDTH = 16
# An ungrouped conv with as few input channels (a network's stem: 3 colour
# planes) is one such group: its forward and weight gradient run the same
# loops up to this many output channels.  The GEMM's K (C_in * taps, 27 for
# a 3x3 stem) is too short to pay for packing the columns: the direct loops
# measured 1.2-2.3x faster in the weight gradient and 1.0-1.9x in the
# forward on stems of 3 channels into 16 and 32 on 32x32 and 64x64 maps and
# 4->8 (5x5) to 8->32 convs, one thread (docs/performance.md, "MobileNet's
# convolutions pass by pass").  Not the data gradient: GEMM + col2im was as
# fast or faster on stems, 15x faster strided.
DIRECT_DENSE_MAX_OUT_CHANNELS = 32

# Outputs from this size on (bytes, whole call) leave the caches before
# anyone reads them back: the implicit GEMMs write them with streaming
# (non-temporal) stores instead of reading every cache line in first.
STREAM_MIN_BYTES = 4 << 20

# Target size of the scratch of one side-by-side chunk: the batch is cut into
# chunks whose padded images stay near it, so scratch is bounded whatever
# the batch size.
CHUNK_SCRATCH_BYTES = 32 << 20

# Winograd's transforms add and subtract up to this many multiples of the
# largest operand product per term the direct sum adds (forward: the input
# transform 4x, the weight transform 2.25x, the output transform 9x;
# weight gradient: 4x, 4x and 4x per tile, fewer tiles than terms), so
# within it no intermediate can overflow where the direct sum does not: an
# overflowed intermediate minus another is NaN, where the direct sum gives
# inf or a large finite value.
WINOGRAD_GROWTH = 64

# Other kernels run on Winograd F(2x2, 3x3) by composition (_winograd_compose.py):
# a dilated 3x3 as one 3x3 conv per output phase, a kD x 3 x 3 conv3d as one
# 3x3 conv over its kD depth slices stacked as channels, a larger 2-D kernel
# as one 3x3 conv over the 3x3 blocks of the kernel zero-padded to multiples
# of 3 (its input shifted once per block, stacked as channels).  Each pays
# the copies into and out of the composed conv on top of Winograd's own
# costs, so it needs the same channels and tile use as Winograd itself.  The
# blocks do 9 * blocks multiply-adds per output for the kernel's taps, 2.25x
# cheaper: below this ratio of direct to Winograd multiply-adds (5x5: 25 /
# (36 / 2.25) = 1.56; 7x7: 49 / (81 / 2.25) = 1.36) the stacked copies of the
# input eat the saving.  On a quiet machine float32 5x5 gained nothing at 1
# or 2 threads, so the ratio sits above 5x5's: the blocks run only when forced.
WINOGRAD_BLOCKS_MIN_GAIN = 1.6

# The kernel blocks' weight gradient (Winograd's over the stacked input and
# grad_output) measured 0.8-1.05x the fused GEMM's on the bench's conv5x5
# where its forward gained: it stays with the GEMM.
WINOGRAD_BLOCKS_WEIGHT_GRAD = False

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
DIRECT_GROUPED = "direct_grouped"          # the same loops, a few channels per group
WINOGRAD_F2X2_3X3 = "winograd"             # Winograd F(2x2, 3x3), 16 GEMMs over tiles
# Winograd F(2x2, 3x3) by composition (see WINOGRAD_BLOCKS_MIN_GAIN):
WINOGRAD_DILATED_PHASES = "winograd_dilated_phases"  # dilated 3x3: a 3x3 conv per phase
WINOGRAD_DEPTH_STACKED = "winograd_depth_stacked"    # kD x 3 x 3: depth slices as channels
WINOGRAD_KERNEL_BLOCKS = "winograd_kernel_blocks"    # larger 2-D: 3x3 blocks as channels
WINOGRAD_COMPOSED = (WINOGRAD_DILATED_PHASES, WINOGRAD_DEPTH_STACKED, WINOGRAD_KERNEL_BLOCKS)
GEMM_PER_IMAGE = "implicit_gemm_per_image"  # one implicit GEMM per image, in place
GEMM_SIDE_BY_SIDE = "implicit_gemm_side_by_side"  # a chunk of images as one GEMM
FLIPPED_CONV = "flipped_conv"              # grad_input as a conv with the flipped kernel
GEMM_COL2IM = "gemm_col2im"                # grad_input columns by GEMM, folded by col2im
WEIGHT_GRAD_GEMM = "weight_grad_gemm"      # fused GEMM over the whole batch

ALGORITHMS = {
    OUTPUT: (EMPTY_SUM, DEPTHWISE, DIRECT_GROUPED, WINOGRAD_F2X2_3X3, *WINOGRAD_COMPOSED,
             GEMM_PER_IMAGE, GEMM_SIDE_BY_SIDE),
    GRAD_INPUT: (EMPTY_SUM, DEPTHWISE, DIRECT_GROUPED, FLIPPED_CONV, GEMM_COL2IM),
    GRAD_WEIGHT: (EMPTY_SUM, DEPTHWISE, DIRECT_GROUPED, WINOGRAD_F2X2_3X3, *WINOGRAD_COMPOSED,
                  WEIGHT_GRAD_GEMM),
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
        implicit GEMMs).
    pointwise: 1x1 kernel, stride 1, no padding: the GEMM reads the images
        themselves as its column matrix.
    via: for FLIPPED_CONV, the plan of the convolution it runs; for a
        Winograd composition (WINOGRAD_COMPOSED), the Winograd plan of the
        3x3 conv it runs (for the dilated phases: the phases of the first
        phase's geometry, side by side), and chunk the original images per
        call of it; for SUBPIXEL (a transposed convolution's pass), the plan
        of the same pass of the stride-1 phase conv it runs.
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


def is_direct_grouped(c_in: int, c_out: int, groups: int, win: Window) -> bool:
    """More than one but few input and output channels per group, on rows
    a vector wide: the direct loops beat a GEMM per group
    (DIRECT_GROUPED_MAX_CHANNELS and below)."""
    return (groups > 1 and 1 < c_in // groups <= DIRECT_GROUPED_MAX_CHANNELS
            and c_out // groups <= DIRECT_GROUPED_MAX_OUT_CHANNELS
            and win.out_size[-1] >= DIRECT_GROUPED_MIN_WIDTH)


def is_direct_dense(c_in: int, c_out: int, groups: int, win: Window) -> bool:
    """Ungrouped, more than one but few input channels, at most
    DIRECT_DENSE_MAX_OUT_CHANNELS outputs, rows a vector wide: the forward's
    and weight gradient's direct loops beat the GEMM's packing."""
    return (groups == 1 and 1 < c_in <= DIRECT_GROUPED_MAX_CHANNELS
            and c_out <= DIRECT_DENSE_MAX_OUT_CHANNELS
            and win.out_size[-1] >= DIRECT_GROUPED_MIN_WIDTH)


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


_NOT_WINOGRAD = ("; not Winograd: the operands hold inf/NaN, or values whose products "
                 "could overflow its transforms")


def _not_composed(call):
    """The note for a plan that runs instead of a Winograd composition the
    values ruled out."""
    if call.winograd_values_ok or _composition_reason(call)[1] is None:
        return ""
    return _NOT_WINOGRAD


def _winograd_candidate(call):
    """(reason Winograd runs or None, note for the plan that runs instead):
    the shape rules, then the operands' range (plan_conv checks it)."""
    reason = _winograd_reason(call.win, call.c_in_group)
    if reason is None or call.winograd_values_ok:
        return reason, ""
    return None, _NOT_WINOGRAD


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


# ------------------------------------------- Winograd by composition

@dataclass(frozen=True)
class Phase:
    """One output phase of a dilated conv: outputs out_start + d*i of every
    axis are a dilation-1 conv (window `win`) of the input's rows and
    columns in_start + d*i."""
    out_start: Tuple[int, ...]
    in_start: Tuple[int, ...]
    win: Window


def _phase_axis(n_in, n_out, pad, d, p):
    """(input start, input length, padding before, output length) of output
    phase p along one axis: output p + d*i reads padded rows p + d*(i + t),
    i.e. input rows p - pad + d*(i + t) -- the phase starting at p - pad,
    after ceil((pad - p) / d) rows of padding when that is negative."""
    before = max(0, -((p - pad) // d))
    start = p - pad + d * before
    return start, max(0, -(-(n_in - start) // d)), before, -(-(n_out - p) // d)


def dilated_phases(win: Window) -> Tuple[Phase, ...]:
    """The phases (with outputs) whose dilation-1 convs make up a stride-1
    dilated 2-D conv; a phase's input may be empty (it reads padding
    only)."""
    phases = []
    for p in range(win.dilation[0]):
        for q in range(win.dilation[1]):
            axes = [_phase_axis(n, o, pad, d, r) for n, o, pad, d, r in
                    zip(win.in_size, win.out_size, win.pad_before, win.dilation, (p, q))]
            if all(a[3] > 0 for a in axes):
                phases.append(Phase((p, q), tuple(a[0] for a in axes), Window(
                    tuple(a[1] for a in axes), win.kernel, (1, 1), tuple(a[2] for a in axes),
                    (0, 0), (1, 1), explicit_out=tuple(a[3] for a in axes))))
    return tuple(phases)


def kernel_blocks(win: Window) -> Tuple[int, int]:
    """3x3 blocks per axis of a 2-D kernel zero-padded to multiples of 3."""
    return tuple(-(-k // 3) for k in win.kernel)


def kernel_blocks_window(win: Window) -> Window:
    """The 3x3 conv of a kernel-blocks composition.  Block i of an axis
    reads padded rows o + 3i + t, i.e. input rows o + t + 3i - pad: its
    stacked copy starts at input row 3i - shift (zeros before the input),
    for the conv's own padding pad - shift.  That padding may stand for no
    input row of any block (3 * (blocks - 1) >= it), so the shift copies
    the other padding rows into the stack.  The copy stops where every
    block reads zeros or no output reads."""
    blocks = kernel_blocks(win)
    pad = tuple(max(0, p - 3 * (b - 1)) for p, b in zip(win.pad_before, blocks))
    size = tuple(min(n + p - q, o + 2 - q) for n, p, q, o in
                 zip(win.in_size, win.pad_before, pad, win.out_size))
    return Window(size, (3, 3), (1, 1), pad, (0, 0), (1, 1), explicit_out=win.out_size)


def _stacked_3x3_window(win: Window) -> Window:
    """The 2-D 3x3 conv a stacked composition runs: the last two axes'
    input, padding and output (taps past the input read as zeros)."""
    return Window(win.in_size[-2:], (3, 3), (1, 1), win.pad_before[-2:], (0, 0), (1, 1),
                  explicit_out=win.out_size[-2:])


def winograd_composition(win: Window):
    """(algorithm, the 3x3 window it runs Winograd on, input channels it
    stacks per input channel, images it stacks per image (depth slices, or
    the phases of the first phase's geometry)) of the composition that
    computes `win`'s geometry on Winograd F(2x2, 3x3), or None."""
    if len(win.kernel) == 2 and win.stride == (1, 1):
        if win.kernel == (3, 3) and win.dilation != (1, 1):
            phases = [ph.win for ph in dilated_phases(win) if all(ph.win.in_size)]
            return (WINOGRAD_DILATED_PHASES, phases[0], 1, phases.count(phases[0])
                    ) if phases else None
        if win.kernel != (3, 3) and win.dilation == (1, 1):
            rows, cols = kernel_blocks(win)
            return WINOGRAD_KERNEL_BLOCKS, kernel_blocks_window(win), rows * cols, 1
    if (len(win.kernel) == 3 and win.kernel[1:] == (3, 3) and win.stride[1:] == (1, 1)
            and win.dilation[1:] == (1, 1)):
        return WINOGRAD_DEPTH_STACKED, _stacked_3x3_window(win), win.kernel[0], win.out_size[0]
    return None


def winograd_blocks_gain(win: Window) -> float:
    """Direct multiply-adds over Winograd's on the kernel's 3x3 blocks."""
    rows, cols = kernel_blocks(win)
    return win.taps * 2.25 / (9 * rows * cols)


def _composition_reason(call):
    """(algorithm, why it runs) of the Winograd composition for the call,
    or (None, None) when none applies or pays (the values are plan_conv's
    check)."""
    composed = winograd_composition(call.win) if WINOGRAD else None
    if composed is None:
        return None, None
    algorithm, sub, stacked, _ = composed
    channels = call.c_in_group * stacked
    use = winograd_tile_use(sub)
    if channels < WINOGRAD_MIN_CHANNELS or use < WINOGRAD_MIN_TILE_USE:
        return None, None
    how = {WINOGRAD_DILATED_PHASES: f"dilation {call.win.dilation}: one 3x3 conv per phase "
                                    f"of the output",
           WINOGRAD_DEPTH_STACKED: f"{call.win.kernel[0]} depth slices stacked as "
                                   f"{channels} channels of one 3x3 conv",
           WINOGRAD_KERNEL_BLOCKS: f"{stacked} 3x3 blocks of the zero-padded kernel stacked "
                                   f"as {channels} channels of one 3x3 conv"}[algorithm]
    if algorithm == WINOGRAD_KERNEL_BLOCKS:
        if call.computes == GRAD_WEIGHT and not WINOGRAD_BLOCKS_WEIGHT_GRAD:
            return None, None
        gain = winograd_blocks_gain(call.win)
        if gain < WINOGRAD_BLOCKS_MIN_GAIN:
            return None, None
        how += f", {gain:.2f} >= {WINOGRAD_BLOCKS_MIN_GAIN} times fewer multiply-adds"
    return algorithm, (f"Winograd F(2x2, 3x3) by composition: {how}; {channels} >= "
                       f"{WINOGRAD_MIN_CHANNELS} channels per group, {use:.0%} >= "
                       f"{WINOGRAD_MIN_TILE_USE:.0%} of its tiles' outputs real")


def _composition_candidates(call):
    """The rule list entries of the compositions (at most one applies)."""
    algorithm, reason = _composition_reason(call)
    if reason is not None and not call.winograd_values_ok:
        reason = None
    return [(a, reason if a == algorithm else None) for a in WINOGRAD_COMPOSED]


def _composed_plan(call, algorithm, reason):
    """The plan of a composition: the Winograd plan of the 3x3 conv it runs
    as `via`, on chunks of images whose stacked copy stays near
    CHUNK_SCRATCH_BYTES (the phases' copies, the input's size together,
    are not chunked)."""
    _, sub, stacked, convs = winograd_composition(call.win)
    chunk = call.batch
    if algorithm != WINOGRAD_DILATED_PHASES:
        image = call.c_in * stacked * convs * sub.in_size[0] * sub.in_size[1]
        chunk = batch_chunk(call.batch, image * call.dtype.itemsize)
    via = _plan(call.computes, chunk * convs, call.c_in * stacked, call.c_out, sub,
                call.groups, call.dtype, call.threads, WINOGRAD_F2X2_3X3, True)
    return call.plan(algorithm, reason, via.workspace, chunk=chunk, via=via)


def runs_winograd(plan: ConvPlan) -> bool:
    """Whether the plan (or a plan it runs) is Winograd's: its operands'
    values then decide whether it may run."""
    return (plan.algorithm == WINOGRAD_F2X2_3X3 or plan.algorithm in WINOGRAD_COMPOSED
            or (plan.via is not None and runs_winograd(plan.via)))


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
    return _planned(_plan, ALGORITHMS, "plan_conv", computes, batch, c_in, c_out, win, groups,
                    dtype, threads, algorithm, operands)


def _planned(planner, algorithms, name, computes, batch, c_in, c_out, win, groups, dtype,
             threads, algorithm, operands):
    """plan_conv's and plan_conv_transpose's work: the arguments checked,
    the memoised `planner`'s plan by the shape rules, then the one rule that
    reads values."""
    if computes not in algorithms:
        raise ValueError(f"{name}: computes must be one of {sorted(algorithms)}, "
                         f"got {computes!r}")
    if algorithm is not None and algorithm not in algorithms[computes]:
        raise ValueError(f"{name}: {computes} is computed by one of "
                         f"{algorithms[computes]}, got algorithm={algorithm!r}")
    threads = _threads.get_num_threads() if threads is None else threads
    dtype = np.dtype(dtype)
    sizes = (computes, batch, c_in, c_out, win, groups, dtype, threads, algorithm)
    plan = planner(*sizes, True)
    # The one rule that reads values, so it stays outside the memo: only
    # when the shape rules chose Winograd (else the values cannot matter).
    if (operands is not None and runs_winograd(plan)
            and not winograd_in_range(tuple(operands), _winograd_terms(plan, *sizes[:6]),
                                      dtype)):
        plan = planner(*sizes, False)
    return plan


def _winograd_terms(plan, computes, batch, c_in, c_out, win, groups):
    """Products the direct sum adds per result of this pass (the forward's
    reduction, the flipped conv's for GRAD_INPUT, the batch's positions for
    GRAD_WEIGHT; a SUBPIXEL plan's, those of the phase conv it runs): what
    Winograd's transforms may amplify."""
    if plan.algorithm == SUBPIXEL:
        c_in, win = c_in * prod(win.stride), subpixel_window(win)
    if computes == GRAD_WEIGHT:
        return batch * win.out_count
    # A composition by kernel blocks sums the zero-padded kernel's taps.
    taps = win.taps // prod(win.kernel[-2:]) * prod(3 * b for b in kernel_blocks(win)[-2:])
    return (c_out if computes == GRAD_INPUT else c_in) // groups * max(win.taps, taps)


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
        """The rules every pass checks first: nothing to sum, then the direct
        loops (depthwise, few channels per group)."""
        c_out_group = self.c_out // self.groups
        return [(EMPTY_SUM, "no products to sum" if self.empty else None),
                (DEPTHWISE, "one input channel per group"
                 if is_depthwise(self.c_in, self.groups) else None),
                (DIRECT_GROUPED, f"{self.c_in_group} <= {DIRECT_GROUPED_MAX_CHANNELS} input "
                                 f"and {c_out_group} <= {DIRECT_GROUPED_MAX_OUT_CHANNELS} "
                                 f"output channels per group: too few for a GEMM per group"
                 if is_direct_grouped(self.c_in, self.c_out, self.groups, self.win) else
                 f"ungrouped, {self.c_in} <= {DIRECT_GROUPED_MAX_CHANNELS} input and "
                 f"{self.c_out} <= {DIRECT_DENSE_MAX_OUT_CHANNELS} output channels: too few "
                 f"input channels to pay for packing a GEMM's columns"
                 if self.computes != GRAD_INPUT
                 and is_direct_dense(self.c_in, self.c_out, self.groups, self.win) else None)]

    def depthwise_plan(self, algorithm, reason):
        """The depthwise kernels (DEPTHWISE, DIRECT_GROUPED) share one
        scratch layout in all passes."""
        return self.plan(algorithm, reason, _kernels.depthwise_workspace_size(
            self.dtype.char, self.win.kernel_geometry(self.c_in), self.c_out // self.groups,
            self.c_in_group, self.threads))


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
    if algorithm == DIRECT_GROUPED:   # any grouping; pays only with few channels
        return not call.empty
    if algorithm == WINOGRAD_F2X2_3X3:
        return winograd_fits(call.win) and not call.empty
    if algorithm in WINOGRAD_COMPOSED:
        composed = winograd_composition(call.win)
        return composed is not None and composed[0] == algorithm and not call.empty
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
                        # Side by side, one image is the same GEMM without the
                        # per-image schedule's thread split and streaming.
                        "one image: no others to put side by side, written in place"
                        if call.batch == 1 else None)
    winograd, not_winograd = _winograd_candidate(call)
    algorithm, reason = _choose(call, forced, [
        *call.first_candidates(),
        (WINOGRAD_F2X2_3X3, winograd),
        *_composition_candidates(call),
        (GEMM_PER_IMAGE, per_image_reason),
        (GEMM_SIDE_BY_SIDE, f"{win.out_count} < {PER_IMAGE_MIN_POSITIONS} output positions "
                            f"per image: images side by side"),
    ])
    reason += not_winograd or _not_composed(call)
    geom = win.kernel_geometry(call.c_in)
    if algorithm in (DEPTHWISE, DIRECT_GROUPED):
        return call.depthwise_plan(algorithm, reason)
    if algorithm in WINOGRAD_COMPOSED:
        return _composed_plan(call, algorithm, reason)
    if algorithm == WINOGRAD_F2X2_3X3:
        return call.plan(algorithm, reason, _kernels.conv_winograd_workspace_size(
            dtype.char, geom, call.groups, call.c_out, threads))
    # Both implicit GEMMs write the output in place.
    stream_stores = call.batch * call.c_out * win.out_count * dtype.itemsize >= STREAM_MIN_BYTES
    if algorithm == GEMM_PER_IMAGE:
        return call.plan(algorithm, reason, _kernels.conv_workspace_size(
            dtype.char, geom, call.batch, call.c_out, True, threads),
            threads_over_images=call.threads_over_images(),
            stream_stores=stream_stores, pointwise=is_pointwise(win))
    if algorithm == GEMM_SIDE_BY_SIDE:
        def scratch(nb):
            return _kernels.conv_workspace_size(dtype.char, geom, nb, call.c_out, False, 1)
        # A chunk's scratch is its padded images (phase planes).
        chunk = batch_chunk(call.batch, (scratch(2) - scratch(1)) * dtype.itemsize)
        return call.plan(algorithm, reason, _kernels.conv_workspace_size(
            dtype.char, geom, chunk, call.c_out, False, threads), chunk=chunk,
            stream_stores=stream_stores)
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
    if algorithm in (DEPTHWISE, DIRECT_GROUPED):
        return call.depthwise_plan(algorithm, reason)
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
        *_composition_candidates(call),
        (WEIGHT_GRAD_GEMM, "grad_output times the input's columns, packed on the fly, "
                           "over the whole batch"),
    ])
    reason += not_winograd or _not_composed(call)
    if algorithm in (DEPTHWISE, DIRECT_GROUPED):
        return call.depthwise_plan(algorithm, reason)
    if algorithm in WINOGRAD_COMPOSED:
        return _composed_plan(call, algorithm, reason)
    if algorithm == WINOGRAD_F2X2_3X3:
        return call.plan(algorithm, reason, _kernels.conv_winograd_weight_grad_workspace_size(
            dtype.char, win.kernel_geometry(call.c_in_group), c_out_group, threads))
    if algorithm == WEIGHT_GRAD_GEMM:
        return call.plan(algorithm, reason, _kernels.conv_weight_grad_workspace_size(
            dtype.char, c_out_group, call.c_in_group * win.taps, threads))
    return call.plan(algorithm, reason)


# ------------------------------------------------- transposed convolution

# A stride-s transposed conv can be decomposed into its s**nd output phases
# (sub-pixel convolution): the equivalent conv's image, padded and split by
# phase (space-to-depth), is the input of ONE stride-1 conv with
# ceil(k/s)-tap kernels and s**nd times the channels, so the transposed
# forward is that conv's data gradient (a flipped conv, no col2im scatter)
# and its data gradient that conv's forward (no stride-s gather).  The phase
# conv does more multiply-adds than the strided one: its kernels are padded
# to s*ceil(k/s) taps, and its grid has ceil(k/s) - 1 more positions per
# axis (DCGAN's 4x4 stride 2 on 16x16: 89% of them useful; 3x3 stride 2,
# whose 2x2 phase kernels hold 9 taps of 16, under 56%).  The plan takes it
# where at least this share is useful.  It is infinite, i.e. the plan never
# takes it: measured in CPU time at 1 thread, the phase conv plus the phase
# split and interleave was slower than the strided kernels on every shape
# tried, DCGAN's included (docs/performance.md, "Transposed convolution by
# phases"): the strided passes already run at the GEMM's rate, so there was
# no scatter cost to win back.  A finite value (0.8 keeps the wasteful 3x3
# stride 2 out) switches it on for a quiet-machine measurement.
SUBPIXEL_MIN_WORK_USE = float("inf")

SUBPIXEL = "subpixel"      # transposed conv as one stride-1 conv over its output phases


def subpixel_window(win: Window) -> Optional[Window]:
    """The stride-1 window of the phase conv of a transposed conv whose
    equivalent conv has window `win` (image = the transposed output, grid =
    its input): over the phase image of grid + ceil(k/s) - 1 positions per
    axis, kernel ceil(k/s), no padding, the same grid.  None when the
    decomposition does not apply: stride 1 on every axis (nothing to split)
    or a dilation (the phases' taps would not be contiguous)."""
    if all(s == 1 for s in win.stride) or any(d != 1 for d in win.dilation):
        return None
    kernel = tuple(-(-k // s) for k, s in zip(win.kernel, win.stride))
    nd = len(kernel)
    return Window(tuple(g + k - 1 for g, k in zip(win.out_size, kernel)), kernel, (1,) * nd,
                  (0,) * nd, (0,) * nd, (1,) * nd)


def subpixel_work_use(win: Window, sub: Window) -> float:
    """Share of the phase conv's multiply-adds the strided conv also does."""
    use = 1.0
    for grid, k, s, phase_grid, phase_k in zip(win.out_size, win.kernel, win.stride,
                                               sub.in_size, sub.kernel):
        use *= grid * k / (phase_grid * s * phase_k)
    return use


def plan_conv_transpose(computes: str, batch: int, c_in: int, c_out: int, win: Window,
                        groups: int, dtype, threads: Optional[int] = None,
                        algorithm: Optional[str] = None,
                        operands: Optional[Tuple[np.ndarray, np.ndarray]] = None) -> ConvPlan:
    """The plan of one pass of a transposed convolution, given as the pass
    `computes` of its equivalent conv (arguments as plan_conv's): SUBPIXEL,
    whose `via` is the plan of the same pass of the phase conv
    (subpixel_window, c_in * s**nd input channels), where the decomposition
    applies and pays, else plan_conv's plan.  `algorithm` may also force
    SUBPIXEL (ValueError where it does not apply)."""
    return _planned(_plan_transposed, TRANSPOSED_ALGORITHMS, "plan_conv_transpose", computes,
                    batch, c_in, c_out, win, groups, dtype, threads, algorithm, operands)


TRANSPOSED_ALGORITHMS = {computes: algorithms + (SUBPIXEL,)
                         for computes, algorithms in ALGORITHMS.items()}


# Memoised as _plan is (plan_conv_transpose runs once per transposed pass).
@_callcache.memoize
def _plan_transposed(computes, batch, c_in, c_out, win, groups, dtype, threads, algorithm,
                     winograd_values_ok):
    reason = _subpixel_reason(computes, batch, c_in, c_out, win, groups, dtype, threads,
                              algorithm)
    if reason is None:
        return _plan(computes, batch, c_in, c_out, win, groups, dtype, threads, algorithm,
                     winograd_values_ok)
    via = _plan(computes, batch, c_in * prod(win.stride), c_out, subpixel_window(win), groups,
                dtype, threads, None, winograd_values_ok)
    return ConvPlan(computes, SUBPIXEL, reason, batch, via.chunk, via.workspace, via.threads,
                    via=via)


def _subpixel_reason(computes, batch, c_in, c_out, win, groups, dtype, threads, algorithm):
    """Why the pass runs as the phase conv (a string), or None when it runs
    the strided conv's plan; ValueError when SUBPIXEL is forced where it
    cannot run."""
    if algorithm not in (None, SUBPIXEL):
        return None
    sub = subpixel_window(win)
    direct = _plan(computes, batch, c_in, c_out, win, groups, dtype, threads, None, True)
    if direct.algorithm in (EMPTY_SUM, DEPTHWISE) or sub is None:
        if algorithm == SUBPIXEL:
            raise ValueError(f"plan_conv_transpose: {SUBPIXEL} cannot compute the {computes} "
                             f"of this convolution: it needs a stride > 1, no dilation, "
                             f"products to sum and not depthwise, got stride={win.stride}, "
                             f"dilation={win.dilation}, {direct.algorithm}")
        return None
    use = subpixel_work_use(win, sub)
    if use >= SUBPIXEL_MIN_WORK_USE:
        return (f"stride {win.stride}: {prod(win.stride)} output phases as one stride-1 conv "
                f"with {sub.kernel} kernels, {use:.0%} >= {SUBPIXEL_MIN_WORK_USE:.0%} of its "
                f"multiply-adds useful")
    return "forced by the caller" if algorithm == SUBPIXEL else None


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


@dataclass(frozen=True)
class PoolPlan:
    """How an adaptive average pooling forward runs (fastconv.explain).

    algorithm: GLOBAL_MEAN or ADAPTIVE_BINS.
    reason: why, in words.
    prefetch: global pooling prefetches its input (GLOBAL_MEAN only).
    """
    algorithm: str
    reason: str
    prefetch: bool = False

    def __str__(self):
        return (f"output: {self.algorithm} ({self.reason})"
                + (", prefetching its input" if self.prefetch else ""))


def adaptive_avg_pool_plan(out_size: Tuple[int, ...], input_bytes: int) -> PoolPlan:
    """The plan `plan_adaptive_avg_pool` and `global_mean_prefetch` make for
    one call, with the reason (what fastconv.explain returns)."""
    if plan_adaptive_avg_pool(out_size) == ADAPTIVE_BINS:
        return PoolPlan(ADAPTIVE_BINS, f"output size {out_size}: bins smaller than the "
                                       f"planes, each with its own bounds")
    prefetch = global_mean_prefetch(input_bytes)
    return PoolPlan(GLOBAL_MEAN, f"output size 1: one bin per plane, planes summed several "
                                 f"at once; {input_bytes} input bytes "
                                 f"{'>=' if prefetch else '<'} "
                                 f"{GLOBAL_MEAN_PREFETCH_MIN_BYTES} (prefetch from)", prefetch)


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
    return b.strides[0] == item and a.strides[1] == item and small_gemm_dot_form(k, n)


def small_gemm_dot_form(k: int, n: int) -> bool:
    """Whether fc_gemm_small reads B (k, n) by columns (its dot form, each
    a dot product along k) where they lie rather than having it copied to
    rows: k long enough against n."""
    return k >= SMALL_GEMM_DOT_MIN_K_PER_N * n
