"""fastconv.nn's Module rules (no torch needed): gradients accumulate, one
cache per forward call consumed in reverse, no_grad, registration of child
modules, backward errors, composites (Residual, Concat, Add), containers,
state_dict validation, pickling, ndarray subclasses and in-place edits of the
input, summary, clipping and init.

The first tests are the traps of issue 13 ("Why"); each failed on the
single-file nn.py this package replaced."""
import copy
import io
import math
import pickle
import types
import warnings

import numpy as np
import pytest

import fastconv
from fastconv import nn, optim
from nn_specs import gradcheck_module

F64 = np.float64


def linear(i=3, o=3, seed=0):
    return nn.Linear(i, o, dtype=F64, rng=seed)


class Block(nn.Module):
    """A user's own block with a hand-written forward/backward."""

    def __init__(self, seed=0):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 3, 3, padding=1, dtype=F64, rng=seed)
        self.act = nn.Tanh()
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 2, dtype=F64,
                                                          rng=seed + 1))

    def forward(self, x):
        return self.head(self.act(self.conv1(x)))

    def backward(self, g):
        return self.conv1.backward(self.act.backward(self.head.backward(g)))


# --------------------------------------------------------------------------- issue 13 traps

def test_trap_layer_used_twice_sums_the_gradients(rng):
    shared = linear()
    net = nn.Sequential(shared, nn.Tanh(), shared)
    gradcheck_module(net, rng.standard_normal((4, 3)))
    assert [n for n, _ in net.named_parameters()] == ["0.weight", "0.bias"]
    assert len(list(net.parameters())) == 2          # a shared parameter once


def test_trap_inference_between_forward_and_backward(rng):
    net = nn.Sequential(linear(3, 4), nn.ReLU(), linear(4, 2, seed=1))
    x, x_val = rng.standard_normal((5, 3)), rng.standard_normal((7, 3))
    g = rng.standard_normal((5, 2))
    twin = copy.deepcopy(net)
    twin(x)
    expected = twin.backward(g)
    net(x)
    with nn.no_grad():
        net.eval()(x_val)
    net.train()
    np.testing.assert_allclose(net.backward(g), expected, rtol=1e-13)
    np.testing.assert_allclose(net[0].grads["weight"], twin[0].grads["weight"], rtol=1e-13)
    # Without no_grad, backward would pop the validation cache: a batch of
    # another size is detected, and the pending stack is left as it was.
    net(x)
    net(x_val)
    with pytest.raises(ValueError, match="shape"):
        net.backward(g)
    net.backward(rng.standard_normal((7, 2)))        # the validation batch's backward
    net.zero_grad()
    np.testing.assert_allclose(net.backward(g), expected, rtol=1e-13)


def test_trap_validation_in_eval_mode_of_the_same_shape_is_detected(rng):
    net = nn.Sequential(linear(3, 4), nn.ReLU(), linear(4, 2, seed=1))
    x, x_val = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    net(x)
    net.eval()
    net(x_val)                                       # forgot no_grad
    net.train()
    with pytest.raises(RuntimeError, match="eval mode"):
        net.backward(np.ones((5, 2)))
    net.eval()
    net.backward(np.ones((5, 2)))                    # in its own mode it is a backward
    net.train()
    net.backward(np.ones((5, 2)))


def test_trap_user_block_children_are_registered(rng):
    block = Block()
    assert list(block.state_dict()) == ["conv1.weight", "conv1.bias", "head.1.weight",
                                        "head.1.bias"]
    assert [n for n, _ in block.named_parameters()] == list(block.state_dict())
    x = rng.standard_normal((3, 2, 4, 4))
    gradcheck_module(block, x)
    before = block.conv1.params["weight"].copy()
    opt = optim.SGD(block, lr=0.1)
    block.zero_grad()
    block(x)
    block.backward(np.ones((3, 2)))
    assert block.conv1.grads["weight"].any()
    opt.step()
    assert not np.allclose(block.conv1.params["weight"], before)     # trained
    block.eval()
    assert not block.conv1.training and not block.head[1].training
    block.zero_grad()
    assert not block.conv1.grads["weight"].any()
    outer = nn.Sequential(Block(), nn.ReLU())
    assert "0.conv1.weight" in outer.state_dict()


def test_trap_two_backwards_accumulate(rng):
    conv = nn.Conv2d(2, 3, 3, dtype=F64, rng=0)
    x1, x2 = rng.standard_normal((2, 2, 5, 5)), rng.standard_normal((2, 2, 5, 5))
    g1, g2 = rng.standard_normal((2, 3, 3, 3)), rng.standard_normal((2, 3, 3, 3))
    conv(x1)
    conv.backward(g1)
    first = conv.grads["weight"].copy()
    conv.zero_grad()
    conv(x2)
    conv.backward(g2)
    second = conv.grads["weight"].copy()
    conv.zero_grad()
    conv(x1)
    conv(x2)
    conv.backward(g2)
    conv.backward(g1)
    np.testing.assert_allclose(conv.grads["weight"], first + second, rtol=1e-12)


def test_trap_pytorch_arguments_are_accepted(rng):
    x = rng.standard_normal((2, 3, 4, 4))
    before = x.copy()
    relu = nn.ReLU(inplace=True)
    y = relu(x)
    assert y is x                                      # in place, as PyTorch
    np.testing.assert_array_equal(x, np.maximum(before, 0))
    np.testing.assert_array_equal(relu.backward(np.ones_like(x)), before > 0)
    np.testing.assert_array_equal(nn.ReLU()(before), np.maximum(before, 0))
    bn = nn.BatchNorm2d(3, affine=False, dtype=F64)
    assert bn.params == {}
    np.testing.assert_allclose(bn(x).mean(axis=(0, 2, 3)), 0, atol=1e-12)
    ce = nn.CrossEntropyLoss(reduction="sum")
    z, t = rng.standard_normal((4, 3)), np.array([0, 2, 1, 1])
    assert ce(z, t) == pytest.approx(4 * nn.CrossEntropyLoss()(z, t))


# --------------------------------------------------------------------------- backward errors

def test_backward_without_pending_forward_raises(rng):
    layer = linear()
    with pytest.raises(RuntimeError, match="no pending forward"):
        layer.backward(np.ones((2, 3)))
    layer(rng.standard_normal((2, 3)))
    layer.backward(np.ones((2, 3)))
    with pytest.raises(RuntimeError, match="no pending forward"):
        layer.backward(np.ones((2, 3)))                 # twice for one forward
    with nn.no_grad():
        layer(rng.standard_normal((2, 3)))
        assert not nn.is_grad_enabled()
        with nn.enable_grad():
            assert nn.is_grad_enabled()
    with pytest.raises(RuntimeError, match="no pending forward"):
        layer.backward(np.ones((2, 3)))


def test_backward_out_of_order_or_wrong_grad_raises_and_keeps_the_stack(rng):
    layer = linear()
    layer(rng.standard_normal((2, 3)))
    layer(rng.standard_normal((5, 3)))
    with pytest.raises(ValueError, match=r"\(5, 3\)"):
        layer.backward(np.ones((2, 3)))                 # out of order
    with pytest.raises(TypeError, match="dtype"):
        layer.backward(np.ones((5, 3), np.float32))
    with pytest.raises(TypeError, match="float"):
        layer.backward(np.ones((5, 3), np.int64))
    layer.backward(np.ones((5, 3)))
    layer.backward(np.ones((2, 3)))
    assert not layer._pending


def test_every_layer_raises_on_backward_without_forward():
    for layer in (nn.Conv1d(1, 1, 1), nn.MaxPool2d(2), nn.AvgPool1d(2), nn.ReLU(),
                  nn.Softmax(1), nn.BatchNorm1d(2), nn.Flatten(), nn.Dropout(),
                  nn.Identity(), nn.PReLU(), nn.Residual(nn.ReLU()), nn.MSELoss(),
                  nn.CrossEntropyLoss(), nn.Add(), nn.Concat(nn.ReLU())):
        with pytest.raises(RuntimeError, match="no pending forward"):
            layer.backward(np.zeros((1, 1), np.float32))


def test_pending_stack_warns_when_it_keeps_growing(rng):
    layer = nn.ReLU()
    x = rng.standard_normal(3)
    with pytest.warns(RuntimeWarning, match="no_grad"):
        for _ in range(64):
            layer(x)
    layer.clear_pending()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with nn.no_grad():
            for _ in range(100):
                layer(x)
    assert not layer._pending


# --------------------------------------------------------------------------- composites

def test_residual_gradients(rng):
    x = rng.standard_normal((2, 3, 5, 5))
    body = nn.Sequential(nn.Conv2d(3, 3, 3, padding=1, dtype=F64, rng=0), nn.Tanh())
    gradcheck_module(nn.Residual(body), x)
    down = nn.Residual(nn.Conv2d(3, 4, 3, stride=2, padding=1, dtype=F64, rng=1),
                       nn.Conv2d(3, 4, 1, stride=2, dtype=F64, rng=2))
    gradcheck_module(down, x)
    assert [n for n, _ in down.named_parameters()] == ["body.weight", "body.bias",
                                                       "shortcut.weight", "shortcut.bias"]
    with pytest.raises(ValueError, match="shortcut"):
        nn.Residual(nn.Conv2d(3, 4, 1, dtype=F64))(x)


def test_concat_gradients_and_shared_branch(rng):
    x = rng.standard_normal((2, 3, 4, 4))
    shared = nn.Conv2d(3, 2, 1, dtype=F64, rng=0)
    net = nn.Concat(nn.Conv2d(3, 4, 3, padding=1, dtype=F64, rng=1), shared,
                    nn.Sequential(nn.Tanh(), shared))
    assert net(x).shape == (2, 8, 4, 4)
    gradcheck_module(net, x)
    gradcheck_module(nn.Concat(nn.Identity(), nn.Sigmoid(), dim=-1), x)
    with pytest.raises(ValueError, match="dim"):
        nn.Concat(nn.Identity(), nn.Flatten())(x)


def test_add_and_identity(rng):
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    add = nn.Add()
    np.testing.assert_array_equal(add(a, b), a + b)
    g = rng.standard_normal((2, 3))
    ga, gb = add.backward(g)
    np.testing.assert_array_equal(ga, g)
    np.testing.assert_array_equal(gb, g)
    with pytest.raises(ValueError, match="shape"):
        add(a, b[:1])
    with pytest.raises(TypeError, match="dtype"):
        add(a, b.astype(np.float32))
    ident = nn.Identity(54, unused_argument=0.1)
    y = ident(a)
    assert y is not a
    np.testing.assert_array_equal(ident.backward(g), g)


def test_containers_register_their_members(rng):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([linear(3, 3, 0), linear(3, 3, 1)])
            self.heads = nn.ModuleDict({"a": linear(3, 1, 2), "b": linear(3, 2, 3)})

    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["layers.0.weight", "layers.0.bias", "layers.1.weight",
                     "layers.1.bias", "heads.a.weight", "heads.a.bias", "heads.b.weight",
                     "heads.b.bias"]
    net.layers.append(linear(3, 3, 4))
    net.layers.insert(0, nn.ReLU())
    assert [type(m).__name__ for m in net.layers] == ["ReLU", "Linear", "Linear", "Linear"]
    assert "layers.3.weight" in net.state_dict()
    del net.heads["a"]
    assert "heads.a.weight" not in net.state_dict() and "b" in net.heads
    net.eval()
    assert not any(m.training for m in net.modules())
    seq = nn.Sequential(linear(3, 4), nn.ReLU(), linear(4, 2, 1))
    assert isinstance(seq[1:], nn.Sequential) and len(seq[1:]) == 2
    assert seq[-1] is seq.layers[2]
    with pytest.raises(TypeError, match="Module"):
        nn.ModuleList([np.tanh])


def test_module_registered_twice_and_reassigned():
    shared = linear()
    net = nn.Module()
    net.a = shared
    net.b = shared
    assert len(list(net.parameters())) == 2                       # once
    assert set(net.state_dict()) == {"a.weight", "a.bias", "b.weight", "b.bias"}  # PyTorch
    net.a = None
    assert set(net.state_dict()) == {"b.weight", "b.bias"}
    del net.b
    assert list(net.parameters()) == []
    tied = nn.Sequential(linear(3, 3, 0), nn.Tanh(), linear(3, 3, 1))
    tied[2].params["weight"] = tied[0].params["weight"]        # weight tying
    tied[2].grads["weight"] = tied[0].grads["weight"]
    assert [n for n, _ in tied.named_parameters()] == ["0.weight", "0.bias", "2.bias"]
    assert linear().weight is not None                            # params as attributes
    with pytest.raises(AttributeError, match="in place"):
        linear().weight = np.zeros((3, 3))


def test_assigning_a_module_before_init_is_explained():
    class Bad(nn.Module):
        def __init__(self):
            self.conv = nn.Conv2d(1, 1, 1)

    with pytest.raises(AttributeError, match="super"):
        Bad()


def test_set_backend_reaches_children_and_pickles(rng):
    block = Block().set_backend("reference")
    assert block.conv1.backend is fastconv.reference
    x = rng.standard_normal((1, 2, 4, 4))
    with nn.use_backend("reference"):
        assert nn.get_backend() is fastconv.reference
    assert nn.get_backend() is fastconv.functional
    block(x)
    clone = pickle.loads(pickle.dumps(block))
    assert clone.conv1.backend is fastconv.reference
    np.testing.assert_array_equal(clone.backward(np.ones((1, 2))),
                                  block.backward(np.ones((1, 2))))


# --------------------------------------------------------------------------- pickling (issue 18.5)

def _no_module_objects(obj, seen=None):
    """True when no Python module object is reachable from obj's attributes."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return True
    seen.add(id(obj))
    if isinstance(obj, types.ModuleType):
        return False
    if isinstance(obj, dict):
        return all(_no_module_objects(v, seen) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return all(_no_module_objects(v, seen) for v in obj)
    if isinstance(obj, nn.Module):
        return _no_module_objects(vars(obj), seen)
    return True


@pytest.mark.parametrize("copier", [copy.deepcopy, lambda m: pickle.loads(pickle.dumps(m))],
                         ids=["deepcopy", "pickle"])
def test_modules_copy_at_any_point(rng, copier):
    def make():
        r = np.random.default_rng(0)
        return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1, dtype=F64, rng=r),
                             nn.BatchNorm2d(4, dtype=F64), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Dropout(0.3, rng=1), nn.Flatten(),
                             nn.Linear(16, 3, dtype=F64, rng=r))

    net = make()
    x = rng.standard_normal((2, 2, 4, 4))
    copier(net)                                        # before any forward
    with nn.use_backend(fastconv.reference):
        y = net(x)
    assert _no_module_objects(net)
    clone = copier(net)                                # with pending caches
    g = rng.standard_normal(y.shape)
    np.testing.assert_array_equal(clone.backward(g), net.backward(g))
    for (name, a), (_, b) in zip(net.named_grads(), clone.named_grads()):
        np.testing.assert_array_equal(a, b, err_msg=name)
    clone2 = copier(net)                               # after backward
    np.testing.assert_array_equal(clone2(x), net(x))   # same dropout stream too


# --------------------------------------------------------------------------- load_state_dict (18.3)

def test_load_state_dict_validates_everything_before_writing():
    net = nn.Sequential(nn.Conv2d(1, 2, 3, dtype=F64, rng=0), nn.BatchNorm2d(2, dtype=F64),
                        nn.Flatten(), nn.Linear(2, 3, dtype=F64, rng=1))
    good = net.state_dict()
    new = {k: (v + 1 if v.dtype.kind == "f" else v) for k, v in good.items()}
    last = list(good)[-1]
    bad_values = [
        (dict(new, **{last: np.zeros(5)}), ValueError, "shape"),
        (dict(new, **{last: new[last] + 1j}), TypeError, "complex"),
        (dict(new, **{last: "weights"}), TypeError, "dtype"),
        (dict(new, **{last: None}), TypeError, "None"),
        (dict(new, **{last: new[last].astype(np.int64)}), TypeError, "float"),
        (dict(new, **{last: np.ma.masked_array(new[last])}), TypeError, "masked"),
        (dict(new, **{"1.num_batches_tracked": np.array(2.5)}), TypeError, "integer"),
        ({k: v for k, v in new.items() if k != last}, ValueError, "missing"),
    ]
    for state, error, match in bad_values:
        with pytest.raises(error, match=match):
            net.load_state_dict(state)
        for k, v in net.state_dict().items():
            np.testing.assert_array_equal(v, good[k], err_msg=f"{k} changed ({match})")
    net.load_state_dict({k: v.astype(np.float32) if v.dtype.kind == "f" else v
                         for k, v in new.items()})            # float32 is cast
    np.testing.assert_allclose(net[0].params["weight"], new["0.weight"], rtol=1e-6)
    partial = {"0.bias": np.zeros(2)}
    net.load_state_dict(partial, strict=False)
    assert not net[0].params["bias"].any()
    with pytest.raises(TypeError, match="mapping"):
        net.load_state_dict([("0.bias", np.zeros(2))])


# --------------------------------------------------------------------------- inputs (issue 18.9)

@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")   # np.matrix itself
def test_matrix_inputs_are_plain_arrays(rng):
    a = rng.standard_normal((3, 3))
    m, plain_grad = np.asmatrix(a), rng.standard_normal((3, 3))
    for layer in (nn.ReLU(), nn.LeakyReLU(0.2), nn.Tanh(), nn.Sigmoid(), nn.GELU(),
                  linear(3, 3)):
        twin = copy.deepcopy(layer)
        y = layer(m)
        assert type(y) is np.ndarray
        np.testing.assert_allclose(y, twin(a))
        np.testing.assert_allclose(layer.backward(np.asmatrix(plain_grad)),
                                   twin.backward(plain_grad))
    mse = nn.MSELoss()
    t = rng.standard_normal((3, 3))
    assert mse(m, np.asmatrix(t)) == pytest.approx(np.mean((a - t) ** 2))
    np.testing.assert_allclose(mse.backward(), 2 * (a - t) / 9)


def test_masked_arrays_are_refused(rng):
    x = np.ma.masked_array(rng.standard_normal((2, 3)), mask=[[1, 0, 0], [0, 0, 1]])
    for call in (lambda: nn.ReLU()(x), lambda: linear()(x), lambda: nn.MSELoss()(x, x.data),
                 lambda: nn.Conv1d(2, 1, 1, dtype=F64)(x[None]),
                 lambda: nn.CrossEntropyLoss()(x, np.array([0, 1]))):
        with pytest.raises(TypeError, match="masked"):
            call()


@pytest.mark.parametrize("make, shape", [
    (lambda: nn.Linear(4, 3, dtype=F64, rng=0), (2, 4)),
    (lambda: nn.Conv2d(2, 3, 3, padding=1, dtype=F64, rng=0), (2, 2, 4, 4)),
    (lambda: nn.ConvTranspose1d(2, 3, 3, stride=2, dtype=F64, rng=0), (2, 2, 4)),
    (lambda: nn.PReLU(2, dtype=F64), (2, 2, 3)),
    (lambda: nn.GELU(), (2, 5)),
    (lambda: nn.ELU(), (2, 5)),
    (lambda: nn.BatchNorm1d(2, dtype=F64), (4, 2)),
    (lambda: nn.Softmax(dim=1), (2, 5)),
    (lambda: nn.LogSoftmax(dim=0), (2, 5)),
    (lambda: nn.MaxPool1d(2), (1, 2, 4)),
], ids=["linear", "conv2d", "convT1d", "prelu", "gelu", "elu", "bn", "softmax",
        "logsoftmax", "maxpool"])
def test_editing_input_or_output_before_backward_changes_nothing(rng, make, shape):
    layer, twin = make(), make()
    x = rng.standard_normal(shape)
    y = layer(x)
    twin(x.copy())
    x[...] = 7.0                                     # the caller reuses its buffers
    y[...] = -3.0
    g = rng.standard_normal(y.shape)
    np.testing.assert_allclose(layer.backward(g), twin.backward(g), rtol=1e-13)
    for (name, a), (_, b) in zip(layer.named_grads(), twin.named_grads()):
        np.testing.assert_allclose(a, b, rtol=1e-13, err_msg=name)


# --------------------------------------------------------------------------- summary

def lenet():
    r = np.random.default_rng(0)
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, rng=r), nn.Tanh(), nn.AvgPool2d(2),
        nn.Conv2d(6, 16, 5, rng=r), nn.Tanh(), nn.AvgPool2d(2),
        nn.Flatten(), nn.Linear(400, 120, rng=r), nn.Tanh(), nn.Linear(120, 84, rng=r),
        nn.Tanh(), nn.Linear(84, 10, rng=r))


def test_summary_of_lenet_matches_hand_computation():
    net = lenet()
    net.train()
    out = io.StringIO()
    result = fastconv.summary(net, (1, 1, 32, 32), file=out)
    rows = {r["name"]: r for r in result.rows}
    # (output shape, params, multiply-adds, receptive field, jump), by hand:
    # conv 6@5x5: 6*25+6 params, 6*28*28 outputs of 25 taps; r = 1 + 4*1, j = 1
    # pool 2/2: r = 5 + 1*1 = 6, j = 2; conv 16@5x5: 16*6*25+16 params,
    # 16*10*10 outputs of 6*25 taps, r = 6 + 4*2 = 14; pool: r = 14 + 1*2 = 16, j = 4
    expected = {
        "0": ((1, 6, 28, 28), 156, 117600, (5, 5), (1, 1)),
        "2": ((1, 6, 14, 14), 0, 0, (6, 6), (2, 2)),
        "3": ((1, 16, 10, 10), 2416, 240000, (14, 14), (2, 2)),
        "5": ((1, 16, 5, 5), 0, 0, (16, 16), (4, 4)),
        "7": ((1, 120), 48120, 48000, (32, 32), (4, 4)),
        "9": ((1, 84), 10164, 10080, (32, 32), (4, 4)),
        "11": ((1, 10), 850, 840, (32, 32), (4, 4)),
    }
    for name, (shape, params, macs, field, jump) in expected.items():
        r = rows[name]
        assert (r["output_shape"], r["params"], r["mult_adds"], r["receptive_field"],
                r["jump"]) == (shape, params, macs, field, jump), name
    assert len(result.rows) == 12
    assert result.total_params == 61706
    assert result.total_mult_adds == 416520
    text = out.getvalue()
    assert "61,706" in text and "416,520" in text and "16x16" in text
    assert net.training and all(m.training for m in net.modules())   # modes restored
    assert all("forward" not in vars(m) for m in net.modules())       # hooks removed
    assert not any(m._pending for m in net.modules())


def test_summary_of_branches_and_shared_layers():
    shared = nn.Conv2d(4, 4, 3, padding=1)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, rng=0),
                        nn.Residual(nn.Sequential(shared, nn.ReLU(), shared)),
                        nn.Concat(nn.Conv2d(4, 2, 1), nn.MaxPool2d(3, 1, 1)))
    result = fastconv.summary(net, (2, 1, 8, 8), file=io.StringIO())
    params = [r["params"] for r in result.rows]
    assert sum(params) == result.total_params == 40 + 148 + 10
    assert result.rows[-1]["output_shape"] == (2, 4, 8, 8)
    assert result.rows[3]["params"] == 0                        # shared: counted once
    assert result.rows[3]["receptive_field"] == (7, 7)          # 3 + 2 + 2
    assert result.rows[-1]["receptive_field"] == (9, 9)         # max-pool branch


# --------------------------------------------------------------------------- utils and init

def test_clip_grad_norm_and_value():
    a, b = linear(2, 2, 0), linear(2, 1, 1)
    for m, v in ((a, 3.0), (b, -4.0)):
        for _, g in m.parameters():
            g.fill(v)
    grads = [g.copy() for m in (a, b) for _, g in m.parameters()]
    norm = math.sqrt(sum((g ** 2).sum() for g in grads))
    total = nn.utils.clip_grad_norm_([a, b, a], max_norm=1.0)
    assert total == pytest.approx(norm)
    new = [g for m in (a, b) for _, g in m.parameters()]
    assert math.sqrt(sum((g ** 2).sum() for g in new)) == pytest.approx(1.0, rel=1e-5)
    assert nn.utils.clip_grad_norm_(a, 1e9) == pytest.approx(
        math.sqrt(sum((g ** 2).sum() for _, g in a.parameters())))
    for _, g in a.parameters():
        g[...] = [[5.0, -0.5], [0.2, -9]] if g.ndim == 2 else [3, -3]
    assert nn.utils.clip_grad_norm_(a.parameters(), 100, norm_type="inf") == 9.0
    nn.utils.clip_grad_value_(a, 1.0)
    np.testing.assert_array_equal(a.grads["weight"], [[1.0, -0.5], [0.2, -1.0]])
    with pytest.raises(TypeError, match="parameters"):
        nn.utils.clip_grad_norm_([1, 2], 1.0)
    b.grads["bias"][...] = np.inf
    with pytest.raises(RuntimeError, match="inf"):
        nn.utils.clip_grad_norm_(b, 1.0, error_if_nonfinite=True)


def test_init_functions():
    w = np.zeros((64, 32, 3, 3))
    fan_in, fan_out = 32 * 9, 64 * 9
    nn.init.kaiming_uniform_(w, a=0, nonlinearity="relu", rng=0)
    bound = math.sqrt(2) * math.sqrt(3 / fan_in)
    assert bound * 0.98 < np.abs(w).max() <= bound
    nn.init.kaiming_normal_(w, mode="fan_out", rng=0)
    assert w.std() == pytest.approx(math.sqrt(2) / math.sqrt(fan_out), rel=0.05)  # a=0
    nn.init.xavier_uniform_(w, gain=2.0, rng=1)
    assert np.abs(w).max() <= 2.0 * math.sqrt(6 / (fan_in + fan_out))
    nn.init.xavier_normal_(w, rng=1)
    assert w.std() == pytest.approx(math.sqrt(2 / (fan_in + fan_out)), rel=0.05)
    assert nn.init.constant_(w, 0.5) is w and (w == 0.5).all()
    assert not nn.init.zeros_(w).any() and (nn.init.ones_(w) == 1).all()
    assert nn.init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert nn.init.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))
    with pytest.raises(ValueError, match="nonlinearity"):
        nn.init.calculate_gain("swish")
    with pytest.raises(TypeError):
        nn.init.zeros_(np.zeros(3, np.int32))
