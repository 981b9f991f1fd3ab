"""show_config(): what this build is and what it will use."""
import platform
import sys
from typing import IO, Optional

import numpy as np

from . import _kernels, _simd, _threads
from .functional import _plan
from ._version import __version__


# CPU features show_config() reports (when the OS tells them): the ones a
# SIMD path may need.  A new path adds its feature names here.
SIMD_FEATURES = ("sse2", "sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl",
                 "avx512_vnni", "asimd", "sve")


def cpu_features():
    """The SIMD_FEATURES this CPU has, from /proc/cpuinfo (Linux)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("flags", "Features"):
                    have = set(value.split())
                    return [name for name in SIMD_FEATURES if name in have]
    except OSError:
        pass
    return []


def config():
    """The build and runtime configuration as a dict."""
    info = _kernels.build_info()
    return {
        "fastconv": __version__,
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "platform": platform.platform(),
        "compiler": info["compiler"],
        "flags": info["flags"],
        "openmp": info["openmp"],
        "threads": _threads.get_num_threads(),
        "omp_wait_policy": _threads.wait_policy_at_load,
        "simd": f"{_simd.active()} (supported: {', '.join(_simd.supported())}; "
                "override with FASTCONV_SIMD)",
        "simd_compiled": ", ".join(_kernels.simd_compiled()),
        "winograd": ("on for 3x3 stride-1 convs (FASTCONV_WINOGRAD=0 turns it off)"
                     if _plan.WINOGRAD else "off (FASTCONV_WINOGRAD)"),
        "target_isa": info["target_isa"],
        "cpu_features": " ".join(cpu_features()) or "unknown",
    }


def show_config(file: Optional[IO[str]] = None) -> None:
    """Print how this fastconv was built and what it will use, one
    "key : value" line each: the versions (fastconv, Python, NumPy), the
    platform, the compiler and its flags, OpenMP on/off, the thread count,
    how its OpenMP workers wait (GOMP_SPINCOUNT / OMP_WAIT_POLICY), the active SIMD path (and the ones this CPU supports and
    this build compiled; FASTCONV_SIMD overrides it), whether Winograd is on
    (FASTCONV_WINOGRAD), the build's target ISA and the CPU's SIMD features.

    Args:
        file: a text stream to print to; None means sys.stdout.
    """
    cfg = config()
    cfg["openmp"] = "on" if cfg["openmp"] else "off (kernels run serially)"
    width = max(map(len, cfg))
    for key, value in cfg.items():
        print(f"{key:<{width}} : {value}", file=file or sys.stdout)
