"""A whole training loop: a tiny net trained 20 steps with each optimizer and
a scheduler ends with PyTorch's parameters (same start weights, same data)."""
import numpy as np
import pytest

from fastconv import nn, optim

torch = pytest.importorskip("torch")

CASES = [
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
     "StepLR", dict(step_size=5, gamma=0.5)),
    ("Adam", dict(lr=0.01, amsgrad=True), "CosineAnnealingLR", dict(T_max=20)),
    ("AdamW", dict(lr=0.01), "OneCycleLR", dict(max_lr=0.02, total_steps=20)),
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.5), "ExponentialLR", dict(gamma=0.95)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01), "MultiStepLR", dict(milestones=[5, 10])),
    ("Adadelta", dict(lr=1.0), "CyclicLR",
     dict(base_lr=0.1, max_lr=1.0, step_size_up=3, cycle_momentum=False)),
    ("SGD", dict(lr=0.2, momentum=0.5), "ReduceLROnPlateau", dict(patience=1, factor=0.5)),
]


def tiny_nets():
    ours = nn.Sequential(nn.Linear(4, 8, dtype=np.float64, rng=0), nn.Tanh(),
                         nn.Linear(8, 3, dtype=np.float64, rng=1))
    theirs = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(),
                                 torch.nn.Linear(8, 3)).double()
    theirs.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})
    return ours, theirs


def train_step(net, torch_net, opt, topt, x, y):
    """One MSE training step of each network; returns both losses."""
    loss_fn = nn.MSELoss()
    loss = loss_fn(net(x), y)
    opt.zero_grad()
    net.backward(loss_fn.backward())
    opt.step()
    tloss = torch.nn.functional.mse_loss(torch_net(torch.tensor(x)), torch.tensor(y))
    topt.zero_grad()
    tloss.backward()
    topt.step()
    return loss, tloss.item()


def assert_same_weights(module, torch_module):
    for key, value in module.state_dict().items():
        np.testing.assert_allclose(value, torch_module.state_dict()[key].numpy(), rtol=1e-9,
                                   atol=1e-12, err_msg=key)


@pytest.mark.parametrize("kind, kwargs, schedule, sched_kwargs", CASES,
                         ids=[f"{c[0]}+{c[2]}" for c in CASES])
def test_training_matches_torch(kind, kwargs, schedule, sched_kwargs):
    ours, theirs = tiny_nets()
    opt, topt = getattr(optim, kind)(ours, **kwargs), getattr(torch.optim, kind)(
        theirs.parameters(), **kwargs)
    sched = getattr(optim.lr_scheduler, schedule)(opt, **sched_kwargs)
    tsched = getattr(torch.optim.lr_scheduler, schedule)(topt, **sched_kwargs)
    rng = np.random.default_rng(0)
    for _ in range(20):
        x, y = rng.standard_normal((5, 4)), rng.standard_normal((5, 3))
        loss, tloss = train_step(ours, theirs, opt, topt, x, y)
        assert loss == pytest.approx(tloss, rel=1e-10)
        if schedule == "ReduceLROnPlateau":
            sched.step(loss)
            tsched.step(tloss)
        else:
            sched.step()
            tsched.step()
        assert sched.get_last_lr() == pytest.approx(tsched.get_last_lr(), rel=1e-12)
    assert_same_weights(ours, theirs)


def test_param_groups_train_as_in_torch():
    # Body and head at their own lr and momentum (fine-tuning), one schedule for both.
    ours, theirs = tiny_nets()
    opt = optim.SGD([{"params": ours[0]}, {"params": ours[2], "lr": 0.05, "momentum": 0.5}],
                    lr=0.1, momentum=0.9)
    topt = torch.optim.SGD([{"params": theirs[0].parameters()},
                            {"params": theirs[2].parameters(), "lr": 0.05, "momentum": 0.5}],
                           lr=0.1, momentum=0.9)
    sched = optim.lr_scheduler.MultiStepLR(opt, milestones=[4, 8], gamma=0.5)
    tsched = torch.optim.lr_scheduler.MultiStepLR(topt, milestones=[4, 8], gamma=0.5)
    rng = np.random.default_rng(1)
    for _ in range(12):
        x, y = rng.standard_normal((5, 4)), rng.standard_normal((5, 3))
        train_step(ours, theirs, opt, topt, x, y)
        sched.step()
        tsched.step()
    assert sched.get_last_lr() == pytest.approx(tsched.get_last_lr(), rel=1e-15)
    assert_same_weights(ours, theirs)


def test_a_layer_used_twice_is_one_parameter_for_the_optimizer():
    lin = nn.Linear(3, 3, dtype=np.float64, rng=0)
    net = nn.Sequential(lin, nn.Tanh(), lin)
    tlin = torch.nn.Linear(3, 3).double()
    tlin.load_state_dict({k: torch.tensor(v) for k, v in lin.state_dict().items()})
    opt = optim.Adam(net, lr=0.05)
    topt = torch.optim.Adam(tlin.parameters(), lr=0.05)
    assert opt.state_dict()["param_groups"][0]["params"] == [0, 1]
    rng = np.random.default_rng(2)
    for _ in range(8):
        x, y = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
        train_step(net, lambda tx: tlin(torch.tanh(tlin(tx))), opt, topt, x, y)
    assert_same_weights(lin, tlin)
