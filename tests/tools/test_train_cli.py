"""`dist-caffe train` / `test` from the command line: end to end, resume, signals, usage errors."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import dist_caffe as caffe
from dist_caffe import backend, cli
from dist_caffe.tools import train as train_tool

REPO = Path(__file__).resolve().parents[2]

NET = """
name: "cli_net"
layer { name: "data" type: "DummyData" top: "data" top: "label"
  dummy_data_param { shape { dim: 8 dim: 10 } shape { dim: 8 }
    data_filler { type: "gaussian" std: 1 } data_filler { type: "constant" value: 2 } } }
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip"
  inner_product_param { num_output: 4 weight_filler { type: "xavier" } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }
layer { name: "accuracy" type: "Accuracy" bottom: "ip" bottom: "label" top: "accuracy"
  include { phase: TEST } }
"""


SOLVER = {"net": '"net.prototxt"', "base_lr": 0.05, "lr_policy": '"step"', "gamma": 0.5,
          "stepsize": 10, "momentum": 0.9, "max_iter": 20, "display": 5, "snapshot": 10,
          "test_iter": 2, "test_interval": 10, "snapshot_prefix": '"snap"', "random_seed": 3,
          "solver_mode": "CPU"}


def write_run(folder, **fields):
    """net.prototxt and solver.prototxt in folder; fields override SOLVER (None drops one)."""
    (folder / "net.prototxt").write_text(NET)
    solver = {**SOLVER, **fields}
    (folder / "solver.prototxt").write_text(
        "\n".join(f"{k}: {v}" for k, v in solver.items() if v is not None) + "\n")
    return folder / "solver.prototxt"


def dist_caffe(args, cwd, **kwargs):
    """Run `dist-caffe <args>` in a subprocess; returns the CompletedProcess (or Popen)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    command = [sys.executable, "-m", "dist_caffe.cli", *args]
    if kwargs.pop("background", False):
        return subprocess.Popen(command, cwd=cwd, env=env, **kwargs)
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_train_resume_parse_and_plot(tmp_path):
    write_run(tmp_path)
    run = dist_caffe(["train", "-solver", "solver.prototxt"], tmp_path)
    assert run.returncode == 0, run.stderr
    log = run.stderr
    assert "Optimization Done." in log and "Traceback" not in log
    assert "Iteration 15 (" in log and "Iteration 10, lr = 0.025" in log
    assert "    Test net output #1: accuracy = " in log
    for it in (10, 20):
        assert (tmp_path / f"snap_iter_{it}.caffemodel").is_file()
        assert (tmp_path / f"snap_iter_{it}.solverstate").is_file()
    (tmp_path / "train.log").write_text(log)

    resumed = dist_caffe(["train", "--solver=solver.prototxt", "-snapshot",
                          "snap_iter_10.solverstate", "-iterations", "25"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "Resuming from snap_iter_10.solverstate" in resumed.stderr
    assert "Iteration 0 (" not in resumed.stderr and "Iteration 20 (" in resumed.stderr
    assert (tmp_path / "snap_iter_25.solverstate").is_file()

    assert cli.main(["parse_log", str(tmp_path / "train.log"), str(tmp_path)]) == 0
    train_csv = (tmp_path / "train.log.train").read_text().splitlines()
    assert train_csv[0] == "NumIters,Seconds,LearningRate,loss"
    assert [row.split(",")[0] for row in train_csv[1:]] == ["0", "5", "10", "15"]
    assert [row.split(",")[2] for row in train_csv[1:]] == ["0.05", "0.05", "0.025", "0.025"]
    test_csv = (tmp_path / "train.log.test").read_text().splitlines()
    assert test_csv[0] == "NumIters,Seconds,LearningRate,loss,accuracy"
    assert [row.split(",")[0] for row in test_csv[1:]] == ["0", "10", "20"]

    assert cli.main(["plot", str(tmp_path / "train.log"), "-o", str(tmp_path / "curves.png")]) == 0
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"

    scored = dist_caffe(["test", "-model", "net.prototxt", "-weights", "snap_iter_20.caffemodel",
                         "-iterations", "3"], tmp_path)
    assert scored.returncode == 0, scored.stderr
    assert "Running for 3 iterations." in scored.stderr and "Batch 2, accuracy = " in scored.stderr
    assert "] Loss: " in scored.stderr and "] loss = " in scored.stderr


def wait_for(predicate, seconds=30):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigint_with_snapshot_effect_leaves_a_loadable_snapshot(tmp_path):
    write_run(tmp_path, max_iter=10 ** 7, snapshot=0, display=1, test_iter=None,
              test_interval=None)
    log = open(tmp_path / "log.txt", "w")
    proc = dist_caffe(["train", "-solver", "solver.prototxt", "-sigint_effect", "snapshot"],
                      tmp_path, background=True, stderr=log)
    try:
        assert wait_for(lambda: "Iteration 3 (" in (tmp_path / "log.txt").read_text())
        proc.send_signal(signal.SIGINT)
        assert wait_for(lambda: list(tmp_path.glob("snap_iter_*.solverstate"))), "no snapshot"
        assert proc.poll() is None            # the snapshot effect keeps training
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()
    state = next(tmp_path.glob("snap_iter_*.solverstate"))
    solver = caffe.get_solver(str(tmp_path / "solver.prototxt"))
    solver.restore(str(state))
    assert solver.iter == int(state.stem.split("_")[-1]) > 3


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigint_default_stops_and_snapshots(tmp_path):
    write_run(tmp_path, max_iter=10 ** 7, display=1, test_interval=100000)
    log = open(tmp_path / "log.txt", "w")
    proc = dist_caffe(["train", "-solver", "solver.prototxt"], tmp_path, background=True,
                      stderr=log)
    try:
        assert wait_for(lambda: "Iteration 2 (" in (tmp_path / "log.txt").read_text())
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
    finally:
        proc.kill() if proc.poll() is None else None
        log.close()
    text = (tmp_path / "log.txt").read_text()
    assert "Optimization stopped early." in text and "Traceback" not in text
    assert list(tmp_path.glob("snap_iter_*.solverstate"))     # snapshot_after_train


@pytest.fixture
def restore_logging():
    import logging
    logger = logging.getLogger("dist_caffe")
    saved = (list(logger.handlers), logger.propagate, logger.level)
    yield
    logger.handlers[:], logger.propagate = saved[0], saved[1]
    logger.setLevel(saved[2])


@pytest.mark.parametrize("args, message", [
    (["-solver", "s.prototxt", "-weights", "a.caffemodel", "-snapshot", "b.solverstate"],
     "give -snapshot to resume training or -weights to fine-tune, not both"),
    (["-solver", "s.prototxt", "-bogus", "1"], "unrecognized arguments: --bogus 1"),
    ([], "need a solver definition to train: -solver solver.prototxt"),
    (["-solver", "s", "-sigint_effect", "pause"], "invalid choice: 'pause'"),
])
def test_train_usage_errors(args, message, capsys):
    with pytest.raises(SystemExit) as err:
        cli.main(["train", *args])
    assert message in str(err.value)
    captured = capsys.readouterr()
    assert "usage: dist-caffe train" in captured.out + captured.err


def test_test_usage_error():
    with pytest.raises(SystemExit, match="need model weights to score"):
        cli.main(["test", "-model", "m.prototxt"])


def test_usage_error_exit_status(tmp_path):
    run = dist_caffe(["train", "-solver", "s.prototxt", "-weights", "w", "-snapshot", "s"],
                     tmp_path)
    assert run.returncode != 0 and "not both" in run.stderr and "Traceback" not in run.stderr


@pytest.mark.skipif(backend.has_gpu(), reason="checks the message shown without a GPU")
def test_gpu_flag_without_gpu_is_a_clean_error(tmp_path):
    write_run(tmp_path)
    run = dist_caffe(["train", "-solver", "solver.prototxt", "-gpu", "0"], tmp_path)
    assert run.returncode == 1
    assert "GPU mode needs CuPy and a CUDA device" in run.stderr and "Traceback" not in run.stderr


def test_bad_solver_file_is_a_clean_error(tmp_path):
    write_run(tmp_path, type='"Adagrad"')
    run = dist_caffe(["train", "-solver", "solver.prototxt"], tmp_path)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert "unknown solver type 'Adagrad'" in run.stderr


def test_run_training_applies_flags(tmp_path, monkeypatch, restore_logging):
    write_run(tmp_path, max_iter=3, snapshot_after_train="false")
    monkeypatch.chdir(tmp_path)
    args = train_tool.build_parser("train").parse(
        ["-solver", "solver.prototxt", "-iterations", "2", "-level", "3", "-stage", "a,b",
         "--num-workers", "4", "--bucket-mb", "25"])
    solver = train_tool.run_training(args)
    assert solver.iter == 2 and solver.param.max_iter == 2
    assert solver.net.param.state.level == 3 and list(solver.net.param.state.stage) == ["a", "b"]
    assert (args.num_workers, args.bucket_mb) == ("4", "25")   # for the parallel launcher
    assert not list(tmp_path.glob("snap_iter_*"))
