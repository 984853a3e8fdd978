"""The failure detector: a rank that dies or hangs stops the job within a bounded time.

Why it exists: a collective whose peer died or hangs never completes, and not every launcher
kills the survivors (srun without --kill-on-bad-exit; any launcher when a rank hangs rather
than dies). Each replica runs one daemon thread that, every `interval_s`:

* sends a one-byte heartbeat to its two ring neighbours and drains theirs, on a private
  communicator (MPI point-to-point: MPI carries the bytes). A neighbour silent for
  `timeout_s` is lost: dead on another node, or hung with the GIL held;
* checks that the processes of the ranks on this node still exist (instant for a kill).

On a loss it prints one line naming the lost rank (its host and pid) and the way to resume,
then ends this process with exit status 75 without MPI_Finalize (which would wait for the
dead peer). The launcher, or the next rank's watchdog, takes the rest of the job down.
Plain `mpiexec` (Hydra) kills the survivors itself within milliseconds of a rank's death;
its banner names the pid, and rank 0's start-up line maps pids to ranks.
"""
import os
import socket
import sys
import threading
import time

import numpy as np

LOST_PEER_EXIT = 75  # EX_TEMPFAIL: the job can be resumed from its last snapshot
_TAG = 7007


def pid_alive(pid: int) -> bool:
    """True while process `pid` exists on this node and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return True  # no /proc (macOS): existence is all we can tell


class Watchdog:
    """Heartbeats to the ring neighbours + pid checks of same-node ranks (see module doc).

    `comm` is an MpiCommunicator; `on_lost(rank, message)` replaces the default exit (tests).
    """

    def __init__(self, comm, interval_s=1.0, timeout_s=30.0, on_lost=None, hint=""):
        self.rank, self.size, self.peers = comm.rank, comm.size, comm.peers
        self.interval_s, self.timeout_s, self.hint = float(interval_s), float(timeout_s), hint
        self.on_lost = on_lost
        MPI = getattr(comm, "MPI", None)
        # Heartbeats need a second thread inside MPI; without THREAD_MULTIPLE (or without MPI)
        # the pid checks of same-node ranks remain.
        self.hb = comm.comm.Dup() if MPI and MPI.Query_thread() == MPI.THREAD_MULTIPLE else None
        host = socket.gethostname()
        self.local = [(r, pid) for r, (h, pid) in enumerate(self.peers)
                      if h == host and r != self.rank]
        self.neighbours = sorted({(self.rank - 1) % self.size, (self.rank + 1) % self.size}
                                 - {self.rank})
        now = time.monotonic()
        self.last_seen = {r: now for r in self.neighbours}
        self._token, self._inbox, self._sends = np.ones(1, np.uint8), np.empty(1, np.uint8), []
        self._stop = threading.Event()
        self.lost = None
        self._thread = threading.Thread(target=self._run, name="dist-caffe-watchdog", daemon=True)
        if self.size > 1:
            self._thread.start()

    def _run(self):
        while not self._stop.wait(self.interval_s):
            try:
                self.check()
            except Exception as e:  # noqa: BLE001 — an MPI error talking to a dead peer
                self._lose(None, f"MPI error in the heartbeat: {e}")
            if self.lost is not None:
                return

    def check(self):
        """One round: heartbeat out, heartbeats in, local pids, silence limits."""
        if self.hb is not None:
            for r in self.neighbours:
                self._sends.append(self.hb.Isend(self._token, dest=r, tag=_TAG))
            self._sends = [s for s in self._sends if not s.Test()]
            now = time.monotonic()
            for r in self.neighbours:
                while self.hb.Iprobe(source=r, tag=_TAG):
                    self.hb.Recv(self._inbox, source=r, tag=_TAG)
                    self.last_seen[r] = now
        for r, pid in self.local:
            if not pid_alive(pid):
                return self._lose(r, "its process is gone (killed or crashed)")
        if self.hb is not None:
            now = time.monotonic()
            for r, seen in self.last_seen.items():
                if now - seen > self.timeout_s:
                    return self._lose(r, f"no heartbeat for {now - seen:.0f} s (dead or hung)")

    def _lose(self, rank, why):
        if self.lost is not None or self._stop.is_set():
            return
        self.lost = -1 if rank is None else rank
        if rank is None:
            who = "lost a rank"
        else:
            host, pid = self.peers[rank]
            who = f"lost rank {rank} (pid {pid} on {host})"
        message = (f"dist-caffe: rank {self.rank}: {who}: {why}. Stopping this replica."
                   f"{(' ' + self.hint) if self.hint else ''}")
        if self.on_lost is not None:
            self.on_lost(rank, message)
            return
        sys.stdout.flush()
        sys.stderr.write(message + "\n")
        sys.stderr.flush()
        os._exit(LOST_PEER_EXIT)  # not sys.exit: MPI_Finalize would wait for the dead peer

    def stop(self):
        """Stop watching (call after a barrier, so no rank mistakes a clean exit for a death)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        for s in self._sends:
            if not s.Test():
                s.Cancel()
        self._sends = []
