"""The bucketed gradient reducer: all-reduce overlapping backward.

`Net._flatten` lays every learnable gradient out in one flat buffer, in the order backward
finishes them (last layer first), frozen params last. The reducer cuts
`net.param_diff[:net.learnable_count]` into contiguous buckets in that order — a small first
bucket (so communication starts after the first layers' backward) and ~25 MB after it, as
PyTorch DDP — and remembers, for each bucket, the layer after whose backward all of its
gradients are final (the minimum `ready_layer` over its params; a shared weight is final only
after its *first* user's backward). A `net.after_backward` hook starts each bucket's
asynchronous all-reduce the moment that layer is done; `wait()` (the solver's
`on_gradients_ready`) completes them all before the update. With `mean=False` the buckets
are left holding the sum over replicas: the data-parallel trainer sets the solver's
`grad_scale` to 1/size instead, which its update multiplies in with iter_size and clipping
(on the CPU that saves a pass over every gradient; on the GPU the fused update kernel
applies it).

Why the order is safe: every rank builds the same net, so every rank starts the same buckets
in the same order, which collectives need. Why `poll()` after each layer: MPI progresses a
non-blocking collective only inside MPI calls. `iter_size` micro-batches: gradients
accumulate locally and only the last backward pass starts reductions.
"""
import time
from collections import deque
from dataclasses import dataclass, field

MB = 1 << 20
DEFAULT_BUCKET_MB = 25.0
DEFAULT_FIRST_BUCKET_MB = 1.0


@dataclass
class Bucket:
    """Elements [start, end) of the flat gradient buffer, final after layer `ready_layer`."""
    index: int
    start: int
    end: int
    ready_layer: int
    params: list = field(default_factory=list)  # "layer[j]" of the params it covers

    @property
    def count(self):
        return self.end - self.start


def assign_buckets(layout, learnable_count, itemsize=4, bucket_mb=DEFAULT_BUCKET_MB,
                   first_bucket_mb=DEFAULT_FIRST_BUCKET_MB):
    """Cut the learnable part of a net's flat buffer (`net.param_layout`) into buckets.

    Whole params are packed in layout order while they fit the cap (first_bucket_mb for bucket
    0, bucket_mb after); a param larger than the cap is split into cap-sized pieces, so no
    bucket exceeds its cap and a huge fc layer's reduction is pipelined. Frozen params
    (past `learnable_count`) get no bucket: their gradient is never used.
    """
    if bucket_mb <= 0 or first_bucket_mb <= 0:
        raise ValueError(f"bucket sizes must be > 0 MB (got --bucket-mb {bucket_mb}, "
                         f"first bucket {first_bucket_mb} MB)")
    caps = [max(1, int(first_bucket_mb * MB) // itemsize), max(1, int(bucket_mb * MB) // itemsize)]
    buckets, start, ready, names = [], 0, None, []

    def cap():
        return caps[min(len(buckets), 1)]

    def close(at):
        nonlocal start, ready, names
        buckets.append(Bucket(len(buckets), start, at, ready, names))
        start, ready, names = at, None, []

    pos = 0
    for e in layout:
        if e.offset >= learnable_count:
            break
        if e.offset != pos:
            raise ValueError(f"param layout is not contiguous at {e!r} (expected offset {pos})")
        end, name = e.offset + e.count, f"{e.layer_name}[{e.index}]"
        if pos > start and end - start > cap():  # does not fit beside what the bucket holds
            close(pos)
        while end - start > cap():               # too big even alone: cut it into pieces
            ready = e.ready_layer if ready is None else min(ready, e.ready_layer)
            names.append(name)
            close(start + cap())
        if end > start:
            ready = e.ready_layer if ready is None else min(ready, e.ready_layer)
            names.append(name)
        pos = end
    if pos > start:
        close(pos)
    return buckets


class Reducer:
    """Starts each bucket's all-reduce from the net's after-backward hook; `wait()` ends them.

    `events` records ("backward", layer, t), ("start", bucket, t), ("done", bucket, t) (first
    seen complete) and ("wait", -1, t0, t1) with time.perf_counter() stamps, for tests, the
    overlap benchmark and the timeline. Reads solver `iter_size` (passed in).
    """

    def __init__(self, net, comm, bucket_mb=DEFAULT_BUCKET_MB,
                 first_bucket_mb=DEFAULT_FIRST_BUCKET_MB, iter_size=1, record=True, mean=True):
        self.net, self.comm, self.iter_size, self.record = net, comm, max(1, int(iter_size)), record
        self.mean = mean
        self.buckets = assign_buckets(net.param_layout, net.learnable_count,
                                      net.param_diff.dtype.itemsize, bucket_mb, first_bucket_mb)
        self.events, self.handles = deque(maxlen=200_000), {}  # bounded: long runs record too
        self.iteration = 0
        self.start_iteration()  # _next: first bucket not started; _micro: passes seen
        self._poll = getattr(comm, "poll", None)
        net.after_backward.append(self.after_backward)

    def detach(self):
        if self.after_backward in self.net.after_backward:
            self.net.after_backward.remove(self.after_backward)

    @property
    def armed(self):
        """True during the last micro-batch of an iteration: the one that reduces."""
        return self._micro >= self.iter_size

    def start_iteration(self, micro_batches=None):
        """Reset for a new iteration (Solver.on_iteration_start); optional iter_size override."""
        if micro_batches is not None:
            self.iter_size = max(1, int(micro_batches))
        self._next, self._micro, self._last_layer, self._done = 0, 0, None, set()

    def after_backward(self, layer_index):
        now = time.perf_counter()
        if self._last_layer is None or layer_index >= self._last_layer:
            self._micro += 1    # indices only fall within one backward pass: a new pass began
        self._last_layer = layer_index
        if self.record:
            self.events.append(("backward", layer_index, now))
        if not self.armed:
            return
        buckets = self.buckets
        while self._next < len(buckets) and buckets[self._next].ready_layer >= layer_index:
            self._start(self._next)
        if self._poll is not None and self.handles:
            self._poll()
            if self.record:
                self._note_done()

    def _start(self, k):
        b = self.buckets[k]
        if self.record:
            self.events.append(("start", k, time.perf_counter()))
        start = self.comm.start_allreduce_mean if self.mean else self.comm.start_allreduce_sum
        what = f"all-reduce of gradient bucket {k} (iteration {self.iteration})"
        self.handles[k] = start(self.net.param_diff[b.start:b.end], what=what)
        self._next = k + 1

    def _note_done(self):
        now = time.perf_counter()
        for k, h in self.handles.items():
            test = getattr(h, "test", None)
            if k not in self._done and test is not None and test():
                self._done.add(k)
                self.events.append(("done", k, now))

    def wait(self):
        """Finish every bucket (starting any the hooks did not reach); the mean (or sum) is in
        place."""
        t0 = time.perf_counter()
        while self._next < len(self.buckets):  # backward ran partially, or hooks were bypassed
            self._start(self._next)
        for k in sorted(self.handles):
            self.handles[k].wait()
            if self.record and k not in self._done:
                self.events.append(("done", k, time.perf_counter()))
        if self.record:
            self.events.append(("wait", -1, t0, time.perf_counter()))
        self.handles = {}
        self.iteration += 1
        self.start_iteration()

    # -- reading the record --------------------------------------------------------
    def clear_events(self):
        self.events.clear()

    def trace(self, timeline):
        """Add bucket all-reduce spans and waits to a tools.time.Timeline (Chrome trace)."""
        starts = {}
        for ev in self.events:
            what, k, t = ev[0], ev[1], ev[2]
            if what == "start":
                starts[k] = t
            elif what == "done" and k in starts:
                b = self.buckets[k]
                timeline.add(f"allreduce bucket {k}", "allreduce", starts.pop(k), t,
                             bytes=b.count * self.net.param_diff.dtype.itemsize, params=b.params)
            elif what == "wait":
                timeline.add("wait gradients", "wait", ev[2], ev[3])
