"""Winograd F(2x2, 3x3) convolution (3x3, stride 1), forward and weight
gradient: on every SIMD path, 1 and 2 threads, awkward shapes, against the
NumPy reference; its accuracy against the direct sum's; and the plan rule
that picks it."""
import os

import numpy as np
import pytest

import fastconv
from fastconv import _kernels, _threads
from fastconv import reference
from fastconv.functional import _conv, _plan
from fastconv.functional._geometry import Window

needs_winograd_on = pytest.mark.skipif(not _plan.WINOGRAD,
                                       reason="FASTCONV_WINOGRAD turns Winograd off")


def _window(x_shape, padding):
    (ph0, ph1), (pw0, pw1) = padding
    return Window(tuple(x_shape[2:]), (3, 3), (1, 1), (ph0, pw0), (ph1, pw1), (1, 1))


def forced_output(algorithm, x, w, b, win, groups=1):
    """The conv output computed by `algorithm`, whatever the plan rules would
    choose, into a NaN-filled array (so an output left unwritten shows)."""
    plan = _plan.plan_conv(_plan.OUTPUT, x.shape[0], x.shape[1], w.shape[0], win, groups,
                           x.dtype, algorithm=algorithm)
    assert plan.algorithm == algorithm
    run = {_plan.WINOGRAD_F2X2_3X3: _conv._output_winograd,
           _plan.GEMM_PER_IMAGE: _conv._output_per_image}[algorithm]
    out = np.full((x.shape[0], w.shape[0], win.out_count), np.nan, x.dtype)
    layout = _conv._output_layout(x.shape[0], x.shape[1], w.shape[0], win, groups)
    run(plan, "test", x, w, b, layout, out)
    return out.reshape((x.shape[0], w.shape[0]) + win.out_size)


def winograd(x, w, b=None, padding=((1, 1), (1, 1)), groups=1):
    """The Winograd kernel itself, whatever the plan rules would choose."""
    return forced_output(_plan.WINOGRAD_F2X2_3X3, x, w, b, _window(x.shape, padding), groups)


def expected(x, w, b, padding, groups):
    (ph0, ph1), (pw0, pw1) = padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph0, ph1), (pw0, pw1)))
    return reference.conv2d(xp, w, b, 1, 0, 1, groups)


# (x shape, C_out, padding ((top, bottom), (left, right)), groups): odd and
# even output sizes (tiles with one column or row cut), padding 0 to 3 and
# asymmetric, outputs 1 wide and 1 tall, tile blocks spanning images, more
# tile rows than one pass of a block holds (600 x 2 outputs), C_in past one
# KC step (300), C_out off MR and past one slab of products, groups.
CASES = [
    ((2, 16, 8, 8), 16, ((1, 1), (1, 1)), 1),
    ((3, 5, 7, 9), 11, ((1, 1), (1, 1)), 1),
    ((2, 17, 6, 5), 9, ((0, 0), (0, 0)), 1),            # 4 x 3 outputs
    ((1, 3, 1, 1), 2, ((1, 1), (1, 1)), 1),             # 1 x 1 output
    ((2, 4, 3, 12), 5, ((0, 0), (2, 3)), 1),            # 1 tall, asymmetric
    ((1, 6, 2, 2), 3, ((3, 3), (3, 3)), 1),             # all-padding tiles
    ((2, 16, 600, 1), 4, ((1, 1), (1, 1)), 1),          # 600 x 1: many tile rows
    ((1, 300, 5, 6), 10, ((1, 1), (1, 1)), 1),          # K = 300 > KC
    ((2, 20, 9, 10), 130, ((1, 1), (1, 1)), 1),         # C_out past one slab
    ((40, 16, 7, 7), 16, ((1, 1), (1, 1)), 1),          # blocks across 40 images
    ((2, 12, 9, 8), 8, ((1, 0), (0, 1)), 2),
    ((2, 48, 10, 10), 48, ((1, 1), (1, 1)), 3),
    # Batch 1, few tiles: threads split the output channels (forward) or the
    # 16 products (weight gradient).  49 tiles at 256 channels are one past
    # AVX-512's 48 a block (the last block takes the remainder).
    ((1, 256, 14, 14), 100, ((1, 1), (1, 1)), 1),   # enough work for 2 threads
    ((1, 19, 13, 13), 21, ((1, 1), (1, 1)), 1),
    ((1, 33, 7, 7), 70, ((1, 1), (1, 1)), 1),
    ((1, 17, 1, 1), 9, ((1, 1), (1, 1)), 1),
    # An odd number of blocks at 2 threads: 3 are cut again into an even
    # number of equal blocks (AVX-512 float32: 320 tiles, 3 blocks of 96 -> 4
    # of 80, weight gradient 3 of 128 -> 2 of 160), 11 are kept (2048 tiles,
    # 11 blocks of 192: one thread's block more is under 1/8 of its share).
    ((20, 64, 8, 8), 64, ((1, 1), (1, 1)), 1),
    ((32, 32, 16, 16), 32, ((1, 1), (1, 1)), 1),
    # Tile rows shorter than a vector: the input transform packs several a
    # vector (1 to 4 on AVX-512 float32, fewer on narrower tables), split
    # FC_WINO_SPLIT_RUNS (16) tile rows at a time; the output transform takes
    # a row in one vector step.
    ((3, 5, 8, 8), 7, ((1, 1), (1, 1)), 1),             # 4 tiles a row, 12 rows
    ((5, 4, 10, 5), 6, ((1, 1), (1, 1)), 1),            # 3 a row (odd width), 25 rows
    ((2, 3, 6, 29), 4, ((1, 1), (1, 1)), 1),            # 15 a row, odd width
    ((2, 3, 7, 16), 5, ((0, 0), (1, 1)), 1),            # 8 a row, no rows padded
    ((1, 2, 40, 10), 3, ((1, 1), (0, 0)), 1),           # 4 a row, 20 rows in one image
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("xs, c_out, padding, groups", CASES)
def test_winograd_matches_reference(simd_path, threads, xs, c_out, padding, groups, dtype):
    rng = np.random.default_rng(sum(xs) + c_out)
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal((c_out, xs[1] // groups, 3, 3)).astype(dtype)
    b = rng.standard_normal(c_out).astype(dtype)
    x_before = x.copy()
    want = expected(x, w, b, padding, groups)
    got = winograd(x, w, b, padding, groups)
    # Sums of C_in*9 products of unit normals: scale the tolerance with them.
    tol = (3e-5 if dtype == np.float32 else 1e-12) * np.sqrt(xs[1] // groups * 9)
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    np.testing.assert_array_equal(x, x_before)
    np.testing.assert_allclose(winograd(x, w, None, padding, groups), want - b[:, None, None],
                               rtol=tol, atol=tol)


def winograd_weight_grad(x, gout, padding, groups):
    """The Winograd weight-gradient kernel itself (grad_w += ...), group by
    group as _conv.conv_grad_weight calls it."""
    n, c_in = x.shape[:2]
    c_out, l = gout.shape[1], gout[0, 0].size
    cig, cog = c_in // groups, c_out // groups
    win = _window(x.shape, padding)
    geom = win.kernel_geometry(cig)
    nthreads = _threads.get_num_threads()
    size = _kernels.conv_winograd_weight_grad_workspace_size(x.dtype.char, geom, cog, nthreads)
    ws = np.full(size, np.nan, x.dtype)
    grad_w = np.full((groups, cog, cig * 9), 0.5, x.dtype)   # accumulated into
    plane = x[0, 0].size
    for g in range(groups):
        _kernels.conv_weight_grad(x.reshape(-1), g * cig * plane, c_in * plane,
                                  gout.reshape(-1), g * cog * l, c_out * l, n, geom,
                                  grad_w[g], ws, nthreads, True)
    return grad_w.reshape(c_out, cig, 3, 3) - x.dtype.type(0.5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("xs, c_out, padding, groups", CASES)
def test_winograd_weight_grad_matches_reference(simd_path, threads, xs, c_out, padding,
                                                groups, dtype):
    rng = np.random.default_rng(sum(xs) * c_out)
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal((c_out, xs[1] // groups, 3, 3)).astype(dtype)
    (ph0, ph1), (pw0, pw1) = padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph0, ph1), (pw0, pw1)))
    gout = rng.standard_normal((xs[0], c_out) + tuple(
        n - 2 for n in xp.shape[2:])).astype(dtype)
    want = reference.conv2d_backward(gout, xp, w, 1, 0, 1, groups)[1]
    x_before, g_before = x.copy(), gout.copy()
    got = winograd_weight_grad(x, gout, padding, groups)
    # Sums over every output position of the batch.
    tol = (3e-5 if dtype == np.float32 else 1e-12) * np.sqrt(gout[:, 0].size) * 4
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    np.testing.assert_array_equal(x, x_before)
    np.testing.assert_array_equal(gout, g_before)


def test_winograd_error_is_close_to_the_direct_sums():
    """Float32 rounding error against a float64 oracle: F(2x2, 3x3)'s
    transforms (coefficients 0, +-1, +-1/2) keep it within a small factor of
    the direct sum's."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((4, 64, 20, 20))
    w = rng.standard_normal((32, 64, 3, 3))
    exact = reference.conv2d(x, w, None, 1, 1)
    x32, w32 = x.astype(np.float32), w.astype(np.float32)
    win = winograd(x32, w32)
    direct = forced_output(_plan.GEMM_PER_IMAGE, x32, w32, None,
                           _window(x.shape, ((1, 1), (1, 1))))
    err_win = np.sqrt(np.mean((win - exact) ** 2))
    err_direct = np.sqrt(np.mean((direct - exact) ** 2))
    assert err_direct > 0
    assert err_win < 4 * err_direct, (err_win, err_direct)


@needs_winograd_on
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_public_conv2d_takes_winograd_and_matches(dtype):
    """mid-like shapes go through Winograd (forward, data gradient as a
    flipped conv, weight gradient) and agree with the reference."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 16, 13, 12)).astype(dtype)
    w = rng.standard_normal((20, 16, 3, 3)).astype(dtype)
    b = rng.standard_normal(20).astype(dtype)
    assert fastconv.explain("conv2d", x, w, b, padding=1).algorithm == "winograd"
    tol = dict(rtol=2e-4, atol=2e-4) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-10)
    y = fastconv.conv2d(x, w, b, padding=1)
    np.testing.assert_allclose(y, reference.conv2d(x, w, b, 1, 1), **tol)
    g = rng.standard_normal(y.shape).astype(dtype)
    data_plan, weight_plan = fastconv.explain("conv2d_backward", g, x, w, padding=1)
    assert (data_plan.algorithm, data_plan.via.algorithm) == ("flipped_conv", "winograd")
    assert weight_plan.algorithm == "winograd"
    gx, gw, gb = fastconv.conv2d_backward(g, x, w, padding=1)
    rx, rw, rb = reference.conv2d_backward(g, x, w, 1, 1)
    np.testing.assert_allclose(gx, rx, **tol)
    np.testing.assert_allclose(gw, rw, **tol)


@needs_winograd_on
@pytest.mark.parametrize("kernel, stride, dilation, c_in, out, applies", [
    ((3, 3), (1, 1), (1, 1), 64, (56, 56), True),
    ((3, 3), (1, 1), (1, 1), 16, (7, 7), True),      # 77% of tile outputs real
    ((3, 3), (1, 1), (1, 1), 15, (56, 56), False),   # too few input channels
    ((3, 3), (1, 1), (1, 1), 64, (3, 3), False),     # 56%: mostly padding tiles
    ((3, 3), (2, 2), (1, 1), 64, (28, 28), False),
    ((3, 3), (1, 1), (2, 2), 64, (52, 52), False),
    ((5, 5), (1, 1), (1, 1), 64, (52, 52), False),
])
def test_winograd_plan_rule(kernel, stride, dilation, c_in, out, applies):
    """Winograd computes the output and the weight gradient exactly where
    the rule says it pays."""
    win = Window((60, 60), kernel, stride, (0, 0), (0, 0), dilation, explicit_out=out)
    for computes in (_plan.OUTPUT, _plan.GRAD_WEIGHT):
        plan = _plan.plan_conv(computes, 2, c_in, 8, win, 1, np.float32, threads=1)
        assert (plan.algorithm == _plan.WINOGRAD_F2X2_3X3) is applies, (computes, plan)


def test_winograd_kernel_rejects_other_geometries():
    geom = _kernels.Geometry(4, (1, 8, 8), (1, 6, 6), (1, 3, 3), (1, 2, 1), (0, 0, 0), (1, 1, 1))
    x, w, y = np.zeros(256, np.float32), np.zeros(144, np.float32), np.zeros(36, np.float32)
    with pytest.raises(ValueError, match="3x3 kernel, stride 1"):
        _kernels.conv_winograd(x, 1, geom, 1, w, np.empty(0, np.float32), 1, y,
                               np.zeros(1 << 16, np.float32), 1)


def test_winograd_switch_is_read_from_the_environment():
    """FASTCONV_WINOGRAD=0 sends 3x3 stride-1 convs back to the direct sum
    (the plan says so), which then agrees with the reference as tightly as
    any implicit-GEMM conv."""
    import subprocess
    import sys
    code = """if True:
        import numpy as np, fastconv
        from fastconv.functional import _plan
        rng = np.random.default_rng(5)
        x = rng.standard_normal((2, 16, 13, 12)).astype(np.float32)
        w = rng.standard_normal((20, 16, 3, 3)).astype(np.float32)
        y = fastconv.conv2d(x, w, None, padding=1)
        want = fastconv.reference.conv2d(x, w, None, 1, 1)
        np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-4)
        print(_plan.WINOGRAD, fastconv.explain("conv2d", x, w, padding=1).algorithm)
    """
    for value, expected in (("0", "False implicit_gemm_side_by_side"),
                            ("off", "False implicit_gemm_side_by_side"),
                            ("1", "True winograd")):
        env = dict(os.environ, FASTCONV_WINOGRAD=value)
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, check=True).stdout.strip()
        assert out == expected, (value, out)


# ------------------------------------------------ values beyond Winograd's range

def _inf_case():
    """One inf among ones: the direct sum gives inf at the 9 outputs that see
    it (in all 16 output channels); Winograd's transforms would also
    subtract inf from inf and give NaN next to them."""
    x = np.ones((1, 16, 8, 8), np.float32)
    x[0, 3, 4, 4] = np.inf
    return x, np.ones((16, 16, 3, 3), np.float32)


def _huge_case():
    """Finite values whose Winograd transforms overflow (4 * 2e38 > float32's
    max) although every product and sum of the direct sum is finite."""
    return np.full((1, 16, 8, 8), 2e38, np.float32), np.full((16, 16, 3, 3), 1e-4, np.float32)


@needs_winograd_on
@pytest.mark.parametrize("case", [_inf_case, _huge_case])
def test_values_beyond_winograds_range_give_the_direct_sums_result_in_every_pass(case):
    torch = pytest.importorskip("torch")
    x, w = case()
    gy = np.ones((1, 16, 8, 8), np.float32)
    assert fastconv.explain("conv2d", np.ones_like(x), w, padding=1).algorithm \
        == _plan.WINOGRAD_F2X2_3X3   # the same shapes with tame values do run Winograd
    tx = torch.from_numpy(x).requires_grad_()
    tw = torch.from_numpy(w).requires_grad_()
    ty = torch.nn.functional.conv2d(tx, tw, padding=1)
    ty.backward(torch.from_numpy(gy))
    y = fastconv.conv2d(x, w, padding=1)
    gx, gw, _ = fastconv.conv2d_backward(gy, x, w, padding=1)
    for got, want in ((y, ty), (gx, tx.grad), (gw, tw.grad)):
        want = want.detach().numpy()
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
        finite = np.isfinite(want)
        np.testing.assert_allclose(got[finite], want[finite], rtol=1e-5)
    assert not np.isnan(y).any()


@needs_winograd_on
def test_huge_values_in_grad_output_keep_the_weight_gradient_finite():
    """The weight gradient's operands are input and grad_output: a huge
    grad_output must send it (and the data gradient) to the direct sum."""
    rng = np.random.default_rng(0)
    x = rng.random((2, 16, 8, 8)) * 1e-10
    w = rng.random((16, 16, 3, 3)) * 1e-10
    gy = np.full((2, 16, 8, 8), 1e308)    # its transforms overflow, the products do not
    with np.errstate(over="ignore"):   # grad_bias, the sum of grad_output, is inf
        gx, gw, _ = fastconv.conv2d_backward(gy, x, w, padding=1)
        ref_gx, ref_gw, _ = reference.conv2d_backward(gy, x, w, padding=1)
    assert np.isfinite(gx).all() and np.isfinite(gw).all()
    np.testing.assert_allclose(gx, ref_gx, rtol=1e-10)
    np.testing.assert_allclose(gw, ref_gw, rtol=1e-10)


@needs_winograd_on
def test_conv_transpose_with_inf_matches_the_direct_sum():
    """A stride-1 transposed conv runs the flipped conv, Winograd included."""
    x, w = _inf_case()
    y = fastconv.conv_transpose2d(x, w, padding=1)
    want = reference.conv_transpose2d(x.astype(np.float64), w.astype(np.float64), padding=1)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(y), np.isinf(want))


@pytest.mark.parametrize("value", ["disable", "2", "none"])
def test_an_unknown_winograd_switch_value_is_refused_at_import(value):
    """A typo (FASTCONV_WINOGRAD=disable) must not silently leave Winograd
    on: the import fails naming the variable and the accepted values, as
    FASTCONV_SIMD's unknown values do."""
    import subprocess
    import sys
    env = dict(os.environ, FASTCONV_WINOGRAD=value)
    run = subprocess.run([sys.executable, "-c", "import fastconv"], env=env,
                         capture_output=True, text=True)
    assert run.returncode != 0
    assert f"FASTCONV_WINOGRAD={value!r}" in run.stderr and "'off'" in run.stderr


@pytest.mark.parametrize("value, on", [("", True), (" ON ", True), ("yes", True),
                                       ("False", False), ("no", False)])
def test_winograd_switch_values(value, on, monkeypatch):
    monkeypatch.setenv("FASTCONV_WINOGRAD", value)
    assert _plan._env_switch("FASTCONV_WINOGRAD") is on
