import numpy as np
import pytest

import fastconv
from fastconv import _simd, _threads, reference

# Tolerances for comparing fastconv with the float64/float32 reference.
TOL = {np.float32: dict(rtol=1e-4, atol=1e-4), np.float64: dict(rtol=1e-10, atol=1e-10)}


def assert_close(actual, expected, dtype):
    """Relative comparison scaled by the magnitude of the expected values."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape
    assert actual.dtype == np.dtype(dtype)
    scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
    tol = TOL[np.dtype(dtype).type]
    np.testing.assert_allclose(actual / scale, expected / scale, **tol)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture(params=_simd.supported())
def simd_path(request):
    """Run the test once on every SIMD path this CPU supports, restoring the
    active one afterwards.  fastconv._simd picks the table every kernel family
    runs from (GEMM, convolutions, depthwise, im2col, pooling:
    test_simd_dispatch.py checks each)."""
    before = _simd.active()
    _simd.select(request.param)
    yield request.param
    _simd.select(before)


@pytest.fixture(params=[1, 2])
def threads(request):
    """Run the test at 1 and at 2 threads, restoring the count afterwards."""
    before = _threads.get_num_threads()
    _threads.set_num_threads(request.param)
    yield request.param
    _threads.set_num_threads(before)


def check_conv_against_reference(shape, groups, c_out, kernel, kw, dtype, rng):
    """conv{1,2,3}d and its backward on an x of `shape` and a random
    (c_out, C_in // groups, *kernel) weight with bias, in `dtype`, against
    fastconv.reference in float64."""
    nd = len(shape) - 2
    fwd, bwd = getattr(fastconv, f"conv{nd}d"), getattr(fastconv, f"conv{nd}d_backward")
    ref_fwd = getattr(reference, f"conv{nd}d")
    ref_bwd = getattr(reference, f"conv{nd}d_backward")
    x = rng.standard_normal(shape)
    w = rng.standard_normal((c_out, shape[1] // groups) + kernel)
    b = rng.standard_normal(c_out)
    want = ref_fwd(x, w, b, groups=groups, **kw)
    assert_close(fwd(x.astype(dtype), w.astype(dtype), b.astype(dtype), groups=groups, **kw),
                 want, dtype)
    gy = rng.standard_normal(want.shape)
    got = bwd(gy.astype(dtype), x.astype(dtype), w.astype(dtype), groups=groups, **kw)
    for g, r in zip(got, ref_bwd(gy, x, w, groups=groups, **kw)):
        assert_close(g, r, dtype)


@pytest.fixture(params=["small", "packed"])
def gemm_kernel(request, monkeypatch):
    """Run the test with every matrix product on one GEMM kernel: the
    unpacked one for small products, or the packed one for all (the plan's
    size threshold moved so that it picks that kernel whatever the size)."""
    from fastconv.functional import _plan
    limit = 2**62 if request.param == "small" else 0
    monkeypatch.setattr(_plan, "SMALL_GEMM_MAX_MACS", limit)
    return request.param
