"""Data: batches of images and labels from this replica's shard of an LMDB of Datum records."""
import logging

import numpy as np

from ..data.datum import datum_to_array, parse_datum
from ..data.lmdb_reader import LmdbReader
from ..data.options import decode_workers, options
from ..data.prefetch import Prefetcher
from ..data.transformer import DataTransformer
from ..errors import DataError
from ..layer import TRAIN, Layer, register_layer
from ..parallel import world

log = logging.getLogger("dist_caffe.data")


class DatumDecoder:
    """(key, LMDB value) -> (CHW image, label); picklable, so decode workers can run it."""

    def __init__(self, source, color=None):
        self.source, self.color = source, color

    def where(self, key):
        return f"LMDB '{self.source}' key '{key.decode(errors='replace')}'"

    def __call__(self, key, value):
        where = self.where(key)
        return datum_to_array(parse_datum(value, where), where, self.color)


def _first_records(next_items):
    """The stream's first record, then (only if that one is corrupt) the next 15."""
    yield from next_items(1, advance=False)
    yield from next_items(16, advance=False)[1:]


class PrefetchingDataLayer(Layer):
    """Shared body of the data layers: a transformer, a first record for the shapes, and a
    Prefetcher whose batches `forward` copies into top[0] (data) and top[1] (label)."""

    exact_num_bottom, min_top, max_top, has_backward = 0, 1, 2, False

    def start(self, next_items, decoder, where, batch_size, depth):
        """Shape the tops from the first decodable record and start prefetching."""
        opts = options()
        gen = self.rng
        self.transformer = DataTransformer(self.param.transform_param, self.phase,
                                           np.random.default_rng(int(gen.integers(2**63))),
                                           where=f"layer '{self.name}' ({self.type}): ")
        image = None
        for key, payload in _first_records(next_items):
            try:
                image = decoder(key, payload)[0]
                self.transformer.check(image.shape, where(key))
                encoded = self.is_encoded(payload)
                break
            except DataError:
                if not opts.skip_corrupt:
                    raise
        if image is None:
            raise DataError(f"layer '{self.name}' ({self.type}): the first 16 records of this "
                            "rank's shard are all corrupt")
        self.top_shape = (batch_size,) + self.transformer.output_shape(image.shape)
        workers = decode_workers(world().intra_size) if encoded else 0
        self.prefetcher = Prefetcher(next_items, decoder, self.transformer, self.top_shape,
                                     where, image.dtype, depth=depth, workers=workers,
                                     skip_corrupt=opts.skip_corrupt, name=f"prefetch-{self.name}")
        log.info("%s: %s, rank %d of %d, prefetch %d, %d decode worker(s)", self.name,
                 self.top_shape, world().rank, world().size, depth, workers)

    def is_encoded(self, payload):
        """Whether records like this one need decoding (and so the worker processes)."""
        return True

    def reshape(self, bottom, top):
        top[0].reshape(self.top_shape)
        if len(top) > 1:
            top[1].reshape(self.top_shape[:1])

    def forward(self, bottom, top):
        batch = self.prefetcher.get()
        top[0].data = batch.data
        if len(top) > 1:
            top[1].data = batch.labels

    def close(self):
        """Stop prefetching (also done when the layer is garbage-collected or at exit)."""
        self.prefetcher.close()


@register_layer
class DataLayer(PrefetchingDataLayer):
    """Images and labels from an LMDB of Datum records, rank r of W reading its own shard.

    Reads data_param: source, batch_size, rand_skip (skip up to that many records of the
    shard first), prefetch (ready batches queued), backend (LMDB; LEVELDB is accepted only
    when the source is an LMDB directory); and transform_param (see DataTransformer).
    world().rank/.size choose the shard (dist_caffe.data.sharding); the DIST_CAFFE_*
    options (dist_caffe.data.options) add shuffling (TRAIN), skip-corrupt, decode workers.
    """

    type = "Data"

    def layer_setup(self, bottom, top):
        dp = self.param.data_param
        if not dp.source:
            raise self.error("data_param.source", "is empty; set it to an LMDB directory")
        if dp.batch_size <= 0:
            raise self.error("data_param.batch_size", f"is {dp.batch_size}; must be > 0")
        for legacy in ("scale", "mean_file", "crop_size", "mirror"):
            if dp.HasField(legacy):
                log.warning("layer '%s': data_param.%s is ignored (a legacy field); move it "
                            "to transform_param", self.name, legacy)
        opts, comm = options(), world()
        skip = int(self.rng.integers(dp.rand_skip)) if dp.rand_skip else 0
        self.reader = LmdbReader(dp.source, comm.rank, comm.size, start=skip,
                                 shuffle=opts.shuffle and self.phase == TRAIN,
                                 seed=opts.shuffle_seed)
        tp = self.param.transform_param
        color = True if tp.force_color else False if tp.force_gray else None
        decoder = DatumDecoder(self.reader.source, color)
        self.start(self.reader.next_records, decoder, decoder.where, dp.batch_size, dp.prefetch)

    def is_encoded(self, payload):
        return parse_datum(payload, "").encoded
