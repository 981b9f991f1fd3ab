"""fastconv.nn against torch.nn (PyTorch 2.13, float64): every layer's
forward, input gradient, parameter gradients and buffers; every loss with its
options and reductions; a whole ResNet-style network with shared and nested
modules against autograd, over two accumulating steps. Skipped without torch
(the CI stage `.ci/extra torch` installs it)."""
import collections

import numpy as np
import pytest

from fastconv import nn
from nn_specs import CASES, F64

torch = pytest.importorskip("torch")
T = torch.nn
TOL = dict(rtol=1e-10, atol=1e-12)


class TorchResidual(T.Module):
    def __init__(self, body, shortcut):
        super().__init__()
        self.body, self.shortcut = body, shortcut

    def forward(self, x):
        return self.body(x) + (x if self.shortcut is None else self.shortcut(x))


class TorchConcat(T.Module):
    def __init__(self, branches, dim):
        super().__init__()
        for i, b in enumerate(branches):
            self.add_module(str(i), b)
        self.dim = dim

    def forward(self, x):
        return torch.cat([b(x) for b in self._modules.values()], dim=self.dim)


def _leaf(m):
    """The torch.nn twin of a fastconv.nn leaf layer (same arguments)."""
    name = type(m).__name__
    cls = getattr(T, name)
    if name.startswith("ConvTranspose"):
        return cls(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding,
                   m.output_padding, m.groups, "bias" in m.params, m.dilation)
    if name.startswith("Conv"):
        return cls(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding,
                   m.dilation, m.groups, "bias" in m.params)
    if name.startswith("MaxPool"):
        return cls(m.kernel_size, m.stride, m.padding, m.dilation, ceil_mode=m.ceil_mode)
    if name == "AvgPool1d":
        return cls(m.kernel_size, m.stride, m.padding, m.ceil_mode, m.count_include_pad)
    if name.startswith("AvgPool"):
        return cls(m.kernel_size, m.stride, m.padding, m.ceil_mode, m.count_include_pad,
                   m.divisor_override)
    if name.startswith("BatchNorm"):
        return cls(m.num_features, m.eps, m.momentum, m.affine, m.track_running_stats)
    simple = {
        "AdaptiveAvgPool2d": lambda: (m.output_size,), "Linear": lambda: (
            m.in_features, m.out_features, "bias" in m.params),
        "Flatten": lambda: (m.start_dim, m.end_dim), "Dropout": lambda: (m.p,),
        "LeakyReLU": lambda: (m.negative_slope,), "PReLU": lambda: (m.num_parameters,),
        "RReLU": lambda: (m.lower, m.upper), "ELU": lambda: (m.alpha,),
        "GELU": lambda: (m.approximate,), "Softmax": lambda: (m.dim,),
        "LogSoftmax": lambda: (m.dim,),
    }
    return cls(*simple.get(name, tuple)())


def to_torch(module, custom=None):
    """A float64 torch.nn twin of a fastconv.nn module tree, with the same
    parameters, buffers and modes; a module shared in ours is shared there."""
    memo = {}

    def convert(m):
        if id(m) not in memo:
            if custom and type(m) in custom:
                memo[id(m)] = custom[type(m)](m, convert)
            elif isinstance(m, nn.Sequential):
                memo[id(m)] = T.Sequential(collections.OrderedDict(
                    (n, convert(c)) for n, c in m._modules.items()))
            elif isinstance(m, nn.Residual):
                memo[id(m)] = TorchResidual(convert(m.body), None if m.shortcut is None
                                            else convert(m.shortcut))
            elif isinstance(m, nn.Concat):
                memo[id(m)] = TorchConcat([convert(b) for b in m._modules.values()], m.dim)
            else:
                memo[id(m)] = _leaf(m)
        return memo[id(m)]

    theirs = convert(module).double()
    theirs.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in
                            module.state_dict().items()})
    for ours_m, name in ((m, n) for n, m in module.named_modules()):
        theirs.get_submodule(name).train(ours_m.training)
    return theirs


def assert_same_step(ours, theirs, x, rng):
    """forward, input gradient, parameter gradients and buffers agree."""
    xt = torch.tensor(x, requires_grad=True)
    y, yt = ours(x), theirs(xt)
    np.testing.assert_allclose(y, yt.detach().numpy(), **TOL)
    g = rng.standard_normal(y.shape)
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(ours.backward(g), xt.grad.numpy(), **TOL)
    grads = dict(ours.named_grads())
    assert [n for n, _ in theirs.named_parameters()] == list(grads)
    for name, p in theirs.named_parameters():
        np.testing.assert_allclose(grads[name], p.grad.numpy(), **TOL, err_msg=name)
    state = ours.state_dict()
    assert set(state) == set(theirs.state_dict())
    for name, b in theirs.named_buffers():
        np.testing.assert_allclose(state[name], b.numpy(), **TOL, err_msg=name)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_layer_matches_torch(rng, case):
    ours = case.layer()
    assert_same_step(ours, to_torch(ours), case.input(rng), rng)


def test_init_matches_torch_statistics():
    """Default init: same bounds as PyTorch (drawn from our own generator)."""
    for ours, theirs in [(nn.Conv1d(4, 32, 5, groups=2, rng=0), T.Conv1d(4, 32, 5, groups=2)),
                         (nn.ConvTranspose3d(4, 32, 2, rng=0), T.ConvTranspose3d(4, 32, 2)),
                         (nn.PReLU(3), T.PReLU(3)), (nn.BatchNorm1d(3), T.BatchNorm1d(3))]:
        for name, p in theirs.named_parameters():
            t = p.detach().numpy()
            assert ours.params[name].shape == t.shape
            np.testing.assert_allclose(np.abs(ours.params[name]).max(), np.abs(t).max(),
                                       rtol=0.15, atol=1e-12)


def _labels(rng, n, c, shape, ignore=None):
    t = rng.integers(0, c, shape)
    if ignore is not None:
        t.reshape(-1)[::3] = ignore
    return t


LOSSES = [
    ("ce", "CrossEntropyLoss", {}, (5, 4), "labels"),
    ("ce-options", "CrossEntropyLoss", dict(weight=[1.0, 2.0, 0.5, 1.5], ignore_index=1,
                                            label_smoothing=0.2), (5, 4), "labels"),
    ("ce-spatial", "CrossEntropyLoss", dict(weight=[1.0, 2.0, 0.5], label_smoothing=0.1),
     (3, 3, 2, 4), "labels"),
    ("ce-ignore-neg", "CrossEntropyLoss", {}, (6, 3), "ignored"),
    ("ce-probs", "CrossEntropyLoss", dict(weight=[1.0, 2.0, 0.5, 1.5], label_smoothing=0.3),
     (5, 4), "probs"),
    ("ce-unbatched", "CrossEntropyLoss", {}, (4,), "labels"),
    ("nll", "NLLLoss", dict(weight=[1.0, 2.0, 0.5, 1.5], ignore_index=3), (6, 4), "labels"),
    ("nll-spatial", "NLLLoss", {}, (2, 3, 5), "labels"),
    ("bce", "BCELoss", dict(weight=[1.0, 2.0, 0.5, 1.5]), (3, 4), "unit"),
    ("bce-logits", "BCEWithLogitsLoss", dict(weight=[1.0, 2.0, 0.5, 1.5],
                                             pos_weight=[1.0, 3.0, 0.5, 2.0]), (3, 4), "unit"),
    ("mse", "MSELoss", {}, (3, 4, 2), "real"),
    ("l1", "L1Loss", {}, (3, 4), "real"),
    ("smoothl1", "SmoothL1Loss", dict(beta=0.5), (3, 4), "real"),
    ("smoothl1-beta0", "SmoothL1Loss", dict(beta=0.0), (3, 4), "real"),
]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("case", LOSSES, ids=[c[0] for c in LOSSES])
def test_loss_matches_torch(rng, case, reduction):
    _, name, kwargs, shape, kind = case
    x = rng.standard_normal(shape)
    if kind in ("labels", "ignored"):
        c = shape[0] if len(shape) == 1 else shape[1]
        per = () if len(shape) == 1 else (shape[0],) + shape[2:]
        t = _labels(rng, None, c, per, -100 if kind == "ignored" else None)
        if name == "NLLLoss":
            x = x - np.log(np.exp(x).sum(axis=1, keepdims=True))
    elif kind == "probs":
        t = rng.dirichlet(np.ones(shape[1]), shape[0])
    elif kind == "unit":
        t = rng.uniform(0, 1, shape)
        if name == "BCELoss":
            x = rng.uniform(0.02, 0.98, shape)
    else:
        t = rng.standard_normal(shape)
    ours = getattr(nn, name)(**{k: np.array(v) if isinstance(v, list) else v
                                for k, v in kwargs.items()}, reduction=reduction)
    theirs = getattr(T, name)(**{k: torch.tensor(v, dtype=torch.float64)
                                 if isinstance(v, list) else v for k, v in kwargs.items()},
                              reduction=reduction)
    xt = torch.tensor(x, requires_grad=True)
    lt = theirs(xt, torch.tensor(t))
    value = ours(x, t)
    if reduction == "none":
        np.testing.assert_allclose(value, lt.detach().numpy(), **TOL)
        g = rng.standard_normal(value.shape)
        grad = ours.backward(g)
        lt.backward(torch.tensor(g))
    else:
        assert isinstance(value, float)
        np.testing.assert_allclose(value, lt.item(), **TOL)
        grad = ours.backward(1.7)
        (lt * 1.7).backward()
    np.testing.assert_allclose(grad, xt.grad.numpy(), **TOL)


def test_clip_grad_norm_matches_torch(rng):
    ours = nn.Sequential(nn.Linear(3, 4, dtype=F64, rng=0), nn.Linear(4, 2, dtype=F64, rng=1))
    theirs = to_torch(ours)
    for norm_type in (2.0, 1.0, float("inf")):
        for (_, g), p in zip(ours.named_grads(), theirs.parameters()):
            g[...] = rng.standard_normal(g.shape)
            p.grad = torch.tensor(g.copy())
        total = nn.utils.clip_grad_norm_(ours, 0.5, norm_type)
        expected = T.utils.clip_grad_norm_(theirs.parameters(), 0.5, norm_type)
        assert total == pytest.approx(float(expected), rel=1e-12)
        for (_, g), p in zip(ours.named_grads(), theirs.parameters()):
            np.testing.assert_allclose(g, p.grad.numpy(), rtol=1e-12)


# --------------------------------------------------------------------------- a whole network

class Stage(nn.Module):
    """A user's nested block: one residual block (and one ReLU) applied twice."""

    def __init__(self, channels, rng):
        super().__init__()
        self.block = nn.Residual(nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False, dtype=F64, rng=rng),
            nn.BatchNorm2d(channels, dtype=F64), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False, dtype=F64, rng=rng),
            nn.BatchNorm2d(channels, dtype=F64)))
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.block(self.act(self.block(x))))

    def backward(self, g):
        return self.block.backward(self.act.backward(self.block.backward(
            self.act.backward(g))))


class TorchStage(T.Module):
    def __init__(self, block, act):
        super().__init__()
        self.block, self.act = block, act

    def forward(self, x):
        return self.act(self.block(self.act(self.block(x))))


def small_resnet():
    r = np.random.default_rng(7)
    conv = lambda *a, **k: nn.Conv2d(*a, dtype=F64, rng=r, **k)   # noqa: E731
    bn = lambda c: nn.BatchNorm2d(c, dtype=F64)                   # noqa: E731
    shared_head = conv(16, 4, 1)
    return nn.Sequential(
        conv(3, 8, 3, padding=1), bn(8), nn.ReLU(),
        Stage(8, r),
        nn.Residual(nn.Sequential(conv(8, 16, 3, stride=2, padding=1, bias=False), bn(16),
                                  nn.ReLU(), conv(16, 16, 3, padding=1, bias=False), bn(16)),
                    nn.Sequential(conv(8, 16, 1, stride=2, bias=False), bn(16))),
        nn.ReLU(),
        nn.Concat(shared_head, nn.Sequential(nn.MaxPool2d(3, 1, 1), shared_head),
                  conv(16, 2, 1)),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(10, 5, dtype=F64, rng=r))


def test_resnet_with_shared_and_nested_modules_matches_autograd(rng):
    ours = small_resnet()
    theirs = to_torch(ours, custom={Stage: lambda m, convert: TorchStage(convert(m.block),
                                                                           convert(m.act))})
    loss, tloss = nn.CrossEntropyLoss(), T.CrossEntropyLoss()
    for step in range(2):                  # no zero_grad: both accumulate
        x = rng.standard_normal((4, 3, 8, 8))
        labels = rng.integers(0, 5, 4)
        xt = torch.tensor(x, requires_grad=True)
        lt = tloss(theirs(xt), torch.tensor(labels))
        lt.backward()
        value = loss(ours(x), labels)
        assert value == pytest.approx(lt.item(), rel=1e-10)
        np.testing.assert_allclose(ours.backward(loss.backward()), xt.grad.numpy(), **TOL)
    grads = dict(ours.named_grads())
    assert [n for n, _ in theirs.named_parameters()] == list(grads)
    for name, p in theirs.named_parameters():
        np.testing.assert_allclose(grads[name], p.grad.numpy(), **TOL, err_msg=name)
    state = ours.state_dict()
    for name, b in theirs.named_buffers():
        np.testing.assert_allclose(state[name], b.numpy(), **TOL, err_msg=name)
    assert not any(m._pending for m in ours.modules())


def test_state_dict_round_trips_with_torch(rng):
    ours = small_resnet()
    theirs = to_torch(ours, custom={Stage: lambda m, convert: TorchStage(convert(m.block),
                                                                           convert(m.act))})
    with torch.no_grad():
        for p in theirs.parameters():
            p.add_(torch.tensor(rng.standard_normal(tuple(p.shape))))
    ours.load_state_dict(theirs.state_dict())          # torch tensors, float64
    for name, value in theirs.state_dict().items():
        np.testing.assert_array_equal(ours.state_dict()[name], value.numpy(), err_msg=name)
