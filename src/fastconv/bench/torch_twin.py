"""The torch.nn twin of a fastconv.nn network: the same layers with the same
parameters, buffers and train/eval modes, so the two can be compared output
for output, gradient for gradient, and epoch for epoch (the examples' --torch
runs; network benchmarks).

``to_torch(module)`` walks the module tree. Containers and composites
(Sequential, Residual, Concat) become torch modules that wire their
children the same way; each leaf layer becomes the torch.nn class of the
same name built from the same constructor arguments. A module used twice in
ours is one module used twice in the twin (shared weights stay shared).
Anything else raises TypeError naming it; a network with modules of its own
(a hand-written forward/backward) passes ``custom={Type: build}`` where
``build(module, convert)`` returns the torch module and calls ``convert`` on
its children.
"""
import collections
import functools

import numpy as np

from .. import nn

__all__ = ["to_torch", "SUPPORTED"]


def _conv_args(m):
    if m.transposed:
        return (m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding,
                m.output_padding, m.groups, "bias" in m.params, m.dilation)
    return (m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, m.dilation,
            m.groups, "bias" in m.params)


def _avg_pool_args(m):
    args = (m.kernel_size, m.stride, m.padding, m.ceil_mode, m.count_include_pad)
    # torch's AvgPool1d has no divisor_override
    return args if type(m).__name__ == "AvgPool1d" else args + (m.divisor_override,)


def _no_args(m):
    return ()


def _leaf_table():
    """torch.nn class name -> the constructor arguments, read off our layer."""
    table = {
        "Linear": lambda m: (m.in_features, m.out_features, "bias" in m.params),
        "Flatten": lambda m: (m.start_dim, m.end_dim),
        "Dropout": lambda m: (m.p,),
        "LeakyReLU": lambda m: (m.negative_slope,),
        "PReLU": lambda m: (m.num_parameters,),
        "RReLU": lambda m: (m.lower, m.upper),
        "ELU": lambda m: (m.alpha,),
        "GELU": lambda m: (m.approximate,),
        "Softmax": lambda m: (m.dim,),
        "LogSoftmax": lambda m: (m.dim,),
        # layers of the new ops (PyTorch's argument names), once they exist
        "Upsample": lambda m: (m.size, m.scale_factor, m.mode, m.align_corners),
        "PixelShuffle": lambda m: (m.upscale_factor,),
        "PixelUnshuffle": lambda m: (m.downscale_factor,),
        "ChannelShuffle": lambda m: (m.groups,),
    }
    for name in ("Identity", "ReLU", "SiLU", "Sigmoid", "Tanh"):
        table[name] = _no_args
    for d in (1, 2, 3):
        table[f"Conv{d}d"] = table[f"ConvTranspose{d}d"] = _conv_args
        table[f"MaxPool{d}d"] = lambda m: (m.kernel_size, m.stride, m.padding, m.dilation,
                                           getattr(m, "return_indices", False), m.ceil_mode)
        table[f"AvgPool{d}d"] = _avg_pool_args
        table[f"BatchNorm{d}d"] = lambda m: (m.num_features, m.eps, m.momentum, m.affine,
                                             m.track_running_stats)
        table[f"AdaptiveAvgPool{d}d"] = lambda m: (m.output_size,)
        table[f"AdaptiveMaxPool{d}d"] = lambda m: (m.output_size,
                                                   getattr(m, "return_indices", False))
    # only the layers this fastconv.nn has (e.g. AdaptiveAvgPool1d may not exist yet)
    return {name: args for name, args in table.items() if hasattr(nn, name)}


SUPPORTED = tuple(sorted(_leaf_table()) + ["Sequential", "Residual", "Concat"])


def _import_torch():
    try:
        import torch
    except ImportError:
        raise ImportError("to_torch needs PyTorch: pip install torch") from None
    return torch


@functools.lru_cache(maxsize=None)
def _composites():
    """torch modules for Residual and Concat (defined once torch is imported)."""
    torch = _import_torch()

    class Residual(torch.nn.Module):
        def __init__(self, body, shortcut):
            super().__init__()
            self.body, self.shortcut = body, shortcut

        def forward(self, x):
            return self.body(x) + (x if self.shortcut is None else self.shortcut(x))

    class Concat(torch.nn.Module):
        def __init__(self, branches, dim):
            super().__init__()
            for i, branch in enumerate(branches):
                self.add_module(str(i), branch)
            self.dim = dim

        def forward(self, x):
            return torch.cat([b(x) for b in self._modules.values()], dim=self.dim)

    return Residual, Concat


def _params_dtype(module, torch):
    """torch's dtype for the module's parameters (float32 when it has none)."""
    for value in module.state_dict().values():
        if np.issubdtype(np.asarray(value).dtype, np.floating):
            return torch.float64 if np.asarray(value).dtype == np.float64 else torch.float32
    return torch.float32


def to_torch(module, custom=None):
    """A torch.nn.Module computing what `module` (a fastconv.nn network)
    computes: same structure, parameters, buffers, dtype and train/eval mode
    per submodule. Dropout and RReLU draw their own random numbers.
    `custom` maps a Module type to ``build(module, convert) -> torch module``."""
    torch = _import_torch()
    if not isinstance(module, nn.Module):
        raise TypeError(f"to_torch: module must be a fastconv.nn Module, got {module!r}")
    residual_cls, concat_cls = _composites()
    leaf_args = _leaf_table()
    custom = dict(custom or {})
    memo = {}

    def child(path, name):
        return f"{path}.{name}" if path else name

    def convert(m, path=""):
        if id(m) in memo:
            return memo[id(m)]
        name = type(m).__name__
        if type(m) in custom:
            twin = custom[type(m)](m, convert)
        elif isinstance(m, nn.Sequential):
            twin = torch.nn.Sequential(collections.OrderedDict(
                (n, convert(c, child(path, n)))
                for n, c in m._modules.items()))
        elif isinstance(m, nn.Residual):
            twin = residual_cls(convert(m.body, child(path, "body")),
                                None if m.shortcut is None else convert(m.shortcut,
                                                                        child(path, "shortcut")))
        elif isinstance(m, nn.Concat):
            twin = concat_cls([convert(b, child(path, n)) for n, b in m._modules.items()], m.dim)
        elif name in leaf_args and type(m) is getattr(nn, name):
            twin = getattr(torch.nn, name)(*leaf_args[name](m))
        else:
            raise TypeError(
                f"to_torch: no torch.nn twin for {path or 'the model'} ({name}); supported: "
                f"{', '.join(SUPPORTED)}; for a module of your own pass "
                f"custom={{{name}: build}} with build(module, convert) -> torch module")
        memo[id(m)] = twin
        return twin

    theirs = convert(module).to(_params_dtype(module, torch))
    theirs.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in
                            module.state_dict().items()})
    for name, ours in module.named_modules():
        theirs.get_submodule(name).train(ours.training)
    return theirs
