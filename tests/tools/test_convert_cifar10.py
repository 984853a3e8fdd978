"""convert_cifar10: binary batches -> cifar10_{train,test}_lmdb with Caffe's %05d keys."""
import numpy as np

from dist_caffe import cli
from dist_caffe.data.datum import datum_to_array, parse_datum
from dist_caffe.data.lmdb_reader import LmdbReader


def make_batches(folder, n=3):
    rng = np.random.default_rng(0)
    data = {}
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        images = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
        rows = np.concatenate([labels[:, None], images.reshape(n, -1)], axis=1)
        (folder / name).write_bytes(rows.astype(np.uint8).tobytes())
        data[name] = (labels, images)
    return data


def test_converts_train_and_test(tmp_path):
    (tmp_path / "in").mkdir()
    data = make_batches(tmp_path / "in")
    assert cli.main(["convert_cifar10", str(tmp_path / "in"), str(tmp_path / "out")]) == 0
    train = LmdbReader(tmp_path / "out" / "cifar10_train_lmdb")
    assert train.n == 15
    records = train.next_records(15)
    assert records[3][0] == b"10000" and records[14][0] == b"40002"   # batch * 10000 + i
    image, label = datum_to_array(parse_datum(records[4][1], "k"))
    labels, images = data["data_batch_2.bin"]
    assert label == labels[1]
    np.testing.assert_array_equal(image, images[1])    # stored as the file has it (RGB planes)
    test = LmdbReader(tmp_path / "out" / "cifar10_test_lmdb")
    assert test.n == 3


def test_missing_or_truncated_batches(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    make_batches(tmp_path / "in")
    (tmp_path / "in" / "data_batch_3.bin").unlink()
    assert cli.main(["convert_cifar10", str(tmp_path / "in"), str(tmp_path / "out")]) == 1
    assert "lacks data_batch_3.bin" in capsys.readouterr().err
    (tmp_path / "in" / "data_batch_3.bin").write_bytes(b"\0" * 5000)
    assert cli.main(["convert_cifar10", str(tmp_path / "in"), str(tmp_path / "out")]) == 1
    assert "not a whole number of 3073-byte records" in capsys.readouterr().err
    assert not (tmp_path / "out" / "cifar10_train_lmdb").exists()
