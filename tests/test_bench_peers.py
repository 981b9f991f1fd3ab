"""The benchmark's peer columns (JAX, TensorFlow, ONNX Runtime).

Each installed peer runs the quick cases through the real command line, in
its own measuring process, and every cell it can run must be a number whose
result agreed with fastconv's before it was timed; what it cannot run is
"n/a" with a reason.  A peer that is not installed is skipped, so the
README's test command (no peers) stays as it was.  Install them with
``pip install fastconv[peers]``.
"""
import json
import os
import subprocess
import sys

import pytest
from helpers import package_env

from fastconv.bench import cases as case_table
from fastconv.bench import impls as impl_table
from fastconv.bench import report

PEERS = {"jax": ("jax",), "tensorflow": ("tensorflow",), "onnxruntime": ("onnxruntime", "onnx")}


@pytest.mark.parametrize("peer", sorted(PEERS))
def test_peer_column_has_a_number_for_every_quick_cell_it_can_run(peer, tmp_path):
    for module in PEERS[peer]:
        pytest.importorskip(module)
    out = tmp_path / "peer.json"
    proc = subprocess.run(
        [sys.executable, "-m", "fastconv.bench", "--quick", "--impls", f"fastconv,{peer}",
         "--dtype", "float32", "--threads", "1", "--budget", "0.001", "--min-repeats", "1",
         "--max-repeats", "2", "--json", str(out)],
        env=package_env(), capture_output=True, text=True, timeout=900)   # a hang guard
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = [r for r in json.loads(out.read_text())["runs"] if r["kind"] == "ops"]
    assert run["impls"] == ["fastconv", peer]
    adapter = impl_table.get(peer)
    by_name = {c.name: c for c in case_table.ALL_CASES}
    ran = 0
    for cell in run["results"]:
        reason = impl_table.why_not_run(adapter, by_name[cell["case"]], cell["direction"],
                                        cell["dtype"])
        if reason:
            assert peer not in cell["impls"] and cell["not_run"][peer] == reason
            continue
        stats = cell["impls"][peer]
        assert "error" not in stats, (cell["case"], cell["direction"], stats)
        assert stats["median"] > 0 and stats["repeats"] >= 1
        ran += 1
    # every case has a forward in every peer but deformable convolution
    forwards = {c["case"] for c in run["results"]
                if c["direction"] == "fwd" and peer in c["impls"]}
    assert forwards == {c["case"] for c in run["results"]} - {"q-deform"}
    assert ran >= len(forwards)
    if peer == "jax" and len(os.sched_getaffinity(0)) > 1:
        assert any(note.startswith("jax: its process pinned to 1 of")
                   for note in run["thread_notes"])
    assert "n/a" in proc.stdout and "has no deformable convolution op" in proc.stdout


@pytest.mark.parametrize("peer", sorted(PEERS))
def test_a_peer_without_the_op_says_so(peer):
    """Deformable convolution is n/a in every peer, with the reason (no
    library needed: the reason is the adapter's)."""
    adapter = impl_table.get(peer)
    deform = {c.name: c for c in case_table.ALL_CASES}["q-deform"]
    for direction in case_table.DIRECTIONS:
        reason = impl_table.why_not_run(adapter, deform, direction, "float32")
        assert reason.startswith("n/a: ") and "deformable convolution" in reason


def test_not_applicable_cells_print_as_na_with_the_reason():
    run = {"impls": ["fastconv", "jax"], "gemm": {}, "copy": None, "results": [
        {"case": "q-deform", "op": "deform_conv2d", "direction": "fwd", "dtype": "float32",
         "flops": None, "bytes": None,
         "impls": {"fastconv": {"median": 1e-3, "q1": 1e-3, "q3": 1e-3, "repeats": 3}},
         "not_run": {"jax": "n/a: JAX has no deformable convolution op"}},
        {"case": "q-mid", "op": "conv2d", "direction": "fwd+bwd", "dtype": "float32",
         "flops": None, "bytes": None,
         "impls": {"fastconv": {"median": 1e-3, "q1": 1e-3, "q3": 1e-3, "repeats": 3}},
         "not_run": {"jax": "jax runs no fwd+bwd pass"}}]}
    table = report.Table(run, ["q-deform", "q-mid"])
    assert table.row(run["results"][0]).split()[3:6] == ["1", "ms", "n/a"]
    assert table.row(run["results"][1]).split()[3:6] == ["1", "ms", "-"]   # a pass it lacks
    assert table.not_applicable() == ["n/a: jax on q-deform: JAX has no deformable "
                                      "convolution op"]


def test_adaptive_pooling_runs_as_plain_pooling_only_where_sizes_divide():
    divisible = case_table.adaptive_max("a", (1, 1, 28, 28), 7)
    ragged = case_table.adaptive_max("b", (1, 1, 30, 30), 7)
    assert impl_table.adaptive_window(divisible) == (4, 4)
    assert impl_table.adaptive_window(ragged) is None
    for peer in PEERS:
        reason = impl_table.why_not_run(impl_table.get(peer), ragged, "fwd", "float32")
        assert reason and reason.startswith("n/a: ")
