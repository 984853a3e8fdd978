"""The training loop: test phases, display lines, smoothing, snapshots, requests, callbacks."""
import logging
import re

import numpy as np
import pytest

from dist_caffe.parallel.communicator import LocalCommunicator

from .conftest import batches, feed_each_pass

BASE = 'base_lr: 0.1 lr_policy: "fixed" momentum: 0.9 '


def test_solve_logs_in_caffes_wording(make_solver, tmp_path, caplog):
    solver = make_solver(BASE + "max_iter: 4 display: 2 snapshot: 3 test_iter: 2 "
                         "test_interval: 2 test_compute_loss: true", accuracy=True)
    feed_each_pass(solver, batches(8))
    test_data = batches(2, seed=9)
    feed_each_pass_test(solver.test_nets[0], test_data)
    with caplog.at_level(logging.INFO, logger="dist_caffe"):
        solver.solve()
    lines = [r.getMessage() for r in caplog.records if r.name == "dist_caffe.solver"]
    expected = [
        r"Solving tiny", r"Learning Rate Policy: fixed",
        r"Iteration 0, Testing net \(#0\)", r"Test loss: \S+",
        r"    Test net output #0: loss = (\S+) \(\* 1 = \1 loss\)",
        r"    Test net output #1: accuracy = \S+",
        r"Iteration 0 \(0 iter/s, \S+s/2 iters\), loss = \S+",
        r"    Train net output #0: loss = (\S+) \(\* 1 = \1 loss\)",
        r"Iteration 0, lr = 0.1",
        r"Iteration 2, Testing net \(#0\)",
        r"Iteration 2 \(\S+ iter/s, \S+s/2 iters\), loss = \S+",
        r"Snapshotting to binary proto file .*snap_iter_3.caffemodel",
        r"Snapshotting solver state to binary proto file .*snap_iter_3.solverstate",
        r"Snapshotting to binary proto file .*snap_iter_4.caffemodel",   # snapshot_after_train
        r"Iteration 4, loss = \S+", r"Iteration 4, Testing net \(#0\)", r"Optimization Done.",
    ]
    position = 0
    for pattern in expected:
        while position < len(lines) and not re.fullmatch(pattern, lines[position]):
            position += 1
        assert position < len(lines), f"no line matching {pattern!r} in order:\n" + "\n".join(lines)
    assert (tmp_path / "snap_iter_4.solverstate").is_file()


def feed_each_pass_test(net, data):
    original, state = net.forward_from_to, {"j": 0}

    def forward_from_to(*args, **kwargs):
        x, y = data[state["j"] % len(data)]
        net.blobs["data"].data[...] = x
        net.blobs["label"].data[...] = y
        state["j"] += 1
        return original(*args, **kwargs)
    net.forward_from_to = forward_from_to


def independent_scores(solver, data):
    """Accuracy and loss of the current weights over `data`, in numpy."""
    w1, b1 = (b.data for b in solver.net.params["ip1"])
    w2, b2 = (b.data for b in solver.net.params["ip2"])
    acc, loss = [], []
    for x, y in data:
        z = (x @ w1.T + b1) @ w2.T + b2
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        acc.append(np.mean(z.argmax(1) == y))
        loss.append(-np.mean(np.log(p[np.arange(len(y)), y.astype(int)])))
    return np.mean(acc), np.mean(loss)


def test_test_scores_average_test_iter_batches(make_solver):
    solver = make_solver(BASE + "test_iter: 3 test_interval: 100", accuracy=True)
    data = batches(3, seed=11)
    feed_each_pass_test(solver.test_nets[0], data)
    feed_each_pass(solver, batches(2))
    solver.step(2)                                  # test nets share the trained weights
    scores = solver.test(0)
    acc, loss = independent_scores(solver, data)
    assert scores["accuracy"] == pytest.approx(acc)
    assert scores["loss"] == pytest.approx(loss, rel=1e-5)


class FakeComm(LocalCommunicator):
    """Rank 1 of 2: records all-reduces and adds what 'rank 0' contributes."""

    def __init__(self, other):
        self.rank, self.size, self.other, self.reduced = 1, 2, other, []

    def start_allreduce_mean(self, buf):
        self.reduced.append(buf.copy())
        buf[...] = (buf + self.other) / 2
        return super().start_allreduce_mean(buf)


def test_rank_1_tests_its_share_logs_nothing_and_writes_no_snapshot(make_solver, tmp_path, caplog):
    solver = make_solver(BASE + "test_iter: 3 test_interval: 100 snapshot: 1", accuracy=True)
    comm = FakeComm(other=np.array([2.0, 1.0, 2.0, 2.0]))  # rank 0: 2 batches, sums 2, 1, loss 2
    from dist_caffe.solvers import get_solver
    solver = get_solver(solver.param, comm=comm, source=solver.source)
    data = batches(3, seed=12)
    feed_each_pass_test(solver.test_nets[0], data[1:2])    # rank 1 runs batch 1 only
    feed_each_pass(solver, batches(1))
    acc, loss = independent_scores(solver, data[1:2])
    with caplog.at_level(logging.INFO, logger="dist_caffe"):
        scores = solver.test(0)
        solver.step(1)
    sent = comm.reduced[0]                                # outputs: loss, accuracy; loss; count
    np.testing.assert_allclose(sent, [loss, acc, loss, 1], rtol=1e-5)
    assert scores["loss"] == pytest.approx((loss + 2.0) / 3, rel=1e-5)
    assert scores["accuracy"] == pytest.approx((acc + 1.0) / 3)
    assert not [r for r in caplog.records if r.name == "dist_caffe.solver"]
    assert not list(tmp_path.glob("snap_iter_*"))


def test_average_loss_smooths_over_last_n(make_solver):
    solver = make_solver(BASE + "average_loss: 3")
    losses = []
    original = solver.net.forward_backward
    solver.net.forward_backward = lambda: losses.append(original()) or losses[-1]
    feed_each_pass(solver, batches(5))
    solver.step(5)
    assert solver.smoothed_loss == pytest.approx(np.mean(losses[-3:]), rel=1e-6)


def test_requests_stop_and_snapshot(make_solver, tmp_path):
    solver = make_solver(BASE + "max_iter: 10")
    feed_each_pass(solver, batches(3))
    requests = iter(["none", "snapshot", "none", "stop"])
    solver.action_request = lambda: next(requests, "none")
    solver.solve()
    assert solver.iter == 4 and solver.requested_early_exit
    assert sorted(p.name for p in tmp_path.glob("snap_iter_*")) == [
        "snap_iter_2.caffemodel", "snap_iter_2.solverstate",       # the SIGHUP-style request
        "snap_iter_4.caffemodel", "snap_iter_4.solverstate"]       # snapshot_after_train on stop


def test_callbacks_run_in_order_once_per_iteration(make_solver):
    solver = make_solver(BASE + "iter_size: 3")
    feed_each_pass(solver, batches(3))
    events = []
    solver.add_callback(lambda: events.append(("start", solver.micro_batch)),
                        lambda: events.append(("ready", solver.micro_batch)))
    solver.net.after_backward.append(
        lambda i: i == 0 and events.append(("pass", solver.micro_batch)))
    solver.step(2)
    one = [("start", 0), ("pass", 0), ("pass", 1), ("pass", 2), ("ready", 2)]
    assert events == one + [("start", 2)] + one[1:]


def test_test_nets_share_weights_and_seed_fixes_init(make_solver):
    a = make_solver(BASE + "test_iter: 1 test_interval: 5", accuracy=True)
    b = make_solver(BASE + "test_iter: 1 test_interval: 5", accuracy=True)
    np.testing.assert_array_equal(a.net.params["ip1"][0].data, b.net.params["ip1"][0].data)
    feed_each_pass(a, batches(1))
    a.step(1)
    np.testing.assert_array_equal(a.test_nets[0].params["ip1"][0].data,
                                  a.net.params["ip1"][0].data)
    assert not np.array_equal(a.net.params["ip1"][0].data, b.net.params["ip1"][0].data)


def test_weights_field_fine_tunes_train_and_test_nets(make_solver, tmp_path):
    source = make_solver(BASE)
    source.net.params["ip2"][1].data[...] = [1, 2, 3]
    source.net.save(str(tmp_path / "w.caffemodel"))
    solver = make_solver(BASE + f'weights: "{tmp_path}/w.caffemodel" test_iter: 1 '
                         "test_interval: 1", accuracy=True)
    assert solver.net.params["ip2"][1].data.tolist() == [1, 2, 3]
    assert solver.test_nets[0].params["ip2"][1].data.tolist() == [1, 2, 3]


def test_test_initialization_false_skips_iteration_0(make_solver, caplog):
    solver = make_solver(BASE + "test_iter: 1 test_interval: 2 test_initialization: false",
                         accuracy=True)
    feed_each_pass(solver, batches(3))
    with caplog.at_level(logging.INFO, logger="dist_caffe"):
        solver.step(3)
    tested = [r.getMessage() for r in caplog.records if "Testing net" in r.getMessage()]
    assert tested == ["Iteration 2, Testing net (#0)"]


def test_solve_checks_the_snapshot_folder_before_training(make_solver, tmp_path):
    from dist_caffe.errors import ConfigError
    solver = make_solver(BASE + "max_iter: 2")
    solver.param.snapshot_prefix = str(tmp_path / "missing" / "snap")
    with pytest.raises(ConfigError, match="cannot write snapshots"):
        solver.solve()
    assert solver.iter == 0
