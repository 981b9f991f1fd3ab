"""Smoke tests of the benchmark front door (`python -m fastconv.bench`).

No timing assertions: the numbers depend on the machine and its load.  The
CLI run is a subprocess (as CI and users run it) with PYTHONPATH pointing at
the package under test.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fastconv
from fastconv.bench import cases as case_table
from fastconv.bench import cli, report

HAS_TORCH = __import__("importlib").util.find_spec("torch") is not None


def _env():
    env = dict(os.environ)
    pkg_parent = str(Path(fastconv.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([pkg_parent] + [p for p in env.get(
        "PYTHONPATH", "").split(os.pathsep) if p])
    return env


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "quick.json"
    proc = subprocess.run([sys.executable, "-m", "fastconv.bench", "--quick", "--json",
                           str(out)], env=_env(), capture_output=True, text=True,
                          timeout=600)  # a hang guard, not a timing assertion
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(out) as f:
        doc = json.load(f)
    return proc, doc


def _expected_cells():
    quick = [c for c in case_table.QUICK_CASES if case_table.available(c)]
    return {(c.name, d, t) for c in quick for d in case_table.DIRECTIONS
            for t in case_table.DTYPES}


def test_quick_json_has_numbers_for_every_cell(quick_run):
    _, doc = quick_run
    assert doc["schema"] == "fastconv.bench/1"
    (run,) = doc["runs"]
    expected_impls = ["fastconv", "reference"] + (["torch"] if HAS_TORCH else [])
    assert run["impls"] == expected_impls
    assert {(c["case"], c["direction"], c["dtype"]) for c in run["results"]} == \
        _expected_cells()
    for cell in run["results"]:
        for impl in expected_impls:
            stats = cell["impls"][impl]
            assert "error" not in stats, (cell["case"], impl, stats)
            assert stats["median"] > 0
            assert stats["repeats"] >= 3 and len(stats["times"]) == stats["repeats"]
        assert (cell["flops"] is None) != (cell["bytes"] is None)
    for dtype in case_table.DTYPES:
        assert run["gemm"][dtype]["gflops"] > 0
    assert run["copy"]["gbps"] > 0
    env = run["environment"]
    assert env["env"]["OMP_NUM_THREADS"] == str(run["threads"])
    assert env["env"]["MALLOC_MMAP_MAX_"] == "0"
    assert env["numpy"] and env["cpu"] and env["fastconv"]["fastconv"] == fastconv.__version__


def test_quick_table_and_header(quick_run):
    proc, doc = quick_run
    text = proc.stdout
    for word in ("machine", "versions", "threads", "process", "timing", "limits",
                 "GEMM", "ref/fc", "fastconv rate", "% limit", "geometric-mean"):
        assert word in text, word
    if HAS_TORCH:
        assert "torch/fc" in text
    rows = [line.split() for line in text.splitlines()
            if line.split() and line.split()[0].startswith("q-")
            and line.split()[1] in case_table.DIRECTIONS]
    assert len(rows) == len(_expected_cells())
    # progress went to stderr, one line per measurement when not a TTY
    assert proc.stderr.count(" fastconv: ") == len(_expected_cells())
    pools = [c for c in case_table.QUICK_CASES if c.kind == "pool"]
    if not all(map(case_table.available, pools)):
        assert "skipped" in text and "q-maxpool2x2" in text


def test_plot_from_results(quick_run, tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "speedup.png"
    report.plot(quick_run[1], str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_list_shows_every_case(capsys):
    assert cli.main(["--list"]) == 0
    out = capsys.readouterr().out
    for case in case_table.ALL_CASES:
        assert case.name in out


def test_bad_case_name_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--cases", "no-such-layer"])
    assert exc.value.code == 2
    assert "no-such-layer" in capsys.readouterr().err


def test_default_cases_are_the_agreed_layers():
    by_name = {c.name: c for c in case_table.DEFAULT_CASES}
    assert list(by_name) == ["lenet1", "cifar", "mid", "deep", "strided", "pw1x1",
                             "depthwise", "maxpool2x2", "maxpool3x3", "avgpool"]
    mid = by_name["mid"]
    assert mid.out_shape == (32, 64, 56, 56)
    assert mid.flops("fwd") == 2 * 32 * 64 * 64 * 9 * 56 * 56
    assert mid.flops("fwd+bwd") == 3 * mid.flops("fwd")
    assert by_name["strided"].out_shape == (32, 128, 28, 28)
    assert by_name["depthwise"].flops("fwd") == 2 * 32 * 128 * 1 * 9 * 56 * 56
    assert by_name["maxpool3x3"].out_shape == (64, 64, 28, 28)
    assert by_name["maxpool2x2"].flops("fwd") is None
    assert by_name["avgpool"].bytes_moved("fwd", 4) == (64 * 64 * 56 * 56 + 64 * 64 * 28 * 28) * 4


def test_op_cases_are_the_issue_layers():
    by_name = {c.name: c for c in case_table.OP_CASES}
    assert list(by_name) == ["deform", "upsample", "adaptivemax"]
    assert by_name["deform"].out_shape == (8, 64, 56, 56)
    assert by_name["deform"].flops("fwd") == 2 * 8 * 64 * 64 * 9 * 56 * 56
    assert by_name["upsample"].out_shape == (16, 64, 112, 112)
    assert by_name["adaptivemax"].out_shape == (64, 64, 7, 7)
    a = by_name["deform"].make_inputs("float32", "fwd")
    assert a["offset"].shape == (8, 18, 56, 56) and a["mask"].shape == (8, 9, 56, 56)


def test_case_shapes_match_fastconv():
    """The table's own shape arithmetic agrees with fastconv's ops."""
    for case in case_table.QUICK_CASES:
        if case.kind != "conv":
            continue
        a = case.make_inputs("float32", "fwd+bwd")
        y = fastconv.conv2d(a["x"], a["w"], a["b"], stride=case.stride,
                            padding=case.padding, groups=case.groups)
        assert y.shape == case.out_shape == a["gy"].shape


def _arrays(out):
    """Flatten an adapter's result (arrays, tensors, nested tuples) to ndarrays."""
    if isinstance(out, (tuple, list)):
        return [a for item in out for a in _arrays(item)]
    return [out.numpy() if hasattr(out, "numpy") else out]


@pytest.mark.parametrize("direction", case_table.DIRECTIONS)
def test_adapters_compute_the_same_thing(direction):
    """Every implementation is handed the same work: results agree (float64)."""
    from fastconv.bench import impls as impl_table
    adapters = impl_table.available_impls()
    for case in filter(case_table.available, case_table.QUICK_CASES):
        inputs = case.make_inputs("float64", direction, seed=3)
        results = {a.name: _arrays(a.call(case, direction)(a.convert(inputs)))
                   for a in adapters}
        expected = results["reference"]
        for name, got in results.items():
            assert len(got) == len(expected), (case.name, name)
            for g, e in zip(got, expected):
                if g.dtype.kind == "i":   # max-pool indices: same convention everywhere
                    np.testing.assert_array_equal(g, e, err_msg=f"{case.name} {name}")
                else:
                    np.testing.assert_allclose(g, e, rtol=1e-9, atol=1e-9,
                                               err_msg=f"{case.name} {name}")
