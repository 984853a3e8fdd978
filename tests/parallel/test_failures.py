"""A rank killed mid-training: the others exit non-zero within a bounded time with a message
naming the lost rank; the last snapshot is intact; `-snapshot` resumes on another world size.
Also the Ray launcher end to end (train, then an actor killed mid-training)."""
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

from .conftest import child_env, mpiexec_cmd

NET = """
name: "digits_conv"
layer { name: "data" type: "Data" top: "data" top: "label" include { phase: TRAIN }
        transform_param { scale: 0.00390625 }
        data_param { source: "digits/digits_train_lmdb" batch_size: 16 backend: LMDB } }
layer { name: "data" type: "Data" top: "data" top: "label" include { phase: TEST }
        transform_param { scale: 0.00390625 }
        data_param { source: "digits/digits_test_lmdb" batch_size: 60 backend: LMDB } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 8 kernel_size: 5 stride: 2 weight_filler { type: "xavier" } } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "fc" type: "Convolution" bottom: "conv1" top: "fc"
        convolution_param { num_output: 10 kernel_size: 12 weight_filler { type: "xavier" } } }
layer { name: "accuracy" type: "Accuracy" bottom: "fc" bottom: "label" top: "accuracy"
        include { phase: TEST } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "fc" bottom: "label" top: "loss" }
"""
SOLVER = """
net: "net.prototxt"
test_iter: 6
test_interval: {test_interval}
base_lr: 0.05
momentum: 0.9
weight_decay: 0.0005
lr_policy: "fixed"
display: 10
max_iter: {max_iter}
snapshot: 20
snapshot_prefix: "snap/digits"
random_seed: 1
"""
TRAIN = [sys.executable, "-m", "dist_caffe.cli", "train"]
DETECT_S = 15   # the bound on noticing a lost rank


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A run folder with the digits LMDBs, the net, and a long-running solver."""
    d = tmp_path_factory.mktemp("digits_run")
    subprocess.run([sys.executable, "-m", "dist_caffe.cli", "data", "digits", "--out",
                    "digits"], cwd=d, env=child_env(), check=True, capture_output=True,
                   timeout=120)
    (d / "snap").mkdir()
    (d / "net.prototxt").write_text(NET)
    (d / "solver.prototxt").write_text(SOLVER.format(max_iter=200000, test_interval=1000))
    (d / "short_solver.prototxt").write_text(SOLVER.format(max_iter=60, test_interval=30))
    return d


class Run:
    """A training job whose merged output is read line by line in the background."""

    def __init__(self, cmd, cwd):
        self.proc = subprocess.Popen(cmd, cwd=cwd, env=child_env(), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True)
        self.lines = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def text(self):
        return "".join(self.lines)

    def wait_for(self, pattern, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(pattern, self.text)
            if m:
                return m
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.kill()
        pytest.fail(f"never saw {pattern!r}; output:\n{self.text[-4000:]}")

    def finish(self, timeout):
        t0 = time.monotonic()
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"the job did not end within {timeout} s of the kill (a hang):\n"
                        f"{self.text[-4000:]}")
        self.reader.join(timeout=10)
        return rc, time.monotonic() - t0

    def kill(self):
        import os
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def last_snapshot(folder):
    """(iteration, .solverstate path) of the newest snapshot with both files present."""
    states = {int(re.search(r"_iter_(\d+)\.solverstate$", p.name).group(1)): p
              for p in folder.glob("*.solverstate")}
    assert states, "no snapshot was written"
    it = max(states)
    assert (folder / f"digits_iter_{it}.caffemodel").exists()
    return it, states[it]


def check_snapshots_intact(workdir):
    """Every snapshot file under its final name is complete: the nets and states load."""
    from dist_caffe import Net, TEST
    from dist_caffe.proto import read_net_param
    from dist_caffe.solvers import snapshot
    from dist_caffe.testing.nets import swap_data_for_input
    for state in workdir.glob("snap/*.solverstate"):
        assert snapshot.read(state).iter > 0
    net = Net(swap_data_for_input(read_net_param(str(workdir / "net.prototxt")), (1, 28, 28)),
              TEST)
    for model in workdir.glob("snap/*.caffemodel"):
        net.copy_from(str(model))


def kill_rank1_mid_training(workdir):
    for old in workdir.glob("snap/*"):
        old.unlink()
    run = Run(mpiexec_cmd(2) + TRAIN + ["-solver", "solver.prototxt"], workdir)
    pid1 = int(run.wait_for(r"rank 1: pid (\d+) on")[1])
    run.wait_for(r"Snapshotting solver state to binary proto file snap/digits_iter_60")
    import os
    os.kill(pid1, signal.SIGKILL)
    rc, seconds = run.finish(timeout=60)
    return run, pid1, rc, seconds


@pytest.mark.mpi
def test_killed_rank_stops_the_job_naming_it_and_resume_on_one_process(workdir):
    """Plain mpiexec: Hydra itself kills the survivors at once; its banner names the pid, which
    rank 0's start-up line maps to rank 1. Then resume the last snapshot on 1 process."""
    run, pid1, rc, seconds = kill_rank1_mid_training(workdir)
    assert rc != 0 and seconds < DETECT_S, run.text[-3000:]
    assert re.search(rf"rank 1: pid {pid1} on \S+", run.text)
    assert f"PID {pid1}" in run.text and "BAD TERMINATION" in run.text
    check_snapshots_intact(workdir)
    it, state = last_snapshot(workdir / "snap")
    resumed = subprocess.run(TRAIN + ["-solver", "solver.prototxt", "-snapshot", str(state),
                                      "-iterations", str(it + 20)],
                             cwd=workdir, env=child_env(), capture_output=True, text=True,
                             timeout=120)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"Restoring previous solver status from {state}" in resumed.stderr or \
        f"Resuming from {state}" in resumed.stderr
    assert f"Iteration {it + 10}" in resumed.stderr     # counting on from the snapshot
    assert (workdir / "snap" / f"digits_iter_{it + 20}.solverstate").exists()


@pytest.mark.mpi
def test_hung_rank_is_named_by_the_heartbeat_watchdog(workdir):
    """A rank that hangs (SIGSTOP) is not dead, so no launcher notices: the heartbeats must.
    Rank 0 stops with a message naming rank 1 within the heartbeat timeout (+ a second)."""
    for old in workdir.glob("snap/*"):
        old.unlink()
    run = Run(mpiexec_cmd(2) + TRAIN + ["-solver", "solver.prototxt", "--heartbeat-timeout", "4"],
              workdir)
    pid1 = int(run.wait_for(r"rank 1: pid (\d+) on")[1])
    run.wait_for(r"Snapshotting solver state to binary proto file snap/digits_iter_60")
    import os
    os.kill(pid1, signal.SIGSTOP)
    rc, seconds = run.finish(timeout=60)
    assert rc != 0 and seconds < DETECT_S, run.text[-3000:]
    assert re.search(rf"rank 0: lost rank 1 \(pid {pid1} on \S+\): no heartbeat for [4-9] s "
                     r"\(dead or hung\)", run.text), run.text[-3000:]
    assert "Resume from the last snapshot with -snapshot" in run.text
    check_snapshots_intact(workdir)


@pytest.mark.ray
def test_ray_launcher_trains_and_fails_cleanly_when_an_actor_dies(workdir):
    pytest.importorskip("ray")
    pytest.importorskip("torch")
    for old in workdir.glob("snap/*"):
        old.unlink()
    ok = subprocess.run(TRAIN + ["-solver", "short_solver.prototxt", "--launcher", "ray",
                                 "--num-workers", "2"],
                        cwd=workdir, env=child_env(), capture_output=True, text=True, timeout=180)
    assert ok.returncode == 0, ok.stderr[-3000:]
    out = ok.stdout + ok.stderr
    assert "Data-parallel: 2 replicas, communicator ray" in out
    assert "rank 1 of 2" in out or "Ray: 2 replicas" in out
    assert "Optimization Done." in out
    assert (workdir / "snap" / "digits_iter_60.solverstate").exists()

    run = Run(TRAIN + ["-solver", "solver.prototxt", "--launcher", "ray", "--num-workers", "2"],
              workdir)
    pid1 = int(run.wait_for(r"rank 1: pid (\d+) on", timeout=120)[1])
    run.wait_for(r"Snapshotting solver state to binary proto file snap/digits_iter_\d*[1-9]0",
                 timeout=120)
    import os
    os.kill(pid1, signal.SIGKILL)
    rc, seconds = run.finish(timeout=60)
    assert rc != 0 and seconds < DETECT_S + 15, run.text[-3000:]   # + Ray's own shutdown
    assert re.search(rf"lost rank 1 \(Ray actor pid {pid1} on \S+\): the actor died", run.text), \
        run.text[-3000:]
    check_snapshots_intact(workdir)
