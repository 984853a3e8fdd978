"""Log set-up: glog's line format, rank-0-only output, progress bar only on a terminal."""
import logging
import re

import pytest

from dist_caffe import log as dlog


@pytest.fixture
def logger():
    logger = logging.getLogger("dist_caffe")
    saved = (list(logger.handlers), logger.propagate, logger.level)
    yield logger
    logger.handlers[:], logger.propagate = saved[0], saved[1]
    logger.setLevel(saved[2])
    dlog._state.update(handler=None, bar=None, progress=False)


def test_lines_have_glogs_prefix(logger, capsys):
    dlog.setup()
    logging.getLogger("dist_caffe.solver").info("Iteration %d, lr = %s", 100, "0.01")
    line = capsys.readouterr().err.rstrip("\n")
    assert re.fullmatch(r"I\d{4} \d\d:\d\d:\d\d\.\d{6} +\d+ test_log\.py:\d+\] "
                        r"Iteration 100, lr = 0\.01", line), line


def test_other_ranks_show_only_warnings_tagged(logger, capsys):
    dlog.setup(rank=3)
    child = logging.getLogger("dist_caffe.solver")
    child.info("Iteration 1, loss = 2")
    child.warning("disk almost full")
    err = capsys.readouterr().err
    assert "Iteration 1" not in err
    assert re.search(r"^W.*\] \[rank 3\] disk almost full$", err, re.M)


def test_progress_bar_only_on_a_terminal(logger, monkeypatch):
    dlog.setup(progress=True)
    assert isinstance(dlog.progress(10), dlog._NoBar)          # pytest's stderr is no TTY

    class Tty:
        def __init__(self):
            self.text = ""

        def isatty(self):
            return True

        def write(self, s):
            self.text += s

        def flush(self):
            pass
    tty = Tty()
    monkeypatch.setattr("sys.stderr", tty)
    with dlog.progress(10, initial=2) as bar:
        bar.update(3)
        logging.getLogger("dist_caffe.solver").info("Iteration 5, lr = 1")
    assert dlog._state["bar"] is None
    assert "Iteration 5, lr = 1" in tty.text and "5/10" in tty.text
    dlog.setup(progress=False)
    assert isinstance(dlog.progress(10), dlog._NoBar)
