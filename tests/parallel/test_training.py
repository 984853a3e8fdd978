"""`dist-caffe train` end to end under mpiexec -n 2: the sharded test phase averages to the
one-process score, and the data-parallel flags (large-batch recipe, checksum, timeline) run."""
import json
import re
import subprocess

import pytest

from .conftest import TRAIN, child_env, mpiexec_cmd


def scores_of(text):
    """{name: value} of the first test phase in a log."""
    return {m[1]: float(m[2]) for m in re.finditer(r"Test net output #\d+: (\w+) = ([\d.e+-]+)",
                                                   text)}


def train(workdir, *flags, ranks=1, timeout=180):
    cmd = (mpiexec_cmd(ranks) if ranks > 1 else []) + TRAIN + list(flags)
    result = subprocess.run(cmd, cwd=workdir, env=child_env(), capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout + result.stderr


@pytest.mark.mpi
def test_sharded_test_phase_averages_to_the_one_process_score(workdir):
    """6 test batches of 60 = the 360 test images: 1 process scores all of them; 2 ranks score
    3 batches each of their own 180-image shards and average over ranks."""
    flags = ["-solver", "short_solver.prototxt", "-iterations", "0"]
    one = scores_of(train(workdir, *flags))
    two_log = train(workdir, *flags, ranks=2)
    two = scores_of(two_log)
    assert "rank 1 of 2" not in two_log          # rank 1 logs warnings only
    assert set(one) == {"accuracy", "loss"} and set(two) == set(one)
    assert two["accuracy"] == pytest.approx(one["accuracy"], abs=1e-6)
    assert two["loss"] == pytest.approx(one["loss"], rel=1e-5)


@pytest.mark.mpi
def test_large_batch_flags_checksum_and_timeline_end_to_end(workdir):
    log = train(workdir, "-solver", "short_solver.prototxt", "-iterations", "20",
                "--lr-scaling", "linear", "--warmup-iters", "10", "--lars-coeff", "0.01",
                "--checksum-every", "5", "--bucket-mb", "0.01", "--first-bucket-mb", "0.004",
                "--timeline", "trace.json", ranks=2)
    assert "Large batch: learning rate x 2, warm-up from x 0.5 over 10 iterations" in log
    assert "LARS: coefficient 0.01 on 2 weight blobs" in log
    assert re.search(r"Gradient buckets: [2-9] ", log)
    # warm-up: iteration 0 runs at 2 x 0.05 x (0.5 + 0.5 / 10) = 0.055, iteration 10 at 0.1
    assert "Iteration 0, lr = 0.055" in log and "Iteration 10, lr = 0.1" in log
    assert "Optimization Done." in log
    events = json.loads((workdir / "trace.json").read_text())["traceEvents"]
    assert {e["pid"] for e in events} == {0, 1}
    assert {"iteration", "allreduce", "wait"} <= {e["cat"] for e in events}
