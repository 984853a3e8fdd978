"""dist-caffe convert_imageset [FLAGS] ROOTFOLDER/ LISTFILE DB_NAME

Caffe's convert_imageset: every `path label` line of LISTFILE (path relative to ROOTFOLDER,
joined as a plain string prefix) becomes a Datum in a new LMDB, keyed `%08d_<path>`.
Raw records hold CHW BGR bytes, as Caffe's OpenCV loader gives; -encoded keeps the image
file's own bytes when no resize or colour change is asked for (else re-encodes them as
-encode_type). Images that cannot be read are skipped with a warning, as Caffe does; the
keys stay numbered without gaps so readers can find any record by seeking.
"""
import sys

import numpy as np
from PIL import Image

from ..data.convert import ToolParser, check_backend, progress
from ..data.datum import array_to_datum, encode_chw, encoded_datum, read_image
from ..data.lmdb_writer import LmdbWriter, record_key
from ..errors import ConfigError, DataError
from ..layers.image_data import read_list_file


def parser():
    p = ToolParser("convert_imageset", "Convert a set of images to an LMDB of Datum records.")
    p.add_argument("root_folder")
    p.add_argument("listfile")
    p.add_argument("db_name")
    p.add_bool("gray", "store images as 1-channel grayscale")
    p.add_bool("shuffle", "shuffle the order of images (with -seed)")
    p.add_argument("--seed", type=int, default=0, help="shuffle seed")
    p.add_argument("--backend", default="lmdb", help="db backend (lmdb only)")
    p.add_argument("--resize_width", type=int, default=0, help="resize images to this width")
    p.add_argument("--resize_height", type=int, default=0, help="resize images to this height")
    p.add_bool("check_size", "stop when two raw images differ in size")
    p.add_bool("encoded", "store the encoded image file bytes in the Datum")
    p.add_argument("--encode_type", default="", help="encoding of -encoded records ('png', "
                   "'jpg', ...); default: each file's own")
    return p


def _extension(path):
    ext = path.rsplit(".", 1)[-1].lower() if "." in path else ""
    return "jpg" if ext == "jpeg" else ext


def make_datum(path, label, args):
    """The Datum of one image file, as convert_imageset's flags ask."""
    color = not args.gray
    resize = (args.resize_height, args.resize_width) if args.resize_height and \
        args.resize_width else (0, 0)
    image = read_image(path, color, *resize)
    if not args.encoded:
        return array_to_datum(image, label)
    encoding = _extension("." + args.encode_type) if args.encode_type else _extension(path)
    if not any(resize) and _extension(path) == encoding and _same_mode(path, color):
        with open(path, "rb") as f:  # the file as it is, like Caffe's ReadFileToDatum
            return encoded_datum(f.read(), label)
    return encoded_datum(encode_chw(image, encoding), label)


def _same_mode(path, color):
    with Image.open(path) as img:
        return img.mode == ("RGB" if color else "L")


def main(argv):
    args = parser().parse(argv[1:])
    check_backend(args.backend)
    if args.encode_type and "." + args.encode_type.lower() not in Image.registered_extensions():
        raise ConfigError(f"-encode_type {args.encode_type}: Pillow cannot write it; use png "
                          "(lossless) or jpg")
    if bool(args.resize_height) != bool(args.resize_width):
        print("convert_imageset: -resize_height and -resize_width go together; "
              "images are not resized", file=sys.stderr)
    lines = read_list_file(args.listfile)
    if args.shuffle:
        order = np.random.default_rng(args.seed).permutation(len(lines))
        lines = [lines[i] for i in order]
    first_size, skipped = None, 0
    with LmdbWriter(args.db_name) as db:
        for number, (name, label) in enumerate(progress(lines, desc="convert_imageset"), 1):
            try:
                datum = make_datum(args.root_folder + name, label, args)
            except DataError as e:
                print(f"convert_imageset: skipping {args.listfile} line {number}: {e}",
                      file=sys.stderr)
                skipped += 1
                continue
            if args.check_size and not datum.encoded:
                size = (datum.channels, datum.height, datum.width)
                if first_size is None:
                    first_size = size
                elif size != first_size:
                    raise DataError(
                        f"{args.listfile} line {number}: image '{name}' is {size} (C, H, W) but "
                        f"the first image is {first_size}; pass -resize_height and "
                        "-resize_width to make them equal, or drop -check_size")
            db.put(record_key(db.count, name), datum.SerializeToString())
        count = db.count
    print(f"Processed {count} files ({skipped} skipped) into {args.db_name}.")
    return 0
