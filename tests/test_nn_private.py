"""Private intermediates (issue 15): containers let a layer keep a network's
intermediate arrays for backward without a copy, and every gradient stays
bit-identical to the copy-everything rule, whatever the user does with what
they passed or received, and whatever in-place or unknown modules do.

The oracle of every test is the same network with no privacy granted (each
layer copies what it keeps, as before issue 15) run without any edits."""
import copy

import numpy as np
import pytest

from fastconv import nn
from fastconv.bench import nets
from fastconv.nn import module as nn_module

F64 = np.float64


@pytest.fixture
def copies_everywhere(monkeypatch):
    """Within the test: no container grants privacy (the rule before issue 15)."""
    def off():
        monkeypatch.setattr(nn.Module, "_privacy", lambda self, x: (False, False))
    return off


def conv(cin=2, cout=2, seed=0, **kw):
    return nn.Conv2d(cin, cout, 3, padding=1, dtype=F64, rng=seed, **kw)


# --------------------------------------------------------------------------- user modules

class DoubleInPlace(nn.Module):
    """A user's module that writes into its input (and returns it)."""

    def forward(self, x):
        x *= 2
        self._save(None, x)
        return x

    def backward(self, grad_output):
        _, g = self._restore(grad_output)
        return g * 2


class PassThrough(nn.Module):
    """A user's module that returns its input itself."""

    def forward(self, x):
        self._save(None, x)
        return x

    def backward(self, grad_output):
        _, g = self._restore(grad_output)
        return g


class ViewClaimingPure(nn.Module):
    """Claims to be pure but keeps its input and returns a view of it, as a
    backend returning views would: y = x, whose 'gradient' g * x reads the
    kept input (so a changed kept input shows)."""
    _pure = True

    def forward(self, x):
        self._save(self._private_copy(x), x)
        return x.reshape(x.shape)

    def backward(self, grad_output):
        x, g = self._restore(grad_output)
        return g * x


# --------------------------------------------------------------------------- harness

def _run(net, x, g_seed=3, edit=None):
    """forward, `edit(x, y)` (the user's in-place edits), backward: the input
    gradient and every parameter gradient, as copies."""
    net.zero_grad()
    y = net(x)
    g = np.random.default_rng(g_seed).standard_normal(np.shape(y))
    if edit is not None:
        edit(x, y)
    gx = net.backward(g)
    return [np.array(gx)] + [np.array(gr) for _, gr in net.named_grads()]


def _edit_both(x, y):
    x *= -3.0
    y[...] = 7.0


NETS = {
    "relu-last": lambda: nn.Sequential(conv(), nn.ReLU()),
    "inplace-relu-last": lambda: nn.Sequential(conv(), nn.ReLU(inplace=True)),
    "inplace-relu-between": lambda: nn.Sequential(
        conv(), nn.BatchNorm2d(2, dtype=F64), nn.ReLU(inplace=True), conv(seed=1), nn.Tanh()),
    "inplace-relu-first": lambda: nn.Sequential(nn.ReLU(inplace=True), conv()),
    "inplace-saving-input-between": lambda: nn.Sequential(
        conv(), nn.ELU(inplace=True), conv(seed=1), nn.Sigmoid(),
        nn.LeakyReLU(0.1, inplace=True), conv(seed=2)),
    "nested-last": lambda: nn.Sequential(conv(), nn.Sequential(nn.ReLU(), nn.Sigmoid())),
    "nested-inplace-first": lambda: nn.Sequential(
        conv(), nn.Tanh(), nn.Sequential(nn.ReLU(inplace=True), conv(seed=1))),
    "identity-flatten-dropout": lambda: nn.Sequential(
        conv(), nn.Identity(), nn.ReLU(inplace=True), nn.Dropout(p=0.0), nn.Flatten(),
        nn.Sigmoid(), nn.Linear(32, 3, dtype=F64, rng=1), nn.Softmax(dim=1)),
    "residual-identity": lambda: nn.Sequential(
        conv(), nn.ReLU(), nn.Residual(nn.Sequential(conv(seed=1), nn.BatchNorm2d(2, dtype=F64))),
        nn.ReLU()),
    "residual-first-input": lambda: nn.Residual(nn.Sequential(conv(), nn.Tanh())),
    "residual-inplace-shortcut": lambda: nn.Sequential(
        conv(), nn.Residual(nn.Sequential(conv(seed=1), nn.Tanh()),
                            shortcut=nn.ReLU(inplace=True)), nn.Sigmoid()),
    "residual-inplace-body": lambda: nn.Sequential(
        conv(), nn.Residual(nn.Sequential(nn.ReLU(inplace=True), conv(seed=1))), nn.ReLU()),
    "concat-inplace-branch": lambda: nn.Sequential(
        conv(), nn.Tanh(), nn.Concat(conv(seed=1), nn.Tanh(), nn.ReLU(inplace=True))),
    "user-writes-input": lambda: nn.Sequential(conv(), nn.Tanh(), DoubleInPlace(), conv(seed=1)),
    "user-returns-input": lambda: nn.Sequential(conv(), nn.Sigmoid(), PassThrough()),
    "user-returns-input-then-inplace": lambda: nn.Sequential(
        conv(), PassThrough(), nn.ReLU(inplace=True), conv(seed=1), nn.Sigmoid(),
        PassThrough()),
    "pure-claim-returns-view": lambda: nn.Sequential(
        conv(), ViewClaimingPure(), nn.ReLU(inplace=True), ViewClaimingPure()),
}


def _shared_weights():
    lin = nn.Linear(4, 4, dtype=F64, rng=0)
    return nn.Sequential(lin, nn.Tanh(), lin, nn.Sigmoid(), lin)


NETS["shared-weights"] = _shared_weights


def _input(name, seed=1):
    shape = (3, 4) if name == "shared-weights" else (2, 2, 4, 4)
    return np.random.default_rng(seed).standard_normal(shape)


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("name", sorted(NETS))
def test_gradients_match_copies_everywhere_despite_user_edits(name, training,
                                                              copies_everywhere):
    """Editing the input and the returned output in place before backward
    changes no gradient, bit for bit, with privacy on (in eval mode too:
    Dropout and BatchNorm take their other paths)."""
    net = NETS[name]().train(training)
    oracle_net = copy.deepcopy(net)
    got = _run(net, _input(name), edit=_edit_both)
    copies_everywhere()
    expected = _run(oracle_net, _input(name))
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("case", nets.QUICK_NET_CASES, ids=lambda c: c.name)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bench_nets_train_bit_identical(case, dtype, copies_everywhere):
    """Two training steps of every benchmark network (loss and gradients)
    are bit-identical with and without privacy."""
    def steps():
        state = nets.fastconv_state(case.make_inputs(dtype, "train"))
        step = nets.fastconv_pass("train")
        return [step(state) for _ in range(2)]

    got = steps()
    copies_everywhere()
    expected = steps()
    for (loss, grads), (loss_ref, grads_ref) in zip(got, expected):
        assert np.array_equal(loss, loss_ref)
        assert all(np.array_equal(a, b) for a, b in zip(grads, grads_ref))


def _kept_arrays(layer):
    """The arrays a layer's newest pending forward keeps."""
    ctx = layer._pending[-1][0]
    items = ctx if isinstance(ctx, tuple) else (ctx,)
    return [a for a in items if isinstance(a, np.ndarray)]


class _OwnReLU(nn.ReLU):
    """A user's ReLU subclass: never fused with the BatchNorm before it."""


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "unfused"])
def test_intermediates_kept_once_without_copies(fused):
    """conv - BN - ReLU - conv: the ReLU (fused into the BatchNorm: the
    BatchNorm, as the ReLU's mask) keeps its output and the next conv keeps
    the very same array; the first conv still copies the user's input, and
    nothing keeps the returned output."""
    c1, bn, c2 = conv(), nn.BatchNorm2d(2, dtype=F64), conv(seed=1)
    relu = nn.ReLU() if fused else _OwnReLU()
    x = _input("")
    y = nn.Sequential(c1, bn, relu, c2)(x)
    relu_saved, c2_kept = (_kept_arrays(bn)[-1] if fused else _kept_arrays(relu)[0],
                           _kept_arrays(c2))
    assert _kept_arrays(relu) == ([] if fused else [relu_saved])
    assert relu_saved is c2_kept[0]
    assert not np.shares_memory(_kept_arrays(c1)[0], x)
    for layer in (c1, bn, relu, c2):
        assert not any(np.shares_memory(a, y) for a in _kept_arrays(layer))


def test_no_copy_of_a_users_array_and_none_outside_containers():
    """A layer called directly (no container) copies what it keeps."""
    relu, c = nn.ReLU(), conv()
    x = _input("")
    y = relu(x)
    c(y)
    assert not np.shares_memory(_kept_arrays(relu)[0], y)
    assert not np.shares_memory(_kept_arrays(c)[0], y)


def test_user_module_passes_no_privacy_to_its_layers():
    """A user's module calling its own layers grants nothing: a layer it
    calls after an in-place write still sees its own copy."""
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.c, self.act = conv(), nn.ReLU(inplace=True)

        def forward(self, x):
            y = self.c(x)
            self.act(x)          # writes into x after c kept it
            return y

        def backward(self, g):
            return self.c.backward(g)

    net = nn.Sequential(conv(seed=2), Block())
    oracle = copy.deepcopy(net)
    x = _input("")
    assert all(np.array_equal(a, b) for a, b in zip(_run(net, x), _run(oracle, _input(""))))


def test_no_grad_keeps_nothing_and_gives_the_same_output():
    net = NETS["inplace-relu-between"]()
    x = _input("")
    expected = copy.deepcopy(net)(x)
    with nn.no_grad():
        y = net(x)
    assert np.array_equal(y, expected)
    assert all(not m._pending for m in net.modules())


@pytest.mark.parametrize("layer, pure", [
    (nn.ReLU(), True), (nn.ReLU(inplace=True), False), (nn.RReLU(inplace=True), True),
    (nn.MaxPool2d(2), True), (nn.MaxPool2d(2, return_indices=True), False),
    (nn.Sequential(), False), (nn.Sequential(nn.ReLU(), nn.ReLU(inplace=True)), False),
    (nn.Residual(nn.ReLU(), nn.Tanh()), True), (nn.Residual(nn.ReLU(), PassThrough()), False),
    (nn.Concat(nn.ReLU(), nn.Tanh()), True), (nn.Concat(nn.ReLU(), PassThrough()), False),
    (PassThrough(), False), (nn.Identity(), True)])
def test_purity_of_layers_and_containers(layer, pure):
    assert layer._is_pure() is pure


def test_grant_is_for_one_call_of_one_module():
    """Outside the child's call (and for any other module) nothing is granted."""
    relu = nn.ReLU()
    x = _input("")
    seen = {}

    class Spy(nn.Module):
        _pure = True

        def forward(self, x):
            seen["self"] = self._privacy(x)
            seen["other"] = relu._privacy(x)
            return x + 1

    nn_module.call_granting(Spy(), x, True, True)
    assert seen == {"self": (True, True), "other": (False, False)}
    assert relu._privacy(x) == (False, False)


def test_mobilenet_step_copies_only_the_users_arrays(monkeypatch):
    """In a training step of the benchmark's MobileNet the only arrays copied
    for backward are the user's: the input batch (first convolution) and the
    logits the loss reads; no activation writes a second array."""
    from fastconv.functional import _activation
    from fastconv.nn import activation
    copied = []

    def counted_copy(x, _copy=nn_module.fresh_copy):
        copied.append(np.shape(x))
        return _copy(x)

    def counted_keeping(op, x, _keeping=_activation.forward_keeping, **kwargs):
        copied.append(("forward_keeping", op))
        return _keeping(op, x, **kwargs)

    case = next(c for c in nets.QUICK_NET_CASES if c.name == "q-mobilenet")
    state = nets.fastconv_state(case.make_inputs(np.float32, "train"))
    step = nets.fastconv_pass("train")
    step(state)
    monkeypatch.setattr(nn_module, "fresh_copy", counted_copy)
    monkeypatch.setattr(activation, "fresh_copy", counted_copy)
    monkeypatch.setattr(_activation, "forward_keeping", counted_keeping)
    step(state)
    assert copied == [case.x, (case.x[0], nets.CLASSES)]
