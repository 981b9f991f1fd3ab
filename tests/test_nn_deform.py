"""nn.DeformConv2d: torchvision's constructor and initialisation, the layer
against the functional op, and a deformable block (offsets predicted by a
Conv2d from the same input, as in deformable ConvNets) against gradcheck."""
import numpy as np
import pytest

import fastconv
from fastconv import nn


class DeformBlock(nn.Module):
    """y = deform(x, offset=conv(x), mask=sigmoid(conv(x))): a user's block
    whose backward routes the offset and mask gradients into the predictors."""

    def __init__(self, c_in, c_out, dtype):
        super().__init__()
        self.offsets = nn.Conv2d(c_in, 18, 3, padding=1, dtype=dtype, rng=1)
        self.masks = nn.Conv2d(c_in, 9, 3, padding=1, dtype=dtype, rng=2)
        self.gate = nn.Sigmoid()
        self.deform = nn.DeformConv2d(c_in, c_out, 3, padding=1, dtype=dtype, rng=3)

    def forward(self, x):
        return self.deform(x, self.offsets(x), self.gate(self.masks(x)))

    def backward(self, g):
        gx, goff, gm = self.deform.backward(g)
        return gx + self.offsets.backward(goff) + self.masks.backward(self.gate.backward(gm))


def test_constructor_and_init_match_torchvision_shapes():
    layer = nn.DeformConv2d(4, 6, (3, 2), stride=2, padding=1, groups=2, rng=0)
    assert layer.params["weight"].shape == (6, 2, 3, 2)
    assert layer.params["bias"].shape == (6,)
    assert layer.params["weight"].dtype == np.float32
    bound = 1 / np.sqrt(2 * 3 * 2)          # kaiming_uniform(a=sqrt(5)) on fan_in 12
    assert np.abs(layer.params["weight"]).max() <= bound
    assert "bias" not in nn.DeformConv2d(2, 2, 3, bias=False).params
    with pytest.raises(ValueError, match="groups"):
        nn.DeformConv2d(3, 4, 3, groups=2)


@pytest.mark.parametrize("masked", [False, True])
def test_layer_is_the_op_and_accumulates(masked):
    rng = np.random.default_rng(0)
    layer = nn.DeformConv2d(4, 6, 3, padding=1, groups=2, dtype=np.float64, rng=0)
    x = rng.standard_normal((2, 4, 5, 6))
    off = rng.standard_normal((2, 36, 5, 6))          # 2 offset groups
    mask = rng.uniform(size=(2, 18, 5, 6)) if masked else None
    w, b = layer.params["weight"], layer.params["bias"]
    y = layer(x, off, mask)
    np.testing.assert_array_equal(y, fastconv.deform_conv2d(x, off, w, b, 1, 1, 1, mask))
    g = rng.standard_normal(y.shape)
    grads = layer.backward(g)
    gx, goff, gw, gb, gm = fastconv.deform_conv2d_backward(g, x, off, w, 1, 1, 1, mask)
    assert len(grads) == (3 if masked else 2)
    np.testing.assert_array_equal(grads[0], gx)
    np.testing.assert_array_equal(grads[1], goff)
    if masked:
        np.testing.assert_array_equal(grads[2], gm)
    np.testing.assert_array_equal(layer.grads["weight"], gw)
    layer(x, off, mask)
    layer.backward(g)
    np.testing.assert_allclose(layer.grads["bias"], 2 * gb)


def test_deformable_block_gradcheck():
    rng = np.random.default_rng(1)
    block = DeformBlock(2, 3, np.float64)
    x = rng.standard_normal((1, 2, 5, 4))
    params = dict(block.named_parameters())

    def f(x, *arrays):
        block.zero_grad()
        y = block(x)
        return y, lambda g: ((block.backward(g),)
                             + tuple(dict(block.named_grads())[n] for n in params))
    fastconv.gradcheck(f, x, *params.values(), n_samples=20)


def test_summary_runs_through_the_new_layers():
    """Adaptive max pooling covers the whole input (it is no window)."""
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Upsample(scale_factor=2),
                        nn.PixelUnshuffle(2), nn.ChannelShuffle(4), nn.AdaptiveMaxPool2d(3))
    s = fastconv.summary(net, (1, 3, 8, 8), file=__import__("io").StringIO())
    assert "AdaptiveMaxPool2d" in str(s) and "(1, 32, 3, 3)" in str(s)
    assert "8x8" in str(s).splitlines()[-4]
