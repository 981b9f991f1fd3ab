"""Adagrad, PyTorch's torch.optim.Adagrad."""
import numpy as np

from .. import _args
from .optimizer import Optimizer, count_step, descent_grad, state_buffer

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    """torch.optim.Adagrad (``maximize`` keyword-only), at step t:

        g = -grad if maximize else grad
        g = g + weight_decay * p
        sum += g * g              (sum starts at initial_accumulator_value)
        p -= lr / (1 + (t - 1) * lr_decay) * g / (sqrt(sum) + eps)

    As in PyTorch, every parameter's state exists from construction on. Unlike
    PyTorch 2.13, which fills every group's sum with the constructor's value,
    a param group's own initial_accumulator_value is honoured.
    """

    _state_keys = ("step", "sum")

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0,
                 initial_accumulator_value=0, eps=1e-10, *, maximize=False):
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value,
                                      eps=eps, maximize=maximize))
        for group, pairs in self._numbered_pairs():
            for number, param, _ in pairs:
                self.state[number] = {"step": 0}
                state_buffer(self.state[number], "sum", param,
                            group["initial_accumulator_value"])

    def _check_hyper(self, group, where):
        def non_negative(key):
            return _args.as_real(group[key], key, where, low=0)

        return dict(lr=non_negative("lr"), lr_decay=non_negative("lr_decay"),
                    weight_decay=non_negative("weight_decay"),
                    initial_accumulator_value=non_negative("initial_accumulator_value"),
                    eps=non_negative("eps"),
                    maximize=_args.as_bool(group["maximize"], "maximize", where))

    def _update(self, param, grad, state, hyper):
        total = state_buffer(state, "sum", param, hyper["initial_accumulator_value"])
        step = count_step(state)
        g = descent_grad(param, grad, hyper)
        lr = hyper["lr"] / (1 + (step - 1) * hyper["lr_decay"])
        total += g * g
        param -= lr * (g / (np.sqrt(total) + hyper["eps"]))
