"""deform_conv2d / deform_conv2d_backward (torchvision.ops.deform_conv2d's
semantics): against conv2d at zero and integer-shift offsets, against the
plain-NumPy reference and its torch-ops twin on random configurations (v1 and
v2, weight and offset groups, stride/padding/dilation, both dtypes), and by
gradcheck in float64 for every gradient including offsets and masks."""
import numpy as np
import pytest

from conftest import assert_close
from helpers import non_contiguous

import fastconv
from fastconv import reference


def _config(rng, dtype, masked, groups=1, offset_groups=1, stride=1, padding=1,
            dilation=1, n=2, c_per_group=2, c_out_per_group=3, size=(7, 6), k=(3, 3),
            spread=1.5):
    c_in = groups * c_per_group * offset_groups
    c_out = groups * c_out_per_group
    x = rng.standard_normal((n, c_in) + size).astype(dtype)
    w = rng.standard_normal((c_out, c_in // groups) + k).astype(dtype)
    b = rng.standard_normal(c_out).astype(dtype)
    oh = (size[0] + 2 * padding - dilation * (k[0] - 1) - 1) // stride + 1
    ow = (size[1] + 2 * padding - dilation * (k[1] - 1) - 1) // stride + 1
    taps = k[0] * k[1]
    off = (spread * rng.standard_normal((n, 2 * offset_groups * taps, oh, ow))).astype(dtype)
    mask = rng.uniform(0, 1, (n, offset_groups * taps, oh, ow)).astype(dtype) if masked \
        else None
    return x, off, w, b, mask, dict(stride=stride, padding=padding, dilation=dilation)


def _random_configs():
    rng = np.random.default_rng(0)
    for i in range(10):
        yield dict(masked=bool(i % 2), groups=1 + i % 2, offset_groups=1 + (i // 2) % 2,
                   stride=1 + (i // 3) % 2, padding=int(rng.integers(0, 3)),
                   dilation=1 + (i // 5) % 2, size=tuple(int(v) for v in rng.integers(5, 9, 2)),
                   k=((3, 3), (2, 3), (3, 1))[i % 3], n=1 + i % 3)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("masked", [False, True])
def test_zero_offsets_equal_conv2d(dtype, masked):
    rng = np.random.default_rng(1)
    x, off, w, b, mask, kw = _config(rng, dtype, masked, groups=2, stride=2, dilation=2,
                                     padding=2)
    off[:] = 0
    if mask is not None:
        mask[:] = 1
    y = fastconv.deform_conv2d(x, off, w, b, mask=mask, **kw)
    assert_close(y, fastconv.conv2d(x, w, b, groups=2, **kw), dtype)
    gy = rng.standard_normal(y.shape).astype(dtype)
    gx, goff, gw, gb, gm = fastconv.deform_conv2d_backward(gy, x, off, w, mask=mask, **kw)
    cgx, cgw, cgb = fastconv.conv2d_backward(gy, x, w, groups=2, **kw)
    assert_close(gx, cgx, dtype)
    assert_close(gw, cgw, dtype)
    assert_close(gb, cgb, dtype)
    assert (gm is None) == (mask is None)


def test_integer_shift_equals_conv_of_shifted_input():
    """Every tap moved by (dy, dx) = (1, -2): an unpadded conv of the
    zero-padded input shifted the other way (samples may land in the padding
    ring and read real pixels from beyond it)."""
    rng = np.random.default_rng(2)
    x, off, w, b, _, kw = _config(rng, np.float64, False, padding=1)
    off[:, 0::2], off[:, 1::2] = 1, -2
    h, wd = x.shape[2:]
    big = np.pad(x, ((0, 0), (0, 0), (4, 4), (4, 4)))       # padding 1 plus room to shift
    shifted = big[:, :, 3 + 1:3 + 1 + h + 2, 3 - 2:3 - 2 + wd + 2]
    assert_close(fastconv.deform_conv2d(x, off, w, b, **kw),
                 fastconv.conv2d(shifted, w, b, padding=0), np.float64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_reference(dtype):
    rng = np.random.default_rng(3)
    for cfg in _random_configs():
        x, off, w, b, mask, kw = _config(rng, dtype, **cfg)
        y = fastconv.deform_conv2d(x, off, w, b, mask=mask, **kw)
        assert_close(y, reference.deform_conv2d(x, off, w, b, mask=mask, **kw), dtype)
        gy = rng.standard_normal(y.shape).astype(dtype)
        got = fastconv.deform_conv2d_backward(gy, x, off, w, mask=mask, **kw)
        want = reference.deform_conv2d_backward(gy, x, off, w, mask=mask, **kw)
        for name, a, e in zip(("input", "offset", "weight", "bias", "mask"), got, want):
            if e is None:
                assert a is None, name
            else:
                assert_close(a, e, dtype)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("cfg", [dict(offset_groups=2, c_per_group=4, n=4, size=(16, 15)),
                                 dict(offset_groups=1, c_per_group=12, n=2, size=(20, 19))])
def test_several_position_blocks_and_threads(cfg, threads):
    """Outputs of more than one block of positions (the kernels locate 128
    at a time; the last block partial, rows wrapping inside a block), large
    enough for the kernels to use both threads: the first case splits the
    work by image and offset group, the second also cuts the input
    gradient's channels into slices."""
    rng = np.random.default_rng(7)
    x, off, w, b, mask, kw = _config(rng, np.float64, True, **cfg)
    gy = rng.standard_normal((x.shape[0], w.shape[0]) + off.shape[2:])
    before = fastconv.get_num_threads()
    try:
        fastconv.set_num_threads(threads)
        y = fastconv.deform_conv2d(x, off, w, b, mask=mask, **kw)
        got = fastconv.deform_conv2d_backward(gy, x, off, w, mask=mask, **kw)
    finally:
        fastconv.set_num_threads(before)
    assert_close(y, reference.deform_conv2d(x, off, w, b, mask=mask, **kw), np.float64)
    want = reference.deform_conv2d_backward(gy, x, off, w, mask=mask, **kw)
    for a, e in zip(got, want):
        assert_close(a, e, np.float64)


@pytest.mark.parametrize("masked", [False, True])
def test_gradcheck_every_gradient(masked):
    rng = np.random.default_rng(4)
    x, off, w, b, mask, kw = _config(rng, np.float64, masked, groups=2, offset_groups=2,
                                     stride=2, padding=1, n=1, c_per_group=1, size=(5, 5))
    def f(x, off, w, b, *m):
        mk = m[0] if m else None
        y = fastconv.deform_conv2d(x, off, w, b, mask=mk, **kw)

        def back(g):
            gx, goff, gw, gb, gm = fastconv.deform_conv2d_backward(g, x, off, w, mask=mk, **kw)
            return (gx, goff, gw, gb) + ((gm,) if m else ())
        return y, back
    arrays = (x, off, w, b) + ((mask,) if masked else ())
    fastconv.gradcheck(f, *arrays, n_samples=40)


def test_reference_gradcheck():
    """The oracle's own gradients are right (so agreeing with it means something)."""
    rng = np.random.default_rng(5)
    x, off, w, b, mask, kw = _config(rng, np.float64, True, offset_groups=2, n=1,
                                     c_per_group=1, size=(4, 5))

    def f(x, off, w, mask):
        y = reference.deform_conv2d(x, off, w, b, mask=mask, **kw)

        def back(g):
            gx, goff, gw, _, gm = reference.deform_conv2d_backward(g, x, off, w, mask=mask, **kw)
            return gx, goff, gw, gm
        return y, back
    fastconv.gradcheck(f, x, off, w, mask, n_samples=40)


def test_boundary_rules():
    """Samples at y <= -1 or y >= H read 0; between -1 and 0 only the inside
    corner counts (torchvision's rule)."""
    x = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    w = np.ones((1, 1, 1, 1))
    for dy, want in ((-1.0, 0.0), (-0.5, 0.5 * 1.0), (3.0, 0.0), (2.5, 0.5 * 7.0),
                     (float("nan"), 0.0), (1e30, 0.0)):
        off = np.zeros((1, 2, 3, 3))
        off[0, 0, 0, 0] = dy
        y = fastconv.deform_conv2d(x, off, w)
        r = reference.deform_conv2d(x, off, w)
        assert y[0, 0, 0, 0] == pytest.approx(want), dy
        assert r[0, 0, 0, 0] == pytest.approx(want), dy


def test_any_layout_empty_batch_and_fresh_outputs():
    rng = np.random.default_rng(6)
    x, off, w, b, mask, kw = _config(rng, np.float64, True)
    before = [a.copy() for a in (x, off, w, b, mask)]
    y = fastconv.deform_conv2d(non_contiguous(x), non_contiguous(off), w, b,
                               mask=non_contiguous(mask), **kw)
    np.testing.assert_array_equal(y, fastconv.deform_conv2d(x, off, w, b, mask=mask, **kw))
    for a, c in zip((x, off, w, b, mask), before):
        np.testing.assert_array_equal(a, c)
    e = fastconv.deform_conv2d(x[:0], off[:0], w, b, mask=mask[:0], **kw)
    assert e.shape == (0,) + y.shape[1:]
    grads = fastconv.deform_conv2d_backward(e, x[:0], off[:0], w, mask=mask[:0], **kw)
    assert grads[0].shape == x[:0].shape and not grads[2].any()


def test_chunked_batch_matches_whole(monkeypatch):
    """A batch split into chunks (bounded scratch) gives the same answer."""
    from fastconv.functional import _plan
    rng = np.random.default_rng(7)
    x, off, w, b, mask, kw = _config(rng, np.float64, True, n=5)
    y = fastconv.deform_conv2d(x, off, w, b, mask=mask, **kw)
    gy = rng.standard_normal(y.shape)
    grads = fastconv.deform_conv2d_backward(gy, x, off, w, mask=mask, **kw)
    monkeypatch.setattr(_plan, "CHUNK_SCRATCH_BYTES", 1)   # one image per chunk
    assert_close(fastconv.deform_conv2d(x, off, w, b, mask=mask, **kw), y, np.float64)
    for a, e in zip(fastconv.deform_conv2d_backward(gy, x, off, w, mask=mask, **kw), grads):
        assert_close(a, e, np.float64)


@pytest.mark.parametrize("masked", [False, True])
def test_torch_ops_form_matches(masked):
    """The benchmark's torch column (the same algorithm in torch ops, with
    autograd) agrees with fastconv, forward and every gradient."""
    torch = pytest.importorskip("torch")
    from fastconv.bench.impls import deform_conv2d_torch
    rng = np.random.default_rng(8)
    x, off, w, b, mask, kw = _config(rng, np.float64, masked, groups=2, offset_groups=2,
                                     stride=2, padding=1, dilation=2, size=(8, 7))
    arrays = [x, off, w, b] + ([mask] if masked else [])
    ts = [torch.from_numpy(a).requires_grad_() for a in arrays]
    ty = deform_conv2d_torch(ts[0], ts[1], ts[2], ts[3], mask=ts[4] if masked else None, **kw)
    y = fastconv.deform_conv2d(x, off, w, b, mask=mask, **kw)
    assert_close(y, ty.detach().numpy(), np.float64)
    gy = rng.standard_normal(y.shape)
    ty.backward(torch.from_numpy(gy))
    gx, goff, gw, gb, gm = fastconv.deform_conv2d_backward(gy, x, off, w, mask=mask, **kw)
    for a, t in zip((gx, goff, gw, gb) + ((gm,) if masked else ()), ts):
        assert_close(a, t.grad.numpy(), np.float64)
