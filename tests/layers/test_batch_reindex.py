"""BatchReindex: gather items of a batch by index."""
import numpy as np
import pytest

from dist_caffe.errors import ConfigError, DataError
from dist_caffe.testing import (assert_cpu_gpu_parity, check_gradient, make_layer, run_layer,
                                setup_layer)


PERMUT = np.array([3.0, 0.0, 3.0, 1.0, 1.0])


def test_batch_reindex_forward_matches_numpy():
    x = np.random.default_rng(0).standard_normal((4, 3, 2))
    (y,) = run_layer(make_layer("type: 'BatchReindex'"), [x, PERMUT])
    np.testing.assert_array_equal(y, x[PERMUT.astype(int)])


@pytest.mark.parametrize("shape", [(4, 3, 2), (4,)])
def test_batch_reindex_gradient(shape):
    x = np.random.default_rng(1).standard_normal(shape)
    check_gradient(make_layer("type: 'BatchReindex'"), bottoms=[x, PERMUT], check_bottom=[0])


def test_batch_reindex_unpicked_items_get_zero_gradient():
    layer = make_layer("type: 'BatchReindex'")
    bottom, top = setup_layer(layer, [np.ones((4, 2)), PERMUT])
    layer.forward(bottom, top)
    top[0].diff[...] = 1
    bottom[0].diff[...] = 9
    layer.backward(top, [True, False], bottom)
    np.testing.assert_array_equal(bottom[0].diff[:, 0], [1, 2, 0, 2])


def test_batch_reindex_bad_input():
    with pytest.raises(ConfigError, match="bottom"):
        setup_layer(make_layer("type: 'BatchReindex'"), [np.ones((4, 2)), np.ones((5, 1))])
    with pytest.raises(DataError, match="out of range"):
        run_layer(make_layer("type: 'BatchReindex'"), [np.ones((4, 2)), np.array([4.0])])


@pytest.mark.gpu
def test_batch_reindex_cpu_gpu_parity():
    assert_cpu_gpu_parity("type: 'BatchReindex'",
                          bottoms=[np.random.default_rng(2).standard_normal((4, 3)), PERMUT],
                          propagate_down=[True, False])
