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
