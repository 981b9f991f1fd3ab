"""AdamW: Adam with decoupled weight decay, PyTorch's torch.optim.AdamW."""
from .adam import Adam

__all__ = ["AdamW"]


class AdamW(Adam):
    """torch.optim.AdamW: Adam whose weight decay shrinks the parameters
    (``p *= 1 - lr * weight_decay``) instead of adding to the gradient; the
    default weight_decay is 1e-2."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         decoupled_weight_decay=True)
