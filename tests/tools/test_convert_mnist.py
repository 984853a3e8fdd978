"""convert_mnist: IDX files (plain and .gz) -> LMDB of 1 x 28 x 28 Datum keyed %08d."""
import gzip
import os
import struct

import numpy as np
import pytest

from dist_caffe import cli
from dist_caffe.data.lmdb_reader import LmdbReader
from dist_caffe.data.datum import datum_to_array, parse_datum

FASHION = "/usr/share/datasets/fashion-mnist"


def write_idx(path, array, magic):
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    (gzip.open if str(path).endswith(".gz") else open)(path, "wb").write(data)
    return str(path)


def read_db(path, n):
    reader = LmdbReader(path)
    return [(k, *datum_to_array(parse_datum(v, "k"))) for k, v in reader.next_records(n)]


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_converts_idx_files(tmp_path, suffix):
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (7, 28, 28)), rng.integers(0, 10, 7)
    img = write_idx(tmp_path / f"img{suffix}", images, 2051)
    lab = write_idx(tmp_path / f"lab{suffix}", labels, 2049)
    assert cli.main(["convert_mnist", img, lab, str(tmp_path / "db"), "-backend", "lmdb"]) == 0
    records = read_db(tmp_path / "db", 7)
    assert [k for k, _, _ in records] == [b"%08d" % i for i in range(7)]
    for (_, a, y), im, label in zip(records, images, labels):
        assert a.shape == (1, 28, 28) and y == label
        np.testing.assert_array_equal(a[0], im)


def test_bad_inputs(tmp_path, capsys):
    img = write_idx(tmp_path / "img", np.zeros((3, 28, 28)), 2051)
    lab = write_idx(tmp_path / "lab", np.zeros(4), 2049)
    assert cli.main(["convert_mnist", lab, img, str(tmp_path / "db")]) == 1
    assert "magic number 2049, expected 2051" in capsys.readouterr().err
    assert cli.main(["convert_mnist", img, lab, str(tmp_path / "db")]) == 1
    assert "3 images but" in capsys.readouterr().err
    (tmp_path / "short").write_bytes(open(img, "rb").read()[:100])
    assert cli.main(["convert_mnist", str(tmp_path / "short"), lab, str(tmp_path / "db")]) == 1
    assert "truncated" in capsys.readouterr().err
    assert cli.main(["convert_mnist", img, lab, str(tmp_path / "db"), "-backend", "leveldb"]) == 1
    assert not (tmp_path / "db").exists()


@pytest.mark.skipif(not os.path.isdir(FASHION), reason="Fashion-MNIST not installed "
                    "(apt-get install dataset-fashion-mnist)")
def test_reads_real_fashion_mnist(tmp_path):
    src = f"{FASHION}/t10k-images-idx3-ubyte.gz"
    assert cli.main(["convert_mnist", src, f"{FASHION}/t10k-labels-idx1-ubyte.gz",
                     str(tmp_path / "db")]) == 0
    reader = LmdbReader(tmp_path / "db")
    assert reader.n == 10000
    with gzip.open(src) as f:
        raw = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    (key, image, label), = read_db(tmp_path / "db", 1)
    np.testing.assert_array_equal(image[0], raw[0])
    assert label == 9      # the first test item of Fashion-MNIST is an ankle boot
