"""Benchmarks: fastconv vs its plain-NumPy reference (and PyTorch or JAX when installed),
and whole fastconv.nn networks vs torch.nn (`fastconv.bench.nets`).

Command line: ``python -m fastconv.bench`` (or the ``fastconv-bench`` script);
``--help`` lists the options; ``python -m fastconv.bench compare OLD.json
NEW.json`` tells regressions from noise.  The case table (`fastconv.bench.cases`) is
shared with the pytest-benchmark suite in ``benchmarks/``.
"""
from . import cases, compare, impls, timing
from .cases import DEFAULT_CASES, QUICK_CASES, Case
from .cli import main

__all__ = ["main", "cases", "compare", "impls", "timing", "Case", "DEFAULT_CASES", "QUICK_CASES"]
