"""Whole networks for the benchmark (``python -m fastconv.bench --nets``).

A network case is a model built from fastconv.nn plus a batch of images and
labels.  Two passes are timed, on both sides (fastconv.nn and its torch.nn
twin from ``torch_twin.to_torch``, the same weights):

  train  one training step: zero the gradients, forward, CrossEntropyLoss,
         backward, SGD (lr LEARNING_RATE, momentum MOMENTUM) step;
  infer  one inference forward: eval mode, no gradient bookkeeping
         (``fastconv.nn.no_grad()`` / ``torch.no_grad()``).

On request (``--direction fused``) a third pass:

  fused  the inference forward of the model fused for inference:
         ``fastconv.nn.fuse`` against ``torch.fx.experimental.optimization.fuse``
         (both fold BatchNorm into the preceding convolution; ours also runs
         ReLU in place on the convolution's output).  Each side fuses its
         model at its first fused call (the untimed check, after the other
         passes' first calls, so with the same weights and statistics).

Every worker builds the same network from the same seed, so the untimed
first call of each pass can be checked across libraries: the first training
step's loss and every parameter's gradient, the inference output.  Steps
then keep training the same batch, identically on both sides; the time of a
step does not depend on the weights' values.

Shapes of the default cases are the issue's; the --quick ones are the same
architectures shrunk so that a whole run takes seconds.
"""
import functools
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np

NET_DIRECTIONS = ("infer", "train")
NET_EXTRA_DIRECTIONS = ("fused",)        # measured only when asked for
LEARNING_RATE, MOMENTUM = 0.01, 0.9
CLASSES = 10


# --------------------------------------------------------------------------- the networks

def simple_convnet(dtype, rng, channels=1, size=28, filters=30, hidden=100):
    """The textbook SimpleConvNet: conv 5x5 - ReLU - max pool 2 - Linear -
    ReLU - Linear."""
    from fastconv import nn
    pooled = (size - 4) // 2
    return nn.Sequential(
        nn.Conv2d(channels, filters, 5, dtype=dtype, rng=rng), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(filters * pooled * pooled, hidden, dtype=dtype, rng=rng),
        nn.ReLU(), nn.Linear(hidden, CLASSES, dtype=dtype, rng=rng))


def _conv_bn_relu(nn, cin, cout, dtype, rng, stride=1, groups=1, kernel=3):
    return [nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, groups=groups,
                      bias=False, dtype=dtype, rng=rng),
            nn.BatchNorm2d(cout, dtype=dtype), nn.ReLU()]


def vgg_bn(dtype, rng, channels=3, size=32, widths=(32, 64, 128), hidden=256):
    """VGG-style: per width two (conv 3x3 - BatchNorm - ReLU) then max pool 2;
    Linear - ReLU - Linear."""
    from fastconv import nn
    layers, cin = [], channels
    for width in widths:
        layers += _conv_bn_relu(nn, cin, width, dtype, rng)
        layers += _conv_bn_relu(nn, width, width, dtype, rng)
        layers.append(nn.MaxPool2d(2))
        cin = width
    side = size >> len(widths)
    layers += [nn.Flatten(), nn.Linear(cin * side * side, hidden, dtype=dtype, rng=rng),
               nn.ReLU(), nn.Linear(hidden, CLASSES, dtype=dtype, rng=rng)]
    return nn.Sequential(*layers)


def mobilenet(dtype, rng, channels=3, stem=32,
              blocks=((64, 2), (128, 2), (128, 1), (256, 2), (256, 1))):
    """MobileNet-style: conv 3x3 stem, then depthwise-separable blocks
    (depthwise 3x3 - BN - ReLU - pointwise 1x1 - BN - ReLU; `blocks` are
    (out channels, stride)), global average pool, Linear."""
    from fastconv import nn
    layers, cin = _conv_bn_relu(nn, channels, stem, dtype, rng), stem
    for cout, stride in blocks:
        layers += _conv_bn_relu(nn, cin, cin, dtype, rng, stride=stride, groups=cin)
        layers += _conv_bn_relu(nn, cin, cout, dtype, rng, kernel=1)
        cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, CLASSES, dtype=dtype,
                                                                  rng=rng)]
    return nn.Sequential(*layers)


def _basic_block(nn, cin, cout, stride, dtype, rng):
    """ResNet's basic block: relu(bn(conv(relu(bn(conv(x))))) + shortcut(x)),
    the shortcut a strided 1x1 conv + BN when the shape changes."""
    body = nn.Sequential(*_conv_bn_relu(nn, cin, cout, dtype, rng, stride=stride),
                         nn.Conv2d(cout, cout, 3, padding=1, bias=False, dtype=dtype, rng=rng),
                         nn.BatchNorm2d(cout, dtype=dtype))
    shortcut = None
    if stride != 1 or cin != cout:
        shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False,
                                           dtype=dtype, rng=rng),
                                 nn.BatchNorm2d(cout, dtype=dtype))
    return nn.Sequential(nn.Residual(body, shortcut), nn.ReLU())


def resnet(dtype, rng, channels=3, widths=(16, 32, 64), blocks_per_stage=2):
    """CIFAR-style ResNet: conv 3x3 stem, stages of basic blocks (the first
    block of each stage after the first halves the size), global average
    pool, Linear."""
    from fastconv import nn
    layers, cin = _conv_bn_relu(nn, channels, widths[0], dtype, rng), widths[0]
    for stage, width in enumerate(widths):
        for block in range(blocks_per_stage):
            stride = 2 if stage and not block else 1
            layers.append(_basic_block(nn, cin, width, stride, dtype, rng))
            cin = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, CLASSES, dtype=dtype,
                                                                  rng=rng)]
    return nn.Sequential(*layers)


# --------------------------------------------------------------------------- the cases

@dataclass(frozen=True)
class NetCase:
    """One network on one batch shape `x` (N, C, H, W); `build(dtype, rng)`
    returns the fastconv.nn model."""
    name: str
    build: Callable
    x: tuple
    note: str = ""
    op = "net"
    kind = "net"

    def flops(self, direction):
        return None

    def bytes_moved(self, direction, itemsize):
        return None

    @property
    def images(self):
        """Images per call: the table's rate is images per second."""
        return self.x[0]

    def describe(self):
        return "x=(" + ",".join(map(str, self.x)) + ")"

    def compared(self, arrays):
        """The results checked across libraries: the output (infer), or the
        loss and all gradients as one array (train).  One array, because a
        gradient that is nearly zero (cancellation in float32) cannot be
        compared relative to its own size, only to the others'."""
        if len(arrays) == 1:
            return arrays
        return [arrays[0], np.concatenate([np.ravel(a) for a in arrays[1:]])]

    def record(self):
        """What the JSON file says about this case."""
        return {"op": self.op, "layer": self.describe(), "note": self.note, "x": self.x}

    def make_inputs(self, dtype, direction, seed=0):
        """The model (fastconv.nn, built from `seed`), a batch of images x
        and their labels."""
        rng = np.random.default_rng(seed)
        dtype = np.dtype(dtype)
        model = self.build(dtype.type, np.random.default_rng(seed + 1))
        return {"model": model, "x": rng.standard_normal(self.x, dtype=dtype),
                "target": rng.integers(0, CLASSES, self.x[0])}


def net(name, build, x, note="", **sizes):
    return NetCase(name, functools.partial(build, **sizes) if sizes else build, tuple(x),
                   note)


NET_CASES = (
    net("simplecnn", simple_convnet, (100, 1, 28, 28),
        note="textbook SimpleConvNet: conv 30x5x5 - relu - pool - fc 100 - relu - fc 10"),
    net("vgg", vgg_bn, (64, 3, 32, 32),
        note="VGG-style: 2x(conv3x3-BN-relu)+pool at 32/64/128 channels, fc 256, fc 10"),
    net("mobilenet", mobilenet, (64, 3, 64, 64),
        note="MobileNet-style: stem 32, 5 depthwise-separable blocks + BN to 256, pool, fc"),
    net("resnet", resnet, (32, 3, 32, 32),
        note="ResNet-14: stem 16, 3 stages x 2 basic blocks (16/32/64), pool, fc"),
)

QUICK_NET_CASES = (
    net("q-simplecnn", simple_convnet, (8, 1, 12, 12), size=12, filters=6, hidden=16),
    net("q-vgg", vgg_bn, (4, 3, 8, 8), size=8, widths=(4, 8), hidden=16),
    net("q-mobilenet", mobilenet, (4, 3, 8, 8), stem=4, blocks=((8, 2), (8, 1))),
    net("q-resnet", resnet, (4, 3, 8, 8), widths=(4, 8), blocks_per_stage=1),
)


# --------------------------------------------------------------------------- the passes

def _set_mode(model, training):
    # The same module tree switches between the two passes; both libraries
    # pay one attribute test per call for it.
    if model.training != training:
        model.train(training)


def fastconv_state(inputs):
    """The optimizer and loss that fastconv's training step uses."""
    from fastconv import nn, optim
    model = inputs["model"]
    return dict(inputs, optimizer=optim.SGD(model, lr=LEARNING_RATE, momentum=MOMENTUM),
                loss=nn.CrossEntropyLoss())


def fastconv_pass(direction):
    """fastconv.nn's pass: (inputs) -> its results (see the module docstring)."""
    from fastconv import nn
    if direction == "fused":
        def infer_fused(a):
            if "fused" not in a:
                a["fused"] = nn.fuse(a["model"])
            with nn.no_grad():
                return a["fused"](a["x"])
        return infer_fused
    if direction == "infer":
        def infer(a):
            _set_mode(a["model"], False)
            with nn.no_grad():
                return a["model"](a["x"])
        return infer

    def train_step(a):
        model, optimizer, loss_fn = a["model"], a["optimizer"], a["loss"]
        _set_mode(model, True)
        optimizer.zero_grad()
        loss = loss_fn(model(a["x"]), a["target"])
        # The images need no gradient (torch's do not require grad either).
        model.backward(loss_fn.backward(), input_grad=False)
        optimizer.step()
        return np.asarray(loss), [g for _, g in model.parameters()]
    return train_step


def torch_state(inputs):
    """The torch.nn twin of the model (same weights), its optimizer and loss,
    and the batch as tensors."""
    import torch
    from .torch_twin import to_torch
    model = to_torch(inputs["model"])
    return {"model": model, "x": torch.from_numpy(inputs["x"]),
            "target": torch.from_numpy(inputs["target"]),
            "optimizer": torch.optim.SGD(model.parameters(), lr=LEARNING_RATE,
                                         momentum=MOMENTUM),
            "loss": torch.nn.CrossEntropyLoss()}


def torch_pass(direction):
    """torch.nn's pass: the same work with autograd."""
    import torch
    if direction == "fused":
        def infer_fused(a):
            if "fused" not in a:
                with warnings.catch_warnings():   # torch.fx imports deprecated torch.jit APIs
                    warnings.simplefilter("ignore", DeprecationWarning)
                    from torch.fx.experimental.optimization import fuse
                _set_mode(a["model"], False)
                a["fused"] = fuse(a["model"])
            with torch.no_grad():
                return a["fused"](a["x"])
        return infer_fused
    if direction == "infer":
        def infer(a):
            _set_mode(a["model"], False)
            with torch.no_grad():
                return a["model"](a["x"])
        return infer

    def train_step(a):
        model, optimizer = a["model"], a["optimizer"]
        _set_mode(model, True)
        optimizer.zero_grad()
        loss = a["loss"](model(a["x"]), a["target"])
        loss.backward()
        optimizer.step()
        return loss.detach(), [p.grad for p in model.parameters()]
    return train_step
