"""DataTransformer against a per-element reimplementation of Caffe's loop (crop, mirror,
mean, scale), plus the random/centre crop rules and the config errors."""
import numpy as np
import pytest

from dist_caffe.data.transformer import DataTransformer, crop_mirror
from dist_caffe.errors import ConfigError, DataError
from dist_caffe.proto import caffe_pb2, parse_text, write_binary

TRAIN, TEST = 0, 1


def caffe_reference(datum, crop, h_off, w_off, mirror, scale, mean=None, mean_values=None):
    """Caffe's DataTransformer::Transform(Datum), element by element, in float32."""
    C, H, W = datum.shape
    ch, cw = (crop, crop) if crop else (H, W)
    flat, top = datum.ravel(), np.zeros(C * ch * cw, np.float32)
    for c in range(C):
        for h in range(ch):
            for w in range(cw):
                top_index = (c * ch + h) * cw + ((cw - 1 - w) if mirror else w)
                data_index = (c * H + h_off + h) * W + w_off + w
                value = np.float32(flat[data_index])
                if mean is not None:
                    value = value - np.float32(mean.ravel()[data_index])
                elif mean_values is not None:
                    value = value - np.float32(mean_values[c if len(mean_values) > 1 else 0])
                top[top_index] = value * np.float32(scale)
    return top.reshape(C, ch, cw)


def transformer(text, phase=TRAIN, seed=0):
    return DataTransformer(parse_text(text, caffe_pb2.TransformationParameter), phase,
                           np.random.default_rng(seed))


def mean_file(tmp_path, mean):
    blob = caffe_pb2.BlobProto(num=1, channels=mean.shape[0], height=mean.shape[1],
                               width=mean.shape[2])
    blob.data.extend(mean.ravel().tolist())
    write_binary(blob, tmp_path / "mean.binaryproto")
    return tmp_path / "mean.binaryproto"


@pytest.mark.parametrize("phase", [TRAIN, TEST])
@pytest.mark.parametrize("mean_kind", ["file", "values", "one_value", "none"])
def test_batch_matches_caffe_loop(tmp_path, phase, mean_kind):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (6, 3, 9, 11), dtype=np.uint8)
    mean = rng.uniform(0, 255, (3, 9, 11)).astype(np.float32)
    mean_text = {"file": f'mean_file: "{mean_file(tmp_path, mean)}"',
                 "values": "mean_value: 104 mean_value: 117.5 mean_value: 123",
                 "one_value": "mean_value: 99.25", "none": ""}[mean_kind]
    t = transformer(f"crop_size: 5 mirror: true scale: 0.017 {mean_text}", phase)
    u_h, u_w, mirrors = t.draw(len(images))
    cut = [crop_mirror(im, t.spec, a, b, m) for im, a, b, m in zip(images, u_h, u_w, mirrors)]
    out = t.finish([c[0] for c in cut], [c[1:] for c in cut], mirrors)
    assert out.dtype == np.float32 and out.shape == (6, 3, 5, 5)
    for i, (image, (_, h_off, w_off)) in enumerate(zip(images, cut)):
        if phase == TEST:
            assert (h_off, w_off) == (2, 3)                      # centre: (9-5)//2, (11-5)//2
        ref = caffe_reference(image, 5, h_off, w_off, mirrors[i], np.float32(0.017),
                              mean=mean if mean_kind == "file" else None,
                              mean_values={"values": [104, 117.5, 123], "one_value": [99.25]}
                              .get(mean_kind))
        np.testing.assert_array_equal(out[i], ref)                 # bit for bit


def test_random_crop_covers_every_offset_and_mirror_is_a_coin():
    t = transformer("crop_size: 3 mirror: true")
    image = np.zeros((1, 5, 6), np.uint8)
    u_h, u_w, mirrors = t.draw(4000)
    offsets = {crop_mirror(image, t.spec, a, b, False)[1:] for a, b in zip(u_h, u_w)}
    assert offsets == {(h, w) for h in range(3) for w in range(4)}   # Rand(H - crop + 1)
    assert 0.45 < mirrors.mean() < 0.55


def test_no_crop_no_mirror_is_scale_only():
    t = transformer("scale: 0.5")
    image = np.arange(12, dtype=np.uint8).reshape(1, 3, 4)
    np.testing.assert_array_equal(t.transform(image), image.astype(np.float32) * 0.5)
    assert t.output_shape((1, 3, 4)) == (1, 3, 4)
    assert transformer("crop_size: 2").output_shape((3, 8, 9)) == (3, 2, 2)


def test_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="mean_file or mean_value, not both"):
        transformer('mean_file: "m" mean_value: 1')
    with pytest.raises(ConfigError, match="force_color and force_gray"):
        transformer("force_color: true force_gray: true")
    t = transformer(f'mean_file: "{mean_file(tmp_path, np.zeros((3, 4, 4), np.float32))}"')
    with pytest.raises(DataError, match=r"db key '1'.*\(3, 4, 4\).*\(3, 5, 5\).*compute_image_mean"):
        t.check((3, 5, 5), "db key '1'")
    with pytest.raises(DataError, match="crop_size 6 is larger"):
        transformer("crop_size: 6").check((1, 5, 5), "k")
    with pytest.raises(DataError, match="2 mean_value entries for 3-channel"):
        transformer("mean_value: 1 mean_value: 2").check((3, 5, 5), "k")
