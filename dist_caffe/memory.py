"""SyncedMemory: one flat array that lives on the host, the device, or both.

As in Caffe, allocation is lazy and a copy happens only when the *head* moves:
reading the GPU side of memory whose head is at the CPU copies it once and marks it
SYNCED; taking a mutable pointer on one side makes that side the head.
"""
import numpy as np

from . import backend

UNINITIALIZED, HEAD_AT_CPU, HEAD_AT_GPU, SYNCED = "UNINITIALIZED", "HEAD_AT_CPU", "HEAD_AT_GPU", "SYNCED"


class SyncedMemory:
    """`count` elements of `dtype`, allocated zero-filled on first use."""

    def __init__(self, count: int, dtype=np.float32):
        self.count, self.dtype = int(count), np.dtype(dtype)
        self._cpu = None
        self._gpu = None
        self.head = UNINITIALIZED

    # Reading sides: bring that side up to date, keep the head where it is.
    def cpu_data(self):
        self._to_cpu()
        return self._cpu

    def gpu_data(self):
        self._to_gpu()
        return self._gpu

    # Mutable sides: bring up to date, then that side is the only valid copy.
    def mutable_cpu_data(self):
        self._to_cpu()
        self.head = HEAD_AT_CPU
        return self._cpu

    def mutable_gpu_data(self):
        self._to_gpu()
        self.head = HEAD_AT_GPU
        return self._gpu

    def set_cpu_data(self, array):
        """Use `array` (flat, `count` long) as the host storage, e.g. a view into a flat buffer."""
        self._check(array)
        self._cpu, self.head = array, HEAD_AT_CPU

    def set_gpu_data(self, array):
        self._check(array)
        self._gpu, self.head = array, HEAD_AT_GPU

    def _check(self, array):
        if array.ndim != 1 or array.size != self.count or array.dtype != self.dtype:
            raise ValueError(f"SyncedMemory of {self.count} {self.dtype} cannot use "
                             f"an array of shape {array.shape} and dtype {array.dtype}")

    def _to_cpu(self):
        if self._cpu is None:
            self._cpu = np.zeros(self.count, self.dtype)
        if self.head == UNINITIALIZED:
            self.head = HEAD_AT_CPU
        elif self.head == HEAD_AT_GPU:
            backend.copy_into(self._cpu, self._gpu)
            self.head = SYNCED

    def _to_gpu(self):
        cp = backend.require_cupy()
        if self._gpu is None:
            self._gpu = cp.zeros(self.count, self.dtype)
        if self.head == UNINITIALIZED:
            self.head = HEAD_AT_GPU
        elif self.head == HEAD_AT_CPU:
            backend.copy_into(self._gpu, self._cpu)
            self.head = SYNCED
