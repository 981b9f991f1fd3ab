"""RMSprop, PyTorch's torch.optim.RMSprop."""
import numpy as np

from .. import _args
from .optimizer import (Optimizer, average_square_, count_step, descent_grad, lerp_,
                        state_buffer)

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    """torch.optim.RMSprop (``maximize`` keyword-only):

        g = -grad if maximize else grad
        g = g + weight_decay * p
        v = alpha * v + (1 - alpha) * g * g
        m = lerp(m, g, 1 - alpha); avg = sqrt(v - m * m) + eps    (centered)
        avg = sqrt(v) + eps                                       (otherwise)
        buf = momentum * buf + g / avg; p -= lr * buf             (momentum > 0)
        p -= lr * g / avg                                         (otherwise)
    """

    _state_keys = ("step", "square_avg", "momentum_buffer", "grad_avg")

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
                 centered=False, *, maximize=False):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered,
                                      maximize=maximize))

    def _check_hyper(self, group, where):
        return dict(lr=_args.as_real(group["lr"], "lr", where, low=0),
                    alpha=_args.as_real(group["alpha"], "alpha", where, low=0),
                    eps=_args.as_real(group["eps"], "eps", where, low=0),
                    weight_decay=_args.as_real(group["weight_decay"], "weight_decay",
                                               where, low=0),
                    momentum=_args.as_real(group["momentum"], "momentum", where, low=0),
                    centered=_args.as_bool(group["centered"], "centered", where),
                    maximize=_args.as_bool(group["maximize"], "maximize", where))

    def _update(self, param, grad, state, hyper):
        alpha = hyper["alpha"]
        square_avg = state_buffer(state, "square_avg", param)
        count_step(state)
        g = descent_grad(param, grad, hyper)
        average_square_(square_avg, g, alpha)
        if hyper["centered"]:
            grad_avg = state_buffer(state, "grad_avg", param)
            lerp_(grad_avg, g, 1 - alpha)
            avg = np.sqrt(square_avg - grad_avg * grad_avg)
        else:
            avg = np.sqrt(square_avg)
        avg += hyper["eps"]
        if hyper["momentum"] > 0:
            buf = state_buffer(state, "momentum_buffer", param)
            buf *= hyper["momentum"]
            buf += g / avg
            param -= hyper["lr"] * buf
        else:
            param -= hyper["lr"] * (g / avg)
