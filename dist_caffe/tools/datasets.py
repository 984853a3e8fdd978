"""dist-caffe data digits [--out data/digits] [--force]
dist-caffe data fashion_mnist [--src /usr/share/datasets/fashion-mnist] [--out data/fashion_mnist]

Build the data sets the configs/ solvers train on, as train/test LMDBs of Datum records
(paths relative to where you run it: run from the repo root, as configs/ expect).

* `digits`: the embedded default, needing no download: scikit-learn's bundled 8 x 8
  handwritten digits (1,797 images, 0..16), scaled to 0..255, upsampled to 28 x 28 with
  Pillow's bilinear filter and rounded to uint8. A fixed permutation puts 360 images in
  `<out>/digits_test_lmdb` and 1,437 in `<out>/digits_train_lmdb`, identically on every run.
* `fashion_mnist`: the real Fashion-MNIST IDX files (Debian: apt-get install
  dataset-fashion-mnist) into `<out>/fashion_train_lmdb` and `<out>/fashion_test_lmdb`.

Existing DBs are kept (so the command can open every job script) unless --force.
"""
import os
import shutil

import numpy as np
from PIL import Image

from ..data.convert import write_records
from ..data.datum import array_to_datum
from ..data.lmdb_writer import record_key
from ..errors import DataError
from .convert_mnist import convert as convert_mnist
from .flags import Parser

DIGITS_TEST, DIGITS_SEED = 360, 1998
FASHION_SRC = "/usr/share/datasets/fashion-mnist"


def digits_arrays():
    """(images uint8 N x 28 x 28, labels int N) of scikit-learn's digits, upsampled."""
    from sklearn.datasets import load_digits
    digits = load_digits()
    out = np.empty((len(digits.images), 28, 28), np.uint8)
    for i, image in enumerate(digits.images):  # one Pillow resize per 8x8 image
        big = Image.fromarray((image * (255.0 / 16.0)).astype(np.float32), mode="F")
        big = np.asarray(big.resize((28, 28), Image.BILINEAR))
        out[i] = np.clip(np.rint(big), 0, 255).astype(np.uint8)
    return out, digits.target.astype(np.int64)


def digits_split():
    """{"train": (images, labels), "test": (images, labels)} with the fixed permutation."""
    images, labels = digits_arrays()
    order = np.random.default_rng(DIGITS_SEED).permutation(len(images))
    test, train = order[:DIGITS_TEST], order[DIGITS_TEST:]
    return {"train": (images[train], labels[train]), "test": (images[test], labels[test])}


def build_digits(out):
    for split, (images, labels) in digits_split().items():
        db = os.path.join(out, f"digits_{split}_lmdb")
        records = ((record_key(i), array_to_datum(img[None], int(y)))
                   for i, (img, y) in enumerate(zip(images, labels)))
        print(f"Wrote {write_records(db, records, len(images))} {split} records to {db}.")


def build_fashion_mnist(out, src=FASHION_SRC):
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images = os.path.join(src, f"{prefix}-images-idx3-ubyte.gz")
        if not os.path.exists(images):
            raise DataError(f"'{images}' is missing; install Fashion-MNIST (Debian/Ubuntu: "
                            "apt-get install dataset-fashion-mnist) or pass --src DIR")
        db = os.path.join(out, f"fashion_{split}_lmdb")
        count = convert_mnist(images, os.path.join(src, f"{prefix}-labels-idx1-ubyte.gz"), db)
        print(f"Wrote {count} {split} records to {db}.")


DATASETS = {"digits": ("data/digits", ("digits_train_lmdb", "digits_test_lmdb")),
            "fashion_mnist": ("data/fashion_mnist", ("fashion_train_lmdb", "fashion_test_lmdb"))}


def main(argv):
    p = Parser("data", "Build a data set's train/test LMDBs.")
    p.add_argument("name", choices=sorted(DATASETS))
    p.add_argument("--out", help="output folder (default: data/<name> under the current one)")
    p.add_argument("--src", default=FASHION_SRC, help="fashion_mnist: folder of the IDX files")
    p.add_argument("--force", action="store_true", help="rebuild DBs that already exist")
    args = p.parse(argv[1:])
    default_out, dbs = DATASETS[args.name]
    out = args.out or default_out
    paths = [os.path.join(out, db) for db in dbs]
    if all(os.path.exists(path) for path in paths) and not args.force:
        print(f"{' and '.join(paths)} already exist (pass --force to rebuild them).")
        return 0
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)
    build_digits(out) if args.name == "digits" else build_fashion_mnist(out, args.src)
    return 0
