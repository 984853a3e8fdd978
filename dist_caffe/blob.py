"""Blob: an N-D array of data and an array of the same shape of gradients (diff)."""
import numpy as np

from . import backend
from .memory import SyncedMemory
from .proto import packed

MAX_BLOB_AXES = 32


def legacy_shape(proto):
    """The shape a BlobProto describes: `shape` when set, else its legacy num/channels/height/width."""
    if proto.HasField("shape"):
        return tuple(int(d) for d in proto.shape.dim)
    if any(proto.HasField(f) for f in ("num", "channels", "height", "width")):
        return (proto.num, proto.channels, proto.height, proto.width)
    return ()


def shape_fits(shape, proto_shape):
    """Caffe's ShapeEquals: equal, or a legacy 4-D shape whose extra leading axes are 1."""
    shape, proto_shape = tuple(shape), tuple(proto_shape)
    if shape == proto_shape:
        return True
    if len(proto_shape) == 4 and len(shape) <= 4:
        pad = 4 - len(shape)
        return all(d == 1 for d in proto_shape[:pad]) and proto_shape[pad:] == shape
    return False


class Blob:
    """`data` and `diff` arrays of one shape, each backed by a lazily synced SyncedMemory.

    `data`/`diff` return the array of the blob's device (numpy on CPU, cupy on GPU), shaped;
    writing into them (``blob.data[...] = x``) writes the blob. Reshaping to a smaller count
    keeps the allocation (Caffe's capacity rule); a larger one reallocates.
    """

    def __init__(self, shape=(), dtype=np.float32, gpu=None):
        self.dtype = np.dtype(dtype)
        self.gpu = backend.mode() == backend.GPU if gpu is None else gpu
        self.shape, self.count, self.capacity = (), 1, 0
        self._data = self._diff = None
        self.reshape(shape)

    # -- shape ---------------------------------------------------------------
    def reshape(self, *shape):
        if len(shape) == 1 and not np.isscalar(shape[0]):
            shape = shape[0]
        shape = tuple(int(d) for d in shape)
        if len(shape) > MAX_BLOB_AXES or any(d < 0 for d in shape):
            raise ValueError(f"invalid blob shape {shape}")
        self.shape, self.count = shape, int(np.prod(shape, dtype=np.int64))
        if self.count > self.capacity or self._data is None:
            self.capacity = self.count
            self._data = SyncedMemory(self.count, self.dtype)
            self._diff = SyncedMemory(self.count, self.dtype)
        return self

    def reshape_like(self, other):
        return self.reshape(other.shape)

    @property
    def num_axes(self):
        return len(self.shape)

    def canonical_axis_index(self, axis):
        """Caffe's CanonicalAxisIndex: negative axes count from the end."""
        n = len(self.shape)
        if not -n <= axis < max(n, 1):
            raise IndexError(f"axis {axis} out of range for a {n}-D blob of shape {self.shape}")
        return axis + n if axis < 0 else axis

    def count_range(self, start=0, end=None):
        return int(np.prod(self.shape[start:end], dtype=np.int64))

    def _legacy(self, i):
        # Caffe's LegacyShape: axes past the blob's last count as 1, so (500, 800) is 500x800x1x1.
        if len(self.shape) > 4:
            raise ValueError(f"legacy accessor on a {len(self.shape)}-D blob {self.shape}")
        return self.shape[i] if i < len(self.shape) else 1

    num = property(lambda self: self._legacy(0))
    channels = property(lambda self: self._legacy(1))
    height = property(lambda self: self._legacy(2))
    width = property(lambda self: self._legacy(3))

    # -- arrays --------------------------------------------------------------
    def _view(self, mem, mutable=True):
        if self.gpu:
            flat = mem.mutable_gpu_data() if mutable else mem.gpu_data()
        else:
            flat = mem.mutable_cpu_data() if mutable else mem.cpu_data()
        return flat[:self.count].reshape(self.shape)

    @property
    def data(self):
        return self._view(self._data)

    @data.setter
    def data(self, value):
        backend.copy_into(self.data, value)

    @property
    def diff(self):
        return self._view(self._diff)

    @diff.setter
    def diff(self, value):
        backend.copy_into(self.diff, value)

    def cpu_data(self):
        return self._data.cpu_data()[:self.count].reshape(self.shape)

    def cpu_diff(self):
        return self._diff.cpu_data()[:self.count].reshape(self.shape)

    def gpu_data(self):
        return self._data.gpu_data()[:self.count].reshape(self.shape)

    def gpu_diff(self):
        return self._diff.gpu_data()[:self.count].reshape(self.shape)

    def mutable_cpu_data(self):
        return self._data.mutable_cpu_data()[:self.count].reshape(self.shape)

    def mutable_cpu_diff(self):
        return self._diff.mutable_cpu_data()[:self.count].reshape(self.shape)

    def mutable_gpu_data(self):
        return self._data.mutable_gpu_data()[:self.count].reshape(self.shape)

    def mutable_gpu_diff(self):
        return self._diff.mutable_gpu_data()[:self.count].reshape(self.shape)

    @property
    def data_memory(self):
        return self._data

    @property
    def diff_memory(self):
        return self._diff

    def share_data(self, other):
        """Use other's data storage (counts must match), as Caffe's ShareData."""
        if other.count != self.count:
            raise ValueError(f"share_data: count {other.count} != {self.count}")
        self._data, self.capacity = other._data, max(self.capacity, other.count)

    def share_diff(self, other):
        if other.count != self.count:
            raise ValueError(f"share_diff: count {other.count} != {self.count}")
        self._diff = other._diff

    def set_data_storage(self, flat):
        """Back `data` with a flat array (e.g. a view into a net's flat parameter buffer)."""
        self._data = SyncedMemory(self.count, self.dtype)
        (self._data.set_gpu_data if backend.is_gpu_array(flat) else self._data.set_cpu_data)(flat)

    def set_diff_storage(self, flat):
        self._diff = SyncedMemory(self.count, self.dtype)
        (self._diff.set_gpu_data if backend.is_gpu_array(flat) else self._diff.set_cpu_data)(flat)

    # -- BlobProto -----------------------------------------------------------
    def from_proto(self, proto, reshape=True):
        """Load a BlobProto (shape or legacy 4-D fields; float or double values)."""
        shape = legacy_shape(proto)
        if reshape:
            self.reshape(shape)
        elif not shape_fits(self.shape, shape):
            raise ValueError(f"shape mismatch: blob {self.shape}, proto {shape}")
        for field in ("data", "diff"):
            name = "double_" + field if len(getattr(proto, "double_" + field)) else field
            if len(getattr(proto, name)) == 0:
                continue
            values = packed.get_values(proto, name)
            if values.size != self.count:
                raise ValueError(f"BlobProto has {values.size} {field} values for shape {shape} "
                                 f"({self.count} expected): the file is truncated or corrupt")
            setattr(self, field, values.astype(self.dtype, copy=False).reshape(self.shape))
        return self

    def to_proto(self, proto=None, write_diff=False):
        """Write into (or return a new) BlobProto; float64 blobs use double_data as Caffe does."""
        if proto is None:
            from .proto import caffe_pb2
            proto = caffe_pb2.BlobProto()
        proto.Clear()
        proto.shape.dim.extend(self.shape)
        prefix = "double_" if self.dtype == np.float64 else ""
        packed.set_values(proto, prefix + "data", backend.to_cpu(self.data).ravel())
        if write_diff:
            packed.set_values(proto, prefix + "diff", backend.to_cpu(self.diff).ravel())
        return proto

    def __repr__(self):
        return f"Blob(shape={self.shape}, dtype={self.dtype.name})"
