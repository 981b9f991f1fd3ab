"""Module: the base of every layer, container and loss.

The style is the textbook's: every layer has ``forward(x) -> y`` and
``backward(grad_y) -> grad_x``, and the user (or a container) drives them.

Gradient rules (as PyTorch's autograd would give)
-------------------------------------------------
* ``backward`` ADDS into ``grads`` (the parameters' gradients) until
  ``zero_grad()``.
* Every ``forward`` call outside :func:`no_grad` pushes what its backward
  needs (a *cache*) onto the module's stack of pending forwards; ``backward``
  pops the newest. A layer used several times before backward (shared
  weights, a Siamese net, ``Sequential(lin, Tanh(), lin)``) therefore gets its
  backward calls in reverse order of its forward calls, and its ``grads`` end
  up holding the sum over the uses.
* A backward with no pending forward, or whose ``grad_output`` has another
  shape or dtype than the pending forward's output, raises (and leaves the
  stack as it was): it never returns a wrong gradient.
* The rule to remember: **every forward outside ``no_grad()`` waits for its
  backward.** Evaluating a validation batch between ``net(x)`` and
  ``net.backward(g)`` must run under ``with fastconv.nn.no_grad():``
  (``eval()`` alone does not stop caching, as in PyTorch): otherwise the
  backward pops the validation batch's cache. Backward raises when it can tell:
  when the shapes differ, or when the pending forward ran in eval mode and
  backward runs in train mode (``eval()``, validate, ``train()``, backward);
  a same-shaped batch in the same mode cannot be told apart.
  ``clear_pending()`` drops every pending cache of a module tree; a stack
  that keeps growing triggers a RuntimeWarning.

Private intermediates (copies a container may skip)
----------------------------------------------------
A layer keeps for backward a private copy of the arrays its backward reads,
since whoever holds them may edit them before backward. A network's
*intermediate* arrays - the output of one layer consumed by the next inside a
container - are held by nobody else, so the containers (Sequential, Residual,
Concat) grant each call of a child two kinds of privacy, and the child then
keeps the array itself instead of a copy:

* its INPUT is private when the array is the fresh output of a *pure*
  sibling (or the container's own input was granted private): nobody outside
  holds it, and only the child reads it (plus the producer, which may keep it
  uncopied only when the child is pure too). A child that keeps its input
  must not write into it (``_private_copy``); an in-place layer keeps a copy.
* its OUTPUT is private when what it returns is read only by a pure consumer
  (the next child, or a container's own sum or concatenation) and is never
  returned to the user. A child that returns a fresh array may then keep it
  (``_keep_output``); an in-place layer, whose output is its input, only when
  its input is private too.

A module is *pure* (``_is_pure()``) when its forward never writes into its
input and returns a fresh array that shares no memory with the input or with
anything else the caller can reach. Built-in layers declare it (``_pure``;
in-place activations and max pooling with return_indices are not pure), a
container is pure when its members are, and every other module (a user's
own) is not, so nothing changes around code the rule cannot see into. The
container's own input (held by the user) and its final output (returned to
the user) are never private, unless an enclosing container grants it; a
grant is to one call of one module, so a user's module whose forward calls
its own layers passes nothing on. A pure child whose output shares memory
with its input all the same (a backend that returns a view) gets its output
copied by the container before anything else sees it. Inside ``no_grad()``
nothing is kept, so nothing changes.

Input gradients nobody needs
----------------------------
``backward(grad_y)`` returns grad_x, but a network's first layer computes a
gradient for the images, which a training step throws away (PyTorch skips it:
the images do not require grad). ``backward(grad_y, input_grad=False)`` on a
container or on a layer that has parameters and an input gradient of its own
(convolutions, transposed convolutions, Linear) skips that work and returns
None: a container passes it to its first child (Sequential) or to every
branch (Residual, Concat), and a child that cannot skip it (any other layer,
or a user's module) computes it as usual and the container drops it. The
parameters' gradients are exactly those of the full backward. On a backend
other than fastconv's and the reference, the layer computes the input
gradient and drops it (that backend's ops need not know the argument).

Registration
------------
A Module assigned as an attribute of a Module (``self.conv1 = nn.Conv2d(...)``)
is a registered child, as are the members of Sequential, ModuleList and
ModuleDict: ``parameters()``, ``named_parameters()``, ``state_dict()`` (keys
like ``"conv1.weight"``), ``train()``/``eval()``, ``zero_grad()`` and
``set_backend()`` reach it. ``params``/``grads`` hold a module's OWN
parameters; ``parameters()`` yields each shared parameter once.

Backends
--------
Layers that convolve or pool take their ops from a backend: a module with the
names of :mod:`fastconv.functional` (the default) or :mod:`fastconv.reference`
(plain NumPy). ``module.set_backend(...)`` (a module of ops, or 'fastconv' /
'reference'; None for the default) sets it for a module tree,
``with use_backend(...):`` for a block of code. A backward uses the backend
its forward used. Modules store the backend's import name, never the module
object, so they pickle and deep-copy at any point (pending caches included).
"""
import contextlib
import contextvars
import importlib
import sys
import types
import warnings

import numpy as np

from .. import _copy
from . import _checks

__all__ = ["Module", "no_grad", "enable_grad", "is_grad_enabled", "use_backend",
           "get_backend"]

# Context variables, so that no_grad/use_backend in one thread do not leak
# into others.
_grad_enabled = contextvars.ContextVar("fastconv_nn_grad_enabled", default=True)
_default_backend = contextvars.ContextVar("fastconv_nn_backend",
                                          default="fastconv.functional")

# The privacy a container grants one call of one child (see "Private
# intermediates" above): (the module, its input when private else None,
# whether its output is private, the layer after it that this call runs
# fused, else None: Sequential's BatchNorm + ReLU).
_call_grant = contextvars.ContextVar("fastconv_nn_call_grant", default=None)

# A pending-forward stack this deep means forwards whose backward never comes
# (inference outside no_grad): warn at each doubling from here.
_PENDING_WARN_DEPTH = 64


# --------------------------------------------------------------------------- grad mode

def is_grad_enabled():
    """False inside ``no_grad()``: forwards keep no cache for backward."""
    return _grad_enabled.get()


@contextlib.contextmanager
def _grad_mode(enabled):
    token = _grad_enabled.set(enabled)
    try:
        yield
    finally:
        _grad_enabled.reset(token)


def no_grad():
    """``with no_grad(): y = net(x)`` runs forward without caching anything
    for backward (inference, validation, a peek between forward and backward)."""
    return _grad_mode(False)


def enable_grad():
    """Undo ``no_grad`` inside its block."""
    return _grad_mode(True)


# --------------------------------------------------------------------------- backends

_BACKEND_NAMES = {"fastconv": "fastconv.functional", "functional": "fastconv.functional",
                  "reference": "fastconv.reference"}


def _backend_ref(backend):
    """What a module stores for `backend`: the import name of a module of ops
    (picklable), or the object itself for a non-module namespace of ops."""
    if isinstance(backend, str):
        if backend not in _BACKEND_NAMES:
            raise ValueError(f"backend must be 'fastconv', 'functional', 'reference' or a "
                             f"module of ops, got backend={backend!r}")
        return _BACKEND_NAMES[backend]
    if not hasattr(backend, "conv2d"):
        raise ValueError(f"backend must be a module of ops such as fastconv.functional "
                         f"or fastconv.reference, got backend={backend!r}")
    if isinstance(backend, types.ModuleType):
        return backend.__name__
    return backend


def _backend_ops(ref):
    if isinstance(ref, str):
        return sys.modules.get(ref) or importlib.import_module(ref)
    return ref


def get_backend():
    """The ops module layers without a backend of their own use now."""
    return _backend_ops(_default_backend.get())


@contextlib.contextmanager
def use_backend(backend):
    """Run layers that have no backend of their own on `backend` inside the
    block, e.g. ``with use_backend(fastconv.reference): net(x)``."""
    token = _default_backend.set(_backend_ref(backend))
    try:
        yield get_backend()
    finally:
        _default_backend.reset(token)


# --------------------------------------------------------------------------- Module

class Module:
    """Base class of layers, containers and losses (see the module docstring
    for the gradient, registration and backend rules)."""

    def __init__(self):
        # Straight into __dict__: __setattr__ below needs _modules to exist.
        d = self.__dict__
        d["params"] = {}
        d["grads"] = {}
        d["training"] = True
        d["_modules"] = {}
        d["_buffer_names"] = []
        d["_backend"] = None
        d["_pending"] = []

    # the computation -------------------------------------------------------
    def forward(self, *inputs):
        raise NotImplementedError(f"{type(self).__name__} has no forward")

    def backward(self, grad_output):
        raise NotImplementedError(f"{type(self).__name__} has no backward")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def _ops(self):
        """The backend module this call runs on."""
        return _backend_ops(self._backend_now())

    @staticmethod
    def _ops_of(backend):
        """The backend module a cached forward ran on."""
        return _backend_ops(backend)

    def _backend_now(self):
        return self._backend if self._backend is not None else _default_backend.get()

    # pending forwards ------------------------------------------------------
    def _save(self, ctx, output):
        """Push what backward needs, with the output's shape and dtype to
        check grad_output against (nothing inside no_grad)."""
        if not _grad_enabled.get():
            return
        pending = self._pending
        pending.append((ctx, np.shape(output), np.asarray(output).dtype, self.training))
        depth = len(pending)
        if depth >= _PENDING_WARN_DEPTH and depth & (depth - 1) == 0:
            warnings.warn(f"{type(self).__name__}: {depth} forward calls are waiting for "
                          f"their backward; run inference under `with fastconv.nn.no_grad():`"
                          f" (or call clear_pending())", RuntimeWarning, stacklevel=3)

    def _restore(self, grad_output, name="grad_output"):
        """Pop the newest pending forward's cache after checking that
        `grad_output` fits its output: (ctx, grad_output as an array)."""
        owner = f"{type(self).__name__}.backward"
        if not self._pending:
            raise RuntimeError(f"{owner}: no pending forward (backward called before "
                               f"forward, twice for one forward, or after a forward run "
                               f"under no_grad())")
        ctx, shape, dtype, training = self._pending[-1]
        if self.training and not training:
            raise RuntimeError(f"{owner}: the pending forward ran in eval mode, this backward "
                               f"runs in train mode: most likely an evaluation pass ran "
                               f"outside no_grad() after the training forward. Run inference "
                               f"under `with fastconv.nn.no_grad():` (or clear_pending())")
        g = _checks.float_input(grad_output, owner, name)
        if g.shape != shape:
            raise ValueError(f"{owner}: {name} has shape {g.shape} but the pending forward's "
                             f"output has shape {shape} (backward calls must come in "
                             f"reverse order of the forward calls)")
        if g.dtype.type is not dtype.type:
            raise TypeError(f"{owner}: {name} has dtype {g.dtype} but the forward's output "
                            f"has dtype {dtype}")
        self._pending.pop()
        return ctx, g

    def _private_copy(self, x):
        """`x` as a C-contiguous copy when a backward will read it: the caller
        may edit x in place before backward, which must not change the
        gradient. x itself inside no_grad, or when this call's container
        granted x private (nobody else can edit it; the layer must not write
        into it either)."""
        if not _grad_enabled.get():
            return x
        input_private, _ = self._privacy(x)
        return x if input_private and x.flags.c_contiguous else fresh_copy(x)

    def _keep_output(self, y):
        """What backward keeps of this call's fresh output `y`: y itself when
        its container granted the output private (only a pure consumer reads
        it, and the user never gets it), else a private copy."""
        _, output_private = self._privacy(None)
        return y if output_private and y.flags.c_contiguous else fresh_copy(y)

    def _fused_next(self):
        """The module its container runs fused into this call (the ReLU after
        a BatchNorm, see Sequential), else None."""
        grant = _call_grant.get()
        return grant[3] if grant is not None and grant[0] is self else None

    def _privacy(self, x):
        """(input_private, output_private) that the container calling this
        module now granted it; input_private only for `x`, the very array
        it was given."""
        grant = _call_grant.get()
        if grant is None or grant[0] is not self:
            return False, False
        return x is not None and grant[1] is x, grant[2]

    # True for a class whose forward never writes into its input and always
    # returns a fresh array sharing no memory with it (or with anything else
    # the caller holds): see "Private intermediates".
    _pure = False

    def _is_pure(self):
        """Whether this module's forward is pure as its class declares it
        (layers with a mode that is not, e.g. inplace=True, override this)."""
        return self._pure

    def clear_pending(self):
        """Drop every pending forward cache of this module and its children."""
        for m in self.modules():
            m._pending.clear()
        return self

    # registration ----------------------------------------------------------
    def __setattr__(self, name, value):
        d = self.__dict__
        modules = d.get("_modules")
        if modules is None:
            if isinstance(value, Module):
                raise AttributeError(f"cannot assign the module {name!r} before "
                                     f"Module.__init__() is called (call super().__init__() "
                                     f"first in {type(self).__name__}.__init__)")
        elif name in d.get("params", ()):
            raise AttributeError(f"{type(self).__name__}.{name} is a parameter: change it in "
                                 f"place ({name}[...] = value) or with load_state_dict")
        elif isinstance(value, Module):
            modules[name] = value
        else:
            modules.pop(name, None)
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        self.__dict__.get("_modules", {}).pop(name, None)
        object.__delattr__(self, name)

    def __getattr__(self, name):
        # Only called when normal lookup fails: parameters read as attributes
        # (conv.weight), as in PyTorch.
        params = self.__dict__.get("params")
        if params is not None and name in params:
            return params[name]
        hint = ("" if "_modules" in self.__dict__ or name.startswith("__")
                else f" (did {type(self).__name__}.__init__ call super().__init__()?)")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute "
                             f"{name!r}{hint}")

    def add_module(self, name, module):
        """Register `module` (a Module or None) under `name`."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(self).__name__}.add_module: {name!r} must be a "
                            f"fastconv.nn Module, got {module!r}")
        if not isinstance(name, str) or not name or "." in name:
            raise ValueError(f"{type(self).__name__}.add_module: name must be a non-empty "
                             f"string without '.', got {name!r}")
        self._modules[name] = module
        if name.isidentifier():
            object.__setattr__(self, name, module)

    register_module = add_module

    def register_parameter(self, name, value):
        """A trained array (and its zero gradient) under `name`."""
        value = np.asarray(value)
        if value.dtype not in _checks.FLOAT_DTYPES:
            raise TypeError(f"{type(self).__name__}: parameter {name!r} must be float32 or "
                            f"float64, got dtype {value.dtype}")
        self.params[name] = value
        self.grads[name] = np.zeros_like(value)

    _add_param = register_parameter

    def register_buffer(self, name, value):
        """State saved in state_dict but not trained (BatchNorm's running
        statistics), kept as the attribute `name` (None: not saved)."""
        object.__setattr__(self, name, value)
        if name not in self._buffer_names:
            self._buffer_names.append(name)

    # walking the tree ------------------------------------------------------
    def named_children(self):
        seen = set()
        for name, m in self._modules.items():
            if m is not None and id(m) not in seen:
                seen.add(id(m))
                yield name, m

    def children(self):
        for _, m in self.named_children():
            yield m

    def named_modules(self, prefix="", _seen=None):
        """(dotted name, module) for this module and every descendant, each
        module once (pre-order, as PyTorch)."""
        seen = set() if _seen is None else _seen
        if id(self) in seen:
            return
        seen.add(id(self))
        yield prefix, self
        for name, m in self._modules.items():
            if m is not None:
                yield from m.named_modules(f"{prefix}.{name}" if prefix else name, seen)

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def apply(self, fn):
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    def _named_params_and_grads(self, prefix=""):
        seen = set()
        for mod_name, m in self.named_modules(prefix):
            for name, p in m.params.items():
                if id(p) not in seen:
                    seen.add(id(p))
                    yield (f"{mod_name}.{name}" if mod_name else name), p, m.grads[name]

    def parameters(self):
        """(param, grad) pairs over this module and its children, in
        registration order, each shared parameter once."""
        for _, p, g in self._named_params_and_grads():
            yield p, g

    def named_parameters(self, prefix=""):
        """(dotted name, param) as torch's named_parameters, each once."""
        for name, p, _ in self._named_params_and_grads(prefix):
            yield name, p

    def named_grads(self, prefix=""):
        """(dotted name, grad) in the order of named_parameters."""
        for name, _, g in self._named_params_and_grads(prefix):
            yield name, g

    def named_buffers(self, prefix=""):
        for mod_name, m in self.named_modules(prefix):
            for name in m._buffer_names:
                b = getattr(m, name)
                if b is not None:
                    yield (f"{mod_name}.{name}" if mod_name else name), b

    def buffers(self):
        for _, b in self.named_buffers():
            yield b

    def zero_grad(self):
        for _, g in self.parameters():
            g.fill(0)

    # state -----------------------------------------------------------------
    def _state_items(self, prefix=""):
        # Not deduplicated: a module registered twice is saved under both
        # names, as in PyTorch.
        for name, p in self.params.items():
            yield prefix + name, p
        for name in self._buffer_names:
            b = getattr(self, name)
            if b is not None:
                yield prefix + name, b
        for name, m in self._modules.items():
            if m is not None:
                yield from m._state_items(f"{prefix}{name}.")

    def state_dict(self):
        """Copies of every parameter and buffer, under PyTorch's dotted keys."""
        return {k: np.array(v, copy=True) for k, v in self._state_items()}

    def load_state_dict(self, state, strict=True):
        """Copy arrays from a mapping (e.g. ``np.load("w.npz")`` or a
        state_dict) into the parameters and buffers, in place.

        Everything is checked before anything is written: missing or
        unexpected keys (with strict), None, masked, non-numeric, complex or
        boolean values, integers for a float array, and shapes that differ
        raise ValueError/TypeError naming the key, and leave the module as it
        was. Float values are cast to each array's dtype."""
        owner = f"{type(self).__name__}.load_state_dict"
        if not hasattr(state, "keys"):
            raise TypeError(f"{owner}: state must be a mapping of names to arrays, "
                            f"got {type(state).__name__}")
        targets = dict(self._state_items())
        keys = set(state.keys())
        missing = sorted(set(targets) - keys)
        unexpected = sorted(keys - set(targets))
        if strict and (missing or unexpected):
            raise ValueError(f"{owner}: missing keys {missing}, unexpected keys {unexpected}")
        values = {k: _state_value(owner, k, state[k], t)
                  for k, t in targets.items() if k in keys}
        for k, v in values.items():
            np.copyto(targets[k], v, casting="unsafe")
        return self

    # modes and backend -----------------------------------------------------
    def train(self, mode=True):
        if not isinstance(mode, (bool, np.bool_)):
            raise TypeError(f"{type(self).__name__}.train: mode must be True or False, "
                            f"got {mode!r}")
        for m in self.modules():
            m.training = bool(mode)
        return self

    def eval(self):
        return self.train(False)

    @property
    def backend(self):
        """The module's own backend (None: the default, see use_backend)."""
        return None if self._backend is None else _backend_ops(self._backend)

    def set_backend(self, backend):
        """Run this module and its children on `backend` (a module of ops or
        'fastconv' / 'reference'); None goes back to the default."""
        ref = None if backend is None else _backend_ref(backend)
        for m in self.modules():
            m.__dict__["_backend"] = ref
        return self

    # printing --------------------------------------------------------------
    def extra_repr(self):
        return ""

    def __repr__(self):
        head = f"{type(self).__name__}({self.extra_repr()}"
        children = [(n, m) for n, m in self._modules.items() if m is not None]
        if not children:
            return head + ")"
        lines = [f"  ({n}): " + repr(m).replace("\n", "\n  ") for n, m in children]
        return head + "\n" + "\n".join(lines) + "\n)"


def fresh_copy(x):
    """A C-contiguous copy of `x` that nobody else holds (on the ops'
    threads when large: _copy.fresh_copy)."""
    return _copy.fresh_copy(x) if isinstance(x, np.ndarray) else np.array(x, order="C", copy=True)


_INPUT_GRAD_BACKENDS = frozenset(_BACKEND_NAMES.values())


def skips_input_grad(backward):
    """Decorator of a built-in ``backward(grad_output, *, input_grad=True)``
    that skips the input gradient when input_grad is False (see "Input
    gradients nobody needs"); a subclass that overrides backward loses the
    mark, so it is called as any user's module is."""
    backward.skips_input_grad = True
    return backward


def backward_through(child, grad_output, input_grad):
    """child.backward(grad_output) for a caller that needs its input
    gradient only when input_grad: a child whose backward can skip it is
    told so; any other child computes it, and it is dropped (None)."""
    if input_grad:
        return child.backward(grad_output)
    if getattr(child.backward, "skips_input_grad", False):
        return child.backward(grad_output, input_grad=False)
    child.backward(grad_output)
    return None


def input_grad_kwargs(backend, input_grad):
    """The keyword arguments telling a backend's *_backward op to skip the
    input gradient: only fastconv's and the reference's take it; another
    backend's op computes it, and the layer drops it."""
    known = isinstance(backend, str) and backend in _INPUT_GRAD_BACKENDS
    return {} if input_grad or not known else {"input_grad": False}


def call_granting(child, x, input_private, output_private, fused_next=None):
    """child(x) with the privacy a container grants this call (see "Private
    intermediates"). A child that claims to be pure but returns memory shared
    with its input gets its output copied here, before anyone else sees it.
    With `fused_next` (the layer after child, Sequential's ReLU after a
    BatchNorm), child's forward runs that layer too (_fused_next), and
    output_private is the pair's."""
    token = _call_grant.set((child, x if input_private else None, output_private,
                             fused_next))
    try:
        y = child(x)
    finally:
        _call_grant.reset(token)
    if (isinstance(y, np.ndarray) and isinstance(x, np.ndarray) and child._is_pure()
            and np.may_share_memory(x, y)):
        y = fresh_copy(y)
    return y


def _state_value(owner, key, value, target):
    """`value` checked as a replacement for `target` (nothing written yet)."""
    if value is None:
        raise TypeError(f"{owner}: {key} is None, expected an array of shape {target.shape}")
    if isinstance(value, np.ma.MaskedArray):
        raise TypeError(f"{owner}: {key} is a masked array; pass plain arrays")
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{owner}: {key} is not convertible to an array: {exc}") from None
    wanted = "iu" if target.dtype.kind in "iu" else "f"
    if arr.dtype.kind not in wanted:
        what = "an integer" if wanted == "iu" else "a float"
        raise TypeError(f"{owner}: {key} has dtype {arr.dtype}, expected {what} array "
                        f"(for {target.dtype})")
    if arr.shape != target.shape:
        raise ValueError(f"{owner}: {key} has shape {arr.shape}, expected {target.shape}")
    return arr
