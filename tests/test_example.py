"""examples/train_digits.py: IDX/npz parsing on files written here, and tiny
smoke runs of the training script (1 epoch on a few images)."""
import gzip
import importlib.util
import pathlib
import struct

import numpy as np
import pytest

import fastconv

EXAMPLE = pathlib.Path(__file__).resolve().parents[1] / "examples" / "train_digits.py"
HAS_POOL = hasattr(fastconv.functional, "max_pool2d") and hasattr(fastconv.reference,
                                                                  "max_pool2d")
needs_pool = pytest.mark.skipif(
    not HAS_POOL, reason="the example's networks use MaxPool2d, whose op "
    "fastconv.functional.max_pool2d has not landed on this branch yet")


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("train_digits", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_idx(path, array, code, compress=False):
    """An IDX file as LeCun describes it (big-endian header and data)."""
    dtype = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4",
             0x0E: ">f8"}[code]
    raw = (bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
           + np.asarray(array).astype(dtype).tobytes())
    path.write_bytes(gzip.compress(raw) if compress else raw)
    return path


def write_mnist_dir(directory, rng, n_train=40, n_test=20, size=28, compress=False):
    suffix = ".gz" if compress else ""
    labels = {"train": rng.integers(0, 10, n_train), "t10k": rng.integers(0, 10, n_test)}
    for which, y in labels.items():
        images = rng.integers(0, 256, (len(y), size, size)).astype(np.uint8)
        write_idx(directory / f"{which}-images-idx3-ubyte{suffix}", images, 0x08, compress)
        write_idx(directory / f"{which}-labels-idx1-ubyte{suffix}", y.astype(np.uint8),
                  0x08, compress)
    return labels


@pytest.mark.parametrize("code, dtype", [(0x08, np.uint8), (0x09, np.int8),
                                         (0x0B, np.int16), (0x0C, np.int32),
                                         (0x0D, np.float32), (0x0E, np.float64)])
@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_round_trip(example, tmp_path, rng, code, dtype, compress):
    a = (rng.standard_normal((3, 4, 5)) * 100).astype(dtype)
    out = example.read_idx(write_idx(tmp_path / "a.idx", a, code, compress))
    assert out.dtype == dtype and out.dtype.isnative
    np.testing.assert_array_equal(out, a)


def test_read_idx_rejects_bad_files(example, tmp_path):
    (tmp_path / "bad").write_bytes(b"\x08\x03\x00\x00" + bytes(20))
    with pytest.raises(ValueError, match="not an IDX file"):
        example.read_idx(tmp_path / "bad")
    path = write_idx(tmp_path / "short", np.zeros((2, 3, 3), np.uint8), 0x08)
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(ValueError, match="shape"):
        example.read_idx(path)


@pytest.mark.parametrize("compress", [False, True])
def test_load_mnist_idx_dir(example, tmp_path, rng, compress):
    labels = write_mnist_dir(tmp_path, rng, compress=compress)
    xtr, ytr, xte, yte = example.load_mnist(str(tmp_path))
    assert xtr.shape == (40, 1, 28, 28) and xte.shape == (20, 1, 28, 28)
    assert xtr.dtype == np.float32 and 0 <= xtr.min() and xtr.max() <= 1
    np.testing.assert_array_equal(ytr, labels["train"])
    np.testing.assert_array_equal(yte, labels["t10k"])
    with pytest.raises(FileNotFoundError, match="t10k-images"):
        (tmp_path / f"t10k-images-idx3-ubyte{'.gz' if compress else ''}").unlink()
        example.load_mnist(str(tmp_path))


def test_load_mnist_npz(example, tmp_path, rng):
    path = tmp_path / "mnist.npz"
    np.savez(path, x_train=rng.integers(0, 256, (6, 28, 28), dtype=np.uint8),
             y_train=np.arange(6), x_test=np.full((2, 28, 28), 255, np.uint8),
             y_test=np.array([1, 2]))
    xtr, ytr, xte, yte = example.load_mnist(str(path))
    assert xtr.shape == (6, 1, 28, 28) and xte.max() == 1.0 and list(yte) == [1, 2]


def test_build_model_shapes(example):
    simple = example.build_model("simple", (1, 8, 8), rng=0)
    assert simple[0].params["weight"].shape == (30, 1, 5, 5)
    assert simple[4].params["weight"].shape == (100, 30 * 4 * 4)
    deep = example.build_model("deep", (1, 28, 28), rng=0)
    assert any(type(layer).__name__ == "BatchNorm2d" for layer in deep)
    with pytest.raises(ValueError, match="model"):
        example.build_model("resnet", (1, 8, 8))


def test_save_filters_png(example, tmp_path, rng):
    pytest.importorskip("matplotlib")
    path = tmp_path / "f.png"
    w = rng.standard_normal((30, 1, 5, 5))
    history = {"loss": [2.0, 1.0, 0.5], "train_acc": [0.3, 0.6, 0.9],
               "test_acc": [0.25, 0.55, 0.85]}
    assert example.save_filters_png(w, w * 2, str(path), history)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert example.save_filters_png(w, w * 2, str(tmp_path / "g.png"))


def test_filter_mosaic_keeps_one_scale(example, rng):
    """Filters are not normalised one by one: weights twice as large show
    twice as strong, so trained and untrained mosaics differ visibly."""
    w = rng.standard_normal((6, 5, 5))
    small, large = example._mosaic(w, 3), example._mosaic(2 * w, 3)
    assert small.shape == large.shape == (2 * 6 - 1, 3 * 6 - 1)
    np.testing.assert_array_equal(np.isnan(small), np.isnan(large))
    np.testing.assert_allclose(large[~np.isnan(large)], 2 * small[~np.isnan(small)])
    np.testing.assert_array_equal(small[:5, :5], w[0])


@needs_pool
@pytest.mark.parametrize("model", ["simple", "deep"])
def test_smoke_mnist_files(example, tmp_path, rng, capsys, model):
    write_mnist_dir(tmp_path, rng, n_train=24, n_test=8, size=12)
    out = tmp_path / "out"
    result = example.main(["--mnist", str(tmp_path), "--epochs", "1", "--model", model,
                           "--out", str(out), "--batch-size", "8", "--threads", "1"])
    text = capsys.readouterr().out
    assert "epoch  1/1  loss" in text and "img/s" in text and "final test accuracy" in text
    assert 0 <= result["test_acc"] <= 1
    assert len(result["history"]["loss"]) == len(result["history"]["test_acc"]) == 1
    with np.load(result["weights"]) as w:
        assert w["0.weight"].shape[0] in (30, 16)


@needs_pool
def test_smoke_digits_and_reference(example, tmp_path, capsys):
    pytest.importorskip("sklearn")
    out = tmp_path / "out"
    example.main(["--epochs", "1", "--limit", "64", "--out", str(out), "--threads", "1"])
    example.main(["--epochs", "1", "--limit", "32", "--out", str(out), "--reference"])
    text = capsys.readouterr().out
    assert "scikit-learn digits" in text and "fastconv.reference" in text
    assert (out / "simple_weights.npz").exists()
    try:
        import matplotlib  # noqa: F401
        assert (out / "simple_filters.png").exists()
    except ImportError:
        pass
