"""interpolate, adaptive pooling (1-D/2-D/3-D, average and max) and the pixel
and channel shuffles: against PyTorch 2.13 (forward and every gradient via
autograd, when torch is installed), against fastconv.reference, and by
gradcheck in float64."""
import itertools

import numpy as np
import pytest

from conftest import assert_close
from helpers import non_contiguous

import fastconv
from fastconv import reference

DTYPES = (np.float32, np.float64)


def _torch_grad(torch, fn, x, gy):
    xt = torch.from_numpy(x).requires_grad_()
    out = fn(xt)
    yt = out[0] if isinstance(out, tuple) else out
    yt.backward(torch.from_numpy(gy))
    return out, xt.grad.numpy()


# ---------------------------------------------------------------- interpolate
def _interp_configs(rng, count):
    """Random (shape, kwargs): every mode, ranks, sizes and scales, align_corners."""
    out = []
    for i in range(count):
        nd = 1 + i % 3
        mode = ["nearest", "nearest-exact", "linear", "bilinear", "trilinear"][i % 5]
        if mode in ("linear", "bilinear", "trilinear"):
            nd = {"linear": 1, "bilinear": 2, "trilinear": 3}[mode]
        in_size = tuple(int(v) for v in rng.integers(1, 7 if nd < 3 else 5, nd))
        kw = dict(mode=mode)
        if i % 2:
            kw["size"] = tuple(int(v) for v in rng.integers(1, 9 if nd < 3 else 6, nd))
        else:
            kw["scale_factor"] = tuple(float(v) for v in
                                       rng.choice([0.5, 0.7, 1.0, 1.3, 1.5, 2.0, 2.5, 3.0], nd))
            if any(int(n * s) < 1 for n, s in zip(in_size, kw["scale_factor"])):
                kw["scale_factor"] = (2.0,) * nd
        if mode in ("linear", "bilinear", "trilinear"):
            kw["align_corners"] = bool(rng.integers(2))
        out.append(((2, 3) + in_size, kw))
    return out


@pytest.mark.parametrize("dtype", DTYPES)
def test_interpolate_matches_torch(dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    for shape, kw in _interp_configs(rng, 60) + [
            ((1, 2, 5, 7), dict(size=(10, 14), mode="nearest")),        # out == 2 * in
            ((1, 2, 6), dict(scale_factor=1.1, mode="nearest")),        # out == in
            ((1, 2, 3, 6), dict(scale_factor=(2.0000001, 1.1), mode="nearest")),  # 2-D shortcuts
            ((1, 1, 2, 3, 6), dict(scale_factor=(1.0, 2.0000001, 1.1), mode="nearest")),
            ((1, 2, 6), dict(scale_factor=1.1, mode="linear")),         # out == in
            ((1, 1, 3, 3), dict(size=1, mode="bilinear", align_corners=True)),
            ((1, 1, 7, 5), dict(scale_factor=(0.37, 2.9), mode="bilinear")),
            ((1, 1, 4, 5, 6), dict(scale_factor=(1.7, 0.6, 2.2), mode="trilinear")),
            # rows wider than one chunk of the kernels' row blend (512 columns)
            ((1, 2, 3, 700), dict(size=(4, 1500), mode="bilinear")),
            ((1, 2, 2, 1300), dict(scale_factor=(1.5, 0.3), mode="bilinear",
                                   align_corners=True)),
            ((1, 1, 1100), dict(scale_factor=0.7, mode="nearest"))]:
        x = rng.standard_normal(shape).astype(dtype)
        y = fastconv.interpolate(x, **kw)
        gy = rng.standard_normal(y.shape).astype(dtype)
        ty, tgx = _torch_grad(torch, lambda t: torch.nn.functional.interpolate(t, **kw), x, gy)
        assert y.shape == tuple(ty.shape), (shape, kw)
        assert_close(y, ty.detach().numpy(), dtype)
        gx = fastconv.interpolate_backward(gy, x.shape, **kw)
        if not _torch_backward_shortcut(shape[2:], y.shape[2:], kw):
            assert_close(gx, tgx, dtype)
        assert_close(reference.interpolate(x, **kw), ty.detach().numpy(), dtype)
        assert_close(reference.interpolate_backward(gy, x.shape, **kw), gx, dtype)


def _torch_backward_shortcut(in_size, out_size, kw):
    """True where PyTorch's nearest backward short-cuts out == in (or
    2 * in) while its forward used floor(dst / scale_factor): its gradient is
    then not the forward's (fastconv's is; checked by gradcheck below)."""
    scales = kw.get("scale_factor")
    if kw["mode"] != "nearest" or scales is None or len(in_size) == 2:
        return False
    scales = scales if isinstance(scales, tuple) else (scales,) * len(in_size)
    return any((o == n and s != 1) or (o == 2 * n and s != 2)
               for n, o, s in zip(in_size, out_size, scales))


def test_nearest_backward_is_the_forward_gradient_where_torch_shortcuts():
    x = np.arange(6.0).reshape(1, 1, 6)
    y = fastconv.interpolate(x, scale_factor=1.1, mode="nearest")   # 6 -> 6
    np.testing.assert_array_equal(y, [[[0, 0, 1, 2, 3, 4]]])         # as torch's forward
    g = fastconv.interpolate_backward(np.ones_like(y), x.shape, scale_factor=1.1)
    np.testing.assert_array_equal(g, [[[2, 1, 1, 1, 1, 0]]])


def test_interpolate_nearest_indices_are_exact():
    """Nearest modes copy values: any wrong index shows as an exact mismatch
    (scales where float32 rounding decides the index included)."""
    torch = pytest.importorskip("torch")
    x = np.arange(2 * 97, dtype=np.float32).reshape(1, 2, 97)
    for mode, scale in itertools.product(("nearest", "nearest-exact"),
                                         (0.3, 0.7, 1.0 / 3, 2.0 / 3, 1.49, 3.3, 2.000001)):
        want = torch.nn.functional.interpolate(torch.from_numpy(x), scale_factor=scale,
                                               mode=mode).numpy()
        np.testing.assert_array_equal(fastconv.interpolate(x, scale_factor=scale, mode=mode),
                                      want, err_msg=f"{mode} {scale}")


def test_interpolate_nearest_keeps_inf():
    """One tap per axis: an inf next to the sampled pixel never leaks in as 0 * inf."""
    x = np.array([[[1.0, np.inf, 3.0, 4.0]]])
    y = fastconv.interpolate(x, size=2, mode="nearest")
    np.testing.assert_array_equal(y, [[[1.0, 3.0]]])


@pytest.mark.parametrize("mode,nd", [("nearest", 1), ("nearest-exact", 2), ("linear", 1),
                                     ("bilinear", 2), ("trilinear", 3), ("nearest", 3)])
def test_interpolate_gradcheck(mode, nd):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 2) + (4, 3, 5)[:nd])
    kw = dict(scale_factor=(1.6, 2.0, 0.7)[:nd], mode=mode)
    if mode in ("linear", "bilinear", "trilinear"):
        kw["align_corners"] = nd == 2

    def f(x):
        return fastconv.interpolate(x, **kw), \
            lambda g: (fastconv.interpolate_backward(g, x.shape, **kw),)
    fastconv.gradcheck(f, x)


def test_interpolate_any_layout_and_empty_batch():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 5, 6))
    xc = x.copy()
    y = fastconv.interpolate(non_contiguous(x), size=(7, 3), mode="bilinear")
    np.testing.assert_array_equal(y, fastconv.interpolate(x, size=(7, 3), mode="bilinear"))
    np.testing.assert_array_equal(x, xc)
    assert y.flags.c_contiguous
    e = fastconv.interpolate(np.zeros((0, 3, 4)), scale_factor=2, mode="linear")
    assert e.shape == (0, 3, 8)
    assert fastconv.interpolate_backward(e, (0, 3, 4), scale_factor=2, mode="linear").shape \
        == (0, 3, 4)


@pytest.mark.parametrize("kwargs,match", [
    (dict(size=4, scale_factor=2.0), "exactly one"),
    (dict(), "exactly one"),
    (dict(size=4, mode="nearest", align_corners=False), "align_corners"),
    (dict(size=4, mode="bilinear"), "mode"),
    (dict(size=4, mode="area"), "mode"),
])
def test_interpolate_errors_as_torch(kwargs, match):
    """The calls torch refuses are refused, each with a ValueError naming the
    argument (torch raises NotImplementedError for a mode of the wrong rank;
    the contract asks for ValueError)."""
    with pytest.raises(ValueError, match=match):
        fastconv.interpolate(np.zeros((1, 2, 5)), **kwargs)


# ------------------------------------------------------------ adaptive pooling
def _adaptive_cases(rng):
    for nd in (1, 2, 3):
        for _ in range(6):
            in_size = tuple(int(v) for v in rng.integers(1, 9 if nd < 3 else 6, nd))
            out = tuple(int(v) for v in rng.integers(1, 7 if nd < 3 else 5, nd))
            yield nd, (2, 3) + in_size, out


@pytest.mark.parametrize("dtype", DTYPES)
def test_adaptive_pools_match_torch(dtype):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(5)
    for nd, shape, out in _adaptive_cases(rng):
        x = rng.standard_normal(shape).astype(dtype)
        avg = getattr(fastconv, f"adaptive_avg_pool{nd}d")
        y = avg(x, out)
        gy = rng.standard_normal(y.shape).astype(dtype)
        ty, tgx = _torch_grad(torch, lambda t: getattr(F, f"adaptive_avg_pool{nd}d")(t, out),
                              x, gy)
        assert_close(y, ty.detach().numpy(), dtype)
        assert_close(getattr(fastconv, f"adaptive_avg_pool{nd}d_backward")(gy, shape), tgx,
                     dtype)
        assert_close(getattr(reference, f"adaptive_avg_pool{nd}d")(x, out),
                     ty.detach().numpy(), dtype)

        y, idx = getattr(fastconv, f"adaptive_max_pool{nd}d")(x, out, return_indices=True)
        (ty, tidx), tgx = _torch_grad(
            torch, lambda t: getattr(F, f"adaptive_max_pool{nd}d")(t, out, return_indices=True),
            x, gy)
        np.testing.assert_array_equal(y, ty.detach().numpy())
        np.testing.assert_array_equal(idx, tidx.numpy())
        assert_close(getattr(fastconv, f"adaptive_max_pool{nd}d_backward")(gy, idx, shape),
                     tgx, dtype)
        ry, ridx = getattr(reference, f"adaptive_max_pool{nd}d")(x, out, return_indices=True)
        np.testing.assert_array_equal(ry, y)
        np.testing.assert_array_equal(ridx, idx)


def test_adaptive_max_ties_nan_and_overlap():
    """First maximum wins ties; NaN propagates with its index; overlapping
    bins (5 -> 3) accumulate in backward."""
    x = np.array([[[1.0, 3.0, 3.0, 0.0, 3.0]]])
    y, idx = fastconv.adaptive_max_pool1d(x, 2, return_indices=True)   # bins [0,3) [2,5)
    np.testing.assert_array_equal(idx, [[[1, 2]]])
    g = fastconv.adaptive_max_pool1d_backward(np.ones_like(y), idx, x.shape)
    np.testing.assert_array_equal(g, [[[0, 1, 1, 0, 0]]])
    x = np.array([[[1.0, np.nan, 5.0, 2.0]]])
    y, idx = fastconv.adaptive_max_pool1d(x, 1, return_indices=True)
    assert np.isnan(y[0, 0, 0]) and idx[0, 0, 0] == 1
    x = np.full((1, 1, 3, 3), -np.inf)
    y, idx = fastconv.adaptive_max_pool2d(x, 2, return_indices=True)
    np.testing.assert_array_equal(idx, [[[[0, 1], [3, 4]]]])
    torch = pytest.importorskip("torch")
    for x in (np.array([[[1.0, np.nan, 5.0, np.nan, 2.0]]]),
              np.array([[[np.nan, 1.0, np.nan, np.nan, 2.0]]]),       # PyTorch: last NaN
              np.array([[[3.0, 3.0, 1.0, 3.0, 3.0]]])):
        ty, ti = torch.nn.functional.adaptive_max_pool1d(torch.from_numpy(x), 2, True)
        y, idx = fastconv.adaptive_max_pool1d(x, 2, return_indices=True)
        np.testing.assert_array_equal(idx, ti.numpy())
        np.testing.assert_array_equal(y, ty.numpy())
        np.testing.assert_array_equal(reference.adaptive_max_pool1d(x, 2, True)[1], ti.numpy())


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_adaptive_gradcheck(nd):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 2) + (5, 4, 3)[:nd])
    out = (3, 3, 2)[:nd]
    avg = getattr(fastconv, f"adaptive_avg_pool{nd}d")
    avg_b = getattr(fastconv, f"adaptive_avg_pool{nd}d_backward")
    fastconv.gradcheck(lambda x: (avg(x, out), lambda g: (avg_b(g, x.shape),)), x)
    mx = getattr(fastconv, f"adaptive_max_pool{nd}d")
    mx_b = getattr(fastconv, f"adaptive_max_pool{nd}d_backward")

    def f(x):
        y, idx = mx(x, out, return_indices=True)
        return y, lambda g: (mx_b(g, idx, x.shape),)
    fastconv.gradcheck(f, x)


def test_adaptive_2d_unchanged_and_none_entries():
    x = np.random.default_rng(7).standard_normal((2, 3, 6, 5))
    np.testing.assert_array_equal(fastconv.adaptive_avg_pool2d(x, (None, 2)),
                                  fastconv.adaptive_avg_pool2d(x, (6, 2)))
    np.testing.assert_array_equal(fastconv.adaptive_max_pool3d(x[:, :, None], (1, None, 2)),
                                  fastconv.adaptive_max_pool3d(x[:, :, None], (1, 6, 2)))


# -------------------------------------------------------------------- shuffles
@pytest.mark.parametrize("dtype", DTYPES)
def test_shuffles_match_torch(dtype):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(8)
    cases = [
        ("pixel_shuffle", (2, 18, 3, 5), 3), ("pixel_shuffle", (2, 3, 8, 2, 4), 2),
        ("pixel_shuffle", (4, 2, 3), 2), ("pixel_unshuffle", (2, 3, 6, 9), 3),
        ("pixel_unshuffle", (5, 1, 4, 2, 6), 2), ("channel_shuffle", (2, 12, 3, 5), 4),
        ("channel_shuffle", (2, 6, 7), 2), ("channel_shuffle", (1, 6, 2, 3, 2), 3),
    ]
    for name, shape, factor in cases:
        x = rng.standard_normal(shape).astype(dtype)
        y = getattr(fastconv, name)(x, factor)
        gy = rng.standard_normal(y.shape).astype(dtype)
        ty, tgx = _torch_grad(torch, lambda t: getattr(F, name)(t, factor), x, gy)
        np.testing.assert_array_equal(y, ty.detach().numpy())
        np.testing.assert_array_equal(getattr(fastconv, name + "_backward")(gy, factor), tgx)
        np.testing.assert_array_equal(getattr(reference, name)(x, factor), y)
        np.testing.assert_array_equal(getattr(reference, name + "_backward")(gy, factor), tgx)
        assert y.flags.c_contiguous and not np.shares_memory(y, x)


def test_shuffles_are_fresh_and_any_layout():
    x = np.random.default_rng(9).standard_normal((2, 4, 3, 3))
    y = fastconv.pixel_shuffle(x, 1)
    assert not np.shares_memory(x, y) and y.flags.c_contiguous
    np.testing.assert_array_equal(fastconv.pixel_shuffle(non_contiguous(x), 2),
                                  fastconv.pixel_shuffle(x, 2))
    big_endian = x.astype(">f8")
    np.testing.assert_array_equal(fastconv.channel_shuffle(big_endian, 2),
                                  fastconv.channel_shuffle(x, 2))
    assert fastconv.channel_shuffle(big_endian, 2).dtype == np.float64


def test_shuffle_gradcheck():
    x = np.random.default_rng(10).standard_normal((2, 8, 2, 3))
    for fwd, bwd, k in ((fastconv.pixel_shuffle, fastconv.pixel_shuffle_backward, 2),
                        (fastconv.channel_shuffle, fastconv.channel_shuffle_backward, 4)):
        fastconv.gradcheck(lambda x: (fwd(x, k), lambda g: (bwd(g, k),)), x)
