"""Which GEMM micro-kernel runs: the best this CPU supports, or the one named
by FASTCONV_SIMD (generic, avx2, avx512) for testing and comparisons."""
import os

from . import _kernels


def supported():
    """SIMD paths this build and CPU can run, slowest first."""
    return _kernels.simd_supported(None)


def select(name=None):
    """Use the GEMM micro-kernel `name` ('generic', 'avx2', 'avx512'), or the
    best available when None; returns the active path.

    Process-wide and not synchronised with running ops: an op in another
    thread could pack panels for one path's width and multiply with another's.
    A hook for tests and benchmarks, to be called while no op runs."""
    return _kernels.simd_select(name)


def active():
    return _kernels.simd_active()


def _from_environment():
    name = os.environ.get("FASTCONV_SIMD", "").strip().lower() or None
    if name is not None and name not in supported():
        raise ImportError(f"FASTCONV_SIMD={name!r} is not one of the SIMD paths this "
                          f"CPU/build supports: {supported()}")
    select(name)


_from_environment()
