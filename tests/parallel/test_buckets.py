"""Bucket layout: reverse order of readiness, size caps, the small first bucket, shared and
frozen params — on hand-made layouts and on a real Net's flat buffer."""
from dataclasses import dataclass

import numpy as np
import pytest

from dist_caffe import Net, TRAIN
from dist_caffe.parallel.reducer import MB, assign_buckets
from dist_caffe.proto import caffe_pb2, parse_text

from .jobs import NET


@dataclass
class Entry:
    layer_name: str
    index: int
    offset: int
    count: int
    ready_layer: int
    lr_mult: float = 1.0


def layout(*specs):
    """Entries (name, count, ready_layer) laid out back to back, as Net._flatten does."""
    out, offset = [], 0
    for name, count, ready in specs:
        out.append(Entry(name, 0, offset, count, ready))
        offset += count
    return out, offset


def check_tiling(buckets, total):
    assert buckets[0].start == 0 and buckets[-1].end == total
    for a, b in zip(buckets, buckets[1:]):
        assert a.end == b.start  # contiguous, in layout order
    assert [b.index for b in buckets] == list(range(len(buckets)))


def test_whole_params_in_layout_order_with_caps():
    # 1 MB = 262144 floats. Ready layers fall as backward goes: 9, 7, 7, 4, 2.
    entries, total = layout(("fc8", 200_000, 9), ("fc7", 300_000, 7), ("fc7b", 10, 7),
                            ("conv2", 2_000_000, 4), ("conv1", 500_000, 2))
    buckets = assign_buckets(entries, total, 4, bucket_mb=10, first_bucket_mb=1)
    check_tiling(buckets, total)
    # first bucket: only what fits in 1 MB -> fc8 alone; then up to 10 MB = 2621440 floats
    assert (buckets[0].start, buckets[0].end, buckets[0].params) == (0, 200_000, ["fc8[0]"])
    assert buckets[1].params == ["fc7[0]", "fc7b[0]", "conv2[0]"]
    assert buckets[2].params == ["conv1[0]"]
    for b, cap in zip(buckets, [1, 10, 10]):
        assert b.count * 4 <= cap * MB
    # a bucket is final after the earliest layer among its params; order is non-increasing
    assert [b.ready_layer for b in buckets] == [9, 4, 2]


def test_param_larger_than_cap_is_split_and_cap_holds():
    entries, total = layout(("fc6", 10 * MB // 4 + 123, 5), ("conv", 1000, 1))
    buckets = assign_buckets(entries, total, 4, bucket_mb=2, first_bucket_mb=0.5)
    check_tiling(buckets, total)
    assert buckets[0].count == MB // 2 // 4           # the first, small bucket: 0.5 MB exactly
    assert all(b.count * 4 <= 2 * MB for b in buckets)
    assert all(b.ready_layer == 5 for b in buckets[:-1])
    assert buckets[-1].params == ["fc6[0]", "conv[0]"] and buckets[-1].ready_layer == 1
    assert sum(b.count for b in buckets) == total


def test_frozen_tail_gets_no_bucket():
    entries, total = layout(("a", 100, 3), ("b", 100, 1), ("frozen", 500, 2))
    buckets = assign_buckets(entries, 200, 4, bucket_mb=25, first_bucket_mb=1)
    assert buckets[-1].end == 200 and all("frozen[0]" not in b.params for b in buckets)


def test_bad_sizes_are_refused():
    entries, total = layout(("a", 10, 1))
    with pytest.raises(ValueError, match="bucket sizes"):
        assign_buckets(entries, total, 4, bucket_mb=0)


def test_real_net_shared_and_frozen_params():
    """The jobs' net: conv2/conv3 share `shared_w` (owner conv2, so it is final only after
    conv2's backward), conv3's bias is frozen (lr_mult 0) and sits past learnable_count."""
    net = Net(parse_text(NET.format(b=2), caffe_pb2.NetParameter), TRAIN)
    index = {name: i for i, name in enumerate(net.layer_dict)}
    buckets = assign_buckets(net.param_layout, net.learnable_count, 4,
                             bucket_mb=0.002, first_bucket_mb=0.0005)
    check_tiling(buckets, net.learnable_count)
    assert net.learnable_count == net.param_data.size - 6     # conv3's 6 frozen biases
    ready = [b.ready_layer for b in buckets]
    assert ready == sorted(ready, reverse=True)                # reverse order of readiness
    owner = next(b for b in buckets if "conv2[0]" in b.params)
    assert owner.ready_layer <= index["conv2"] < index["conv3"]
    assert not any("conv3" in p for b in buckets for p in b.params)  # shared: counted once
    covered = np.zeros(net.learnable_count, bool)
    for b in buckets:
        covered[b.start:b.end] = True
        assert b.count * 4 <= (0.0005 if b.index == 0 else 0.002) * MB
    assert covered.all()
    # every param's gradient is final by the time its bucket starts
    for b in buckets:
        for e in net.param_layout:
            if e.offset < b.end and e.offset + e.count > b.start:
                assert e.ready_layer >= b.ready_layer
