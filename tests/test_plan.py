"""The convolution plan (functional/_plan.py): every branch of plan_conv, its
thresholds at their boundaries, forcing an algorithm, and fastconv.explain.

These assert which algorithm a call runs; test_conv.py, test_winograd.py and
friends check that each algorithm computes the right numbers."""
import numpy as np
import pytest

import fastconv
from fastconv.functional import _plan
from optable import OPS
from fastconv.functional._geometry import Window
from fastconv.functional._plan import (DEPTHWISE, DIRECT_GROUPED, EMPTY_SUM, FLIPPED_CONV,
                                       GEMM_COL2IM, GEMM_PER_IMAGE, GEMM_SIDE_BY_SIDE, GRAD_INPUT,
                                       GRAD_WEIGHT, OUTPUT, WEIGHT_GRAD_GEMM,
                                       WINOGRAD_F2X2_3X3)

needs_winograd_on = pytest.mark.skipif(not _plan.WINOGRAD,
                                       reason="FASTCONV_WINOGRAD turns Winograd off")


def window(size, kernel, stride=None, pad=0, dilation=None):
    nd = len(size)
    return Window(tuple(size), tuple(kernel), stride or (1,) * nd, (pad,) * nd, (pad,) * nd,
                  dilation or (1,) * nd)


def plan(computes, batch, c_in, c_out, win, groups=1, dtype=np.float32, threads=1, **kw):
    return _plan.plan_conv(computes, batch, c_in, c_out, win, groups, dtype, threads, **kw)


# ------------------------------------------------------------------ output

@pytest.mark.parametrize("batch, c_in, c_out", [(0, 4, 4), (2, 0, 4), (2, 4, 0)])
def test_output_of_an_empty_sum(batch, c_in, c_out):
    p = plan(OUTPUT, batch, c_in, c_out, window((5, 5), (3, 3)))
    assert (p.algorithm, p.workspace) == (EMPTY_SUM, 0)


def test_output_depthwise_when_one_input_channel_per_group():
    assert plan(OUTPUT, 2, 8, 16, window((9, 9), (3, 3)), groups=8).algorithm == DEPTHWISE
    # groups == 1 with one channel is an ordinary (if thin) conv
    assert plan(OUTPUT, 2, 1, 16, window((9, 9), (5, 5))).algorithm != DEPTHWISE


@pytest.mark.parametrize("computes", [OUTPUT, GRAD_INPUT, GRAD_WEIGHT])
def test_direct_grouped_for_few_channels_per_group(computes):
    """Up to DIRECT_GROUPED_MAX_CHANNELS input and
    DIRECT_GROUPED_MAX_OUT_CHANNELS output channels per group (more than
    one input channel, and more than one group) run the direct loops."""
    most_in, most_out = _plan.DIRECT_GROUPED_MAX_CHANNELS, _plan.DIRECT_GROUPED_MAX_OUT_CHANNELS
    width = _plan.DIRECT_GROUPED_MIN_WIDTH
    win = window((5, width), (3, 3), pad=1)
    p = plan(computes, 2, 4 * most_in, 4 * most_out, win, groups=4)
    assert p.algorithm == DIRECT_GROUPED
    assert f"{most_in} <= {most_in} input" in p.reason and p.workspace > 0
    assert plan(computes, 2, 8, 6, win, groups=4).algorithm == DIRECT_GROUPED    # 2 in, 3 out
    for c_in, c_out, groups in [(4 * (most_in + 1), 4 * most_out, 4),   # too many inputs
                                (4 * most_in, 4 * (most_out + 1), 4),   # too many outputs
                                (most_in + 1, most_out, 1),             # not grouped
                                (4, 8, 4)]:                             # depthwise
        assert plan(computes, 2, c_in, c_out, win, groups=groups).algorithm != DIRECT_GROUPED
    narrow = window((5, width - 1), (3, 3), pad=1)                      # rows too narrow
    assert plan(computes, 2, 8, 8, narrow, groups=4).algorithm != DIRECT_GROUPED


@pytest.mark.parametrize("computes", [OUTPUT, GRAD_INPUT, GRAD_WEIGHT])
def test_direct_loops_for_ungrouped_stems(computes):
    """An ungrouped conv of 2..DIRECT_GROUPED_MAX_CHANNELS input channels
    into at most DIRECT_DENSE_MAX_OUT_CHANNELS (a 3-channel stem) runs its
    forward and weight gradient in the direct loops, on rows a vector wide;
    its data gradient stays GEMM + col2im."""
    most_in, most_out = _plan.DIRECT_GROUPED_MAX_CHANNELS, _plan.DIRECT_DENSE_MAX_OUT_CHANNELS
    width = _plan.DIRECT_GROUPED_MIN_WIDTH
    win = window((5, width), (3, 3), pad=1)
    direct = computes != GRAD_INPUT
    for c_in, c_out in [(2, 1), (3, 16), (most_in, most_out)]:
        p = plan(computes, 2, c_in, c_out, win)
        assert (p.algorithm == DIRECT_GROUPED) == direct, (c_in, c_out, p)
        if direct:
            assert f"ungrouped, {c_in} <= {most_in} input" in p.reason and p.workspace > 0
    for c_in, c_out, w in [(1, 16, win),                                   # one input channel
                           (most_in + 1, 16, win),                         # too many inputs
                           (3, most_out + 1, win),                         # too many outputs
                           (3, 16, window((5, width - 1), (3, 3), pad=1))]:  # rows too narrow
        assert plan(computes, 2, c_in, c_out, w).algorithm != DIRECT_GROUPED, (c_in, c_out)


@needs_winograd_on
def test_output_winograd_for_3x3_stride_1_with_channels():
    p = plan(OUTPUT, 2, 16, 8, window((8, 8), (3, 3), pad=1))
    assert p.algorithm == WINOGRAD_F2X2_3X3
    assert "16 >= 16" in p.reason
    assert plan(OUTPUT, 2, 15, 8, window((8, 8), (3, 3), pad=1)).algorithm != WINOGRAD_F2X2_3X3
    # per group: 32 channels in 2 groups are 16 per group
    assert plan(OUTPUT, 2, 32, 8, window((8, 8), (3, 3), pad=1), groups=2).algorithm == \
        WINOGRAD_F2X2_3X3
    assert plan(OUTPUT, 2, 30, 8, window((8, 8), (3, 3), pad=1), groups=2).algorithm != \
        WINOGRAD_F2X2_3X3


@pytest.mark.parametrize("size, algorithm", [
    ((20, 20), GEMM_PER_IMAGE),        # 400 output positions
    ((20, 21), GEMM_PER_IMAGE),
    ((19, 21), GEMM_SIDE_BY_SIDE),     # 399
    ((8, 8), GEMM_SIDE_BY_SIDE),
    ((400,), GEMM_PER_IMAGE),          # 1-D: the rule counts positions, not rows
    ((399,), GEMM_SIDE_BY_SIDE),
])
def test_output_per_image_from_400_positions(size, algorithm):
    nd = len(size)
    # a 2-wide kernel padded before only: the output grid is the input's
    win = Window(size, (2,) * nd, (1,) * nd, (1,) * nd, (0,) * nd, (1,) * nd)
    assert win.out_size == size
    # 9 input channels: past the stems' direct loops (DIRECT_GROUPED_MAX_CHANNELS)
    assert plan(OUTPUT, 3, 9, 8, win).algorithm == algorithm


def test_output_of_one_small_image_is_written_in_place():
    # side by side, a batch of one would only add the copy into place
    p = plan(OUTPUT, 1, 8, 8, window((8, 8), (3, 3), pad=1))
    assert (p.algorithm, p.reason) == (GEMM_PER_IMAGE, "one image: no others to put side "
                                                        "by side, written in place")
    assert plan(OUTPUT, 2, 8, 8, window((8, 8), (3, 3), pad=1)).algorithm == GEMM_SIDE_BY_SIDE


def test_output_pointwise_reads_images_in_place_whatever_their_size():
    p = plan(OUTPUT, 3, 8, 4, window((5, 5), (1, 1)))
    assert (p.algorithm, p.pointwise) == (GEMM_PER_IMAGE, True)
    # padding, a stride or a dilation make columns differ from the image
    for win in (window((5, 5), (1, 1), pad=1), window((5, 5), (1, 1), stride=(2, 2))):
        p = plan(OUTPUT, 3, 8, 4, win)
        assert (p.algorithm, p.pointwise) == (GEMM_SIDE_BY_SIDE, False)
    p = plan(OUTPUT, 3, 8, 4, window((30, 30), (1, 1), stride=(1, 2)))
    assert (p.algorithm, p.pointwise) == (GEMM_PER_IMAGE, False)


def test_side_by_side_chunks_keep_scratch_bounded():
    small = plan(OUTPUT, 5, 3, 8, window((8, 8), (3, 3)))
    assert (small.algorithm, small.chunk, small.batch) == (GEMM_SIDE_BY_SIDE, 5, 5)
    huge = plan(OUTPUT, 100000, 64, 64, window((12, 12), (3, 3), pad=1, stride=(2, 2)))
    assert huge.algorithm == GEMM_SIDE_BY_SIDE
    assert 1 <= huge.chunk < 100000
    assert huge.workspace * 4 <= 2 * _plan.CHUNK_SCRATCH_BYTES
    # the chunk size: budget // bytes per image, within [1, batch]
    assert _plan.batch_chunk(7, 100, budget=250) == 2
    assert _plan.batch_chunk(7, 1000, budget=250) == 1
    assert _plan.batch_chunk(7, 1, budget=250) == 7


@pytest.mark.parametrize("batch, threads, over_images", [
    (4, 2, True), (2, 2, True), (1, 2, False), (4, 1, False), (3, 4, False)])
def test_threads_take_whole_images_when_there_are_enough(batch, threads, over_images):
    win = window((24, 24), (3, 3))
    p = plan(OUTPUT, batch, 9, 8, win, threads=threads)   # 9 channels: a GEMM
    assert (p.algorithm, p.threads, p.threads_over_images) == (GEMM_PER_IMAGE, threads,
                                                                over_images)
    p = plan(GRAD_INPUT, batch, 3, 8, window((24, 24), (3, 3), stride=(2, 2)), threads=threads)
    assert (p.algorithm, p.threads_over_images) == (GEMM_COL2IM, over_images)


def test_streaming_stores_from_4_mib_of_output():
    win = window((32, 32), (1, 1))                  # 1024 positions, pointwise
    per_image_bytes = 256 * 1024 * 4                 # 256 channels of f32: 1 MiB
    assert _plan.STREAM_MIN_BYTES == 4 * per_image_bytes
    assert plan(OUTPUT, 4, 8, 256, win).stream_stores
    assert not plan(OUTPUT, 3, 8, 256, win).stream_stores
    assert plan(OUTPUT, 2, 8, 256, win, dtype=np.float64).stream_stores
    # side by side the same: its GEMM writes the output in place too
    side_by_side = plan(OUTPUT, 4096, 8, 256, window((8, 8), (3, 3)))
    assert (side_by_side.algorithm, side_by_side.stream_stores) == (GEMM_SIDE_BY_SIDE, True)
    assert not plan(OUTPUT, 64, 8, 256, window((8, 8), (3, 3))).stream_stores


# -------------------------------------------------------------- grad_input

@pytest.mark.parametrize("batch, c_in, c_out", [(0, 4, 4), (2, 0, 4), (2, 4, 0)])
def test_grad_input_of_an_empty_sum(batch, c_in, c_out):
    assert plan(GRAD_INPUT, batch, c_in, c_out, window((5, 5), (3, 3))).algorithm == EMPTY_SUM


def test_grad_input_depthwise():
    assert plan(GRAD_INPUT, 2, 8, 8, window((9, 9), (3, 3)), groups=8).algorithm == DEPTHWISE


def test_grad_input_as_a_flipped_conv_for_stride_1_with_channels():
    win = window((9, 11), (3, 3), pad=1)
    p = plan(GRAD_INPUT, 2, 16, 5, win)
    assert p.algorithm == FLIPPED_CONV
    # the conv it runs: grad_output (5 channels) into the input's 16
    assert p.via.computes == OUTPUT and p.via.batch == 2
    assert p.via.algorithm == GEMM_SIDE_BY_SIDE      # 5 channels: no Winograd
    assert p.workspace == p.via.workspace
    flipped = _plan.data_grad_window(win)
    assert flipped.out_size == win.in_size and flipped.in_size == win.out_size


@pytest.mark.parametrize("c_in, groups, win, algorithm", [
    (15, 1, window((9, 9), (3, 3), pad=1), GEMM_COL2IM),                 # few channels
    (32, 2, window((9, 9), (3, 3), pad=1), FLIPPED_CONV),                # 16 per group
    (30, 2, window((9, 9), (3, 3), pad=1), GEMM_COL2IM),                 # 15 per group
    (16, 1, window((9, 9), (3, 3), stride=(2, 2)), GEMM_COL2IM),          # a stride
    (16, 1, window((9, 9), (3, 3), stride=(1, 2)), GEMM_COL2IM),
    (16, 1, window((9, 9), (2, 2), pad=2), GEMM_COL2IM),                 # pad past kernel
    (16, 1, window((9, 9), (3, 3), pad=2, dilation=(2, 2)), FLIPPED_CONV),
])
def test_grad_input_rule(c_in, groups, win, algorithm):
    assert plan(GRAD_INPUT, 2, c_in, 6, win, groups=groups).algorithm == algorithm


# ------------------------------------------------------------- grad_weight

@pytest.mark.parametrize("batch, c_in, c_out", [(0, 4, 4), (2, 0, 4), (2, 4, 0)])
def test_grad_weight_of_an_empty_sum(batch, c_in, c_out):
    assert plan(GRAD_WEIGHT, batch, c_in, c_out, window((5, 5), (3, 3))).algorithm == EMPTY_SUM


def test_grad_weight_depthwise_winograd_or_fused_gemm():
    assert plan(GRAD_WEIGHT, 2, 8, 8, window((9, 9), (3, 3)), groups=8).algorithm == DEPTHWISE
    assert plan(GRAD_WEIGHT, 2, 8, 8, window((9, 9), (3, 3))).algorithm == WEIGHT_GRAD_GEMM
    assert plan(GRAD_WEIGHT, 2, 16, 8, window((9, 9), (5, 5))).algorithm == WEIGHT_GRAD_GEMM
    if _plan.WINOGRAD:
        assert plan(GRAD_WEIGHT, 2, 16, 8, window((9, 9), (3, 3))).algorithm == \
            WINOGRAD_F2X2_3X3


def test_workspace_is_what_the_kernel_asks_for():
    from fastconv import _kernels
    win = window((9, 9), (5, 5))
    p = plan(GRAD_WEIGHT, 2, 6, 4, win, threads=2)
    assert p.workspace == _kernels.conv_weight_grad_workspace_size("f", 4, 6 * 25, 2)
    p = plan(OUTPUT, 3, 9, 4, window((30, 30), (3, 3)), threads=2, dtype=np.float64)
    assert p.workspace == _kernels.conv_workspace_size(
        "d", window((30, 30), (3, 3)).kernel_geometry(9), 3, 4, True, 2)


# ----------------------------------------------------------------- forcing

def test_forcing_an_algorithm():
    win = window((7, 7), (3, 3), pad=1)
    p = plan(OUTPUT, 2, 3, 4, win, algorithm=WINOGRAD_F2X2_3X3)
    assert (p.algorithm, p.reason) == (WINOGRAD_F2X2_3X3, "forced by the caller")
    assert p.workspace > 0
    assert plan(OUTPUT, 2, 3, 4, win, algorithm=GEMM_PER_IMAGE).algorithm == GEMM_PER_IMAGE
    with pytest.raises(ValueError, match="cannot compute"):
        plan(OUTPUT, 2, 3, 4, window((7, 7), (5, 5)), algorithm=WINOGRAD_F2X2_3X3)
    with pytest.raises(ValueError, match="cannot compute"):
        plan(OUTPUT, 2, 3, 4, win, algorithm=DEPTHWISE)
    with pytest.raises(ValueError, match="cannot compute"):
        plan(GRAD_INPUT, 2, 3, 4, window((7, 7), (3, 3), stride=(2, 2)), algorithm=FLIPPED_CONV)
    with pytest.raises(ValueError, match="cannot compute"):  # a sum with terms
        plan(OUTPUT, 2, 3, 4, win, algorithm=EMPTY_SUM)
    with pytest.raises(ValueError, match="algorithm="):
        plan(OUTPUT, 2, 3, 4, win, algorithm=GEMM_COL2IM)
    with pytest.raises(ValueError, match="computes must be"):
        plan("grad_bias", 2, 3, 4, win)


# ----------------------------------------------------------------- explain

def test_explain_returns_the_plans_of_each_op(rng):
    x = rng.standard_normal((2, 4, 9, 9)).astype(np.float32)
    w = rng.standard_normal((6, 2, 3, 3)).astype(np.float32)
    p = fastconv.explain("conv2d", x, w, None, 1, 1, 1, 2)
    assert isinstance(p, _plan.ConvPlan)
    assert (p.computes, p.batch, p.threads) == (OUTPUT, 2, fastconv.get_num_threads())
    assert p == fastconv.explain("conv2d", input=x, weight=w, padding=1, groups=2)
    gy = np.zeros((2, 6, 9, 9), np.float32)
    grad_input, grad_weight = fastconv.explain("conv2d_backward", gy, x, w, padding=1, groups=2)
    assert (grad_input.computes, grad_weight.computes) == (GRAD_INPUT, GRAD_WEIGHT)
    # a transposed conv runs the passes of the conv it is the adjoint of
    wt = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    p = fastconv.explain("conv_transpose2d", x, wt, stride=2)
    assert (p.computes, p.algorithm) == (GRAD_INPUT, GEMM_COL2IM)
    y = fastconv.conv_transpose2d(x, wt, stride=2)
    grad_input, grad_weight = fastconv.explain("conv_transpose2d_backward", y, x, wt, stride=2)
    assert (grad_input.computes, grad_weight.computes) == (OUTPUT, GRAD_WEIGHT)
    for nd in (1, 3):
        xs = rng.standard_normal((2, 4) + (5,) * nd)
        ws = rng.standard_normal((3, 4) + (3,) * nd)
        assert fastconv.explain(f"conv{nd}d", xs, ws).computes == OUTPUT


@pytest.mark.parametrize("op", [op for op in OPS if op.name.startswith("conv")],
                         ids=lambda op: op.name)
def test_explain_covers_every_convolution_op(op, rng):
    """Every convolution op of the op table: explain returns one plan for a
    forward op, the plans of (grad_input, grad_weight) for a backward op; a
    transposed conv's passes are those of the conv it is the adjoint of."""
    plans = fastconv.explain(op.name, **op.make(rng, np.float64))
    transposed = op.name.startswith("conv_transpose")
    if op.name.endswith("_backward"):
        assert [p.computes for p in plans] == [OUTPUT if transposed else GRAD_INPUT,
                                               GRAD_WEIGHT]
    else:
        assert plans.computes == (GRAD_INPUT if transposed else OUTPUT)


def test_a_plan_prints_as_a_few_readable_lines():
    p = plan(GRAD_INPUT, 2, 16, 5, window((9, 11), (3, 3), pad=1), threads=2)
    text = str(p)
    assert text.startswith("grad_input: flipped_conv (stride 1, 16 >= 16 input channels")
    assert "\n  2 images in chunks of 2, scratch of " in text
    assert "\n  via output: implicit_gemm_side_by_side" in text
    p = plan(OUTPUT, 4, 8, 256, window((32, 32), (1, 1)), threads=2)
    assert str(p).endswith("2 threads, threads take whole images, streaming stores, "
                           "images read in place")


def test_explain_checks_arguments_as_the_op_does():
    x, w = np.zeros((2, 4, 9, 9)), np.zeros((6, 3, 3, 3))
    with pytest.raises(ValueError, match="conv2d: .*C_in"):
        fastconv.explain("conv2d", x, w)
    with pytest.raises(TypeError, match="explain: arguments of conv2d"):
        fastconv.explain("conv2d", x, w, paddding=1)
    with pytest.raises(ValueError, match="op_name must be one of .*conv_transpose3d_backward"):
        fastconv.explain("max_pool2d", x, 2)
    with pytest.raises(ValueError, match="op_name"):
        fastconv.explain("conv4d", x, w)


# ------------------------------------------------ Winograd's value range

@needs_winograd_on
@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan, 1e38])
def test_winograd_only_for_values_its_transforms_keep_finite(bad):
    """The shapes pick Winograd; a value that could overflow its transforms
    (inf, NaN, or a product times the growth bound past float32's max) sends
    every pass to the direct sum, and the plan's reason says why."""
    win = window((8, 8), (3, 3), pad=1)
    x, w, g = np.ones((2, 16, 8, 8), np.float32), np.ones((16, 16, 3, 3), np.float32), \
        np.ones((2, 16, 8, 8), np.float32)
    assert plan(OUTPUT, 2, 16, 16, win, operands=(x, w)).algorithm == WINOGRAD_F2X2_3X3
    assert plan(GRAD_WEIGHT, 2, 16, 16, win, operands=(x, g)).algorithm == WINOGRAD_F2X2_3X3
    assert plan(GRAD_INPUT, 2, 16, 16, win, operands=(g, w)).via.algorithm == \
        WINOGRAD_F2X2_3X3
    x[1, 5, 2, 3] = bad
    p = plan(OUTPUT, 2, 16, 16, win, operands=(x, w))
    assert p.algorithm != WINOGRAD_F2X2_3X3 and "not Winograd" in p.reason
    assert plan(GRAD_WEIGHT, 2, 16, 16, win, operands=(x, g)).algorithm != WINOGRAD_F2X2_3X3
    g[0, 0, 0, 0] = bad
    assert plan(GRAD_INPUT, 2, 16, 16, win, operands=(g, w)).via.algorithm != \
        WINOGRAD_F2X2_3X3


def test_winograd_range_bound():
    """In range exactly while WINOGRAD_GROWTH * terms * max|a| * max|b| and
    4 * max|a|, 4 * max|b| stay within the dtype's max."""
    limit = float(np.finfo(np.float32).max)
    one = np.ones(3, np.float32)
    edge = limit / (_plan.WINOGRAD_GROWTH * 144)
    assert _plan.winograd_in_range((one, one * np.float32(edge * 0.99)), 144, np.float32)
    assert not _plan.winograd_in_range((one, one * np.float32(edge * 1.01)), 144, np.float32)
    tiny = np.full(3, 1e-30, np.float32)
    assert not _plan.winograd_in_range((np.full(3, limit / 3, np.float32), tiny), 1, np.float32)
    assert _plan.winograd_in_range((np.empty(0, np.float32), one), 144, np.float32)
    assert _plan.max_abs(np.array([-3.0, 2.0])) == 3.0


# ------------------------------------------------- adaptive average pooling

@pytest.mark.parametrize("out_size,algorithm", [
    ((1,), _plan.GLOBAL_MEAN), ((1, 1), _plan.GLOBAL_MEAN), ((1, 1, 1), _plan.GLOBAL_MEAN),
    ((1, 2), _plan.ADAPTIVE_BINS), ((2, 1), _plan.ADAPTIVE_BINS), ((3,), _plan.ADAPTIVE_BINS),
    ((1, 1, 2), _plan.ADAPTIVE_BINS)])
def test_adaptive_avg_pool_global_mean_only_for_one_bin_per_plane(out_size, algorithm):
    assert _plan.plan_adaptive_avg_pool(out_size) == algorithm


def test_global_mean_prefetches_from_16_mib():
    edge = _plan.GLOBAL_MEAN_PREFETCH_MIN_BYTES
    assert edge == 16 << 20
    assert not _plan.global_mean_prefetch(edge - 1)
    assert _plan.global_mean_prefetch(edge)


@pytest.mark.parametrize("out_size,kernel", [
    (1, "global_avg_pool"), ((1, 1), "global_avg_pool"), ((2, 1), "adaptive_avg_pool")])
def test_adaptive_avg_pool_runs_the_planned_kernel(monkeypatch, out_size, kernel):
    """The op calls the kernel its plan names (and only that one)."""
    from fastconv import _kernels
    called = []
    for name in ("global_avg_pool", "adaptive_avg_pool"):
        real = getattr(_kernels, name)
        monkeypatch.setattr(_kernels, name,
                            lambda *a, _real=real, _name=name: (called.append(_name), _real(*a)))
    x = np.random.default_rng(0).standard_normal((2, 3, 5, 4))
    np.testing.assert_allclose(fastconv.adaptive_avg_pool2d(x, out_size),
                               fastconv.reference.adaptive_avg_pool2d(x, out_size),
                               rtol=1e-12, atol=1e-12)
    assert called == [kernel]


def test_explain_names_adaptive_average_poolings_kernel(rng):
    """Output size 1 is the mean of whole planes (prefetched only when the
    input is too big to stay in cache); any other size takes the bins."""
    x = rng.standard_normal((2, 3, 7, 7)).astype(np.float32)
    p = fastconv.explain("adaptive_avg_pool2d", x, 1)
    assert isinstance(p, _plan.PoolPlan)
    assert (p.algorithm, p.prefetch) == (_plan.GLOBAL_MEAN, False)
    assert p.algorithm in str(p)
    assert fastconv.explain("adaptive_avg_pool2d", x, (3, 2)).algorithm == _plan.ADAPTIVE_BINS
    assert fastconv.explain("adaptive_avg_pool1d", x[0], 1).algorithm == _plan.GLOBAL_MEAN
    big = np.broadcast_to(np.float32(1), (1, 1, _plan.GLOBAL_MEAN_PREFETCH_MIN_BYTES // 4))
    assert fastconv.explain("adaptive_avg_pool1d", big, 1).prefetch
    with pytest.raises(ValueError, match="output_size"):
        fastconv.explain("adaptive_avg_pool2d", x, 0)
