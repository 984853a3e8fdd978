"""The `mpi` communicator: mpi4py on host buffers — plain and obvious, the oracle for the others.

`start_allreduce_sum`/`_mean` post an `MPI.Iallreduce` on a host copy of the bucket (the
bucket itself on the CPU path) and return at once; `wait()` completes it (and for the mean
multiplies by 1/size). MPICH only moves a non-blocking collective forward while some MPI
call runs in this process, so the reducer calls `poll()` after every layer's backward: that
is what makes a bucket's reduction actually overlap the rest of backward.

Every wait is bounded (`timeout_s`): a collective that never completes (a peer that hangs,
or ranks that disagree on how many collectives to run) ends in a DistCaffeError naming the
operation instead of a hang. A peer that *dies* is caught sooner by the heartbeat watchdog
(`parallel/watchdog.py`), which the replica starts.
"""
import os
import socket
import time

import numpy as np

from .. import backend
from ..errors import DistCaffeError
from .communicator import Communicator, Handle, scale_by_inverse

DEFAULT_TIMEOUT_S = float(os.environ.get("DIST_CAFFE_COMM_TIMEOUT", 1800))
SPIN_S = float(os.environ.get("DIST_CAFFE_SPIN_S", 2.0))  # busy-poll this long, then sleep


def mpi_module():
    """mpi4py's MPI, or a DistCaffeError saying how to install it."""
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise DistCaffeError("the 'mpi' communicator needs mpi4py and an MPI library: "
                             "pip install 'dist_caffe[mpi]' (mpi4py + the mpich wheel), or "
                             f"pip install mpi4py against your cluster's MPI ({e})") from None
    return MPI


# (variable, who sets it), most specific first: srun's own count only when no MPI launcher
# said anything, since mpirun inside a Slurm allocation starts its proxies with srun.
LAUNCHER_SIZE_VARS = (("OMPI_COMM_WORLD_SIZE", "Open MPI mpirun"), ("PMI_SIZE", "MPICH/Hydra"),
                      ("MV2_COMM_WORLD_SIZE", "MVAPICH mpirun"), ("PMIX_SIZE", "PMIx"),
                      ("SLURM_STEP_NUM_TASKS", "srun"))


def launcher_size():
    """(world size, launcher) that mpirun/mpiexec/srun announced in the environment; (1, "")
    when no MPI launcher started this process."""
    for var, who in LAUNCHER_SIZE_VARS:
        value = os.environ.get(var, "")
        if value.isdigit():
            return int(value), who
    return 1, ""


def in_mpi_job() -> bool:
    """True when mpiexec/mpirun/srun started this process as one of several ranks."""
    return launcher_size()[0] > 1


class MpiHandle(Handle):
    """An `Iallreduce` in flight; `wait()` finishes it, scales it (mean) and copies it back."""

    def __init__(self, comm, request, host, buf, what, mean):
        self.comm, self.request, self.host, self.buf, self.what = comm, request, host, buf, what
        self.mean, self.done = mean, False

    def test(self) -> bool:
        """Move the collective forward without blocking; True once it completed."""
        return self.done or bool(self.request.Test())

    def wait(self):
        if self.done:
            return
        self.comm._complete(self.request, self.what)
        if self.mean:
            scale_by_inverse(self.host, self.comm.size)
        backend.copy_into(self.buf, self.host)   # no-op on the CPU path, one H2D copy on GPU
        self.done = True


class MpiCommunicator(Communicator):
    """Host-memory MPI collectives over `comm` (default COMM_WORLD), reduced in place.

    `intra_rank`/`intra_size` come from an MPI shared-memory split (the ranks on this node;
    the device index when GPUs are used), `inter_rank`/`inter_size` number the nodes.
    """

    name = "mpi"

    def __init__(self, comm=None, timeout_s=DEFAULT_TIMEOUT_S):
        MPI = mpi_module()
        self.MPI = MPI
        self.comm = (comm or MPI.COMM_WORLD).Dup()  # our own context: no clash with user code
        self.comm.Set_errhandler(MPI.ERRORS_RETURN)
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.timeout_s = float(timeout_s)
        node = self.comm.Split_type(MPI.COMM_TYPE_SHARED, key=self.rank)
        self.intra_rank, self.intra_size = node.Get_rank(), node.Get_size()
        leader = node.bcast(self.rank, root=0)
        leaders = sorted(set(self.comm.allgather(leader)))
        self.inter_rank, self.inter_size = leaders.index(leader), len(leaders)
        node.Free()
        # (host, pid) of every rank: error messages name them, the watchdog checks local ones.
        self.peers = self.comm.allgather((socket.gethostname(), os.getpid()))
        self._pending = []

    # -- completion with a deadline ------------------------------------------------
    def _complete(self, request, what):
        """Wait for `request`, raising DistCaffeError after timeout_s instead of hanging.

        Spins on Test() as MPI_Wait itself would (latency is what small buckets pay), yielding
        the CPU between polls like MPICH does (on a busy node the peer rank may need this very
        core to make progress), for SPIN_S; then backs off to short sleeps, so a long wait for
        a slow peer costs no CPU."""
        start = time.monotonic()
        spin_until, deadline, pause = start + SPIN_S, start + self.timeout_s, 1e-4
        hot_until = start + 2e-4
        while not request.Test():
            now = time.monotonic()
            if now < hot_until:
                continue
            if now < spin_until:
                os.sched_yield()
                continue
            if now > deadline:
                raise DistCaffeError(
                    f"rank {self.rank}: {what} did not complete within {self.timeout_s:.0f} s: "
                    "another rank never joined it (it hangs, died, or runs a different number "
                    "of iterations/test batches). Check every rank's log; raise the limit with "
                    "--comm-timeout S or DIST_CAFFE_COMM_TIMEOUT if a rank is merely slow")
            time.sleep(pause)
            pause = min(pause * 2, 0.01)

    def poll(self):
        """Drive pending non-blocking collectives (MPICH progresses only inside MPI calls)."""
        self._pending = [h for h in self._pending if not h.test()]

    # -- the interface -----------------------------------------------------------
    def _start_allreduce(self, buf, what, mean):
        host = np.ascontiguousarray(backend.to_cpu(buf))  # buf itself on the CPU path
        if self.size == 1:
            return Handle()
        request = self.comm.Iallreduce(self.MPI.IN_PLACE, host, op=self.MPI.SUM)
        handle = MpiHandle(self, request, host, buf, what, mean)
        self._pending = [h for h in self._pending if not h.done] + [handle]
        return handle

    def start_allreduce_mean(self, buf, what="all-reduce"):
        return self._start_allreduce(buf, what, mean=True)

    def start_allreduce_sum(self, buf, what="all-reduce"):
        return self._start_allreduce(buf, what, mean=False)

    def allreduce_mean(self, buf):
        host = np.ascontiguousarray(backend.to_cpu(buf))
        if self.size > 1:
            self._complete(self.comm.Iallreduce(self.MPI.IN_PLACE, host, op=self.MPI.SUM),
                           "all-reduce")
            scale_by_inverse(host, self.size)
        backend.copy_into(buf, host)

    def allreduce_sum(self, buf):
        host = np.ascontiguousarray(backend.to_cpu(buf))
        self._complete(self.comm.Iallreduce(self.MPI.IN_PLACE, host, op=self.MPI.SUM),
                       "all-reduce (sum)")
        backend.copy_into(buf, host)

    def broadcast(self, buf, root=0):
        host = np.ascontiguousarray(backend.to_cpu(buf))
        self._complete(self.comm.Ibcast(host, root=root), f"broadcast from rank {root}")
        backend.copy_into(buf, host)

    def barrier(self):
        self._complete(self.comm.Ibarrier(), "barrier")

    def allgather_object(self, obj):
        self.barrier()  # bounded: a missing rank shows here, not inside the pickled gather
        return self.comm.allgather(obj)

    def bcast_object(self, obj, root=0):
        self.barrier()
        return self.comm.bcast(obj, root=root)

    def close(self):
        if self.comm is not None and not self.MPI.Is_finalized():
            self.comm.Free()
        self.comm = None
