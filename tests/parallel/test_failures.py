"""A rank killed mid-training: the others exit non-zero within a bounded time with a message
naming the lost rank; the last snapshot is intact; `-snapshot` resumes on another world size.
Also the Ray launcher end to end (train, then an actor killed mid-training)."""
import re
import signal
import subprocess

import pytest

from .conftest import DETECT_S, TRAIN, Run, child_env, mpiexec_cmd

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
