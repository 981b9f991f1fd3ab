"""fastconv vs reference vs PyTorch on fastconv.bench's cases, for pytest-benchmark.

Parametrised over impl x case (layer:pass) x dtype.  Each benchmark is in the
group "<case> <pass> <dtype>", so the implementations of one case are printed
side by side.  Every round gets freshly generated inputs (setup, untimed);
one warm-up round runs first; the number of rounds is sized from one untimed
call so a benchmark takes about --fc-budget seconds (at least 3 rounds).
"""
import itertools
import time

import pytest

pytest.importorskip("pytest_benchmark", reason="the benchmarks need pytest-benchmark "
                    "(pip install 'fastconv[test]')")

from fastconv.bench import cases as case_table
from fastconv.bench import impls as impl_table
from fastconv.bench import timing

_CASES = {f"{c.name}:{d}": (c, d) for c in case_table.ALL_CASES for d in case_table.DIRECTIONS}


def pytest_generate_tests(metafunc):
    if "case" not in metafunc.fixturenames:
        return
    chosen = case_table.QUICK_CASES if metafunc.config.getoption("fc_quick") \
        else case_table.DEFAULT_CASES
    case_params = []
    for case in chosen:
        ops = ", ".join(case_table.required_ops(case))
        marks = [] if case_table.available(case) else [
            pytest.mark.skip(reason=f"this fastconv has no {ops}")]
        case_params += [pytest.param(f"{case.name}:{d}", id=f"{case.name}:{d}", marks=marks)
                        for d in case_table.DIRECTIONS]
    impl_params = [pytest.param(name, id=name, marks=[] if impl_table.get(name).available()
                                else [pytest.mark.skip(reason=f"{name} is not installed")])
                   for name in impl_table.IMPL_NAMES]
    metafunc.parametrize("impl", impl_params)
    metafunc.parametrize("case", case_params)
    metafunc.parametrize("dtype", case_table.DTYPES)


def test_op(benchmark, impl, case, dtype, fc_threads, request):
    layer, direction = _CASES[case]
    adapter = impl_table.get(impl)
    reason = impl_table.why_not_run(adapter, layer, direction, dtype)
    if reason:
        pytest.skip(reason)
    fn = adapter.call(layer, direction)
    seeds = itertools.count()

    def fresh_inputs():
        return (adapter.convert(layer.make_inputs(dtype, direction, seed=next(seeds))),), {}

    args, _ = fresh_inputs()
    t0 = time.perf_counter()
    fn(*args)  # untimed: sizes the number of rounds
    first = time.perf_counter() - t0
    del args
    rounds = timing.repeats_for(first, request.config.getoption("fc_budget"), 3, 100)

    benchmark.group = f"{layer.name} {direction} {dtype}"
    benchmark.extra_info.update(layer=layer.describe(), direction=direction, threads=fc_threads,
                                flops=layer.flops(direction),
                                bytes=layer.bytes_moved(direction, 4 if dtype == "float32" else 8))
    benchmark.pedantic(fn, setup=fresh_inputs, rounds=rounds, warmup_rounds=1, iterations=1)
