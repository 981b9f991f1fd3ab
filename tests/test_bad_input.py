"""Malformed arguments at every public op, in child processes: each call must
raise ValueError/TypeError (MemoryError for impossible sizes) with a message
that starts with the op's name and names the argument -- never crash, hang or
return a wrong answer.

One child process runs a whole batch (every hand-written case of every op, or
the Hypothesis runs of every op), so the suite stays fast; when a child dies,
the call it was in (the last "S" line without an "R") is reported against its
op and the rest of the batch runs in a fresh child.  The cases live in fuzz_child.py; the ops in
optable.py.
"""
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from fuzz_child import hand_cases
from optable import ALIASES, ALL_OPS, BY_NAME, NOT_OPS, OPS

import fastconv

CHILD = os.path.join(os.path.dirname(__file__), "fuzz_child.py")
TIMEOUT = 600  # seconds per batch; a healthy batch of all ops takes about ten
HYPOTHESIS_EXAMPLES = int(os.environ.get("FASTCONV_FUZZ_EXAMPLES", "60"))


def _run_child(job, extra_env=None):
    """Run one batch: (results, finished ops, crashed case or None, diagnosis)."""
    # The child must test the same fastconv as this process (installed or built
    # in place), whatever the working directory.
    pkg_parent = os.path.dirname(os.path.dirname(fastconv.__file__))
    path = os.pathsep.join(p for p in (pkg_parent, os.environ.get("PYTHONPATH")) if p)
    env = dict(os.environ, PYTHONPATH=path,
               OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"), **(extra_env or {}))
    try:
        proc = subprocess.run([sys.executable, CHILD], input=json.dumps(job),
                              capture_output=True, text=True, timeout=TIMEOUT, env=env,
                              cwd=os.path.dirname(CHILD))
        out, err, rc = proc.stdout, proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        err, rc = f"hung: no exit after {TIMEOUT}s", None
    results, finished, started, done = [], [], None, False
    for line in out.splitlines():
        kind, _, payload = line.partition(" ")
        if kind == "S":
            started = payload
        elif kind == "R":
            results.append(json.loads(payload))
            started = None
        elif kind == "F":
            finished.append(payload)
        elif kind == "D":
            done = True
    if done and rc == 0:
        return results, finished, None, None
    if rc is not None and rc < 0:
        why = f"killed by signal {signal.Signals(-rc).name}"
    elif rc is None:
        why = err
    else:
        why = f"exit code {rc}"
    return results, finished, started, f"{why}; stderr tail:\n{err[-2000:]}"


def _run_all(mode, ops=ALL_OPS, extra_env=None, **job):
    """Run `mode` over every op, in as few children as crashes allow: after a
    crash the rest runs in a fresh child.  Returns {op name: [problems]}."""
    problems = {op.name: [] for op in ops}
    ops, skip = [op.name for op in ops], []
    while ops:
        results, finished, crashed, why = _run_child(dict(job, mode=mode, ops=ops, skip=skip),
                                                     extra_env)
        for r in results:
            if not r["ok"]:
                name, _, case = r["id"].partition("|")
                problems[name].append(f"{case}: {r['detail']}")
        if why is None:
            break
        if crashed is None:  # died outside any call (import error, ...)
            for name in ops:
                if name not in finished:
                    problems[name].append(f"child died outside a call: {why}")
            break
        name, _, case = crashed.partition("|")
        problems[name].append(f"CRASH in {case}: {why}")
        done = set(finished)
        if mode == "hand":  # go on with the next case
            skip += [r["id"] for r in results] + [crashed]
        else:  # a crashed Hypothesis run ends that op
            done.add(name)
        ops = [o for o in ops if o not in done]
    return problems


@pytest.fixture(scope="module")
def hand_problems():
    return _run_all("hand")


@pytest.fixture(scope="module")
def hypothesis_problems():
    return _run_all("hypo", examples=HYPOTHESIS_EXAMPLES, seed=1234)


@pytest.mark.parametrize("op", ALL_OPS, ids=lambda op: op.name)
def test_hand_written_bad_calls(op, hand_problems):
    ids = [case[0] for case in hand_cases(op)]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    problems = hand_problems[op.name]
    assert not problems, f"{len(problems)} of {len(ids)} bad calls misbehaved:\n" + \
        "\n".join(problems)


@pytest.mark.parametrize("op", ALL_OPS, ids=lambda op: op.name)
def test_hypothesis_generated_calls(op, hypothesis_problems):
    """Random mixes of valid and malformed arguments: each call raises a
    well-worded error or returns what fastconv.reference returns."""
    problems = hypothesis_problems[op.name]
    assert not problems, "\n".join(problems)


def test_harness_reports_a_crash_and_carries_on():
    """A child that segfaults mid-batch: the crashing call is reported with
    its signal, and every other case (of this op and the next) still runs."""
    ops = [BY_NAME["im2col"], BY_NAME["col2im"]]
    victim = "im2col|" + hand_cases(ops[0])[2][0]
    problems = _run_all("hand", ops, {"FASTCONV_FUZZ_SELFTEST_CRASH_AT": victim})
    assert len(problems["im2col"]) == 1 and problems["col2im"] == []
    # SIGSEGV, or SIGABRT under AddressSanitizer (abort_on_error=1)
    assert problems["im2col"][0].startswith(f"CRASH in {victim.split('|')[1]}: killed by signal SIG")


def test_optable_covers_every_public_op():
    """tests/optable.py has one entry per op of fastconv.functional.__all__
    (the one list of ops: fastconv and fastconv.reference derive theirs from
    it), so the fuzz, leak and thread checks cover every op; fastconv's
    names beyond it are no ops."""
    covered = {op.name for op in ALL_OPS}
    ops = set(fastconv.functional.__all__) - NOT_OPS - set(ALIASES)
    assert not ops - covered, f"add these ops to tests/optable.py: {sorted(ops - covered)}"
    assert not covered - ops, f"optable entries that are not ops: {sorted(covered - ops)}"
    extra = set(fastconv.__all__) - set(fastconv.functional.__all__)
    assert extra <= NOT_OPS, f"ops outside fastconv.functional: {sorted(extra - NOT_OPS)}"


def test_unfold_and_fold_are_im2col_and_col2im_under_pytorchs_names():
    """unfold = im2col, fold = col2im, with torch.nn.functional's
    argument order (dilation before padding before stride), so positional
    calls mean the same in both libraries."""
    for module in (fastconv, fastconv.functional, fastconv.reference):
        for alias, name in ALIASES.items():
            assert getattr(module, alias) is getattr(module, name)
    x = np.arange(2 * 3 * 7 * 6, dtype=np.float64).reshape(2, 3, 7, 6)
    # positionally: kernel (3, 2), dilation (2, 1), padding 1, stride (2, 3)
    cols = fastconv.unfold(x, (3, 2), (2, 1), 1, (2, 3))
    np.testing.assert_array_equal(
        cols, fastconv.im2col(x, (3, 2), dilation=(2, 1), padding=1, stride=(2, 3)))
    np.testing.assert_array_equal(
        cols, fastconv.reference.unfold(x, (3, 2), (2, 1), 1, (2, 3)))
    np.testing.assert_array_equal(
        fastconv.fold(cols, (7, 6), (3, 2), (2, 1), 1, (2, 3)),
        fastconv.col2im(cols, (7, 6), (3, 2), dilation=(2, 1), padding=1, stride=(2, 3)))
