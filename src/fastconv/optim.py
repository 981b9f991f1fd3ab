"""Optimizers with PyTorch's update rules, updating parameters in place.

An optimizer takes a layer or a Sequential and, at every ``step()``, walks its
``parameters()`` ((param, grad) pairs) in order; per-parameter state (momentum
buffers, Adam moments) is kept by position. Weight decay is PyTorch's L2 form:
``grad + weight_decay * param`` (so Adam here is torch.optim.Adam, not AdamW).
Arithmetic runs in each parameter's dtype.
"""
import math

import numpy as np

__all__ = ["Optimizer", "SGD", "Adam"]


def _non_negative(value, name, owner):
    value = float(value)
    if not value >= 0:      # also refuses NaN
        raise ValueError(f"{owner}: {name} must be >= 0, got {name}={value!r}")
    return value


class Optimizer:
    """Base class: holds the module and per-parameter state."""

    def __init__(self, module):
        if not hasattr(module, "parameters"):
            raise TypeError(f"{type(self).__name__}: expected a fastconv.nn layer or "
                            f"Sequential, got {module!r}")
        self.module = module
        self.state = []          # one dict per parameter, by position
        self._count = len(list(module.parameters()))

    def _pairs(self):
        pairs = list(self.module.parameters())
        if len(pairs) != self._count:
            raise RuntimeError(f"{type(self).__name__}: the module had {self._count} "
                               f"parameters when the optimizer was built, now "
                               f"{len(pairs)}; build a new optimizer")
        while len(self.state) < len(pairs):
            self.state.append({})
        return zip(pairs, self.state)

    def zero_grad(self):
        """Set every gradient to zero (backward overwrites them anyway)."""
        for p, g in self.module.parameters():
            g.fill(0)

    def step(self):
        raise NotImplementedError


class SGD(Optimizer):
    """torch.optim.SGD (dampening 0):

        g = grad + weight_decay * p
        buf = g (first step) or momentum * buf + g
        g = g + momentum * buf (nesterov) or buf
        p -= lr * g
    """

    def __init__(self, module, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
        name = type(self).__name__
        self.lr = _non_negative(lr, "lr", name)
        self.momentum = _non_negative(momentum, "momentum", name)
        self.weight_decay = _non_negative(weight_decay, "weight_decay", name)
        self.nesterov = bool(nesterov)
        if self.nesterov and self.momentum == 0:
            raise ValueError(f"{name}: nesterov=True needs momentum > 0, "
                             f"got momentum={momentum!r}")
        super().__init__(module)

    def step(self):
        for (p, grad), state in self._pairs():
            g = grad
            if self.weight_decay:
                g = grad + p * p.dtype.type(self.weight_decay)
            if self.momentum:
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = state["momentum_buffer"] = np.array(g, dtype=p.dtype, copy=True)
                else:
                    buf *= p.dtype.type(self.momentum)
                    buf += g
                g = g + buf * p.dtype.type(self.momentum) if self.nesterov else buf
            p -= g * p.dtype.type(self.lr)


class Adam(Optimizer):
    """torch.optim.Adam (amsgrad off):

        g = grad + weight_decay * p
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g^2
        p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
    """

    def __init__(self, module, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        name = type(self).__name__
        self.lr = _non_negative(lr, "lr", name)
        self.eps = _non_negative(eps, "eps", name)
        self.weight_decay = _non_negative(weight_decay, "weight_decay", name)
        try:
            b1, b2 = (float(b) for b in betas)
        except (TypeError, ValueError):
            raise ValueError(f"{name}: betas must be a pair of floats, "
                             f"got betas={betas!r}") from None
        for i, b in enumerate((b1, b2)):
            if not 0 <= b < 1:
                raise ValueError(f"{name}: betas[{i}] must be in [0, 1), got betas={betas!r}")
        self.betas = (b1, b2)
        super().__init__(module)

    def step(self):
        b1, b2 = self.betas
        for (p, grad), state in self._pairs():
            t = p.dtype.type
            g = grad
            if self.weight_decay:
                g = grad + p * t(self.weight_decay)
            if not state:
                state["step"] = 0
                state["exp_avg"] = np.zeros_like(p)
                state["exp_avg_sq"] = np.zeros_like(p)
            state["step"] += 1
            step = state["step"]
            m, v = state["exp_avg"], state["exp_avg_sq"]
            m *= t(b1)
            m += g * t(1 - b1)
            v *= t(b2)
            v += g * g * t(1 - b2)
            bias1 = 1 - b1 ** step
            bias2_sqrt = math.sqrt(1 - b2 ** step)
            denom = np.sqrt(v) / t(bias2_sqrt) + t(self.eps)
            p -= m / denom * t(self.lr / bias1)
