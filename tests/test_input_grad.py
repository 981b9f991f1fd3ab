"""input_grad=False: a backward that skips the input gradient nobody needs
(a network's images; PyTorch skips it for inputs that do not require grad).

The ops (conv*_backward, conv_transpose*_backward, linear_backward and their
reference twins) return None for grad_input and exactly the full call's
grad_weight and grad_bias; the layers and containers return None and leave
exactly the full backward's parameter gradients, telling only the children
that can skip the work, and never skipping it behind a user's back."""
import copy
import types

import numpy as np
import pytest

import fastconv
from fastconv import nn, reference
from fastconv.functional import _conv

F32, F64 = np.float32, np.float64


def _rand(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


CONV_CASES = [  # (op name, x shape, w shape, keyword arguments)
    ("conv1d_backward", (2, 3, 11), (4, 3, 3), dict(padding=1, stride=2)),
    ("conv2d_backward", (3, 4, 9, 7), (6, 2, 3, 3), dict(padding=1, groups=2)),
    ("conv2d_backward", (2, 1, 12, 12), (5, 1, 5, 5), dict(dilation=2)),
    ("conv3d_backward", (1, 2, 5, 6, 4), (3, 2, 3, 3, 3), dict(padding=(1, 0, 1))),
    ("conv_transpose1d_backward", (2, 3, 7), (3, 4, 4), dict(stride=2, padding=1)),
    ("conv_transpose2d_backward", (2, 4, 5, 6), (4, 3, 3, 3), dict(stride=2, groups=2,
                                                                  output_padding=1)),
    ("conv_transpose3d_backward", (1, 2, 3, 4, 3), (2, 2, 2, 2, 2), dict(stride=2)),
]


def _forward_name(name):
    return name[:-len("_backward")]


@pytest.mark.parametrize("lib", [fastconv, reference], ids=["fastconv", "reference"])
@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("name, x_shape, w_shape, kw", CONV_CASES)
def test_conv_backward_without_input_grad_gives_the_same_weight_and_bias_grads(
        lib, dtype, name, x_shape, w_shape, kw):
    rng = np.random.default_rng(len(name))
    x, w = _rand(rng, x_shape, dtype), _rand(rng, w_shape, dtype)
    g = _rand(rng, getattr(fastconv, _forward_name(name))(x, w, **kw).shape, dtype)
    full = getattr(lib, name)(g, x, w, **kw)
    skipped = getattr(lib, name)(g, x, w, **kw, input_grad=False)
    assert full[0] is not None and skipped[0] is None
    np.testing.assert_array_equal(skipped[1], full[1])
    np.testing.assert_array_equal(skipped[2], full[2])


@pytest.mark.parametrize("lib", [fastconv, reference], ids=["fastconv", "reference"])
def test_linear_backward_without_input_grad(lib):
    rng = np.random.default_rng(1)
    x, w, g = _rand(rng, (5, 3, 7), F64), _rand(rng, (4, 7), F64), _rand(rng, (5, 3, 4), F64)
    full = lib.linear_backward(g, x, w)
    skipped = lib.linear_backward(g, x, w, input_grad=False)
    assert skipped[0] is None
    np.testing.assert_array_equal(skipped[1], full[1])
    np.testing.assert_array_equal(skipped[2], full[2])


def test_an_unbatched_call_without_input_grad():
    rng = np.random.default_rng(2)
    x, w = _rand(rng, (3, 8, 8), F64), _rand(rng, (4, 3, 3, 3), F64)
    g = _rand(rng, (4, 6, 6), F64)
    gx, gw, gb = fastconv.conv2d_backward(g, x, w, input_grad=False)
    assert gx is None
    np.testing.assert_array_equal(gw, fastconv.conv2d_backward(g, x, w)[1])
    assert gb.shape == (4,)


@pytest.mark.parametrize("op, args", [
    ("conv2d_backward", ((1, 2, 5, 5), (3, 2, 3, 3), (1, 3, 3, 3))),
    ("conv_transpose2d_backward", ((1, 2, 5, 5), (2, 3, 3, 3), (1, 3, 7, 7))),
    ("linear_backward", ((2, 4), (3, 4), (2, 3))),
])
@pytest.mark.parametrize("bad", [0, 1, "False", None])
def test_input_grad_must_be_a_bool(op, args, bad):
    x, w, g = (np.ones(s) for s in args)
    with pytest.raises(TypeError, match=f"{op}: input_grad must be True or False"):
        getattr(fastconv, op)(g, x, w, input_grad=bad)


def test_the_input_gradient_pass_does_not_run(monkeypatch):
    """The skip saves the work, not just the result: the data-gradient pass
    is never entered (it would raise here)."""
    def refuse(*args, **kwargs):
        raise AssertionError("the input gradient was computed")
    monkeypatch.setattr(_conv, "conv_grad_input", refuse)
    rng = np.random.default_rng(3)
    x, w = _rand(rng, (2, 3, 8, 8), F32), _rand(rng, (4, 3, 3, 3), F32)
    fastconv.conv2d_backward(np.ones((2, 4, 6, 6), F32), x, w, input_grad=False)
    with pytest.raises(AssertionError, match="was computed"):
        fastconv.conv2d_backward(np.ones((2, 4, 6, 6), F32), x, w)


def test_explain_without_input_grad_has_no_input_plan():
    x, w = np.ones((2, 3, 8, 8), F32), np.ones((4, 3, 3, 3), F32)
    plans = fastconv.explain("conv2d_backward", np.ones((2, 4, 6, 6), F32), x, w,
                             input_grad=False)
    assert plans[0] is None and plans[1] is not None


# --------------------------------------------------------------------------- layers

class UserScale(nn.Module):
    """A user's module whose backward knows nothing of input_grad."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self._save(None, x)
        return 2 * x

    def backward(self, grad_output):
        self.calls += 1
        _, g = self._restore(grad_output)
        return 2 * g


class OwnConv(nn.Conv2d):
    """A subclass overriding backward with the old signature."""

    def backward(self, grad_output):
        return super().backward(grad_output)


def _digits_net(first=None, dtype=F64):
    layers = [nn.Conv2d(2, 4, 3, padding=1, dtype=dtype, rng=0), nn.ReLU(), nn.MaxPool2d(2),
              nn.Flatten(), nn.Linear(4 * 4 * 4, 5, dtype=dtype, rng=1)]
    return nn.Sequential(*([first] if first is not None else []), *layers)


def _grads(model):
    return {name: g.copy() for name, g in model.named_grads()}


def _both_ways(model, x):
    """(the full backward's input gradient and parameter gradients, the same
    with input_grad=False: its return value and parameter gradients), each on
    a fresh copy of the model."""
    full, skip = copy.deepcopy(model), copy.deepcopy(model)
    y = full(x)
    g = np.random.default_rng(9).standard_normal(y.shape).astype(y.dtype)
    gx = full.backward(g)
    skip(x)
    returned = skip.backward(g, input_grad=False)
    return (gx, _grads(full)), (returned, _grads(skip)), skip


def _assert_same_grads(a, b):
    assert a.keys() == b.keys() and a
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("first", [None, "relu", "user", "subclass", "linear_first",
                                   "nested", "residual", "concat", "transposed"])
def test_a_network_backward_without_input_grad(first, dtype):
    x = np.random.default_rng(4).standard_normal((3, 2, 8, 8)).astype(dtype)
    if first is None:
        model = _digits_net(dtype=dtype)
    elif first == "relu":
        model = _digits_net(nn.ReLU(), dtype)
    elif first == "user":
        model = _digits_net(UserScale(), dtype)
    elif first == "subclass":
        model = nn.Sequential(OwnConv(2, 2, 3, padding=1, dtype=dtype, rng=3),
                              _digits_net(dtype=dtype))
    elif first == "linear_first":
        model = nn.Sequential(nn.Flatten(), nn.Linear(128, 7, dtype=dtype, rng=2), nn.Tanh(),
                              nn.Linear(7, 3, dtype=dtype, rng=3))
    elif first == "nested":
        model = nn.Sequential(nn.Sequential(nn.Conv2d(2, 2, 1, dtype=dtype, rng=5)),
                              _digits_net(dtype=dtype))
    elif first == "residual":
        block = nn.Residual(nn.Sequential(nn.Conv2d(2, 2, 3, padding=1, dtype=dtype, rng=6),
                                          nn.ReLU()),
                            nn.Conv2d(2, 2, 1, dtype=dtype, rng=7))
        model = nn.Sequential(block, _digits_net(dtype=dtype))
    elif first == "concat":
        branches = nn.Concat(nn.Conv2d(2, 1, 3, padding=1, dtype=dtype, rng=8),
                             nn.Sequential(nn.ReLU(), nn.Conv2d(2, 1, 1, dtype=dtype, rng=9)))
        model = nn.Sequential(branches, _digits_net(dtype=dtype))
    else:
        model = nn.Sequential(nn.ConvTranspose2d(2, 2, 2, stride=2, dtype=dtype, rng=10),
                              nn.MaxPool2d(2), _digits_net(dtype=dtype))
    (gx, full), (returned, skipped), _ = _both_ways(model, x)
    assert gx is not None and gx.shape == x.shape and returned is None
    _assert_same_grads(full, skipped)


def test_only_children_that_can_skip_are_told():
    """A user's module and a subclass that overrode backward are called with
    the signature they have (no input_grad), once each; the layer classes
    and containers are marked."""
    user = UserScale()
    model = nn.Sequential(user, nn.Conv2d(2, 2, 3, padding=1, dtype=F64, rng=0))
    model(np.ones((1, 2, 5, 5)))
    assert model.backward(np.ones((1, 2, 5, 5)), input_grad=False) is None
    assert user.calls == 1
    assert not getattr(OwnConv.backward, "skips_input_grad", False)
    for cls in (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.Linear,
                nn.Sequential, nn.Residual, nn.Concat):
        assert cls.backward.skips_input_grad


def test_the_first_layer_skips_its_input_gradient_pass(monkeypatch):
    model = _digits_net(dtype=F32)
    y = model(np.ones((2, 2, 8, 8), F32))

    def refuse(*args, **kwargs):
        raise AssertionError("the input gradient was computed")
    monkeypatch.setattr(_conv, "conv_grad_input", refuse)
    assert model.backward(np.ones_like(y), input_grad=False) is None


def test_the_pending_forward_is_consumed():
    model = _digits_net()
    y = model(np.ones((2, 2, 8, 8)))
    model.backward(np.ones_like(y), input_grad=False)
    with pytest.raises(RuntimeError):
        model.backward(np.ones_like(y), input_grad=False)


@pytest.mark.parametrize("backend", ["reference", "namespace"])
def test_other_backends(backend):
    """The reference backend takes input_grad; any other namespace of ops is
    called as before (its ops need not know the argument)."""
    x = np.random.default_rng(5).standard_normal((2, 2, 8, 8))
    model = _digits_net()
    if backend == "reference":
        model.set_backend("reference")
    else:
        strict = {name: getattr(fastconv.functional, name)
                  for name in fastconv.functional.__all__}
        for name in ("conv2d_backward", "linear_backward"):
            full = strict[name]
            strict[name] = lambda *a, _full=full, **kw: _full(*a, **kw) if not kw else \
                pytest.fail(f"{name} was given {kw}")
        model.set_backend(types.SimpleNamespace(**strict))
    (_, full), (returned, skipped), _ = _both_ways(model, x)
    assert returned is None
    for name in full:
        np.testing.assert_allclose(skipped[name], full[name], rtol=1e-12, err_msg=name)


@pytest.mark.parametrize("model", [nn.Conv2d(1, 1, 1), nn.Linear(2, 2), nn.Sequential(),
                                   nn.Residual(nn.Identity()), nn.Concat(nn.Identity())])
def test_layers_refuse_a_flag_that_is_not_a_bool(model):
    x = np.ones((1, 1, 2, 2), F32) if not isinstance(model, nn.Linear) else np.ones((1, 2), F32)
    y = model(x)
    with pytest.raises(TypeError, match="input_grad must be True or False"):
        model.backward(np.ones_like(y), input_grad="no")


def test_an_empty_sequential_returns_none_without_input_grad():
    model = nn.Sequential()
    g = np.ones((2, 3))
    assert model.backward(g, input_grad=False) is None
    assert model.backward(g) is g
