"""DistributedDataParallel: the same model on every rank, each rank on its
own share of the batch, gradients averaged over the ranks after backward.

How the gradients travel
------------------------
After the wrapped module's backward, its gradients are packed into a few
flat buffers ("buckets", one dtype each, about ``bucket_mb`` megabytes),
each bucket is summed over the ranks with ONE in-place ``Allreduce``, scaled
by 1/size and unpacked into the gradient arrays. Few large messages instead
of one per parameter: each message costs a latency (microseconds in shared
memory, tens of microseconds across machines), so a ResNet's ~60 arrays
would pay it 60 times.

The gradients stay the module's own arrays (packed and unpacked, not views
of the buckets): fastconv.nn lets a layer or ``load_state_dict`` treat its
``grads`` as ordinary arrays, and the copies cost a memory pass over the
gradients, small next to the backward that made them.

Averaging makes every rank's update equal to one process's update on the
concatenated batch when the loss is a mean over the batch (each rank's mean
over its share, averaged over equal shares). Backward may run several times
before a step (gradient accumulation, a module used twice): averaging an
already averaged part again leaves it unchanged, so the result stays right;
``no_sync()`` skips the communication of all but the last.
"""
import contextlib
import time

import numpy as np

from .. import _args
from ..nn.module import backward_through
from . import _comm

__all__ = ["DistributedDataParallel"]

_OWNER = "DistributedDataParallel"


class _Bucket:
    """One flat buffer of one dtype and the (gradient number, offset, size)
    of each gradient packed into it."""

    def __init__(self, dtype, slots, size):
        self.buffer = np.empty(size, dtype)
        self.slots = slots

    def pack(self, grads):
        for index, offset, size in self.slots:
            self.buffer[offset:offset + size] = grads[index].reshape(-1)

    def unpack(self, grads):
        for index, offset, size in self.slots:
            grad = grads[index]
            np.copyto(grad, self.buffer[offset:offset + size].reshape(grad.shape))


def plan_buckets(grads, bucket_bytes):
    """Buckets for `grads` in their order: a new bucket when the dtype
    changes or the current one would pass `bucket_bytes` (a gradient larger
    than that gets a bucket of its own)."""
    buckets, slots, size, dtype = [], [], 0, None
    for index, grad in enumerate(grads):
        full = size and (size + grad.size) * grad.itemsize > bucket_bytes
        if slots and (grad.dtype != dtype or full):
            buckets.append(_Bucket(dtype, slots, size))
            slots, size = [], 0
        dtype = grad.dtype
        slots.append((index, size, grad.size))
        size += grad.size
    if slots:
        buckets.append(_Bucket(dtype, slots, size))
    return buckets


class DistributedDataParallel:
    """Wrap `module` for data-parallel training over the ranks of `comm`
    (an mpi4py communicator; default MPI.COMM_WORLD).

    At construction every rank checks that all ranks built the same model
    (parameter and buffer names, shapes and dtypes) and the same
    `bucket_mb`, then takes rank 0's parameters and buffers (so ranks
    seeded differently still start alike). ``forward``/``__call__`` run the
    module; ``backward(grad_output)`` runs the module's backward and then
    averages the gradients over the ranks (see the module docstring),
    returning the module's input gradient.

    Everything else is the module's: ``.module`` is the wrapped module, and
    ``params``, ``grads``, ``parameters()``, ``named_parameters()``,
    ``state_dict()``, ``load_state_dict()``, ``zero_grad()``, ``train()``,
    ``eval()`` reach it (state_dict keys have no ``module.`` prefix), so an
    optimizer of :mod:`fastconv.optim` takes the wrapper or the module alike.
    Give each rank its share of the data (:class:`DistributedSampler`) and
    a loss that is a mean over the batch.

    Args:
        module: a fastconv.nn Module, the same on every rank.
        comm: mpi4py communicator (None: MPI.COMM_WORLD).
        bucket_mb: target size of one Allreduce message in megabytes (> 0).

    Raises:
        ValueError: `bucket_mb` not positive, or the ranks' models (or
            bucket_mb) differ: raised on every rank, naming the first
            difference.
        TypeError: `module` is not a fastconv.nn Module, `comm` not a
            communicator, `bucket_mb` not a number.
        ImportError: mpi4py is not installed.

    Attributes:
        allreduce_seconds: seconds spent packing, reducing and unpacking
            gradients since construction (for measurements).
        allreduce_calls: how many gradient averagings ran.
    """

    def __init__(self, module, comm=None, bucket_mb=25):
        from ..nn import Module
        if not isinstance(module, Module):
            raise TypeError(f"{_OWNER}: module must be a fastconv.nn Module, got {module!r}")
        bucket_mb = _args.as_real(bucket_mb, "bucket_mb", _OWNER, low=0, low_inclusive=False)
        self.module = module
        self.comm = _comm.resolve(comm, _OWNER)
        self.bucket_mb = bucket_mb
        self.allreduce_seconds = 0.0
        self.allreduce_calls = 0
        self._buckets = None
        self._layout = None
        self._sync = True
        state = list(module.named_parameters()) + list(module.named_buffers())
        _comm.check_same(self.comm, _OWNER, "the model",
                         [("bucket_mb", self.bucket_mb)]
                         + [(name, (a.shape, a.dtype.str)) for name, a in state])
        for _, array in state:
            _comm.broadcast_(self.comm, array)

    # the computation --------------------------------------------------------
    def forward(self, *inputs, **kwargs):
        return self.module(*inputs, **kwargs)

    __call__ = forward

    def backward(self, grad_output, *, input_grad=True):
        """The module's backward (input_grad as in fastconv.nn: False skips
        the input gradient where the module can, and returns None), then the
        gradients averaged over the ranks unless inside no_sync()."""
        grad_input = backward_through(self.module, grad_output,
                                      _args.as_bool(input_grad, "input_grad", _OWNER))
        if self._sync:
            self.average_gradients()
        return grad_input

    @contextlib.contextmanager
    def no_sync(self):
        """Inside the block backward leaves the gradients local (gradient
        accumulation over several batches: the first backward after the
        block averages everything accumulated)."""
        previous, self._sync = self._sync, False
        try:
            yield
        finally:
            self._sync = previous

    def average_gradients(self):
        """Average every gradient of the module over the ranks, in place
        (what backward does after the module's backward); every rank must
        call it the same number of times."""
        start = time.perf_counter()
        grads = [g for _, g in self.module.parameters()]
        buckets = self._buckets_for(grads)
        scale = 1.0 / self.comm.Get_size()
        for bucket in buckets:
            bucket.pack(grads)
            _comm.allreduce_sum_(self.comm, bucket.buffer)
            bucket.buffer *= scale
            bucket.unpack(grads)
        self.allreduce_seconds += time.perf_counter() - start
        self.allreduce_calls += 1

    def _buckets_for(self, grads):
        """The buckets for these gradients, planned (and agreed on by every
        rank, before the first Allreduce relies on them) when their layout
        is new."""
        layout = [(g.shape, g.dtype.str) for g in grads]
        if layout != self._layout:
            buckets = plan_buckets(grads, self.bucket_mb * 2**20)
            _comm.check_same(self.comm, _OWNER, "the gradients to average",
                             [(f"gradient {i}", item) for i, item in enumerate(layout)]
                             + [(f"bucket {i}", (b.buffer.dtype.str, b.buffer.size))
                                for i, b in enumerate(buckets)])
            self._buckets, self._layout = buckets, layout
        return self._buckets

    @property
    def bucket_nbytes(self):
        """Size in bytes of each bucket (one Allreduce each), once planned
        by the first backward."""
        return [b.buffer.nbytes for b in self._buckets or ()]

    # the module's --------------------------------------------------------------
    def train(self, mode=True):
        self.module.train(mode)
        return self

    def eval(self):
        self.module.eval()
        return self

    def __getattr__(self, name):
        # Only for names not found on the wrapper: params, grads,
        # parameters(), state_dict(), zero_grad(), training ... are the
        # module's. (No lookup before __init__ set module: copy/pickle probe
        # attributes on a bare instance.)
        if name == "module" or "module" not in self.__dict__:
            raise AttributeError(name)
        return getattr(self.module, name)

    def __repr__(self):
        return (f"{_OWNER}(rank {self.comm.Get_rank()} of {self.comm.Get_size()}, "
                f"bucket_mb={self.bucket_mb:g},\n  module: "
                + repr(self.module).replace("\n", "\n  ") + ")")
