"""The `nccl` communicator: cupy.cuda.nccl all-reduce of device buffers on a side stream.

Set-up: rank 0 makes the NCCL unique id and the *bootstrap* (a host-side channel: our `mpi`
communicator by default under mpirun, any Communicator, an mpi4py comm, or a Ray-provided
`bcast(obj, root)` function) hands it to everyone; each rank then joins on the GPU
numbered by its node-local rank.

Ordering (why the events): gradients are written by kernels on the compute stream (cupy's
current stream). A bucket's all-reduce runs on our own non-blocking stream, so it overlaps
the rest of backward, but it must not start before those kernels finished: we record an
event on the compute stream and make the side stream wait on it. The mean is the sum divided
by `size` on the side stream too (the mpi oracle's arithmetic). `handle.wait()` makes the
compute stream wait on an event recorded after both, without blocking the host: the solver's
kernels, queued next on the compute stream, see the reduced gradients.
"""
import socket

from .. import backend
from ..errors import KernelError
from .communicator import Communicator, Handle, scale_by_inverse


def nccl_module():
    """cupy.cuda.nccl, or a KernelError saying what to install."""
    backend.require_cupy()
    try:
        from cupy.cuda import nccl
    except ImportError as e:
        nccl, reason = None, str(e)
    else:
        reason = "cupy reports NCCL unavailable"
    if nccl is None or not getattr(nccl, "available", True):
        raise KernelError(f"the 'nccl' communicator needs NCCL for CuPy ({reason}): pip install "
                          "'dist_caffe[gpu]' (it brings nvidia-nccl-cu12), or use --comm mpi")
    return nccl


class CallableBootstrap(Communicator):
    """Small-object collectives built from one `bcast(obj, root) -> obj` function (e.g. one
    Ray provides): a gather is `size` broadcasts, one from each rank. Enough for set-up."""

    name = "bootstrap"

    def __init__(self, bcast, rank, size):
        if rank is None or size is None:
            raise KernelError("a bootstrap function needs this process's rank and the world size: "
                              "NcclCommunicator(bcast_fn, rank=r, size=n)")
        self._bcast, self.rank, self.size = bcast, int(rank), int(size)
        hosts = self.allgather_object(socket.gethostname())
        me = hosts[self.rank]
        self.intra_rank, self.intra_size = hosts[:self.rank].count(me), hosts.count(me)
        self.inter_rank = list(dict.fromkeys(hosts)).index(me)

    def bcast_object(self, obj, root=0):
        return self._bcast(obj, root)

    def allgather_object(self, obj):
        return [self._bcast(obj if r == self.rank else None, r) for r in range(self.size)]

    def barrier(self):
        self.allgather_object(None)


def bootstrap_of(bootstrap, rank=None, size=None, timeout_s=None):
    """(host-side Communicator, whether we made it) for the ways a bootstrap can be given."""
    if isinstance(bootstrap, Communicator):
        return bootstrap, False
    from .mpi import DEFAULT_TIMEOUT_S, MpiCommunicator
    timeout_s = DEFAULT_TIMEOUT_S if timeout_s is None else timeout_s
    if bootstrap is None or hasattr(bootstrap, "Get_rank"):  # COMM_WORLD, or an mpi4py comm
        return MpiCommunicator(bootstrap, timeout_s=timeout_s), True
    if callable(bootstrap):
        return CallableBootstrap(bootstrap, rank, size), True
    raise KernelError(f"NcclCommunicator: cannot bootstrap from {type(bootstrap).__name__}; give a "
                      "Communicator, an mpi4py communicator, or a bcast(obj, root) function")


class NcclHandle(Handle):
    """An all-reduce queued on the side stream; `done` is recorded after it (and the mean)."""

    def __init__(self, cp, done, buf):
        self.cp, self.done, self.buf = cp, done, buf  # buf: kept alive until waited

    def test(self) -> bool:
        return self.done.done

    def wait(self):
        # Orders the compute stream after the reduction; the host does not block.
        self.cp.cuda.get_current_stream().wait_event(self.done)
        self.buf = None


class NcclCommunicator(Communicator):
    """NCCL collectives among `size` GPU replicas (one GPU per process).

    bootstrap: None (MPI's COMM_WORLD through our `mpi` communicator), a Communicator, an
    mpi4py comm, or a Ray `bcast(obj, root)` function with rank= and size=. device: the GPU
    to join on (default: intra_rank, modulo the visible devices).
    """

    name = "nccl"

    def __init__(self, bootstrap=None, rank=None, size=None, device=None, timeout_s=None):
        self.cp = cp = backend.require_cupy()
        self.nccl = nccl = nccl_module()
        self.boot, self._own_boot = bootstrap_of(bootstrap, rank, size, timeout_s)
        for attr in ("rank", "size", "intra_rank", "intra_size", "inter_rank"):
            setattr(self, attr, getattr(self.boot, attr))
        self.peers = getattr(self.boot, "peers", None)
        count = cp.cuda.runtime.getDeviceCount()
        self.device = (self.intra_rank if device is None else int(device)) % count
        backend.set_device(self.device)  # NCCL joins on the current device
        uid = self.boot.bcast_object(nccl.get_unique_id() if self.rank == 0 else None, root=0)
        self.comm = nccl.NcclCommunicator(self.size, uid, self.rank)
        self.stream = cp.cuda.Stream(non_blocking=True)
        self._one = cp.zeros(1, cp.float32)  # the barrier's all-reduce
        self._types = {"float16": nccl.NCCL_FLOAT16, "float32": nccl.NCCL_FLOAT32,
                       "float64": nccl.NCCL_FLOAT64, "int32": nccl.NCCL_INT32,
                       "int64": nccl.NCCL_INT64, "uint8": nccl.NCCL_UINT8, "int8": nccl.NCCL_INT8}

    def _nccl_type(self, buf):
        if not backend.is_gpu_array(buf) or not buf.flags.c_contiguous:
            raise KernelError("the 'nccl' communicator reduces contiguous device (cupy) arrays, got "
                              f"{type(buf).__name__}; train on the GPU (-gpu) or use --comm mpi")
        if buf.dtype.name not in self._types:
            raise KernelError(f"NCCL cannot reduce {buf.dtype} arrays (known: {', '.join(self._types)})")
        return self._types[buf.dtype.name]

    def _after_compute(self):
        """Make the side stream wait for what the compute stream has queued so far."""
        ready = self.cp.cuda.Event(disable_timing=True)
        ready.record(self.cp.cuda.get_current_stream())
        self.stream.wait_event(ready)

    def _done_event(self):
        done = self.cp.cuda.Event(disable_timing=True)
        done.record(self.stream)
        return done

    def _start(self, buf, mean):
        kind = self._nccl_type(buf)
        self._after_compute()
        self.comm.allReduce(buf.data.ptr, buf.data.ptr, buf.size, kind, self.nccl.NCCL_SUM,
                            self.stream.ptr)
        if mean and self.size > 1:
            with self.stream:
                scale_by_inverse(buf, self.size)
        return NcclHandle(self.cp, self._done_event(), buf)

    def _on_device(self, op, buf, *args):
        """Run op on a device copy of a host buffer (test scores, checksums), then copy back."""
        dev = self.cp.asarray(buf)
        op(dev, *args)
        self.cp.cuda.get_current_stream().synchronize()
        buf[...] = dev.get()
        return Handle()

    def start_allreduce_mean(self, buf, what="all-reduce"):
        if not backend.is_gpu_array(buf):
            return self._on_device(self.allreduce_mean, buf)
        return self._start(buf, mean=True)

    def start_allreduce_sum(self, buf, what="all-reduce"):
        if not backend.is_gpu_array(buf):
            return self._on_device(self.allreduce_sum, buf)
        return self._start(buf, mean=False)

    def allreduce_sum(self, buf):
        if not backend.is_gpu_array(buf):
            return self._on_device(self.allreduce_sum, buf)
        self._start(buf, mean=False).wait()

    def broadcast(self, buf, root=0):
        if not backend.is_gpu_array(buf):
            return self._on_device(self.broadcast, buf, root)
        kind = self._nccl_type(buf)
        self._after_compute()
        self.comm.bcast(buf.data.ptr, buf.size, kind, int(root), self.stream.ptr)
        NcclHandle(self.cp, self._done_event(), buf).wait()

    def barrier(self):
        self._after_compute()
        self.comm.allReduce(self._one.data.ptr, self._one.data.ptr, 1, self.nccl.NCCL_FLOAT32,
                            self.nccl.NCCL_SUM, self.stream.ptr)
        self.stream.synchronize()

    def allgather_object(self, obj):
        return self.boot.allgather_object(obj)

    def bcast_object(self, obj, root=0):
        return self.boot.bcast_object(obj, root)

    def close(self):
        if self.comm is not None:
            self.stream.synchronize()
            self.comm.destroy()
            self.comm = None
        if self._own_boot:
            self.boot.close()
