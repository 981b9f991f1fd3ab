"""Rank 1 raises while rank 0 waits in an Allreduce that rank 1 never
joins: abort_on_error must end both (mpiexec exits non-zero) instead of
leaving rank 0 blocked forever. Run by tests/test_distributed.py under a
timeout; rank 1's error message must reach stderr."""
import numpy as np

from fastconv.distributed import abort_on_error

with abort_on_error() as comm:
    if comm.Get_rank() == 1:
        raise RuntimeError("rank 1 fails on purpose")
    comm.Allreduce(np.zeros(1), np.zeros(1))      # never completes: rank 1 is gone
    print("rank 0 passed an Allreduce that rank 1 never joined", flush=True)
