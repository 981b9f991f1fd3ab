"""fastconv's GEMMs (the packed one and the small unpacked one) on every SIMD
path this CPU supports, on awkward shapes and layouts; which one a product
gets."""
import os
import subprocess
import sys

import numpy as np
import pytest

import fastconv
from fastconv import _kernels, _simd
from fastconv.functional import _plan
from fastconv.functional._conv import gemm

# Sizes around the micro-tiles (MR 4/6/8 rows, NR 8..48 columns) and the
# KC=256 / MC=96 blocks, plus degenerate ones.
SHAPES = [(1, 1, 1), (7, 13, 5), (8, 48, 256), (9, 49, 257), (6, 16, 3), (97, 50, 300),
          (5, 1000, 2), (200, 3, 600), (13, 97, 0), (0, 5, 3), (4, 0, 3), (64, 6200, 20)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m, n, k", SHAPES)
def test_gemm_matches_numpy(simd_path, gemm_kernel, m, n, k, dtype):
    rng = np.random.default_rng(m * 1000 + n + k)
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    want = a.astype(np.float64) @ b.astype(np.float64)
    tol = 1e-4 if dtype == np.float32 else 1e-11
    c = np.full((m, n), np.nan, dtype)
    gemm(a, b, c)
    np.testing.assert_allclose(c, want, rtol=tol, atol=tol * max(1, k))
    # Transposed and strided operands, accumulating into rows of a wider array.
    at = np.asfortranarray(a)
    bt = np.ascontiguousarray(b.T).T
    big = np.ones((m, n + 3), dtype)
    c2 = big[:, 1:n + 1]
    gemm(at, bt, c2, accumulate=True)
    np.testing.assert_allclose(c2, want + 1, rtol=tol, atol=tol * max(1, k))
    assert np.all(big[:, 0] == 1) and np.all(big[:, n + 1:] == 1)  # neighbours untouched


def test_gemm_refuses_output_with_column_stride(gemm_kernel):
    c = np.zeros((3, 8))[:, ::2]
    with pytest.raises(ValueError, match="unit column stride"):
        gemm(np.ones((3, 2)), np.ones((2, 4)), c)
    with pytest.raises(ValueError, match="do not match"):
        gemm(np.ones((3, 2)), np.ones((3, 4)), np.zeros((3, 4)))


# Odd sizes around the small kernel's tiles: vectors of 2..16 lanes and their
# partial last one, the 4 x 3 dot tile, GEMV (m or n 1) and k 1.
SMALL_SIZES = [1, 3, 17, 33]


def _layouts(a, b):
    """(a, b) as the small kernel's layouts: B's rows contiguous; B's columns
    and A's rows (x @ w.T); neither (its plain loop); strided rows of wider
    arrays."""
    bt = np.ascontiguousarray(b.T).T
    wide_a = np.zeros((a.shape[0], a.shape[1] + 5), a.dtype)[:, 2:a.shape[1] + 2]
    wide_a[...] = a
    return [(a, b), (a, bt), (np.asfortranarray(a), b), (np.asfortranarray(a), bt),
            (wide_a, b[::1]), (a[::1, ::1], np.repeat(b, 2, axis=1)[:, ::2])]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m", SMALL_SIZES)
@pytest.mark.parametrize("n", SMALL_SIZES + [10])
def test_small_gemm_kernel_matches_numpy(simd_path, m, n, dtype):
    """The kernel itself (no plan, no copies) on every layout, for each k."""
    tol = 1e-4 if dtype == np.float32 else 1e-11
    for k in SMALL_SIZES + [0, 256]:
        rng = np.random.default_rng(m * 10000 + n * 100 + k)
        a = rng.standard_normal((m, k)).astype(dtype)
        b = rng.standard_normal((k, n)).astype(dtype)
        want = a.astype(np.float64) @ b.astype(np.float64)
        for aa, bb in _layouts(a, b):
            c = np.full((m, n), np.nan, dtype)
            _kernels.gemm_small(aa, bb, c, False)
            np.testing.assert_allclose(c, want, rtol=tol, atol=tol * max(1, k))
            big = np.ones((m, n + 3), dtype)
            _kernels.gemm_small(aa, bb, big[:, 1:n + 1], True)
            np.testing.assert_allclose(big[:, 1:n + 1], want + 1, rtol=tol,
                                       atol=tol * max(1, k))
            assert np.all(big[:, 0] == 1) and np.all(big[:, n + 1:] == 1)


def test_plan_gemm_sends_small_products_to_the_small_kernel():
    assert _plan.plan_gemm(64, 10, 256) == _plan.GEMM_SMALL      # a classifier head
    assert _plan.plan_gemm(10, 256, 64) == _plan.GEMM_SMALL      # its weight gradient
    assert _plan.plan_gemm(512, 512, 512) == _plan.GEMM_PACKED
    assert _plan.plan_gemm(256, 256, 256) == _plan.GEMM_PACKED
    limit = _plan.SMALL_GEMM_MAX_MACS
    assert _plan.plan_gemm(1, 1, limit) == _plan.GEMM_SMALL
    assert _plan.plan_gemm(1, 1, limit + 1) == _plan.GEMM_PACKED


def test_small_gemm_layouts_it_reads_in_place():
    x, w = np.ones((64, 256), np.float32), np.ones((10, 256), np.float32)
    assert _plan.small_gemm_reads_in_place(x, w.T)                  # a narrow head: dot form
    assert _plan.small_gemm_reads_in_place(x.T, x)                  # B's rows
    assert not _plan.small_gemm_reads_in_place(np.asfortranarray(x), w.T)   # neither
    square = np.ones((64, 64), np.float32)
    assert not _plan.small_gemm_reads_in_place(square, square.T)    # k < 4n: rows form on a copy
    assert _plan.small_gemm_reads_in_place(square, square.T[:, :1])  # one column


@pytest.mark.parametrize("case", [
    dict(x=(3, 6, 11, 9), w=(10, 3, 3, 2), kw=dict(stride=(2, 1), padding=1, groups=2)),
    dict(x=(3, 5, 11, 9), w=(7, 5, 3, 2), kw=dict(padding=(1, 0))),       # implicit paths
    dict(x=(2, 3, 13), w=(50, 3, 5), kw=dict(padding=2, dilation=2)),     # panel edges
    dict(x=(1, 9, 4, 5, 3), w=(5, 9, 2, 3, 2), kw=dict(stride=1, padding=1)),
])
def test_conv_on_every_path_matches_reference(simd_path, case):
    rng = np.random.default_rng(7)
    nd = len(case["x"]) - 2
    fwd, bwd = getattr(fastconv, f"conv{nd}d"), getattr(fastconv, f"conv{nd}d_backward")
    ref_fwd = getattr(fastconv.reference, f"conv{nd}d")
    ref_bwd = getattr(fastconv.reference, f"conv{nd}d_backward")
    for dtype in (np.float32, np.float64):
        x = rng.standard_normal(case["x"]).astype(dtype)
        w = rng.standard_normal(case["w"]).astype(dtype)
        y = fwd(x, w, **case["kw"])
        np.testing.assert_allclose(y, ref_fwd(x, w, **case["kw"]), rtol=1e-4, atol=1e-4)
        gy = rng.standard_normal(y.shape).astype(dtype)
        for got, want in zip(bwd(gy, x, w, **case["kw"]), ref_bwd(gy, x, w, **case["kw"])):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_best_path_is_default_and_reported(capsys):
    fastconv.show_config()
    assert "simd" in capsys.readouterr().out
    env = dict(os.environ, FASTCONV_SIMD="generic")
    code = "import fastconv._simd as s; print(s.active())"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "generic", out.stderr
    env["FASTCONV_SIMD"] = "nonsense"
    bad = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert bad.returncode != 0 and "FASTCONV_SIMD='nonsense'" in bad.stderr


def test_select_rejects_unknown_path():
    with pytest.raises(ValueError):
        _simd.select("avx9000")
