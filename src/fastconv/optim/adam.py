"""Adam and AMSGrad, PyTorch's torch.optim.Adam."""
import numpy as np

from .. import _args
from .optimizer import (Optimizer, average_square_, count_step, descent_grad, lerp_,
                        state_buffer)

__all__ = ["Adam"]


class Adam(Optimizer):
    """torch.optim.Adam (``maximize`` and ``decoupled_weight_decay``
    keyword-only), at step t:

        g = -grad if maximize else grad
        p *= 1 - lr * weight_decay       (decoupled_weight_decay: AdamW)
        g = g + weight_decay * p         (otherwise: L2 penalty)
        m = lerp(m, g, 1 - beta1);  v = beta2 * v + (1 - beta2) * g * g
        v_hat = max(v_hat, v) (amsgrad) or v
        p -= lr / (1 - beta1^t) * m / (sqrt(v_hat) / sqrt(1 - beta2^t) + eps)
    """

    _state_keys = ("step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 amsgrad=False, *, maximize=False, decoupled_weight_decay=False):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad, maximize=maximize,
                                      decoupled_weight_decay=decoupled_weight_decay))

    def _check_hyper(self, group, where):
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"{where}: betas must be a pair of numbers in [0, 1), "
                             f"got betas={betas!r}")
        return dict(lr=_args.as_real(group["lr"], "lr", where, low=0),
                    betas=tuple(_args.as_real(b, f"betas[{i}]", where, low=0, high=1,
                                              high_inclusive=False)
                                for i, b in enumerate(betas)),
                    eps=_args.as_real(group["eps"], "eps", where, low=0),
                    weight_decay=_args.as_real(group["weight_decay"], "weight_decay",
                                               where, low=0),
                    amsgrad=_args.as_bool(group["amsgrad"], "amsgrad", where),
                    maximize=_args.as_bool(group["maximize"], "maximize", where),
                    decoupled_weight_decay=_args.as_bool(
                        group["decoupled_weight_decay"], "decoupled_weight_decay", where))

    def _update(self, param, grad, state, hyper):
        lr, (beta1, beta2), weight_decay = hyper["lr"], hyper["betas"], hyper["weight_decay"]
        exp_avg = state_buffer(state, "exp_avg", param)
        exp_avg_sq = state_buffer(state, "exp_avg_sq", param)
        step = count_step(state)
        if hyper["decoupled_weight_decay"]:
            if weight_decay != 0:
                param *= 1 - lr * weight_decay
            g = -grad if hyper["maximize"] else grad
        else:
            g = descent_grad(param, grad, hyper)
        lerp_(exp_avg, g, 1 - beta1)
        average_square_(exp_avg_sq, g, beta2)
        second = exp_avg_sq
        if hyper["amsgrad"]:
            second = state_buffer(state, "max_exp_avg_sq", param)
            np.maximum(second, exp_avg_sq, out=second)
        step_size = lr / (1 - beta1 ** step)
        denom = np.sqrt(second) / (1 - beta2 ** step) ** 0.5 + hyper["eps"]
        param -= step_size * (exp_avg / denom)
