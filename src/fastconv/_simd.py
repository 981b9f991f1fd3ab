"""Which instruction set's kernels run: the best this CPU supports, or the
one named by FASTCONV_SIMD (generic, avx2, avx512) for testing and
comparisons.  Every kernel family (GEMM, convolutions, depthwise, im2col,
pooling) is compiled once per instruction set into one table, and one switch
picks the table."""
import os

from . import _kernels


def supported():
    """SIMD paths this build and CPU can run, slowest first."""
    return _kernels.simd_supported(None)


def select(name=None):
    """Use the kernels of `name` ('generic', 'avx2', 'avx512'), or the best
    available when None; returns the active path.

    Process-wide and not synchronised with running ops: a hook for tests and
    benchmarks, to be called while no op runs.  (A kernel call runs wholly on
    one path, and workspace sizes cover every path, so a switch meanwhile
    cannot overrun a buffer.)"""
    return _kernels.simd_select(name)


def active():
    return _kernels.simd_active()


def calls():
    """{path: kernel calls it has run in this process}: shows which path an
    op reached."""
    return _kernels.simd_calls()


def _from_environment():
    name = os.environ.get("FASTCONV_SIMD", "").strip().lower() or None
    if name is not None and name not in supported():
        raise ImportError(f"FASTCONV_SIMD={name!r} is not one of the SIMD paths this "
                          f"CPU/build supports: {supported()}")
    select(name)


_from_environment()
