"""What runs in the decode worker processes, and how the pool of them is started.

Workers are forked from a forkserver (never from the training process, which has threads
and may hold a CUDA context), preload this module, numpy and Pillow, and ignore SIGINT so
Ctrl-C reaches only the training process, which then shuts them down.
"""
import multiprocessing
import signal
from multiprocessing import shared_memory

import numpy as np

from ..errors import DataError
from .transformer import crop_mirror

_attached = {}  # in a worker: shared-memory blocks by name


def _rows(dest):
    """The (N, C, h, w) array a chunk writes into: given, or a shared-memory block by name."""
    if isinstance(dest, np.ndarray):
        return dest
    name, shape, dtype = dest
    if name not in _attached:
        _attached[name] = shared_memory.SharedMemory(name=name)
    return np.ndarray(shape, dtype, buffer=_attached[name].buf)


def decode_chunk(decoder, spec, tasks, dest):
    """Decode, crop and mirror each (row, key, payload, u_h, u_w, mirror) into dest[row].

    Returns per task (label, h_off, w_off, source shape, window shape) -- a window that does
    not fit dest is not written -- or the DataError it raised (one bad record spares the rest).
    """
    rows, out = _rows(dest), []
    for row, key, payload, u_h, u_w, mirror in tasks:
        try:
            image, label = decoder(key, payload)
            window, h_off, w_off = crop_mirror(image, spec, u_h, u_w, mirror)
            if not np.can_cast(window.dtype, rows.dtype):
                raise DataError(f"the image is {window.dtype} but this layer's images are "
                                f"{rows.dtype} (from the first record); write all records alike")
            if window.shape == rows.shape[1:]:
                rows[row] = window
            out.append((label, h_off, w_off, image.shape, window.shape))
        except DataError as e:
            out.append(e)
    return out


def _ignore_sigint():
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def start_pool(workers):
    """A pool of `workers` decode processes."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["dist_caffe.data.workers", "dist_caffe.data.datum"])
    return ctx.Pool(workers, initializer=_ignore_sigint)
