"""The optimizer base class: parameter groups, per-parameter state, step,
zero_grad and state_dict, shared by every optimizer of this package.

What an optimizer updates
-------------------------
``params`` is what PyTorch's optimizers take, with fastconv's modules in place
of tensors: a module (anything with ``parameters()`` yielding ``(param, grad)``
pairs), an iterable of modules or of ``(param, grad)`` pairs (so
``SGD(net.parameters(), lr=0.1)`` works as in PyTorch), or a list of
param-group dicts ``{"params": module(s), "lr": ..., ...}`` whose settings
override the optimizer's defaults for those parameters.

A module is asked for its parameters at every step, so the optimizer follows
it if it replaces an array; a pair is held as given. Parameters are numbered in
group order (shared parameters once, as ``parameters()`` yields them); that
number keys ``state`` and ``state_dict()["state"]``, as in PyTorch. Parameters
are updated in place, in their own dtype; a parameter whose grad is ``None`` is
skipped.
"""
import copy
import numbers

import numpy as np

from .. import _args

__all__ = ["Optimizer"]


def _is_module(obj):
    return callable(getattr(obj, "parameters", None))


def _is_pair(obj):
    return isinstance(obj, tuple) and len(obj) == 2 and isinstance(obj[0], np.ndarray)


def _plain(value):
    """Python scalars for NumPy ones, so that arithmetic with a float32 array
    stays float32 (a np.float64 hyper-parameter would promote it)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    return value


def _unwrap_saved(value):
    """What ``np.savez(path, **state_dict)`` then ``np.load(path,
    allow_pickle=True)`` gives back for a dict or list: an object array."""
    if isinstance(value, np.ndarray) and value.dtype == object:
        return value.item() if value.ndim == 0 else value.tolist()
    return value


def lerp_(start, end, weight):
    """start += weight * (end - start), in place, rounded as torch.lerp_ rounds
    it (from the nearer end), so float64 results match PyTorch's."""
    if weight < 0.5:
        start += weight * (end - start)
    else:
        np.subtract(end, (end - start) * (1 - weight), out=start)


def state_buffer(state, key, param, fill=0.0):
    """state[key], created as an array like `param` filled with `fill` on
    first use (a lazily created buffer, as PyTorch's state)."""
    if key not in state:
        state[key] = np.full(param.shape, fill, dtype=param.dtype)
    return state[key]


def descent_grad(param, grad, hyper):
    """The gradient an update descends: negated for ``maximize``, plus
    PyTorch's L2 term ``weight_decay * param`` (a new array when changed)."""
    g = -grad if hyper["maximize"] else grad
    if hyper["weight_decay"] != 0:
        g = g + hyper["weight_decay"] * param
    return g


def average_square_(average, g, decay):
    """average = decay * average + (1 - decay) * g * g, in place."""
    average *= decay
    average += (1 - decay) * g * g


def count_step(state):
    """Advance and return the parameter's step count (1 on its first step)."""
    state["step"] = state.get("step", 0) + 1
    return state["step"]


class Optimizer:
    """Base class. Subclasses pass their validated defaults to ``__init__`` and
    implement ``_check_hyper(group, where)`` (the group's hyper-parameters
    validated and normalised) and ``_update(param, grad, state, hyper)`` (one
    parameter's update, in place); ``_state_keys`` names every entry a
    parameter's state may hold."""

    _state_keys = ()

    def __init__(self, params, defaults):
        name = type(self).__name__
        self.defaults = {**defaults, **self._check_hyper(defaults, name)}
        self.state = {}          # parameter number -> dict, as state_dict()["state"]
        self.param_groups = []
        self._shapes = []        # per group: the parameters' shapes when added
        self._steps_taken = 0    # lr schedulers warn when they step first
        for group in self._as_groups(params):
            self.add_param_group(group)
        if not any(self._shapes):
            raise ValueError(f"{name}: params holds no parameters, got params={params!r}")

    # ------------------------------------------------------------------ groups
    def _as_groups(self, params):
        """`params` as a list of param-group dicts (``_sources`` checks the rest)."""
        name = type(self).__name__
        if _is_module(params) or _is_pair(params) or isinstance(
                params, (dict, set, frozenset, np.ndarray, str)):
            return [{"params": params}]
        try:
            items = list(params)
        except TypeError:
            raise TypeError(self._params_message(params)) from None
        if not items:
            raise ValueError(f"{name}: params is empty, got params={params!r}")
        dicts = [isinstance(item, dict) for item in items]
        if all(dicts):
            return items
        if any(dicts):
            raise TypeError(f"{name}: params mixes param-group dicts with other items; "
                            f"pass a list of dicts only")
        return [{"params": items}]

    def _params_message(self, value):
        return (f"{type(self).__name__}: params must be a fastconv.nn layer or module, an "
                f"iterable of modules or of (param, grad) pairs, or a list of param-group "
                f"dicts, got {type(value).__name__} {value!r:.80}")

    def _sources(self, params):
        """A group's "params" as a list of modules and (param, grad) pairs."""
        if _is_module(params) or _is_pair(params):
            return [params]
        if isinstance(params, (set, frozenset)):
            raise TypeError(f"{type(self).__name__}: params must be ordered (a set "
                            f"changes order between runs); use a list")
        if isinstance(params, (dict, np.ndarray, str)):
            raise TypeError(self._params_message(params))
        try:
            sources = list(params)
        except TypeError:
            raise TypeError(self._params_message(params)) from None
        for source in sources:
            if not (_is_module(source) or _is_pair(source)):
                raise TypeError(self._params_message(source))
        return sources

    def _pairs(self, group):
        """The group's (param, grad) pairs, each parameter once."""
        seen, pairs = set(), []
        for source in group["params"]:
            for pair in (source.parameters() if _is_module(source) else [source]):
                if id(pair[0]) not in seen:
                    seen.add(id(pair[0]))
                    pairs.append(pair)
        return pairs

    def _check_pair(self, param, grad, where):
        for what, arr in (("parameter", param), ("grad", grad)):
            if arr is None and what == "grad":
                continue
            if type(arr) is not np.ndarray:   # np.matrix: `*` is a matrix product
                raise TypeError(f"{type(self).__name__}: {where} {what} must be a "
                                f"numpy.ndarray, got {type(arr).__name__}")
            if arr.dtype.type not in _args.FLOAT_TYPES:
                raise TypeError(f"{type(self).__name__}: {where} {what} must have dtype "
                                f"float32 or float64, got dtype {arr.dtype}")
        if not param.flags.writeable:
            raise ValueError(f"{type(self).__name__}: {where} parameter is read-only; "
                             f"it is updated in place")
        if grad is not None and (grad.shape != param.shape or grad.dtype != param.dtype):
            raise ValueError(f"{type(self).__name__}: {where} grad has shape {grad.shape} "
                             f"and dtype {grad.dtype}, but the parameter has shape "
                             f"{param.shape} and dtype {param.dtype}")

    def add_param_group(self, param_group):
        """Add a group of parameters with its own settings (missing ones are
        the optimizer's defaults), e.g. to train a new head at another lr."""
        index = len(self.param_groups)
        where = f"{type(self).__name__} param_groups[{index}]"
        if not isinstance(param_group, dict):
            raise TypeError(f"{where} must be a dict, got {param_group!r:.80}")
        if "params" not in param_group:
            raise ValueError(f"{where} has no 'params' entry, got keys "
                             f"{sorted(map(str, param_group))}")
        group = {**self.defaults, **param_group}
        group["params"] = self._sources(param_group["params"])
        group.update(self._check_hyper(group, where))
        pairs = self._pairs(group)
        first = sum(map(len, self._shapes))
        for number, (param, grad) in enumerate(pairs, start=first):
            self._check_pair(param, grad, f"parameter {number}")
        taken = {id(p) for g in self.param_groups for p, _ in self._pairs(g)}
        if any(id(p) in taken for p, _ in pairs):
            raise ValueError(f"{where}: some parameters are already in another param group")
        self.param_groups.append(group)
        self._shapes.append([p.shape for p, _ in pairs])

    def _numbered_pairs(self):
        """Yield (group, [(number, param, grad), ...]) for every group, checking
        that no module gained, lost or reshaped a parameter (the state is kept
        by number: it would silently belong to another parameter)."""
        first = 0
        for index, (group, shapes) in enumerate(zip(self.param_groups, self._shapes)):
            pairs = self._pairs(group)
            now = [p.shape for p, _ in pairs]
            if now != shapes:
                raise RuntimeError(
                    f"{type(self).__name__}: the parameters of param_groups[{index}] "
                    f"changed since they were added (shapes {shapes}, now {now}); "
                    f"build a new optimizer")
            yield group, [(n, p, g) for n, (p, g) in enumerate(pairs, start=first)]
            first += len(pairs)

    # -------------------------------------------------------------- training
    def step(self, closure=None):
        """Update every parameter from its grad. `closure`, if given, is called
        first (to recompute the loss and grads) and its result returned."""
        loss = None if closure is None else closure()
        groups = list(self._numbered_pairs())
        for _, pairs in groups:          # every check before the first update
            for number, param, grad in pairs:
                self._check_pair(param, grad, f"parameter {number}")
        for group, pairs in groups:
            hyper = {key: _plain(value) for key, value in group.items() if key != "params"}
            for number, param, grad in pairs:
                if grad is None:
                    continue
                state = self.state.get(number, {})
                self._update(param, grad, state, hyper)
                if state:
                    self.state[number] = state
        self._steps_taken += 1
        return loss

    def zero_grad(self):
        """Set every gradient to zero, in place (grads accumulate until then)."""
        for _, pairs in self._numbered_pairs():
            for _, _, grad in pairs:
                if grad is not None:
                    grad.fill(0)

    # ----------------------------------------------------------- to implement
    def _check_hyper(self, group, where):
        raise NotImplementedError

    def _update(self, param, grad, state, hyper):
        raise NotImplementedError

    # ------------------------------------------------------------ state_dict
    def state_dict(self):
        """The optimizer's state as PyTorch lays it out, as copies (stepping
        on does not change a saved dict): ``{"state": {number: {...}},
        "param_groups": [{"lr": ..., "params": [numbers]}, ...]}``.
        It round-trips through pickle, and through ``np.savez(path, **sd)``
        read back with ``np.load(path, allow_pickle=True)``."""
        groups, first = [], 0
        for group, shapes in zip(self.param_groups, self._shapes):
            saved = copy.deepcopy({k: v for k, v in group.items() if k != "params"})
            saved["params"] = list(range(first, first + len(shapes)))
            first += len(shapes)
            groups.append(saved)
        state = {number: {key: (np.array(value, copy=True)
                                if isinstance(value, np.ndarray) else value)
                          for key, value in entry.items()}
                 for number, entry in self.state.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Resume from `state_dict` (from ``state_dict()`` of an optimizer of the
        same kind over parameters of the same shapes; torch.optim's state_dict
        loads too). Everything is checked before anything is changed: an error
        leaves the optimizer as it was. Arrays are copied, in the parameters'
        dtype."""
        name = f"{type(self).__name__}.load_state_dict"
        if not hasattr(state_dict, "keys") or set(state_dict.keys()) != {"state",
                                                                        "param_groups"}:
            raise ValueError(f"{name}: expected a mapping with the keys 'state' and "
                             f"'param_groups' (from state_dict()), got {state_dict!r:.80}")
        saved_groups = _unwrap_saved(state_dict["param_groups"])
        saved_state = _unwrap_saved(state_dict["state"])
        if not isinstance(saved_groups, (list, tuple)) or len(saved_groups) != len(
                self.param_groups):
            raise ValueError(f"{name}: the optimizer has {len(self.param_groups)} param "
                             f"groups, the state_dict has {saved_groups!r:.80}")
        ours = [pairs for _, pairs in self._numbered_pairs()]
        groups, renumber = [], {}
        for index, (group, saved, pairs) in enumerate(zip(self.param_groups,
                                                           saved_groups, ours)):
            groups.append(self._loaded_group(group, saved, pairs, index, renumber))
        state = self._loaded_state(saved_state, renumber, ours)
        self.param_groups = groups
        self.state = state

    def _loaded_group(self, group, saved, pairs, index, renumber):
        """The group as `saved` sets it (validated); fills `renumber` (saved
        parameter number -> ours)."""
        where = f"{type(self).__name__}.load_state_dict: param_groups[{index}]"
        if not isinstance(saved, dict) or "params" not in saved:
            raise ValueError(f"{where} must be a dict with a 'params' entry, "
                             f"got {saved!r:.80}")
        saved_numbers = saved["params"]
        if not isinstance(saved_numbers, (list, tuple)) or len(saved_numbers) != len(pairs):
            raise ValueError(f"{where} has params {saved_numbers!r:.80}, but this group "
                             f"has {len(pairs)} parameters")
        missing = sorted(set(self.defaults) - set(saved))
        if missing:
            raise ValueError(f"{where} lacks the settings {missing}: is it the state "
                             f"of another kind of optimizer?")
        for number, (ours, _, _) in zip(saved_numbers, pairs):
            if isinstance(number, (bool, np.bool_)) or not isinstance(number, numbers.Integral):
                raise ValueError(f"{where}: params must be parameter numbers (ints), "
                                 f"got {number!r}")
            if int(number) in renumber:
                raise ValueError(f"{where}: parameter number {number} appears twice")
            renumber[int(number)] = ours
        loaded = {k: copy.deepcopy(_plain(v)) for k, v in saved.items() if k != "params"}
        loaded["params"] = group["params"]
        loaded.update(self._check_hyper(loaded, where))
        return loaded

    def _loaded_state(self, saved_state, renumber, pairs_by_group):
        name = f"{type(self).__name__}.load_state_dict"
        if not isinstance(saved_state, dict):
            raise ValueError(f"{name}: state must be a dict, got {saved_state!r:.80}")
        params = {n: p for pairs in pairs_by_group for n, p, _ in pairs}
        state = {}
        for saved_number, entry in saved_state.items():
            if saved_number not in renumber:
                raise ValueError(f"{name}: state has an entry for parameter "
                                 f"{saved_number!r}, which no param group lists")
            number = renumber[saved_number]
            where = f"{name}: state[{saved_number!r}]"
            if not isinstance(entry, dict):
                raise ValueError(f"{where} must be a dict, got {entry!r:.80}")
            unknown = sorted(map(str, set(entry) - set(self._state_keys)))
            if unknown:
                raise ValueError(f"{where} has the entries {unknown}, which "
                                 f"{type(self).__name__} does not keep (it keeps "
                                 f"{list(self._state_keys)})")
            state[number] = {key: self._loaded_value(value, params[number],
                                                     f"{where}[{key!r}]", key)
                             for key, value in entry.items()}
        return state

    @staticmethod
    def _loaded_value(value, param, where, key):
        if key == "step":     # a count; PyTorch saves it as a float tensor
            count = None if isinstance(value, (bool, np.bool_)) else np.asarray(value)
            if (count is None or count.ndim != 0 or count.dtype.kind not in "fiu"
                    or not float(count).is_integer() or count < 0):
                raise ValueError(f"{where} must be a non-negative whole number, "
                                 f"got {value!r:.80}")
            return int(count)
        try:
            arr = np.asarray(value)
        except ValueError:                                 # ragged nested lists
            arr = None
        if arr is None or arr.dtype.kind not in "fiu":     # no complex, bool, str, object
            raise ValueError(f"{where} must be a real-valued array, got "
                             f"{type(value).__name__} {value!r:.80}")
        if arr.shape != param.shape:
            raise ValueError(f"{where} has shape {arr.shape}, but the parameter has "
                             f"shape {param.shape}")
        return np.array(arr, dtype=param.dtype, order="C")

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for index, group in enumerate(self.param_groups):
            settings = ", ".join(f"{k}={v!r}" for k, v in group.items() if k != "params")
            lines.append(f"  param_groups[{index}]: {settings}")
        return "\n".join(lines + [")"])
