"""The `nccl` communicator. Without a GPU: its bootstrap logic and its clean failure; with one
(`gpu`): world size 1 through the bucketed reducer, stream ordering, the other collectives."""
import threading

import numpy as np
import pytest

from dist_caffe import backend
from dist_caffe.errors import KernelError
from dist_caffe.parallel.communicator import LocalCommunicator
from dist_caffe.parallel.nccl import CallableBootstrap, NcclCommunicator, bootstrap_of


class ThreadBroadcast:
    """A `bcast(obj, root)` among `size` threads, as Ray's would be among actors."""

    def __init__(self, size):
        self.barrier, self.value = threading.Barrier(size), None

    def __call__(self, rank):
        def bcast(obj, root):
            if rank == root:
                self.value = obj
            self.barrier.wait()
            out = self.value
            self.barrier.wait()  # nobody overwrites value before all have read it
            return out
        return bcast


def test_callable_bootstrap_gathers_by_broadcasts(monkeypatch):
    hosts = ["nodeA", "nodeA", "nodeB", "nodeA"]
    local = threading.local()
    monkeypatch.setattr("dist_caffe.parallel.nccl.socket.gethostname", lambda: local.host)
    net, out = ThreadBroadcast(4), {}

    def rank_main(r):
        local.host = hosts[r]
        boot = CallableBootstrap(net(r), r, 4)
        out[r] = (boot.intra_rank, boot.intra_size, boot.inter_rank,
                  boot.allgather_object(r * 10), boot.bcast_object(f"id from {r}", root=2))
        boot.barrier()

    threads = [threading.Thread(target=rank_main, args=(r,)) for r in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert out[0] == (0, 3, 0, [0, 10, 20, 30], "id from 2")
    assert out[1][:3] == (1, 3, 0) and out[3][:3] == (2, 3, 0)
    assert out[2][:3] == (0, 1, 1)


def test_bootstrap_forms():
    comm = LocalCommunicator()
    assert bootstrap_of(comm) == (comm, False)
    with pytest.raises(KernelError, match="needs this process's rank"):
        bootstrap_of(lambda obj, root: obj)
    with pytest.raises(KernelError, match="cannot bootstrap from int"):
        bootstrap_of(42)


@pytest.mark.skipif(backend.has_gpu(), reason="checks the message given without a GPU")
def test_without_a_gpu_it_fails_cleanly():
    with pytest.raises(KernelError, match="GPU mode needs CuPy and a CUDA device"):
        NcclCommunicator(lambda obj, root: obj, rank=0, size=1)


# -- on a GPU -------------------------------------------------------------------------
@pytest.fixture
def nccl_comm():
    comm = NcclCommunicator(lambda obj, root: obj, rank=0, size=1)
    yield comm
    comm.close()


@pytest.mark.gpu
def test_collectives_with_world_size_1(nccl_comm):
    cp = backend.require_cupy()
    assert (nccl_comm.rank, nccl_comm.size, nccl_comm.intra_rank) == (0, 1, 0)
    buf = cp.arange(1000, dtype=cp.float32)
    buf *= 3  # queued on the compute stream: the all-reduce must see it
    handle = nccl_comm.start_allreduce_mean(buf, what="test")
    handle.wait()
    np.testing.assert_array_equal(cp.asnumpy(buf), np.arange(1000) * 3)
    assert handle.test()
    nccl_comm.allreduce_sum(buf)
    nccl_comm.broadcast(buf, root=0)
    nccl_comm.barrier()
    np.testing.assert_array_equal(cp.asnumpy(buf), np.arange(1000) * 3)
    assert nccl_comm.allgather_object({"a": 1}) == [{"a": 1}]
    assert nccl_comm.bcast_object("x") == "x"
    with pytest.raises(KernelError, match="device \\(cupy\\) arrays"):
        nccl_comm.start_allreduce_mean(np.zeros(3, np.float32))


@pytest.mark.gpu
def test_world_size_1_through_the_reducer_matches_local(nccl_comm):
    from dist_caffe import TRAIN, Net
    from dist_caffe.parallel.reducer import Reducer
    from dist_caffe.proto import caffe_pb2, parse_text

    from .jobs import NET
    backend.set_mode_gpu()
    try:
        grads = []
        for comm in (LocalCommunicator(), nccl_comm):
            net = Net(parse_text(NET.format(b=3), caffe_pb2.NetParameter), TRAIN)
            net.blobs["data"].data[...] = backend.to_gpu(
                np.random.default_rng(0).standard_normal(net.blobs["data"].shape))
            net.blobs["label"].data[...] = backend.to_gpu(np.array([0, 3, 4]))
            reducer = Reducer(net, comm, bucket_mb=0.002, first_bucket_mb=0.0005)
            assert len(reducer.buckets) > 1  # several buckets started from backward hooks
            net.clear_param_diffs()
            net.forward_backward()
            reducer.wait()
            grads.append(backend.to_cpu(net.param_diff).copy())
        np.testing.assert_array_equal(grads[1], grads[0])
        assert np.abs(grads[1]).sum() > 0
    finally:
        backend.set_mode_cpu()
