"""Train a small CNN on real handwritten digits with fastconv.nn.

The network is the textbook SimpleConvNet

    conv(30 filters 5x5) - relu - maxpool(2) - affine(100) - relu - affine(10) - softmax

("--model simple", the default) or a deeper variant with BatchNorm
("--model deep": two conv-bn-relu blocks per stage, two stages, dropout).

Data: scikit-learn's bundled 8x8 digits (`load_digits`, 1797 images, no
download; 20% held out for testing), or MNIST read from local files with
``--mnist PATH`` where PATH is a directory holding the four IDX files
(``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-...``;
gzipped or not) or a ``.npz`` with x_train, y_train, x_test, y_test.

It prints one line per epoch (mean loss, train accuracy as measured on the
epoch's mini-batches, test accuracy, training images/s), the final
test accuracy, saves the weights (``np.savez`` of ``state_dict()``) and writes
a PNG of the first-layer filters before and after training (one colour
scale) with the loss and accuracy curves into ``--out``.
``--reference`` runs the very same network on fastconv.reference, the
plain-NumPy ops, to see what the compiled ops buy.

    python examples/train_digits.py                    # digits, SimpleConvNet
    python examples/train_digits.py --model deep --reference
    python examples/train_digits.py --mnist ~/data/mnist --epochs 3
"""
import argparse
import glob
import gzip
import os
import struct
import sys
import time

import numpy as np

import fastconv
import fastconv.reference
from fastconv import nn, optim

# --------------------------------------------------------------------------- data

# IDX type codes (http://yann.lecun.com/exdb/mnist/): the data are big-endian.
IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path):
    """Array from an IDX file (gzipped or not): magic = two zero bytes, a type
    code, the number of dimensions; then one big-endian uint32 per dimension;
    then the data, row-major, big-endian."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_DTYPES:
        raise ValueError(f"{path}: not an IDX file (magic bytes {raw[:4]!r})")
    dtype, ndim = np.dtype(IDX_DTYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: IDX header truncated")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(f"{path}: IDX header says shape {shape} ({expected} data bytes), "
                         f"file has {len(raw) - header}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(
        dtype.newbyteorder("="))


def _find(directory, prefix):
    hits = sorted(p for p in glob.glob(os.path.join(directory, prefix + "*"))
                  if os.path.isfile(p))
    if not hits:
        raise FileNotFoundError(f"no file {prefix}* in {directory} (expected the MNIST "
                                f"IDX files train-images-idx3-ubyte[.gz] etc.)")
    return hits[0]


def load_mnist(path):
    """(x_train, y_train, x_test, y_test) from an IDX directory or an .npz;
    images as float32 (N, 1, H, W) in [0, 1], labels int64."""
    if os.path.isdir(path):
        parts = [read_idx(_find(path, p)) for p in
                 ("train-images", "train-labels", "t10k-images", "t10k-labels")]
    else:
        with np.load(path) as f:
            parts = [f[k] for k in ("x_train", "y_train", "x_test", "y_test")]
    xtr, ytr, xte, yte = parts
    for x, y, which in ((xtr, ytr, "train"), (xte, yte, "test")):
        if x.ndim != 3 or y.shape != (x.shape[0],):
            raise ValueError(f"{path}: {which} images {x.shape} and labels {y.shape} "
                             f"do not match (expected (N, H, W) and (N,))")
    scale = 255.0 if xtr.dtype == np.uint8 else max(float(xtr.max()), 1.0)
    prep = lambda x: (x.astype(np.float32) / np.float32(scale))[:, None]  # noqa: E731
    return prep(xtr), ytr.astype(np.int64), prep(xte), yte.astype(np.int64)


def load_digits_split(seed=0, test_fraction=0.2):
    """scikit-learn's 8x8 digits, stratified split holding out `test_fraction`."""
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError:
        sys.exit("The digits data set comes with scikit-learn: pip install scikit-learn "
                 "(or pip install 'fastconv[examples]'), or pass --mnist PATH.")
    digits = load_digits()
    x = (digits.images.astype(np.float32) / np.float32(16.0))[:, None]   # 0..16 -> 0..1
    y = digits.target.astype(np.int64)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=test_fraction, stratify=y,
                                          random_state=seed)
    return xtr, ytr, xte, yte


# --------------------------------------------------------------------------- model

def build_model(name, in_shape, num_classes=10, rng=None):
    """'simple': the textbook SimpleConvNet; 'deep': conv-bn-relu x2, pool,
    conv-bn-relu x2, pool, affine-relu-dropout-affine. The 5x5 (resp. 3x3)
    convolutions are padded to keep the size, so any H, W >= 4 works."""
    c, h, w = in_shape
    rng = np.random.default_rng(rng)
    if name == "simple":
        return nn.Sequential(
            nn.Conv2d(c, 30, 5, padding=2, rng=rng), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(30 * (h // 2) * (w // 2), 100, rng=rng), nn.ReLU(),
            nn.Linear(100, num_classes, rng=rng))
    if name == "deep":
        def block(cin, cout):
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False, rng=rng),
                    nn.BatchNorm2d(cout), nn.ReLU()]
        return nn.Sequential(
            *block(c, 16), *block(16, 16), nn.MaxPool2d(2),
            *block(16, 32), *block(32, 32), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(32 * (h // 4) * (w // 4), 100, rng=rng), nn.ReLU(),
            nn.Dropout(0.5, rng=rng), nn.Linear(100, num_classes, rng=rng))
    raise ValueError(f"model must be 'simple' or 'deep', got {name!r}")


# --------------------------------------------------------------------------- training

def accuracy(net, x, y, batch_size=500):
    """Fraction of correct predictions, in eval mode (restores the mode)."""
    was_training = net.training
    net.eval()
    correct = 0
    with nn.no_grad():             # inference: no caches waiting for a backward
        for i in range(0, len(x), batch_size):
            scores = net(x[i:i + batch_size])
            correct += int((scores.argmax(axis=1) == y[i:i + batch_size]).sum())
    net.train(was_training)
    return correct / max(len(x), 1)


def train_epoch(net, loss_fn, opt, x, y, batch_size, rng):
    """One pass over shuffled mini-batches; returns (mean loss, running train
    accuracy, seconds)."""
    net.train()
    order = rng.permutation(len(x))
    total_loss = correct = 0.0
    start = time.perf_counter()
    for i in range(0, len(x), batch_size):
        idx = order[i:i + batch_size]
        xb, yb = x[idx], y[idx]
        scores = net(xb)
        total_loss += loss_fn(scores, yb) * len(idx)
        correct += int((scores.argmax(axis=1) == yb).sum())
        opt.zero_grad()                # backward adds into the gradients
        net.backward(loss_fn.backward(), input_grad=False)   # the images need none
        opt.step()
    return total_loss / len(x), correct / len(x), time.perf_counter() - start


def first_conv(net):
    return next(layer for layer in net.layers if isinstance(layer, nn.Conv2d))


def _mosaic(filters, cols):
    """(K, kh, kw) filters tiled with 1-pixel NaN gaps, values unchanged, so
    one colour scale fits every filter of every mosaic drawn with it."""
    k, kh, kw = filters.shape
    rows = -(-k // cols)
    out = np.full((rows * (kh + 1) - 1, cols * (kw + 1) - 1), np.nan)
    for i, f in enumerate(filters):
        r, c = divmod(i, cols)
        out[r * (kh + 1):r * (kh + 1) + kh, c * (kw + 1):c * (kw + 1) + kw] = f
    return out


def save_filters_png(before, after, path, history=None):
    """First-layer filters (C_out, C_in, kh, kw; input channels averaged)
    before and after training, on ONE colour scale centred on 0 (so the
    random start and the learnt strokes compare at a glance), and, given
    `history` (lists "loss", "train_acc", "test_acc" per epoch), the loss and
    accuracy curves.  Returns False, with a note, when matplotlib is not
    installed."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no filter picture "
              "(pip install 'fastconv[plot]')")
        return False
    cols = int(np.ceil(np.sqrt(before.shape[0] * 1.25)))
    mosaics = [_mosaic(w.mean(axis=1), cols) for w in (before, after)]
    limit = max(np.nanmax(np.abs(m)) for m in mosaics) or 1.0
    rows = 2 if history else 1
    fig, axes = plt.subplots(rows, 2, figsize=(9, 4.2 * rows), squeeze=False)
    for ax, mosaic, title in zip(axes[0], mosaics, ("untrained", "trained")):
        image = ax.imshow(mosaic, cmap="RdBu_r", vmin=-limit, vmax=limit,
                          interpolation="nearest")
        ax.set_title(f"first-layer filters, {title}")
        ax.axis("off")
    fig.colorbar(image, ax=list(axes[0]), shrink=0.8, label="weight (same scale for both)")
    if history:
        epochs = np.arange(1, len(history["loss"]) + 1)
        loss_ax, acc_ax = axes[1]
        loss_ax.plot(epochs, history["loss"], marker="o", color="#C44E52")
        loss_ax.set(title="training loss", xlabel="epoch", ylabel="cross-entropy")
        loss_ax.set_yscale("log")
        acc_ax.plot(epochs, history["train_acc"], marker="o", label="train (running)")
        acc_ax.plot(epochs, history["test_acc"], marker="s", label="test")
        acc_ax.set(title="accuracy", xlabel="epoch", ylabel="accuracy", ylim=(0, 1.02))
        acc_ax.legend(loc="lower right")
        for ax in axes[1]:
            ax.grid(alpha=0.3)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return True


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=None,
                   help="passes over the training set (default: 20 on digits, 3 on MNIST)")
    p.add_argument("--model", choices=("simple", "deep"), default="simple")
    p.add_argument("--mnist", metavar="PATH",
                   help="MNIST IDX directory or .npz (default: scikit-learn's digits)")
    p.add_argument("--reference", action="store_true",
                   help="run the same network on fastconv.reference (plain NumPy) ops")
    p.add_argument("--out", default="digits_out", help="directory for weights and PNG")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None,
                   help="threads for fastconv and the BLAS (default: all cores)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-3,
                   help="Adam's initial learning rate (cosine schedule)")
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--limit", type=int, default=None,
                   help="use only the first N training and test images (quick runs)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.threads is not None:
        fastconv.set_num_threads(args.threads)
    if args.mnist:
        xtr, ytr, xte, yte = load_mnist(args.mnist)
        data_name = f"MNIST ({args.mnist})"
    else:
        xtr, ytr, xte, yte = load_digits_split(args.seed)
        data_name = "scikit-learn digits (8x8, 20% held out)"
    if args.limit:
        xtr, ytr, xte, yte = xtr[:args.limit], ytr[:args.limit], xte[:args.limit], \
            yte[:args.limit]
    epochs = args.epochs if args.epochs is not None else (3 if args.mnist else 20)
    num_classes = int(max(ytr.max(), yte.max())) + 1
    mean, std = xtr.mean(), xtr.std() + 1e-6          # standardise with train statistics
    xtr, xte = (xtr - mean) / std, (xte - mean) / std

    rng = np.random.default_rng(args.seed)
    net = build_model(args.model, xtr.shape[1:], num_classes, rng=rng)
    if args.reference:
        net.set_backend(fastconv.reference)
    backend = "fastconv.reference (plain NumPy)" if args.reference else "fastconv"
    loss_fn = nn.CrossEntropyLoss()
    opt = optim.Adam(net, lr=args.lr, weight_decay=args.weight_decay)
    untrained = first_conv(net).params["weight"].copy()
    print(f"{data_name}: {len(xtr)} train / {len(xte)} test images of shape "
          f"{xtr.shape[1:]}; model {args.model}; ops {backend}; "
          f"{fastconv.get_num_threads()} threads")

    epoch_times = []
    history = {"loss": [], "train_acc": [], "test_acc": []}
    for epoch in range(1, epochs + 1):
        # cosine learning-rate schedule: lr at the first epoch, ~0 at the last
        opt.lr = args.lr * 0.5 * (1 + np.cos(np.pi * (epoch - 1) / epochs))
        t0 = time.perf_counter()
        loss, train_acc, train_s = train_epoch(net, loss_fn, opt, xtr, ytr,
                                               args.batch_size, rng)
        test_acc = accuracy(net, xte, yte)
        epoch_times.append(time.perf_counter() - t0)
        for key, value in (("loss", loss), ("train_acc", train_acc), ("test_acc", test_acc)):
            history[key].append(float(value))
        print(f"epoch {epoch:2d}/{epochs}  loss {loss:.4f}  train acc {train_acc:6.2%}  "
              f"test acc {test_acc:6.2%}  {len(xtr) / train_s:8.0f} img/s  "
              f"{epoch_times[-1]:.2f} s", flush=True)

    test_acc = accuracy(net, xte, yte)
    total = sum(epoch_times)
    print(f"final test accuracy: {test_acc:.2%} ({len(xte)} images); "
          f"{total:.1f} s total, {total / max(epochs, 1):.2f} s/epoch with {backend} ops")
    os.makedirs(args.out, exist_ok=True)
    weights = os.path.join(args.out, f"{args.model}_weights.npz")
    np.savez(weights, **net.state_dict())
    print(f"weights saved to {weights}")
    png = os.path.join(args.out, f"{args.model}_filters.png")
    if save_filters_png(untrained, first_conv(net).params["weight"], png, history):
        print(f"first-layer filters (untrained | trained) and learning curves written "
              f"to {png}")
    return {"test_acc": test_acc, "epoch_seconds": epoch_times, "weights": weights,
            "history": history}


if __name__ == "__main__":
    main()
