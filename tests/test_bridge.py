"""The typed bridge (fastconv._kernels): a Geometry per call, and the C
kernels' own guards surfacing as ValueError instead of bad reads."""
import numpy as np
import pytest

from fastconv import _kernels


def _geometry(kernel=(1, 3, 3), stride=(1, 1, 1), channels=2, size=7):
    out = tuple((n - k) // s + 1 for n, k, s in zip((1, size, size), kernel, stride))
    return _kernels.Geometry(channels, (1, size, size), out, kernel, stride, (0, 0, 0),
                             (1, 1, 1))


def test_geometry_holds_three_sizes_per_axis():
    g = _geometry(stride=(1, 2, 2))
    assert g.sizes() == {"channels": 2, "in_size": (1, 7, 7), "out_size": (1, 3, 3),
                         "kernel": (1, 3, 3), "stride": (1, 2, 2), "pad": (0, 0, 0),
                         "dilation": (1, 1, 1)}
    assert "stride=(1, 2, 2)" in repr(g)
    with pytest.raises(ValueError, match="kernel needs 3 sizes"):
        _kernels.Geometry(1, (1, 4, 4), (1, 2, 2), (3, 3), (1, 1, 1), (0, 0, 0), (1, 1, 1))


def test_bridge_takes_a_geometry_not_a_tuple():
    x = np.zeros(98, np.float32)
    with pytest.raises(TypeError):
        _kernels.max_pool(x, (2, (1, 7, 7), (1, 3, 3), (1, 2, 2), (1, 2, 2), (0, 0, 0),
                              (1, 1, 1)), np.zeros(18, np.float32), None, 1)


def test_pointwise_schedule_on_a_3x3_geometry_is_refused():
    """A pointwise read of a 3x3 conv's images would run past them: the kernel
    refuses (returning -1 before touching anything) and the bridge raises."""
    g = _geometry()
    x, w = np.ones(2 * 49, np.float32), np.ones(4 * 2 * 9, np.float32)
    y = np.full(4 * 25, 7.0, np.float32)
    ws_bytes = -(-_kernels.conv_workspace_size("f", g, 1, 4, True, 1) * 4 // 64) * 64
    scratch = np.zeros(ws_bytes + 2 * 9 * 8, np.uint8)     # then the offsets table
    pointwise = _kernels.ConvForward("f", g, 1, 4, per_image=True, pointwise=True)
    with pytest.raises(ValueError, match="pointwise"):
        pointwise.run(x, 1, w, None, y, scratch, 1)
    assert (y == 7).all()
    _kernels.ConvForward("f", g, 1, 4, per_image=True).run(x, 1, w, None, y, scratch, 1)
    assert (y == 18).all()   # every output sums 2 channels x 9 taps of ones


def test_winograd_sizes_refuse_other_geometries():
    with pytest.raises(ValueError, match="3x3 kernel, stride 1"):
        _kernels.conv_winograd_workspace_size("f", _geometry(stride=(1, 2, 2)), 1, 4, 1)
    with pytest.raises(ValueError, match="3x3 kernel, stride 1"):
        _kernels.conv_winograd_weight_grad_workspace_size("d", _geometry(kernel=(1, 5, 5)),
                                                          4, 1)
    assert _kernels.conv_winograd_workspace_size("f", _geometry(), 1, 4, 1) > 0


def test_global_avg_pool_refuses_more_than_one_output_per_plane_and_short_buffers():
    """The global-pool kernel writes one value per plane: a geometry with a
    bigger output, or buffers shorter than the planes, never reach C."""
    x, y = np.ones(2 * 49), np.zeros(2)
    one = (1, 1, 1)
    global_geometry = _kernels.Geometry(2, (1, 7, 7), one, one, one, (0, 0, 0), one)
    with pytest.raises(ValueError, match="one value per plane"):
        _kernels.global_avg_pool(x, _kernels.Geometry(2, (1, 7, 7), (1, 1, 2), one, one,
                                                      (0, 0, 0), one), False, np.zeros(4), 1)
    with pytest.raises(ValueError, match="source buffer"):
        _kernels.global_avg_pool(x[:97], global_geometry, True, y, 1)
    with pytest.raises(ValueError, match="destination buffer"):
        _kernels.global_avg_pool(x, global_geometry, False, y[:1], 1)
    _kernels.global_avg_pool(x, global_geometry, True, y, 1)
    np.testing.assert_array_equal(y, [1.0, 1.0])
