"""The one small interface every engine implements, and the single-process one."""


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

    def start_allreduce_mean(self, buf) -> Handle:
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

    def start_allreduce_mean(self, buf):
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
