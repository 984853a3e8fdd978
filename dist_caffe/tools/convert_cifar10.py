"""dist-caffe convert_cifar10 [-backend lmdb] INPUT_FOLDER OUTPUT_FOLDER

Caffe's convert_cifar10_data: the CIFAR-10 binary version (data_batch_1..5.bin, test_batch.bin;
each record a label byte then 3 x 32 x 32 pixel bytes, channel-major RGB) into
OUTPUT_FOLDER/cifar10_train_lmdb and cifar10_test_lmdb. Pixels are stored as the file has
them (so in RGB order, as in Caffe's CIFAR LMDBs); keys are `%05d` of batch * 10000 + index.
"""
import os

import numpy as np

from ..data.convert import check_backend, write_records
from ..data.datum import array_to_datum
from ..data.lmdb_writer import record_key
from ..errors import DataError
from .flags import Parser

RECORD = 1 + 3 * 32 * 32
TRAIN_FILES = [f"data_batch_{i}.bin" for i in range(1, 6)]
TEST_FILES = ["test_batch.bin"]


def read_batch(path):
    """(labels uint8 N, images uint8 N x 3 x 32 x 32) of one CIFAR-10 binary batch file."""
    try:
        raw = np.fromfile(path, np.uint8)
    except OSError as e:
        raise DataError(f"CIFAR-10 batch '{path}': cannot read it ({e.strerror}); download and "
                        "unpack the 'CIFAR-10 binary version' (cifar-10-binary.tar.gz)") from None
    if raw.size == 0 or raw.size % RECORD:
        raise DataError(f"CIFAR-10 batch '{path}': {raw.size} bytes is not a whole number of "
                        f"{RECORD}-byte records; the file is truncated or not the binary version")
    raw = raw.reshape(-1, RECORD)
    return raw[:, 0], raw[:, 1:].reshape(-1, 3, 32, 32)


def records(folder, files):
    for j, name in enumerate(files):
        labels, images = read_batch(os.path.join(folder, name))
        for i, (label, image) in enumerate(zip(labels, images)):
            yield record_key(j * 10000 + i, width=5), array_to_datum(image, int(label))


def main(argv):
    p = Parser("convert_cifar10", "Convert the CIFAR-10 binary batches to train/test LMDBs.")
    p.add_argument("input_folder")
    p.add_argument("output_folder")
    p.add_argument("--backend", default="lmdb", help="db backend (lmdb only)")
    args = p.parse(argv[1:])
    check_backend(args.backend)
    for split, files in (("train", TRAIN_FILES), ("test", TEST_FILES)):
        missing = [f for f in files if not os.path.exists(os.path.join(args.input_folder, f))]
        if missing:
            raise DataError(f"'{args.input_folder}' lacks {', '.join(missing)}; pass the folder "
                            "of the unpacked CIFAR-10 binary version")
    for split, files in (("train", TRAIN_FILES), ("test", TEST_FILES)):
        db = os.path.join(args.output_folder, f"cifar10_{split}_lmdb")
        count = write_records(db, records(args.input_folder, files), None, f"cifar10 {split}")
        print(f"Wrote {count} {split} records to {db}.")
    return 0
