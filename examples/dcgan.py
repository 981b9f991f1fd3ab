"""A DCGAN (Radford et al., 2015) on scikit-learn's 8x8 digits: a generator
of strided transposed convolutions and an upsampling layer that grows a
16-number code (a 1x1 image of 16 channels) to an 8x8 digit, against a
discriminator of strided convolutions; both with batch norm,
Adam(betas=(0.5, 0.999)) and the logistic (BCE-with-logits) loss.

    generator:     convT(64, 2) - bn - relu                  1x1 -> 2x2
                   convT(32, 4, stride 2) - bn - relu        -> 4x4
                   upsample(2) - conv3x3(1) - tanh           -> 8x8
                   (convT(1, 4, stride 2) - tanh where fastconv.nn has no Upsample)
    discriminator: conv(32, 4, stride 2) - leaky relu        8x8 -> 4x4
                   conv(64, 4, stride 2) - bn - leaky relu   -> 2x2
                   flatten - linear(1)

Each epoch prints both losses and how often the discriminator tells real
from generated images; the generator has learnt when that falls towards
50% and the generated images' pixel mean and spread approach the data's.

    python examples/dcgan.py [--torch]
"""
import time

import numpy as np

from fastconv import nn, optim

import _common

CODE = 16
BETAS = (0.5, 0.999)


def generator(rng, code=CODE):
    if hasattr(nn, "Upsample"):
        last = [nn.Upsample(scale_factor=2), nn.Conv2d(32, 1, 3, padding=1, rng=rng)]
    else:
        last = [nn.ConvTranspose2d(32, 1, 4, stride=2, padding=1, rng=rng)]
    return nn.Sequential(
        nn.ConvTranspose2d(code, 64, 2, bias=False, rng=rng), nn.BatchNorm2d(64), nn.ReLU(),
        nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1, bias=False, rng=rng),
        nn.BatchNorm2d(32), nn.ReLU(), *last, nn.Tanh())


def discriminator(rng):
    return nn.Sequential(
        nn.Conv2d(1, 32, 4, stride=2, padding=1, rng=rng), nn.LeakyReLU(0.2),
        nn.Conv2d(32, 64, 4, stride=2, padding=1, bias=False, rng=rng), nn.BatchNorm2d(64),
        nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(64 * 2 * 2, 1, rng=rng))


def batches(x, batch_size, seed, epoch):
    """(real images, codes) per batch; the same for both frameworks."""
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(x))
    for i in range(0, len(x), batch_size):
        real = x[order[i:i + batch_size]]
        yield real, rng.standard_normal((len(real), CODE, 1, 1)).astype(np.float32)


def fastconv_step(G, D, g_opt, d_opt, bce, real, z):
    """One discriminator and one generator update; (d_loss, g_loss, d_correct)."""
    ones, zeros = np.ones((len(real), 1), np.float32), np.zeros((len(real), 1), np.float32)
    fake = G(z)                          # its backward comes at the generator's update
    d_opt.zero_grad()
    real_logits = D(real)
    d_loss = bce(real_logits, ones)
    D.backward(bce.backward())
    fake_logits = D(fake)                # the generator is not updated here: drop grad_x
    d_loss += bce(fake_logits, zeros)
    D.backward(bce.backward())
    d_opt.step()
    g_opt.zero_grad()                    # D's grads from here on are zeroed at the next step
    g_loss = bce(D(fake), ones)
    G.backward(D.backward(bce.backward()))
    g_opt.step()
    return d_loss, g_loss, int((real_logits > 0).sum() + (fake_logits < 0).sum())


def torch_step(G, D, g_opt, d_opt, bce, real, z):
    import torch
    real, z = torch.from_numpy(real), torch.from_numpy(z)
    ones, zeros = torch.ones(len(real), 1), torch.zeros(len(real), 1)
    fake = G(z)
    real_logits, fake_logits = D(real), D(fake.detach())
    d_loss = bce(real_logits, ones) + bce(fake_logits, zeros)
    d_opt.zero_grad()
    d_loss.backward()
    d_opt.step()
    g_loss = bce(D(fake), ones)
    g_opt.zero_grad()
    g_loss.backward()
    g_opt.step()
    return d_loss.item(), g_loss.item(), int((real_logits > 0).sum() + (fake_logits < 0).sum())


def fit(framework, step, sample, args, x):
    seconds = []
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        d_total = g_total = correct = 0.0
        for real, z in batches(x, args.batch_size, args.seed, epoch):
            d_loss, g_loss, right = step(real, z)
            d_total, g_total, correct = (d_total + d_loss * len(real),
                                         g_total + g_loss * len(real), correct + right)
        seconds.append(time.perf_counter() - start)
        fake = sample(np.random.default_rng([args.seed, 0]).standard_normal(
            (256, CODE, 1, 1)).astype(np.float32))
        print(f"{framework:8s} epoch {epoch:2d}/{args.epochs}  D loss {d_total / len(x):.4f}  "
              f"G loss {g_total / len(x):.4f}  D tells real from fake {correct / (2 * len(x)):6.2%}"
              f"  generated mean {fake.mean():+.3f} std {fake.std():.3f}  {seconds[-1]:.2f} s",
              flush=True)
    d_acc = correct / (2 * len(x))
    _common.report(framework, "discriminator accuracy", d_acc, seconds)
    return d_acc, seconds


def main(argv=None):
    args = _common.parse_args(__doc__.split("\n\n")[0], argv, epochs=10, batch_size=64,
                              lr=1e-3)
    xtr, _, _, _ = _common.load_digits_split(args.seed)
    x = _common.shrink(args, xtr * 2 - 1)[0]              # pixels in [-1, 1], as tanh gives
    rng = np.random.default_rng(args.seed)
    G, D = generator(rng), discriminator(rng)
    twins = _common.twin(G, args), _common.twin(D, args)
    upsampling = "Upsample + conv" if hasattr(nn, "Upsample") else "transposed convs only"
    print(f"DCGAN on scikit-learn digits: {len(x)} real images (8x8), generator: "
          f"{upsampling}; real pixels mean {x.mean():+.3f} std {x.std():.3f}")
    g_opt, d_opt = (optim.Adam(m, lr=args.lr, betas=BETAS) for m in (G, D))

    def sample(z):
        G.eval()
        with nn.no_grad():
            images = G(z)
        G.train()
        return images

    d_acc, seconds = fit("fastconv", lambda real, z: fastconv_step(
        G, D, g_opt, d_opt, nn.BCEWithLogitsLoss(), real, z), sample, args, x)
    result = {"d_accuracy": d_acc, "epoch_seconds": seconds}
    if args.torch:
        import torch
        tG, tD = twins
        tg_opt, td_opt = (torch.optim.Adam(m.parameters(), lr=args.lr, betas=BETAS)
                          for m in (tG, tD))

        def torch_sample(z):
            tG.eval()
            with torch.no_grad():
                images = tG(torch.from_numpy(z)).numpy()
            tG.train()
            return images

        d_acc, seconds = fit("torch", lambda real, z: torch_step(
            tG, tD, tg_opt, td_opt, torch.nn.BCEWithLogitsLoss(), real, z), torch_sample,
            args, x)
        result.update(torch_d_accuracy=d_acc, torch_epoch_seconds=seconds)
    return result


if __name__ == "__main__":
    main()
