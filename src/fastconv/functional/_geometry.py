"""Normalised window geometry shared by the conv and unfold ops.

Ops on 1, 2 or 3 spatial dims are run as 3-D: leading spatial dims of size 1
with kernel 1, stride 1, padding 0, dilation 1, so one C loop nest serves all.
"""
from dataclasses import dataclass
from functools import cached_property
from math import prod

from .. import _callcache, _kernels, _shapes


def lift(values, fill):
    """A per-axis tuple padded at the front to 3 axes with `fill`."""
    return (fill,) * (3 - len(values)) + tuple(values)


@_callcache.plain_type
@dataclass(frozen=True)
class Window:
    """Sliding-window geometry over nd spatial axes (tuples of length nd)."""
    in_size: tuple
    kernel: tuple
    stride: tuple
    pad_before: tuple
    pad_after: tuple
    dilation: tuple
    # Output grid when it is not the one the sizes imply: a transposed conv
    # with output_padding >= stride pairs its input grid with a longer image.
    explicit_out: tuple = None

    # Computed once per window: the per-call path asks for it several times.
    @cached_property
    def out_size(self):
        if self.explicit_out is not None:
            return self.explicit_out
        return tuple(_shapes.conv_output_size(n, k, s, pb + pa, d) for n, k, s, pb, pa, d
                     in zip(self.in_size, self.kernel, self.stride, self.pad_before,
                            self.pad_after, self.dilation))

    @property
    def taps(self):
        return prod(self.kernel)

    @cached_property
    def out_count(self):
        return prod(self.out_size)

    def kernel_geometry(self, channels):
        """The geometry the C kernels take: channels and 3-D lifted sizes.
        Trailing padding needs no field: out_size already accounts for it and
        taps past the input read as zeros."""
        return _conv_geometry(self, channels)


@_callcache.memoize
def _conv_geometry(win, channels):
    """Window.kernel_geometry, built once per window and channel count (the
    kernels only read it)."""
    return _kernels.Geometry(channels, lift(win.in_size, 1), lift(win.out_size, 1),
                             lift(win.kernel, 1), lift(win.stride, 1),
                             lift(win.pad_before, 0), lift(win.dilation, 1))
