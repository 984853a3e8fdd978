"""dist-caffe compute_image_mean [-backend lmdb] INPUT_DB [OUTPUT_FILE]

Caffe's compute_image_mean: the per-pixel mean C x H x W image of every record in an LMDB
(raw, float or encoded Datum), written as a 1 x C x H x W BlobProto binaryproto (the legacy
num/channels/height/width fields, as Caffe writes it) for transform_param.mean_file. The
sum is kept in float64 (Caffe's float32 sum rounds past 2^24 = 16.7M, ~65,000 images). Also
prints each channel's mean, the numbers transform_param.mean_value takes.
"""
import numpy as np

from ..data.convert import ToolParser, check_backend, progress
from ..data.datum import datum_to_array, parse_datum
from ..data.lmdb_reader import open_lmdb
from ..errors import DataError
from ..proto import caffe_pb2, write_binary


def image_mean(source, skip_corrupt=False):
    """(mean C x H x W float64 array, records used, records skipped) of an LMDB of Datum."""
    env = open_lmdb(source)
    total, count, skipped, shape = None, 0, 0, None
    with env.begin() as txn:
        for key, value in progress(txn.cursor(), env.stat()["entries"], "compute_image_mean"):
            where = f"LMDB '{source}' key '{key.decode(errors='replace')}'"
            try:
                image, _ = datum_to_array(parse_datum(value, where), where)
                if shape is None:
                    shape, total = image.shape, np.zeros(image.shape, np.float64)
                elif image.shape != shape:
                    raise DataError(f"{where}: image is {image.shape} (C, H, W) but the first "
                                    f"record is {shape}; a mean needs equal sizes (convert with "
                                    "-resize_height/-resize_width)")
            except DataError:
                if not skip_corrupt:
                    raise
                skipped += 1
                continue
            total += image
            count += 1
    env.close()
    if not count:
        raise DataError(f"LMDB '{source}': no usable records to average")
    return total / count, count, skipped


def mean_blob(mean):
    """A BlobProto of a C x H x W mean, with Caffe's legacy 1 x C x H x W shape fields."""
    c, h, w = mean.shape
    blob = caffe_pb2.BlobProto(num=1, channels=c, height=h, width=w)
    blob.data.extend(mean.astype(np.float32).ravel().tolist())
    return blob


def main(argv):
    p = ToolParser("compute_image_mean", "Compute the mean image of an LMDB of Datum records.")
    p.add_argument("input_db")
    p.add_argument("output_file", nargs="?")
    p.add_argument("--backend", default="lmdb", help="db backend (lmdb only)")
    p.add_bool("skip_corrupt", "skip records that cannot be decoded (and count them)")
    args = p.parse(argv[1:])
    check_backend(args.backend)
    mean, count, skipped = image_mean(args.input_db, args.skip_corrupt)
    print(f"Processed {count} files ({skipped} corrupt skipped).")
    if args.output_file:
        write_binary(mean_blob(mean), args.output_file)
        print(f"Write to {args.output_file}")
    print(f"Number of channels: {mean.shape[0]}")
    for c, value in enumerate(mean.reshape(mean.shape[0], -1).mean(axis=1)):
        print(f"mean_value channel [{c}]: {value:.6g}")
    return 0
