"""Background prefetch: ready batches wait in a bounded queue before the net asks for them.

One thread per data layer reads records, draws the random crop/mirror choices and puts
finished batches into a queue of `depth` slots (Caffe's data_param.prefetch). Raw records are
decoded in that thread (numpy releases the GIL for the copies); encoded images go to a pool of
`workers` processes, each batch cut into one chunk per worker, two batches in flight, so the
pool never idles while a batch is finished. `get()` measures how long the consumer waited.

Shutdown: `close()` (or the handle being garbage-collected, or interpreter exit) stops the
thread and terminates and joins the pool; no worker outlives it. Workers are forked from a
forkserver, never from this (threaded, maybe CUDA-holding) process, and ignore SIGINT.
"""
import collections
import logging
import multiprocessing
import queue
import signal
import threading
import time
import weakref

import numpy as np

from ..errors import DataError
from .transformer import crop_mirror

log = logging.getLogger("dist_caffe.data")
Batch = collections.namedtuple("Batch", "data labels keys")


def decode_chunk(decoder, spec, tasks):
    """Worker body: each (key, payload, u_h, u_w, mirror) -> (window, label, h_off, w_off,
    source shape), or the DataError it raised (so one bad record does not lose the chunk)."""
    out = []
    for key, payload, u_h, u_w, mirror in tasks:
        try:
            image, label = decoder(key, payload)
            window, h_off, w_off = crop_mirror(image, spec, u_h, u_w, mirror)
            out.append((np.ascontiguousarray(window), label, h_off, w_off, image.shape))
        except DataError as e:
            out.append(e)
    return out


def _ignore_sigint():
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def start_pool(workers):
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["dist_caffe.data.prefetch", "dist_caffe.data.datum"])
    return ctx.Pool(workers, initializer=_ignore_sigint)


class _Done:
    def __init__(self, value):
        self.value = value

    def get(self):
        return self.value


class _Producer:
    """The thread's state; holds no reference to the Prefetcher handle (so it can be collected)."""

    def __init__(self, next_items, decoder, transformer, batch_size, shape, where, pool,
                 workers, skip_corrupt, stop):
        self.next_items, self.decoder, self.t = next_items, decoder, transformer
        self.batch_size, self.shape, self.where = batch_size, tuple(shape), where
        self.pool, self.workers = pool, workers
        self.skip_corrupt, self.stop, self.corrupt = skip_corrupt, stop, 0

    def submit(self, n):
        items = self.next_items(n)
        tasks = [(k, p, uh, uw, m) for (k, p), uh, uw, m in zip(items, *self.t.draw(len(items)))]
        if self.pool is None or n == 1:
            return tasks, [_Done(decode_chunk(self.decoder, self.t.spec, tasks))]
        chunks = np.array_split(np.arange(len(tasks)), self.workers)
        return tasks, [self.pool.apply_async(decode_chunk, (self.decoder, self.t.spec,
                                                            [tasks[i] for i in c]))
                       for c in chunks if len(c)]

    def check(self, task, result):
        """The result if usable; DataError (raised, or counted and None when skipping)."""
        try:
            if isinstance(result, DataError):
                raise result
            window, _, _, _, source_shape = result
            self.t.check(source_shape, self.where(task[0]))
            if window.shape != self.shape:
                raise DataError(f"{self.where(task[0])}: image is {source_shape}, giving "
                                f"{window.shape} after cropping, but this layer's images are "
                                f"{self.shape} (from the first record); resize all images alike "
                                "(convert_imageset -resize_height/-resize_width) or set crop_size")
            return result
        except DataError as e:
            if not self.skip_corrupt:
                raise
            self.corrupt += 1
            log.warning("skipping corrupt record (%d so far): %s", self.corrupt, e)
            return None

    def collect(self, pending):
        tasks, handles = pending
        results = [r for h in handles for r in h.get()]
        good = [(t, r) for t, r in zip(tasks, results) if self.check(t, r) is not None]
        while len(good) < len(tasks):  # replacements for skipped records, decoded right here
            (t,), (h,) = self.submit(1)
            r = h.get()[0]
            if self.check(t, r) is not None:
                good.append((t, r))
        data = self.t.finish([r[0] for _, r in good], [r[2:4] for _, r in good],
                             [t[4] for t, _ in good])
        return Batch(data, np.array([r[1] for _, r in good], np.float32),
                     [t[0] for t, _ in good])

    def run(self, out):
        try:
            pending = collections.deque()
            while not self.stop.is_set():
                while len(pending) < (1 if self.pool is None else 2):
                    pending.append(self.submit(self.batch_size))
                self.put(out, self.collect(pending.popleft()))
        except BaseException as e:  # handed to the consumer, which raises it
            self.put(out, e)

    def put(self, out, item):
        while not self.stop.is_set():
            try:
                return out.put(item, timeout=0.1)
            except queue.Full:
                pass


def _shutdown(stop, thread, pool, out):
    stop.set()
    while True:  # unblock a producer waiting on a full queue
        try:
            out.get_nowait()
        except queue.Empty:
            break
    if thread is not threading.current_thread():
        thread.join(timeout=10)
    if pool is not None:
        pool.terminate()
        pool.join()


class Prefetcher:
    """Batches of (data float32 N x C x h x w, labels float32 N, keys) from a background thread.

    next_items(k) -> k (key, payload) pairs; decoder(key, payload) -> (CHW image, label),
    picklable when workers > 0; where(key) names the record in errors.
    """

    def __init__(self, next_items, decoder, transformer, batch_size, shape, where,
                 depth=4, workers=0, skip_corrupt=False, name="prefetch"):
        self.queue = queue.Queue(maxsize=max(1, depth))
        self.pool = start_pool(workers) if workers > 0 else None
        self._stop = threading.Event()
        self._producer = _Producer(next_items, decoder, transformer, batch_size, shape, where,
                                   self.pool, workers, skip_corrupt, self._stop)
        self._thread = threading.Thread(target=self._producer.run, args=(self.queue,),
                                        name=name, daemon=True)
        self._finalizer = weakref.finalize(self, _shutdown, self._stop, self._thread, self.pool,
                                           self.queue)
        self.batches, self.wait_s, self.max_wait_s, self.last_wait_s = 0, 0.0, 0.0, 0.0
        self._thread.start()

    @property
    def corrupt(self):
        """Records skipped as corrupt so far (with skip_corrupt)."""
        return self._producer.corrupt

    def get(self) -> Batch:
        """The next ready batch; the time spent waiting for it is added to the stats."""
        start = time.perf_counter()
        while True:
            try:
                item = self.queue.get(timeout=1.0)
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
        return item

    def stats(self) -> dict:
        return {"batches": self.batches, "wait_s": self.wait_s, "max_wait_s": self.max_wait_s,
                "mean_wait_s": self.wait_s / max(1, self.batches), "corrupt": self.corrupt}

    def close(self):
        """Stop the thread, terminate and join the worker processes (idempotent)."""
        self._finalizer()
