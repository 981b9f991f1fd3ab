"""pytest-benchmark front door onto fastconv.bench's case table.

Not part of the normal test run (pyproject's testpaths = ["tests"]); run with
    python -m pytest benchmarks [--fc-quick] [--fc-threads N] [-k mid]
See README "Benchmarks" for the autosave / compare workflow.
"""
import importlib.util

import pytest

HAVE_PYTEST_BENCHMARK = importlib.util.find_spec("pytest_benchmark") is not None


def pytest_addoption(parser):
    group = parser.getgroup("fastconv benchmarks")
    group.addoption("--fc-quick", action="store_true",
                    help="use fastconv.bench's small --quick cases instead of the default set")
    group.addoption("--fc-threads", type=int, default=None,
                    help="threads for every implementation (default: fastconv's default)")
    group.addoption("--fc-budget", type=float, default=0.5,
                    help="target seconds of timed rounds per benchmark (>= 3 rounds)")


@pytest.fixture(scope="session")
def fc_threads(request):
    """Pin the thread count of fastconv, NumPy's BLAS (via threadpoolctl) and
    torch, and keep
    freed memory mapped (glibc mallopt) so no implementation pays first-touch
    page faults for its temporaries; returns the thread count."""
    import fastconv
    from fastconv.bench import impls, timing
    n = request.config.getoption("fc_threads") or fastconv.get_num_threads()
    for impl in impls.available_impls():
        impl.set_threads(n)
    request.config._fc_malloc = timing.configure_malloc()
    return n


def _update_machine_info(config, machine_info):
    """Record what the numbers depend on in the saved JSON (for --benchmark-compare)."""
    from fastconv._config import config as fc_config
    from fastconv.bench import impls
    machine_info["fastconv"] = fc_config()
    machine_info["versions"] = {i.name: i.version() for i in impls.available_impls()}
    machine_info["fc_threads"] = config.getoption("fc_threads")
    machine_info["fc_malloc"] = getattr(config, "_fc_malloc", None)


if HAVE_PYTEST_BENCHMARK:  # an unknown hook name would be an error without the plugin
    pytest_benchmark_update_machine_info = _update_machine_info
