"""What the example networks share: their command line, the digits data, a
classifier's training loop, and the same loop in PyTorch on the network's
torch twin (``--torch``), so each example prints fastconv's accuracy and
time per epoch next to PyTorch's for the very same network and weights.

Every example takes --epochs, --batch-size, --seed, --threads, --lr, --tiny
(a few batches: a smoke run in seconds, as the test suite does) and --torch.
"""
import argparse
import os
import sys
import time

import numpy as np

import fastconv
from fastconv import optim

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_digits import accuracy, load_digits_split, train_epoch  # noqa: E402

# --tiny: this many training and test examples, one epoch
TINY_TRAIN, TINY_TEST = 48, 32


def parse_args(description, argv=None, epochs=10, batch_size=32, lr=3e-3):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--epochs", type=int, default=epochs)
    p.add_argument("--batch-size", type=int, default=batch_size)
    p.add_argument("--lr", type=float, default=lr, help="Adam's learning rate")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None,
                   help="threads for fastconv and PyTorch (default: all cores)")
    p.add_argument("--tiny", action="store_true",
                   help=f"one epoch on {TINY_TRAIN} training examples: a smoke run")
    p.add_argument("--torch", action="store_true",
                   help="also train the same network (same initial weights) in PyTorch")
    args = p.parse_args(argv)
    if args.tiny:
        args.epochs = 1
    if args.threads is not None:
        fastconv.set_num_threads(args.threads)
        if args.torch:
            import torch
            torch.set_num_threads(args.threads)
    return args


def shrink(args, *arrays, test=False):
    """The first few examples of each array under --tiny, else the arrays."""
    if not args.tiny:
        return arrays
    n = TINY_TEST if test else TINY_TRAIN
    return tuple(a[:n] for a in arrays)


def digits(args):
    """scikit-learn's 8x8 digits, standardised with the training statistics:
    (x_train, y_train, x_test, y_test), x as float32 (N, 1, 8, 8)."""
    xtr, ytr, xte, yte = load_digits_split(args.seed)
    mean, std = xtr.mean(), xtr.std()
    xtr, xte = (xtr - mean) / std, (xte - mean) / std
    return shrink(args, xtr, ytr) + shrink(args, xte, yte, test=True)


def twin(net, args):
    """The torch twin of `net`, made before training so both start alike."""
    if not args.torch:
        return None
    from fastconv.bench.torch_twin import to_torch
    return to_torch(net)


def report(framework, what, value, epoch_seconds):
    """The line the accuracy/time table is read from."""
    per_epoch = sum(epoch_seconds) / max(len(epoch_seconds), 1)
    print(f"{framework:8s} final {what}: {value:.4f}  "
          f"{per_epoch:.3f} s/epoch over {len(epoch_seconds)} epochs", flush=True)


# --------------------------------------------------------------------------- classifiers

def torch_train_epoch(net, loss_fn, opt, x, y, batch_size, rng):
    """train_digits.train_epoch in PyTorch: (mean loss, train accuracy, seconds)."""
    import torch
    net.train()
    order = rng.permutation(len(x))
    total_loss = correct = 0.0
    start = time.perf_counter()
    for i in range(0, len(x), batch_size):
        idx = order[i:i + batch_size]
        xb, yb = torch.from_numpy(x[idx]), torch.from_numpy(y[idx])
        scores = net(xb)
        loss = loss_fn(scores, yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        total_loss += loss.item() * len(idx)
        correct += int((scores.argmax(dim=1) == yb).sum())
    return total_loss / len(x), correct / len(x), time.perf_counter() - start


def torch_accuracy(net, x, y, batch_size=500):
    import torch
    net.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            scores = net(torch.from_numpy(x[i:i + batch_size]))
            correct += int((scores.argmax(dim=1).numpy() == y[i:i + batch_size]).sum())
    net.train()
    return correct / max(len(x), 1)


def _fit(framework, epoch_fn, accuracy_fn, scheduler, args, data):
    xtr, ytr, xte, yte = data
    rng = np.random.default_rng(args.seed + 1)      # same batch order for both frameworks
    seconds = []
    for epoch in range(1, args.epochs + 1):
        loss, train_acc, train_s = epoch_fn(xtr, ytr, args.batch_size, rng)
        seconds.append(train_s)
        scheduler.step()
        print(f"{framework:8s} epoch {epoch:2d}/{args.epochs}  loss {loss:.4f}  "
              f"train acc {train_acc:6.2%}  test acc {accuracy_fn(xte, yte):6.2%}  "
              f"{train_s:.2f} s", flush=True)
    test_acc = accuracy_fn(xte, yte)
    report(framework, "test accuracy", test_acc, seconds)
    return test_acc, seconds


def train_classifier(net, data, args, name):
    """Adam (cosine learning-rate schedule) + cross-entropy for --epochs on data = (x_train, y_train, x_test,
    y_test); with --torch the same for the network's torch twin. Returns
    {"test_acc", "epoch_seconds"} and, with --torch, the same keys prefixed
    "torch_"."""
    from fastconv import nn
    theirs = twin(net, args)
    print(f"{name}: {len(data[0])} training / {len(data[2])} test examples of shape "
          f"{data[0].shape[1:]}; {sum(p.size for p, _ in net.parameters())} parameters; "
          f"{fastconv.get_num_threads()} threads")
    loss_fn, opt = nn.CrossEntropyLoss(), optim.Adam(net, lr=args.lr)
    acc, seconds = _fit(
        "fastconv", lambda x, y, b, rng: train_epoch(net, loss_fn, opt, x, y, b, rng),
        lambda x, y: accuracy(net, x, y),
        optim.lr_scheduler.CosineAnnealingLR(opt, args.epochs), args, data)
    result = {"test_acc": acc, "epoch_seconds": seconds}
    if theirs is not None:
        import torch
        torch_loss, torch_opt = torch.nn.CrossEntropyLoss(), torch.optim.Adam(
            theirs.parameters(), lr=args.lr)
        acc, seconds = _fit(
            "torch", lambda x, y, b, rng: torch_train_epoch(theirs, torch_loss, torch_opt,
                                                            x, y, b, rng),
            lambda x, y: torch_accuracy(theirs, x, y),
            torch.optim.lr_scheduler.CosineAnnealingLR(torch_opt, args.epochs), args, data)
        result.update(torch_test_acc=acc, torch_epoch_seconds=seconds)
    return result
