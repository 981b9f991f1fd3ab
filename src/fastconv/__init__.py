"""fastconv: fast CPU convolution and pooling, forward and backward, on NumPy arrays.

Every op of fastconv.functional is available here; fastconv.reference holds a
plain-NumPy twin of each, and fastconv.nn a thin layer API for training code.
fastconv.explain(op_name, ...) shows which algorithm a convolution call runs.
"""
# `import X as X`: an explicit re-export, so type checkers in strict mode (no
# implicit re-exports) see these names as part of the package's API.
from ._version import __version__ as __version__
from . import _threads

try:
    with _threads.openmp_load_environment():  # libgomp reads it when _kernels loads it
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
from ._config import show_config as show_config
from ._workspace import release_workspace as release_workspace
from .functional import *  # noqa: F401,F403
from .functional import __all__ as _functional_all
from . import nn, optim, reference  # noqa: E402  (after functional: nn uses it)
from ._explain import explain as explain
from ._gradcheck import gradcheck as gradcheck
from .nn import summary as summary

__all__ = list(_functional_all) + ["show_config", "release_workspace", "gradcheck", "explain",
                                 "summary", "__version__"]
