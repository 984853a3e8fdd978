"""dist-caffe convert_mnist [-backend lmdb] IMAGES LABELS DB

Caffe's convert_mnist_data: MNIST-format IDX files (MNIST, Fashion-MNIST; plain or .gz)
into an LMDB of 1 x 28 x 28 raw Datum records keyed `%08d`. Debian's dataset-fashion-mnist
package installs Fashion-MNIST's files in /usr/share/datasets/fashion-mnist/.
"""
import gzip
import os

import numpy as np

from ..data.convert import check_backend, write_records
from ..data.datum import array_to_datum
from ..data.lmdb_writer import record_key
from ..errors import DataError
from .flags import Parser

IMAGE_MAGIC, LABEL_MAGIC = 2051, 2049


def read_idx(path, magic):
    """The array of an IDX file (big-endian header: magic, then one int32 per dimension)."""
    try:
        with (gzip.open if str(path).endswith(".gz") else open)(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise DataError(f"IDX file '{path}': cannot read it ({e})") from None
    ndim = {IMAGE_MAGIC: 3, LABEL_MAGIC: 1}[magic]
    found = int.from_bytes(raw[:4], "big") if len(raw) >= 4 else "nothing"
    if found != magic:
        raise DataError(f"IDX file '{path}': magic number {found}, expected {magic} "
                        f"({'images' if magic == IMAGE_MAGIC else 'labels'}); check which file "
                        "is the images and which the labels")
    if len(raw) < 4 + 4 * ndim:
        raise DataError(f"IDX file '{path}': {len(raw)} bytes is too short for its header; "
                        "the file is truncated")
    header = np.frombuffer(raw[:4 + 4 * ndim], ">u4")
    shape = tuple(int(d) for d in header[1:])
    body = np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim)
    if body.size != np.prod(shape):
        raise DataError(f"IDX file '{path}': header says {shape} but holds {body.size} bytes; "
                        "the file is truncated")
    return body.reshape(shape)


def convert(images_path, labels_path, db_path):
    """Write the LMDB; returns the record count."""
    images, labels = read_idx(images_path, IMAGE_MAGIC), read_idx(labels_path, LABEL_MAGIC)
    if len(images) != len(labels):
        raise DataError(f"'{images_path}' has {len(images)} images but '{labels_path}' has "
                        f"{len(labels)} labels; they must come from the same set")
    records = ((record_key(i), array_to_datum(img[None], int(label)))
               for i, (img, label) in enumerate(zip(images, labels)))
    desc = f"convert_mnist {os.path.basename(db_path)}"
    return write_records(db_path, records, len(images), desc)


def main(argv):
    p = Parser("convert_mnist", "Convert MNIST-format IDX files (.gz too) to an LMDB.")
    p.add_argument("images")
    p.add_argument("labels")
    p.add_argument("db")
    p.add_argument("--backend", default="lmdb", help="db backend (lmdb only)")
    args = p.parse(argv[1:])
    check_backend(args.backend)
    print(f"Processed {convert(args.images, args.labels, args.db)} items into {args.db}.")
    return 0
