"""Helpers for the data tests: LMDBs built with lmdb + caffe_pb2 only, a stand-in world."""
import contextlib

import lmdb
import numpy as np

from dist_caffe.parallel import LocalCommunicator, set_world, world
from dist_caffe.proto import caffe_pb2, parse_text


def raw_datum(image, label):
    """Datum bytes of a CHW uint8 image, written field by field from the schema."""
    c, h, w = image.shape
    return caffe_pb2.Datum(channels=c, height=h, width=w, data=image.tobytes(),
                           label=int(label)).SerializeToString()


def write_lmdb(path, records):
    """An LMDB of (key bytes, value bytes), written with py-lmdb directly."""
    env = lmdb.open(str(path), map_size=1 << 28)
    with env.begin(write=True) as txn:
        for key, value in records:
            txn.put(key, value)
    env.close()
    return str(path)


def image_db(path, images, labels=None, key="%08d"):
    labels = range(len(images)) if labels is None else labels
    return write_lmdb(path, [((key % i).encode(), raw_datum(im, y))
                             for i, (im, y) in enumerate(zip(images, labels))])


def random_images(n, shape=(3, 10, 12), seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n,) + shape, dtype=np.uint8)


class FakeWorld(LocalCommunicator):
    def __init__(self, rank, size):
        self.rank, self.size = rank, size


@contextlib.contextmanager
def as_rank(rank, size):
    """Make world() say this process is rank `rank` of `size` inside the block."""
    old = world()
    set_world(FakeWorld(rank, size))
    try:
        yield
    finally:
        set_world(old)


def data_net(source, batch_size=4, transform="", phase=0, extra="", type_="Data"):
    """A Net of one data layer (tops data, label) reading `source`."""
    from dist_caffe import Net
    param = "data_param" if type_ == "Data" else "image_data_param"
    text = (f'layer {{ name: "d" type: "{type_}" top: "data" top: "label" '
            f'{param} {{ source: "{source}" batch_size: {batch_size} {extra} }} '
            f'transform_param {{ {transform} }} }}')
    return Net(parse_text(text, caffe_pb2.NetParameter), phase)
