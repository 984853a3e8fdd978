"""Shard ranges: disjoint, complete, equal per rank; a reader reads only its own keys."""
import numpy as np
import pytest

from dist_caffe.data import sharding
from dist_caffe.data.lmdb_reader import LmdbReader

from .util import image_db, random_images, write_lmdb, raw_datum

CASES = [(n, w) for w in range(1, 6) for n in (1, 2, 3, 7, 10, 11, 13, 97) if n % w or w == 1]


@pytest.mark.parametrize("n,size", CASES)
@pytest.mark.parametrize("shuffle", [False, True])
def test_shards_cover_every_record_once_plus_padding(n, size, shuffle):
    shards = [sharding.shard_indices(n, r, size, epoch=3, shuffle=shuffle, seed=7)
              for r in range(size)]
    per = -(-n // size)
    assert [len(s) for s in shards] == [per] * size          # equal counts on every rank
    flat = np.concatenate(shards)
    counts = np.bincount(flat, minlength=n)
    assert (counts >= 1).all()                                 # union is every record
    order = sharding.epoch_order(n, 3, shuffle, 7)
    pad = per * size - n
    assert sharding.padding(n, size) == pad and pad < size
    # The padding rule: the epoch order's first `pad` records (cyclically) are read twice.
    expected_twice = np.bincount(np.resize(order, per * size)[n:], minlength=n)
    np.testing.assert_array_equal(counts, 1 + expected_twice)
    if n >= size:   # without padding the shards are disjoint
        unpadded = [set(s) - set(order[:pad]) for s in shards]
        for a in range(size):
            for b in range(a + 1, size):
                assert not unpadded[a] & unpadded[b]


def test_shuffle_is_the_same_on_every_rank_and_changes_per_epoch():
    a = sharding.epoch_order(50, 0, True, seed=3)
    assert np.array_equal(a, sharding.epoch_order(50, 0, True, seed=3))
    assert not np.array_equal(a, sharding.epoch_order(50, 1, True, seed=3))
    assert not np.array_equal(a, sharding.epoch_order(50, 0, True, seed=4))
    assert sorted(a) == list(range(50))


def test_stream_straddles_epochs_and_peeks():
    s = sharding.ShardStream(10, rank=1, size=3)   # per rank 4: indices 4..7
    assert s.take(3, advance=False) == [4, 5, 6]
    assert s.take(3) == [4, 5, 6]
    assert s.take(3) == [7, 4, 5]
    assert s.epoch == 1 and s.pos == 2
    assert sharding.ShardStream(10, 1, 3, start=5).take(2) == [5, 6]  # start wraps mod 4


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("shuffle", [False, True])
def test_reader_reads_only_its_own_keys(tmp_path, size, shuffle):
    n = 23
    db = image_db(tmp_path / "db", random_images(n, (1, 2, 2)))
    seen = []
    for rank in range(size):
        reader = LmdbReader(db, rank, size, shuffle=shuffle, seed=5, track_reads=True)
        per = sharding.per_rank(n, size)
        records = reader.next_records(per)           # one epoch
        own = list(sharding.shard_indices(n, rank, size, 0, shuffle, 5))
        assert reader.read_indices == own             # nothing outside the shard was read
        assert reader.values_read == per
        assert [k for k, _ in records] == [b"%08d" % i for i in own]
        if not shuffle:   # a contiguous range: one seek, then cursor steps
            assert reader.seeks == (1 if own == list(range(own[0], own[0] + per)) else 2)
        seen += own
        reader.close()
    assert set(seen) == set(range(n))


def test_reader_with_caffe_convert_imageset_keys_and_cifar_width(tmp_path):
    images = random_images(12, (1, 2, 2))
    db = write_lmdb(tmp_path / "db", [(b"%05d_img%d.png" % (i, i), raw_datum(im, i))
                                      for i, im in enumerate(images)])
    reader = LmdbReader(db, 2, 3, track_reads=True)
    keys = [k for k, _ in reader.next_records(4)]
    assert keys == [b"%05d_img%d.png" % (i, i) for i in (8, 9, 10, 11)]
    assert reader._numbering == (0, 5)


def test_reader_falls_back_to_a_key_list_for_other_keys(tmp_path, caplog):
    images = random_images(9, (1, 2, 2))
    names = sorted(f"img_{c}".encode() for c in "abcdefghi")
    db = write_lmdb(tmp_path / "db", [(k, raw_datum(im, i))
                                      for i, (k, im) in enumerate(zip(names, images))])
    reader = LmdbReader(db, 1, 2, track_reads=True)
    keys = [k for k, _ in reader.next_records(5)]
    assert keys == names[5:] + names[:1]   # per rank 5: indices 5..9, 9 wraps to 0 (padding)
    assert "keys are not Caffe's" in caplog.text


def test_reader_with_a_gap_in_numbered_keys_still_reads_the_right_records(tmp_path):
    # first/last/count look dense (00,01b,01c,03: 4 entries, 0..3) but 2 is missing
    keys = [b"00", b"01b", b"01c", b"03"]
    db = write_lmdb(tmp_path / "db", [(k, raw_datum(np.zeros((1, 1, 1), np.uint8), i))
                                      for i, k in enumerate(keys)])
    reader = LmdbReader(db, 0, 1)
    assert [k for k, _ in reader.next_records(4)] == keys
