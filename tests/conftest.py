import numpy as np
import pytest

from fastconv import _simd

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


@pytest.fixture(params=["small", "packed"])
def gemm_kernel(request, monkeypatch):
    """Run the test with every matrix product on one GEMM kernel: the
    unpacked one for small products, or the packed one for all (the plan's
    size threshold moved so that it picks that kernel whatever the size)."""
    from fastconv.functional import _plan
    limit = 2**62 if request.param == "small" else 0
    monkeypatch.setattr(_plan, "SMALL_GEMM_MAX_MACS", limit)
    return request.param
