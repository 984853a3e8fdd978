"""The reducer's timing: buckets start from the after-backward hook as soon as their layers are
done, iter_size reduces once, and (under mpiexec) reductions overlap the rest of backward."""
import json

import numpy as np
import pytest

from dist_caffe import Net, TRAIN
from dist_caffe.parallel.communicator import Handle, LocalCommunicator
from dist_caffe.parallel.reducer import Reducer
from dist_caffe.proto import caffe_pb2, parse_text

from .conftest import run_job
from .jobs import NET


class PeerHandle(Handle):
    def __init__(self, comm, k, buf, mean):
        self.comm, self.k, self.buf, self.mean = comm, k, buf, mean

    def wait(self):
        self.comm.waited.append(self.k)
        # with a peer whose gradient is 3x ours: the sum 4g, the mean (g + 3g) / 2 = 2g
        self.buf *= 2 if self.mean else 4


class RecordingComm(LocalCommunicator):
    """World of 2 where the other replica is simulated; records every bucket it is handed."""
    size = 2

    def __init__(self):
        self.started, self.waited = [], []

    def start_allreduce_mean(self, buf, what=""):
        self.started.append(what)
        return PeerHandle(self, len(self.started) - 1, buf, mean=True)

    def start_allreduce_sum(self, buf, what=""):
        self.started.append(what)
        return PeerHandle(self, len(self.started) - 1, buf, mean=False)


def make(iter_size=1, mean=True):
    net = Net(parse_text(NET.format(b=3), caffe_pb2.NetParameter), TRAIN)
    g = np.random.default_rng(0)
    net.blobs["data"].data[...] = g.standard_normal(net.blobs["data"].shape)
    net.blobs["label"].data[...] = [0, 3, 4]
    comm = RecordingComm()
    reducer = Reducer(net, comm, bucket_mb=0.002, first_bucket_mb=0.0005, iter_size=iter_size,
                      mean=mean)
    return net, comm, reducer


def starts_after(reducer):
    """For each bucket start, the layer whose backward had just finished."""
    last, out = None, {}
    for what, k, t, *_ in reducer.events:
        if what == "backward":
            last = k
        elif what == "start":
            out[k] = last
    return out


def test_each_bucket_starts_right_after_its_ready_layer():
    net, comm, reducer = make()
    assert len(reducer.buckets) >= 3
    net.clear_param_diffs()
    net.forward_backward()
    after = starts_after(reducer)
    assert after == {b.index: b.ready_layer for b in reducer.buckets}
    # so bucket 0 is in flight while the first conv layer's backward has not run yet
    conv1 = list(net.layer_dict).index("conv1")
    order = [(what, k) for what, k, *_ in reducer.events]
    assert order.index(("start", 0)) < order.index(("backward", conv1))
    assert comm.waited == []          # nothing waits inside backward


@pytest.mark.parametrize("mean, factor", [(True, 2), (False, 4)])
def test_wait_completes_every_bucket_and_the_mean_or_sum_is_in_place(mean, factor):
    net, comm, reducer = make(mean=mean)
    net.clear_param_diffs()
    net.forward_backward()
    local = net.param_diff.copy()
    reducer.wait()
    assert sorted(comm.waited) == list(range(len(reducer.buckets)))
    n = net.learnable_count
    np.testing.assert_array_equal(net.param_diff[:n], factor * local[:n])
    np.testing.assert_array_equal(net.param_diff[n:], local[n:])  # frozen: untouched
    assert reducer.events[-1][0] == "wait"


def test_iter_size_accumulates_locally_and_reduces_once():
    net, comm, reducer = make(iter_size=3)
    net.clear_param_diffs()
    for micro in range(3):
        net.forward_backward()
        expected = len(reducer.buckets) if micro == 2 else 0
        assert len(comm.started) == expected, f"micro-batch {micro}"
    reducer.wait()
    assert len(comm.started) == len(reducer.buckets)
    # the next iteration re-arms only on its own last pass
    reducer.start_iteration()
    net.forward_backward()
    assert len(comm.started) == len(reducer.buckets)


def test_wait_starts_buckets_the_hooks_never_reached():
    net, comm, reducer = make()
    net.clear_param_diffs()
    reducer.wait()                    # no backward at all (hooks bypassed)
    assert len(comm.started) == len(reducer.buckets) == len(comm.waited)


@pytest.mark.mpi
def test_allreduce_starts_before_earlier_layers_finish_backward(tmp_path):
    """From events recorded on rank 0 under mpiexec -n 2: bucket k's all-reduce starts before
    the backward of every layer below its ready layer finishes, and reductions complete while
    backward still runs (real overlap, not only early starts)."""
    result = run_job("overlap", tmp_path)
    assert result.returncode == 0, result.stderr
    record = json.loads((tmp_path / "events.json").read_text())
    events, buckets = record["events"], record["buckets"]
    assert len(buckets) >= 3
    iterations, current = [], []
    for ev in events:
        current.append(ev)
        if ev[0] == "wait":
            iterations.append(current)
            current = []
    assert len(iterations) == 3
    overlapped = 0
    for evs in iterations:
        backward_end = {k: t for what, k, t, *_ in evs if what == "backward"}
        start = {k: t for what, k, t, *_ in evs if what == "start"}
        done = {k: t for what, k, t, *_ in evs if what == "done"}
        assert sorted(start) == list(range(len(buckets)))
        for k, (_, _, ready) in enumerate(buckets):
            assert start[k] >= backward_end[ready]            # its gradients were final
            for layer in range(1, ready):                      # earlier layers still to do
                assert start[k] < backward_end[layer], (k, layer)
        last_backward = max(backward_end.values())
        overlapped += sum(t < last_backward for t in done.values())
    assert overlapped > 0, "no bucket finished its all-reduce while backward was running"


@pytest.mark.mpi
def test_per_rank_timeline_is_gathered_on_rank_0(tmp_path):
    result = run_job("timeline", tmp_path)
    assert result.returncode == 0, result.stderr
    events = json.loads((tmp_path / "trace.json").read_text())["traceEvents"]
    by_rank = {pid: [e for e in events if e["pid"] == pid] for pid in (0, 1)}
    for rank_events in by_rank.values():
        cats = {e["cat"] for e in rank_events}
        assert {"compute", "update", "allreduce", "wait"} <= cats
        spans = [e for e in rank_events if e["cat"] == "allreduce"]
        assert all(e["dur"] >= 0 and e["args"]["bytes"] > 0 for e in spans)
    # on one clock: the two ranks' first iterations overlap in time
    first = [min(e["ts"] for e in evs if e["cat"] == "compute") for evs in by_rank.values()]
    assert abs(first[0] - first[1]) < 5e6
