"""BatchNorm1d/2d/3d, as torch.nn's.

Statistics are per channel (dim 1) over every other dim. In train mode (or
always, with track_running_stats=False) a layer normalises with the batch
mean and biased variance; with track_running_stats it also updates
``running_mean`` / ``running_var`` (the latter with the unbiased variance) as
``running = (1 - momentum) * running + momentum * batch`` (momentum=None: a
cumulative average) and counts ``num_batches_tracked``. In eval mode it uses
the running statistics. ``weight`` (gamma) and ``bias`` (beta) are the params
when affine; the running statistics are buffers (in state_dict, not trained).

The work is fastconv.batch_norm's kernel (one call forward, one backward);
a forward caches its input (a private copy when it will be read by
backward) and the float64 statistics, nothing full-size besides.

Fused with a ReLU: a Sequential runs a BatchNorm and the built-in ReLU right
after it as one pair (the rule is Sequential's, fastconv.nn.container):
the BatchNorm's forward writes relu(batch_norm(x)) in its one pass and
keeps that output as the ReLU's mask, its backward applies the mask inside
its own two passes, and the ReLU keeps a marker whose backward passes the
gradient through (fastconv.nn.activation).  Running statistics, outputs and
gradients are those of the two layers run one by one, to the bit.
"""
import numpy as np

from .. import _args
from ..functional import _batch_norm as _bn
from . import _checks
from .module import Module, is_grad_enabled

__all__ = ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d"]


class _BatchNorm(Module):
    input_ndims = ()        # the input ranks accepted
    layout = ""

    _pure = True

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, dtype=np.float32):
        super().__init__()
        name = type(self).__name__
        self.num_features = _checks.size(num_features, "num_features", name)
        self.eps = _checks.real(eps, "eps", name, low=0, low_open=True)
        self.momentum = (None if momentum is None
                         else _checks.real(momentum, "momentum", name, 0, 1))
        self.affine = _checks.flag(affine, "affine", name)
        self.track_running_stats = _checks.flag(track_running_stats, "track_running_stats",
                                                name)
        self.dtype = _checks.float_dtype(dtype, name)
        c = self.num_features
        if self.affine:
            self.register_parameter("weight", np.ones(c, self.dtype))
            self.register_parameter("bias", np.zeros(c, self.dtype))
        tracking = self.track_running_stats
        self.register_buffer("running_mean", np.zeros(c, self.dtype) if tracking else None)
        self.register_buffer("running_var", np.ones(c, self.dtype) if tracking else None)
        self.register_buffer("num_batches_tracked",
                             np.zeros((), np.int64) if tracking else None)

    def forward(self, x):
        # The ReLU after this layer when a Sequential runs the two fused (see
        # its pairing rule): relu(batch_norm(x)) in the same pass, with that
        # ReLU's forward recorded as masked here.
        relu = self._fused_next()
        name = type(self).__name__
        x = _checks.float_input(x, name, dtype=self.dtype)
        if x.ndim not in self.input_ndims or x.shape[1] != self.num_features:
            raise ValueError(f"{name}: input must be {self.layout} with C="
                             f"{self.num_features}, got shape {x.shape}")
        x = _args.contiguous(self._private_copy(x))   # backward reads it
        weight, bias = self.params.get("weight"), self.params.get("bias")
        batch_stats = self.training or not self.track_running_stats
        fused = relu is not None
        if batch_stats:
            y, mean, var, count = self._normalize_batch(x, weight, bias, **(
                {"relu": True} if fused else {}))
            if self.training and self.track_running_stats:
                self._update_running(mean, var, count)
        else:
            mean, var = self.running_mean, self.running_var
            y = _bn._normalize(x, weight, bias, self.eps, mean, var, fused)[0]
        if not is_grad_enabled():
            return y
        var = np.asarray(var, np.float64)   # invstd as the kernel computes it
        # the fused output is the ReLU's mask: kept as ReLU keeps its output
        mask = self._keep_output(y) if fused else None
        self._save((x, np.array(mean, np.float64), _bn._invstd(var, self.eps), batch_stats,
                    mask), y)
        if fused:
            relu._save_masked_by_producer(y)
        return y

    def _update_running(self, mean, var, count):
        # As torch.nn: every training batch counts; an empty one (count 0)
        # has no statistics and leaves the running ones alone.
        self.num_batches_tracked += 1
        if count > 0:
            m = (1.0 / float(self.num_batches_tracked) if self.momentum is None
                 else self.momentum)
            _bn._update_running(self.running_mean, self.running_var, mean, var, count, m)

    def _normalize_batch(self, x, weight, bias, relu=False):
        """(y, mean, biased var, count) of x normalised with its batch
        statistics (then ReLU'd, with relu: only ever passed to the exact
        built-in classes, see Sequential's pairing), count the values per
        channel they cover.  The hook for statistics reduced over several
        processes (SyncBatchNorm): compute them with
        functional._batch_norm._batch_statistics, reduce, and pass them to
        _normalize."""
        count = x.size // max(self.num_features, 1)
        self._check_count(count, x.shape)
        y, mean, var = _bn._normalize(x, weight, bias, self.eps, relu=relu)
        return y, mean, var, count

    def _check_count(self, count, shape):
        """Training statistics need two values per channel (the unbiased
        variance divides by count - 1)."""
        if self.training and count <= 1:
            raise ValueError(f"{type(self).__name__}: training needs more than 1 value per "
                             f"channel, got input shape {shape}")

    def _grad_sums(self, grad_output, x, mean):
        """None, or ((sum(dy), sum(dy * (x - mean))) of this process,
        (the same reduced over every process), count they cover) per
        channel.  None (here) lets the backward kernel compute this
        process's own in the same call as the input gradient.  The hook for
        SyncBatchNorm: functional._batch_norm._grad_sums, then the
        reduction; the input gradient uses the reduced sums, weight and
        bias gradients the local ones (as torch.nn.SyncBatchNorm)."""
        return None

    def backward(self, grad_output):
        (x, mean, invstd, batch_stats, relu_mask), g = self._restore(grad_output)
        g = _args.contiguous(g)
        # (a fused pair is of the built-in classes only, whose _grad_sums is None)
        sums = self._grad_sums(g, x, mean) if batch_stats and relu_mask is None else None
        grad_input, sum_dy, sum_dy_xmu = _bn._input_grad(
            g, x, mean, invstd, self.params.get("weight"), batch_stats,
            None if sums is None else sums[1], None if sums is None else sums[2],
            relu_output=relu_mask)
        if sums is not None:
            sum_dy, sum_dy_xmu = sums[0]
        if self.affine:
            self.grads["weight"] += (sum_dy_xmu * invstd).astype(self.dtype)
            self.grads["bias"] += sum_dy.astype(self.dtype)
        return grad_input

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}, "
                f"dtype={self.dtype}")


class BatchNorm1d(_BatchNorm):
    """Over (N, C) or (N, C, L) input, as torch.nn.BatchNorm1d."""
    input_ndims = (2, 3)
    layout = "(N, C) or (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """Over (N, C, H, W) input, as torch.nn.BatchNorm2d."""
    input_ndims = (4,)
    layout = "(N, C, H, W)"


class BatchNorm3d(_BatchNorm):
    """Over (N, C, D, H, W) input, as torch.nn.BatchNorm3d."""
    input_ndims = (5,)
    layout = "(N, C, D, H, W)"
