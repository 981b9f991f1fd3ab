"""fastconv.optim.lr_scheduler: learning-rate (and momentum) sequences against
torch.optim.lr_scheduler (2.13), resume, and argument errors."""
import copy
import io
import pickle
import warnings

import numpy as np
import pytest

from fastconv import optim
from fastconv.optim import lr_scheduler as sched
from optim_helpers import Holder

STEPS = 30


def twin_optimizers(torch, kind="SGD", lrs=(0.1,), **kwargs):
    """Ours and torch's `kind` over one small parameter per group, group i at lrs[i]."""
    ours = getattr(optim, kind)([{"params": Holder(np.zeros(2)), "lr": lr} for lr in lrs],
                                **kwargs)
    theirs = getattr(torch.optim, kind)(
        [{"params": [torch.zeros(2, dtype=torch.float64, requires_grad=True)], "lr": lr}
         for lr in lrs], **kwargs)
    return ours, theirs


def group_settings(opt):
    """Each group's lr, momentum and beta1 (NaN where the optimizer has none)."""
    return np.array([(g["lr"], g.get("momentum"), g.get("betas", (None,))[0])
                     for g in opt.param_groups], dtype=float)


def assert_same_schedule(torch, kind, make, metrics=None, lrs=(0.1, 0.02), steps=STEPS,
                         **opt_kwargs):
    ours_opt, theirs_opt = twin_optimizers(torch, kind, lrs, **opt_kwargs)
    ours = make(sched, ours_opt)
    theirs = make(torch.optim.lr_scheduler, theirs_opt)
    np.testing.assert_allclose(group_settings(ours_opt), group_settings(theirs_opt),
                               rtol=1e-13, atol=0)
    for epoch in range(steps):
        ours_opt.step()
        theirs_opt.step()
        if metrics is None:
            ours.step()
            theirs.step()
        else:
            ours.step(metrics[epoch])
            theirs.step(metrics[epoch])
        np.testing.assert_allclose(ours.get_last_lr(), theirs.get_last_lr(), rtol=1e-13,
                                   atol=1e-300, err_msg=f"epoch {epoch}")
        np.testing.assert_allclose(group_settings(ours_opt), group_settings(theirs_opt),
                                   rtol=1e-13, atol=1e-300, err_msg=f"epoch {epoch}")
        assert ours.last_epoch == theirs.last_epoch
    return ours, ours_opt


SCHEDULES = {
    "step": ("SGD", lambda m, o: m.StepLR(o, step_size=3, gamma=0.5)),
    "multistep": ("SGD", lambda m, o: m.MultiStepLR(o, milestones=[9, 2, 5, 5], gamma=0.3)),
    "exponential": ("SGD", lambda m, o: m.ExponentialLR(o, gamma=0.9)),
    "cosine": ("SGD", lambda m, o: m.CosineAnnealingLR(o, T_max=7, eta_min=0.001)),
    "cosine_eta0": ("Adam", lambda m, o: m.CosineAnnealingLR(o, T_max=4)),
    "cyclic_triangular_sgd": ("SGD", lambda m, o: m.CyclicLR(
        o, base_lr=0.01, max_lr=0.1, step_size_up=4)),
    "cyclic_triangular2": ("SGD", lambda m, o: m.CyclicLR(
        o, base_lr=[0.01, 0.001], max_lr=[0.1, 0.05], step_size_up=3, step_size_down=5,
        mode="triangular2", base_momentum=0.7, max_momentum=0.95)),
    "cyclic_exp_range_adam": ("Adam", lambda m, o: m.CyclicLR(
        o, base_lr=0.001, max_lr=0.01, step_size_up=5, mode="exp_range", gamma=0.9)),
    "cyclic_no_momentum_adagrad": ("Adagrad", lambda m, o: m.CyclicLR(
        o, base_lr=0.01, max_lr=0.1, step_size_up=2, cycle_momentum=False)),
    "cyclic_scale_fn": ("RMSprop", lambda m, o: m.CyclicLR(
        o, base_lr=0.01, max_lr=0.1, step_size_up=3, scale_fn=lambda x: 0.5 ** x,
        scale_mode="iterations")),
    "onecycle_cos": ("SGD", lambda m, o: m.OneCycleLR(o, max_lr=[0.1, 0.3], total_steps=STEPS)),
    "onecycle_linear_adam": ("Adam", lambda m, o: m.OneCycleLR(
        o, max_lr=0.01, epochs=5, steps_per_epoch=6, anneal_strategy="linear",
        pct_start=0.25)),
    "onecycle_three_phase": ("SGD", lambda m, o: m.OneCycleLR(
        o, max_lr=0.1, total_steps=STEPS, three_phase=True, div_factor=10.0,
        final_div_factor=100.0)),
    "onecycle_no_momentum": ("Adadelta", lambda m, o: m.OneCycleLR(
        o, max_lr=1.0, total_steps=STEPS, cycle_momentum=False)),
}


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_lr_sequence_matches_torch(name):
    torch = pytest.importorskip("torch")
    kind, make = SCHEDULES[name]
    kwargs = dict(momentum=0.9) if kind in ("SGD", "RMSprop") else {}
    assert_same_schedule(torch, kind, make, **kwargs)


LOSSES = [1.0, 0.9, 0.95, 0.95, 0.96, 0.97, 0.8, 0.8, 0.80001, 0.81, 0.82, 0.83, 0.84,
          0.85, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7,
          0.8]


@pytest.mark.parametrize("kwargs, metrics", [
    (dict(patience=2), LOSSES),
    (dict(patience=1, cooldown=2, factor=0.5), LOSSES),
    (dict(patience=0, threshold=0.05, threshold_mode="abs", min_lr=[0.01, 0.005]), LOSSES),
    (dict(mode="max", patience=1, factor=0.2, min_lr=0.001), [-x for x in LOSSES]),
    (dict(mode="max", patience=2, threshold=0.1), LOSSES),
    (dict(patience=0, eps=0.05), LOSSES),
])
def test_reduce_lr_on_plateau_matches_torch(kwargs, metrics):
    torch = pytest.importorskip("torch")
    ours, _ = assert_same_schedule(torch, "SGD", lambda m, o: m.ReduceLROnPlateau(o, **kwargs),
                                   metrics=metrics)
    assert ours.num_bad_epochs >= 0


def test_two_schedulers_compose_as_in_torch():
    torch = pytest.importorskip("torch")
    ours_opt, theirs_opt = twin_optimizers(torch, "SGD", (0.1, 0.05))
    pair = [(m.StepLR(o, step_size=4, gamma=0.5), m.ExponentialLR(o, gamma=0.95))
            for m, o in ((sched, ours_opt), (torch.optim.lr_scheduler, theirs_opt))]
    for _ in range(STEPS):
        ours_opt.step()
        theirs_opt.step()
        for s in pair[0] + pair[1]:
            s.step()
        np.testing.assert_allclose(pair[0][1].get_last_lr(), pair[1][1].get_last_lr(),
                                   rtol=1e-13)


def test_the_scheduled_lr_is_what_the_optimizer_uses():
    p, g = np.zeros(1), np.ones(1)
    opt = optim.SGD([(p, g)], lr=1.0)
    s = sched.StepLR(opt, step_size=1, gamma=0.5)
    moves = []
    for _ in range(3):
        before = p.copy()
        opt.step()
        s.step()
        moves.append(float(before[0] - p[0]))
    assert moves == [1.0, 0.5, 0.25]


# --------------------------------------------------------------------- resume

RESUMABLE = {
    "step": ("SGD", lambda o: sched.StepLR(o, 3, 0.5)),
    "multistep": ("SGD", lambda o: sched.MultiStepLR(o, [2, 7, 12], 0.3)),
    "cosine": ("SGD", lambda o: sched.CosineAnnealingLR(o, 6, 0.01)),
    "cyclic": ("Adam", lambda o: sched.CyclicLR(o, 0.01, 0.1, 3, mode="triangular2")),
    "onecycle": ("SGD", lambda o: sched.OneCycleLR(o, 0.1, total_steps=25)),
    "plateau": ("SGD", lambda o: sched.ReduceLROnPlateau(o, patience=1)),
}


def run(opt, s, epochs, start=0):
    out = []
    for epoch in range(start, start + epochs):
        opt.step()
        if isinstance(s, sched.ReduceLROnPlateau):
            s.step(LOSSES[epoch])
        else:
            s.step()
        out.append(s.get_last_lr() + [g.get("momentum", g.get("betas", [0])[0])
                                       for g in opt.param_groups])
    return out


def npz_roundtrip(sd):
    buf = io.BytesIO()
    np.savez(buf, **sd)
    buf.seek(0)
    return dict(np.load(buf, allow_pickle=True))


@pytest.mark.parametrize("roundtrip", [copy.deepcopy, lambda d: pickle.loads(pickle.dumps(d)),
                                       npz_roundtrip], ids=["dict", "pickle", "npz"])
@pytest.mark.parametrize("name", sorted(RESUMABLE))
def test_resume_equals_an_uninterrupted_schedule(name, roundtrip):
    kind, make = RESUMABLE[name]

    def fresh():
        opt = getattr(optim, kind)([{"params": Holder(np.zeros(2)), "lr": 0.1},
                                    {"params": Holder(np.zeros(1)), "lr": 0.03}],
                                   **({"momentum": 0.9} if kind == "SGD" else {}))
        return opt, make(opt)

    opt, s = fresh()
    straight = run(opt, s, 20)
    opt, s = fresh()
    run(opt, s, 8)
    saved_opt, saved_sched = roundtrip(opt.state_dict()), roundtrip(s.state_dict())
    opt2, s2 = fresh()
    opt2.load_state_dict(saved_opt)
    s2.load_state_dict(saved_sched)
    assert run(opt2, s2, 12, start=8) == straight[8:]


def test_last_epoch_resumes_from_the_optimizer_state():
    opt = optim.SGD(Holder(np.zeros(2)), lr=1.0)
    s = sched.StepLR(opt, step_size=2, gamma=0.5)
    for _ in range(5):
        opt.step()
        s.step()
    opt2 = optim.SGD(Holder(np.zeros(2)), lr=1.0)
    opt2.load_state_dict(opt.state_dict())
    s2 = sched.StepLR(opt2, step_size=2, gamma=0.5, last_epoch=4)
    assert s2.last_epoch == 5 and s2.get_last_lr() == s.get_last_lr()


def test_load_state_dict_of_another_scheduler_changes_nothing():
    opt = optim.SGD(Holder(np.zeros(2)), lr=1.0)
    s = sched.StepLR(opt, step_size=2)
    before = s.state_dict()
    other = sched.ExponentialLR(optim.SGD(Holder(np.zeros(2)), lr=1.0), gamma=0.5)
    with pytest.raises(ValueError, match="gamma|step_size|keys"):
        s.load_state_dict(other.state_dict())
    bad = dict(before, base_lrs=[1.0, 2.0])
    with pytest.raises(ValueError, match="base_lrs"):
        s.load_state_dict(bad)
    assert s.state_dict() == before


def test_schedulers_pickle_and_deepcopy_with_their_optimizer():
    opt = optim.Adam(Holder(np.zeros(2)), lr=0.1)
    s = sched.OneCycleLR(opt, max_lr=0.1, total_steps=10)
    run(opt, s, 3)
    for clone in (copy.deepcopy, lambda x: pickle.loads(pickle.dumps(x))):
        opt2, s2 = clone((opt, s))
        assert s2.optimizer is opt2
        assert run(opt2, s2, 4) == run(*clone((opt, s)), 4)


# --------------------------------------------------------------------- errors

def test_stepping_the_scheduler_first_warns():
    opt = optim.SGD(Holder(np.zeros(2)), lr=0.1)
    s = sched.StepLR(opt, 2)
    with pytest.warns(UserWarning, match="optimizer"):
        s.step()
    opt2 = optim.SGD(Holder(np.zeros(2)), lr=0.1)
    s2 = sched.StepLR(opt2, 2)
    opt2.step()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s2.step()


def test_onecycle_refuses_to_step_past_its_end():
    opt = optim.SGD(Holder(np.zeros(2)), lr=0.1, momentum=0.9)
    s = sched.OneCycleLR(opt, max_lr=0.1, total_steps=3)
    for _ in range(3):
        opt.step()
        s.step()
    opt.step()
    with pytest.raises(ValueError, match="total_steps"):
        s.step()


def test_a_param_group_added_later_is_not_silently_left_out():
    opt = optim.SGD(Holder(np.zeros(2)), lr=0.1)
    s = sched.StepLR(opt, 2)
    opt.add_param_group({"params": Holder(np.zeros(1))})
    opt.step()
    with pytest.raises(RuntimeError, match="param groups"):
        s.step()


def sgd(**kwargs):
    return optim.SGD(Holder(np.zeros(2)), lr=0.1, **kwargs)


@pytest.mark.parametrize("make, exc, name", [
    (lambda: sched.StepLR(None, 2), TypeError, "optimizer"),
    (lambda: sched.StepLR(sgd(), 0), ValueError, "step_size"),
    (lambda: sched.StepLR(sgd(), 1.5), TypeError, "step_size"),
    (lambda: sched.StepLR(sgd(), 2, gamma=-0.5), ValueError, "gamma"),
    (lambda: sched.StepLR(sgd(), 2, gamma="0.5"), TypeError, "gamma"),
    (lambda: sched.StepLR(sgd(), 2, last_epoch=3), ValueError, "initial_lr"),
    (lambda: sched.StepLR(sgd(), 2, last_epoch=-2), ValueError, "last_epoch"),
    (lambda: sched.MultiStepLR(sgd(), "12"), TypeError, "milestones"),
    (lambda: sched.MultiStepLR(sgd(), [1.5]), TypeError, "milestones"),
    (lambda: sched.MultiStepLR(sgd(), [-1]), ValueError, "milestones"),
    (lambda: sched.ExponentialLR(sgd(), float("nan")), ValueError, "gamma"),
    (lambda: sched.CosineAnnealingLR(sgd(), 0), ValueError, "T_max"),
    (lambda: sched.CosineAnnealingLR(sgd(), 5, eta_min=-1), ValueError, "eta_min"),
    (lambda: sched.CyclicLR(sgd(momentum=0.9), 0.01, 0.1, mode="sine"), ValueError, "mode"),
    (lambda: sched.CyclicLR(sgd(momentum=0.9), [0.01, 0.02], 0.1), ValueError, "base_lr"),
    (lambda: sched.CyclicLR(sgd(momentum=0.9), 0.01, 0.1, step_size_up=0), ValueError,
     "step_size_up"),
    (lambda: sched.CyclicLR(sgd(momentum=0.9), 0.01, 0.1, scale_mode="x", scale_fn=abs),
     ValueError, "scale_mode"),
    (lambda: sched.CyclicLR(optim.Adagrad(Holder(np.zeros(2))), 0.01, 0.1), ValueError,
     "cycle_momentum"),
    (lambda: sched.OneCycleLR(sgd(momentum=0.9), 0.1), ValueError, "total_steps"),
    (lambda: sched.OneCycleLR(sgd(momentum=0.9), 0.1, total_steps=0), ValueError,
     "total_steps"),
    (lambda: sched.OneCycleLR(sgd(momentum=0.9), 0.1, 10, pct_start=1.5), ValueError,
     "pct_start"),
    (lambda: sched.OneCycleLR(sgd(momentum=0.9), 0.1, 10, anneal_strategy="exp"),
     ValueError, "anneal_strategy"),
    (lambda: sched.OneCycleLR(sgd(momentum=0.9), 0.1, 10, div_factor=0), ValueError,
     "div_factor"),
    (lambda: sched.ReduceLROnPlateau(sgd(), factor=1.0), ValueError, "factor"),
    (lambda: sched.ReduceLROnPlateau(sgd(), mode="avg"), ValueError, "mode"),
    (lambda: sched.ReduceLROnPlateau(sgd(), threshold_mode="pct"), ValueError,
     "threshold_mode"),
    (lambda: sched.ReduceLROnPlateau(sgd(), patience=-1), ValueError, "patience"),
    (lambda: sched.ReduceLROnPlateau(sgd(), min_lr=[0.1, 0.2]), ValueError, "min_lr"),
    (lambda: sched.ReduceLROnPlateau(sgd()).step("0.5"), TypeError, "metrics"),
])
def test_bad_arguments_name_the_argument(make, exc, name):
    with pytest.raises(exc, match=name):
        make()
