"""Caffe's DataTransformer: crop -> mirror -> subtract mean -> scale, in float32.

Reads transform_param: crop_size (a random window in TRAIN, the centre one in TEST),
mirror (each image flipped left-right with probability 1/2, in either phase, as Caffe),
mean_file (a binaryproto of the full C x H x W image: the window at the crop's offsets is
subtracted, at the pixel's position before mirroring, as Caffe indexes it) or mean_value
(one per channel, or one for all), scale (multiplies after the mean), force_color /
force_gray (decode encoded images with 3 / 1 channels; ignored for raw records, as Caffe).

The work is split so a pool of decode processes can do its cheap part: `draw` makes the
random choices in the reading thread (so results do not depend on how many workers there
are), `crop_mirror` cuts a uint8 window in the worker, and `finish` does the float
arithmetic for a whole batch at once.
"""
import collections

import numpy as np

from ..blob import legacy_shape
from ..errors import ConfigError, DataError
from ..proto import caffe_pb2, read_binary_proto

TRAIN = 0
# What a worker needs to crop and mirror: picklable and small (the mean stays behind).
CropSpec = collections.namedtuple("CropSpec", "crop_size train color")


def load_mean_file(path) -> np.ndarray:
    """The C x H x W float32 mean image of a binaryproto (compute_image_mean writes it)."""
    proto = read_binary_proto(path, caffe_pb2.BlobProto)
    shape = legacy_shape(proto)
    values = np.asarray(proto.double_data or proto.data, dtype=np.float32)
    if len(shape) == 4 and shape[0] == 1:
        shape = shape[1:]
    if len(shape) != 3 or values.size != np.prod(shape):
        raise DataError(f"mean file '{path}': expected a 1 x C x H x W BlobProto, found shape "
                        f"{shape} with {values.size} values; recompute it with dist-caffe "
                        "compute_image_mean")
    return values.reshape(shape)


def crop_mirror(image, spec: CropSpec, u_h: float, u_w: float, mirror: bool):
    """(window of a CHW image, h_off, w_off): the crop at offsets from uniforms u in [0, 1)
    (TRAIN) or the centre (TEST), flipped left-right when `mirror`. A view: no copy."""
    c = spec.crop_size
    _, height, width = image.shape
    h_off = w_off = 0
    if c:
        if c > height or c > width:
            raise DataError(f"crop_size {c} is larger than the {height}x{width} image")
        if spec.train:
            h_off, w_off = int(u_h * (height - c + 1)), int(u_w * (width - c + 1))
        else:
            h_off, w_off = (height - c) // 2, (width - c) // 2
        image = image[:, h_off:h_off + c, w_off:w_off + c]
    return (image[:, :, ::-1] if mirror else image), h_off, w_off


class DataTransformer:
    """Caffe's DataTransformer over numpy (see the module docstring for the fields read)."""

    def __init__(self, param, phase=TRAIN, rng=None, where=""):
        self.where = where
        self.scale, self.mirror, self.crop_size = param.scale, param.mirror, param.crop_size
        if param.force_color and param.force_gray:
            raise ConfigError(f"{where}transform_param: force_color and force_gray are both "
                              "set; choose one")
        if param.mean_file and param.mean_value:
            raise ConfigError(f"{where}transform_param: give mean_file or mean_value, not both")
        self.mean_file = param.mean_file
        self.mean = load_mean_file(param.mean_file) if param.mean_file else None
        self.mean_values = np.asarray(param.mean_value, np.float32) if param.mean_value else None
        color = True if param.force_color else False if param.force_gray else None
        self.spec = CropSpec(self.crop_size, phase == TRAIN, color)
        self.rng = rng if rng is not None else np.random.default_rng()

    def output_shape(self, image_shape):
        """(C, h, w) of a transformed image of shape (C, H, W)."""
        c, h, w = image_shape
        return (c, self.crop_size or h, self.crop_size or w)

    def check(self, image_shape, where):
        """DataError naming `where` when the mean or crop does not fit images of this shape."""
        c, h, w = image_shape
        if self.crop_size > min(h, w):
            raise DataError(f"{where}: crop_size {self.crop_size} is larger than the record's "
                            f"{h}x{w} image; lower transform_param.crop_size")
        if self.mean is not None and self.mean.shape != tuple(image_shape):
            raise DataError(f"{where}: mean file '{self.mean_file}' has shape {self.mean.shape} "
                            f"but the records are {tuple(image_shape)}; recompute it with "
                            "dist-caffe compute_image_mean on this DB")
        if self.mean_values is not None and len(self.mean_values) not in (1, c):
            raise DataError(f"{where}: transform_param has {len(self.mean_values)} mean_value "
                            f"entries for {c}-channel images; give 1 or {c}")

    def draw(self, n):
        """Random choices for n images: (u_h, u_w, mirror) arrays."""
        u = self.rng.random((2, n)) if self.spec.train and self.crop_size else np.zeros((2, n))
        mirror = self.rng.random(n) < 0.5 if self.mirror else np.zeros(n, bool)
        return u[0], u[1], mirror

    def finish(self, windows, offsets, mirrors, out=None):
        """float32 (N, C, h, w) batch, into `out` when given: (window - mean at the crop's
        offsets) * scale. `windows` is an (N, C, h, w) array or a list of windows."""
        windows = np.asarray(windows)
        x = np.empty(windows.shape, np.float32) if out is None else out
        if self.mean_values is not None:
            m = self.mean_values
            np.subtract(windows, m.reshape(1, -1, 1, 1) if len(m) > 1 else m[0], out=x,
                        dtype=np.float32)
        else:
            x[...] = windows
        if self.mean is not None:
            h, w = x.shape[2:]
            for i, ((h_off, w_off), mirror) in enumerate(zip(offsets, mirrors)):
                window = self.mean[:, h_off:h_off + h, w_off:w_off + w]
                x[i] -= window[:, :, ::-1] if mirror else window
        if self.scale != 1:
            x *= np.float32(self.scale)
        return x

    def transform(self, image):
        """One CHW image transformed (float32): draw, crop_mirror and finish together."""
        self.check(image.shape, self.where or "image")
        u_h, u_w, mirror = self.draw(1)
        window, h_off, w_off = crop_mirror(image, self.spec, u_h[0], u_w[0], mirror[0])
        return self.finish([window], [(h_off, w_off)], mirror)[0]
