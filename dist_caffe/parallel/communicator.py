"""The one small interface every engine implements, and the single-process one."""
from .. import backend


def scale_by_inverse(buf, size):
    """buf *= 1/size in buf's dtype: the mean after a sum all-reduce. A multiply, as Caffe's
    multi-GPU scaling is (caffe_gpu_scal), and several times cheaper than a divide."""
    backend.get_array_module(buf).multiply(buf, buf.dtype.type(1.0 / size), out=buf)


class Handle:
    """An in-flight collective; `wait()` blocks until its buffer holds the result."""

    def wait(self):
        pass


class Communicator:
    """All-reduce, broadcast, barrier and small-object gathers among `size` replicas.

    Buffers are flat numpy (or cupy) arrays reduced in place. `rank`/`size` span the job;
    `intra_rank`/`intra_size` span this node (the device index), `inter_rank` the node.
    """

    name = "?"
    rank, size, intra_rank, intra_size, inter_rank = 0, 1, 0, 1, 0

    def allreduce_mean(self, buf):
        self.start_allreduce_mean(buf).wait()

    def start_allreduce_mean(self, buf, what="all-reduce") -> Handle:
        raise NotImplementedError

    def start_allreduce_sum(self, buf, what="all-reduce") -> Handle:
        """The sum, not divided by size: the gradient reducer's path, the solver folding
        1/size into the scale its update applies anyway (no separate pass over the buffer)."""
        raise NotImplementedError

    def allreduce_sum(self, buf):
        raise NotImplementedError

    def broadcast(self, buf, root=0):
        raise NotImplementedError

    def barrier(self):
        raise NotImplementedError

    def allgather_object(self, obj) -> list:
        raise NotImplementedError

    def bcast_object(self, obj, root=0):
        raise NotImplementedError

    def close(self):
        pass


class LocalCommunicator(Communicator):
    """World size 1: every collective is the identity."""

    name = "local"

    def start_allreduce_mean(self, buf, what="all-reduce"):
        return Handle()

    def start_allreduce_sum(self, buf, what="all-reduce"):
        return Handle()

    def allreduce_sum(self, buf):
        pass

    def broadcast(self, buf, root=0):
        pass

    def barrier(self):
        pass

    def allgather_object(self, obj):
        return [obj]

    def bcast_object(self, obj, root=0):
        return obj
