"""fastconv: fast CPU convolution and pooling, forward and backward, on NumPy arrays.

Every op of fastconv.functional is available here; fastconv.reference holds a
plain-NumPy twin of each, and fastconv.nn a thin layer API for training code.
"""
from ._version import __version__
from . import _threads  # noqa: F401  (sets the OpenMP wait policy before _kernels loads)

try:
    from . import _kernels  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised by a subprocess test
    raise ImportError(
        "fastconv's compiled extension (fastconv._kernels) could not be imported: "
        f"{exc}.\nfastconv must be built before use. From a source checkout run "
        "`pip install .` (or `pip install -e .` for development); this needs a C "
        "compiler. If you are inside the source tree, run Python from another "
        "directory so that the installed package is imported."
    ) from exc

from . import _simd, functional  # noqa: F401  (_simd applies FASTCONV_SIMD)
from ._config import show_config
from .functional import *  # noqa: F401,F403
from .functional import __all__ as _functional_all
from . import nn, optim, reference  # noqa: E402  (after functional: nn uses it)
from ._gradcheck import gradcheck
from .nn import summary

__all__ = list(_functional_all) + ["show_config", "gradcheck", "summary", "__version__"]
