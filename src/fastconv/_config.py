"""show_config(): what this build is and what it will use."""
import platform
import sys

import numpy as np

from . import _kernels, _simd, _threads
from ._version import __version__


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
        "simd": f"{_simd.active()} (supported: {', '.join(_simd.supported())}; "
                "override with FASTCONV_SIMD)",
        "blas_threads_control": _threads.BLAS_LIBRARY or "not found (BLAS threads not capped)",
    }


def show_config(file=None):
    """Print the version, compiler, flags, OpenMP on/off and thread count."""
    cfg = config()
    cfg["openmp"] = "on" if cfg["openmp"] else "off (kernels run serially)"
    width = max(map(len, cfg))
    for key, value in cfg.items():
        print(f"{key:<{width}} : {value}", file=file or sys.stdout)
