"""Containers (Sequential, ModuleList, ModuleDict) and the composites that
wire layers into graphs: Residual (ResNet), Concat (Inception) and Add.

A composite's backward calls its members' backwards in reverse order of the
forward calls, so a member used twice pops its caches in the right order.

Each forward grants its members the privacy the module docs of
fastconv.nn.module describe ("Private intermediates"): an array passed from
one pure member to the next is nobody else's, so neither side copies it for
backward. A container is pure when its members are.

Sequential also pairs a BatchNorm, or a Residual, with the ReLU right after
it (see _fuses_relu): the ReLU runs inside the first layer's pass, forward
and backward.  The pairing lives in Sequential's forward because only a
container knows that one layer's output goes straight into the next and
nowhere else; the layers themselves stay what they are alone (each one's
own forward and backward are unchanged when called directly).
"""
import operator

import numpy as np

from .. import _args
from ..functional import _activation
from . import _checks
from .activation import _FASTCONV, ReLU
from .module import (Module, backward_through, call_granting, is_grad_enabled,
                     skips_input_grad)
from .normalization import BatchNorm1d, BatchNorm2d, BatchNorm3d

__all__ = ["Sequential", "ModuleList", "ModuleDict", "Residual", "Concat", "Add"]


def _check_module(value, where, owner):
    if not isinstance(value, Module):
        raise TypeError(f"{owner}: {where} is not a fastconv.nn Module: {value!r}")
    return value


_BATCH_NORMS = (BatchNorm1d, BatchNorm2d, BatchNorm3d)
# What a user (or fastconv.summary) may set on an instance to change how it
# runs: a module with any of these of its own runs unfused.
_CALL_ATTRIBUTES = ("forward", "backward", "__call__")


def _fuses_relu(first, second):
    """Whether Sequential may run `second`, a ReLU, inside `first`'s pass: a
    BatchNorm (functional.batch_norm_relu's kernels) or a Residual (its sum
    ReLU'd as it is written).  Both exactly the built-in classes (a subclass
    may change forward or backward, as SyncBatchNorm does), neither with a
    forward/backward of its own set on the instance (fastconv.nn has no hook
    registry: this is how a user or fastconv.summary hooks a module), both in
    the same mode, and the ReLU on the fastconv backend (whose kernels the
    pair runs; BatchNorm and Residual always run them).  The fused pair gives
    the two layers' own results to the bit."""
    return ((type(first) in _BATCH_NORMS or type(first) is Residual) and type(second) is ReLU
            and first.training == second.training
            and second._backend_now() == _FASTCONV
            and not any(name in vars(m) for m in (first, second) for name in _CALL_ATTRIBUTES))


class Sequential(Module):
    """Layers applied in order; backward runs them in reverse. Built from
    modules (named "0", "1", ...) or one dict of name -> module, as in PyTorch.
    A module may appear more than once (its parameters count once). A
    BatchNorm or a Residual followed by a ReLU runs as one fused pair when
    nothing visible can change (_fuses_relu), with the two layers' own
    results."""

    def __init__(self, *layers):
        super().__init__()
        if len(layers) == 1 and isinstance(layers[0], dict):
            items = layers[0].items()
        else:
            items = ((str(i), layer) for i, layer in enumerate(layers))
        for name, layer in items:
            self.add_module(name, _check_module(layer, f"argument {name}", "Sequential"))

    @property
    def layers(self):
        """The layers in order (a new list: use append to add one)."""
        return list(self._modules.values())

    def append(self, module):
        self.add_module(str(len(self._modules)), _check_module(module, "the argument",
                                                               "Sequential.append"))
        return self

    def forward(self, x):
        layers = list(self._modules.values())
        input_private, output_private = self._privacy(x)
        i = 0
        while i < len(layers):
            layer, fused_next, last = layers[i], None, i
            if i + 1 < len(layers) and _fuses_relu(layer, layers[i + 1]):
                fused_next, last = layers[i + 1], i + 1
            # A pure layer's output is fresh and read only by the next layer,
            # which may keep it; the first and last layers inherit what this
            # Sequential was granted (a fused pair: the pair's output).
            x_private = layers[i - 1]._is_pure() if i else input_private
            y_private = (layers[last + 1]._is_pure() if last + 1 < len(layers)
                         else output_private)
            x = call_granting(layer, x, x_private, y_private, fused_next)
            i = last + 1
        return x

    def _is_pure(self):
        return bool(self._modules) and all(m._is_pure() for m in self._modules.values())

    @skips_input_grad
    def backward(self, grad_output, *, input_grad=True):
        """The layers' backward in reverse; without input_grad the first
        layer is told it need not compute its input gradient (see
        fastconv.nn.module, "Input gradients nobody needs") and None is
        returned."""
        input_grad = _checks.flag(input_grad, "input_grad", "Sequential.backward")
        layers = list(self._modules.values())
        for layer in reversed(layers[1:]):
            grad_output = layer.backward(grad_output)
        if not layers:
            return grad_output if input_grad else None
        return backward_through(layers[0], grad_output, input_grad)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, index):
        items = list(self._modules.items())
        if isinstance(index, slice):
            return Sequential(dict(items[index]))
        return items[operator.index(index)][1]


class ModuleList(Module):
    """A list of registered modules (named "0", "1", ...); no forward of its own."""

    def __init__(self, modules=None):
        super().__init__()
        self.extend(modules or ())

    def _renumber(self, modules):
        for name in list(self._modules):
            self.__dict__.pop(name, None)
        self._modules.clear()
        for m in modules:
            self.append(m)

    def append(self, module):
        self.add_module(str(len(self._modules)),
                        _check_module(module, "the argument", "ModuleList.append"))
        return self

    def extend(self, modules):
        for m in modules:
            self.append(m)
        return self

    def insert(self, index, module):
        items = list(self._modules.values())
        items.insert(index, _check_module(module, "the argument", "ModuleList.insert"))
        self._renumber(items)

    def __getitem__(self, index):
        items = list(self._modules.values())
        if isinstance(index, slice):
            return ModuleList(items[index])
        return items[operator.index(index)]

    def __setitem__(self, index, module):
        name = list(self._modules)[operator.index(index)]
        self.add_module(name, _check_module(module, "the value", "ModuleList"))

    def __delitem__(self, index):
        items = list(self._modules.values())
        del items[index]
        self._renumber(items)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())


class ModuleDict(Module):
    """A dict of registered modules; no forward of its own."""

    def __init__(self, modules=None):
        super().__init__()
        self.update(modules or {})

    def update(self, modules):
        items = modules.items() if hasattr(modules, "items") else modules
        for name, m in items:
            self[name] = m

    def __setitem__(self, name, module):
        self.add_module(name, _check_module(module, f"the value for {name!r}", "ModuleDict"))

    def __getitem__(self, name):
        return self._modules[name]

    def __delitem__(self, name):
        del self._modules[name]
        self.__dict__.pop(name, None)

    def pop(self, name):
        module = self[name]
        del self[name]
        return module

    def __contains__(self, name):
        return name in self._modules

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def keys(self):
        return self._modules.keys()

    def values(self):
        return self._modules.values()

    def items(self):
        return self._modules.items()


class Residual(Module):
    """y = body(x) + shortcut(x), or body(x) + x without a shortcut (ResNet's
    basic block; a downsampling block passes e.g. a strided 1x1 conv as the
    shortcut). Both paths must give the same shape. In a Sequential, the
    ReLU after it runs in its sum's pass (see _fuses_relu)."""

    def __init__(self, body, shortcut=None):
        super().__init__()
        self.body = _check_module(body, "body", "Residual")
        self.shortcut = None if shortcut is None else _check_module(shortcut, "shortcut",
                                                                    "Residual")

    def forward(self, x):
        # The ReLU after this block when a Sequential runs the two fused:
        # relu(body + skip) in the sum's pass, with that ReLU's forward
        # recorded as masked here.
        relu = self._fused_next()
        # x is read by the body and by the shortcut (or the sum): each may
        # keep it uncopied only when the other does not write into it. Their
        # outputs are read only by the sum.
        input_private, _ = self._privacy(x)
        shortcut = self.shortcut
        shortcut_pure = shortcut is None or shortcut._is_pure()
        y = call_granting(self.body, x, input_private and shortcut_pure, True)
        if shortcut is not None:
            skip = call_granting(shortcut, x, input_private and self.body._is_pure(), True)
        else:
            skip = _checks.float_input(x, "Residual")
        if np.shape(y) != np.shape(skip):
            raise ValueError(f"Residual: the body's output has shape {np.shape(y)} but the "
                             f"{'shortcut' if self.shortcut is not None else 'input'} has "
                             f"shape {np.shape(skip)}; give a shortcut that matches")
        y = _activation.sum_of(y, skip, relu is not None)
        if not is_grad_enabled():
            return y
        # the fused output is the ReLU's mask: kept as ReLU keeps its output
        self._save(None if relu is None else self._keep_output(y), y)
        if relu is not None:
            relu._save_masked_by_producer(y)
        return y

    @skips_input_grad
    def backward(self, grad_output, *, input_grad=True):
        """body's input gradient plus the shortcut's (None, with neither
        computed where it can be skipped, when input_grad is False)."""
        input_grad = _checks.flag(input_grad, "input_grad", "Residual.backward")
        relu_mask, g = self._restore(grad_output)
        if relu_mask is not None:
            g = _activation.relu_backward(g, relu_mask)
        skip = backward_through(self.shortcut, g, input_grad) if self.shortcut is not None else g
        body = backward_through(self.body, g, input_grad)
        return body + skip if input_grad else None

    def _is_pure(self):
        return self.body._is_pure() and (self.shortcut is None or self.shortcut._is_pure())


class Concat(Module):
    """Parallel branches on the same input, joined along `dim` (channels by
    default: Inception). backward splits the gradient and sums the branches'
    input gradients."""

    def __init__(self, *branches, dim=1):
        super().__init__()
        if not branches:
            raise ValueError("Concat: give at least one branch")
        for i, b in enumerate(branches):
            self.add_module(str(i), _check_module(b, f"branch {i}", "Concat"))
        self.dim = _args.as_int(dim, "dim", "Concat")

    def forward(self, x):
        # Every branch reads x: one may keep it uncopied when no other writes
        # into it. Their outputs are read only by the concatenation.
        input_private, _ = self._privacy(x)
        branches = list(self._modules.values())
        pure = [b._is_pure() for b in branches]
        outs = [call_granting(b, x, input_private and all(pure[:i] + pure[i + 1:]), True)
                for i, b in enumerate(branches)]
        try:
            y = np.concatenate(outs, axis=self.dim)
        except ValueError as exc:     # AxisError is a ValueError
            raise ValueError(f"Concat: the branches' outputs {[np.shape(o) for o in outs]} "
                             f"cannot be joined along dim={self.dim}: {exc}") from None
        self._save([np.shape(o)[self.dim] for o in outs], y)
        return y

    @skips_input_grad
    def backward(self, grad_output, *, input_grad=True):
        """The sum of the branches' input gradients (None, with none computed
        where it can be skipped, when input_grad is False)."""
        input_grad = _checks.flag(input_grad, "input_grad", "Concat.backward")
        sizes, g = self._restore(grad_output)
        parts = np.split(g, np.cumsum(sizes)[:-1], axis=self.dim)
        branches = list(self._modules.values())
        grad = None
        for b, part in zip(reversed(branches), reversed(parts)):
            gx = backward_through(b, np.ascontiguousarray(part), input_grad)
            if input_grad:
                grad = gx if grad is None else grad + gx
        return grad

    def _is_pure(self):
        return all(b._is_pure() for b in self._modules.values())

    def extra_repr(self):
        return f"dim={self.dim}"


class Add(Module):
    """y = a + b (+ ...), arrays of one shape; backward returns one gradient
    per input, as a tuple."""

    def forward(self, *inputs):
        if not inputs:
            raise ValueError("Add: give at least one input")
        arrays = [_checks.float_input(a, "Add", f"input {i}") for i, a in enumerate(inputs)]
        for i, a in enumerate(arrays[1:], 1):
            if a.shape != arrays[0].shape:
                raise ValueError(f"Add: input {i} has shape {a.shape} but input 0 has shape "
                                 f"{arrays[0].shape} (no broadcasting)")
        _args.same_dtype("Add", **{f"input {i}": a for i, a in enumerate(arrays)})
        y = _activation.sum_of(arrays[0], arrays[1]) if len(arrays) > 1 else arrays[0].copy()
        for a in arrays[2:]:
            y += a
        self._save(len(arrays), y)
        return y

    def backward(self, grad_output):
        n, g = self._restore(grad_output)
        return tuple(g.copy() for _ in range(n))
