"""A small MobileNet (Howard et al., 2017) on scikit-learn's 8x8 digits:
depthwise-separable blocks, each a 3x3 depthwise convolution (groups =
channels: one filter per channel) and a 1x1 pointwise convolution that mixes
the channels, each followed by batch norm and ReLU.

    conv3x3(16) - bn - relu                                   8x8
    separable(16 -> 32), separable(32 -> 64, stride 2)        4x4
    separable(64 -> 64)
    global average pool - linear(10)

    python examples/mobilenet.py [--torch]
"""
import numpy as np

from fastconv import nn

import _common


def separable(cin, cout, stride, rng):
    """depthwise 3x3 - bn - relu - pointwise 1x1 - bn - relu"""
    return nn.Sequential(
        nn.Conv2d(cin, cin, 3, stride=stride, padding=1, groups=cin, bias=False, rng=rng),
        nn.BatchNorm2d(cin), nn.ReLU(),
        nn.Conv2d(cin, cout, 1, bias=False, rng=rng), nn.BatchNorm2d(cout), nn.ReLU())


def mobilenet(rng, in_channels=1, num_classes=10):
    return nn.Sequential(
        nn.Conv2d(in_channels, 16, 3, padding=1, bias=False, rng=rng), nn.BatchNorm2d(16),
        nn.ReLU(),
        separable(16, 32, 1, rng), separable(32, 64, 2, rng), separable(64, 64, 1, rng),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, num_classes, rng=rng))


def main(argv=None):
    args = _common.parse_args(__doc__.split("\n\n")[0], argv, epochs=15)
    net = mobilenet(np.random.default_rng(args.seed))
    return _common.train_classifier(net, _common.digits(args), args,
                                    "MobileNet on scikit-learn digits")


if __name__ == "__main__":
    main()
