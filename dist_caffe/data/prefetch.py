"""Background prefetch: ready batches wait in a queue before the net asks for them.

One thread per data layer reads records, draws the random crop/mirror choices and fills
batches; as in Caffe, a fixed set of `depth + 1` batch buffers cycles between a free queue
and a full one, so memory is bounded and nothing is allocated per batch. `get()` hands out
the next full batch (valid until the following `get()`, which recycles it) and measures
how long the consumer waited for it.

Raw records are decoded in that thread (numpy releases the GIL for the copies). Encoded
images go to a pool of `workers` processes: each batch is cut into one chunk per worker, two
batches in flight, and workers write their uint8 windows straight into a shared-memory slot
of the batch (no pixels are pickled); the thread then does the float arithmetic for the
whole batch into a free buffer.

Shutdown: `close()` (or the handle being garbage-collected, or interpreter exit) stops the
thread, terminates and joins the pool and unlinks the shared memory; no worker outlives it.
"""
import collections
import logging
import queue
import threading
import time
import weakref
from multiprocessing import shared_memory

import numpy as np

from ..errors import DataError
from .workers import decode_chunk, start_pool

log = logging.getLogger("dist_caffe.data")
Batch = collections.namedtuple("Batch", "data labels keys")
MAX_SKIPS_IN_A_ROW = 1000
class _Done:
    def __init__(self, value):
        self.value = value

    def get(self):
        return self.value


class _Producer:
    """The thread's state; holds no reference to the Prefetcher handle (so it can be collected)."""

    def __init__(self, next_items, decoder, transformer, shape, dtype, where, workers,
                 skip_corrupt):
        self.next_items, self.decoder, self.t, self.where = next_items, decoder, transformer, where
        self.shape, self.skip_corrupt, self.corrupt = tuple(shape), skip_corrupt, 0
        self.workers, self.pool, self.shms = workers, None, []
        self.stop = threading.Event()
        if workers:
            self.pool = start_pool(workers)
            nbytes = int(np.prod(self.shape)) * np.dtype(dtype).itemsize
            self.shms = [shared_memory.SharedMemory(create=True, size=nbytes) for _ in range(2)]
            self.slots = [np.ndarray(self.shape, dtype, buffer=s.buf) for s in self.shms]
        else:
            self.slots = [np.zeros(self.shape, dtype)]
        self.submitted = 0

    def submit(self):
        """Start decoding the next batch into the next slot: (tasks, slot, handles)."""
        slot = self.submitted % len(self.slots)
        self.submitted += 1
        items = self.next_items(self.shape[0])
        tasks = [(row, k, p, uh, uw, m) for row, ((k, p), uh, uw, m)
                 in enumerate(zip(items, *self.t.draw(len(items))))]
        if self.pool is None:
            return tasks, slot, [_Done(decode_chunk(self.decoder, self.t.spec, tasks,
                                                    self.slots[slot]))]
        dest = (self.shms[slot].name, self.shape, self.slots[slot].dtype.str)
        return tasks, slot, [self.pool.apply_async(decode_chunk, (self.decoder, self.t.spec,
                                                                  [tasks[i] for i in c], dest))
                             for c in np.array_split(np.arange(len(tasks)), self.workers)
                             if len(c)]

    def check(self, task, result):
        """True if the result is usable; else DataError (raised, or counted when skipping)."""
        try:
            if isinstance(result, DataError):
                where = self.where(task[1])
                raise result if where in str(result) else DataError(f"{where}: {result}")
            _, _, _, source_shape, window_shape = result
            self.t.check(source_shape, self.where(task[1]))
            if window_shape != self.shape[1:]:
                fix = ("decode all alike with transform_param.force_color (or force_gray)"
                       if window_shape[0] != self.shape[1] else "resize all images alike "
                       "(convert_imageset -resize_height/-resize_width) or set crop_size")
                raise DataError(f"{self.where(task[1])}: image is {source_shape} (C, H, W), "
                                f"giving {window_shape} after cropping, but this layer's images "
                                f"are {self.shape[1:]} (from the first record); {fix}")
            return True
        except DataError as e:
            if not self.skip_corrupt:
                raise
            self.corrupt += 1
            if self.corrupt <= 10 or self.corrupt % 1000 == 0:  # the first ones, then a count
                log.warning("skipping corrupt record (%d so far): %s", self.corrupt, e)
            return False

    def collect(self, pending, batch):
        """Wait for a submitted batch and finish it into the free Batch `batch`."""
        tasks, slot, handles = pending
        results = [r for h in handles for r in h.get()]
        rows = self.slots[slot]
        for i, (task, result) in enumerate(zip(tasks, results)):
            tries = 0
            while not self.check(task, result):  # a replacement, decoded into the same row
                tries += 1
                if tries > MAX_SKIPS_IN_A_ROW:
                    raise DataError(f"{self.where(task[1])}: {tries} corrupt records in a row; "
                                    "the source is unusable (see the warnings above)")
                (key, payload), = self.next_items(1)
                task = (i, key, payload) + tuple(d[0] for d in self.t.draw(1))
                result = decode_chunk(self.decoder, self.t.spec, [task], rows)[0]
            tasks[i], results[i] = task, result
        self.t.finish(rows, [r[1:3] for r in results], [t[5] for t in tasks], out=batch.data)
        batch.labels[...] = [r[0] for r in results]
        return batch._replace(keys=[t[1] for t in tasks])

    def run(self, free, full):
        try:
            pending = collections.deque()
            while not self.stop.is_set():
                while len(pending) < len(self.slots):
                    pending.append(self.submit())
                batch = self.take(free)
                if batch is None:
                    break
                full.put(self.collect(pending.popleft(), batch))
        except BaseException as e:  # handed to the consumer, which raises it
            full.put(e)

    def take(self, free):
        while not self.stop.is_set():
            try:
                return free.get(timeout=0.1)
            except queue.Empty:
                pass
        return None


def _stop_pool(pool, timeout=10.0):
    """End the decode workers without ever hanging. The few queued chunks are let finish
    (close + join); CPython's Pool.terminate alone can deadlock when its task thread is
    blocked writing to a worker's pipe. Workers still there after `timeout` are killed."""
    pool.close()
    _bounded(pool.join, timeout)
    if any(p.is_alive() for p in pool._pool):
        for p in pool._pool:
            p.kill()
        _bounded(pool.terminate, timeout)


def _bounded(fn, timeout):
    """Run fn in a daemon thread and wait for it at most `timeout` seconds."""
    t = threading.Thread(target=fn, daemon=True)
    t.start()
    t.join(timeout)


def _shutdown(producer, thread):
    producer.stop.set()
    if thread is not threading.current_thread():
        thread.join(timeout=10)
    if producer.pool is not None:
        _stop_pool(producer.pool)
    producer.slots = []
    for shm in producer.shms:
        try:
            shm.close()
        except BufferError:  # a view is still alive somewhere; the mapping goes at exit
            pass
        shm.unlink()
    producer.shms = []


class Prefetcher:
    """Batches of (data float32 N x C x h x w, labels float32 N, keys) from a background thread.

    next_items(k) -> k (key, payload) pairs; decoder(key, payload) -> (CHW image, label),
    picklable when workers > 0; shape is (N, C, h, w) after the transformer; dtype that of
    the decoded images (uint8, or float32 for float_data records); where(key) names a
    record in errors.
    """

    def __init__(self, next_items, decoder, transformer, shape, where, dtype=np.uint8,
                 depth=4, workers=0, skip_corrupt=False, name="prefetch"):
        self.free, self.full = queue.Queue(), queue.Queue()
        for _ in range(max(1, depth) + 1):
            self.free.put(Batch(np.zeros(shape, np.float32), np.zeros(shape[0], np.float32), []))
        self._producer = _Producer(next_items, decoder, transformer, shape, dtype, where,
                                   workers, skip_corrupt)
        self.pool = self._producer.pool
        self._thread = threading.Thread(target=self._producer.run, args=(self.free, self.full),
                                        name=name, daemon=True)
        self._finalizer = weakref.finalize(self, _shutdown, self._producer, self._thread)
        self._held = None
        self.batches, self.wait_s, self.max_wait_s, self.last_wait_s = 0, 0.0, 0.0, 0.0
        self._thread.start()

    @property
    def corrupt(self):
        """Records skipped as corrupt so far (with skip_corrupt)."""
        return self._producer.corrupt

    def get(self) -> Batch:
        """The next ready batch (valid until the next get); the wait is added to the stats."""
        if self._held is not None:
            self.free.put(self._held)
            self._held = None
        start = time.perf_counter()
        while True:
            try:
                item = self.full.get(timeout=1.0)
                break
            except queue.Empty:
                if not self._thread.is_alive():
                    raise DataError("the prefetch thread has stopped (closed?)") from None
        self.last_wait_s = time.perf_counter() - start
        self.batches += 1
        self.wait_s += self.last_wait_s
        self.max_wait_s = max(self.max_wait_s, self.last_wait_s)
        if isinstance(item, BaseException):
            self.close()
            raise item
        self._held = item
        return item

    def stats(self) -> dict:
        return {"batches": self.batches, "wait_s": self.wait_s, "max_wait_s": self.max_wait_s,
                "mean_wait_s": self.wait_s / max(1, self.batches), "corrupt": self.corrupt}

    def close(self):
        """Stop the thread, terminate and join the workers, free shared memory (idempotent)."""
        self._finalizer()
