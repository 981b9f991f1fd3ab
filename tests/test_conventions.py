"""PyTorch's calling conventions, for every op of tests/optable.py: unbatched
inputs (forward and backward, fastconv and fastconv.reference) and short
argument tuples.  The torch-stage tests check, form by form, that fastconv
accepts exactly what PyTorch 2.13 accepts and computes what it computes."""
import inspect

import numpy as np
import pytest

import fastconv
import fastconv.reference
from optable import COMPUTE_OPS

DTYPES = (np.float32, np.float64)
UNBATCHED_OPS = [op for op in COMPUTE_OPS if op.batched]
IMPLS = {"fastconv": fastconv, "reference": fastconv.reference}


def _by_name(ops):
    return pytest.mark.parametrize("op", ops, ids=lambda op: op.name)


def _results(result):
    return result if isinstance(result, tuple) else (result,)


def _sample_zero(op, kwargs):
    """(kwargs batched to sample 0 only, the same call without batch axis)."""
    batched, unbatched = dict(kwargs), dict(kwargs)
    for name in op.batched:
        value = kwargs[name]
        if name == "input_shape":
            batched[name], unbatched[name] = (1,) + tuple(value[1:]), tuple(value[1:])
        else:
            batched[name], unbatched[name] = value[:1], value[0]
    return batched, unbatched


def _carries_batch_axis(op, i):
    return op.batched_results is None or i in op.batched_results


def _key(op):
    """The argument that says whether a call is unbatched: the forward's
    input (cols for col2im), or input_shape in a backward given no input."""
    return next(k for k in ("input", "input_shape", "cols") if k in op.batched)


def test_every_batched_argument_is_an_argument():
    for op in UNBATCHED_OPS:
        kwargs = op.make(np.random.default_rng(0), np.float64)
        assert set(op.batched) <= set(kwargs), op.name


# ------------------------------------------------------------------ unbatched
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", DTYPES)
@_by_name(UNBATCHED_OPS)
def test_unbatched_call_is_the_batched_call_without_the_batch_axis(op, dtype, impl):
    fn = getattr(IMPLS[impl], op.name)
    batched, unbatched = _sample_zero(op, op.make(np.random.default_rng(0), dtype))
    before = {k: v.copy() for k, v in unbatched.items() if isinstance(v, np.ndarray)}
    expected, got = _results(fn(**batched)), _results(fn(**unbatched))
    assert len(got) == len(expected)
    for i, (e, g) in enumerate(zip(expected, got)):
        if _carries_batch_axis(op, i):
            assert e.shape[0] == 1
            e = e[0]
        assert g.shape == e.shape and g.dtype == e.dtype, i
        np.testing.assert_array_equal(g, e)
        if impl == "fastconv":
            assert g.flags.c_contiguous
            assert not any(np.shares_memory(g, v) for v in unbatched.values()
                           if isinstance(v, np.ndarray))
    for k, v in before.items():
        np.testing.assert_array_equal(unbatched[k], v)


@_by_name([op for op in UNBATCHED_OPS if len(op.batched) > 1])
def test_backward_refuses_a_mix_of_batched_and_unbatched(op):
    """A backward call is unbatched when its forward was: grad_output (and
    indices) must then drop the batch axis too, and vice versa.  (The
    reference validates nothing: fastconv only.)"""
    fn = op.fn
    batched, unbatched = _sample_zero(op, op.make(np.random.default_rng(0), np.float64))
    for name in op.batched:
        mixed = dict(unbatched, **{name: batched[name]})
        with pytest.raises(ValueError, match=f"^{op.name}: .*({'|'.join(op.batched)})"):
            fn(**mixed)


@_by_name(UNBATCHED_OPS)
def test_wrong_rank_names_both_forms(op):
    kwargs = op.make(np.random.default_rng(0), np.float64)
    key = _key(op)
    value = kwargs[key]
    kwargs[key] = tuple(value[2:]) if key == "input_shape" else value[0, 0]
    with pytest.raises(ValueError, match=f"^{op.name}: {key} must be .* or .* unbatched"):
        op.fn(**kwargs)


def test_errors_of_an_unbatched_call_say_so():
    """The op reports the shapes it saw, batch axis included: the message
    must say where that axis came from."""
    with pytest.raises(ValueError, match=r"^conv2d: weight shape .* input shape \(1, 2, 4, 6\) "
                                         r".*unbatched call, run as a batch of one"):
        fastconv.conv2d(np.zeros((2, 4, 6)), np.zeros((6, 4, 3, 3)))


def test_bind_arguments_gives_what_the_op_runs_on():
    """The hook for code that runs an op's internals (fastconv.explain)."""
    x = np.zeros((2, 6, 6))
    bound = fastconv.conv2d.bind_arguments(x, np.zeros((3, 2, 3, 3)), padding=(1,))
    assert bound.arguments["input"].shape == (1, 2, 6, 6)
    assert bound.arguments["padding"] == (1, 1)


def test_nn_layers_take_unbatched_input():
    rng = np.random.default_rng(0)
    layers = [fastconv.nn.Conv2d(3, 4, 3, padding=1, rng=rng),
              fastconv.nn.ConvTranspose2d(3, 4, 3, stride=2, rng=rng),
              fastconv.nn.MaxPool2d(2), fastconv.nn.AvgPool2d(3, 1, 1),
              fastconv.nn.AdaptiveAvgPool2d((2, 3))]
    x = rng.standard_normal((3, 6, 5)).astype(np.float32)
    for layer in layers:
        y = layer.forward(x)
        g = rng.standard_normal(y.shape).astype(np.float32)
        gx = layer.backward(g)
        grads = {k: v.copy() for k, v in layer.grads.items()}
        layer.zero_grad()
        y1 = layer.forward(x[None])
        np.testing.assert_array_equal(y, y1[0])
        np.testing.assert_array_equal(gx, layer.backward(g[None])[0])
        for k, v in layer.grads.items():
            np.testing.assert_array_equal(v, grads[k])


# ------------------------------------------------------------ short tuples
def _short_forms(op):
    """(name, short value, its long form) for every broadcast size argument
    of the op's valid call, and pooling's stride=() (= kernel_size)."""
    kwargs = op.make(np.random.default_rng(0), np.float64)
    out = []
    for name in op.broadcast:
        if name in op.sizes and isinstance(kwargs.get(name), int):
            nd = op.sizes[name][0]
            out.append((name, (kwargs[name],), (kwargs[name],) * nd))
    # (A backward's grad_output fits the make's stride only.)
    if "stride" in op.empty_ok and "grad_output" not in kwargs:
        out.append(("stride", (), kwargs["kernel_size"]))
    return out


@pytest.mark.parametrize("impl", IMPLS)
@_by_name([op for op in COMPUTE_OPS if _short_forms(op)])
def test_short_tuples_equal_their_long_forms(op, impl):
    fn = getattr(IMPLS[impl], op.name)
    kwargs = op.make(np.random.default_rng(0), np.float64)
    for name, short, long in _short_forms(op):
        got = _results(fn(**dict(kwargs, **{name: short})))
        expected = _results(fn(**dict(kwargs, **{name: long})))
        for g, e in zip(got, expected):
            np.testing.assert_array_equal(g, e)


@pytest.mark.parametrize("impl", IMPLS)
def test_empty_stride_means_kernel_size_in_pooling_backward(impl):
    ops = IMPLS[impl]
    x = np.random.default_rng(0).standard_normal((2, 3, 7, 8))
    y = ops.max_pool2d(x, (3, 2), ())
    np.testing.assert_array_equal(y, ops.max_pool2d(x, (3, 2)))
    g = np.random.default_rng(1).standard_normal(y.shape)
    np.testing.assert_array_equal(ops.avg_pool2d_backward(g, x.shape, (3, 2), ()),
                                  ops.avg_pool2d_backward(g, x.shape, (3, 2), None))


def test_refused_tuple_forms_name_the_argument():
    x = np.zeros((1, 2, 6, 6))
    w = np.zeros((3, 2, 3, 3))
    with pytest.raises(ValueError, match=r"conv2d: stride must be an int or a tuple of 1 or 2"):
        fastconv.conv2d(x, w, stride=())
    with pytest.raises(ValueError, match=r"max_pool2d: kernel_size must be an int or a tuple"):
        fastconv.max_pool2d(x, ())
    with pytest.raises(ValueError, match=r"avg_pool3d: stride must be an int, an empty tuple or"):
        fastconv.avg_pool3d(x[None], 2, stride=(1, 1))
    with pytest.raises(ValueError, match=r"im2col: stride must be an int or a tuple of 2"):
        fastconv.im2col(x, 3, stride=(1,))


# ---------------------------------------------------------------- PyTorch
def _torch_twin(torch, name):
    """The torch.nn.functional op and an argument renamer, or None."""
    F = torch.nn.functional
    if name == "im2col":
        return F.unfold, {}
    if name == "col2im":
        return F.fold, {"cols": "input"}
    fn = getattr(F, name, None)
    return (fn, {}) if fn is not None else None


def _to_torch(torch, kwargs, renames):
    out = {}
    for k, v in kwargs.items():
        if k == "divisor_override" and v is None:
            continue  # torch's avg_pool1d has no divisor_override
        out[renames.get(k, k)] = torch.from_numpy(v) if isinstance(v, np.ndarray) else v
    return out


def _outcome(call):
    """('ok', results) or ('refused', message)."""
    try:
        return "ok", [np.asarray(r) for r in _results(call())]
    except (ValueError, TypeError, RuntimeError, IndexError, NotImplementedError) as exc:
        return "refused", f"{type(exc).__name__}: {exc}"


def _assert_same_outcome(torch, op, kwargs, what):
    twin, renames = _torch_twin(torch, op.name)
    theirs = _outcome(lambda: tuple(t.numpy() for t in _results(
        twin(**_to_torch(torch, kwargs, renames)))))
    ours = _outcome(lambda: op.fn(**kwargs))
    assert theirs[0] == ours[0], f"{op.name} {what}: torch {theirs}, fastconv {ours}"
    if ours[0] == "ok":
        for g, e in zip(ours[1], theirs[1]):
            np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-10, err_msg=what)


FORWARD_OPS = [op for op in COMPUTE_OPS if not op.name.endswith("_backward")]


def _torch_or_skip(op):
    torch = pytest.importorskip("torch")
    if _torch_twin(torch, op.name) is None:
        pytest.skip("no torch.nn.functional twin")
    return torch


@_by_name(FORWARD_OPS)
def test_input_ranks_accepted_as_pytorch_does(op):
    torch = _torch_or_skip(op)
    kwargs = op.make(np.random.default_rng(0), np.float64)
    key = op.arrays[0]
    x = kwargs[key]
    for rank_change, value in (("batched", x), ("unbatched", x[0]), ("two axes fewer", x[0, 0]),
                               ("one axis more", x[None])):
        _assert_same_outcome(torch, op, dict(kwargs, **{key: value}), f"{key} {rank_change}")


@_by_name(FORWARD_OPS)
def test_tuple_forms_accepted_as_pytorch_does(op):
    torch = _torch_or_skip(op)
    kwargs = op.make(np.random.default_rng(0), np.float64)
    for name, (nd, _) in op.sizes.items():
        if not nd or kwargs.get(name) is None:
            continue
        v = kwargs[name] if isinstance(kwargs[name], int) else kwargs[name][0]
        for form in ((v,), (v,) * nd, [v] * nd, (), (v,) * (nd + 1), (v,) * max(2, nd - 1)):
            _assert_same_outcome(torch, op, dict(kwargs, **{name: form}), f"{name}={form!r}")


def _torch_backward(torch, op, fwd_kwargs, grad_output):
    """Gradients of the forward call by torch.autograd, in the order of
    fastconv's backward results (input, then weight and bias when present)."""
    twin, renames = _torch_twin(torch, op.name[:-len("_backward")])
    targs = _to_torch(torch, fwd_kwargs, renames)
    leaves = [targs[k].requires_grad_() for k in ("input", "weight", "bias") if k in targs
              and targs[k] is not None]
    if targs.get("return_indices"):
        targs["return_indices"] = False
    out = twin(**targs)
    grads = torch.autograd.grad(out, leaves, torch.from_numpy(grad_output))
    return [g.numpy() for g in grads]


@_by_name([op for op in UNBATCHED_OPS if op.name.endswith("_backward")])
def test_unbatched_backward_matches_torch_autograd(op):
    """Each backward op, called as an unbatched forward's backward, gives
    torch.autograd's gradients of that unbatched forward (float64)."""
    torch = pytest.importorskip("torch")
    forward = next(o for o in COMPUTE_OPS if o.name == op.name[:-len("_backward")])
    rng = np.random.default_rng(0)
    _, fwd_kwargs = _sample_zero(forward, forward.make(rng, np.float64))
    y = _results(forward.fn(**fwd_kwargs))
    grad_output = rng.standard_normal(y[0].shape)
    x = fwd_kwargs["input"]
    given = dict(fwd_kwargs, grad_output=grad_output, input_shape=x.shape,
                 indices=y[-1])  # max pooling's forward returns its indices last
    params = inspect.signature(op.fn).parameters
    got = _results(op.fn(**{k: v for k, v in given.items() if k in params}))
    expected = _torch_backward(torch, op, fwd_kwargs, grad_output)
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert g.shape == e.shape
        np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-10)
