"""compute_image_mean: the per-pixel mean as a binaryproto the transformer reads back."""
import numpy as np

from dist_caffe import cli
from dist_caffe.data.transformer import load_mean_file
from dist_caffe.proto import caffe_pb2, read_binary_proto

from .util import image_db, random_images, raw_datum, write_lmdb


def test_mean_of_an_lmdb(tmp_path, capsys):
    images = random_images(9, (3, 5, 4))
    db = image_db(tmp_path / "db", images)
    assert cli.main(["compute_image_mean", db, str(tmp_path / "mean.binaryproto")]) == 0
    blob = read_binary_proto(tmp_path / "mean.binaryproto", caffe_pb2.BlobProto)
    assert (blob.num, blob.channels, blob.height, blob.width) == (1, 3, 5, 4)  # as Caffe writes
    expected = images.astype(np.float64).mean(axis=0)
    np.testing.assert_allclose(load_mean_file(tmp_path / "mean.binaryproto"), expected, rtol=1e-6)
    out = capsys.readouterr().out
    assert f"mean_value channel [2]: {expected[2].mean():.6g}" in out


def test_different_sizes_and_corrupt_records(tmp_path, capsys):
    records = [(b"%08d" % i, raw_datum(np.full((1, 2, 2), i, np.uint8), i)) for i in range(3)]
    records.append((b"00000003", raw_datum(np.zeros((1, 3, 2), np.uint8), 0)))
    records.append((b"00000004", b"junk\xff"))
    db = write_lmdb(tmp_path / "db", records)
    assert cli.main(["compute_image_mean", db]) == 1
    assert "key '00000003'" in capsys.readouterr().err
    assert cli.main(["compute_image_mean", db, str(tmp_path / "m"), "-skip_corrupt"]) == 0
    assert "(2 corrupt skipped)" in capsys.readouterr().out
    np.testing.assert_array_equal(load_mean_file(tmp_path / "m"), np.ones((1, 2, 2)))
