"""Benchmarks: fastconv vs its plain-NumPy reference (and PyTorch when installed).

Command line: ``python -m fastconv.bench`` (or the ``fastconv-bench`` script);
``--help`` lists the options.  The case table (`fastconv.bench.cases`) is
shared with the pytest-benchmark suite in ``benchmarks/``.
"""
from . import cases, impls, timing
from .cases import DEFAULT_CASES, QUICK_CASES, Case
from .cli import main

__all__ = ["main", "cases", "impls", "timing", "Case", "DEFAULT_CASES", "QUICK_CASES"]
