"""kernels/accuracy.cu against Caffe's CPU rule written literally: sort (score, class) pairs
in descending order and look for the label among the first top_k."""
import numpy as np
import pytest

F = "accuracy.cu"


def reference(x, label, top_k, ignore):
    outer, c, inner = x.shape
    hit, valid = np.zeros((outer, inner)), np.zeros((outer, inner))
    for o, i in np.ndindex(outer, inner):
        lab = int(label[o, i])
        if ignore is not None and lab == ignore:
            continue
        ranked = sorted(((x[o, k, i], k) for k in range(c)), reverse=True)
        hit[o, i] = lab in [k for _, k in ranked[:top_k]]
        valid[o, i] = 1
    return hit, valid


@pytest.mark.parametrize("shape", [(1, 1, 1), (8, 10, 1), (3, 5, 7), (2, 1000, 1)], ids=str)
@pytest.mark.parametrize("top_k", [1, 3])
@pytest.mark.parametrize("ignore", [None, 2])
@pytest.mark.parametrize("ties", [False, True])
def test_accuracy(dev, dtype, shape, top_k, ignore, ties):
    outer, c, inner = shape
    top_k = min(top_k, c)
    rng = np.random.default_rng(c * inner + top_k)
    x = rng.integers(0, 3, shape) if ties else rng.standard_normal(shape)  # ties: few values
    x = x.astype(dtype)
    label = rng.integers(0, c, (outer, inner))
    hit_ref, valid_ref = reference(x, label, top_k, ignore)
    n = outer * inner
    has, ig = (0, 0) if ignore is None else (1, ignore)
    hit, valid, bad = dev.run(F, "accuracy_forward", n, x, label.astype(dtype), c, inner, top_k, has, ig,
                              np.full(n, np.nan, dtype), np.full(n, np.nan, dtype), np.zeros(1, np.int32))[2:]
    np.testing.assert_array_equal(hit.reshape(hit_ref.shape), hit_ref)
    np.testing.assert_array_equal(valid.reshape(valid_ref.shape), valid_ref)
    assert bad[0] == 0


def test_out_of_range_label(dev):
    x = np.zeros((3, 4, 1), np.float32)
    hit, valid, bad = dev.run(F, "accuracy_forward", 3, x, np.array([1, 4, -1], np.float32), 4, 1, 1,
                              0, 0, np.zeros(3, np.float32), np.zeros(3, np.float32), np.zeros(1, np.int32))[2:]
    assert bad[0] in (2, 3)
    np.testing.assert_array_equal(valid, [1, 0, 0])
