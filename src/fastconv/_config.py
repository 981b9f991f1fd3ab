"""show_config(): what this build is and what it will use."""
import platform
import sys

import numpy as np

from . import _kernels, _simd, _threads
from .functional import _conv
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
                     if _conv.WINOGRAD else "off (FASTCONV_WINOGRAD)"),
        "target_isa": info["target_isa"],
        "cpu_features": " ".join(cpu_features()) or "unknown",
    }


def show_config(file=None):
    """Print the version, compiler, flags, OpenMP on/off and thread count."""
    cfg = config()
    cfg["openmp"] = "on" if cfg["openmp"] else "off (kernels run serially)"
    width = max(map(len, cfg))
    for key, value in cfg.items():
        print(f"{key:<{width}} : {value}", file=file or sys.stdout)
