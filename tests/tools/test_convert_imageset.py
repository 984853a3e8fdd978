"""convert_imageset: its LMDB reads back to the same arrays as one written independently
from the schema; encoded (PNG) and raw records give the same pixels; flags and errors."""
import lmdb
import numpy as np
import pytest
from PIL import Image

from dist_caffe import cli
from dist_caffe.data.datum import datum_to_array, parse_datum
from dist_caffe.data.lmdb_reader import LmdbReader
from dist_caffe.tools import convert_imageset

from tests.data.util import raw_datum, write_lmdb


@pytest.fixture
def images(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (5, 6, 7, 3), dtype=np.uint8)
    (tmp_path / "img").mkdir()
    for i, im in enumerate(rgb):
        Image.fromarray(im).save(tmp_path / "img" / f"{i}.png")
    (tmp_path / "list.txt").write_text("".join(f"{i}.png {i % 3}\n" for i in range(5)))
    return tmp_path, rgb


def run(*argv):
    return cli.main(["convert_imageset", *map(str, argv)])


def read_all(path):
    env = lmdb.open(str(path), readonly=True, lock=False)
    with env.begin() as txn:
        items = [(k, datum_to_array(parse_datum(v, k.decode()), k.decode()))
                 for k, v in txn.cursor()]
    env.close()
    return [(k, a.copy(), y) for k, (a, y) in items]


def test_same_arrays_as_an_independently_written_lmdb(images):
    tmp_path, rgb = images
    assert run(f"{tmp_path}/img/", tmp_path / "list.txt", tmp_path / "ours") == 0
    # Independent: BGR planes by numpy, Datum fields set by hand, keys as Caffe writes them.
    theirs = write_lmdb(tmp_path / "theirs", [
        (f"{i:08d}_{i}.png".encode(), raw_datum(np.ascontiguousarray(
            im[:, :, ::-1].transpose(2, 0, 1)), i % 3)) for i, im in enumerate(rgb)])
    ours, ref = read_all(tmp_path / "ours"), read_all(theirs)
    assert [k for k, _, _ in ours] == [k for k, _, _ in ref]
    for (_, a, y), (_, b, z) in zip(ours, ref):
        assert y == z and a.dtype == b.dtype == np.uint8
        np.testing.assert_array_equal(a, b)
    # and the sharded reader finds records by seeking on those keys
    reader = LmdbReader(tmp_path / "ours", 1, 2, track_reads=True)
    assert [k for k, _ in reader.next_records(3)] == [b"00000003_3.png", b"00000004_4.png",
                                                      b"00000000_0.png"]


def test_encoded_png_gives_the_raw_pixels(images):
    tmp_path, rgb = images
    run(f"{tmp_path}/img/", tmp_path / "list.txt", tmp_path / "raw")
    run("-encoded", f"{tmp_path}/img/", tmp_path / "list.txt", tmp_path / "png")
    run("-encoded", "-encode_type", "png", "-resize_height", "6", "-resize_width", "7",
        f"{tmp_path}/img/", tmp_path / "list.txt", tmp_path / "png2")  # re-encoded by Pillow
    raw, png, png2 = (read_all(tmp_path / n) for n in ("raw", "png", "png2"))
    env = lmdb.open(str(tmp_path / "png"), readonly=True, lock=False)
    with env.begin() as txn:
        first = parse_datum(txn.get(b"00000000_0.png"), "k")
    assert first.encoded and first.data == (tmp_path / "img" / "0.png").read_bytes()
    for (_, a, y), (_, b, z), (_, c, _) in zip(raw, png, png2):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
        assert y == z


def test_gray_resize_shuffle(images):
    tmp_path, rgb = images
    run("-gray", "-resize_height=4", "--resize_width=5", "-shuffle", f"{tmp_path}/img/",
        tmp_path / "list.txt", tmp_path / "db")
    items = read_all(tmp_path / "db")
    names = [k.decode().split("_", 1)[1] for k, _, _ in items]
    assert sorted(names) == [f"{i}.png" for i in range(5)] and names != sorted(names)
    assert [k[:8] for k, _, _ in items] == [b"%08d" % i for i in range(5)]  # dense numbering
    k, a, _ = items[0]
    src = int(names[0].split(".")[0])
    expected = np.asarray(Image.fromarray(rgb[src]).convert("L").resize((5, 4), Image.BILINEAR))
    np.testing.assert_array_equal(a, expected[None])


def test_check_size_stops_on_a_different_size(images, capsys):
    tmp_path, _ = images
    Image.fromarray(np.zeros((9, 9, 3), np.uint8)).save(tmp_path / "img" / "3.png")
    assert run("-check_size", f"{tmp_path}/img/", tmp_path / "list.txt", tmp_path / "db") == 1
    err = capsys.readouterr().err
    assert "line 4" in err and "3.png" in err and "-resize_height" in err
    assert not (tmp_path / "db").exists()                       # nothing half-written
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".db")]


def test_unreadable_image_is_skipped_and_existing_db_refused(images, capsys):
    tmp_path, _ = images
    (tmp_path / "img" / "2.png").write_bytes(b"not a png")
    assert run(f"{tmp_path}/img/", tmp_path / "list.txt", tmp_path / "db") == 0
    assert "skipping" in capsys.readouterr().err
    assert len(read_all(tmp_path / "db")) == 4
    assert run(f"{tmp_path}/img/", tmp_path / "list.txt", tmp_path / "db") == 1
    assert "already exists" in capsys.readouterr().err


def test_usage_lists_caffes_flags():
    text = convert_imageset.parser().format_help()
    for flag in ("--gray", "--shuffle", "--backend", "--resize_width", "--resize_height",
                 "--check_size", "--encoded", "--encode_type"):
        assert flag in text
