"""Fast numpy <-> repeated float fields of BlobProto (data, diff, double_data, double_diff).

Filling or reading a repeated field element by element costs seconds for a 25M-parameter
net; here protobuf itself parses and writes the packed bytes: we hand it a one-field
message in wire form (tag, length, raw little-endian values) and, to read, let it
serialize a message that holds only that field, whose last bytes are then the values.
"""
import numpy as np

_FIELDS = {"data": (5, "<f4"), "diff": (6, "<f4"), "double_data": (8, "<f8"),
           "double_diff": (9, "<f8")}


def _varint(n):
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def set_values(proto, name, array):
    """Append `array`'s values to the packed field `name` of a BlobProto."""
    number, dtype = _FIELDS[name]
    raw = np.ascontiguousarray(array, dtype=dtype).tobytes()
    proto.MergeFromString(_varint(number << 3 | 2) + _varint(len(raw)) + raw)


def get_values(proto, name):
    """The values of field `name` as a numpy array (float32 or float64)."""
    number, dtype = _FIELDS[name]
    count = len(getattr(proto, name))
    if count == 0:
        return np.zeros(0, dtype)
    only = type(proto)()
    getattr(only, name).MergeFrom(getattr(proto, name))
    raw = only.SerializeToString()
    return np.frombuffer(raw, dtype, count, len(raw) - count * np.dtype(dtype).itemsize).copy()
