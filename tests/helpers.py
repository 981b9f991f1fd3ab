"""Shared test utilities."""
import numpy as np


def numerical_grad(f, x, eps=1e-6):
    """Central-difference gradient of scalar f at float64 array x."""
    grad = np.zeros_like(x)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        fp = f()
        flat[i] = old - eps
        fm = f()
        flat[i] = old
        gflat[i] = (fp - fm) / (2 * eps)
    return grad


def non_contiguous(a):
    """A copy of `a` with the same values but a non-contiguous, negatively
    strided layout (catches kernels that assume C order)."""
    big = np.empty(a.shape[:-1] + (2 * a.shape[-1],), dtype=a.dtype)[..., ::-2]
    big[...] = a
    return big


def batch_norm_case(rng, shape, dtype, offset=0.0):
    """batch_norm's arrays for an input of `shape` (values around `offset`),
    as keyword arguments."""
    c = shape[1]
    return dict(input=(rng.standard_normal(shape) * 2 + offset).astype(dtype),
                running_mean=rng.standard_normal(c).astype(dtype),
                running_var=(rng.random(c) + 0.5).astype(dtype),
                weight=rng.standard_normal(c).astype(dtype),
                bias=rng.standard_normal(c).astype(dtype))


def package_env():
    """os.environ with the directory of the fastconv under test first on
    PYTHONPATH, so a child `python -m fastconv...` imports the same package."""
    import os
    from pathlib import Path

    import fastconv
    env = dict(os.environ)
    pkg_parent = str(Path(fastconv.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([pkg_parent] + [p for p in env.get(
        "PYTHONPATH", "").split(os.pathsep) if p])
    return env


# ---------------------------------------- fastconv.nn: Sequential's pairs
def relu_was_fused(relu):
    """Whether relu's newest pending forward ran fused into the layer
    before it in a Sequential (it then keeps a marker, not an array)."""
    return isinstance(relu._pending[-1][0][1], str)


def layers_one_by_one(layers, x, gy):
    """(output, input gradient) of the layers called one at a time (no
    container: nothing fuses)."""
    for layer in layers:
        x = layer(x)
    for layer in reversed(layers):
        gy = layer.backward(gy)
    return x, gy


def assert_same_state(a, b):
    """Modules a and b hold the same gradients and buffers, to the bit."""
    for (name, ga), (_, gb) in zip(a.named_grads(), b.named_grads()):
        np.testing.assert_array_equal(ga, gb, err_msg=name)
    for (name, ba), (_, bb) in zip(a.named_buffers(), b.named_buffers()):
        np.testing.assert_array_equal(ba, bb, err_msg=name)


def hooked(module):
    """module with a forward of its own on the instance (how a user, or
    fastconv.summary, hooks a module: fastconv.nn has no hook registry);
    module.calls lists the input shapes it saw."""
    calls = []
    original = module.forward

    def forward(x):
        calls.append(x.shape)
        return original(x)
    module.forward = forward
    module.calls = calls
    return module


def check_fused_pending_caches(net, x, gy):
    """After a forward of a Sequential `net` (a fused pair's pending
    forwards): deep copies and pickles back-propagate as net does; a
    grad_output of the wrong shape is refused without touching the pending
    forwards; net's own backward then runs once, and only once."""
    import copy
    import pickle

    import pytest
    net(x)
    for twin in (copy.deepcopy(net), pickle.loads(pickle.dumps(net))):
        np.testing.assert_array_equal(twin.backward(gy), copy.deepcopy(net).backward(gy))
    with pytest.raises(ValueError, match="ReLU.backward: grad_output has shape"):
        net.backward(gy[:1])
    net.backward(gy)                          # the pending forwards were left alone
    with pytest.raises(RuntimeError, match="no pending forward"):
        net.backward(gy)


def check_pairs_match_one_by_one(net, rng, shape, dtype, offset=0.0):
    """Two training steps and an eval step of `net`, a Sequential whose
    layers 1 and 3 are ReLUs that fuse into layers 0 and 2, against deep
    copies of its layers called one at a time: outputs, input gradients,
    every parameter's gradient and every buffer equal to the bit."""
    import copy
    alone = copy.deepcopy(net)
    for step in range(3):
        if step == 2:
            net.eval()
            alone.eval()
        x = (rng.standard_normal(shape) + offset).astype(dtype)
        gy = rng.standard_normal(shape).astype(dtype)
        y = net(x.copy())
        assert relu_was_fused(net[1]) and relu_was_fused(net[3])
        gx = net.backward(gy)
        y_alone, gx_alone = layers_one_by_one(alone.layers, x.copy(), gy)
        np.testing.assert_array_equal(y, y_alone)
        np.testing.assert_array_equal(gx, gx_alone)
        assert_same_state(net, alone)
