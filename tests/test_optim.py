"""fastconv.optim: SGD and Adam against hand-computed updates and PyTorch."""
import math

import numpy as np
import pytest

from fastconv import nn, optim


class Param(nn.Module):
    """A bare module holding given parameter values (float64 by default)."""

    def __init__(self, *values, dtype=np.float64):
        super().__init__()
        for i, v in enumerate(values):
            self._add_param(f"p{i}", np.array(v, dtype=dtype))

    def set_grads(self, *grads):
        for name, g in zip(self.params, grads):
            self.grads[name][...] = g


def test_sgd_plain():
    m = Param([1.0, -2.0])
    p = m.params["p0"]
    opt = optim.SGD(m, lr=0.1)
    m.set_grads([0.5, 1.0])
    opt.step()
    assert m.params["p0"] is p                         # updated in place
    np.testing.assert_allclose(p, [1.0 - 0.05, -2.0 - 0.1])


def test_sgd_momentum_two_steps():
    m = Param([1.0])
    opt = optim.SGD(m, lr=0.1, momentum=0.9)
    m.set_grads([2.0])
    opt.step()                      # buf = 2       p = 1 - 0.2 = 0.8
    m.set_grads([1.0])
    opt.step()                      # buf = 0.9*2 + 1 = 2.8    p = 0.8 - 0.28
    np.testing.assert_allclose(m.params["p0"], [0.52])


def test_sgd_nesterov_and_weight_decay():
    m = Param([1.0])
    opt = optim.SGD(m, lr=0.1, momentum=0.5, nesterov=True, weight_decay=0.1)
    m.set_grads([2.0])
    opt.step()     # g = 2 + 0.1 = 2.1; buf = 2.1; g = 2.1 + 0.5*2.1 = 3.15; p = 0.685
    np.testing.assert_allclose(m.params["p0"], [0.685])
    m.set_grads([1.0])
    opt.step()     # g = 1.0685; buf = 1.05 + 1.0685 = 2.1185; g = 1.0685 + 1.05925
    np.testing.assert_allclose(m.params["p0"], [0.685 - 0.1 * (1.0685 + 1.05925)])


def test_adam_two_steps():
    m = Param([1.0, -1.0])
    opt = optim.Adam(m, lr=0.1, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.5)
    grads = [np.array([0.2, 0.0]), np.array([-0.1, 0.3])]
    p = np.array([1.0, -1.0])
    mom, vel = np.zeros(2), np.zeros(2)
    for t, g in enumerate(grads, start=1):
        m.set_grads(g)
        opt.step()
        g = g + 0.5 * p
        mom = 0.9 * mom + 0.1 * g
        vel = 0.99 * vel + 0.01 * g * g
        p = p - 0.1 / (1 - 0.9 ** t) * mom / (np.sqrt(vel) / math.sqrt(1 - 0.99 ** t) + 1e-8)
        np.testing.assert_allclose(m.params["p0"], p, rtol=1e-12)
    # first Adam step moves every parameter with a nonzero gradient by ~lr
    m2 = Param([3.0, 3.0])
    m2.set_grads([1e-3, -50.0])
    optim.Adam(m2, lr=0.01).step()
    np.testing.assert_allclose(m2.params["p0"], [2.99, 3.01], rtol=1e-6)


def test_float32_stays_float32():
    m = Param([1.0, 2.0], dtype=np.float32)
    m.set_grads([0.1, 0.2])
    for opt in (optim.SGD(m, 0.1, momentum=0.9, weight_decay=1e-4),
                optim.Adam(m, weight_decay=1e-4)):
        opt.step()
        opt.step()
        assert m.params["p0"].dtype == np.float32
    assert all(s["exp_avg"].dtype == np.float32 for s in opt.state)


def test_zero_grad_and_several_params():
    net = nn.Sequential(nn.Linear(3, 2, dtype=np.float64, rng=0), nn.ReLU(),
                        nn.Linear(2, 1, dtype=np.float64, rng=1))
    opt = optim.SGD(net, lr=0.0)
    for _, g in net.parameters():
        g[...] = 1
    opt.zero_grad()
    assert not any(g.any() for _, g in net.parameters())


@pytest.mark.parametrize("make, name", [
    (lambda m: optim.SGD(m, lr=-1), "lr"),
    (lambda m: optim.SGD(m, lr=0.1, momentum=-0.5), "momentum"),
    (lambda m: optim.SGD(m, lr=0.1, weight_decay=-1), "weight_decay"),
    (lambda m: optim.SGD(m, lr=0.1, nesterov=True), "nesterov"),
    (lambda m: optim.Adam(m, lr=-1), "lr"),
    (lambda m: optim.Adam(m, betas=(0.9, 1.0)), "betas"),
    (lambda m: optim.Adam(m, betas=(-0.1, 0.9)), "betas"),
    (lambda m: optim.Adam(m, eps=-1), "eps"),
    (lambda m: optim.Adam(m, weight_decay=-1), "weight_decay"),
])
def test_argument_errors(make, name):
    with pytest.raises(ValueError, match=name):
        make(Param([1.0]))


def test_needs_a_module():
    with pytest.raises(TypeError, match="layer"):
        optim.SGD([np.zeros(3)], lr=0.1)


def test_training_reduces_loss():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 3))
    y = x @ np.array([[1.0], [-2.0], [0.5]]) + 0.3
    for make in (lambda m: optim.SGD(m, lr=0.1, momentum=0.9),
                 lambda m: optim.Adam(m, lr=0.05)):
        layer = nn.Linear(3, 1, dtype=np.float64, rng=0)
        opt, loss = make(layer), nn.MSELoss()
        first = loss(layer(x), y)
        for _ in range(100):
            loss(layer(x), y)
            opt.zero_grad()                 # backward adds into the gradients
            layer.backward(loss.backward())
            opt.step()
        assert loss(layer(x), y) < 1e-3 * first


@pytest.mark.parametrize("kind, kwargs", [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.1)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.02, betas=(0.8, 0.9), eps=1e-6, weight_decay=0.1)),
])
def test_matches_torch(kind, kwargs):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    values = [rng.standard_normal((3, 4)), rng.standard_normal(4)]
    ours = Param(*values)
    theirs = [torch.tensor(v, requires_grad=True) for v in values]
    opt = getattr(optim, kind)(ours, **kwargs)
    topt = getattr(torch.optim, kind)(theirs, **kwargs)
    for _ in range(5):
        grads = [rng.standard_normal(v.shape) for v in values]
        ours.set_grads(*grads)
        for t, g in zip(theirs, grads):
            t.grad = torch.tensor(g)
        opt.step()
        topt.step()
    for name, t in zip(ours.params, theirs):
        np.testing.assert_allclose(ours.params[name], t.detach().numpy(), rtol=1e-12,
                                   atol=1e-14)
