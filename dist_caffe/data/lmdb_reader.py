"""Read one replica's shard of an LMDB, epoch after epoch, without scanning the DB.

Caffe's tools key records by their index, zero-padded (`%08d`, `%08d_<file>` from
convert_imageset, `%05d` from convert_cifar10), so the i-th record's key starts with
`%0<w>d % (first + i)`. Opening reads the entry count and the first and last keys (no
values); when they show such numbering, record i is found with one `set_range` seek (and
a run of consecutive indices by stepping the cursor). Only for DBs keyed otherwise is the
key list read once (keys only), with a warning. Which indices a rank reads is sharding.py's.
"""
import logging
import os
import re

import lmdb

from ..errors import DataError
from . import sharding

log = logging.getLogger("dist_caffe.data")
_NUMBER = re.compile(rb"^(\d+)(?:\D|$)")


def open_lmdb(source):
    """Open an LMDB read-only; DataError with the fix when the path is missing or not an LMDB."""
    source = os.fspath(source)
    if not os.path.exists(source):
        raise DataError(f"LMDB '{source}': no such directory (relative paths are resolved from "
                        f"{os.getcwd()}); create it with dist-caffe convert_imageset, "
                        "convert_mnist, convert_cifar10 or data digits")
    try:
        return lmdb.open(source, readonly=True, lock=False, readahead=False, max_readers=512,
                         subdir=os.path.isdir(source))
    except lmdb.Error as e:
        raise DataError(f"'{source}' is not an LMDB ({type(e).__name__}: {e}); expected a "
                        "directory holding data.mdb, as convert_imageset writes (LevelDB is not "
                        "supported: convert it with -backend lmdb)") from None


class LmdbReader:
    """Records of rank `rank` of `size` from LMDB `source`, as a stream over epochs.

    `next_records(k)` returns the next k (key, value) pairs of this rank's shard; at the end
    of an epoch it goes on with the next one (reshuffled when `shuffle`; see ShardStream).
    `start` skips that many records of the stream first (Caffe's rand_skip). Counters:
    `values_read`, `seeks`, and with `track_reads` the DB indices read, in `read_indices`.
    """

    def __init__(self, source, rank=0, size=1, shuffle=False, seed=1, start=0,
                 track_reads=False):
        self.source, self.rank, self.size = os.fspath(source), rank, size
        self.shuffle, self.seed = shuffle, seed
        self.env = open_lmdb(source)
        self.n = self.env.stat()["entries"]
        if self.n == 0:
            raise DataError(f"LMDB '{self.source}' is empty (0 records)")
        self.values_read = self.seeks = 0
        self.read_indices = [] if track_reads else None
        self._numbering, self._keys = self._probe_numbering(), None
        self.stream = sharding.ShardStream(self.n, rank, size, shuffle, seed, start)
        self._last = None  # index the cursor rests on, in the current transaction

    def _probe_numbering(self):
        with self.env.begin() as txn, txn.cursor() as cur:
            first = cur.key() if cur.first() else b""
            last = cur.key() if cur.last() else b""
        a, b = _NUMBER.match(first), _NUMBER.match(last)
        if a and b and len(a[1]) == len(b[1]) and int(b[1]) - int(a[1]) + 1 == self.n:
            return int(a[1]), len(a[1])
        return None

    def _key_list(self):
        if self._keys is None:
            log.warning("LMDB '%s': keys are not Caffe's zero-padded record numbers, so its %d "
                        "keys are read once (no values) to find each rank's shard; write the DB "
                        "with dist-caffe's or Caffe's convert tools to avoid this", self.source,
                        self.n)
            with self.env.begin() as txn:
                self._keys = list(txn.cursor().iternext(keys=True, values=False))
        return self._keys

    def _read(self, cur, index):
        """(key, value) of record `index`: a cursor step when it follows the last, else a seek."""
        if self._numbering is not None:
            base, width = self._numbering
            prefix = b"%0*d" % (width, base + index)
            if self._last is not None and self._last == index - 1:
                found = cur.next()
            else:
                found, self.seeks = cur.set_range(prefix), self.seeks + 1
            key = cur.key() if found else b""
            m = _NUMBER.match(key)
            if not (m and m[1] == prefix):  # numbered but with gaps or duplicates: fall back
                self._numbering, self._last = None, None
                return self._read(cur, index)
        else:
            key = self._key_list()[index]
            if not (self._last is not None and self._last == index - 1 and cur.next()):
                cur.set_key(key)
                self.seeks += 1
            key = cur.key()
        self._last = index
        self.values_read += 1
        if self.read_indices is not None:
            self.read_indices.append(index)
        return key, cur.value()

    def epoch_indices(self, epoch):
        """DB indices this rank reads in `epoch`, in order."""
        return self.stream.epoch_indices(epoch)

    def next_records(self, k, advance=True):
        """The next k (key, value) pairs of this rank's stream (advance=False: a peek)."""
        with self.env.begin() as txn, txn.cursor() as cur:
            self._last = None
            return [self._read(cur, i) for i in self.stream.take(k, advance)]

    def close(self):
        self.env.close()
