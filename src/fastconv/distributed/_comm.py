"""What every part of fastconv.distributed needs from MPI: mpi4py imported on
first use (the core of fastconv stays NumPy-only), the default communicator,
the check that every rank agrees on a layout before a collective call relies
on it, and the context manager that stops a failing rank from leaving the
others waiting forever."""
import contextlib
import sys
import time
import traceback

import numpy as np

__all__ = ["abort_on_error", "world"]


def mpi():
    """The mpi4py.MPI module, or an ImportError saying how to get it."""
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise ImportError(
            "fastconv.distributed needs mpi4py and an MPI library: "
            "pip install 'fastconv[mpi]' (mpi4py + MPICH from wheels), or mpi4py built "
            f"against your cluster's MPI ({exc})") from None
    return MPI


def world():
    """MPI.COMM_WORLD: every process started by the same ``mpiexec``."""
    return mpi().COMM_WORLD


def resolve(comm, owner):
    """`comm`, or COMM_WORLD for None; anything without the communicator
    calls used here is a TypeError."""
    if comm is None:
        return world()
    needed = ("Allreduce", "Bcast", "allgather", "Get_rank", "Get_size")
    if not all(hasattr(comm, name) for name in needed):
        raise TypeError(f"{owner}: comm must be an mpi4py communicator (e.g. "
                        f"MPI.COMM_WORLD), got comm={comm!r}")
    return comm


def allreduce_sum_(comm, buffer):
    """Sum a contiguous array over the ranks, in place (one Allreduce)."""
    comm.Allreduce(mpi().IN_PLACE, buffer, op=mpi().SUM)
    return buffer


def check_same(comm, owner, what, items):
    """Raise ValueError on EVERY rank unless all ranks pass equal `items`
    (a list of (label, value) pairs describing what a collective call will
    rely on). One small allgather: ranks that disagree would otherwise pair
    up the wrong buffers in the collectives that follow, or wait forever."""
    described = [(str(label), repr(value)) for label, value in items]
    everyone = comm.allgather(described)
    mine = everyone[0]
    for rank, theirs in enumerate(everyone):
        if theirs == mine:
            continue
        where = _first_difference(mine, theirs)
        raise ValueError(f"{owner}: the ranks disagree on {what}: {where} on rank 0 but "
                         f"{_first_difference(theirs, mine)} on rank {rank} "
                         f"(every rank must build the same model with the same arguments)")


def _first_difference(mine, theirs):
    for index, item in enumerate(mine):
        if index >= len(theirs) or theirs[index] != item:
            return f"{item[0]} = {item[1]}"
    return f"nothing after {len(mine)} entries"


def broadcast_(comm, array, root=0):
    """Overwrite `array` (any layout) with rank `root`'s copy."""
    if array.flags.c_contiguous:
        comm.Bcast(array, root=root)
    else:
        contiguous = np.ascontiguousarray(array)
        comm.Bcast(contiguous, root=root)
        np.copyto(array, contiguous)


@contextlib.contextmanager
def abort_on_error(comm=None):
    """``with abort_on_error():`` around a rank's work: an exception (or
    Ctrl-C) escaping the block prints its traceback with the rank and calls
    ``comm.Abort(1)``, which ends EVERY rank (mpiexec exits non-zero) instead
    of leaving the others blocked in their next collective call. Use it
    around the whole training script; ``python -m mpi4py script.py`` does
    the same for uncaught exceptions."""
    comm = resolve(comm, "abort_on_error")
    try:
        yield comm
    except SystemExit as exc:
        if exc.code not in (None, 0):
            _abort(comm)
        raise
    except BaseException:
        _abort(comm)
        raise


# Seconds between writing the failing rank's report and Abort: mpiexec
# forwards a rank's output through its process manager, and Abort ends
# every process at once, output still on its way included (MPICH's hydra
# was seen passing on the traceback's first line only).
ABORT_OUTPUT_GRACE = 0.5


def _abort(comm):
    # One write: the report travels as one piece.
    sys.stderr.write(traceback.format_exc()
                     + f"fastconv.distributed: rank {comm.Get_rank()} of {comm.Get_size()} "
                     f"failed (traceback above); aborting every rank\n")
    sys.stderr.flush()
    time.sleep(ABORT_OUTPUT_GRACE)
    comm.Abort(1)
