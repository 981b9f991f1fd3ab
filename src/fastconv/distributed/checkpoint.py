"""Checkpoints of a data-parallel run: rank 0 writes, every rank resumes.

Every rank holds the same parameters and optimizer state (the gradients are
averaged before each step), so one copy is enough; it is written by rank 0
alone and read by every rank. The file is a pickle: load only checkpoints
you wrote.
"""
import os
import pickle

from . import _comm

__all__ = ["save_checkpoint", "load_checkpoint"]


def save_checkpoint(path, model, optimizer=None, extra=None, comm=None):
    """Rank 0 writes the state of `model` (a module or
    DistributedDataParallel), of `optimizer` (if given) and `extra` (any
    picklable value, e.g. the epoch) to `path`, atomically (a temporary file
    renamed into place, so a crash never leaves half a checkpoint); every
    rank then waits until the file is complete, so any rank may read it
    right after. Call it on every rank."""
    comm = _comm.resolve(comm, "save_checkpoint")
    if comm.Get_rank() == 0:
        state = {"model": model.state_dict(),
                 "optimizer": None if optimizer is None else optimizer.state_dict(),
                 "extra": extra}
        temporary = f"{path}.tmp{os.getpid()}"
        try:
            with open(temporary, "wb") as f:
                pickle.dump(state, f, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(temporary, path)
        finally:
            if os.path.exists(temporary):
                os.remove(temporary)
    comm.Barrier()


def load_checkpoint(path, model, optimizer=None):
    """Load a :func:`save_checkpoint` file into `model` (and `optimizer`)
    on this rank; returns its `extra`. Every rank calls it (the file must
    be visible to every rank: a shared file system on a cluster)."""
    with open(path, "rb") as f:
        state = pickle.load(f)
    model.load_state_dict(state["model"])
    if optimizer is not None:
        if state["optimizer"] is None:
            raise ValueError(f"load_checkpoint: {path} holds no optimizer state")
        optimizer.load_state_dict(state["optimizer"])
    return state["extra"]
