"""Every fastconv.nn layer and loss against fastconv.gradcheck (float64), plus
the behaviour torch comparisons cannot pin down (random slopes, dropout masks)
and argument errors. tests/test_nn_torch.py compares the same cases with
torch.nn."""
import math

import subprocess
import sys

import numpy as np
import pytest

import fastconv
from fastconv import nn
from nn_specs import CASES, F64, gradcheck_module


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_layer_gradcheck(rng, case):
    gradcheck_module(case.layer(), case.input(rng))


def to_float32(module):
    """Cast a float64 module tree's parameters and float buffers to float32."""
    for m in module.modules():
        for k in list(m.params):
            m.params[k] = m.params[k].astype(np.float32)
            m.grads[k] = np.zeros_like(m.params[k])
        if "dtype" in vars(m):
            m.dtype = np.dtype(np.float32)
        for name in m._buffer_names:
            b = getattr(m, name)
            if b is not None and b.dtype.kind == "f":
                m.register_buffer(name, b.astype(np.float32))
    return module


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_layer_keeps_float32(rng, case):
    layer = to_float32(case.layer())
    x = case.input(rng).astype(np.float32)
    y = layer(x)
    assert y.dtype == np.float32 and y.flags.c_contiguous
    gx = layer.backward(np.ones_like(y))
    assert gx.dtype == np.float32 and gx.shape == x.shape
    assert all(g.dtype == np.float32 for _, g in layer.named_grads())


@pytest.mark.parametrize("loss, pred, target", [
    (lambda: nn.CrossEntropyLoss(), (5, 4), "labels"),
    (lambda: nn.CrossEntropyLoss(weight=np.array([1.0, 2.0, 0.5, 1.5]), ignore_index=2,
                                 label_smoothing=0.1, reduction="sum"), (3, 4, 2), "labels"),
    (lambda: nn.CrossEntropyLoss(label_smoothing=0.2), (5, 4), "probs"),
    (lambda: nn.NLLLoss(weight=np.array([1.0, 2.0, 0.5, 1.5])), (5, 4), "labels"),
    (lambda: nn.BCELoss(weight=np.array([1.0, 2.0, 0.5, 1.5])), (3, 4), "unit"),
    (lambda: nn.BCEWithLogitsLoss(pos_weight=np.array([1.0, 3.0, 0.5, 2.0])), (3, 4), "unit"),
    (lambda: nn.MSELoss(reduction="none"), (3, 4), "real"),
    (lambda: nn.L1Loss(), (3, 4), "real"),
    (lambda: nn.SmoothL1Loss(beta=0.7), (3, 4), "real"),
], ids=["ce", "ce-weight-ignore-smooth-sum", "ce-probs", "nll", "bce", "bce-logits", "mse",
        "l1", "smoothl1"])
def test_loss_gradcheck(rng, loss, pred, target):
    loss = loss()
    x = rng.standard_normal(pred)
    if target == "labels":
        t = rng.integers(0, pred[1], (pred[0],) + pred[2:])
    elif target == "probs":
        t = rng.dirichlet(np.ones(pred[1]), pred[0])
    elif target == "unit":
        x = rng.uniform(0.05, 0.95, pred) if isinstance(loss, nn.BCELoss) else x
        t = rng.uniform(0, 1, pred)
    else:
        t = rng.standard_normal(pred) + np.where(rng.random(pred) < 0.5, 2.0, -2.0)

    def f(x):
        loss.clear_pending()
        return loss(x, t), lambda g: (loss.backward(g),)

    fastconv.gradcheck(f, x)


def test_rrelu_train_draws_slopes_in_range_and_eval_uses_the_mean(rng):
    layer = nn.RReLU(0.1, 0.3, rng=0)
    x = rng.standard_normal((50, 40))
    y = layer(x)
    neg = x < 0
    np.testing.assert_array_equal(y[~neg], x[~neg])
    slopes = y[neg] / x[neg]
    assert slopes.min() >= 0.1 and slopes.max() <= 0.3 and slopes.std() > 0.04
    g = layer.backward(np.ones_like(x))
    np.testing.assert_allclose(g[neg], slopes)
    np.testing.assert_array_equal(nn.RReLU(0.1, 0.3, rng=0)(x), y)         # seeded
    layer.eval()
    np.testing.assert_allclose(layer(x)[neg], 0.2 * x[neg])
    with pytest.raises(ValueError, match="lower"):
        nn.RReLU(0.5, 0.1)


def test_dropout_p_one_and_inplace(rng):
    x = rng.standard_normal((4, 5))
    drop = nn.Dropout(1.0, inplace=True)
    assert not drop(x).any()
    assert not drop.backward(np.ones_like(x)).any()
    with pytest.raises(TypeError, match="inplace"):
        nn.Dropout(0.5, 3)                   # PyTorch's second argument is inplace


def test_gelu_matches_math_erf():
    x = np.linspace(-6, 6, 101)
    expected = [0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in x]
    with nn.no_grad():
        np.testing.assert_allclose(nn.GELU()(x), expected, rtol=1e-14, atol=1e-15)


def test_softmax_default_dim_follows_pytorch(rng):
    with pytest.warns(UserWarning, match="dim"):
        y = nn.Softmax()(rng.standard_normal((2, 3)))
    np.testing.assert_allclose(y.sum(axis=1), 1)
    with pytest.raises(ValueError, match="dim"):
        nn.LogSoftmax(dim=2)(rng.standard_normal((2, 3)))


@pytest.mark.parametrize("call, error, match", [
    (lambda: nn.Conv3d(2, 3, (3, 3)), ValueError, "kernel_size"),
    (lambda: nn.Conv1d(2, 3, 3, padding_mode="reflect"), ValueError, "padding_mode"),
    (lambda: nn.ConvTranspose2d(3, 4, 3, groups=2), ValueError, "in_channels"),
    (lambda: nn.Conv2d(2, 2, 3, bias="yes"), TypeError, "bias"),
    (lambda: nn.BatchNorm1d(3, affine=1), TypeError, "affine"),
    (lambda: nn.PReLU(0), ValueError, "num_parameters"),
    (lambda: nn.GELU("erf"), ValueError, "approximate"),
    (lambda: nn.LeakyReLU("0.1"), TypeError, "negative_slope"),
    (lambda: nn.ELU(float("nan")), ValueError, "alpha"),
    (lambda: nn.CrossEntropyLoss(reduction="avg"), ValueError, "reduction"),
    (lambda: nn.CrossEntropyLoss(label_smoothing=1.5), ValueError, "label_smoothing"),
    (lambda: nn.CrossEntropyLoss(np.ones((2, 2))), ValueError, "weight"),
    (lambda: nn.SmoothL1Loss(beta=-1), ValueError, "beta"),
    (lambda: nn.MaxPool2d(2, return_indices="no"), TypeError, "return_indices"),
    (lambda: nn.Linear(2, 3).train("no"), TypeError, "mode"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_constructor_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_forward_errors(rng):
    x = rng.standard_normal((2, 3, 4))
    with pytest.raises(ValueError, match="num_parameters"):
        nn.PReLU(4, dtype=F64)(x)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        nn.BatchNorm2d(3, dtype=F64)(x)
    with pytest.raises(ValueError, match="labels"):
        nn.NLLLoss()(x, np.array([[0, 1, 3, 0], [0, 0, 0, 0]]))
    with pytest.raises(ValueError, match="probability"):
        nn.BCELoss()(x, x)
    with pytest.raises(ValueError, match="weight"):
        nn.CrossEntropyLoss(weight=np.ones(2))(x, np.zeros((2, 4), np.int64))
    with pytest.raises(TypeError, match="output_size"):
        nn.Conv1d(3, 2, 1, dtype=F64)(x, output_size=(4,))
    ce = nn.CrossEntropyLoss()
    ce(x, np.zeros((2, 4), np.int64))
    with pytest.raises(TypeError, match="scalar"):
        ce.backward(np.ones(3))


def test_loss_reductions_and_ignored_labels(rng):
    x = rng.standard_normal((4, 3))
    t = np.array([0, 2, -100, 1])
    per = nn.CrossEntropyLoss(reduction="none")(x, t)
    assert per.shape == (4,) and per[2] == 0
    assert nn.CrossEntropyLoss()(x, t) == pytest.approx(per.sum() / 3)
    ce = nn.CrossEntropyLoss()
    ce(x, t)
    assert not ce.backward()[2].any()
    none = nn.MSELoss(reduction="none")
    y = none(x, np.zeros_like(x))
    np.testing.assert_allclose(y, x * x)
    g = rng.standard_normal(x.shape)
    np.testing.assert_allclose(none.backward(g), 2 * x * g)
    assert math.isnan(nn.CrossEntropyLoss()(np.zeros((0, 3)), np.zeros(0, np.int64)))
    # unbatched: (C,) logits and a scalar label
    assert nn.CrossEntropyLoss()(x[0], np.array(2)) == pytest.approx(
        nn.CrossEntropyLoss()(x[:1], t[1:2]))


def test_layer_repr_names_arguments():
    net = nn.Sequential(nn.Conv2d(1, 2, 3, stride=2), nn.BatchNorm2d(2, affine=False),
                        nn.Residual(nn.Identity()))
    text = repr(net)
    assert "(0): Conv2d(1, 2, kernel_size=(3, 3), stride=2" in text
    assert "affine=False" in text and "(body): Identity()" in text


@pytest.mark.parametrize("make, shape", [
    (lambda: nn.Conv2d(2, 3, 3, padding=1, dtype=F64, rng=0), (2, 5, 5)),
    (lambda: nn.ConvTranspose1d(2, 3, 3, stride=2, dtype=F64, rng=0), (2, 4)),
    (lambda: nn.MaxPool2d(2), (2, 4, 4)),
    (lambda: nn.AvgPool3d(2), (2, 4, 4, 4)),
    (lambda: nn.AdaptiveAvgPool2d(2), (2, 5, 3)),
], ids=["conv2d", "convT1d", "maxpool2d", "avgpool3d", "adaptive"])
def test_unbatched_input_passes_through_to_the_op(rng, make, shape):
    """Layers leave unbatched input to their op, which accepts it as
    PyTorch does: the layer gives the batched result without its batch dim."""
    layer, twin = make(), make()
    x = rng.standard_normal(shape)
    y, y_batched = layer(x), twin(x[None])
    np.testing.assert_allclose(y, y_batched[0], rtol=1e-13)
    g = rng.standard_normal(y.shape)
    np.testing.assert_allclose(layer.backward(g), twin.backward(g[None])[0], rtol=1e-13)
    for (name, a), (_, b) in zip(layer.named_grads(), twin.named_grads()):
        np.testing.assert_allclose(a, b, rtol=1e-12, err_msg=name)


def test_importing_fastconv_does_not_import_scipy():
    code = "import sys, fastconv; sys.exit('scipy' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
