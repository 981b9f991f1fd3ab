"""Malformed arguments at every public op, in child processes: each call must
raise ValueError/TypeError (MemoryError for impossible sizes) with a message
that starts with the op's name and names the argument -- never crash, hang or
return a wrong answer.

One child process runs a whole batch (every hand-written case of one op, or a
run of Hypothesis examples), so the suite stays fast; when a child dies, the
call it was in (the last "S" line without an "R") is reported and the rest of
the batch is run in a fresh child.  The cases live in fuzz_child.py; the ops in
optable.py.
"""
import json
import os
import signal
import subprocess
import sys

import pytest

from fuzz_child import hand_cases
from optable import ALL_OPS, NOT_OPS, OPS

import fastconv

CHILD = os.path.join(os.path.dirname(__file__), "fuzz_child.py")
TIMEOUT = 120  # seconds per batch; a healthy batch takes about one
HYPOTHESIS_EXAMPLES = int(os.environ.get("FASTCONV_FUZZ_EXAMPLES", "60"))


def _run_child(args):
    """Run one batch: (results, crashed_case_or_None, diagnosis)."""
    # The child must test the same fastconv as this process (installed or built
    # in place), whatever the working directory.
    pkg_parent = os.path.dirname(os.path.dirname(fastconv.__file__))
    path = os.pathsep.join(p for p in (pkg_parent, os.environ.get("PYTHONPATH")) if p)
    env = dict(os.environ, PYTHONPATH=path,
               OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"))
    try:
        proc = subprocess.run([sys.executable, CHILD] + args, capture_output=True, text=True,
                              timeout=TIMEOUT, env=env, cwd=os.path.dirname(CHILD))
        out, err, rc = proc.stdout, proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        err, rc = f"hung: no exit after {TIMEOUT}s", None
    results, started, done = [], None, False
    for line in out.splitlines():
        kind, _, payload = line.partition(" ")
        if kind == "S":
            started = payload
        elif kind == "R":
            results.append(json.loads(payload))
            started = None
        elif kind == "D":
            done = True
    if done and rc == 0:
        return results, None, None
    if rc is not None and rc < 0:
        why = f"killed by signal {signal.Signals(-rc).name}"
    elif rc is None:
        why = err
    else:
        why = f"exit code {rc}"
    return results, started, f"{why}; stderr tail:\n{err[-2000:]}"


def _failures(results):
    return [f"{r['id']}: {r['detail']}" for r in results if not r["ok"]]


@pytest.mark.parametrize("op", ALL_OPS, ids=lambda op: op.name)
def test_hand_written_bad_calls(op):
    ids = [case[0] for case in hand_cases(op)]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    problems, remaining = [], ids
    while remaining:
        results, crashed, why = _run_child(["hand", op.name] + remaining)
        problems += _failures(results)
        finished = {r["id"] for r in results}
        if crashed is None and why is None:
            break
        if crashed is None:  # died outside any call (import error, ...)
            problems.append(f"child died outside a call: {why}")
            break
        problems.append(f"CRASH in {crashed}: {why}")
        finished.add(crashed)
        remaining = [i for i in remaining if i not in finished]
    assert not problems, f"{len(problems)} of {len(ids)} bad calls misbehaved:\n" + \
        "\n".join(problems)


@pytest.mark.parametrize("op", ALL_OPS, ids=lambda op: op.name)
def test_hypothesis_generated_calls(op):
    """Random mixes of valid and malformed arguments: each call raises a
    well-worded error or returns what fastconv.reference returns."""
    seed = 1234 + sum(map(ord, op.name))
    results, crashed, why = _run_child(["hypo", op.name, str(HYPOTHESIS_EXAMPLES), str(seed)])
    problems = _failures(results)
    if why is not None:
        problems.append(f"CRASH in {crashed}: {why}")
    assert not problems, "\n".join(problems)


def test_optable_covers_every_public_op():
    """A new public op must get an entry in optable.py (one line) so that
    the fuzz, leak and thread checks cover it."""
    covered = {op.name for op in ALL_OPS}
    missing = set(fastconv.__all__) - covered - NOT_OPS
    assert not missing, f"add these ops to tests/optable.py: {sorted(missing)}"
    assert {op.name for op in OPS} <= set(fastconv.__all__)
