"""fastconv.nn: every layer's backward against gradcheck (float64), PyTorch's
names/shapes/init, BatchNorm/Dropout modes, state_dict, and a small CNN run on
the compiled ops against the same network run on fastconv.reference."""
import math
import types

import numpy as np
import pytest

import fastconv
import fastconv.reference
from fastconv import functional as F
from fastconv import nn
from nn_specs import gradcheck_module

HAS_POOL = all(hasattr(F, n) and hasattr(fastconv.reference, n) for n in (
    "max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward",
    "adaptive_avg_pool2d", "adaptive_avg_pool2d_backward"))
HAS_CONVT = all(hasattr(m, n) for m in (F, fastconv.reference)
                for n in ("conv_transpose2d", "conv_transpose2d_backward"))
needs_pool = pytest.mark.skipif(
    not HAS_POOL, reason="pooling ops (fastconv.functional.max_pool2d & co.) have not "
    "landed on this branch yet")
needs_convt = pytest.mark.skipif(
    not HAS_CONVT, reason="fastconv.functional.conv_transpose2d has not landed on this "
    "branch yet")

F64 = np.float64


def away_from_zero(x, gap=1e-3):
    """Move entries off the kinks of ReLU-like functions."""
    return np.where(np.abs(x) < gap, np.sign(x + 1e-12) * gap * 2, x)


# --------------------------------------------------------------------------- gradcheck

@pytest.mark.parametrize("kwargs", [
    dict(),
    dict(stride=2, padding=1),
    dict(padding="same", dilation=2),
    dict(groups=2, bias=False, stride=(2, 1), padding=(0, 1)),
])
def test_conv2d_gradcheck(rng, kwargs):
    layer = nn.Conv2d(4, 6, 3, dtype=F64, rng=0, **kwargs)
    gradcheck_module(layer, rng.standard_normal((2, 4, 7, 6)))


@needs_convt
@pytest.mark.parametrize("kwargs", [
    dict(),
    dict(stride=2, padding=1, output_padding=1),
    dict(groups=2, bias=False, dilation=2),
])
def test_conv_transpose2d_gradcheck(rng, kwargs):
    layer = nn.ConvTranspose2d(4, 6, 3, dtype=F64, rng=0, **kwargs)
    gradcheck_module(layer, rng.standard_normal((2, 4, 5, 4)))


@needs_pool
@pytest.mark.parametrize("layer", [
    lambda: nn.MaxPool2d(2),
    lambda: nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True),
    lambda: nn.MaxPool2d(2, stride=1, dilation=2),
    lambda: nn.AvgPool2d(2),
    lambda: nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False, ceil_mode=True),
    lambda: nn.AvgPool2d(2, divisor_override=3),
    lambda: nn.AdaptiveAvgPool2d(1),
    lambda: nn.AdaptiveAvgPool2d((3, 2)),
], ids=["max", "max-pad-ceil", "max-dil", "avg", "avg-nopad-ceil", "avg-div",
        "adaptive-1", "adaptive-3x2"])
def test_pool_gradcheck(rng, layer):
    gradcheck_module(layer(), rng.standard_normal((2, 3, 7, 6)))


@pytest.mark.parametrize("layer", [nn.ReLU, lambda: nn.LeakyReLU(0.2), nn.ELU,
                                   lambda: nn.ELU(alpha=0.5), nn.Sigmoid, nn.Tanh],
                         ids=["relu", "leaky", "elu", "elu-0.5", "sigmoid", "tanh"])
def test_elementwise_gradcheck(rng, layer):
    gradcheck_module(layer(), away_from_zero(2 * rng.standard_normal((3, 2, 4, 5))))


def test_elementwise_values():
    x = np.array([-800.0, -2.0, 0.0, 3.0, 800.0])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        np.testing.assert_allclose(nn.ReLU()(x), [0, 0, 0, 3, 800])
        np.testing.assert_allclose(nn.LeakyReLU()(x), [-8, -0.02, 0, 3, 800])
        np.testing.assert_allclose(nn.ELU()(x), [-1, math.expm1(-2), 0, 3, 800])
        np.testing.assert_allclose(nn.Sigmoid()(x), [0, 1 / (1 + math.e ** 2), 0.5,
                                                     1 / (1 + math.e ** -3), 1])
        np.testing.assert_allclose(nn.Tanh()(x), np.tanh(x))
    for layer in (nn.ReLU(), nn.LeakyReLU(), nn.ELU(), nn.Sigmoid(), nn.Tanh()):
        y = layer(x.astype(np.float32))
        assert y.dtype == np.float32
        assert layer.backward(np.ones(5, np.float32)).dtype == np.float32


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_batchnorm_gradcheck(rng, mode):
    layer = nn.BatchNorm2d(3, dtype=F64)
    layer.params["weight"][:] = rng.uniform(0.5, 1.5, 3)
    layer.params["bias"][:] = rng.standard_normal(3)
    layer.running_mean[:] = rng.standard_normal(3)
    layer.running_var[:] = rng.uniform(0.5, 2, 3)
    getattr(layer, mode)()
    gradcheck_module(layer, 3 * rng.standard_normal((4, 3, 3, 2)) + 1)


@pytest.mark.parametrize("shape", [(5, 7), (2, 3, 7)])
def test_linear_gradcheck(rng, shape):
    gradcheck_module(nn.Linear(7, 4, dtype=F64, rng=1), rng.standard_normal(shape))
    gradcheck_module(nn.Linear(7, 4, bias=False, dtype=F64, rng=1), rng.standard_normal(shape))


def test_flatten_gradcheck(rng):
    layer = nn.Flatten()
    x = rng.standard_normal((2, 3, 4, 5))
    assert layer(x).shape == (2, 60)
    gradcheck_module(layer, x)
    assert nn.Flatten(0, 1)(x).shape == (6, 4, 5)
    assert nn.Flatten(-2)(x).shape == (2, 3, 20)
    assert nn.Flatten()(np.zeros((0, 3, 2))).shape == (0, 6)
    with pytest.raises(ValueError, match="start_dim"):
        nn.Flatten(3, 1)(x)


def test_dropout_gradcheck(rng):
    layer = nn.Dropout(0.3)
    x = rng.standard_normal((4, 5, 3))

    def f(x):
        layer.rng = np.random.default_rng(7)       # the same mask every call
        return layer.forward(x), lambda gy: (layer.backward(gy),)

    fastconv.gradcheck(f, x)


def test_sequential_gradcheck(rng):
    net = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1, dtype=F64, rng=0),
                        nn.BatchNorm2d(3, dtype=F64), nn.Tanh(),
                        nn.Conv2d(3, 4, 3, stride=2, dtype=F64, rng=1), nn.ELU(),
                        nn.Flatten(), nn.Linear(16, 5, dtype=F64, rng=2))
    gradcheck_module(net, rng.standard_normal((3, 2, 5, 5)))


def test_losses_gradcheck(rng):
    logits = 5 * rng.standard_normal((6, 4))
    labels = rng.integers(0, 4, 6)
    ce = nn.CrossEntropyLoss()
    fastconv.gradcheck(lambda z: (ce.forward(z, labels), lambda g: (ce.backward(g),)),
                       logits)
    target = rng.standard_normal((3, 4, 2))
    mse = nn.MSELoss()
    fastconv.gradcheck(lambda p: (mse.forward(p, target), lambda g: (mse.backward(g),)),
                       rng.standard_normal((3, 4, 2)))


def test_gradcheck_catches_a_wrong_gradient(rng):
    x = rng.standard_normal((3, 4))
    with pytest.raises(AssertionError, match="FAIL"):
        fastconv.gradcheck(lambda x: (x ** 2, lambda g: (2.1 * x * g,)), x)
    result = fastconv.gradcheck(lambda x: (x ** 2, lambda g: (2 * x * g,)), x)
    assert result and result.max_rel_error < 1e-6
    assert "array 0 (3, 4): 12 of 12 elements" in str(result)
    before = x.copy()
    fastconv.gradcheck(lambda x: (x ** 3, lambda g: (3 * x ** 2 * g,)), x, n_samples=5)
    np.testing.assert_array_equal(x, before)                  # restored
    with pytest.raises(TypeError, match="float64"):
        fastconv.gradcheck(lambda x: (x, lambda g: (g,)), x.astype(np.float32))


# --------------------------------------------------------------------------- params, init

def test_param_names_shapes_and_dtypes():
    conv = nn.Conv2d(6, 8, (3, 5), groups=2)
    assert {k: v.shape for k, v in conv.params.items()} == {"weight": (8, 3, 3, 5),
                                                            "bias": (8,)}
    assert conv.params["weight"].dtype == np.float32
    assert list(nn.Conv2d(6, 8, 3, bias=False, dtype=F64).params) == ["weight"]
    convt = nn.ConvTranspose2d(6, 8, 3, groups=2)
    assert convt.params["weight"].shape == (6, 4, 3, 3)
    lin = nn.Linear(5, 3, dtype=F64)
    assert lin.params["weight"].shape == (3, 5) and lin.params["weight"].dtype == F64
    bn = nn.BatchNorm2d(4)
    assert set(bn.params) == {"weight", "bias"}
    np.testing.assert_array_equal(bn.params["weight"], 1)
    np.testing.assert_array_equal(bn.params["bias"], 0)
    for layer in (conv, lin, bn):
        assert set(layer.grads) == set(layer.params)
        pairs = list(layer.parameters())
        assert [p is layer.params[k] and g is layer.grads[k]
                for (p, g), k in zip(pairs, layer.params)] == [True] * len(pairs)
    for layer in (nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Dropout()):
        assert layer.params == {} and list(layer.parameters()) == []


@pytest.mark.parametrize("make, fan_in", [
    (lambda rng: nn.Conv2d(8, 64, 3, groups=2, rng=rng), 4 * 9),
    (lambda rng: nn.ConvTranspose2d(8, 64, 3, groups=2, rng=rng), 32 * 9),
    (lambda rng: nn.Linear(50, 80, rng=rng), 50),
])
def test_default_init_is_pytorchs(make, fan_in):
    layer = make(0)
    bound = 1 / math.sqrt(fan_in)      # kaiming_uniform(a=sqrt(5)) and the bias rule
    for name in ("weight", "bias"):
        p = layer.params[name]
        assert np.abs(p).max() <= bound
        assert np.abs(p).max() > 0.9 * bound        # uniform over the whole range
        assert abs(p.mean()) < 0.2 * bound
    # seeded: an int and a Generator give the same parameters
    again = make(np.random.default_rng(0))
    np.testing.assert_array_equal(layer.params["weight"], again.params["weight"])
    assert not np.array_equal(layer.params["weight"], make(1).params["weight"])


def test_init_bound_matches_torch():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    for ours, theirs in [(nn.Conv2d(8, 64, 3, groups=2, rng=0),
                          torch.nn.Conv2d(8, 64, 3, groups=2)),
                         (nn.ConvTranspose2d(8, 64, 3, groups=2, rng=0),
                          torch.nn.ConvTranspose2d(8, 64, 3, groups=2)),
                         (nn.Linear(50, 80, rng=0), torch.nn.Linear(50, 80))]:
        for name in ("weight", "bias"):
            t = getattr(theirs, name).detach().numpy()
            assert t.shape == ours.params[name].shape
            np.testing.assert_allclose(np.abs(ours.params[name]).max(), np.abs(t).max(),
                                       rtol=0.1)


@pytest.mark.parametrize("call, name", [
    (lambda: nn.Conv2d(-1, 4, 3), "in_channels"),
    (lambda: nn.Conv2d(4, -2, 3), "out_channels"),
    (lambda: nn.Conv2d(4, 4, 0), "kernel_size"),
    (lambda: nn.Conv2d(4, 4, (3, 3, 3)), "kernel_size"),
    (lambda: nn.Conv2d(3, 4, 3, groups=2), "in_channels"),
    (lambda: nn.Conv2d(4, 3, 3, groups=2), "out_channels"),
    (lambda: nn.Conv2d(4, 4, 3, groups=0), "groups"),
    (lambda: nn.ConvTranspose2d(4, 3, 3, groups=2), "out_channels"),
    (lambda: nn.Linear(-1, 3), "in_features"),
    (lambda: nn.Linear(3, -1), "out_features"),
    (lambda: nn.BatchNorm2d(-3), "num_features"),
    (lambda: nn.BatchNorm2d(3, eps=0), "eps"),
    (lambda: nn.BatchNorm2d(3, momentum=1.5), "momentum"),
    (lambda: nn.Dropout(1.5), "p"),
    (lambda: nn.Dropout(-0.1), "p"),
])
def test_layer_argument_errors(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_layer_type_errors():
    with pytest.raises(TypeError, match="dtype"):
        nn.Conv2d(1, 1, 3, dtype=np.int32)
    with pytest.raises(TypeError, match="in_channels"):
        nn.Conv2d(1.5, 1, 3)
    with pytest.raises(TypeError, match="p"):
        nn.Dropout("0.5")
    with pytest.raises(TypeError):
        nn.Sequential(nn.ReLU(), np.tanh)


def test_conv_arguments_are_checked_by_the_op_not_the_layer(rng):
    layer = nn.Conv2d(2, 2, 3, stride=0)          # the layer does not re-validate
    with pytest.raises(ValueError, match="conv2d: stride"):
        layer(rng.standard_normal((1, 2, 5, 5)).astype(np.float32))
    with pytest.raises(ValueError, match="C_in"):
        nn.Conv2d(2, 2, 3)(np.zeros((1, 3, 5, 5), np.float32))


def test_dtype_mismatch_raises_instead_of_casting(rng):
    x64 = rng.standard_normal((2, 3, 5, 5))
    with pytest.raises(TypeError, match="float64"):
        nn.Conv2d(3, 2, 3)(x64)
    with pytest.raises(TypeError, match="float64"):
        nn.BatchNorm2d(3)(x64)
    with pytest.raises(TypeError, match="float64"):
        nn.Linear(5, 2)(x64)
    with pytest.raises(TypeError, match="int"):
        nn.Linear(5, 2)(np.ones((2, 5), np.int64))


def test_float32_network_stays_float32(rng):
    net = nn.Sequential(nn.Conv2d(1, 2, 3, rng=0), nn.BatchNorm2d(2), nn.ReLU(),
                        nn.Flatten(), nn.Dropout(0.2, rng=0), nn.Linear(18, 3, rng=0))
    x = rng.standard_normal((4, 1, 5, 5)).astype(np.float32)
    y = net(x)
    assert y.dtype == np.float32
    loss = nn.CrossEntropyLoss()
    loss(y, np.array([0, 1, 2, 0]))
    gx = net.backward(loss.backward())
    assert gx.dtype == np.float32
    assert all(g.dtype == np.float32 for _, g in net.named_grads())


def test_backward_before_forward_raises():
    with pytest.raises(RuntimeError, match="before forward"):
        nn.Conv2d(1, 1, 1).backward(np.zeros((1, 1, 1, 1), np.float32))
    with pytest.raises(RuntimeError, match="before forward"):
        nn.Dropout().backward(np.zeros(3))


def test_grads_accumulate_in_place(rng):
    layer = nn.Linear(3, 2, dtype=F64, rng=0)
    g_before = layer.grads["weight"]
    x = rng.standard_normal((4, 3))
    layer(x)
    layer.backward(np.ones((4, 2)))
    first = layer.grads["weight"].copy()
    layer(x)
    layer.backward(np.ones((4, 2)))
    assert layer.grads["weight"] is g_before
    np.testing.assert_allclose(layer.grads["weight"], 2 * first)    # accumulated
    layer.zero_grad()
    assert not layer.grads["weight"].any()


# --------------------------------------------------------------------------- BatchNorm

def test_batchnorm_train_uses_batch_stats_and_updates_running(rng):
    bn = nn.BatchNorm2d(3, dtype=F64)
    x = rng.standard_normal((4, 3, 5, 5)) * [[[[1]], [[2]], [[3]]]] + [[[[5]], [[0]], [[-1]]]]
    y = bn(x)
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), 1, rtol=1e-3)
    np.testing.assert_allclose(bn.running_mean, 0.1 * x.mean(axis=(0, 2, 3)))
    np.testing.assert_allclose(bn.running_var, 0.9 + 0.1 * x.var(axis=(0, 2, 3), ddof=1))
    assert int(bn.num_batches_tracked) == 1


def test_batchnorm_eval_uses_running_stats(rng):
    bn = nn.BatchNorm2d(2, eps=1e-3, dtype=F64)
    bn.running_mean[:] = [1.0, -2.0]
    bn.running_var[:] = [4.0, 0.25]
    bn.params["weight"][:] = [2.0, 3.0]
    bn.params["bias"][:] = [0.5, -0.5]
    bn.eval()
    x = rng.standard_normal((3, 2, 2, 2))
    expected = ((x - [[[1.0]], [[-2.0]]]) / np.sqrt(np.array([[[4.0]], [[0.25]]]) + 1e-3)
                * [[[2.0]], [[3.0]]] + [[[0.5]], [[-0.5]]])
    np.testing.assert_allclose(bn(x), expected)
    np.testing.assert_array_equal(bn.running_mean, [1.0, -2.0])    # unchanged
    assert int(bn.num_batches_tracked) == 0
    bn(x[:1, :, :1, :1])       # one value per channel is fine in eval
    with pytest.raises(ValueError, match="more than 1 value"):
        bn.train()(x[:1, :, :1, :1])


def test_batchnorm_cumulative_momentum(rng):
    bn = nn.BatchNorm2d(2, momentum=None, dtype=F64)
    batches = [rng.standard_normal((2, 2, 3, 3)) + i for i in range(3)]
    for b in batches:
        bn(b)
    np.testing.assert_allclose(bn.running_mean,
                               np.mean([b.mean(axis=(0, 2, 3)) for b in batches], axis=0))


def test_batchnorm_matches_torch(rng):
    torch = pytest.importorskip("torch")
    ours = nn.BatchNorm2d(3, momentum=0.3, dtype=F64)
    theirs = torch.nn.BatchNorm2d(3, momentum=0.3).double()
    ours.params["weight"][:] = [0.5, 1.0, 2.0]
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor([0.5, 1.0, 2.0]))
    for step in range(3):
        x = rng.standard_normal((4, 3, 3, 3)) * 2 + step
        gy = rng.standard_normal(x.shape)
        xt = torch.tensor(x, requires_grad=True)
        theirs.weight.grad = None
        ours.zero_grad()                     # both start each step from zero grads
        yt = theirs(xt)
        yt.backward(torch.tensor(gy))
        np.testing.assert_allclose(ours(x), yt.detach().numpy(), atol=1e-12)
        np.testing.assert_allclose(ours.backward(gy), xt.grad.numpy(), atol=1e-12)
        np.testing.assert_allclose(ours.grads["weight"], theirs.weight.grad.numpy(),
                                   atol=1e-12)
    np.testing.assert_allclose(ours.running_mean, theirs.running_mean.numpy())
    np.testing.assert_allclose(ours.running_var, theirs.running_var.numpy())
    ours.eval(), theirs.eval()
    x = rng.standard_normal((2, 3, 2, 2))
    np.testing.assert_allclose(ours(x), theirs(torch.tensor(x)).detach().numpy(),
                               atol=1e-12)


# --------------------------------------------------------------------------- Dropout

def test_dropout_train_and_eval(rng):
    x = rng.standard_normal((200, 100)).astype(np.float32) + 3
    drop = nn.Dropout(0.25, rng=3)
    y = drop(x)
    assert y.dtype == np.float32
    zero = y == 0
    assert abs(zero.mean() - 0.25) < 0.01
    np.testing.assert_allclose(y[~zero], x[~zero] / 0.75, rtol=1e-6)
    g = drop.backward(np.ones_like(x))
    np.testing.assert_array_equal(g == 0, zero)                  # same mask
    np.testing.assert_array_equal(nn.Dropout(0.25, rng=3)(x), y)  # seeded
    drop.eval()
    np.testing.assert_array_equal(drop(x), x)
    np.testing.assert_array_equal(drop.backward(x), x)
    np.testing.assert_array_equal(nn.Dropout(0.0)(x), x)


def test_train_eval_propagate():
    net = nn.Sequential(nn.Linear(2, 2), nn.Dropout(), nn.Sequential(nn.BatchNorm2d(1)))
    assert net.eval() is net
    assert not any(l.training for l in (net, net[0], net[1], net[2], net[2][0]))
    net.train()
    assert all(l.training for l in (net, net[0], net[1], net[2], net[2][0]))


# --------------------------------------------------------------------------- losses

def test_cross_entropy_values_and_stability():
    logits = np.array([[1.0, 2.0, 3.0], [1e4, 0.0, -1e4]])
    labels = np.array([2, 1])
    ce = nn.CrossEntropyLoss()
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow is fine
        loss = ce(logits, labels)
        g = ce.backward()
    lse = math.log(math.exp(1) + math.exp(2) + math.exp(3))
    assert isinstance(loss, float)
    assert loss == pytest.approx(((lse - 3) + 1e4) / 2)
    soft = np.exp(np.array([1.0, 2, 3]) - lse)
    np.testing.assert_allclose(g, [(soft - [0, 0, 1]) / 2, [0.5, -0.5, 0]], atol=1e-12)
    assert ce(logits.astype(np.float32), labels) == pytest.approx(loss, rel=1e-6)
    assert ce.backward().dtype == np.float32


def test_cross_entropy_errors():
    ce = nn.CrossEntropyLoss()
    with pytest.raises(ValueError, match="labels"):
        ce(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match="labels"):
        ce(np.zeros((2, 3)), np.array([-1, 0]))
    with pytest.raises(TypeError, match="integer"):
        ce(np.zeros((2, 3)), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="shape"):
        ce(np.zeros((2, 3)), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="logits"):
        ce(np.zeros((2, 3, 1)), np.array([0, 1]))


def test_losses_match_torch(rng):
    torch = pytest.importorskip("torch")
    z = rng.standard_normal((5, 4)) * 3
    t = rng.integers(0, 4, 5)
    zt = torch.tensor(z, requires_grad=True)
    lt = torch.nn.functional.cross_entropy(zt, torch.tensor(t))
    lt.backward()
    ce = nn.CrossEntropyLoss()
    assert ce(z, t) == pytest.approx(lt.item(), rel=1e-12)
    np.testing.assert_allclose(ce.backward(), zt.grad.numpy(), atol=1e-14)
    target = rng.standard_normal((5, 4))
    zt.grad = None
    lt = torch.nn.functional.mse_loss(zt, torch.tensor(target))
    lt.backward()
    mse = nn.MSELoss()
    assert mse(z, target) == pytest.approx(lt.item(), rel=1e-12)
    np.testing.assert_allclose(mse.backward(), zt.grad.numpy(), atol=1e-14)
    with pytest.raises(ValueError, match="shape"):
        mse(z, target[:, :2])


# --------------------------------------------------------------------------- state_dict

def small_cnn(dtype=F64, seed=0, pool=False):
    rng = np.random.default_rng(seed)
    layers = [nn.Conv2d(2, 4, 3, padding=1, dtype=dtype, rng=rng), nn.BatchNorm2d(4, dtype=dtype),
              nn.ReLU()]
    if pool:
        layers += [nn.MaxPool2d(2)]
        spatial = 3
    else:
        layers += [nn.Conv2d(4, 4, 3, stride=2, padding=1, groups=2, dtype=dtype, rng=rng)]
        spatial = 3
    layers += [nn.Flatten(), nn.Linear(4 * spatial * spatial, 8, dtype=dtype, rng=rng),
               nn.ReLU(), nn.Linear(8, 3, dtype=dtype, rng=rng)]
    return nn.Sequential(*layers)


def test_state_dict_round_trip(tmp_path, rng):
    net = small_cnn()
    x = rng.standard_normal((3, 2, 6, 6))
    net(x)                                     # move the BatchNorm running stats
    state = net.state_dict()
    assert set(state) == {"0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean",
                          "1.running_var", "1.num_batches_tracked", "3.weight", "3.bias",
                          "5.weight", "5.bias", "7.weight", "7.bias"}
    path = tmp_path / "weights.npz"
    np.savez(path, **state)
    other = small_cnn(seed=99)
    weight = other[0].params["weight"]
    with np.load(path) as loaded:
        other.load_state_dict(loaded)
    assert other[0].params["weight"] is weight                # loaded in place
    for k, v in state.items():
        np.testing.assert_array_equal(other.state_dict()[k], v)
    net.eval(), other.eval()
    np.testing.assert_array_equal(net(x), other(x))
    state["0.weight"][:] = 0                                  # state_dict holds copies
    assert net[0].params["weight"].any()


def test_load_state_dict_errors():
    net = small_cnn()
    state = net.state_dict()
    with pytest.raises(ValueError, match="missing keys"):
        net.load_state_dict({k: v for k, v in state.items() if k != "0.bias"})
    with pytest.raises(ValueError, match="unexpected keys"):
        net.load_state_dict(dict(state, extra=np.zeros(1)))
    with pytest.raises(ValueError, match="shape"):
        net.load_state_dict(dict(state, **{"0.bias": np.zeros(5)}))


def test_state_dict_loads_into_torch():
    torch = pytest.importorskip("torch")
    net = small_cnn(dtype=np.float32)
    theirs = torch.nn.Sequential(
        torch.nn.Conv2d(2, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
        torch.nn.Conv2d(4, 4, 3, stride=2, padding=1, groups=2), torch.nn.Flatten(),
        torch.nn.Linear(36, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in net.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((2, 2, 6, 6)).astype(np.float32)
    np.testing.assert_allclose(net(x), theirs(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------------- backends

def run_net(net, x, labels):
    loss = nn.CrossEntropyLoss()
    value = loss(net(x), labels)
    gx = net.backward(loss.backward())
    return value, gx, {k: g.copy() for k, g in net.named_grads()}


def assert_same_as_reference(make, x, labels):
    fast, ref = make(), make()
    ref.set_backend(fastconv.reference)
    assert all(layer.backend is fastconv.reference for layer in ref)
    lf, gxf, gf = run_net(fast, x, labels)
    lr, gxr, gr = run_net(ref, x, labels)
    assert lf == pytest.approx(lr, rel=1e-12)
    np.testing.assert_allclose(gxf, gxr, rtol=1e-10, atol=1e-12)
    assert gf.keys() == gr.keys()
    for k in gf:
        np.testing.assert_allclose(gf[k], gr[k], rtol=1e-10, atol=1e-12, err_msg=k)


def test_small_cnn_equals_reference(rng):
    assert_same_as_reference(small_cnn, rng.standard_normal((4, 2, 6, 6)),
                             rng.integers(0, 3, 4))


@needs_pool
@needs_convt
def test_cnn_with_pooling_and_transposed_conv_equals_reference(rng):
    def make():
        r = np.random.default_rng(5)
        return nn.Sequential(
            nn.Conv2d(2, 4, 3, padding=1, dtype=F64, rng=r), nn.ReLU(), nn.MaxPool2d(2),
            nn.ConvTranspose2d(4, 3, 3, stride=2, padding=1, output_padding=1, dtype=F64,
                               rng=r),
            nn.AvgPool2d(3, stride=2, padding=1), nn.LeakyReLU(),
            nn.AdaptiveAvgPool2d((2, 2)), nn.Flatten(), nn.Linear(12, 3, dtype=F64, rng=r))

    assert_same_as_reference(make, rng.standard_normal((3, 2, 8, 8)), rng.integers(0, 3, 3))


def test_backend_selection(rng):
    calls = []
    fake = types.SimpleNamespace(
        conv2d=lambda *a: calls.append("conv2d") or fastconv.reference.conv2d(*a),
        conv2d_backward=lambda *a: calls.append("bwd") or fastconv.reference.conv2d_backward(*a))
    layer = nn.Conv2d(1, 1, 3, dtype=F64, rng=0)
    x = rng.standard_normal((1, 1, 4, 4))
    assert nn.get_backend() is F
    with nn.use_backend(fake):
        assert nn.get_backend() is fake
        y = layer(x)
    assert calls == ["conv2d"] and nn.get_backend() is F
    layer.backward(np.ones_like(y))        # backward uses forward's backend
    assert calls == ["conv2d", "bwd"]
    layer.set_backend("reference")
    assert layer.backend is fastconv.reference
    layer.set_backend(None)
    assert layer.backend is None
    with pytest.raises(ValueError, match="backend"):
        layer.set_backend("torch")
    with pytest.raises(ValueError, match="backend"):
        nn.use_backend(object()).__enter__()


def test_network_matches_torch(rng):
    torch = pytest.importorskip("torch")
    net = small_cnn(pool=HAS_POOL)
    layers = [torch.nn.Conv2d(2, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU()]
    layers += ([torch.nn.MaxPool2d(2)] if HAS_POOL else
               [torch.nn.Conv2d(4, 4, 3, stride=2, padding=1, groups=2)])
    layers += [torch.nn.Flatten(), torch.nn.Linear(36, 8), torch.nn.ReLU(),
               torch.nn.Linear(8, 3)]
    theirs = torch.nn.Sequential(*layers).double()
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in net.state_dict().items()})
    x = rng.standard_normal((4, 2, 6, 6))
    labels = rng.integers(0, 3, 4)
    value, gx, grads = run_net(net, x, labels)
    xt = torch.tensor(x, requires_grad=True)
    lt = torch.nn.functional.cross_entropy(theirs(xt), torch.tensor(labels))
    lt.backward()
    assert value == pytest.approx(lt.item(), rel=1e-10)
    np.testing.assert_allclose(gx, xt.grad.numpy(), atol=1e-12)
    for name, p in theirs.named_parameters():
        np.testing.assert_allclose(grads[name], p.grad.numpy(), atol=1e-12, err_msg=name)
