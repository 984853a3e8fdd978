"""Communicators: the factory's choices and errors; every mpi collective against numpy (ranks
seeded alike, so a sum is x * world_size); bounded waits; the replica checksum."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from dist_caffe import ConfigError
from dist_caffe.parallel import factory
from dist_caffe.parallel.communicator import LocalCommunicator
from dist_caffe.parallel.replica import diverged_ranks
from dist_caffe.parallel.watchdog import pid_alive

from .conftest import run_job

LAUNCHER_VARS = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE", "PMIX_SIZE",
                 "SLURM_STEP_NUM_TASKS")


@pytest.fixture
def no_launcher(monkeypatch):
    for var in LAUNCHER_VARS:
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ConfigError, match=r"unknown communicator 'gloo' \(known: auto, local, "
                                          r"mpi, nccl, ray\)"):
        factory.create("gloo")


def test_auto_picks_from_how_we_were_started(no_launcher):
    assert factory.resolve("auto", gpu=False) == "local"
    assert isinstance(factory.create("auto"), LocalCommunicator)
    no_launcher.setenv("PMI_SIZE", "4")
    assert factory.resolve("auto", gpu=False) == "mpi"
    assert factory.resolve("auto", gpu=True) == "nccl"
    assert factory.resolve("MPI") == "mpi"
    no_launcher.setenv("PMI_SIZE", "1")           # mpiexec -n 1: a world of one
    assert factory.resolve("auto", gpu=False) == "local"


def test_launcher_size_prefers_the_mpi_launcher_over_srun(no_launcher):
    from dist_caffe.parallel.mpi import launcher_size
    no_launcher.setenv("SLURM_STEP_NUM_TASKS", "2")   # hydra's proxies, started by srun
    no_launcher.setenv("PMI_SIZE", "8")
    assert launcher_size() == (8, "MPICH/Hydra")


def test_diverged_ranks_majority_and_ties():
    assert diverged_ranks([[1, 2], [1, 2], [1, 2]]) == []
    assert diverged_ranks([[1, 2], [1, 3], [1, 2]]) == [1]
    assert diverged_ranks([[1, 2], [1, 3]]) == [1]          # a tie: rank 0's side is the reference
    assert diverged_ranks([[9, 9], [1, 2], [1, 2]]) == [0]


def test_pid_alive():
    assert pid_alive(os.getpid())
    assert not pid_alive(2 ** 22 + 12345)


@pytest.mark.mpi
def test_mpi_collectives_match_numpy(tmp_path):
    result = run_job("collectives", tmp_path)
    assert result.returncode == 0, result.stderr
    for r in range(2):
        got = json.loads((tmp_path / f"collectives_rank{r}.json").read_text())
        assert (got["rank"], got["size"]) == (r, 2)
        assert got["intra"] == [r, 2] and got["inter"] == [0, 1]   # one node here
        # rank r holds arange * (r + 1): the mean over 2 ranks is arange * 1.5
        np.testing.assert_array_equal(got["mean"], np.arange(10) * 1.5)
        np.testing.assert_array_equal(got["start_sum"], np.arange(10) * 3)
        assert got["sum"] == [3.0] * 5
        assert got["bcast"] == [1.0] * 3                            # from root 1
        assert got["gather"] == [{"r": 0}, {"r": 1}]
        assert got["bcast_object"] == "from0"
        assert got["strided"] == [1.5] * 4


@pytest.mark.mpi
def test_a_collective_nobody_joins_fails_within_its_timeout(tmp_path):
    result = run_job("hang", tmp_path, timeout=60)
    text = (tmp_path / "hang.txt").read_text()
    seconds, message = text.split("\n", 1)
    assert 1.9 <= float(seconds) < 10
    assert "rank 0: bucket 0 all-reduce did not complete within 2 s" in message
    assert "--comm-timeout" in message
    assert result.returncode != 0


@pytest.mark.mpi
def test_checksum_stops_every_rank_naming_the_diverged_one(tmp_path):
    result = run_job("diverge", tmp_path, timeout=60)
    assert result.returncode != 0
    for r in range(2):   # both ranks raise at the same iteration: nobody left in a collective
        iteration, message = (tmp_path / f"error_rank{r}.txt").read_text().split("\n", 1)
        assert iteration == "3"
        assert "replicas diverged at iteration 3: rank 1 differs from rank 0 in fc[0]" in message


class Peers:
    """What the watchdog reads of a communicator (no MPI: pid checks only)."""

    def __init__(self, peers):
        import socket
        self.rank, self.size = 0, len(peers)
        self.peers = [(socket.gethostname(), pid) for pid in peers]


def test_watchdog_names_a_dead_local_rank_within_its_interval():
    import subprocess
    import sys
    import time
    from dist_caffe.parallel.watchdog import Watchdog
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    lost = []
    dog = Watchdog(Peers([os.getpid(), child.pid]), interval_s=0.05,
                   on_lost=lambda rank, message: lost.append((rank, message)), hint="Resume.")
    try:
        time.sleep(0.3)
        assert lost == []                      # alive: nothing to report
        child.kill()
        child.wait()
        deadline = time.monotonic() + 5
        while not lost and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        dog.stop()
    assert lost and lost[0][0] == 1
    assert f"rank 0: lost rank 1 (pid {child.pid} on " in lost[0][1]
    assert "its process is gone" in lost[0][1] and lost[0][1].endswith("Resume.")


def test_ray_poll_yields_the_core_only_while_a_collective_is_in_flight(monkeypatch):
    """The reducer calls poll() between layers; the Ray communicator then lets its
    communication thread run (sched_yield) if, and only if, something is in flight."""
    from concurrent.futures import Future
    from dist_caffe.parallel import ray_comm
    yields = []
    monkeypatch.setattr(ray_comm.os, "sched_yield", lambda: yields.append(1))
    comm = object.__new__(ray_comm.RayCommunicator)   # no Ray cluster: only poll's logic
    comm._in_flight = []
    comm.poll()
    pending, done = Future(), Future()
    done.set_result(None)
    comm._in_flight = [done, pending]
    comm.poll()
    assert yields == [1] and comm._in_flight == [pending]
    pending.set_result(None)
    comm.poll()
    assert yields == [1] and comm._in_flight == []


def test_ranks_on_a_node_share_its_cores_for_the_blas_unless_the_user_chose(monkeypatch):
    from threadpoolctl import threadpool_info, threadpool_limits
    from dist_caffe import onednn
    from dist_caffe.parallel.replica import THREAD_VARS, share_cpu_threads

    def count(api):
        return {i["num_threads"] for i in threadpool_info() if i["user_api"] == api}
    before, before_omp, before_onednn = count("blas"), count("openmp"), dict(onednn._threads)
    for var in THREAD_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))
    try:
        monkeypatch.setattr(onednn, "loaded", lambda: False)
        assert share_cpu_threads(1) is None and count("blas") == before  # one rank: untouched
        assert share_cpu_threads(3) == 2 and count("blas") == {2}         # 8 cores // 3 ranks
        assert share_cpu_threads(16) == 1 and count("blas") == {1}
        if onednn.available():   # once loaded, oneDNN's OpenMP pool gets the share instead
            monkeypatch.setattr(onednn, "loaded", lambda: True)
            assert share_cpu_threads(3) == 2 and onednn.threads() == 2
            assert count("blas") == {1} and count("openmp") == {2}
        monkeypatch.setenv("OMP_NUM_THREADS", "4")
        assert share_cpu_threads(2) is None and count("blas") == {1}      # the user's choice stays
    finally:
        threadpool_limits(max(before), user_api="blas")
        if before_omp:
            threadpool_limits(max(before_omp), user_api="openmp")
        onednn._threads.update(before_onednn)


def test_the_share_covers_every_blas_the_layers_use_even_loaded_later():
    """In a fresh process: scipy's OpenBLAS (InnerProduct's accumulating GEMM) is loaded by
    share_cpu_threads itself, so ranks never run it on a thread per core."""
    code = ("import os; os.sched_getaffinity = lambda pid: set(range(2)); "
            "from dist_caffe.parallel.replica import share_cpu_threads; "
            "print(share_cpu_threads(2)); import dist_caffe.layers.inner_product; "
            "from threadpoolctl import threadpool_info; "
            "print(sorted({i['num_threads'] for i in threadpool_info() "
            "if i['user_api'] == 'blas'}), len([i for i in threadpool_info() "
            "if i['user_api'] == 'blas']))")
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True,
                         text=True).stdout.split("\n")
    assert out[0] == "1" and out[1] == "[1] 2"   # 2 cores / 2 ranks, in both BLAS libraries
