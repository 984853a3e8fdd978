"""caffe.io: proto <-> array helpers, image loading/resizing, Transformer, oversample."""
import numpy as np
import pytest

import dist_caffe as caffe
from dist_caffe.proto import caffe_pb2

io = caffe.io


def test_blobproto_round_trip_with_diff():
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 7
    d = -a
    blob = io.array_to_blobproto(a, d)
    assert list(blob.shape.dim) == [2, 3, 4]
    np.testing.assert_array_equal(io.blobproto_to_array(blob), a)
    np.testing.assert_array_equal(io.blobproto_to_array(blob, return_diff=True), d)


def test_blobproto_legacy_dims_and_double_data():
    legacy = caffe_pb2.BlobProto(num=1, channels=2, height=1, width=3, data=range(6))
    assert io.blobproto_to_array(legacy).shape == (1, 2, 1, 3)
    double = caffe_pb2.BlobProto(double_data=[0.1, 0.2])
    double.shape.dim.append(2)
    out = io.blobproto_to_array(double)
    assert out.dtype == np.float64 and out.tolist() == [0.1, 0.2]


def test_blobprotovector_round_trip():
    arrays = [np.ones((2, 2), np.float32), np.arange(3, dtype=np.float32)]
    back = io.blobprotovector_str_to_arraylist(io.arraylist_to_blobprotovector_str(arrays))
    assert [b.shape for b in back] == [(2, 2), (3,)]
    for a, b in zip(arrays, back):
        np.testing.assert_array_equal(a, b)


def test_datum_uint8_and_float():
    img = np.random.default_rng(0).integers(0, 256, (3, 4, 5), dtype=np.uint8)
    datum = io.array_to_datum(img, label=7)
    assert (datum.channels, datum.height, datum.width, datum.label) == (3, 4, 5, 7)
    assert datum.data == img.tobytes() and not datum.float_data
    np.testing.assert_array_equal(io.datum_to_array(datum), img)
    f = io.array_to_datum(img.astype(np.float32) / 3)
    np.testing.assert_allclose(io.datum_to_array(f), img / 3, rtol=1e-6)
    with pytest.raises(ValueError, match="C x H x W"):
        io.array_to_datum(np.zeros((4, 5)))


def test_load_image(tmp_path):
    from PIL import Image
    rgb = np.random.default_rng(1).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "x.png")
    img = io.load_image(str(tmp_path / "x.png"))
    assert img.dtype == np.float32 and img.shape == (6, 8, 3)
    np.testing.assert_allclose(img, rgb / 255.0, atol=1e-7)
    Image.fromarray(rgb[:, :, 0]).save(tmp_path / "g.png")
    assert io.load_image(str(tmp_path / "g.png"), color=False).shape == (6, 8, 1)
    color = io.load_image(str(tmp_path / "g.png"))
    assert color.shape == (6, 8, 3) and np.array_equal(color[..., 0], color[..., 2])


def bilinear_reference(im, h, w):
    """Per-pixel bilinear resampling with pixel centres aligned (align_corners=False)."""
    H, W = im.shape[:2]
    out = np.zeros((h, w) + im.shape[2:])
    for i in range(h):
        for j in range(w):
            y = min(max((i + 0.5) * H / h - 0.5, 0), H - 1)
            x = min(max((j + 0.5) * W / w - 0.5, 0), W - 1)
            y0, x0 = int(y), int(x)
            y1, x1 = min(y0 + 1, H - 1), min(x0 + 1, W - 1)
            dy, dx = y - y0, x - x0
            out[i, j] = ((1 - dy) * ((1 - dx) * im[y0, x0] + dx * im[y0, x1])
                         + dy * ((1 - dx) * im[y1, x0] + dx * im[y1, x1]))
    return out


def test_resize_image_bilinear_and_nearest():
    im = np.random.default_rng(2).random((5, 7, 3)).astype(np.float32)
    for h, w in ((9, 4), (3, 13), (5, 7)):
        ours = io.resize_image(im, (h, w))
        assert ours.shape == (h, w, 3) and ours.dtype == np.float32
        np.testing.assert_allclose(ours, bilinear_reference(im, h, w), atol=1e-6)
    nearest = io.resize_image(im, (10, 14), interp_order=0)
    np.testing.assert_array_equal(nearest[::2, ::2], im)
    np.testing.assert_array_equal(nearest[1::2, 1::2], im)


def make_transformer():
    t = io.Transformer({"data": (1, 3, 4, 5)})
    t.set_transpose("data", (2, 0, 1))
    t.set_channel_swap("data", (2, 1, 0))
    t.set_raw_scale("data", 255)
    t.set_mean("data", np.array([10.0, 20.0, 30.0]))
    t.set_input_scale("data", 0.5)
    return t


def test_transformer_preprocess_and_deprocess():
    im = np.random.default_rng(3).random((4, 5, 3)).astype(np.float32)
    t = make_transformer()
    out = t.preprocess("data", im)
    expected = (im.transpose(2, 0, 1)[::-1] * 255 - np.array([10, 20, 30])[:, None, None]) * 0.5
    assert out.dtype == np.float32 and out.shape == (3, 4, 5)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(t.deprocess("data", out), im, atol=1e-5)
    resized = t.preprocess("data", io.resize_image(im, (8, 10)))  # any size is resized back
    assert resized.shape == (3, 4, 5)


def test_transformer_errors():
    t = io.Transformer({"data": (1, 3, 4, 5)})
    with pytest.raises(KeyError, match="not one of the net inputs"):
        t.set_raw_scale("image", 255)
    with pytest.raises(ValueError, match="mean has 2 channels"):
        t.set_mean("data", np.zeros(2))
    with pytest.raises(ValueError, match="incompatible"):
        t.set_mean("data", np.zeros((3, 5, 5)))
    with pytest.raises(ValueError, match="channel swap"):
        t.set_channel_swap("data", (1, 0))
    t.set_mean("data", np.ones((3, 4, 5)))     # an elementwise mean of the input's shape is fine


def test_oversample_corners_centre_and_mirrors():
    im = np.arange(6 * 8 * 2, dtype=np.float32).reshape(6, 8, 2)
    crops = io.oversample([im, im + 1], (4, 4))
    assert crops.shape == (20, 4, 4, 2)
    np.testing.assert_array_equal(crops[0], im[:4, :4])
    np.testing.assert_array_equal(crops[1], im[:4, 4:])
    np.testing.assert_array_equal(crops[2], im[2:, :4])
    np.testing.assert_array_equal(crops[3], im[2:, 4:])
    np.testing.assert_array_equal(crops[4], im[1:5, 2:6])
    np.testing.assert_array_equal(crops[5:10], crops[0:5, :, ::-1])
    np.testing.assert_array_equal(crops[10], im[:4, :4] + 1)
