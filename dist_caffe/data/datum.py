"""Datum records <-> numpy images, in Caffe's layout.

A Datum holds one C x H x W image and its label: raw uint8 bytes in `data` (channel-major,
BGR channel order as OpenCV loads colour images), or floats in `float_data`, or, with
`encoded: true`, the bytes of a JPEG/PNG file in `data` (channels/height/width may be
unset). Encoded images are decoded with Pillow and handed back in the same CHW BGR order, so
raw and encoded records of one image give the same pixels (exactly so for lossless PNG).

`color` below is Caffe's tri-state: None keeps the file's own colour (1 channel for
grayscale, 3 otherwise: Caffe's native decode), True forces 3 channels, False forces 1.
"""
import io

import numpy as np
from google.protobuf.message import DecodeError
from PIL import Image

from ..errors import DataError
from ..proto import caffe_pb2

_GRAY_MODES = ("1", "L", "LA", "I", "I;16", "F")


def parse_datum(value: bytes, where: str) -> "caffe_pb2.Datum":
    """Parse an LMDB value as a Datum; DataError naming `where` (DB and key) if it is not one."""
    datum = caffe_pb2.Datum()
    try:
        datum.ParseFromString(value)
    except DecodeError as e:
        raise DataError(f"{where}: the record is not a caffe.Datum ({len(value)} bytes; {e}); "
                        "the DB was not written by convert_imageset/convert_mnist or is corrupt") \
            from None
    if datum.encoded or datum.float_data:
        return datum
    expected = datum.channels * datum.height * datum.width
    if expected == 0 or len(datum.data) != expected:
        raise DataError(f"{where}: the record is not a valid caffe.Datum: channels x height x width"
                        f" = {datum.channels}x{datum.height}x{datum.width} but {len(datum.data)} "
                        "data bytes; the DB is corrupt or holds something other than images")
    return datum


def to_mode(img: Image.Image, color=None) -> Image.Image:
    """`img` as 8-bit RGB (color, or a colour file when None) or L (gray)."""
    mode = "RGB" if (img.mode not in _GRAY_MODES if color is None else color) else "L"
    return img if img.mode == mode else img.convert(mode)


def pil_to_chw(img: Image.Image, color=None) -> np.ndarray:
    """A Pillow image as a CHW uint8 array in BGR order (a view: no copy beyond Pillow's)."""
    a = np.asarray(to_mode(img, color))
    return a[None] if a.ndim == 2 else a[:, :, ::-1].transpose(2, 0, 1)


def decode_image(data: bytes, where: str, color=None) -> np.ndarray:
    """JPEG/PNG/... bytes as a CHW BGR uint8 array; DataError if truncated or not an image."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            return pil_to_chw(img, color)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise DataError(f"{where}: cannot decode the encoded image ({len(data)} bytes): {e}; "
                        "the image is truncated or corrupt (re-encode it, or skip corrupt "
                        "records with DIST_CAFFE_SKIP_CORRUPT=1)") from None


def datum_to_array(datum, where: str = "<datum>", color=None):
    """(CHW image, label): uint8 for `data` and encoded records, float32 for `float_data`.

    `color` applies to encoded records only (Caffe ignores force_color/force_gray for raw ones).
    """
    if datum.encoded:
        return decode_image(datum.data, where, color), datum.label
    shape = (datum.channels, datum.height, datum.width)
    if datum.float_data:
        values = np.asarray(datum.float_data, dtype=np.float32)
        if values.size != np.prod(shape):
            raise DataError(f"{where}: Datum has {values.size} float_data values for shape "
                            f"{shape}; the record is corrupt")
        return values.reshape(shape), datum.label
    return np.frombuffer(datum.data, dtype=np.uint8).reshape(shape), datum.label


def array_to_datum(image: np.ndarray, label: int = 0) -> "caffe_pb2.Datum":
    """A raw Datum of a CHW (or HW) image: uint8 into `data`, anything else into `float_data`."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[None]
    if image.ndim != 3:
        raise ValueError(f"array_to_datum needs a CHW or HW array, got shape {image.shape}")
    datum = caffe_pb2.Datum(channels=image.shape[0], height=image.shape[1],
                            width=image.shape[2], label=int(label))
    if image.dtype == np.uint8:
        datum.data = np.ascontiguousarray(image).tobytes()
    else:
        datum.float_data.extend(image.astype(np.float32).ravel().tolist())
    return datum


def encode_chw(image: np.ndarray, fmt: str = "png", quality: int = 95) -> bytes:
    """Encode a CHW BGR (or 1-channel) uint8 image as `fmt` (png, jpg, ...) file bytes."""
    image = np.asarray(image, dtype=np.uint8)
    hwc = image[0] if image.shape[0] == 1 else image[::-1].transpose(1, 2, 0)
    fmt = Image.registered_extensions().get("." + fmt.lower().lstrip("."), fmt.upper())
    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(hwc)).save(out, fmt, **({"quality": quality}
                                                                 if fmt == "JPEG" else {}))
    return out.getvalue()


def encoded_datum(file_bytes: bytes, label: int = 0) -> "caffe_pb2.Datum":
    """An encoded Datum holding image file bytes, as convert_imageset -encoded writes it."""
    return caffe_pb2.Datum(data=file_bytes, label=int(label), encoded=True)


def read_image(path: str, color=True, new_height: int = 0, new_width: int = 0) -> np.ndarray:
    """Read an image file as CHW BGR uint8, resized (bilinear) when new_height/new_width are set."""
    try:
        with Image.open(path) as img:
            img.load()
            img = to_mode(img, color)
            if new_height and new_width:
                img = img.resize((new_width, new_height), Image.BILINEAR)
            return pil_to_chw(img)
    except FileNotFoundError:
        raise DataError(f"{path}: no such image file (check the list file's path and "
                        "root_folder)") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise DataError(f"{path}: cannot read the image: {e}; the file is truncated, corrupt "
                        "or not an image") from None
