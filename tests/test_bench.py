"""Smoke tests of the benchmark front door (`python -m fastconv.bench`).

No timing assertions: the numbers depend on the machine and its load.  The
CLI run is a subprocess (as CI and users run it) with PYTHONPATH pointing at
the package under test.
"""
import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from helpers import package_env

import fastconv
from fastconv.bench import cases as case_table
from fastconv.bench import cli, report, runner
from fastconv.bench import impls as impl_table
from fastconv._threads import machine_max_threads

HAS_TORCH = __import__("importlib").util.find_spec("torch") is not None


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "quick.json"
    proc = subprocess.run([sys.executable, "-m", "fastconv.bench", "--quick", "--json",
                           str(out)], env=package_env(), capture_output=True, text=True,
                          timeout=600)  # a hang guard, not a timing assertion
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(out) as f:
        doc = json.load(f)
    return proc, doc


def _rows(text):
    """The table rows in printed output."""
    return [line.split() for line in text.splitlines()
            if line.split() and line.split()[0].startswith("q-")
            and len(line.split()) > 1 and line.split()[1] in case_table.DIRECTIONS]


def _expected_cells():
    quick = [c for c in case_table.QUICK_CASES if case_table.available(c)]
    return {(c.name, d, t) for c in quick for d in case_table.DIRECTIONS
            for t in case_table.DTYPES}


def _expected_net_cells():
    """The default --quick run measures the networks too when torch is installed."""
    return {(c.name, d, t) for c in case_table.QUICK_NET_CASES
            for d in case_table.NET_DIRECTIONS for t in case_table.DTYPES} if HAS_TORCH else set()


def _runs(doc, kind):
    return [run for run in doc["runs"] if run["kind"] == kind]


def test_quick_json_has_numbers_for_every_cell(quick_run):
    _, doc = quick_run
    assert doc["schema"] == "fastconv.bench/1" and doc["complete"]
    assert [run["kind"] for run in doc["runs"]] == ["ops"] + ["nets"] * HAS_TORCH
    (run,) = _runs(doc, "ops")
    assert run["complete"] and run["gemm_end"] and run["copy_end"]
    expected_impls = [a.name for a in impl_table.available_impls()]
    assert run["impls"] == expected_impls
    assert {(c["case"], c["direction"], c["dtype"]) for c in run["results"]} == \
        _expected_cells()
    for cell in run["results"]:
        for impl in expected_impls:
            case = {c.name: c for c in case_table.ALL_CASES}[cell["case"]]
            if impl_table.why_not_run(impl_table.get(impl), case, cell["direction"],
                                      cell["dtype"]):
                assert impl not in cell["impls"]   # a pass or dtype it lacks: left out
                continue
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


@pytest.mark.skipif(not HAS_TORCH, reason="the default run adds networks when torch is installed")
def test_quick_run_times_the_networks_against_torch(quick_run):
    proc, doc = quick_run
    (run,) = _runs(doc, "nets")
    assert run["impls"] == ["fastconv", "torch"] and run["complete"]
    assert run["gemm"] == {} and "gemm_end" not in run     # no GEMM yardstick for networks
    assert {(c["case"], c["direction"], c["dtype"]) for c in run["results"]} == \
        _expected_net_cells()
    for cell in run["results"]:
        assert cell["images"] == {c.name: c for c in case_table.ALL_CASES}[cell["case"]].x[0]
        for impl in ("fastconv", "torch"):
            stats = cell["impls"][impl]
            assert "error" not in stats, (cell["case"], impl, stats)
            assert stats["median"] > 0 and stats["repeats"] >= 3
    assert doc["cases"]["q-vgg"]["op"] == "net"
    assert "fastconv.bench networks: fastconv, torch" in proc.stdout
    rows = [line.split() for line in proc.stdout.splitlines()
            if line.split()[:1] and line.split()[0] in doc["cases"]
            and line.split()[1] in case_table.NET_DIRECTIONS]
    assert len(rows) == len(_expected_net_cells())
    assert all(row[-4] == "img/s" for row in rows)


def test_quick_table_and_header(quick_run):
    proc, doc = quick_run
    text = proc.stdout
    for word in ("machine", "versions", "threads", "process", "timing", "limits",
                 "GEMM", "ref/fc", "fastconv rate", "% limit", "geometric-mean"):
        assert word in text, word
    if HAS_TORCH:
        assert "torch/fc" in text
    rows = _rows(text)
    assert len(rows) == len(_expected_cells())
    # progress went to stderr, one line per measurement when not a TTY
    assert proc.stderr.count(" fastconv: ") == len(_expected_cells()) + len(_expected_net_cells())
    pools = [c for c in case_table.QUICK_CASES if c.kind == "pool"]
    if not all(map(case_table.available, pools)):
        assert "skipped" in text and "q-maxpool2x2" in text


def test_plot_from_results(quick_run, tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "speedup.png"
    panels = report.plot(quick_run[1], str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # one panel per run and dtype, every bar labelled with its value
    runs = quick_run[1]["runs"]
    assert [p["title"].split(",")[0] for p in panels] == list(case_table.DTYPES) * len(runs)
    for k, panel in enumerate(panels):
        run = runs[k // len(case_table.DTYPES)]
        cells = _expected_cells() if run["kind"] == "ops" else _expected_net_cells()
        assert len(panel["labels"]) == (len(run["impls"]) - 1) * len(cells) // 2
        assert all(label.endswith("x") for label in panel["labels"] if label)
    assert os.listdir(tmp_path) == ["speedup.png"]   # no temporary file left


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
                             "depthwise", "maxpool2x2", "maxpool3x3", "avgpool",
                             "stem7x7", "conv5x5", "dilated", "grouped", "proj1x1",
                             "deep-b1", "speech1d", "video3d", "dcgan", "gap", "maxpool112"]
    mid = by_name["mid"]
    assert mid.out_shape == (32, 64, 56, 56)
    assert mid.flops("fwd") == 2 * 32 * 64 * 64 * 9 * 56 * 56
    assert mid.flops("fwd+bwd") == 3 * mid.flops("fwd")
    assert by_name["strided"].out_shape == (32, 128, 28, 28)
    assert by_name["depthwise"].flops("fwd") == 2 * 32 * 128 * 1 * 9 * 56 * 56
    assert by_name["maxpool3x3"].out_shape == (64, 64, 28, 28)
    assert by_name["maxpool2x2"].flops("fwd") is None
    assert by_name["avgpool"].bytes_moved("fwd", 4) == (64 * 64 * 56 * 56 + 64 * 64 * 28 * 28) * 4


def test_shape_classes_of_issue_16_are_in_the_default_set():
    """One layer per shape class, with its own shape and FLOP arithmetic
    (direct-sum multiply-adds x 2, whatever the algorithm)."""
    by_name = {c.name: c for c in case_table.DEFAULT_CASES}
    assert by_name["stem7x7"].out_shape == (8, 64, 112, 112)
    assert by_name["stem7x7"].flops("fwd") == 2 * 8 * 64 * 3 * 49 * 112 * 112
    assert by_name["conv5x5"].out_shape == (32, 64, 28, 28)
    dilated = by_name["dilated"]
    assert (dilated.dilation, dilated.out_shape) == (2, (8, 128, 28, 28))
    assert "d2" in dilated.describe()
    grouped = by_name["grouped"]
    assert grouped.groups == 32 and grouped.flops("fwd") == 2 * 16 * 256 * 8 * 9 * 28 * 28
    assert by_name["proj1x1"].out_shape == (32, 128, 28, 28)
    assert by_name["deep-b1"].x[0] == 1
    speech = by_name["speech1d"]
    assert (speech.op, speech.out_shape) == ("conv1d", (4, 64, 4000))
    assert speech.flops("fwd") == 2 * 4 * 64 * 64 * 9 * 4000
    video = by_name["video3d"]
    assert (video.op, video.out_shape) == ("conv3d", (4, 32, 8, 28, 28))
    dcgan = by_name["dcgan"]
    assert (dcgan.op, dcgan.out_shape) == ("conv_transpose2d", (8, 64, 32, 32))
    # the adjoint of a 4x4 stride-2 conv from 32x32x64 to 16x16x128
    assert dcgan.flops("fwd") == 2 * 8 * 128 * 64 * 16 * 16 * 16
    assert dcgan.make_inputs("float32", "fwd")["b"].shape == (64,)
    gap = by_name["gap"]
    assert (gap.op, gap.kind, gap.out_shape) == ("adaptive_avg_pool2d", "pool", (32, 2048, 1, 1))
    assert gap.bytes_moved("fwd", 4) == (32 * 2048 * 49 + 32 * 2048) * 4
    assert by_name["maxpool112"].out_shape == (8, 64, 56, 56)


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
    conv_cases = [c for c in case_table.ALL_CASES
                  if c.kind == "conv" and c.op != "deform_conv2d"]
    assert {c.op for c in conv_cases} >= {"conv1d", "conv2d", "conv3d", "conv_transpose2d"}
    for case in conv_cases:
        a = case.make_inputs("float32", "fwd+bwd")
        y = fastconv.explain(case.op, a["x"], a["w"], a["b"], stride=case.stride,
                             padding=case.padding, dilation=case.dilation,
                             groups=case.groups)
        if case in case_table.QUICK_CASES:   # small: run them
            y = getattr(fastconv, case.op)(a["x"], a["w"], a["b"], stride=case.stride,
                                           padding=case.padding, dilation=case.dilation,
                                           groups=case.groups)
            assert y.shape == case.out_shape == a["gy"].shape
    for case in case_table.ALL_CASES:
        if case.op == "adaptive_avg_pool2d":
            a = case.make_inputs("float32", "fwd+bwd")
            assert fastconv.adaptive_avg_pool2d(a["x"], case.param("output_size")).shape \
                == case.out_shape == a["gy"].shape


def _arrays(out):
    """Flatten an adapter's result (arrays, tensors, nested tuples) to ndarrays."""
    if isinstance(out, (tuple, list)):
        return [a for item in out for a in _arrays(item)]
    return [out.numpy() if hasattr(out, "numpy") else out]


@pytest.mark.parametrize("direction", case_table.DIRECTIONS)
def test_adapters_compute_the_same_thing(direction):
    """Every implementation is handed the same work: results agree (float64)."""
    for case in filter(case_table.available, case_table.QUICK_CASES):
        inputs = case.make_inputs("float64", direction, seed=3)
        results = {}
        for a in impl_table.available_impls():
            if impl_table.why_not_run(a, case, direction, "float64"):
                continue
            out = a.call(case, direction)(a.convert(inputs))
            results[a.name] = (a.outputs(case, direction, out) if hasattr(a, "outputs")
                               else _arrays(out))   # back in the reference layout
        expected = results["reference"]
        for name, got in results.items():
            assert len(got) == len(expected), (case.name, name)
            for g, e in zip(got, expected):
                if g.dtype.kind == "i":   # max-pool indices: same convention everywhere
                    np.testing.assert_array_equal(g, e, err_msg=f"{case.name} {name}")
                else:
                    np.testing.assert_allclose(g, e, rtol=1e-9, atol=1e-9,
                                               err_msg=f"{case.name} {name}")


# --- networks (--nets) ------------------------------------------------------

def test_network_cases_are_the_issue_networks():
    by_name = {c.name: c for c in case_table.NET_CASES}
    assert {name: c.x for name, c in by_name.items()} == {
        "simplecnn": (100, 1, 28, 28), "vgg": (64, 3, 32, 32), "mobilenet": (64, 3, 64, 64),
        "resnet": (32, 3, 32, 32)}
    kinds = {name: [type(m).__name__ for m in c.build(np.float32, 0).modules()]
             for name, c in by_name.items()}
    assert kinds["simplecnn"] == ["Sequential", "Conv2d", "ReLU", "MaxPool2d", "Flatten",
                                  "Linear", "ReLU", "Linear"]
    assert kinds["vgg"].count("BatchNorm2d") == kinds["vgg"].count("Conv2d") == 6
    mobile = [m for m in by_name["mobilenet"].build(np.float32, 0).modules()
              if type(m).__name__ == "Conv2d"]
    assert sum(m.groups == m.in_channels > 1 for m in mobile) == 5      # depthwise
    assert kinds["resnet"].count("Residual") == 6
    for case in case_table.QUICK_NET_CASES + case_table.NET_CASES[:1]:
        a = case.make_inputs("float64", "train")
        with fastconv.nn.no_grad():
            assert a["model"].eval()(a["x"]).shape == (case.x[0], 10)
        assert a["target"].shape == (case.x[0],) and a["target"].max() < 10


def _net_check(case, dtype):
    """The coordinator's check of one network cell: {impl: {pass: error}}."""
    session = runner.Session([impl_table.get("fastconv"), impl_table.get("torch")], 1,
                             {"seed": 0}, in_process=True, progress=False)
    session.workers = {i.name: runner.LocalWorker(i) for i in session.impls}
    return session._prepare(case, dtype, list(case_table.NET_DIRECTIONS
                                              + case_table.NET_EXTRA_DIRECTIONS))[0]


@pytest.mark.parametrize("dtype", case_table.DTYPES)
def test_network_twins_agree_before_timing(dtype):
    """The first training step's loss and gradients and the inference output
    of fastconv.nn and torch.nn agree, so the two are timed on the same work;
    so do the outputs of nn.fuse's copy and torch.fx's fused model (after a
    training step: BatchNorm statistics that are not the identity)."""
    pytest.importorskip("torch")
    for case in case_table.QUICK_NET_CASES:
        passes = {"infer": None, "train": None, "fused": None}
        assert _net_check(case, dtype) == {"fastconv": passes, "torch": passes}, case.name


@pytest.mark.parametrize("what", ["weights", "gradients"])
def test_a_network_twin_that_differs_is_not_timed(monkeypatch, what):
    torch = pytest.importorskip("torch")
    from fastconv.bench import nets
    build_twin = nets.torch_state

    def wrong_twin(inputs):
        state = build_twin(inputs)
        if what == "weights":       # the output and every gradient change
            with torch.no_grad():
                next(state["model"].parameters()).mul_(1.01)
        else:                       # the loss stays, its gradients are scaled
            loss = state["loss"]
            state["loss"] = lambda y, t: loss(y * 1.01, t) + (loss(y, t) - loss(y * 1.01, t)
                                                              ).detach()
        return state
    monkeypatch.setattr(nets, "torch_state", wrong_twin)
    status = _net_check(case_table.QUICK_NET_CASES[1], "float64")
    assert status["fastconv"] == {"infer": None, "train": None, "fused": None}
    assert "wrong result, not timed" in status["torch"]["train"]
    assert (status["torch"]["infer"] is None) == (what == "gradients")
    # fused after a training step: wrong gradients made wrong weights
    assert "wrong result, not timed" in status["torch"]["fused"]


@pytest.mark.parametrize("argv, message", [
    (["--direction", "sideways"], "--direction: choose from fwd, fwd+bwd, infer, train"),
    (["--nets", "--direction", "fwd"], "names no pass of the nets cases"),
    (["--cases", "mid", "--direction", "train"], "names no pass of the ops cases"),
])
def test_network_options_are_checked_before_measuring(capsys, argv, message):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


# --- command line: refused options, files, interruption ------------------

@pytest.mark.parametrize("option, value", [("--budget", "nan"), ("--budget", "-1"),
                                           ("--budget", "0"), ("--budget", "inf"),
                                           ("--cases", ""), ("--cases", " , "),
                                           ("--threads", "2000"), ("--threads", "0"),
                                           ("--threads", str(machine_max_threads() + 1))])
def test_bad_options_are_refused_before_measuring(capsys, option, value):
    with pytest.raises(SystemExit) as exc:
        cli.main([option, value])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert option in err and repr(value) in err


@pytest.mark.parametrize("option", ["--json", "--plot"])
def test_unwritable_output_fails_before_measuring(tmp_path, capsys, option):
    (tmp_path / "file").write_text("")
    for bad in (tmp_path / "file" / "out.json", tmp_path / "missing" / "out.json", tmp_path):
        with pytest.raises(SystemExit) as exc:
            cli.main(["--quick", option, str(bad)])
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert option in err and str(bad.parent if bad != tmp_path else bad) in err, err
    assert sorted(os.listdir(tmp_path)) == ["file"]


def test_failed_write_keeps_the_previous_file(tmp_path):
    path = tmp_path / "results.json"
    path.write_text('{"previous": true}')
    with pytest.raises(TypeError):
        report.write_json({"runs": {1, 2}}, str(path))   # a set: json fails midway
    assert path.read_text() == '{"previous": true}'
    assert os.listdir(tmp_path) == ["results.json"]
    report.write_json({"runs": []}, str(path))
    assert json.loads(path.read_text()) == {"runs": []}


def _descendants(pid):
    """PIDs whose parent is `pid` (Linux /proc)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry))
    return out


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stopping_keeps_measured_rows_and_leaves_nothing(tmp_path, sig):
    """SIGTERM or Ctrl-C (SIGINT) mid-run: rows printed so far are kept, in
    the table and in the JSON; no worker process and no temporary file stay."""
    out = tmp_path / "out" / "bench.json"
    out.parent.mkdir()
    (tmp_path / "tmp").mkdir()
    env = package_env()
    env["TMPDIR"] = str(tmp_path / "tmp")
    proc = subprocess.Popen(
        [sys.executable, "-m", "fastconv.bench", "--quick", "--impls", "fastconv,reference",
         "--json", str(out)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    guard = threading.Timer(300, proc.kill)   # a hang guard, not a timing assertion
    guard.start()
    try:
        lines = []
        while not _rows("\n".join(lines)):
            line = proc.stdout.readline()
            assert line, "the benchmark ended before printing a row: " + proc.stderr.read()
            lines.append(line.rstrip("\n"))
        workers = _descendants(proc.pid)
        assert len(workers) == 2, workers      # one per implementation
        proc.send_signal(sig)
        rest, err = proc.communicate(timeout=120)
    finally:
        guard.cancel()
    assert proc.returncode == 128 + sig, err[-2000:]
    printed = _rows("\n".join(lines) + "\n" + rest)
    assert printed and "INTERRUPTED" in rest
    doc = json.loads(out.read_text())
    assert doc["complete"] is False
    saved = [(c["case"], c["direction"], c["dtype"]) for c in doc["runs"][0]["results"]]
    # a cell is recorded just before its row is printed: the signal may fall between
    assert saved[:len(printed)] == [(r[0], r[1], r[2]) for r in printed]
    assert len(saved) - len(printed) in (0, 1)
    deadline = time.monotonic() + 30
    while any(map(_alive, workers)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(map(_alive, workers)), "a measuring process was left running"
    assert os.listdir(out.parent) == ["bench.json"]
    assert os.listdir(tmp_path / "tmp") == []


# --- compare: regressions vs noise ----------------------------------------

def _doc(times_by_cell, impl="fastconv"):
    results = [{"case": case, "direction": "fwd", "dtype": "float32",
                "impls": {impl: {"times": list(t), "median": float(np.median(t))}}}
               for case, t in times_by_cell.items()]
    return {"schema": "fastconv.bench/1", "runs": [{"threads": 2, "impls": [impl],
                                                    "results": results}]}


def test_compare_finds_a_real_regression_and_ignores_noise():
    from fastconv.bench import compare
    rng = np.random.default_rng(0)

    def noisy(scale, n=30):   # right-skewed timing noise, as on a busy machine
        return scale * (1 + rng.gamma(2.0, 0.03, n))
    old = _doc({f"c{i}": noisy(1e-3) for i in range(60)})
    same = _doc({f"c{i}": noisy(1e-3) for i in range(60)})
    rows = compare.compare(old, same)
    assert len(rows) == 60 and {r["verdict"] for r in rows} == {"same"}

    slower = _doc({f"c{i}": noisy(1e-3 * (1.3 if i == 7 else 1.0)) for i in range(60)})
    verdicts = {r["key"][1]: r["verdict"] for r in compare.compare(old, slower)}
    assert verdicts.pop("c7") == "slower" and set(verdicts.values()) == {"same"}

    faster = _doc({"c0": noisy(0.7e-3)})
    assert compare.compare(_doc({"c0": noisy(1e-3)}), faster)[0]["verdict"] == "faster"


def test_compare_with_too_few_repeats_is_inconclusive():
    from fastconv.bench import compare
    old = _doc({"c": [1.0, 1.01, 0.99]})
    new = _doc({"c": [2.0, 2.01, 1.99]})     # twice as slow, but 3 vs 3 repeats
    (row,) = compare.compare(old, new)
    assert row["verdict"] == "inconclusive" and row["ratio"] == pytest.approx(2.0)


def test_mann_whitney_matches_known_values():
    from fastconv.bench import compare
    # fully separated samples of 3 and 3: exact two-sided p = 2/20
    assert compare.mann_whitney_p([1, 2, 3], [4, 5, 6]) == pytest.approx(0.1)
    assert compare.mann_whitney_p([1, 2, 3, 4], [1.5, 2.5, 3.5, 4.5]) > 0.5
    # large samples: the normal approximation, symmetric in its arguments
    a, b = np.arange(40.0), np.arange(40.0) + 15
    assert compare.mann_whitney_p(a, b) == pytest.approx(compare.mann_whitney_p(b, a))
    assert compare.mann_whitney_p(a, b) < 1e-3
    assert compare.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])


def test_compare_command_exit_status(tmp_path, capsys):
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    base = np.linspace(1e-3, 1.1e-3, 20)
    old.write_text(json.dumps(_doc({"mid": base})))
    new.write_text(json.dumps(_doc({"mid": base * 1.5})))
    assert cli.main(["compare", str(old), str(old)]) == 0
    assert cli.main(["compare", str(old), str(new)]) == 1
    out = capsys.readouterr().out
    assert "slower" in out and "mid" in out
    with pytest.raises(SystemExit) as exc:
        cli.main(["compare", str(old), str(tmp_path / "missing.json")])
    assert exc.value.code == 2


def test_result_check_tells_rounding_from_a_wrong_result():
    """The check made before timing (worker.same_result) passes results that
    differ by rounding and refuses a wrong layout or a wrong value."""
    from fastconv.bench.worker import fingerprint, same_result
    rng = np.random.default_rng(0)
    y = rng.standard_normal((2, 3, 8, 8))
    want = fingerprint([y])
    assert same_result(fingerprint([y * (1 + 1e-5)]), want, "float32") is None
    assert same_result(fingerprint([y.astype(np.float32)]), want, "float32") is None
    assert same_result(fingerprint([y.transpose(0, 1, 3, 2)]), want, "float32")  # H, W swapped
    wrong = y.copy()
    wrong[0, 0, 0, 0] += 1.0
    assert same_result(fingerprint([wrong]), want, "float64")
    assert same_result(fingerprint([y[:, :2]]), want, "float64")                   # shape
    idx = np.arange(12).reshape(3, 4)
    assert same_result(fingerprint([idx]), fingerprint([idx]), "float64") is None
    assert same_result(fingerprint([idx[::-1].copy()]), fingerprint([idx]), "float64")
