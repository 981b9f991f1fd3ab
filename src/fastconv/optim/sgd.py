"""Stochastic gradient descent with momentum, PyTorch's torch.optim.SGD."""
import numpy as np

from .. import _args
from .optimizer import Optimizer, descent_grad

__all__ = ["SGD"]


class SGD(Optimizer):
    """torch.optim.SGD, argument for argument (``maximize`` keyword-only):

        g = -grad if maximize else grad
        g = g + weight_decay * p
        buf = g (first step) or momentum * buf + (1 - dampening) * g
        g = g + momentum * buf (nesterov) or buf        (when momentum != 0)
        p -= lr * g

    The fourth positional argument is ``dampening``, as in PyTorch (it used to
    be ``nesterov`` here): ``SGD(net, 0.1, 0.9, True)`` raises TypeError.
    """

    _state_keys = ("momentum_buffer",)

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0,
                 nesterov=False, *, maximize=False):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov,
                                      maximize=maximize))

    def _check_hyper(self, group, where):
        if isinstance(group["dampening"], bool):
            raise TypeError(f"{where}: dampening must be a real number, got "
                            f"dampening={group['dampening']!r} (the 4th positional "
                            f"argument of SGD is dampening, as in PyTorch; pass "
                            f"nesterov= by name)")
        out = dict(lr=_args.as_real(group["lr"], "lr", where, low=0),
                   momentum=_args.as_real(group["momentum"], "momentum", where, low=0),
                   dampening=_args.as_real(group["dampening"], "dampening", where),
                   weight_decay=_args.as_real(group["weight_decay"], "weight_decay",
                                              where, low=0),
                   nesterov=_args.as_bool(group["nesterov"], "nesterov", where),
                   maximize=_args.as_bool(group["maximize"], "maximize", where))
        if out["nesterov"] and (out["momentum"] <= 0 or out["dampening"] != 0):
            raise ValueError(f"{where}: nesterov=True needs momentum > 0 and dampening = 0, "
                             f"got momentum={group['momentum']!r}, "
                             f"dampening={group['dampening']!r}")
        return out

    def _update(self, param, grad, state, hyper):
        g = descent_grad(param, grad, hyper)
        momentum = hyper["momentum"]
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:     # np.array, not g.copy(): -g of a 0-d array is a scalar
                buf = state["momentum_buffer"] = np.array(g)
            else:
                buf *= momentum
                buf += (1 - hyper["dampening"]) * g
            g = g + momentum * buf if hyper["nesterov"] else buf
        param -= hyper["lr"] * g
