"""Adadelta, PyTorch's torch.optim.Adadelta."""
import numpy as np

from .. import _args
from .optimizer import Optimizer, average_square_, count_step, descent_grad, state_buffer

__all__ = ["Adadelta"]


class Adadelta(Optimizer):
    """torch.optim.Adadelta (``maximize`` keyword-only):

        g = -grad if maximize else grad
        g = g + weight_decay * p
        v = rho * v + (1 - rho) * g * g
        delta = sqrt(u + eps) / sqrt(v + eps) * g
        u = rho * u + (1 - rho) * delta * delta
        p -= lr * delta
    """

    _state_keys = ("step", "square_avg", "acc_delta")

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, *,
                 maximize=False):
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay,
                                      maximize=maximize))

    def _check_hyper(self, group, where):
        return dict(lr=_args.as_real(group["lr"], "lr", where, low=0),
                    rho=_args.as_real(group["rho"], "rho", where, low=0, high=1),
                    eps=_args.as_real(group["eps"], "eps", where, low=0),
                    weight_decay=_args.as_real(group["weight_decay"], "weight_decay",
                                               where, low=0),
                    maximize=_args.as_bool(group["maximize"], "maximize", where))

    def _update(self, param, grad, state, hyper):
        rho, eps = hyper["rho"], hyper["eps"]
        square_avg = state_buffer(state, "square_avg", param)
        acc_delta = state_buffer(state, "acc_delta", param)
        count_step(state)
        g = descent_grad(param, grad, hyper)
        average_square_(square_avg, g, rho)
        delta = np.sqrt(acc_delta + eps) / np.sqrt(square_avg + eps) * g
        average_square_(acc_delta, delta, rho)
        param -= hyper["lr"] * delta
