"""Which records each replica reads: pure functions of (DB length, world size, rank, epoch).

The padding rule (documented once, used everywhere): an epoch is the index list
``order`` of the n records (``0..n-1``, or a permutation drawn from ``seed + epoch`` when
shuffling: the same on every rank, so ranks agree without talking). It is padded to
``ceil(n / size) * size`` entries by repeating its own first entries (cyclically when
n < size), then cut into `size` contiguous, equal slices; rank r reads slice r. So every
rank reads exactly ``per_rank(n, size)`` records per epoch (equal batch counts: no rank
runs dry before an all-reduce), the shards are disjoint apart from the at most
``size - 1`` padding records, and their union is every record.
"""
import math

import numpy as np


def per_rank(n: int, size: int) -> int:
    """Records each rank reads per epoch: ceil(n / size)."""
    if n <= 0 or size <= 0:
        raise ValueError(f"per_rank needs n > 0 and size > 0, got n={n}, size={size}")
    return math.ceil(n / size)


def padding(n: int, size: int) -> int:
    """How many records are read twice per epoch (by the last ranks): < size."""
    return per_rank(n, size) * size - n


def epoch_order(n: int, epoch: int = 0, shuffle: bool = False, seed: int = 0) -> np.ndarray:
    """The record indices of one epoch, in reading order, before sharding."""
    if not shuffle:
        return np.arange(n, dtype=np.int64)
    return np.random.default_rng([int(seed), int(epoch)]).permutation(n).astype(np.int64)


def shard_indices(n: int, rank: int, size: int, epoch: int = 0, shuffle: bool = False,
                  seed: int = 0) -> np.ndarray:
    """The record indices rank `rank` of `size` reads in `epoch`, in order (see module doc)."""
    if not 0 <= rank < size:
        raise ValueError(f"rank {rank} is outside a world of size {size}")
    order = epoch_order(n, epoch, shuffle, seed)
    k = per_rank(n, size)
    padded = np.resize(order, k * size)  # np.resize repeats the array cyclically
    return padded[rank * k:(rank + 1) * k]


def batches_per_epoch(n: int, size: int, batch_size: int) -> float:
    """Batches each rank reads per epoch (equal on every rank; fractional when a batch
    straddles two epochs, as Caffe's data layer lets it)."""
    return per_rank(n, size) / batch_size


class ShardStream:
    """This rank's record indices as an endless stream, epoch after epoch.

    `take(k)` returns the next k indices (a batch may straddle two epochs, as in Caffe);
    `start` skips that many first (Caffe's rand_skip, applied within the shard).
    """

    def __init__(self, n, rank=0, size=1, shuffle=False, seed=1, start=0):
        self.n, self.rank, self.size, self.shuffle, self.seed = n, rank, size, shuffle, seed
        self.epoch, self.pos = 0, start % per_rank(n, size)
        self._order = None

    def epoch_indices(self, epoch):
        return shard_indices(self.n, self.rank, self.size, epoch, self.shuffle, self.seed)

    def take(self, k, advance=True):
        """The next k indices; with advance=False the stream stays where it was (a peek)."""
        epoch, pos, order, out = self.epoch, self.pos, self._order, []
        while len(out) < k:
            if order is None:
                order = self.epoch_indices(epoch)
            step = order[pos:pos + k - len(out)]
            out.extend(int(i) for i in step)
            pos += len(step)
            if pos >= len(order):
                epoch, pos, order = epoch + 1, 0, None
        if advance:
            self.epoch, self.pos, self._order = epoch, pos, order
        return out
