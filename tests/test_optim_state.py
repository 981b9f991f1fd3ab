"""fastconv.optim without PyTorch: what params may be, argument errors,
state_dict resume (and validate-before-apply), pickling and copying."""
import copy
import io
import pickle

import numpy as np
import pytest

from fastconv import nn, optim
from optim_helpers import Holder

KINDS = {
    "SGD": dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
    "Adam": dict(lr=0.01, amsgrad=True),
    "AdamW": dict(lr=0.01),
    "RMSprop": dict(lr=0.01, centered=True, momentum=0.5),
    "Adagrad": dict(lr=0.1, lr_decay=0.01),
    "Adadelta": dict(weight_decay=0.01),
}


def make_holder(seed=0):
    rng = np.random.default_rng(seed)
    return Holder(rng.standard_normal((2, 3)), rng.standard_normal(3))


def feed(holder, opt, steps, seed):
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        holder.set_grads([rng.standard_normal(v.shape) for v in holder.values])
        opt.step()


def state_snapshot(opt):
    return pickle.dumps((opt.param_groups[0]["lr"], opt.state_dict()))


# --------------------------------------------------------------------- params

def test_params_forms_give_the_same_updates():
    results = []
    for make in (lambda h: h, lambda h: [h], lambda h: h.parameters(),
                 lambda h: list(h.parameters()), lambda h: [{"params": h}]):
        holder = make_holder()
        feed(holder, optim.SGD(make(holder), lr=0.1, momentum=0.9), 3, seed=1)
        results.append(holder.values)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


def test_updates_in_place_a_real_module():
    net = nn.Sequential(nn.Linear(3, 2, dtype=np.float64, rng=0), nn.Tanh(),
                        nn.Linear(2, 1, dtype=np.float64, rng=1))
    arrays = [p for p, _ in net.parameters()]
    before = [p.copy() for p in arrays]
    opt = optim.Adam(net, lr=0.1)
    for _, g in net.parameters():
        g[...] = 1.0
    opt.step()
    for p, old, (now, _) in zip(arrays, before, net.parameters()):
        assert p is now
        np.testing.assert_allclose(p, old - 0.1, rtol=1e-6)
    opt.zero_grad()
    assert not any(g.any() for _, g in net.parameters())


def test_shared_parameters_are_updated_once():
    holder = make_holder()
    p0 = holder.values[0].copy()
    opt = optim.SGD([holder, holder], lr=0.5)      # the same module twice in one group
    holder.grads[0][...] = 1.0
    opt.step()
    np.testing.assert_allclose(holder.values[0], p0 - 0.5)
    assert opt.state_dict()["param_groups"][0]["params"] == [0, 1]


def test_a_grad_of_none_is_skipped():
    p, q = np.ones(2), np.ones(2)
    opt = optim.Adam([(p, None), (q, np.ones(2))], lr=0.1)
    opt.step()
    np.testing.assert_array_equal(p, 1.0)
    assert 0 not in opt.state and opt.state[1]["step"] == 1
    np.testing.assert_allclose(q, 0.9)


def test_step_calls_the_closure_first_and_returns_its_value():
    holder = make_holder()
    calls = []

    def closure():
        calls.append(holder.values[1].copy())
        holder.grads[1][...] = 2.0
        return 1.25

    opt = optim.SGD(holder, lr=0.5)
    before = holder.values[1].copy()
    assert opt.step(closure) == 1.25
    np.testing.assert_array_equal(calls[0], before)
    np.testing.assert_allclose(holder.values[1], before - 1.0)


def test_lr_changed_in_a_param_group_is_used_in_the_parameters_dtype():
    holder = make_holder()
    opt = optim.SGD(holder, lr=0.1)
    opt.param_groups[0]["lr"] = 0.5
    before = holder.values[0].copy()
    holder.grads[0][...] = 1.0
    opt.step()
    np.testing.assert_allclose(holder.values[0], before - 0.5)
    # A NumPy float64 lr (e.g. read back from a file) must not turn a float32
    # update into a float64 one rounded at the end.
    rng = np.random.default_rng(0)
    p, g = rng.random(200, np.float32), rng.random(200, np.float32)
    expected = p - np.float32(0.1) * g
    opt32 = optim.SGD([(p, g)], lr=0.2)
    opt32.param_groups[0]["lr"] = np.float64(0.1)
    opt32.step()
    np.testing.assert_array_equal(p, expected)


def test_add_param_group_trains_a_new_head_at_its_own_lr():
    body, head = make_holder(0), make_holder(1)
    opt = optim.SGD(body, lr=0.1)
    opt.add_param_group({"params": head, "lr": 1.0})
    head_before = head.values[1].copy()
    head.grads[1][...] = 1.0
    opt.step()
    np.testing.assert_allclose(head.values[1], head_before - 1.0)
    assert opt.param_groups[1]["momentum"] == 0
    with pytest.raises(ValueError, match="another param group"):
        opt.add_param_group({"params": head.parameters()})


def test_a_bad_grad_found_at_step_changes_no_parameter():
    first, second = make_holder(0), make_holder(1)
    opt = optim.SGD([{"params": first}, {"params": second}], lr=0.1)
    before = [v.copy() for v in first.values + second.values]
    first.grads[0][...] = 1.0
    second.grads[1] = np.zeros(4)            # the last grad of the last group is wrong
    with pytest.raises(ValueError, match="grad has shape"):
        opt.step()
    for value, old in zip(first.values + second.values, before):
        np.testing.assert_array_equal(value, old)


def test_a_module_that_changes_its_parameters_raises():
    holder = make_holder()
    opt = optim.Adam(holder)
    holder.values.append(np.zeros(2))
    holder.grads.append(np.zeros(2))
    with pytest.raises(RuntimeError, match="changed"):
        opt.step()
    holder = make_holder()
    opt = optim.SGD(holder, lr=0.1)
    holder.values[1] = np.zeros(5)
    holder.grads[1] = np.zeros(5)
    with pytest.raises(RuntimeError, match="changed"):
        opt.step()


# --------------------------------------------------------------------- errors

@pytest.mark.parametrize("make, exc, name", [
    (lambda m: optim.SGD(m, lr=-1), ValueError, "lr"),
    (lambda m: optim.SGD(m, lr=float("nan")), ValueError, "lr"),
    (lambda m: optim.SGD(m, lr=float("inf")), ValueError, "lr"),
    (lambda m: optim.SGD(m, lr="0.1"), TypeError, "lr"),
    (lambda m: optim.SGD(m, lr=None), TypeError, "lr"),
    (lambda m: optim.SGD(m, lr=True), TypeError, "lr"),
    (lambda m: optim.SGD(m, 0.1, 0.9, True), TypeError, "dampening"),   # the old order
    (lambda m: optim.SGD(m, 0.1, momentum=-0.1), ValueError, "momentum"),
    (lambda m: optim.SGD(m, 0.1, weight_decay=-1), ValueError, "weight_decay"),
    (lambda m: optim.SGD(m, 0.1, nesterov=True), ValueError, "nesterov"),
    (lambda m: optim.SGD(m, 0.1, 0.9, 0.5, nesterov=True), ValueError, "dampening"),
    (lambda m: optim.SGD(m, 0.1, nesterov="yes"), TypeError, "nesterov"),
    (lambda m: optim.SGD(m, 0.1, maximize=1), TypeError, "maximize"),
    (lambda m: optim.Adam(m, betas=(0.9, 1.0)), ValueError, "betas"),
    (lambda m: optim.Adam(m, betas=(-0.1, 0.9)), ValueError, "betas"),
    (lambda m: optim.Adam(m, betas=0.9), ValueError, "betas"),
    (lambda m: optim.Adam(m, betas=(0.9, 0.99, 0.9)), ValueError, "betas"),
    (lambda m: optim.Adam(m, eps=-1e-8), ValueError, "eps"),
    (lambda m: optim.Adam(m, amsgrad="no"), TypeError, "amsgrad"),
    (lambda m: optim.AdamW(m, weight_decay=-0.1), ValueError, "weight_decay"),
    (lambda m: optim.RMSprop(m, alpha=-0.5), ValueError, "alpha"),
    (lambda m: optim.RMSprop(m, momentum=-0.5), ValueError, "momentum"),
    (lambda m: optim.RMSprop(m, centered=None), TypeError, "centered"),
    (lambda m: optim.Adagrad(m, lr_decay=-1), ValueError, "lr_decay"),
    (lambda m: optim.Adagrad(m, initial_accumulator_value=-1), ValueError,
     "initial_accumulator_value"),
    (lambda m: optim.Adagrad(m, eps=-1), ValueError, "eps"),
    (lambda m: optim.Adadelta(m, rho=1.5), ValueError, "rho"),
    (lambda m: optim.Adadelta(m, lr=-1.0), ValueError, "lr"),
    (lambda m: optim.SGD([{"params": m}, {"params": make_holder(1), "lr": -2}]),
     ValueError, r"param_groups\[1\]: lr"),
])
def test_bad_arguments_name_the_argument(make, exc, name):
    with pytest.raises(exc, match=name):
        make(make_holder())


@pytest.mark.parametrize("params, exc, match", [
    (np.zeros(3), TypeError, "layer"),
    ([np.zeros(3)], TypeError, "layer"),
    ([], ValueError, "empty"),
    (None, TypeError, "params"),
    (3.0, TypeError, "params"),
    ({"params": None}, TypeError, "params"),
    ([{"lr": 0.1}], ValueError, "'params'"),
    ([{"params": {make_holder()}}], TypeError, "ordered"),
    ([make_holder(), {"params": make_holder()}], TypeError, "mixes"),
    (nn.ReLU(), ValueError, "no parameters"),
    ([(np.zeros(3), np.zeros(4))], ValueError, "grad has shape"),
    ([(np.zeros(3), np.zeros(3, np.float32))], ValueError, "dtype"),
    ([(np.zeros(3, np.int64), np.zeros(3, np.int64))], TypeError, "float32 or float64"),
    ([(np.zeros((2, 2)).view(np.matrix), np.zeros((2, 2)))], TypeError, "ndarray"),
])
def test_bad_params(params, exc, match):
    with pytest.raises(exc, match=match):
        optim.SGD(params, lr=0.1)


def test_read_only_parameter_is_refused():
    p = np.zeros(3)
    p.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        optim.Adam([(p, np.zeros(3))])


def test_two_groups_may_not_share_a_parameter():
    holder = make_holder()
    with pytest.raises(ValueError, match="another param group"):
        optim.SGD([{"params": holder}, {"params": list(holder.parameters())[:1]}], lr=0.1)


# ----------------------------------------------------------------- state_dict

def resume_equals_uninterrupted(kind, kwargs, roundtrip):
    straight = make_holder()
    opt = getattr(optim, kind)(straight, **kwargs)
    feed(straight, opt, 3, seed=5)
    saved_values = [v.copy() for v in straight.values]
    saved = roundtrip(opt.state_dict())
    feed(straight, opt, 3, seed=6)

    resumed = make_holder(seed=99)            # other values and a fresh optimizer
    for dst, src in zip(resumed.values, saved_values):
        dst[...] = src
    opt2 = getattr(optim, kind)(resumed, lr=0.5)
    opt2.load_state_dict(saved)
    feed(resumed, opt2, 3, seed=6)
    for a, b in zip(straight.values, resumed.values):
        np.testing.assert_array_equal(a, b)
    assert opt2.param_groups[0]["lr"] == kwargs.get("lr", opt.defaults["lr"])


def via_pickle(sd):
    return pickle.loads(pickle.dumps(sd))


def via_npz(sd):
    buf = io.BytesIO()
    np.savez(buf, **sd)
    buf.seek(0)
    return dict(np.load(buf, allow_pickle=True))


@pytest.mark.parametrize("roundtrip", [lambda sd: sd, via_pickle, via_npz],
                         ids=["dict", "pickle", "npz"])
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_resume_from_state_dict_equals_an_uninterrupted_run(kind, roundtrip):
    resume_equals_uninterrupted(kind, KINDS[kind], roundtrip)


def test_state_dict_is_a_copy():
    holder = make_holder()
    opt = optim.Adam(holder)
    feed(holder, opt, 1, seed=0)
    sd = opt.state_dict()
    kept = copy.deepcopy(sd)
    feed(holder, opt, 2, seed=1)
    opt.param_groups[0]["lr"] = 0.5
    assert pickle.dumps(sd) == pickle.dumps(kept)


def test_loaded_state_is_cast_to_the_parameter_dtype_and_owned():
    p = np.ones(3, np.float32)
    opt = optim.SGD([(p, np.ones(3, np.float32))], lr=0.1, momentum=0.9)
    buf = np.arange(3.0)                                # float64
    sd = {"state": {0: {"momentum_buffer": buf}},
          "param_groups": [dict(opt.state_dict()["param_groups"][0])]}
    opt.load_state_dict(sd)
    ours = opt.state[0]["momentum_buffer"]
    assert ours.dtype == np.float32 and ours.flags.c_contiguous
    opt.step()
    np.testing.assert_array_equal(buf, np.arange(3.0))     # the input is not modified


def sgd_saved_after_a_step():
    holder = make_holder()
    opt = optim.SGD(holder, lr=0.1, momentum=0.9)
    feed(holder, opt, 1, seed=0)
    return opt, opt.state_dict()


def edit(change):
    def make(sd):
        sd = copy.deepcopy(sd)
        change(sd)
        return sd
    return make


BAD_STATE_DICTS = [
    ("not a mapping", lambda sd: [1, 2], "mapping"),
    ("no state", edit(lambda sd: sd.pop("state")), "mapping"),
    ("two groups", edit(lambda sd: sd["param_groups"].append(sd["param_groups"][0])),
     "param groups"),
    ("params count", edit(lambda sd: sd["param_groups"][0]["params"].append(2)),
     "parameters"),
    ("params not ints", edit(lambda sd: sd["param_groups"][0].update(params=["a", "b"])),
     "numbers"),
    ("params twice", edit(lambda sd: sd["param_groups"][0].update(params=[0, 0])),
     "twice"),
    ("missing setting", edit(lambda sd: sd["param_groups"][0].pop("momentum")),
     "momentum"),
    ("bad lr", edit(lambda sd: sd["param_groups"][0].update(lr=-0.1)), "lr"),
    ("string lr", edit(lambda sd: sd["param_groups"][0].update(lr="big")), "lr"),
    ("bad nesterov", edit(lambda sd: sd["param_groups"][0].update(nesterov=True,
                                                                 momentum=0.0)), "nesterov"),
    ("wrong shape last", edit(lambda sd: sd["state"][1].update(momentum_buffer=np.zeros(4))),
     "shape"),
    ("complex", edit(lambda sd: sd["state"][1].update(
        momentum_buffer=np.zeros(3, complex))), "real-valued"),
    ("string", edit(lambda sd: sd["state"][1].update(momentum_buffer="zeros")),
     "real-valued"),
    ("None", edit(lambda sd: sd["state"][1].update(momentum_buffer=None)), "real-valued"),
    ("bool", edit(lambda sd: sd["state"][1].update(
        momentum_buffer=np.zeros(3, bool))), "real-valued"),
    ("unknown key", edit(lambda sd: sd["state"][1].update(exp_avg=np.zeros(3))), "exp_avg"),
    ("unknown param", edit(lambda sd: sd["state"].update({7: {}})), "7"),
    ("entry not a dict", edit(lambda sd: sd["state"].update({1: 3.0})), "dict"),
]


@pytest.mark.parametrize("bad, match", [(b, m) for _, b, m in BAD_STATE_DICTS],
                         ids=[i for i, _, _ in BAD_STATE_DICTS])
def test_a_bad_state_dict_raises_and_changes_nothing(bad, match):
    opt, sd = sgd_saved_after_a_step()
    groups_before = opt.param_groups
    before = state_snapshot(opt)
    with pytest.raises((ValueError, TypeError), match=match):
        opt.load_state_dict(bad(sd))
    assert state_snapshot(opt) == before
    assert opt.param_groups is groups_before


@pytest.mark.parametrize("step, ok", [(3, True), (3.0, True), (np.float32(2.0), True),
                                      (np.array(4.0), True), (-1, False), (2.5, False),
                                      (True, False), ("3", False)])
def test_a_saved_step_count_must_be_a_whole_number(step, ok):
    holder = make_holder()
    opt = optim.Adam(holder)
    feed(holder, opt, 1, seed=0)
    sd = opt.state_dict()
    sd["state"][0]["step"] = step
    if ok:
        opt.load_state_dict(sd)
        assert opt.state[0]["step"] == int(step) and type(opt.state[0]["step"]) is int
    else:
        with pytest.raises(ValueError, match="step"):
            opt.load_state_dict(sd)


def test_loading_another_optimizers_state_is_refused():
    holder = make_holder()
    adam = optim.Adam(holder)
    feed(holder, adam, 1, seed=0)
    with pytest.raises(ValueError):
        optim.SGD(holder, lr=0.1).load_state_dict(adam.state_dict())


# ------------------------------------------------------- pickle and deepcopy

@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("clone", [copy.deepcopy, lambda obj: pickle.loads(pickle.dumps(obj))],
                         ids=["deepcopy", "pickle"])
def test_a_cloned_optimizer_follows_its_cloned_module(kind, clone):
    holder = make_holder()
    opt = getattr(optim, kind)(holder, **KINDS[kind])
    feed(holder, opt, 2, seed=1)
    holder2, opt2 = clone((holder, opt))
    feed(holder, opt, 2, seed=2)
    feed(holder2, opt2, 2, seed=2)
    for a, b in zip(holder.values, holder2.values):
        assert a is not b
        np.testing.assert_array_equal(a, b)


def test_repr_names_the_settings():
    text = repr(optim.SGD(make_holder(), lr=0.25, momentum=0.5))
    assert "SGD" in text and "lr=0.25" in text and "momentum=0.5" in text


@pytest.mark.parametrize("clone", [copy.deepcopy, lambda obj: pickle.loads(pickle.dumps(obj))],
                         ids=["deepcopy", "pickle"])
def test_a_network_its_optimizer_and_scheduler_clone_together_mid_run(clone):
    # Keeping the best model (and resuming from it) is copy.deepcopy((net, opt, sched)).
    from fastconv.optim import lr_scheduler
    net = nn.Sequential(nn.Linear(3, 4, dtype=np.float64, rng=0), nn.Tanh(),
                        nn.Linear(4, 2, dtype=np.float64, rng=1))
    opt = optim.Adam(net, lr=0.05)
    sched = lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    loss_fn, rng = nn.MSELoss(), np.random.default_rng(0)
    batches = [(rng.standard_normal((5, 3)), rng.standard_normal((5, 2))) for _ in range(6)]

    def train(net, opt, sched, batches):
        for x, y in batches:
            loss_fn(net(x), y)
            opt.zero_grad()
            net.backward(loss_fn.backward())
            opt.step()
            sched.step()

    train(net, opt, sched, batches[:3])
    copies = clone((net, opt, sched))
    train(net, opt, sched, batches[3:])
    train(*copies, batches[3:])
    assert copies[2].optimizer is copies[1]
    for key, value in net.state_dict().items():
        np.testing.assert_array_equal(value, copies[0].state_dict()[key])
