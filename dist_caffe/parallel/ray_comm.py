"""The `ray` communicator: `ray.util.collective` inside Ray actors (gloo on CPU, nccl on GPU).

`ray.util.collective` only has blocking collectives, so one daemon thread per replica issues
them, in the order they were asked for (a FIFO): every rank starts the same buckets in the
same order, so the collectives match across ranks, and backward keeps running on the main
thread while a bucket is reduced (gloo and nccl release the GIL inside the call). Every
collective goes through that thread, broadcasts and gathers too, so none can overtake a
bucket in flight. Waits are bounded by `timeout_s`.

Small Python objects are gathered as pickled bytes in uint8 tensors (lengths first), since
the collective API only carries tensors.
"""
import os
import pickle
import queue
import sys
import threading
from concurrent.futures import Future, TimeoutError as FutureTimeout

import numpy as np

from .. import backend
from ..errors import DistCaffeError
from .communicator import Communicator, Handle, scale_by_inverse
from .mpi import DEFAULT_TIMEOUT_S

GROUP = "dist_caffe"


def collective_module():
    """ray.util.collective, or a DistCaffeError saying how to install it."""
    try:
        import ray.util.collective as col
    except ImportError as e:
        raise DistCaffeError("the 'ray' communicator needs Ray with torch for gloo: "
                             f"pip install 'dist_caffe[ray]' ({e})") from None
    return col


def in_ray_actor() -> bool:
    """True inside a Ray actor or task (where ray.util.collective works)."""
    ray = sys.modules.get("ray")  # a Ray worker has imported it; importing it here costs ~1 s
    if ray is None:
        return False
    try:
        return ray.is_initialized() and ray.get_runtime_context().worker.mode == ray.WORKER_MODE
    except Exception:  # noqa: BLE001 — Ray half-installed or not started
        return False


class RayHandle(Handle):
    """A collective queued on the communicator's thread; `wait()` returns when it is done."""

    def __init__(self, future, what, timeout_s, rank):
        self.future, self.what, self.timeout_s, self.rank = future, what, timeout_s, rank

    def test(self):
        return self.future.done()

    @property
    def done(self):
        return self.future.done()

    def wait(self):
        try:
            return self.future.result(timeout=self.timeout_s)
        except FutureTimeout:
            raise DistCaffeError(
                f"rank {self.rank}: {self.what} did not complete within {self.timeout_s:.0f} s: "
                "another Ray worker never joined it (it died or hangs); check the driver's log "
                "for the lost actor, raise the limit with --comm-timeout S if it is merely slow"
            ) from None


class RayCommunicator(Communicator):
    """Collectives among the `size` actors of a collective group named `group`.

    `backend` is "gloo" (CPU buffers, through torch.distributed) or "nccl" (cupy buffers);
    default: nccl when dist_caffe runs in GPU mode, gloo otherwise. The launcher passes
    `intra_rank`/`intra_size` (this actor's index among the actors on its node).
    """

    name = "ray"

    def __init__(self, rank, size, backend_name=None, group=GROUP, intra_rank=None,
                 intra_size=None, inter_rank=0, timeout_s=DEFAULT_TIMEOUT_S):
        self.col = collective_module()
        if backend_name is None:
            backend_name = "nccl" if backend.mode() == backend.GPU else "gloo"
        self.rank, self.size, self.group, self.backend = int(rank), int(size), group, backend_name
        self.intra_rank = self.rank if intra_rank is None else int(intra_rank)
        self.intra_size = self.size if intra_size is None else int(intra_size)
        self.inter_rank, self.timeout_s = int(inter_rank), float(timeout_s)
        self._device = backend.device()
        try:
            self.col.init_collective_group(self.size, self.rank, backend=backend_name,
                                           group_name=group,
                                           gloo_timeout=int(min(self.timeout_s, 600) * 1000))
        except Exception as e:  # noqa: BLE001 — Ray raises RuntimeError/TimeoutError/ValueError
            raise DistCaffeError(f"rank {self.rank}: could not join the Ray collective group "
                                 f"'{group}' ({backend_name}, {self.size} workers): {e}") from e
        self._queue, self._in_flight = queue.Queue(), []
        self._thread = threading.Thread(target=self._serve, name="dist-caffe-ray-comm",
                                        daemon=True)  # daemon: a hung peer must not block exit
        self._thread.start()

    # -- the communication thread ----------------------------------------------------
    def _serve(self):
        if backend.mode() == backend.GPU:  # the current CUDA device is per thread
            backend.set_device(self._device)
        while True:
            item = self._queue.get()
            if item is None:
                return
            fn, args, future = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args))
            except BaseException as e:  # noqa: BLE001 — handed to the waiting thread
                future.set_exception(DistCaffeError(
                    f"rank {self.rank}: Ray collective failed ({self.backend}): {e}; another "
                    "worker probably died — see the driver's log for the lost rank"))

    def _submit(self, what, fn, *args):
        future = Future()
        self._queue.put((fn, args, future))
        self._in_flight = [f for f in self._in_flight if not f.done()] + [future]
        return RayHandle(future, what, self.timeout_s, self.rank)

    def poll(self):
        """Called by the reducer between layers: while a collective is in flight, give this
        core to the communication thread (with one core per replica, a woken thread would
        otherwise wait for the compute thread's time slice to end)."""
        self._in_flight = [f for f in self._in_flight if not f.done()]
        if self._in_flight:
            os.sched_yield()

    def _call(self, what, fn, *args):
        return self._submit(what, fn, *args).wait()

    def _allreduce_sum(self, buf):
        self.col.allreduce(buf, group_name=self.group)

    def _allreduce_mean(self, buf):
        self._allreduce_sum(buf)
        scale_by_inverse(buf, self.size)

    # -- the interface -------------------------------------------------------------
    def start_allreduce_mean(self, buf, what="all-reduce"):
        if self.size == 1:
            return Handle()
        return self._submit(what, self._allreduce_mean, buf)

    def start_allreduce_sum(self, buf, what="all-reduce"):
        if self.size == 1:
            return Handle()
        return self._submit(what, self._allreduce_sum, buf)

    def allreduce_sum(self, buf):
        self._call("all-reduce (sum)", self._allreduce_sum, buf)

    def broadcast(self, buf, root=0):
        self._call(f"broadcast from rank {root}",
                   lambda b: self.col.broadcast(b, src_rank=root, group_name=self.group), buf)

    def barrier(self):
        self._call("barrier", lambda: self.col.barrier(group_name=self.group))

    def _host(self, array):
        """A buffer of this group's device kind (gloo: numpy; nccl: cupy)."""
        return backend.to_gpu(array) if self.backend == "nccl" else array

    def allgather_object(self, obj):
        data = np.frombuffer(pickle.dumps(obj), np.uint8)
        sizes = [self._host(np.zeros(1, np.int64)) for _ in range(self.size)]
        self._call("gather of object sizes",
                   lambda: self.col.allgather(sizes, self._host(np.array([data.size], np.int64)),
                                              group_name=self.group))
        longest = max(int(backend.to_cpu(s)[0]) for s in sizes)
        padded = np.zeros(longest, np.uint8)
        padded[:data.size] = data
        parts = [self._host(np.zeros(longest, np.uint8)) for _ in range(self.size)]
        self._call("gather of objects",
                   lambda: self.col.allgather(parts, self._host(padded), group_name=self.group))
        return [pickle.loads(backend.to_cpu(p)[:int(backend.to_cpu(s)[0])].tobytes())
                for p, s in zip(parts, sizes)]

    def bcast_object(self, obj, root=0):
        return self.allgather_object(obj if self.rank == root else None)[root]

    def close(self):
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=10)
        try:
            self.col.destroy_collective_group(self.group)
        except Exception:  # noqa: BLE001 — the group may already be gone with a dead peer
            pass
