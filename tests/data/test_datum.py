"""Datum <-> numpy: raw, float and encoded records, and the errors for bad ones."""
import io

import numpy as np
import pytest
from PIL import Image

from dist_caffe.data.datum import (array_to_datum, datum_to_array, decode_image, encode_chw,
                                   encoded_datum, parse_datum)
from dist_caffe.errors import DataError
from dist_caffe.proto import caffe_pb2


def test_raw_datum_is_chw_bytes():
    image = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    datum = array_to_datum(image, 7)
    assert (datum.channels, datum.height, datum.width, datum.label) == (2, 3, 4, 7)
    assert datum.data == bytes(range(24))       # channel-major, row-major: Caffe's layout
    out, label = datum_to_array(parse_datum(datum.SerializeToString(), "k"))
    assert label == 7 and out.dtype == np.uint8
    np.testing.assert_array_equal(out, image)


def test_float_datum():
    image = np.linspace(-1, 1, 12, dtype=np.float32).reshape(1, 3, 4)
    out, _ = datum_to_array(array_to_datum(image, 1))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, image)


def test_encoded_png_gives_bgr_chw_like_opencv():
    rgb = np.random.default_rng(0).integers(0, 256, (5, 6, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG")
    out, label = datum_to_array(encoded_datum(buf.getvalue(), 3))
    assert label == 3 and out.shape == (3, 5, 6)
    np.testing.assert_array_equal(out, rgb[:, :, ::-1].transpose(2, 0, 1))  # B, G, R planes
    # force_gray / force_color (Pillow's ITU-R 601 luma, as OpenCV's)
    gray, _ = datum_to_array(encoded_datum(buf.getvalue()), color=False)
    assert gray.shape == (1, 5, 6)
    ref = rgb.astype(float) @ [0.299, 0.587, 0.114]
    assert np.abs(gray[0] - ref).max() <= 1


def test_encode_chw_round_trips_losslessly_as_png():
    image = np.random.default_rng(1).integers(0, 256, (3, 7, 5), dtype=np.uint8)
    np.testing.assert_array_equal(decode_image(encode_chw(image, "png"), "k"), image)
    gray = image[:1]
    np.testing.assert_array_equal(decode_image(encode_chw(gray, "png"), "k"), gray)


def test_not_a_datum_names_the_key():
    with pytest.raises(DataError, match="db key 'k7'.*not a caffe.Datum"):
        parse_datum(b"\xff\xff\xff\xff garbage", "db key 'k7'")
    # parses as protobuf but the sizes do not add up
    bad = caffe_pb2.Datum(channels=3, height=4, width=4, data=b"\0" * 10).SerializeToString()
    with pytest.raises(DataError, match="3x4x4 but 10 data bytes"):
        parse_datum(bad, "k")


def test_truncated_jpeg_is_a_data_error():
    buf = io.BytesIO()
    Image.fromarray(np.full((32, 32, 3), 128, np.uint8)).save(buf, "JPEG")
    with pytest.raises(DataError, match="key 'x'.*truncated or corrupt"):
        decode_image(buf.getvalue()[:200], "key 'x'")
