"""A small ResNet trained on real handwritten digits (scikit-learn's bundled
8x8 digits, 20% held out; no download).

    stem: conv3x3(16) - bn - relu                                  8x8
    stage 1: two basic blocks, 16 channels                         8x8
    stage 2: a downsampling block (stride 2; 1x1 stride-2 conv +
             bn shortcut) and a basic block, 32 channels            4x4
    head: global average pool - linear(10)

A basic block is nn.Residual(conv-bn-relu-conv-bn, shortcut) followed by a
ReLU: y = relu(body(x) + shortcut(x)).

    python examples/train_resnet.py                 # 15 epochs, prints test accuracy
    python examples/train_resnet.py --torch         # and the same network in PyTorch
"""
import numpy as np

from fastconv import nn

import _common


def basic_block(cin, cout, stride, rng):
    """relu(conv-bn-relu-conv-bn(x) + shortcut(x)); the shortcut is the
    identity, or a 1x1 strided conv + bn where the shape changes."""
    body = nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False, rng=rng),
        nn.BatchNorm2d(cout), nn.ReLU(),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False, rng=rng), nn.BatchNorm2d(cout))
    shortcut = None
    if stride != 1 or cin != cout:
        shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False, rng=rng),
                                 nn.BatchNorm2d(cout))
    return nn.Sequential(nn.Residual(body, shortcut), nn.ReLU())


def resnet(rng, in_channels=1, num_classes=10, widths=(16, 32)):
    layers = [nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False, rng=rng),
              nn.BatchNorm2d(widths[0]), nn.ReLU()]
    cin = widths[0]
    for stage, width in enumerate(widths):
        layers += [basic_block(cin, width, 1 if stage == 0 else 2, rng),
                   basic_block(width, width, 1, rng)]
        cin = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, num_classes, rng=rng)]
    return nn.Sequential(*layers)


def main(argv=None):
    args = _common.parse_args(__doc__.split("\n\n")[0], argv, epochs=15)
    net = resnet(np.random.default_rng(args.seed))
    return _common.train_classifier(net, _common.digits(args), args,
                                    "ResNet on scikit-learn digits")


if __name__ == "__main__":
    main()
