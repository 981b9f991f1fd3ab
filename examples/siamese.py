"""A Siamese network on scikit-learn's 8x8 digits: ONE embedding network
applied to both images of a pair (the weights are shared: the same module is
called twice before backward, and its gradients are the sum of both uses),
trained with the contrastive loss (Hadsell, Chopra & LeCun, 2006)

    L = mean( s * d^2 + (1 - s) * max(0, margin - d)^2 ) / 2

where d is the distance between the two embeddings and s = 1 for a pair of
the same digit. A test pair counts as "same" when d < margin / 2; the output
states that pair accuracy on pairs drawn from the held-out images.

    embedding: conv3x3(16) - relu - maxpool(2) - conv3x3(32) - relu - maxpool(2)
               - flatten - linear(16)

    python examples/siamese.py [--torch]
"""
import time

import numpy as np

from fastconv import nn, optim

import _common

MARGIN = 1.0


def embedding_net(rng, dim=16):
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1, rng=rng), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1, rng=rng), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 2 * 2, dim, rng=rng))


def make_pairs(y, n, rng):
    """(first, second, same): n index pairs into y, half of one class."""
    by_class = {c: np.flatnonzero(y == c) for c in np.unique(y)}
    first = rng.integers(0, len(y), n)
    same = rng.random(n) < 0.5
    second = np.empty(n, np.int64)
    for k, (i, s) in enumerate(zip(first, same)):
        pool = by_class[y[i]] if s else np.flatnonzero(y != y[i])
        second[k] = rng.choice(pool)
    return first, second, same.astype(np.float32)


class ContrastiveLoss:
    """forward(e1, e2, same) -> float; backward() -> (grad_e1, grad_e2)."""

    def __init__(self, margin=MARGIN, eps=1e-9):
        self.margin, self.eps = margin, eps

    def forward(self, e1, e2, same):
        diff = e1 - e2
        d = np.sqrt((diff * diff).sum(axis=1) + self.eps)
        gap = np.maximum(self.margin - d, 0)
        self._ctx = diff, d, gap, same
        return float(np.mean(same * d * d + (1 - same) * gap * gap) / 2)

    def backward(self):
        diff, d, gap, same = self._ctx
        dloss_dd = (same * d - (1 - same) * gap) / len(d)
        g1 = (dloss_dd / d)[:, None] * diff
        return g1, -g1


def torch_contrastive(e1, e2, same, margin=MARGIN, eps=1e-9):
    import torch
    d = torch.sqrt(((e1 - e2) ** 2).sum(dim=1) + eps)
    gap = torch.clamp(margin - d, min=0)
    return torch.mean(same * d * d + (1 - same) * gap * gap) / 2


def pair_accuracy(distances, same):
    return float(np.mean((distances < MARGIN / 2) == (same > 0.5)))


def fastconv_epoch(net, loss_fn, opt, x, pairs, batch_size):
    first, second, same = pairs
    total = 0.0
    for i in range(0, len(same), batch_size):
        b = slice(i, i + batch_size)
        e1, e2 = net(x[first[b]]), net(x[second[b]])     # one module, two pending forwards
        total += loss_fn.forward(e1, e2, same[b]) * len(same[b])
        g1, g2 = loss_fn.backward()
        opt.zero_grad()
        net.backward(g2)              # the newest forward first; the grads add up
        net.backward(g1)
        opt.step()
    return total / len(same)


def fastconv_distances(net, x, pairs):
    first, second, _ = pairs
    net.eval()
    with nn.no_grad():
        d = np.linalg.norm(net(x[first]) - net(x[second]), axis=1)
    net.train()
    return d


def torch_epoch(net, opt, x, pairs, batch_size):
    import torch
    first, second, same = pairs
    total = 0.0
    for i in range(0, len(same), batch_size):
        b = slice(i, i + batch_size)
        loss = torch_contrastive(net(torch.from_numpy(x[first[b]])),
                                 net(torch.from_numpy(x[second[b]])),
                                 torch.from_numpy(same[b]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        total += loss.item() * len(same[b])
    return total / len(same)


def torch_distances(net, x, pairs):
    import torch
    first, second, _ = pairs
    net.eval()
    with torch.no_grad():
        d = torch.linalg.norm(net(torch.from_numpy(x[first])) -
                              net(torch.from_numpy(x[second])), dim=1).numpy()
    net.train()
    return d


def fit(framework, epoch_fn, distances_fn, args, xtr, train_pairs, xte, test_pairs):
    seconds = []
    for epoch, pairs in enumerate(train_pairs, 1):
        start = time.perf_counter()
        loss = epoch_fn(xtr, pairs, args.batch_size)
        seconds.append(time.perf_counter() - start)
        acc = pair_accuracy(distances_fn(xte, test_pairs), test_pairs[2])
        print(f"{framework:8s} epoch {epoch:2d}/{args.epochs}  contrastive loss {loss:.4f}  "
              f"test pair acc {acc:6.2%}  {seconds[-1]:.2f} s", flush=True)
    acc = pair_accuracy(distances_fn(xte, test_pairs), test_pairs[2])
    _common.report(framework, "test pair accuracy", acc, seconds)
    return acc, seconds


def main(argv=None):
    args = _common.parse_args(__doc__.split("\n\n")[0], argv, epochs=10, lr=1e-3)
    xtr, ytr, xte, yte = _common.digits(args)
    rng = np.random.default_rng(args.seed)
    net = embedding_net(rng)
    theirs = _common.twin(net, args)
    # the same pairs, in the same order, for both frameworks
    train_pairs = [make_pairs(ytr, len(ytr), rng) for _ in range(args.epochs)]
    test_pairs = make_pairs(yte, 2 * len(yte), rng)
    print(f"Siamese net on scikit-learn digits: {len(train_pairs[0][0])} training pairs per "
          f"epoch, {len(test_pairs[0])} test pairs from held-out images")
    opt = optim.Adam(net, lr=args.lr)
    acc, seconds = fit("fastconv", lambda x, p, b: fastconv_epoch(net, ContrastiveLoss(), opt,
                                                                  x, p, b),
                       lambda x, p: fastconv_distances(net, x, p), args, xtr, train_pairs,
                       xte, test_pairs)
    result = {"test_acc": acc, "epoch_seconds": seconds}
    if theirs is not None:
        import torch
        torch_opt = torch.optim.Adam(theirs.parameters(), lr=args.lr)
        acc, seconds = fit("torch", lambda x, p, b: torch_epoch(theirs, torch_opt, x, p, b),
                           lambda x, p: torch_distances(theirs, x, p), args, xtr, train_pairs,
                           xte, test_pairs)
        result.update(torch_test_acc=acc, torch_epoch_seconds=seconds)
    return result


if __name__ == "__main__":
    main()
