"""Inception blocks (Szegedy et al., 2015) on scikit-learn's 8x8 digits:
four parallel branches on the same input, joined along the channels by
nn.Concat:

    1x1 conv | 1x1 conv - 3x3 conv | 1x1 conv - 5x5 conv | 3x3 maxpool - 1x1 conv

The network: conv3x3(16) - bn - relu, inception(-> 40 channels) - relu,
maxpool(2), inception(-> 64 channels) - relu, global average pool, linear(10).

    python examples/inception.py [--torch]
"""
import numpy as np

from fastconv import nn

import _common


def inception(cin, c1, c3_reduce, c3, c5_reduce, c5, c_pool, rng):
    """Output channels: c1 + c3 + c5 + c_pool; the spatial size is kept."""
    conv = lambda a, b, k: nn.Conv2d(a, b, k, padding=k // 2, rng=rng)     # noqa: E731
    return nn.Concat(
        conv(cin, c1, 1),
        nn.Sequential(conv(cin, c3_reduce, 1), nn.ReLU(), conv(c3_reduce, c3, 3)),
        nn.Sequential(conv(cin, c5_reduce, 1), nn.ReLU(), conv(c5_reduce, c5, 5)),
        nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), conv(cin, c_pool, 1)))


def inception_net(rng, in_channels=1, num_classes=10):
    return nn.Sequential(
        nn.Conv2d(in_channels, 16, 3, padding=1, bias=False, rng=rng), nn.BatchNorm2d(16),
        nn.ReLU(),
        inception(16, 8, 8, 16, 4, 8, 8, rng), nn.ReLU(),             # 40 channels
        nn.MaxPool2d(2),
        inception(40, 16, 16, 24, 8, 16, 8, rng), nn.ReLU(),          # 64 channels
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, num_classes, rng=rng))


def main(argv=None):
    args = _common.parse_args(__doc__.split("\n\n")[0], argv, epochs=15)
    net = inception_net(np.random.default_rng(args.seed))
    return _common.train_classifier(net, _common.digits(args), args,
                                    "Inception net on scikit-learn digits")


if __name__ == "__main__":
    main()
