"""A small 3-D CNN on synthetic video clips: a shape (a 3x3 square or a
plus) moving one pixel per frame, right, left, down or up, over a noisy
12x12 background for 6 frames. The class is the direction of motion, so a
single frame cannot tell it: the 3-D convolutions must look across time.
The clips are generated here (deterministic for a --seed).

    conv3d(8, 3) - bn - relu - maxpool3d(2)      (6, 12, 12) -> (3, 6, 6)
    conv3d(16, 3) - bn - relu - maxpool3d(2)     -> (1, 3, 3)
    flatten - linear(4)

    python examples/conv3d.py [--torch]
"""
import numpy as np

from fastconv import nn

import _common

DIRECTIONS = ((0, 1), (0, -1), (1, 0), (-1, 0))      # (dy, dx): right, left, down, up
SHAPES = (np.ones((3, 3)), np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], float))


def moving_shapes(n, rng, frames=6, size=12, noise=0.3):
    """(clips float32 (n, 1, frames, size, size), labels int64 (n,)): the
    label indexes DIRECTIONS; the start is random with the whole path inside."""
    clips = rng.normal(0, noise, (n, 1, frames, size, size)).astype(np.float32)
    labels = rng.integers(0, len(DIRECTIONS), n)
    travel = frames - 1
    for clip, label in zip(clips, labels):
        dy, dx = DIRECTIONS[label]
        shape = SHAPES[rng.integers(len(SHAPES))]
        # start so that start + t * step stays within [0, size - 3] for every frame t
        y0, x0 = (int(rng.integers(travel if d < 0 else 0,
                                   size - 3 - (travel if d > 0 else 0) + 1)) for d in (dy, dx))
        for t in range(frames):
            y, x = y0 + t * dy, x0 + t * dx
            clip[0, t, y:y + 3, x:x + 3] += shape
    return clips, labels.astype(np.int64)


def cnn3d(rng, num_classes=len(DIRECTIONS)):
    return nn.Sequential(
        nn.Conv3d(1, 8, 3, padding=1, bias=False, rng=rng), nn.BatchNorm3d(8), nn.ReLU(),
        nn.MaxPool3d(2),
        nn.Conv3d(8, 16, 3, padding=1, bias=False, rng=rng), nn.BatchNorm3d(16), nn.ReLU(),
        nn.MaxPool3d(2),
        nn.Flatten(), nn.Linear(16 * 1 * 3 * 3, num_classes, rng=rng))


def main(argv=None):
    args = _common.parse_args(__doc__.split("\n\n")[0], argv, epochs=8)
    rng = np.random.default_rng(args.seed)
    n_train, n_test = (_common.TINY_TRAIN, _common.TINY_TEST) if args.tiny else (1000, 300)
    data = moving_shapes(n_train, rng) + moving_shapes(n_test, rng)
    return _common.train_classifier(cnn3d(rng), data, args,
                                    "3-D CNN on moving-shape clips (direction of motion)")


if __name__ == "__main__":
    main()
