"""Optimizers with PyTorch's update rules, arguments and state_dict layout,
updating fastconv.nn parameters in place (see optimizer.py for what ``params``
may be), and learning-rate schedulers in :mod:`fastconv.optim.lr_scheduler`.

Weight decay is PyTorch's L2 form (``grad + weight_decay * param``) except in
AdamW, which shrinks the parameters. Arithmetic runs in each parameter's dtype.
"""
from . import lr_scheduler
from .adadelta import Adadelta
from .adagrad import Adagrad
from .adam import Adam
from .adamw import AdamW
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta",
           "lr_scheduler"]
