"""`dist-caffe time`: Caffe's per-layer report, and a Chrome trace with every rank's rows."""
import json
import os
import subprocess
import sys

import pytest

from dist_caffe import onednn
from dist_caffe.cli import main

from ..conftest import REPO

NET = str(REPO / "configs" / "lenet_train_test.prototxt")


def test_time_reports_every_layer_and_writes_a_trace(tmp_path, capsys):
    trace = tmp_path / "t.json"
    assert main(["time", "-model", NET, "-batch", "4", "-input_shape", "1,28,28",
                 "-iterations", "2", "--trace", str(trace)]) == 0
    out = capsys.readouterr().out
    for layer in ("conv1", "pool1", "ip2", "loss"):
        assert f"{layer}\tforward:" in out and f"{layer}\tbackward:" in out
    assert "Average Forward-Backward:" in out
    if onednn.available():   # LeNet's pooling layers at least (its convolutions on 2+ threads)
        ran = out.split("ran: ")[1].splitlines()[0].split(", ")
        assert {"pool1", "pool2"} <= set(ran) <= {"conv1", "conv2", "pool1", "pool2"}
    events = json.loads(trace.read_text())["traceEvents"]
    assert {e["cat"] for e in events} == {"forward", "backward"}
    assert all(e["dur"] >= 0 for e in events)


@pytest.mark.mpi
def test_time_under_mpirun_gathers_all_ranks_with_allreduce_events(tmp_path):
    trace = tmp_path / "t.json"
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    run = subprocess.run(["mpiexec", "-n", "2", sys.executable, "-m", "dist_caffe.cli", "time",
                          "-model", NET, "-batch", "4", "-input_shape", "1,28,28",
                          "-iterations", "2", "--trace", str(trace)],
                         capture_output=True, text=True, timeout=240, env=env, cwd=REPO)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.count("Average Forward-Backward:") == 1  # rank 0 alone reports
    events = json.loads(trace.read_text())["traceEvents"]
    rows = {(e["pid"], e["cat"]) for e in events}
    assert {(0, "allreduce"), (1, "allreduce"), (0, "backward"), (1, "backward")} <= rows
