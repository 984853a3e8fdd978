"""pycaffe's caffe.io: BlobProto/Datum <-> numpy, image loading and deploy-time preprocessing.

`Transformer` turns H x W x K float images in [0, 1] (as `load_image` returns them) into the
net's C x H x W input: resize, transpose, channel swap, raw scale, mean, input scale, in that
order; `deprocess` undoes the steps after the resize.
"""
import numpy as np

from .blob import legacy_shape
from .proto import caffe_pb2

# -- BlobProto, BlobProtoVector, Datum -----------------------------------------


def blobproto_to_array(blob, return_diff=False):
    """The data (or diff) of a BlobProto as an array of its shape (legacy 4-D dims honoured)."""
    values = (blob.double_diff or blob.diff) if return_diff else (blob.double_data or blob.data)
    dtype = np.float64 if (blob.double_diff if return_diff else blob.double_data) else np.float32
    return np.asarray(values, dtype=dtype).reshape(legacy_shape(blob))


def array_to_blobproto(arr, diff=None):
    """A BlobProto with arr's shape and values (and diff's, which must have the same shape)."""
    arr = np.asarray(arr)
    blob = caffe_pb2.BlobProto()
    blob.shape.dim.extend(arr.shape)
    blob.data.extend(arr.astype(np.float32).ravel().tolist())
    if diff is not None:
        diff = np.asarray(diff)
        if diff.shape != arr.shape:
            raise ValueError(f"diff shape {diff.shape} differs from data shape {arr.shape}")
        blob.diff.extend(diff.astype(np.float32).ravel().tolist())
    return blob


def arraylist_to_blobprotovector_str(arraylist):
    """Serialized BlobProtoVector of the arrays."""
    vec = caffe_pb2.BlobProtoVector()
    vec.blobs.extend(array_to_blobproto(a) for a in arraylist)
    return vec.SerializeToString()


def blobprotovector_str_to_arraylist(string):
    """The arrays of a serialized BlobProtoVector."""
    vec = caffe_pb2.BlobProtoVector()
    vec.ParseFromString(string)
    return [blobproto_to_array(b) for b in vec.blobs]


def array_to_datum(arr, label=None):
    """A Datum of a C x H x W array: uint8 arrays go to `data` bytes, others to float_data."""
    arr = np.asarray(arr)
    if arr.ndim != 3:
        raise ValueError(f"array_to_datum needs a C x H x W array, got shape {arr.shape}")
    datum = caffe_pb2.Datum(channels=arr.shape[0], height=arr.shape[1], width=arr.shape[2])
    if arr.dtype == np.uint8:
        datum.data = arr.tobytes()
    else:
        datum.float_data.extend(arr.astype(np.float32).ravel().tolist())
    if label is not None:
        datum.label = int(label)
    return datum


def datum_to_array(datum):
    """The C x H x W array of a (not encoded) Datum: uint8 from data, float from float_data."""
    shape = (datum.channels, datum.height, datum.width)
    if datum.encoded:
        raise ValueError("datum_to_array: the Datum holds an encoded image (JPEG/PNG); decode it "
                         "with PIL first")
    if len(datum.data):
        return np.frombuffer(datum.data, dtype=np.uint8).reshape(shape)
    return np.asarray(datum.float_data, dtype=np.float64).reshape(shape)

# -- images --------------------------------------------------------------------


def load_image(filename, color=True):
    """An H x W x 3 (color) or H x W x 1 float32 image in [0, 1], RGB channel order."""
    from PIL import Image
    with Image.open(filename) as im:
        im = im.convert("RGB" if color else "L")
        img = np.asarray(im, dtype=np.float32) / 255.0
    return img if color else img[:, :, np.newaxis]


def _resize_axis(im, axis, size, order):
    """Resample one axis to `size` samples (pixel centres aligned; edges clamped)."""
    n = im.shape[axis]
    if n == size:
        return im
    centres = (np.arange(size) + 0.5) * n / size - 0.5
    if order == 0:
        return np.take(im, np.clip(np.floor(centres + 0.5).astype(int), 0, n - 1), axis=axis)
    lo = np.clip(np.floor(centres).astype(int), 0, n - 1)
    hi = np.clip(lo + 1, 0, n - 1)
    w = np.clip(centres - lo, 0.0, 1.0)
    w = w.reshape([-1 if a == axis else 1 for a in range(im.ndim)])
    return np.take(im, lo, axis=axis) * (1 - w) + np.take(im, hi, axis=axis) * w


def resize_image(im, new_dims, interp_order=1):
    """Resize an H x W x K image to new_dims (h, w): interp_order 0 nearest, 1 bilinear."""
    if interp_order not in (0, 1):
        raise ValueError(f"interp_order {interp_order}: only 0 (nearest) and 1 (bilinear) exist")
    out = np.asarray(im, dtype=np.float32)
    for axis, size in enumerate(new_dims[:2]):
        out = _resize_axis(out, axis, int(size), interp_order)
    return out.astype(np.float32)


def oversample(images, crop_dims):
    """10 crops per H x W x K image: 4 corners and centre, then their mirror images."""
    crop_h, crop_w = (int(d) for d in crop_dims)
    crops = []
    for im in images:
        h, w = im.shape[:2]
        cy, cx = (h - crop_h) // 2, (w - crop_w) // 2
        corners = [(0, 0), (0, w - crop_w), (h - crop_h, 0), (h - crop_h, w - crop_w), (cy, cx)]
        five = [im[y:y + crop_h, x:x + crop_w, :] for y, x in corners]
        crops += five + [c[:, ::-1, :] for c in five]
    return np.asarray(crops, dtype=np.float32)

# -- deploy-time preprocessing -------------------------------------------------


class Transformer:
    """Preprocess images for the inputs of a deployed net (pycaffe's caffe.io.Transformer).

    inputs: {input name: net input shape (N, C, H, W)}, e.g. {n: net.blobs[n].data.shape}.
    """

    def __init__(self, inputs):
        self.inputs = {name: tuple(shape) for name, shape in inputs.items()}
        self.transpose, self.channel_swap, self.raw_scale = {}, {}, {}
        self.mean, self.input_scale = {}, {}

    def _check(self, name):
        if name not in self.inputs:
            raise KeyError(f"'{name}' is not one of the net inputs: {', '.join(self.inputs)}")

    def set_transpose(self, in_, order):
        """Axis order to apply, e.g. (2, 0, 1) for H x W x K -> K x H x W."""
        self._check(in_)
        if len(order) != len(self.inputs[in_]) - 1:
            raise ValueError(f"transpose order {order} needs {len(self.inputs[in_]) - 1} axes "
                             f"for input '{in_}' of shape {self.inputs[in_]}")
        self.transpose[in_] = tuple(order)

    def set_channel_swap(self, in_, order):
        """Channel order after transposing, e.g. (2, 1, 0) for RGB -> BGR."""
        self._check(in_)
        if len(order) != self.inputs[in_][1]:
            raise ValueError(f"channel swap {order} needs {self.inputs[in_][1]} channels "
                             f"for input '{in_}'")
        self.channel_swap[in_] = list(order)

    def set_raw_scale(self, in_, scale):
        """Multiply by `scale` before the mean is subtracted (255 for [0, 255] models)."""
        self._check(in_)
        self.raw_scale[in_] = scale

    def set_mean(self, in_, mean):
        """Subtract a per-channel (C,) or elementwise (C, H, W) mean."""
        self._check(in_)
        mean = np.asarray(mean)
        channels, spatial = self.inputs[in_][1], tuple(self.inputs[in_][2:])
        if mean.ndim == 1:
            if mean.shape[0] != channels:
                raise ValueError(f"mean has {mean.shape[0]} channels, input '{in_}' has {channels}")
            mean = mean[:, np.newaxis, np.newaxis]
        else:
            if mean.ndim == 2:
                mean = mean[np.newaxis]
            if mean.shape != (channels,) + spatial:
                raise ValueError(f"mean shape {mean.shape} incompatible with input '{in_}' "
                                 f"shape {self.inputs[in_]}")
        self.mean[in_] = mean

    def set_input_scale(self, in_, scale):
        """Multiply by `scale` after the mean is subtracted."""
        self._check(in_)
        self.input_scale[in_] = scale

    def preprocess(self, in_, data):
        """H x W x K image -> the C x H x W float32 array the net's input wants."""
        self._check(in_)
        x = np.asarray(data, dtype=np.float32)
        size = self.inputs[in_][2:]
        if x.shape[:2] != tuple(size):
            x = resize_image(x, size)
        if in_ in self.transpose:
            x = x.transpose(self.transpose[in_])
        if in_ in self.channel_swap:
            x = x[self.channel_swap[in_], :, :]
        if in_ in self.raw_scale:
            x = x * self.raw_scale[in_]
        if in_ in self.mean:
            x = x - self.mean[in_]
        if in_ in self.input_scale:
            x = x * self.input_scale[in_]
        return x.astype(np.float32)

    def deprocess(self, in_, data):
        """Undo preprocess (except the resize): C x H x W -> H x W x K."""
        self._check(in_)
        x = np.array(data, dtype=np.float32).squeeze()
        if in_ in self.input_scale:
            x = x / self.input_scale[in_]
        if in_ in self.mean:
            x = x + self.mean[in_]
        if in_ in self.raw_scale:
            x = x / self.raw_scale[in_]
        if in_ in self.channel_swap:
            x = x[np.argsort(self.channel_swap[in_]), :, :]
        if in_ in self.transpose:
            x = x.transpose(np.argsort(self.transpose[in_]))
        return x
