"""PyTorch's calling conventions, applied to every op in one place.

Two things PyTorch accepts that the ops themselves need not know about:

* Unbatched calls.  An op whose input has no batch axis -- (C, L), (C, H, W)
  or (C, D, H, W); (C*kH*kW, L) for col2im -- runs as a batch of one and
  returns its result without the batch axis, as torch.nn.functional does.
  A backward call is unbatched exactly when its forward was: the forward's
  input (conv ops) or `input_shape` (pooling) decides, and grad_output (and
  max pooling's indices) must then be unbatched too -- mixing the two forms
  is an error, never a guess.  Gradients of weights and biases have no batch
  axis either way; max-pooling indices keep the per-plane convention.
* Short argument tuples.  Where PyTorch broadcasts a one-element tuple over
  the spatial dims (the convolutions' stride/padding/dilation/output_padding,
  the pooling ops' kernel_size/stride/padding/dilation) so do we, and
  pooling's empty `stride=()` means kernel_size, as `stride=None` does.
  Everything else PyTorch refuses (an empty tuple elsewhere, a tuple of the
  wrong length; any short tuple for im2col/col2im, whose _pair keeps it as it
  is) stays a ValueError naming the argument.

Each op declares its family once, with a decorator:

    @pytorch_forms(CONV, nd=2)
    def conv2d(input, weight, ...): ...

The op then only ever sees batched arrays and full-length tuples.
"""
import functools
import inspect
import textwrap
from typing import Any, Callable, Optional, TypeVar

# The decorated op keeps its own signature for type checkers.
_Op = TypeVar("_Op", bound=Callable[..., Any])
from dataclasses import dataclass

import numpy as np

from . import _args

_SPATIAL_AXES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}


@dataclass(frozen=True)
class Family:
    """How one family of ops takes PyTorch's forms of its arguments."""
    # The argument that says whether a call is unbatched: the forward's input
    # (an array), or the shape of it (`input_shape`) in backward calls that
    # are given no input.
    key: str = "input"
    key_is_shape: bool = False
    # Further arrays that carry the batch axis along with the key.
    batched: tuple = ()
    # Positions of the results that carry the batch axis (None: every result).
    batched_results: tuple = None
    # Size arguments whose one-element tuple broadcasts over the spatial dims.
    broadcast: tuple = ()
    # Pooling: stride=() means kernel_size (passed on as stride=None).
    empty_stride_is_kernel: bool = False
    # Axis names of the key in a batched call; None: (N, C, *spatial).
    axes: tuple = None

    def layout(self, nd):
        return self.axes or ("N", "C") + _SPATIAL_AXES[nd]


_CONV_SIZES = ("stride", "padding", "dilation", "output_padding")
_POOL_SIZES = ("kernel_size", "stride", "padding", "dilation")

# Convolutions and transposed convolutions.
CONV = Family(broadcast=_CONV_SIZES)
CONV_BACKWARD = Family(batched=("grad_output",), batched_results=(0,), broadcast=_CONV_SIZES)
# Max, average and adaptive pooling (adaptive output_size never broadcasts:
# torch refuses output_size=(4,) for adaptive_avg_pool2d).
POOL = Family(broadcast=_POOL_SIZES, empty_stride_is_kernel=True)
POOL_BACKWARD = Family(key="input_shape", key_is_shape=True, batched=("grad_output", "indices"),
                       broadcast=_POOL_SIZES, empty_stride_is_kernel=True)
# torch.nn.functional.unfold / fold: _pair keeps a short tuple short, and the
# ops refuse it; only the batch axis is optional.
UNFOLD = Family()
FOLD = Family(key="cols", axes=("N", "C*kH*kW", "L"))


_UNBATCHED_NOTE = (" (an unbatched call, run as a batch of one: the shapes in this message "
                   "include that batch axis of 1)")


def _form(axes):
    return f"({', '.join(axes)})"


def _tuple_forms(nd, empty_ok):
    forms = "an int" + (", an empty tuple" if empty_ok else "")
    return forms + (" or a tuple of 1 int" if nd == 1 else f" or a tuple of 1 or {nd} ints")


def pytorch_forms(family: Any, nd: int, name: Optional[str] = None) -> Callable[[_Op], _Op]:
    """Decorator: `fn` (an op on nd spatial dims) also takes PyTorch's
    unbatched inputs and short tuples, as `family` says.  `name` names the
    op (default fn's name), for N-d functions that serve several ops."""
    def decorate(fn):
        signature = inspect.signature(fn)
        position = {name: i for i, name in enumerate(signature.parameters)}
        defaults = {n: p.default for n, p in signature.parameters.items()}
        axes = family.layout(nd)
        key_position = position[family.key]
        broadcast = [n for n in family.broadcast if n in position]
        batched = [n for n in family.batched if n in position]
        op = name or fn.__name__

        def value(name, args, kwargs):
            i = position[name]
            return args[i] if i < len(args) else kwargs.get(name, defaults[name])

        def rewrite(args, kwargs):
            """{name: PyTorch's form rewritten} and whether the call is unbatched."""
            changes = {}
            for name in broadcast:
                _full_tuple(op, name, value(name, args, kwargs), nd,
                            family.empty_stride_is_kernel and name == "stride", changes)
            unbatched = _unbatch(op, family, value(family.key, args, kwargs), axes, changes)
            if unbatched:
                for name in batched:
                    _add_batch_axis(op, name, value(name, args, kwargs), family.key, axes,
                                    changes)
            return changes, unbatched

        def bind_arguments(*args, **kwargs):
            """The op's arguments as `fn` gets them: batched, full tuples."""
            return bound_with(args, kwargs, rewrite(args, kwargs)[0])

        def bound_with(args, kwargs, changes):
            bound = signature.bind(*args, **kwargs)
            bound.arguments.update(changes)
            return bound

        def canonical(args, kwargs):
            """Whether the call is in the op's own form already, by a test
            cheaper than rewrite's: a batched ndarray key and no tuple or
            list anywhere (so no short tuple to broadcast).  False only
            means: let rewrite decide."""
            key = args[key_position] if key_position < len(args) else kwargs.get(family.key)
            if type(key) is not np.ndarray or key.ndim != len(axes):
                return False
            for value in args:
                if type(value) is tuple or type(value) is list:
                    return False
            for value in kwargs.values():
                if type(value) is tuple or type(value) is list:
                    return False
            return True

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            if not family.key_is_shape and canonical(args, kwargs):
                return fn(*args, **kwargs)
            changes, unbatched = rewrite(args, kwargs)
            if not changes:  # the common case: nothing to rewrite
                return fn(*args, **kwargs)
            bound = bound_with(args, kwargs, changes)
            if not unbatched:
                return fn(*bound.args, **bound.kwargs)
            try:
                result = fn(*bound.args, **bound.kwargs)
            except (ValueError, TypeError, MemoryError) as exc:
                # The op's message shows the shapes it saw, batch axis included.
                if exc.args and isinstance(exc.args[0], str):
                    exc.args = (exc.args[0] + _UNBATCHED_NOTE,) + exc.args[1:]
                raise
            return _drop_batch_axis(result, family.batched_results)
        # For code that runs the op's internals on its arguments (explain).
        wrapper.bind_arguments = bind_arguments
        wrapper.__name__ = wrapper.__qualname__ = op
        wrapper.__doc__ = (fn.__doc__ or "").rstrip() + "\n\n" + _doc(family, axes, batched,
                                                                     broadcast)
        return wrapper
    return decorate


def nd_ops(family, fn, name):
    """The N-d function `fn` as the 1-D, 2-D and 3-D ops name.format(nd)."""
    return tuple(pytorch_forms(family, nd, name.format(nd))(fn) for nd in (1, 2, 3))


def _doc(family, axes, batched, broadcast):
    """The paragraph on PyTorch's forms appended to each op's docstring."""
    key = f"{family.key}={_form(axes[1:])}" if family.key_is_shape else \
        f"{family.key} of shape {_form(axes[1:])}"
    text = (f"Unbatched calls ({key}, no batch axis) are accepted as in PyTorch "
            f"and drop the batch axis from the results that carry one")
    if batched:
        text += f"; {' and '.join(batched)} must then be unbatched too"
    if broadcast:
        text += "; a one-element tuple of a size argument applies to every spatial dim"
    if family.empty_stride_is_kernel and "stride" in broadcast:
        text += "; stride=() means kernel_size"
    return textwrap.fill(text + ".", 80, initial_indent="    ", subsequent_indent="    ")


def _full_tuple(op, name, value, nd, empty_is_kernel, changes):
    """Record in `changes` the nd-tuple PyTorch makes of a short tuple."""
    if not isinstance(value, (tuple, list)) or len(value) == nd:
        return
    if len(value) == 1:
        changes[name] = tuple(value) * nd
    elif len(value) == 0 and empty_is_kernel:
        changes[name] = None
    else:
        raise ValueError(f"{op}: {name} must be {_tuple_forms(nd, empty_is_kernel)}, "
                         f"got {name}={value!r}")


def _unbatch(op, family, key, axes, changes):
    """Whether the key argument lacks the batch axis; if so, record it with a
    batch axis of one in `changes`.  A key of neither rank is an error naming
    both forms; an input_shape that is no tuple is left to the op's checks."""
    if key is inspect.Parameter.empty:  # not given: fn raises Python's TypeError
        return False
    if family.key_is_shape:
        if not isinstance(key, (tuple, list)):
            return False
        rank = len(key)
    else:
        key = _args.as_float_array(key, family.key, op)
        rank = key.ndim
    if rank == len(axes):
        return False
    if rank != len(axes) - 1:
        if family.key_is_shape:
            what = f"a tuple of {len(axes)} ints {_form(axes)} or {len(axes) - 1} ints"
            got = f"{family.key}={key!r}"
        else:
            what, got = f"{len(axes)}-D {_form(axes)} or {len(axes) - 1}-D", f"shape {key.shape}"
        raise ValueError(f"{op}: {family.key} must be {what} unbatched "
                         f"{_form(axes[1:])}, got {got}")
    changes[family.key] = (1,) + tuple(key) if family.key_is_shape else key[None]
    return True


def _add_batch_axis(op, name, value, key, axes, changes):
    """Record `value` with a batch axis of one added; it must be unbatched
    like the key.  Values that are no array are left to the op's checks."""
    if value is None or isinstance(value, (str, bytes)):
        return
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError):
        return
    if arr.ndim != len(axes) - 1:
        raise ValueError(f"{op}: {name} must be {len(axes) - 1}-D like the unbatched {key} "
                         f"(no batch axis), got shape {arr.shape}")
    changes[name] = arr[None]


def _drop_batch_axis(result, positions):
    """The result(s) of a batch of one without the batch axis.  Indexing the
    fresh C-contiguous result keeps it C-contiguous, sharing memory with no
    input."""
    if not isinstance(result, tuple):
        return result[0]
    return tuple(r[0] if r is not None and (positions is None or i in positions) else r
                 for i, r in enumerate(result))
