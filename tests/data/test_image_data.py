"""The ImageData layer: list file of `path label`, root_folder, resize, color, shuffle."""
import numpy as np
import pytest
from PIL import Image

from dist_caffe.data import options
from dist_caffe.errors import ConfigError, DataError

from .util import as_rank, data_net


@pytest.fixture(autouse=True)
def reset_options():
    yield
    options.configure(decode_workers=None)


@pytest.fixture
def image_dir(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (6, 8, 10, 3), dtype=np.uint8)
    (tmp_path / "img").mkdir()
    lines = []
    for i, im in enumerate(rgb):
        Image.fromarray(im).save(tmp_path / "img" / f"im {i}.png")  # a space in the name
        lines.append(f"im {i}.png {10 + i}")
    (tmp_path / "list.txt").write_text("\n".join(lines) + "\n")
    return tmp_path, rgb


def image_net(tmp_path, extra="", batch_size=3, transform="", phase=0):
    return data_net(tmp_path / "list.txt", batch_size, transform, phase=phase, type_="ImageData",
                    extra=f'root_folder: "{tmp_path}/img/" {extra}')


@pytest.mark.parametrize("workers", [0, 2])
def test_reads_listed_images_as_bgr(image_dir, workers):
    tmp_path, rgb = image_dir
    options.configure(decode_workers=workers)
    net = image_net(tmp_path)
    assert net.blobs["data"].shape == (3, 3, 8, 10)
    out = [net.forward()["data"].copy() for _ in range(2)]
    np.testing.assert_array_equal(np.concatenate(out), rgb[:, :, :, ::-1].transpose(0, 3, 1, 2))
    assert net.blobs["label"].data.tolist() == [13, 14, 15]
    net.layers[0].close()


def test_a_collected_layer_stops_its_thread(image_dir):
    import gc
    net = image_net(image_dir[0])
    thread = net.layers[0].prefetcher._thread
    del net
    gc.collect()
    thread.join(timeout=5)
    assert not thread.is_alive()


def test_resize_gray_and_crop(image_dir):
    tmp_path, rgb = image_dir
    net = image_net(tmp_path, "new_height: 6 new_width: 7 is_color: false", batch_size=2,
                    transform="crop_size: 4", phase=1)
    assert net.blobs["data"].shape == (2, 1, 4, 4)
    gray = np.asarray(Image.fromarray(rgb[0]).convert("L").resize((7, 6), Image.BILINEAR))
    np.testing.assert_array_equal(net.forward()["data"][0, 0], gray[1:5, 1:5])  # TEST centre


def test_shuffle_is_a_permutation_shared_by_ranks(image_dir):
    tmp_path, _ = image_dir
    seen = []
    for rank in range(2):
        with as_rank(rank, 2):
            net = image_net(tmp_path, "shuffle: true")
        seen += net.forward()["label"].tolist()
    assert sorted(seen) == list(range(10, 16))


def test_errors(image_dir):
    tmp_path, _ = image_dir
    (tmp_path / "bad.txt").write_text("a.png 1\nb.png x\n")
    with pytest.raises(DataError, match=r"bad.txt' line 2.*integer label"):
        data_net(tmp_path / "bad.txt", type_="ImageData")
    (tmp_path / "missing.txt").write_text("nope.png 1\n")
    with pytest.raises(DataError, match="nope.png: no such image file"):
        data_net(tmp_path / "missing.txt", type_="ImageData")
    with pytest.raises(ConfigError, match="new_height/new_width"):
        image_net(tmp_path, "new_height: 5")
