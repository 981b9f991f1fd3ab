"""The example networks of examples/ (ResNet, 1-D CNN, MobileNet, Inception,
Siamese, DCGAN, 3-D CNN): each trains on its --tiny setting and reports; with
torch installed, --torch trains the network's torch twin on the same batches
from the same weights, and its first-epoch losses must equal fastconv's.
Plus the pieces the examples define themselves (data, loss, blocks)."""
import importlib.util
import pathlib
import re

import numpy as np
import pytest

import fastconv
from fastconv import nn

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"
NEEDS = {"train_resnet": "sklearn", "train_conv1d": "mnist1d", "mobilenet": "sklearn",
         "inception": "sklearn", "siamese": "sklearn", "dcgan": "sklearn", "conv3d": None}


def load(name, monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))       # for `import _common`
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def losses(text, framework):
    """The numbers after 'loss' on the framework's epoch lines."""
    lines = [line for line in text.splitlines() if re.match(rf"{framework}\s+epoch", line)]
    return [float(v) for line in lines for v in re.findall(r"loss ([-\d.]+)", line)]


def run_tiny(name, monkeypatch, *flags):
    if NEEDS[name]:
        pytest.importorskip(NEEDS[name])
    return load(name, monkeypatch).main(["--tiny", "--threads", "1", "--seed", "1", *flags])


@pytest.mark.parametrize("name", sorted(NEEDS))
def test_example_trains_tiny(name, monkeypatch, capsys):
    result = run_tiny(name, monkeypatch)
    text = capsys.readouterr().out
    assert re.search(r"fastconv\s+final .*s/epoch over 1 epochs", text), text
    assert losses(text, "fastconv") and all(np.isfinite(losses(text, "fastconv")))
    accuracy = result.get("test_acc", result.get("d_accuracy"))
    assert 0 <= accuracy <= 1 and len(result["epoch_seconds"]) == 1
    assert "torch" not in text


@pytest.mark.parametrize("name", sorted(NEEDS))
def test_example_torch_twin_trains_alike(name, monkeypatch, capsys):
    pytest.importorskip("torch")
    result = run_tiny(name, monkeypatch, "--torch")
    text = capsys.readouterr().out
    assert re.search(r"torch\s+final .*s/epoch over 1 epochs", text), text
    assert len(result["torch_epoch_seconds"]) == 1
    # same network, same initial weights, same batches: the same losses
    np.testing.assert_allclose(losses(text, "torch"), losses(text, "fastconv"), rtol=1e-3)


def test_resnet_blocks(monkeypatch):
    example = load("train_resnet", monkeypatch)
    net = example.resnet(np.random.default_rng(0))
    residuals = [m for m in net.modules() if isinstance(m, nn.Residual)]
    assert len(residuals) == 4
    assert [r.shortcut is None for r in residuals] == [True, True, False, True]
    down = residuals[2].shortcut
    assert isinstance(down[0], nn.Conv2d) and down[0].kernel_size == (1, 1)
    assert down[0].stride == 2 and isinstance(down[1], nn.BatchNorm2d)
    with nn.no_grad():
        assert net(np.zeros((2, 1, 8, 8), np.float32)).shape == (2, 10)


def test_moving_shapes_move_in_their_direction(monkeypatch, rng):
    example = load("conv3d", monkeypatch)
    clips, labels = example.moving_shapes(40, rng, noise=0.0)
    assert clips.shape == (40, 1, 6, 12, 12) and clips.dtype == np.float32
    assert set(labels) == {0, 1, 2, 3}
    grid = np.indices((12, 12))
    for clip, label in zip(clips[:, 0], labels):
        mass = clip.sum(axis=(1, 2))
        assert np.all(mass == mass[0]) and mass[0] in (5, 9)     # whole shape in every frame
        centre = np.array([(clip * g).sum(axis=(1, 2)) for g in grid]) / mass
        np.testing.assert_allclose(np.diff(centre, axis=1),
                                   np.repeat(np.array(example.DIRECTIONS[label])[:, None],
                                             5, axis=1), atol=1e-5)


def test_siamese_pairs_and_contrastive_loss(monkeypatch, rng):
    example = load("siamese", monkeypatch)
    y = rng.integers(0, 4, 50)
    first, second, same = example.make_pairs(y, 200, rng)
    np.testing.assert_array_equal(same, (y[first] == y[second]).astype(np.float32))
    assert 0.3 < same.mean() < 0.7
    e1, e2 = rng.standard_normal((2, 6, 3)) * 0.4
    labels = np.array([1, 0, 1, 0, 0, 1], np.float64)
    loss = example.ContrastiveLoss()

    def f(a, b):
        return loss.forward(a, b, labels), lambda g: tuple(g * v for v in loss.backward())

    assert fastconv.gradcheck(f, e1, e2, eps=1e-6, atol=1e-7, rtol=1e-5)
    d = np.linalg.norm(e1 - e2, axis=1)
    gap = np.maximum(1 - d, 0)
    assert loss.forward(e1, e2, labels) == pytest.approx(
        np.mean(labels * d ** 2 + (1 - labels) * gap ** 2) / 2)


def test_dcgan_shapes(monkeypatch):
    example = load("dcgan", monkeypatch)
    r = np.random.default_rng(0)
    G, D = example.generator(r), example.discriminator(r)
    with nn.no_grad():
        images = G(np.zeros((3, example.CODE, 1, 1), np.float32))
        assert images.shape == (3, 1, 8, 8) and np.abs(images).max() <= 1
        assert D(images).shape == (3, 1)
