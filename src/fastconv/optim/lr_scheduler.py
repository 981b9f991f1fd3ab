"""Learning-rate schedulers with PyTorch's semantics (torch.optim.lr_scheduler).

A scheduler sets ``group["lr"]`` of each of its optimizer's param groups; call
``scheduler.step()`` after ``optimizer.step()``, once per epoch (or per batch
for CyclicLR and OneCycleLR), and ``ReduceLROnPlateau.step(metric)`` with the
validation loss. As in PyTorch:

* constructing a scheduler is its first step (``last_epoch`` goes from -1 to 0)
  and records ``group["initial_lr"]``, from which ``base_lrs`` come;
  ``last_epoch=N`` resumes a schedule (the groups must hold ``initial_lr``);
* StepLR, MultiStepLR, ExponentialLR and CosineAnnealingLR update the current
  lr (so several schedulers on one optimizer compose), CyclicLR and OneCycleLR
  compute it from their settings, and also cycle ``momentum`` (SGD, RMSprop) or
  ``betas[0]`` (Adam, AdamW) unless ``cycle_momentum=False``;
* ``get_last_lr()`` is the list of lrs the last step set, one per group;
  ``state_dict()``/``load_state_dict()`` save and restore everything but the
  optimizer (and a custom ``scale_fn``), so a run resumes where it stopped.

The epoch argument of ``step``, deprecated in PyTorch, is not supported.
"""
import copy
import math
import warnings
from collections import Counter

from .. import _args
from .optimizer import Optimizer

__all__ = ["LRScheduler", "StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR",
           "CyclicLR", "OneCycleLR", "ReduceLROnPlateau"]


def _check_optimizer(optimizer, owner):
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"{owner}: optimizer must be a fastconv.optim optimizer, "
                        f"got {type(optimizer).__name__}")


def _per_group(value, name, optimizer, owner, low=0):
    """`value` (a number, or one per param group) as a list of floats."""
    groups = len(optimizer.param_groups)
    if isinstance(value, (list, tuple)):
        if len(value) != groups:
            raise ValueError(f"{owner}: {name} must be a number or a list of one per "
                             f"param group ({groups}), got {name}={value!r}")
        return [_args.as_real(v, name, owner, low=low) for v in value]
    return [_args.as_real(value, name, owner, low=low)] * groups


def _check_last_epoch(last_epoch, optimizer, owner):
    last_epoch = _args.as_int(last_epoch, "last_epoch", owner)
    if last_epoch < -1:
        raise ValueError(f"{owner}: last_epoch must be -1 (a new schedule) or the "
                         f"last epoch of the schedule to resume, got {last_epoch}")
    if last_epoch >= 0:
        for index, group in enumerate(optimizer.param_groups):
            if "initial_lr" not in group:
                raise ValueError(
                    f"{owner}: last_epoch={last_epoch} resumes a schedule, but "
                    f"param_groups[{index}] has no 'initial_lr'; load the optimizer's "
                    f"state_dict first, or start with last_epoch=-1")
    return last_epoch


def _set_momentum(group, momentum, use_beta1):
    if use_beta1:
        group["betas"] = (momentum, *group["betas"][1:])
    else:
        group["momentum"] = momentum


def _momentum_key(optimizer, owner):
    """True when the optimizer's momentum is betas[0] (Adam), False when it is
    "momentum" (SGD, RMSprop); cycling momentum needs one of them."""
    if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
        raise ValueError(f"{owner}: cycle_momentum=True needs an optimizer with momentum "
                         f"or betas, and {type(optimizer).__name__} has neither; pass "
                         f"cycle_momentum=False")
    return "betas" in optimizer.defaults


class LRScheduler:
    """Base class: subclasses implement ``get_lr()``, the lrs of the epoch
    ``self.last_epoch`` has just become (called once per ``step()``)."""

    def __init__(self, optimizer, last_epoch=-1):
        owner = type(self).__name__
        _check_optimizer(optimizer, owner)
        last_epoch = _check_last_epoch(last_epoch, optimizer, owner)
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._step_count = 0
        self._is_initial = True
        self.step()
        self._is_initial = False

    def get_lr(self):
        raise NotImplementedError

    def _current_lrs(self):
        return [group["lr"] for group in self.optimizer.param_groups]

    def step(self):
        """Advance the schedule by one epoch and set each group's lr."""
        if self._step_count == 1 and self.optimizer._steps_taken == 0:
            warnings.warn(f"{type(self).__name__}.step() was called before the optimizer's "
                          f"step(); call optimizer.step() first, or the schedule's first "
                          f"learning rate is skipped (as in PyTorch)", UserWarning,
                          stacklevel=2)
        groups = self.optimizer.param_groups
        if len(groups) != len(self.base_lrs):
            raise RuntimeError(f"{type(self).__name__}: the optimizer has {len(groups)} "
                               f"param groups, but the scheduler was built for "
                               f"{len(self.base_lrs)}; build a new scheduler")
        self._step_count += 1
        self.last_epoch += 1
        for group, lr in zip(groups, self.get_lr()):
            group["lr"] = lr
        self._last_lr = self._current_lrs()

    def get_last_lr(self):
        """The learning rates the last step set, one per param group."""
        return list(self._last_lr)

    _not_saved = ("optimizer",)

    def state_dict(self):
        """Everything but the optimizer, as copies."""
        return {key: copy.deepcopy(value) for key, value in self.__dict__.items()
                if key not in self._not_saved}

    def load_state_dict(self, state_dict):
        """Restore a state_dict() of a scheduler of the same kind; a dict with
        other keys, or another number of param groups, raises ValueError and
        changes nothing."""
        owner = f"{type(self).__name__}.load_state_dict"
        if not hasattr(state_dict, "keys"):
            raise ValueError(f"{owner}: expected a mapping from state_dict(), "
                             f"got {state_dict!r:.80}")
        ours = self.state_dict()
        missing, unexpected = sorted(set(ours) - set(state_dict)), sorted(
            set(state_dict) - set(ours))
        if missing or unexpected:
            raise ValueError(f"{owner}: missing keys {missing}, unexpected keys "
                             f"{unexpected}: is it the state of another scheduler?")
        loaded = {key: copy.deepcopy(_plain_saved(state_dict[key])) for key in ours}
        _args.as_int(loaded["last_epoch"], "last_epoch", owner)
        for key in ("base_lrs", "_last_lr", "min_lrs", "max_lrs"):
            if key in loaded and (not isinstance(loaded[key], list) or
                                  len(loaded[key]) != len(self.optimizer.param_groups)):
                raise ValueError(f"{owner}: {key} must be a list of one value per param "
                                 f"group ({len(self.optimizer.param_groups)}), got "
                                 f"{loaded[key]!r:.80}")
        self.__dict__.update(loaded)


def _plain_saved(value):
    """A value as saved, or as ``np.savez`` then ``np.load`` give it back
    (0-d arrays for scalars, arrays for lists)."""
    if hasattr(value, "ndim") and hasattr(value, "tolist"):
        return value.item() if value.ndim == 0 else value.tolist()
    return value


class StepLR(LRScheduler):
    """Multiply the lr by `gamma` every `step_size` epochs."""

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        owner = type(self).__name__
        self.step_size = _args.positive_int(step_size, "step_size", owner)
        self.gamma = _args.as_real(gamma, "gamma", owner, low=0)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._current_lrs()
        return [lr * self.gamma for lr in self._current_lrs()]


class MultiStepLR(LRScheduler):
    """Multiply the lr by `gamma` at each epoch listed in `milestones` (twice
    if listed twice)."""

    def __init__(self, optimizer, milestones, gamma=0.1, last_epoch=-1):
        owner = type(self).__name__
        if isinstance(milestones, (str, bytes)) or not hasattr(milestones, "__iter__"):
            raise TypeError(f"{owner}: milestones must be a list of epochs (ints), "
                            f"got milestones={milestones!r}")
        epochs = [_args.as_int(m, "milestones", owner) for m in milestones]
        if any(m < 0 for m in epochs):
            raise ValueError(f"{owner}: milestones must be non-negative epochs, "
                             f"got milestones={milestones!r}")
        self.milestones = Counter(epochs)
        self.gamma = _args.as_real(gamma, "gamma", owner, low=0)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        times = self.milestones.get(self.last_epoch, 0)
        if times == 0:
            return self._current_lrs()
        return [lr * self.gamma ** times for lr in self._current_lrs()]


class ExponentialLR(LRScheduler):
    """Multiply the lr by `gamma` every epoch."""

    def __init__(self, optimizer, gamma, last_epoch=-1):
        self.gamma = _args.as_real(gamma, "gamma", type(self).__name__, low=0)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self._is_initial:
            return self._current_lrs()
        return [lr * self.gamma for lr in self._current_lrs()]


class CosineAnnealingLR(LRScheduler):
    """Cosine annealing from each base lr down to `eta_min` over `T_max` epochs
    and back up over the next `T_max` (SGDR without restarts). Like PyTorch, it
    updates the current lr by the cosine's ratio from one epoch to the next,
    so it composes with other schedulers; alone it follows
    ``eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2``."""

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):
        owner = type(self).__name__
        self.T_max = _args.positive_int(T_max, "T_max", owner)
        self.eta_min = _args.as_real(eta_min, "eta_min", owner, low=0)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        epoch, t_max, eta_min = self.last_epoch, self.T_max, self.eta_min
        if self._is_initial:
            return self._current_lrs()
        if self._step_count == 1 and epoch > 0:     # resumed: the closed form
            return [eta_min + (base - eta_min) * (1 + math.cos(epoch * math.pi / t_max)) / 2
                    for base in self.base_lrs]
        if (epoch - 1 - t_max) % (2 * t_max) == 0:  # the trough: the ratio would be 0/0
            return [lr + (base - eta_min) * (1 - math.cos(math.pi / t_max)) / 2
                    for lr, base in zip(self._current_lrs(), self.base_lrs)]
        return [(1 + math.cos(math.pi * epoch / t_max))
                / (1 + math.cos(math.pi * (epoch - 1) / t_max)) * (lr - eta_min) + eta_min
                for lr in self._current_lrs()]


class CyclicLR(LRScheduler):
    """Cyclical learning rate (Smith, 2017), stepped once per batch: the lr
    climbs from `base_lr` to `max_lr` over `step_size_up` steps and falls back
    over `step_size_down` (default: the same). `mode` scales the amplitude per
    cycle: 'triangular' (constant), 'triangular2' (halved each cycle),
    'exp_range' (``gamma ** iteration``), or give your own `scale_fn(x)` with
    `scale_mode` 'cycle' (x = cycle number) or 'iterations'. With
    `cycle_momentum`, momentum moves the opposite way between `max_momentum`
    and `base_momentum`. Construction sets each group's lr to base_lr."""

    def __init__(self, optimizer, base_lr, max_lr, step_size_up=2000, step_size_down=None,
                 mode="triangular", gamma=1.0, scale_fn=None, scale_mode="cycle",
                 cycle_momentum=True, base_momentum=0.8, max_momentum=0.9, last_epoch=-1):
        owner = type(self).__name__
        _check_optimizer(optimizer, owner)
        last_epoch = _check_last_epoch(last_epoch, optimizer, owner)
        base_lrs = _per_group(base_lr, "base_lr", optimizer, owner)
        self.max_lrs = _per_group(max_lr, "max_lr", optimizer, owner)
        up = _args.as_real(step_size_up, "step_size_up", owner, low=0, low_inclusive=False)
        down = up if step_size_down is None else _args.as_real(
            step_size_down, "step_size_down", owner, low=0)
        self.total_size = up + down
        self.step_ratio = up / self.total_size
        if scale_fn is None and mode not in ("triangular", "triangular2", "exp_range"):
            raise ValueError(f"{owner}: mode must be 'triangular', 'triangular2' or "
                             f"'exp_range' (or give scale_fn), got mode={mode!r}")
        if scale_fn is not None and not callable(scale_fn):
            raise TypeError(f"{owner}: scale_fn must be callable, got scale_fn={scale_fn!r}")
        if scale_mode not in ("cycle", "iterations"):
            raise ValueError(f"{owner}: scale_mode must be 'cycle' or 'iterations', "
                             f"got scale_mode={scale_mode!r}")
        self.mode = mode
        self.gamma = _args.as_real(gamma, "gamma", owner, low=0)
        self.scale_fn = scale_fn
        # The built-in modes fix the scale mode, as in PyTorch.
        self.scale_mode = (scale_mode if scale_fn is not None else
                           "iterations" if mode == "exp_range" else "cycle")
        self.cycle_momentum = _args.as_bool(cycle_momentum, "cycle_momentum", owner)
        if self.cycle_momentum:
            self.use_beta1 = _momentum_key(optimizer, owner)
            self.base_momentums = _per_group(base_momentum, "base_momentum", optimizer, owner)
            self.max_momentums = _per_group(max_momentum, "max_momentum", optimizer, owner)
        if last_epoch == -1:
            for index, group in enumerate(optimizer.param_groups):
                group["lr"] = base_lrs[index]
                if self.cycle_momentum:
                    _set_momentum(group, self.max_momentums[index], self.use_beta1)
                    group["max_momentum"] = self.max_momentums[index]
                    group["base_momentum"] = self.base_momentums[index]
        super().__init__(optimizer, last_epoch)
        self.base_lrs = base_lrs

    _not_saved = ("optimizer", "scale_fn")

    def _scale(self, x):
        if self.scale_fn is not None:
            return self.scale_fn(x)
        if self.mode == "triangular":
            return 1.0
        if self.mode == "triangular2":
            return 1 / (2.0 ** (x - 1))
        return self.gamma ** x

    def get_lr(self):
        cycle = math.floor(1 + self.last_epoch / self.total_size)
        x = 1.0 + self.last_epoch / self.total_size - cycle
        if x <= self.step_ratio:
            rise = x / self.step_ratio
        else:
            rise = (x - 1) / (self.step_ratio - 1)
        scale = self._scale(cycle if self.scale_mode == "cycle" else self.last_epoch)
        lrs = [base + (top - base) * rise * scale
               for base, top in zip(self.base_lrs, self.max_lrs)]
        if self.cycle_momentum:
            for group, base, top in zip(self.optimizer.param_groups, self.base_momentums,
                                        self.max_momentums):
                _set_momentum(group, top - (top - base) * rise * scale, self.use_beta1)
        return lrs


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith & Topin, 2018), stepped once per batch for
    `total_steps` (or `epochs` * `steps_per_epoch`) steps: the lr warms up from
    ``max_lr / div_factor`` to `max_lr` over the first `pct_start` of the steps,
    then anneals ('cos' or 'linear') to ``max_lr / div_factor /
    final_div_factor``; `three_phase` comes back to the initial lr before the
    final annealing. Momentum moves the opposite way. Stepping past the end
    raises ValueError."""

    def __init__(self, optimizer, max_lr, total_steps=None, epochs=None, steps_per_epoch=None,
                 pct_start=0.3, anneal_strategy="cos", cycle_momentum=True,
                 base_momentum=0.85, max_momentum=0.95, div_factor=25.0,
                 final_div_factor=1e4, three_phase=False, last_epoch=-1):
        owner = type(self).__name__
        _check_optimizer(optimizer, owner)
        last_epoch = _check_last_epoch(last_epoch, optimizer, owner)
        if total_steps is not None:
            self.total_steps = _args.positive_int(total_steps, "total_steps", owner)
        elif epochs is not None and steps_per_epoch is not None:
            self.total_steps = (_args.positive_int(epochs, "epochs", owner)
                                * _args.positive_int(steps_per_epoch, "steps_per_epoch",
                                                     owner))
        else:
            raise ValueError(f"{owner}: give total_steps, or epochs and steps_per_epoch, "
                             f"got total_steps={total_steps!r}, epochs={epochs!r}, "
                             f"steps_per_epoch={steps_per_epoch!r}")
        pct = _args.as_real(pct_start, "pct_start", owner, low=0, high=1)
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"{owner}: anneal_strategy must be 'cos' or 'linear', "
                             f"got anneal_strategy={anneal_strategy!r}")
        self.anneal_strategy = anneal_strategy
        self.pct_start = pct
        self.three_phase = _args.as_bool(three_phase, "three_phase", owner)
        max_lrs = _per_group(max_lr, "max_lr", optimizer, owner)
        div = _args.as_real(div_factor, "div_factor", owner, low=0, low_inclusive=False)
        final_div = _args.as_real(final_div_factor, "final_div_factor", owner, low=0,
                                  low_inclusive=False)
        self.cycle_momentum = _args.as_bool(cycle_momentum, "cycle_momentum", owner)
        if self.cycle_momentum:
            self.use_beta1 = _momentum_key(optimizer, owner)
            max_momentums = _per_group(max_momentum, "max_momentum", optimizer, owner)
            base_momentums = _per_group(base_momentum, "base_momentum", optimizer, owner)
        if last_epoch == -1:
            for index, group in enumerate(optimizer.param_groups):
                group["initial_lr"] = max_lrs[index] / div
                group["max_lr"] = max_lrs[index]
                group["min_lr"] = group["initial_lr"] / final_div
                if self.cycle_momentum:
                    _set_momentum(group, max_momentums[index], self.use_beta1)
                    group["max_momentum"] = max_momentums[index]
                    group["base_momentum"] = base_momentums[index]
        super().__init__(optimizer, last_epoch)

    def _phases(self):
        """(last step of the phase, lr from, lr to, momentum from, momentum to)
        for each phase, as the group keys that hold those values."""
        warm_up_end = self.pct_start * self.total_steps - 1
        if self.three_phase:
            return [(warm_up_end, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                    (2 * self.pct_start * self.total_steps - 2, "max_lr", "initial_lr",
                     "base_momentum", "max_momentum"),
                    (self.total_steps - 1, "initial_lr", "min_lr", "max_momentum",
                     "max_momentum")]
        return [(warm_up_end, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                (self.total_steps - 1, "max_lr", "min_lr", "base_momentum", "max_momentum")]

    def _anneal(self, start, end, pct):
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def get_lr(self):
        step = self.last_epoch
        if step > self.total_steps:
            raise ValueError(f"{type(self).__name__}: stepped {step} times, but "
                             f"total_steps={self.total_steps}")
        lrs, phases = [], self._phases()
        for group in self.optimizer.param_groups:
            start = 0.0
            for index, (end, lr_from, lr_to, m_from, m_to) in enumerate(phases):
                if step <= end or index == len(phases) - 1:
                    pct = (step - start) / (end - start)
                    lrs.append(self._anneal(group[lr_from], group[lr_to], pct))
                    if self.cycle_momentum:
                        _set_momentum(group, self._anneal(group[m_from], group[m_to], pct),
                                      self.use_beta1)
                    break
                start = end
        return lrs


class ReduceLROnPlateau(LRScheduler):
    """Multiply the lr by `factor` (down to `min_lr`) when the metric given to
    ``step(metric)`` has not improved for more than `patience` steps, then wait
    `cooldown` steps. `mode` 'min' (a loss) or 'max' (an accuracy); an
    improvement must beat the best by `threshold`, relative ('rel') or absolute
    ('abs'); changes smaller than `eps` are skipped."""

    def __init__(self, optimizer, mode="min", factor=0.1, patience=10, threshold=1e-4,
                 threshold_mode="rel", cooldown=0, min_lr=0, eps=1e-8):
        owner = type(self).__name__
        _check_optimizer(optimizer, owner)
        self.factor = _args.as_real(factor, "factor", owner, low=0, high=1,
                                    high_inclusive=False)
        self.optimizer = optimizer
        self.min_lrs = _per_group(min_lr, "min_lr", optimizer, owner)
        # A single min_lr also covers param groups added later (as PyTorch).
        self.default_min_lr = None if isinstance(min_lr, (list, tuple)) else self.min_lrs[0]
        self.patience = _args.as_int(patience, "patience", owner)
        self.cooldown = _args.as_int(cooldown, "cooldown", owner)
        for name, value in (("patience", self.patience), ("cooldown", self.cooldown)):
            if value < 0:
                raise ValueError(f"{owner}: {name} must be >= 0, got {name}={value}")
        self.eps = _args.as_real(eps, "eps", owner, low=0)
        if mode not in ("min", "max"):
            raise ValueError(f"{owner}: mode must be 'min' or 'max', got mode={mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"{owner}: threshold_mode must be 'rel' or 'abs', "
                             f"got threshold_mode={threshold_mode!r}")
        self.mode, self.threshold_mode = mode, threshold_mode
        self.threshold = _args.as_real(threshold, "threshold", owner, low=0)
        self.last_epoch = 0
        self._last_lr = self._current_lrs()
        self.best = math.inf if mode == "min" else -math.inf
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    @property
    def in_cooldown(self):
        return self.cooldown_counter > 0

    def _is_better(self, value):
        if self.mode == "min":
            bar = (self.best * (1 - self.threshold) if self.threshold_mode == "rel"
                   else self.best - self.threshold)
            return value < bar
        bar = (self.best * (1 + self.threshold) if self.threshold_mode == "rel"
               else self.best + self.threshold)
        return value > bar

    def step(self, metrics):
        """Record this epoch's metric (e.g. the validation loss) and reduce the
        lr if it has stopped improving."""
        if isinstance(metrics, (str, bytes, bool)):
            raise TypeError(f"{type(self).__name__}.step: metrics must be a number, "
                            f"got metrics={metrics!r}")
        try:
            current = float(metrics)   # NaN counts as no improvement, as in PyTorch
        except (TypeError, ValueError):
            raise TypeError(f"{type(self).__name__}.step: metrics must be a number, "
                            f"got metrics={metrics!r:.80}") from None
        self.last_epoch += 1
        if self._is_better(current):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0     # bad epochs in cooldown do not count
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = self._current_lrs()

    def _reduce_lr(self):
        groups = self.optimizer.param_groups
        if len(groups) != len(self.min_lrs):
            if self.default_min_lr is None:
                raise RuntimeError(
                    f"{type(self).__name__}: the optimizer has {len(groups)} param groups "
                    f"but min_lr lists {len(self.min_lrs)}; set min_lrs to one per group")
            self.min_lrs = [self.default_min_lr] * len(groups)
        for group, min_lr in zip(groups, self.min_lrs):
            old = float(group["lr"])
            new = max(old * self.factor, min_lr)
            if old - new > self.eps:
                group["lr"] = new
