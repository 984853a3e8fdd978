"""One replica's set-up: rank, size, local rank, device, per-rank seeds, the start-up
broadcast, the failure detector and the cross-rank parameter checksum. (Rank-0-only logging
is dist_caffe.log's RankFilter; the launcher picks the device before the communicator.)

Replicas must stay bit-identical: they start from rank 0's parameters (and solver history,
when resuming), apply the same mean gradient and the same update. `check_replicas` proves
it every K iterations with a CRC of every param blob gathered from every rank; a mismatch
stops every rank at once (all ranks see the same gathered table, so all raise together and
none is left waiting in a collective).
"""
import logging
import os
import signal
import time
import zlib

import numpy as np

from .. import backend, onednn, rng
from ..errors import DistCaffeError
from . import set_world
from .communicator import LocalCommunicator
from .mpi import MpiCommunicator, in_mpi_job
from .watchdog import Watchdog, pid_alive

log = logging.getLogger("dist_caffe.parallel")

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def share_cpu_threads(ranks_on_node):
    """Give each rank on this node an equal share of the cores it may run on for the BLAS
    (which oneDNN takes over when it loads, see onednn.assign_threads); None (nothing
    changed) on a single rank or when the user set a *_NUM_THREADS variable. Every rank's
    BLAS would otherwise start a thread per core: on 2 cores the
    2-rank LeNet digits job took 133 s instead of 18. (torchrun sets OMP_NUM_THREADS=1 per
    process for the same reason.)"""
    if ranks_on_node <= 1 or any(os.environ.get(v) for v in THREAD_VARS):
        return None
    from threadpoolctl import threadpool_limits
    import scipy.linalg.blas  # noqa: F401  InnerProduct's BLAS is scipy's own OpenBLAS: load
    #                           it now so that the limit below covers it too (2-rank LeNet job:
    #                           45 s with its threads left at one per core, 18 s limited)
    cores = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")  # not on macOS
             else os.cpu_count() or 1)
    threads = max(1, cores // ranks_on_node)
    threadpool_limits(threads, user_api="blas")   # not as a context: it stays
    if onednn.loaded():   # already took the BLAS's threads: give it its share instead
        onednn.assign_threads(threads)
    return threads


class Replica:
    """This process's place in the job.

    comm: a Communicator (its rank/size/intra_rank; `world()` becomes it);
    watchdog: start the failure detector (under MPI: heartbeats + pid checks; under Ray the
    driver watches the actors). heartbeat_s / heartbeat_timeout_s tune it; `resume_hint`
    is printed with a loss (e.g. the snapshot prefix to resume from).
    """

    def __init__(self, comm, watchdog=True, heartbeat_s=1.0,
                 heartbeat_timeout_s=30.0, resume_hint=""):
        self.comm = comm
        self.rank, self.size = comm.rank, comm.size
        self.intra_rank, self.intra_size = comm.intra_rank, comm.intra_size
        # The launcher chose the device (launch.mpi: the node-local rank; Ray: the actor's GPU).
        self.device = backend.device() if backend.mode() == backend.GPU else None
        set_world(comm)
        self.blas_threads = share_cpu_threads(self.intra_size)
        self.watchdog = None
        if watchdog and self.size > 1 and in_mpi_job():
            # Its own MPI communicator, whatever engine carries the gradients (mpi or nccl).
            mpi = next((c for c in (comm, getattr(comm, "boot", None))
                        if isinstance(c, MpiCommunicator)), None) or MpiCommunicator()
            self.watchdog = Watchdog(mpi, heartbeat_s, heartbeat_timeout_s, hint=resume_hint)
            self._install_failure_signal()
        if self.rank == 0 and self.size > 1:
            peers = getattr(comm, "peers", None) or (self.watchdog.peers if self.watchdog else [])
            where = "; ".join(f"rank {r}: pid {pid} on {host}" for r, (host, pid) in
                              enumerate(peers))
            log.info("Data-parallel: %d replicas, communicator %s%s", self.size, comm.name,
                     f" ({where})" if where else "")
            if self.blas_threads:
                log.info("BLAS threads per rank: %d (the cores of this node shared by its %d "
                         "ranks; set OMP_NUM_THREADS or OPENBLAS_NUM_THREADS to choose)",
                         self.blas_threads, self.intra_size)

    def _install_failure_signal(self):
        # MPICH's Hydra tells the survivors of a dead rank with SIGUSR1 (when it does not kill
        # them itself); Python's default action would end us silently, so name the rank first.
        if "PMI_RANK" not in os.environ and "PMI_FD" not in os.environ:
            return
        watchdog = self.watchdog

        def on_failure_notice(signum, frame):
            # The notice can come while the dead process is still being torn down: look again
            # for a moment before falling back to a message without the rank.
            for _ in range(40):
                for r, pid in watchdog.local:
                    if not pid_alive(pid):
                        watchdog._lose(r, "its process is gone (killed or crashed)")
                time.sleep(0.05)
            watchdog._lose(None, "the MPI launcher reported a failed process (SIGUSR1) on "
                                 "another node")
        try:
            signal.signal(signal.SIGUSR1, on_failure_notice)
        except ValueError:  # not the main thread: keep the default
            pass

    # -- start-up ------------------------------------------------------------------
    def broadcast_params(self, net, solver=None):
        """Every rank takes rank 0's parameters (and solver history, if a solver is given)."""
        if self.size == 1:
            return
        self.comm.broadcast(net.param_data, root=0)
        views = getattr(solver, "history_views", None)
        for history in (views() if views else []):
            for view in history:
                self.comm.broadcast(view, root=0)

    def seed(self, base=None):
        """Seed this rank's generator with base + rank (rank 0 draws base when None), after the
        broadcast: dropout and augmentation differ per replica, the parameters do not."""
        if self.size == 1:
            return None  # one process: leave the solver's random_seed stream as it is
        if base is None or base < 0:
            base = int(np.random.SeedSequence().entropy % (2 ** 31))
            base = self.comm.bcast_object(base, root=0)
        rng.set_random_seed(int(base) + self.rank)
        return int(base) + self.rank

    # -- the checksum ----------------------------------------------------------------
    def check_replicas(self, net, iteration):
        """Gather a CRC of every param blob from every rank; DistCaffeError if any differ."""
        if self.size == 1:
            return
        mine = param_checksums(net)
        table = self.comm.allgather_object(mine)
        diverged = diverged_ranks(table)
        if not diverged:
            return
        ref = next(r for r in range(self.size) if r not in diverged)
        names = [f"{e.layer_name}[{e.index}]" for e in net.param_layout]
        details = []
        for r in diverged:
            bad = [n for n, a, b in zip(names, table[r], table[ref]) if a != b]
            details.append(f"rank {r} differs from rank {ref} in {', '.join(bad[:5])}"
                           + (f" (+{len(bad) - 5} more)" if len(bad) > 5 else ""))
        raise DistCaffeError(
            f"replicas diverged at iteration {iteration}: {'; '.join(details)}. Replicas must "
            "stay bit-identical: check that every rank runs the same prototxt, solver and "
            "dist_caffe version on the same kind of device, and that nothing writes into the "
            "parameters outside the solver; restart from the last snapshot")

    def shutdown(self):
        """End cleanly: a barrier first, so no rank mistakes another's exit for a death."""
        if self.size > 1:
            self.comm.barrier()
        if self.watchdog is not None:
            self.watchdog.stop()
        set_world(LocalCommunicator())


def param_checksums(net):
    """CRC32 of each param blob's bytes, in layout order."""
    return [zlib.crc32(memoryview(np.ascontiguousarray(backend.to_cpu(e.blob.data))).cast("B"))
            for e in net.param_layout]


def diverged_ranks(table):
    """Ranks whose checksums differ from the largest group of agreeing ranks (rank 0's group
    on a tie); [] when all agree."""
    groups = {}
    for r, sums in enumerate(table):
        groups.setdefault(tuple(sums), []).append(r)
    if len(groups) == 1:
        return []
    best = max(groups.values(), key=lambda ranks: (len(ranks), 0 in ranks))
    return sorted(r for r in range(len(table)) if r not in best)
