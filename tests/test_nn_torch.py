"""fastconv.nn against torch.nn (PyTorch 2.13, float64): every layer's
forward, input gradient, parameter gradients and buffers; every loss with its
options and reductions; a whole ResNet-style network with shared and nested
modules against autograd, over two accumulating steps. Skipped without torch
(the CI stage `.ci/extra torch` installs it)."""
import numpy as np
import pytest

from fastconv import nn
from fastconv.bench.torch_twin import to_torch
from nn_specs import CASES, F64

torch = pytest.importorskip("torch")
T = torch.nn
TOL = dict(rtol=1e-10, atol=1e-12)


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


# --------------------------------------------------------------------------- the torch twin

def _twin_nets():
    """Small float64 networks over the layers the examples use."""
    r = np.random.default_rng(11)
    k = dict(dtype=F64, rng=r)
    conv1d = nn.Sequential(nn.Conv1d(2, 4, 3, padding=1, bias=False, **k),
                           nn.BatchNorm1d(4, dtype=F64), nn.ReLU(), nn.MaxPool1d(2),
                           nn.Conv1d(4, 4, 3, dilation=2, **k), nn.Flatten(),
                           nn.Linear(4 * 2, 3, **k))
    conv3d = nn.Sequential(nn.Conv3d(1, 3, 3, padding=1, **k), nn.BatchNorm3d(3, dtype=F64),
                           nn.ELU(), nn.MaxPool3d(2), nn.Conv3d(3, 2, 1, **k),
                           nn.AvgPool3d(2), nn.Flatten())
    separable = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1, groups=4, bias=False, **k),
                              nn.BatchNorm2d(4, dtype=F64), nn.ReLU(), nn.Conv2d(4, 6, 1, **k))
    mobile_inception = nn.Sequential(
        nn.Residual(nn.Sequential(nn.Conv2d(4, 4, 3, padding=1, groups=2, **k), nn.SiLU())),
        nn.Concat(separable, nn.Sequential(nn.MaxPool2d(3, 1, 1), nn.Conv2d(4, 2, 1, **k))),
        nn.LeakyReLU(0.2), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.5),
        nn.Linear(8, 2, **k)).eval()
    generator = nn.Sequential(nn.ConvTranspose2d(3, 4, 2, bias=False, **k),
                              nn.BatchNorm2d(4, dtype=F64), nn.ReLU(),
                              nn.ConvTranspose2d(4, 2, 4, stride=2, padding=1, **k),
                              nn.ConvTranspose2d(2, 1, 3, stride=2, output_padding=1, **k),
                              nn.Tanh())
    return {"conv1d": (conv1d, (3, 2, 13)), "conv3d": (conv3d, (2, 1, 4, 4, 4)),
            "mobile_inception": (mobile_inception, (2, 4, 5, 5)),
            "generator": (generator, (3, 3, 1, 1))}


@pytest.mark.parametrize("name", sorted(_twin_nets()))
def test_torch_twin_of_networks_matches(rng, name):
    ours, shape = _twin_nets()[name]
    theirs = to_torch(ours)
    assert next(theirs.parameters()).dtype == torch.float64
    assert_same_step(ours, theirs, rng.standard_normal(shape), rng)


def test_torch_twin_keeps_float32_and_sharing(rng):
    shared = nn.Linear(3, 3, rng=0)
    ours = nn.Sequential(shared, nn.Tanh(), shared)
    theirs = to_torch(ours)
    assert theirs[0] is theirs[2] and theirs[0].weight.dtype == torch.float32
    x = rng.standard_normal((2, 3)).astype(np.float32)
    np.testing.assert_allclose(ours(x), theirs(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-5, atol=1e-6)


def test_torch_twin_names_what_it_cannot_convert():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 1, 1)

    with pytest.raises(TypeError, match=r"no torch.nn twin for 1\.body \(Block\).*custom="):
        to_torch(nn.Sequential(nn.ReLU(), nn.Residual(Block())))
    with pytest.raises(TypeError, match=r"the model \(Add\)"):
        to_torch(nn.Add())
    with pytest.raises(TypeError, match="fastconv.nn Module"):
        to_torch(T.ReLU())


@pytest.mark.parametrize("make, shape, output_size", [
    (lambda: nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1, dtype=F64, rng=0), (2, 3, 4, 4),
     (8, 7)),
    (lambda: nn.ConvTranspose1d(2, 2, 2, stride=3, dilation=2, dtype=F64, rng=0), (1, 2, 3),
     (1, 2, 10)),
])
def test_transposed_conv_output_size_matches_torch(rng, make, shape, output_size):
    ours = make()
    theirs = to_torch(ours)
    x = rng.standard_normal(shape)
    xt = torch.tensor(x, requires_grad=True)
    y, yt = ours(x, output_size=output_size), theirs(xt, output_size=list(output_size))
    np.testing.assert_allclose(y, yt.detach().numpy(), **TOL)
    g = rng.standard_normal(y.shape)
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(ours.backward(g), xt.grad.numpy(), **TOL)
    np.testing.assert_allclose(ours.grads["weight"], theirs.weight.grad.numpy(), **TOL)
    with pytest.raises(ValueError, match="output_size"):
        ours(x, output_size=tuple(s + 5 for s in output_size))
