"""Data parallelism: communicators, the bucketed reducer, replica set-up.

`world()` is the communicator of this process (a LocalCommunicator until a launcher sets
one); data layers read `world().rank`/`.size` to pick their shard, solvers use it to
average gradients and test scores.
"""
from .communicator import Communicator, Handle, LocalCommunicator

_state = {"world": LocalCommunicator()}


def world() -> Communicator:
    return _state["world"]


def set_world(comm: Communicator):
    _state["world"] = comm


__all__ = ["Communicator", "Handle", "LocalCommunicator", "world", "set_world"]
