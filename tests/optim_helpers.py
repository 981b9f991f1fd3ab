"""Shared by the optimizer and scheduler tests: a stand-in module and twin
fastconv/PyTorch optimizers fed the same gradients."""
import numpy as np


class Holder:
    """The optimizer's whole view of a fastconv.nn module: ``parameters()``
    yields (param, grad) pairs. Kept independent of nn's internals."""

    def __init__(self, *values, dtype=np.float64):
        self.values = [np.array(v, dtype=dtype) for v in values]
        self.grads = [np.zeros_like(v) for v in self.values]

    def parameters(self):
        yield from zip(self.values, self.grads)

    def set_grads(self, grads):
        for ours, g in zip(self.grads, grads):
            ours[...] = g


SHAPES = [(3, 4), (4,), (2, 1, 3, 3), ()]


class Twins:
    """A fastconv optimizer and a torch one over equal parameters (one Holder
    / one tensor list per param group); ``step()`` feeds both the same random
    gradients."""

    def __init__(self, torch, kind, kwargs, groups=None, shapes=SHAPES, dtype=np.float64,
                 seed=0):
        from fastconv import optim
        self.torch, self.rng = torch, np.random.default_rng(seed)
        groups = groups or [{}]
        self.holders, self.tensors = [], []
        for _ in groups:
            values = [self.rng.standard_normal(s).astype(dtype) for s in shapes]
            self.holders.append(Holder(*values, dtype=dtype))
            self.tensors.append([torch.tensor(v, requires_grad=True) for v in values])
        if groups == [{}]:
            ours_params, theirs_params = self.holders[0], self.tensors[0]
        else:
            ours_params = [{**g, "params": h} for g, h in zip(groups, self.holders)]
            theirs_params = [{**g, "params": t} for g, t in zip(groups, self.tensors)]
        self.ours = getattr(optim, kind)(ours_params, **kwargs)
        self.theirs = getattr(torch.optim, kind)(theirs_params, **kwargs)

    def step(self):
        for holder, tensors in zip(self.holders, self.tensors):
            grads = [self.rng.standard_normal(v.shape).astype(v.dtype) for v in holder.values]
            holder.set_grads(grads)
            for t, g in zip(tensors, grads):
                t.grad = self.torch.tensor(g)
        self.ours.step()
        self.theirs.step()

    def assert_equal(self, rtol=1e-12, atol=1e-14):
        number = 0
        for holder, tensors in zip(self.holders, self.tensors):
            for value, t in zip(holder.values, tensors):
                np.testing.assert_allclose(value, t.detach().numpy(), rtol=rtol, atol=atol)
                assert value.dtype == t.detach().numpy().dtype
                theirs = self.theirs.state.get(t, {})
                ours = self.ours.state.get(number, {})
                assert set(ours) == set(theirs), (number, set(ours), set(theirs))
                for key, expected in theirs.items():
                    if key == "step":
                        assert ours[key] == float(expected)
                    else:
                        assert ours[key].dtype == value.dtype
                        np.testing.assert_allclose(ours[key], expected.numpy(), rtol=rtol,
                                                   atol=atol, err_msg=key)
                number += 1
