import numpy as np
import pytest

from dist_caffe.blob import Blob, shape_fits
from dist_caffe.memory import HEAD_AT_CPU, UNINITIALIZED, SyncedMemory
from dist_caffe.proto import caffe_pb2


def test_synced_memory_is_lazy_and_tracks_head():
    mem = SyncedMemory(6)
    assert mem.head == UNINITIALIZED and mem._cpu is None
    assert mem.cpu_data().tolist() == [0.0] * 6
    assert mem.head == HEAD_AT_CPU
    flat = np.arange(6, dtype=np.float32)
    mem.set_cpu_data(flat)
    assert mem.mutable_cpu_data() is flat
    with pytest.raises(ValueError):
        mem.set_cpu_data(np.zeros(5, np.float32))


def test_blob_shape_legacy_accessors_and_reshape_capacity():
    b = Blob((2, 3, 4, 5))
    assert (b.num, b.channels, b.height, b.width, b.count) == (2, 3, 4, 5, 120)
    b.data[...] = 1.5
    mem = b.data_memory
    b.reshape(2, 3, 2, 5)           # smaller: keeps the allocation, like Caffe
    assert b.data_memory is mem and b.shape == (2, 3, 2, 5)
    b.reshape((4, 3, 4, 5))         # larger: reallocates
    assert b.data_memory is not mem and b.count == 240
    v = Blob((500, 800))
    assert (v.num, v.channels, v.height, v.width) == (500, 800, 1, 1)
    assert Blob(()).count == 1


def test_blob_share_data_and_diff():
    a, b = Blob((2, 3)), Blob((6,))
    a.data[...] = 7
    b.share_data(a)
    assert (b.data == 7).all()
    b.data[0] = -1
    assert a.data[0, 0] == -1
    b.share_diff(a)
    a.diff[...] = 3
    assert (b.diff == 3).all()
    with pytest.raises(ValueError):
        Blob((5,)).share_data(a)


def test_blob_proto_round_trip_float_and_double():
    a = Blob((2, 3, 4))
    a.data[...] = np.arange(24).reshape(2, 3, 4) * 0.5
    a.diff[...] = -1
    proto = a.to_proto(write_diff=True)
    assert list(proto.shape.dim) == [2, 3, 4]
    b = Blob().from_proto(proto)
    np.testing.assert_array_equal(b.data, a.data)
    np.testing.assert_array_equal(b.diff, a.diff)
    d = Blob((3,), dtype=np.float64)
    d.data[...] = [1e-300, 2.0, 3.0]
    proto = d.to_proto()
    assert len(proto.double_data) == 3 and len(proto.data) == 0
    np.testing.assert_array_equal(Blob((), np.float64).from_proto(proto).data, d.data)


def test_blob_from_legacy_4d_proto():
    proto = caffe_pb2.BlobProto(num=1, channels=1, height=2, width=3)
    proto.data.extend(range(6))
    b = Blob((2, 3))
    b.from_proto(proto, reshape=False)      # 1x1x2x3 fits (2, 3): Caffe's ShapeEquals
    assert b.data.tolist() == [[0, 1, 2], [3, 4, 5]]
    assert Blob().from_proto(proto).shape == (1, 1, 2, 3)
    assert shape_fits((500, 800), (1, 1, 500, 800)) and not shape_fits((500, 800), (1, 2, 500, 800))
    with pytest.raises(ValueError):
        Blob((3, 2)).from_proto(proto, reshape=False)


def test_blob_truncated_proto_is_an_error():
    proto = caffe_pb2.BlobProto()
    proto.shape.dim.extend([2, 3])
    proto.data.extend([1.0, 2.0])
    with pytest.raises(ValueError, match="truncated"):
        Blob().from_proto(proto)
