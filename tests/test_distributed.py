"""fastconv.distributed (data-parallel training over MPI).

In this process (no MPI needed): the sampler's index lists (against
torch.utils.data.DistributedSampler when torch is installed), bad arguments,
and that fastconv.distributed imports without mpi4py. The multi-rank
specifications run under ``mpiexec -n 2`` in child processes with a
timeout (skipped without mpi4py and mpiexec: ``pip install ".[mpi]"``):
tests/mpi/check_ddp.py (2 ranks x batch B equal one process on 2B, with and
without SyncBatchNorm; mismatched ranks raise everywhere; checkpoints;
the sampler over real ranks), a rank that raises does not hang the others,
and the example trains and resumes.
"""
import importlib.util
import os
import pathlib
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

import fastconv
from fastconv import nn
from fastconv.distributed import DistributedDataParallel, DistributedSampler, SyncBatchNorm
from fastconv.distributed.sampler import shard

ROOT = pathlib.Path(__file__).resolve().parents[1]
MPI_SCRIPTS = ROOT / "tests" / "mpi"
# a loaded 2-core machine starts two interpreters and MPI in a few seconds;
# a hang would last forever, so anything past this is one
TIMEOUT = 180


# --------------------------------------------------------------------------- sampler

def all_ranks(n, replicas, **kwargs):
    return [DistributedSampler(n, replicas, r, **kwargs) for r in range(replicas)]


@pytest.mark.parametrize("n, replicas", [(10, 2), (10, 3), (2, 5), (0, 2), (7, 1), (12, 4)])
@pytest.mark.parametrize("drop_last", [False, True])
def test_sampler_covers_every_sample_once_per_epoch(n, replicas, drop_last):
    samplers = all_ranks(n, replicas, drop_last=drop_last, seed=3)
    for epoch in (0, 1):
        for s in samplers:
            s.set_epoch(epoch)
        parts = [s.indices() for s in samplers]
        assert {len(p) for p in parts} == {len(samplers[0])}      # same step count
        counts = np.bincount(np.concatenate(parts), minlength=n) if n else np.zeros(0)
        if drop_last:
            assert counts.max(initial=0) <= 1 and counts.sum() == n - n % replicas
        else:
            assert counts.min(initial=1) >= 1 and counts.sum() == -(-n // replicas) * replicas
            # padding repeats the order from its start, as torch's does
            assert counts.max(initial=0) <= -(-replicas // max(n, 1)) + 1


def test_sampler_shuffles_by_seed_and_epoch():
    a, b = DistributedSampler(50, 2, 0, seed=1), DistributedSampler(50, 2, 0, seed=1)
    assert list(a) == list(b)
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first and sorted(a.order()) == list(range(50))
    assert list(DistributedSampler(50, 2, 0, seed=2)) != first
    assert list(DistributedSampler(9, 2, 1, shuffle=False)) == [1, 3, 5, 7, 0]
    assert len(DistributedSampler(9, 2, 1, drop_last=True)) == 4


@pytest.mark.parametrize("n, replicas", [(10, 3), (2, 5), (12, 4), (13, 4), (0, 3)])
@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize("shuffle", [False, True])
def test_sampler_matches_torch(n, replicas, drop_last, shuffle):
    """Unshuffled: torch's index lists exactly. Shuffled: the order comes
    from NumPy, not torch's generator, so torch's permutation is fed to the
    same split (shard) and must give torch's lists."""
    torch = pytest.importorskip("torch")
    from torch.utils.data import DistributedSampler as TorchSampler
    for epoch in (0, 3):
        for rank in range(replicas):
            theirs = TorchSampler(range(n), replicas, rank, shuffle=shuffle, seed=5,
                                  drop_last=drop_last)
            theirs.set_epoch(epoch)
            mine = DistributedSampler(n, replicas, rank, shuffle=shuffle, seed=5,
                                      drop_last=drop_last)
            mine.set_epoch(epoch)
            assert len(mine) == len(theirs) and mine.total_size == theirs.total_size
            if shuffle:
                generator = torch.Generator()
                generator.manual_seed(5 + epoch)
                order = torch.randperm(n, generator=generator).numpy()
                assert shard(order, replicas, rank, drop_last).tolist() == list(theirs)
            else:
                assert list(mine) == list(theirs)


@pytest.mark.parametrize("kwargs, error, needle", [
    (dict(num_samples=-1, num_replicas=2, rank=0), ValueError, "num_samples"),
    (dict(num_samples=2.0, num_replicas=2, rank=0), TypeError, "num_samples"),
    (dict(num_samples=True, num_replicas=2, rank=0), TypeError, "num_samples"),
    (dict(num_samples=4, num_replicas=0, rank=0), ValueError, "num_replicas"),
    (dict(num_samples=4, num_replicas=2, rank=2), ValueError, "rank"),
    (dict(num_samples=4, num_replicas=2, rank=-1), ValueError, "rank"),
    (dict(num_samples=4, num_replicas=2, rank=0, shuffle=1), TypeError, "shuffle"),
    (dict(num_samples=4, num_replicas=2, rank=0, drop_last="no"), TypeError, "drop_last"),
    (dict(num_samples=4, num_replicas=2, rank=0, seed=0.5), TypeError, "seed"),
    (dict(num_samples=4, num_replicas=2, rank=0, seed=-1), ValueError, "seed"),
])
def test_sampler_refuses_bad_arguments(kwargs, error, needle):
    with pytest.raises(error, match=f"DistributedSampler: {needle}"):
        DistributedSampler(**kwargs)
    with pytest.raises(TypeError, match="epoch"):
        DistributedSampler(4, 2, 0).set_epoch(1.5)
    with pytest.raises(ValueError, match="epoch"):
        DistributedSampler(4, 2, 0).set_epoch(-1)


# --------------------------------------------------------------------------- arguments

@pytest.mark.parametrize("bucket_mb, error", [(0, ValueError), (-1, ValueError),
                                              (float("nan"), ValueError),
                                              (float("inf"), ValueError),
                                              (True, TypeError), ("25", TypeError)])
def test_ddp_refuses_bad_bucket_mb(bucket_mb, error):
    with pytest.raises(error, match="DistributedDataParallel: bucket_mb"):
        DistributedDataParallel(nn.Linear(2, 2), bucket_mb=bucket_mb)


def test_ddp_and_sync_batchnorm_refuse_bad_arguments():
    with pytest.raises(TypeError, match="DistributedDataParallel: module"):
        DistributedDataParallel(lambda x: x)
    with pytest.raises(TypeError, match="SyncBatchNorm: comm"):
        SyncBatchNorm(3, comm="world")
    with pytest.raises(TypeError, match="DistributedDataParallel: comm"):
        DistributedDataParallel(nn.Linear(2, 2), comm=object())


@pytest.mark.parametrize("shape, dtype, error", [((2, 4, 3, 3), np.float32, ValueError),
                                                 ((2, 3, 3), np.float32, ValueError),
                                                 ((2, 3, 3, 3), np.float64, TypeError)])
def test_sync_batchnorm_checks_its_input_before_communicating(shape, dtype, error):
    """Raised before the Allreduce (so here, without MPI): a rank with a bad
    input fails alone, and abort_on_error ends the others."""
    with pytest.raises(error, match="SyncBatchNorm"):
        SyncBatchNorm(3)(np.zeros(shape, dtype))


def test_convert_sync_batchnorm_keeps_state_and_sharing():
    shared = nn.BatchNorm2d(2)
    shared.running_mean[:] = [1, 2]
    shared.params["weight"][:] = [3, 4]
    net = nn.Sequential(nn.Conv2d(1, 2, 1), shared, nn.Residual(nn.Sequential(shared)),
                        nn.BatchNorm2d(2, affine=False))
    before = net.state_dict()
    SyncBatchNorm.convert_sync_batchnorm(net.eval())
    assert type(net[1]) is SyncBatchNorm and net[2].body[0] is net[1]
    assert type(net[3]) is nn.BatchNorm2d          # affine=False: no SyncBatchNorm for it
    assert not net[1].training
    after = net.state_dict()
    assert before.keys() == after.keys()
    for key in before:
        np.testing.assert_array_equal(before[key], after[key])


def test_imports_without_mpi4py_and_names_the_extra():
    """The core never needs MPI: fastconv.distributed imports without
    mpi4py, and needing a communicator raises an ImportError naming the
    extra."""
    code = ("import sys; sys.modules['mpi4py'] = None\n"
            "import fastconv.distributed as d, fastconv.nn as nn\n"
            "assert list(d.DistributedSampler(4, 2, 1)) is not None\n"
            "try:\n    d.DistributedDataParallel(nn.Linear(2, 2))\n"
            "except ImportError as exc:\n    print(exc)\n")
    out = subprocess.run([sys.executable, "-c", code], env=child_env(), capture_output=True,
                         text=True, timeout=TIMEOUT)
    assert out.returncode == 0, out.stderr
    assert "fastconv[mpi]" in out.stdout and "mpi4py" in out.stdout


# --------------------------------------------------------------------------- mpiexec

def child_env():
    """This process's environment, with the fastconv under test first on
    the path and one OpenMP thread per rank (2 cores, 2 ranks)."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    package_root = str(pathlib.Path(fastconv.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    return env


def mpiexec():
    """The mpiexec next to this Python (the mpich wheel's), else on PATH."""
    if importlib.util.find_spec("mpi4py") is None:
        pytest.skip("mpi4py is not installed (pip install '.[mpi]')")
    beside = pathlib.Path(sys.executable).with_name("mpiexec")
    found = str(beside) if beside.exists() else shutil.which("mpiexec")
    if found is None:
        pytest.skip("no mpiexec (pip install '.[mpi]' brings MPICH's)")
    return found


def run_ranks(ranks, *argv, cwd=ROOT):
    start = time.monotonic()
    out = subprocess.run([mpiexec(), "-n", str(ranks), sys.executable, *map(str, argv)],
                         env=child_env(), cwd=cwd, capture_output=True, text=True,
                         timeout=TIMEOUT)
    return out, time.monotonic() - start


def test_two_ranks_match_one_process():
    out, _ = run_ranks(2, MPI_SCRIPTS / "check_ddp.py")
    assert out.returncode == 0 and "ALL OK" in out.stdout, out.stdout + out.stderr


def test_a_raising_rank_does_not_hang_the_others():
    out, seconds = run_ranks(2, MPI_SCRIPTS / "raise_on_one_rank.py")
    assert out.returncode != 0
    assert "rank 1 fails on purpose" in out.stderr
    assert "rank 1 of 2 failed" in out.stderr and "aborting every rank" in out.stderr
    assert "never joined" not in out.stdout
    assert seconds < TIMEOUT


def test_example_trains_and_resumes(tmp_path):
    pytest.importorskip("sklearn")
    example, checkpoint = ROOT / "examples" / "train_distributed.py", tmp_path / "run.pkl"
    out, _ = run_ranks(2, example, "--tiny", "--threads", "1", "--checkpoint", checkpoint)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "rank 0:" in out.stdout and "rank 1:" in out.stdout and "ms/step" in out.stdout
    assert "final test accuracy" in out.stdout and "2 ranks" in out.stdout
    out, _ = run_ranks(2, example, "--tiny", "--threads", "1", "--resume", checkpoint)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "epoch" not in out.stdout.split("\n", 1)[1]     # nothing left to train


def test_buckets_split_by_dtype_and_size_and_round_trip():
    from fastconv.distributed.parallel import plan_buckets
    grads = [np.arange(6.0).reshape(2, 3), np.ones(3), np.ones(4, np.float32),
             np.arange(20, dtype=np.float32), np.asfortranarray(np.arange(6.0).reshape(3, 2))]
    buckets = plan_buckets(grads, bucket_bytes=40)
    # float64 6+3 > 5 items: split; float32 after float64: new bucket; 20
    # float32 (80 bytes) alone; the last float64 after float32: new bucket
    assert [(b.buffer.dtype, b.buffer.size) for b in buckets] == [
        (np.float64, 6), (np.float64, 3), (np.float32, 4), (np.float32, 20), (np.float64, 6)]
    expected = [2 * g for g in grads]
    for b in buckets:
        b.pack(grads)
        b.buffer *= 2
        b.unpack(grads)
    for g, e in zip(grads, expected):
        np.testing.assert_array_equal(g, e)
    assert grads[-1].flags.f_contiguous
