"""The Data layer: batches from LMDB through Net.forward, sharding by world(), encoded records
decoded by worker processes, skip-and-count of corrupt records, errors, clean shutdown."""
import os
import subprocess
import sys
import time

import numpy as np
import pytest

import dist_caffe as caffe
from dist_caffe.data import options
from dist_caffe.data.datum import encode_chw
from dist_caffe.errors import DataError
from dist_caffe.proto import caffe_pb2

from .util import as_rank, data_net, image_db, random_images, raw_datum, write_lmdb

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(autouse=True)
def reset_options():
    yield
    options.configure(skip_corrupt=None, shuffle=None, decode_workers=None)


def encoded_db(path, images, fmt="png"):
    return write_lmdb(path, [(b"%08d" % i, caffe_pb2.Datum(
        data=encode_chw(im, fmt), label=i, encoded=True).SerializeToString())
        for i, im in enumerate(images)])


def batches(net, k):
    return [{n: v.copy() for n, v in net.forward().items()} for _ in range(k)]


def test_forward_reads_batches_in_key_order_across_epochs(tmp_path):
    images = random_images(10)
    net = data_net(image_db(tmp_path / "db", images), batch_size=4, transform="scale: 0.5")
    assert net.blobs["data"].shape == (4, 3, 10, 12) and net.blobs["label"].shape == (4,)
    out = batches(net, 3)
    order = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]                    # batch 3 straddles epochs
    np.testing.assert_array_equal(np.concatenate([b["label"] for b in out]), order)
    np.testing.assert_array_equal(np.concatenate([b["data"] for b in out]),
                                  images[order].astype(np.float32) * 0.5)
    stats = net.layers[0].prefetcher.stats()
    assert stats["batches"] == 3 and stats["wait_s"] >= 0
    net.layers[0].close()


@pytest.mark.parametrize("size", [2, 3])
def test_each_rank_reads_its_shard(tmp_path, size, monkeypatch):
    import functools
    from dist_caffe.layers import data as data_layer
    monkeypatch.setattr(data_layer, "LmdbReader",
                        functools.partial(data_layer.LmdbReader, track_reads=True))
    db = image_db(tmp_path / "db", random_images(11, (1, 2, 2)))
    per = -(-11 // size)
    seen = []
    for rank in range(size):
        with as_rank(rank, size):
            net = data_net(db, batch_size=per)
        labels = batches(net, 1)[0]["label"].astype(int).tolist()
        shard = [(rank * per + i) % 11 for i in range(per)]
        assert labels == shard
        time.sleep(0.1)  # let the prefetch thread read ahead (epochs after the first)
        assert set(net.layers[0].reader.read_indices) == set(shard)   # never another's key
        seen += labels
        net.layers[0].close()
    assert set(seen) == set(range(11))


def test_shuffle_option_applies_to_train_only(tmp_path):
    db = image_db(tmp_path / "db", random_images(40, (1, 2, 2)))
    options.configure(shuffle=True, shuffle_seed=3)
    train = batches(data_net(db, batch_size=40, phase=caffe.TRAIN), 1)[0]["label"]
    test = batches(data_net(db, batch_size=40, phase=caffe.TEST), 1)[0]["label"]
    assert sorted(train) == list(range(40)) and list(train) != list(range(40))
    assert list(test) == list(range(40))


@pytest.mark.parametrize("workers", [0, 2])
def test_encoded_records_give_the_raw_records_pixels(tmp_path, workers):
    images = random_images(9, (3, 12, 10))
    transform = "crop_size: 7 mirror: true mean_value: 10 mean_value: 20 mean_value: 30"
    options.configure(decode_workers=workers)
    outs = []
    for db in (image_db(tmp_path / "raw", images), encoded_db(tmp_path / "png", images)):
        caffe.set_random_seed(11)      # same crops and mirrors for both
        net = data_net(db, batch_size=4, transform=transform)
        outs.append(batches(net, 5))
        pool = net.layers[0].prefetcher.pool
        assert (pool is not None) == (workers > 0 and "png" in db)
        net.layers[0].close()
    for a, b in zip(*outs):
        np.testing.assert_array_equal(a["data"], b["data"])
        np.testing.assert_array_equal(a["label"], b["label"])


def test_not_a_datum_record_stops_with_db_and_key_or_is_skipped(tmp_path):
    images = random_images(6, (1, 3, 3))
    records = [(b"%08d" % i, raw_datum(im, i)) for i, im in enumerate(images)]
    records[3] = (b"00000003", b"\x08\x96\x01 this is not a datum \xff\xff")
    db = write_lmdb(tmp_path / "db", records)
    net = data_net(db, batch_size=3)
    net.forward()
    with pytest.raises(DataError, match=r"LMDB '.*db' key '00000003'.*not a .*Datum"):
        net.forward()
    options.configure(skip_corrupt=True)
    net = data_net(db, batch_size=3)
    labels = np.concatenate([b["label"] for b in batches(net, 2)])
    assert labels.tolist() == [0, 1, 2, 0, 4, 5]     # 3 skipped, its place refilled
    assert net.layers[0].prefetcher.corrupt >= 1


def test_skipping_gives_up_after_too_many_corrupt_records_in_a_row(tmp_path, monkeypatch):
    from dist_caffe.data import prefetch
    monkeypatch.setattr(prefetch, "MAX_SKIPS_IN_A_ROW", 3)
    records = [(b"00000000", raw_datum(np.zeros((1, 2, 2), np.uint8), 0))]
    records += [(b"%08d" % i, b"\xff junk") for i in range(1, 5)]
    options.configure(skip_corrupt=True)
    net = data_net(write_lmdb(tmp_path / "db", records), batch_size=2)
    with pytest.raises(DataError, match="corrupt records in a row"):
        net.forward()


@pytest.mark.parametrize("workers", [0, 1])
def test_truncated_jpeg_names_db_and_key(tmp_path, workers):
    images = random_images(4, (3, 16, 16))
    db = encoded_db(tmp_path / "db", images, "jpg")
    import lmdb
    env = lmdb.open(db)
    with env.begin(write=True) as txn:
        datum = caffe_pb2.Datum.FromString(txn.get(b"00000002"))
        datum.data = datum.data[:150]
        txn.put(b"00000002", datum.SerializeToString())
    env.close()
    options.configure(decode_workers=workers)
    net = data_net(db, batch_size=4)
    with pytest.raises(DataError, match=r"key '00000002'.*truncated or corrupt"):
        net.forward()
    options.configure(skip_corrupt=True)
    net = data_net(db, batch_size=4)
    assert net.forward()["label"].tolist() == [0, 1, 0, 3]
    net.layers[0].close()


def test_image_of_another_size_without_crop(tmp_path):
    images = [np.zeros((1, 4, 4), np.uint8)] * 3 + [np.zeros((1, 5, 4), np.uint8)]
    db = write_lmdb(tmp_path / "db", [(b"%08d" % i, raw_datum(im, i)) for i, im in enumerate(images)])
    with pytest.raises(DataError, match=r"key '00000003'.*\(1, 5, 4\).*\(1, 4, 4\).*resize"):
        data_net(db, batch_size=4).forward()


def test_mean_file_of_the_wrong_shape_names_db_and_key(tmp_path):
    db = image_db(tmp_path / "db", random_images(2, (3, 4, 4)))
    blob = caffe_pb2.BlobProto(num=1, channels=3, height=5, width=5)
    blob.data.extend([0.0] * 75)
    (tmp_path / "mean.binaryproto").write_bytes(blob.SerializeToString())
    with pytest.raises(DataError, match=r"LMDB '.*db' key '00000000'.*mean file.*\(3, 5, 5\)"):
        data_net(db, transform=f'mean_file: "{tmp_path}/mean.binaryproto"')


def test_missing_or_non_lmdb_source(tmp_path):
    with pytest.raises(DataError, match="no such directory.*convert_imageset"):
        data_net(tmp_path / "nope")
    (tmp_path / "notdb").mkdir()
    (tmp_path / "notdb" / "data.mdb").write_bytes(b"not an lmdb at all" * 100)
    with pytest.raises(DataError, match="is not an LMDB"):
        data_net(tmp_path / "notdb")
    from dist_caffe.errors import ConfigError
    with pytest.raises(ConfigError, match="data_param.source"):
        data_net("")


def test_close_stops_thread_and_workers(tmp_path):
    import multiprocessing
    options.configure(decode_workers=2)
    net = data_net(encoded_db(tmp_path / "db", random_images(8)), batch_size=4)
    net.forward()
    layer = net.layers[0]
    pids = [p.pid for p in layer.prefetcher.pool._pool]
    assert len(pids) == 2
    layer.close()
    assert not layer.prefetcher._thread.is_alive()
    assert not [p for p in multiprocessing.active_children() if p.pid in pids]
    layer.close()   # idempotent


def test_a_collected_net_stops_its_prefetch_thread(tmp_path):
    import gc
    net = data_net(image_db(tmp_path / "db", random_images(8)), batch_size=2)
    thread = net.layers[0].prefetcher._thread
    del net
    gc.collect()
    thread.join(timeout=5)
    assert not thread.is_alive()


def test_no_process_outlives_an_interpreter_that_never_closed(tmp_path):
    db = encoded_db(tmp_path / "db", random_images(8))
    script = (
        "import sys; sys.path.insert(0, sys.argv[2]);"
        "from tests.data.util import data_net; from dist_caffe.data import options;"
        "from multiprocessing import forkserver as fs;"
        "options.configure(decode_workers=2); net = data_net(sys.argv[1]); net.forward();"
        "print(*[p.pid for p in net.layers[0].prefetcher.pool._pool], fs._forkserver._forkserver_pid)")
    out = subprocess.run([sys.executable, "-c", script, db, REPO], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "leaked" not in out.stderr          # the shared memory was unlinked too
    pids = [int(p) for p in out.stdout.split()]
    assert len(pids) == 3
    deadline = time.time() + 10
    while time.time() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.1)
    assert not [p for p in pids if _alive(p)]


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_consumer_wait_is_measured_and_queue_is_bounded(tmp_path):
    net = data_net(image_db(tmp_path / "db", random_images(20)), batch_size=2,
                   extra="prefetch: 3")
    prefetcher = net.layers[0].prefetcher
    time.sleep(0.3)
    assert prefetcher.full.qsize() == 4 and prefetcher.free.qsize() == 0  # depth + 1 buffers
    net.forward()
    assert prefetcher.stats()["batches"] == 1 and prefetcher.last_wait_s < 0.1
    prefetcher.close()


@pytest.mark.gpu
def test_gpu_tops(tmp_path):
    caffe.set_mode_gpu()
    try:
        images = random_images(4)
        net = data_net(image_db(tmp_path / "db", images), batch_size=4)
        out = net.forward()
        np.testing.assert_array_equal(out["data"].get(), images.astype(np.float32))
    finally:
        caffe.set_mode_cpu()
