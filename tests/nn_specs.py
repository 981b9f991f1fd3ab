"""Layer cases shared by tests/test_nn_layers.py (gradcheck, no torch) and
tests/test_nn_torch.py (against torch.nn): every fastconv.nn layer with a
small float64 input, PyTorch's arguments, and a few random conv geometries."""
import numpy as np

import fastconv
from fastconv import nn

F64 = np.float64


def gradcheck_module(module, x, **kwargs):
    """fastconv.gradcheck of the input and every parameter of a module tree
    at x (each evaluation starts from zero grads: backward adds into them)."""
    params = dict(module.named_parameters())

    def f(x, *arrays):
        module.zero_grad()
        y = module(x)
        return y, lambda g: ((module.backward(g),)
                             + tuple(dict(module.named_grads())[n] for n in params))

    return fastconv.gradcheck(f, x, *params.values(), **kwargs)


class Case:
    """A layer factory, its input shape, its mode, and whether the input must
    stay away from a kink at 0 (gradcheck's central differences)."""

    def __init__(self, name, make, shape, train=True, kink=False):
        self.name, self.make, self.shape, self.train, self.kink = name, make, shape, train, kink

    def layer(self):
        layer = self.make()
        return layer.train(self.train)

    def input(self, rng):
        x = rng.standard_normal(self.shape)
        if self.kink:
            x = np.where(np.abs(x) < 0.05, np.sign(x + 1e-12) * 0.1, x)
        return x


def _bn(cls, *args, running=True, **kwargs):
    def make():
        layer = cls(*args, dtype=F64, **kwargs)
        r = np.random.default_rng(3)
        if layer.affine:
            layer.params["weight"][:] = r.uniform(0.5, 1.5, layer.num_features)
            layer.params["bias"][:] = r.standard_normal(layer.num_features)
        if running and layer.track_running_stats:
            layer.running_mean[:] = r.standard_normal(layer.num_features)
            layer.running_var[:] = r.uniform(0.5, 2, layer.num_features)
        return layer
    return make


def _random_conv_cases(count, seed=2026):
    """Random conv / transposed-conv geometries of 1-3 spatial dims."""
    r = np.random.default_rng(seed)
    cases = []
    for i in range(count):
        dims = int(r.integers(1, 4))
        transposed = bool(r.integers(0, 2))
        groups = int(r.integers(1, 3))
        cin, cout = groups * int(r.integers(1, 3)), groups * int(r.integers(1, 3))
        k = tuple(int(v) for v in r.integers(1, 4, dims))
        stride = tuple(int(v) for v in r.integers(1, 3, dims))
        dilation = tuple(int(v) for v in r.integers(1, 3, dims))
        padding = tuple(int(r.integers(0, kk // 2 + 1)) for kk in k)
        size = tuple((kk - 1) * d + 1 + int(r.integers(1, 3)) for kk, d in zip(k, dilation))
        bias = bool(r.integers(0, 2))
        if transposed:
            cls = getattr(nn, f"ConvTranspose{dims}d")
            outpad = tuple(int(r.integers(0, max(s, d))) for s, d in zip(stride, dilation))

            def make(cls=cls, a=(cin, cout, k, stride, padding, outpad, groups, bias, dilation)):
                return cls(*a, dtype=F64, rng=0)
        else:
            cls = getattr(nn, f"Conv{dims}d")

            def make(cls=cls, a=(cin, cout, k, stride, padding, dilation, groups, bias)):
                return cls(*a, dtype=F64, rng=0)
        cases.append(Case(f"random{i}-{cls.__name__}", make, (2, cin) + size))
    return cases


CASES = [
    Case("conv1d", lambda: nn.Conv1d(3, 4, 3, dtype=F64, rng=0), (2, 3, 7)),
    Case("conv1d-args", lambda: nn.Conv1d(4, 6, 3, stride=2, padding=1, dilation=2, groups=2,
                                          bias=False, dtype=F64, rng=0), (2, 4, 9)),
    Case("conv2d-same", lambda: nn.Conv2d(3, 4, 3, padding="same", dtype=F64, rng=0),
         (2, 3, 5, 6)),
    Case("conv2d-depthwise", lambda: nn.Conv2d(4, 4, (3, 1), stride=(2, 1), padding=(1, 0),
                                               groups=4, dtype=F64, rng=0), (2, 4, 6, 5)),
    Case("conv3d", lambda: nn.Conv3d(2, 3, (2, 3, 3), stride=(1, 2, 1), padding=1, dtype=F64,
                                     rng=0), (1, 2, 4, 5, 5)),
    Case("convT1d", lambda: nn.ConvTranspose1d(3, 2, 3, stride=2, padding=1, output_padding=1,
                                               dtype=F64, rng=0), (2, 3, 4)),
    Case("convT2d", lambda: nn.ConvTranspose2d(4, 6, 3, stride=2, groups=2, dilation=2,
                                               dtype=F64, rng=0), (2, 4, 3, 4)),
    Case("convT3d", lambda: nn.ConvTranspose3d(2, 2, 2, stride=2, dtype=F64, rng=0),
         (1, 2, 2, 3, 2)),
    *_random_conv_cases(6),
    Case("maxpool1d", lambda: nn.MaxPool1d(3, stride=2, padding=1), (2, 3, 8)),
    Case("maxpool2d", lambda: nn.MaxPool2d(2), (2, 3, 6, 6)),
    Case("maxpool2d-ceil", lambda: nn.MaxPool2d(3, 2, 1, ceil_mode=True), (2, 2, 7, 7)),
    Case("maxpool2d-dil", lambda: nn.MaxPool2d(2, stride=1, dilation=2), (1, 2, 5, 5)),
    Case("maxpool3d", lambda: nn.MaxPool3d(2, stride=1), (1, 2, 3, 4, 3)),
    Case("avgpool1d", lambda: nn.AvgPool1d(3, 2, 1, count_include_pad=False), (2, 3, 8)),
    Case("avgpool2d-ceil", lambda: nn.AvgPool2d(3, 2, 1, ceil_mode=True), (2, 2, 7, 6)),
    Case("avgpool2d-div", lambda: nn.AvgPool2d(2, divisor_override=3), (2, 2, 4, 4)),
    Case("avgpool3d", lambda: nn.AvgPool3d(2), (1, 2, 4, 4, 4)),
    Case("adaptiveavg2d", lambda: nn.AdaptiveAvgPool2d((3, 2)), (2, 3, 7, 5)),
    Case("adaptiveavg1d", lambda: nn.AdaptiveAvgPool1d(3), (2, 3, 7)),
    Case("adaptiveavg3d", lambda: nn.AdaptiveAvgPool3d((2, None, 3)), (1, 2, 5, 3, 4)),
    Case("adaptivemax1d", lambda: nn.AdaptiveMaxPool1d(3), (2, 3, 7)),
    Case("adaptivemax2d", lambda: nn.AdaptiveMaxPool2d((3, 2)), (2, 3, 7, 5)),
    Case("adaptivemax3d", lambda: nn.AdaptiveMaxPool3d(2), (1, 2, 5, 3, 4)),
    Case("upsample-nearest", lambda: nn.Upsample(scale_factor=2), (2, 3, 4)),
    Case("upsample-bilinear", lambda: nn.Upsample(size=(5, 7), mode="bilinear",
                                                  align_corners=True), (2, 2, 3, 4)),
    Case("upsample-trilinear", lambda: nn.Upsample(scale_factor=(1.5, 2, 0.7),
                                                   mode="trilinear"), (1, 2, 3, 2, 4)),
    Case("pixelshuffle", lambda: nn.PixelShuffle(2), (2, 8, 3, 2)),
    Case("pixelunshuffle", lambda: nn.PixelUnshuffle(2), (2, 2, 4, 6)),
    Case("channelshuffle", lambda: nn.ChannelShuffle(3), (2, 6, 2, 3)),
    Case("bn1d", _bn(nn.BatchNorm1d, 3), (4, 3)),
    Case("bn1d-noaffine", _bn(nn.BatchNorm1d, 3, affine=False), (4, 3, 5)),
    Case("bn1d-eval", _bn(nn.BatchNorm1d, 3), (4, 3, 2), train=False),
    Case("bn2d", _bn(nn.BatchNorm2d, 3, momentum=0.3), (3, 3, 2, 2)),
    Case("bn2d-eval", _bn(nn.BatchNorm2d, 3), (2, 3, 2, 2), train=False),
    Case("bn2d-cumulative", _bn(nn.BatchNorm2d, 2, momentum=None), (2, 2, 3, 1)),
    Case("bn3d-untracked", _bn(nn.BatchNorm3d, 2, track_running_stats=False),
         (2, 2, 3, 2, 2)),
    Case("bn3d-untracked-eval", _bn(nn.BatchNorm3d, 2, track_running_stats=False),
         (2, 2, 3, 2, 2), train=False),
    Case("linear", lambda: nn.Linear(5, 4, dtype=F64, rng=0), (3, 5)),
    Case("linear-3d-nobias", lambda: nn.Linear(5, 4, bias=False, dtype=F64, rng=0), (2, 3, 5)),
    Case("linear-unbatched", lambda: nn.Linear(5, 4, dtype=F64, rng=0), (5,)),
    Case("flatten", lambda: nn.Flatten(), (2, 3, 2, 2)),
    Case("flatten-0-1", lambda: nn.Flatten(0, 1), (2, 3, 2)),
    Case("identity", lambda: nn.Identity(), (2, 3)),
    Case("dropout-eval", lambda: nn.Dropout(0.4), (2, 3), train=False),
    Case("relu", lambda: nn.ReLU(), (2, 3, 4), kink=True),
    # in place on a fresh output, as a network uses it (on the input itself,
    # the numerical gradient's perturbed input would be overwritten)
    Case("relu-inplace", lambda: nn.Sequential(nn.Linear(3, 3, dtype=F64, rng=0),
                                               nn.ReLU(inplace=True)), (2, 3), kink=True),
    Case("leakyrelu", lambda: nn.LeakyReLU(0.2), (2, 3, 4), kink=True),
    Case("prelu", lambda: nn.PReLU(dtype=F64), (2, 3, 4), kink=True),
    Case("prelu-channels", lambda: nn.PReLU(3, init=0.1, dtype=F64), (2, 3, 2, 2), kink=True),
    Case("prelu-1d", lambda: nn.PReLU(dtype=F64), (5,), kink=True),
    Case("rrelu-eval", lambda: nn.RReLU(0.1, 0.3), (2, 5), train=False, kink=True),
    Case("elu", lambda: nn.ELU(0.5), (2, 5), kink=True),
    Case("gelu", lambda: nn.GELU(), (2, 5)),
    Case("gelu-tanh", lambda: nn.GELU(approximate="tanh"), (2, 5)),
    Case("silu", lambda: nn.SiLU(), (2, 5)),
    Case("sigmoid", lambda: nn.Sigmoid(), (2, 5)),
    Case("tanh", lambda: nn.Tanh(), (2, 5)),
    Case("softmax", lambda: nn.Softmax(dim=1), (2, 3, 4)),
    Case("softmax-last", lambda: nn.Softmax(dim=-1), (2, 3, 4)),
    Case("logsoftmax", lambda: nn.LogSoftmax(dim=0), (3, 4)),
    Case("logsoftmax-2", lambda: nn.LogSoftmax(dim=2), (2, 3, 4)),
]
