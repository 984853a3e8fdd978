"""parse_log / plot on a log in BVLC Caffe's wording and glog line format."""
import csv

import pytest

from dist_caffe import cli
from dist_caffe.errors import ConfigError
from dist_caffe.tools.parse_log import parse_log

LOG = """\
I0101 23:59:58.000000  4242 caffe.cpp:218] Using GPUs 0
I0101 23:59:59.500000  4242 solver.cpp:48] Initializing solver from parameters:
I0102 00:00:00.000000  4242 solver.cpp:310] Solving LeNet
I0102 00:00:00.000000  4242 solver.cpp:311] Learning Rate Policy: inv
I0102 00:00:00.100000  4242 solver.cpp:362] Iteration 0, Testing net (#0)
I0102 00:00:01.100000  4242 solver.cpp:429]     Test net output #0: accuracy = 0.0897
I0102 00:00:01.100000  4242 solver.cpp:429]     Test net output #1: loss = 2.39 (* 1 = 2.39 loss)
I0102 00:00:01.200000  4242 solver.cpp:243] Iteration 0 (0 iter/s, 1.2s/100 iters), loss = 2.41
I0102 00:00:01.200000  4242 solver.cpp:259]     Train net output #0: loss = 2.41 (* 1 = 2.41 loss)
I0102 00:00:01.200000  4242 sgd_solver.cpp:138] Iteration 0, lr = 0.01
I0102 00:00:03.200000  4242 solver.cpp:243] Iteration 100 (50 iter/s, 2s/100 iters), loss = 0.21
I0102 00:00:03.200000  4242 solver.cpp:259]     Train net output #0: loss = 0.2 (* 1 = 0.2 loss)
I0102 00:00:03.200000  4242 sgd_solver.cpp:138] Iteration 100, lr = 0.00992565
I0102 00:00:05.000000  4242 solver.cpp:362] Iteration 200, Testing net (#0)
I0102 00:00:06.000000  4242 solver.cpp:429]     Test net output #0: accuracy = 0.97
I0102 00:00:06.000000  4242 solver.cpp:429]     Test net output #1: loss = 9.5e-02 (* 1 = 0.095 loss)
I0102 00:00:06.000000  4242 solver.cpp:447] Optimization Done.
"""


@pytest.fixture
def logfile(tmp_path):
    path = tmp_path / "train.log"
    path.write_text(LOG)
    return path


def test_parse_rows():
    train, test = parse_log(LOG.splitlines())
    assert [(r["NumIters"], r["LearningRate"], r["loss"]) for r in train] == \
        [(0, 0.01, 2.41), (100, 0.00992565, 0.2)]
    assert [r["Seconds"] for r in train] == pytest.approx([1.2, 3.2])
    assert [(r["NumIters"], r["accuracy"], r["loss"]) for r in test] == \
        [(0, 0.0897, 2.39), (200, 0.97, 0.095)]
    assert test[0]["Seconds"] == pytest.approx(1.1)
    assert test[1]["LearningRate"] == 0.00992565       # the rate in force at that iteration


def test_parse_log_command_writes_csv(logfile, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    assert cli.main(["parse_log", str(logfile), str(out)]) == 0
    with open(out / "train.log.train") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["NumIters", "Seconds", "LearningRate", "loss"]
    assert [(r["NumIters"], float(r["loss"])) for r in rows] == [("0", 2.41), ("100", 0.2)]
    with open(out / "train.log.test") as f:
        rows = list(csv.DictReader(f))
    assert [float(r["accuracy"]) for r in rows] == [0.0897, 0.97]


def test_plot_writes_png(logfile, tmp_path):
    png = tmp_path / "curves.png"
    assert cli.main(["plot", str(logfile), "-o", str(png)]) == 0
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_not_a_training_log(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello\nworld\n")
    from dist_caffe.tools import parse_log as tool
    with pytest.raises(ConfigError, match="no 'Iteration N' lines"):
        tool.main(["parse_log", str(path)])
    assert cli.main(["parse_log", str(path)]) == 1
