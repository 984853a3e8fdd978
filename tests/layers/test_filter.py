"""Filter: keep the items a selector marks."""
import numpy as np
import pytest

from dist_caffe.errors import ConfigError
from dist_caffe.testing import assert_cpu_gpu_parity, make_layer, run_layer, setup_layer

SELECT = np.array([1.0, 0.0, 1.0, 1.0])


def test_filter_forward_keeps_selected_items_of_every_bottom():
    g = np.random.default_rng(0)
    a, b = g.standard_normal((4, 3)), g.standard_normal((4, 2, 2))
    ya, yb = run_layer(make_layer("type: 'Filter'"), [a, b, SELECT], num_top=2)
    np.testing.assert_array_equal(ya, a[[0, 2, 3]])
    np.testing.assert_array_equal(yb, b[[0, 2, 3]])


def test_filter_sets_up_with_all_items_then_follows_the_selector():
    layer = make_layer("type: 'Filter'")
    bottom, top = setup_layer(layer, [np.ones((4, 3)), SELECT.reshape(4, 1)], num_top=1)
    assert top[0].shape == (4, 3)  # Caffe's first reshape: data not read yet
    layer.reshape(bottom, top)
    assert top[0].shape == (3, 3)
    bottom[1].data[...] = 0
    layer.reshape(bottom, top)
    assert top[0].shape == (0, 3)


def test_filter_backward_routes_gradients_to_kept_items():
    g = np.random.default_rng(1)
    layer = make_layer("type: 'Filter'")
    bottom, top = setup_layer(layer, [g.standard_normal((4, 3)), SELECT], num_top=1)
    layer.reshape(bottom, top)
    layer.forward(bottom, top)
    dy = g.standard_normal((3, 3))
    top[0].diff[...] = dy
    bottom[0].diff[...] = 5
    layer.backward(top, [True, False], bottom)
    expected = np.zeros((4, 3))
    expected[[0, 2, 3]] = dy
    np.testing.assert_array_equal(bottom[0].diff, expected)


def test_filter_bad_config_names_field():
    with pytest.raises(ConfigError, match="top"):
        setup_layer(make_layer("type: 'Filter'"), [np.ones((4, 3)), SELECT], num_top=2)
    with pytest.raises(ConfigError, match="selector"):
        setup_layer(make_layer("type: 'Filter'"), [np.ones((4, 3)), np.ones((4, 2))], num_top=1)
    with pytest.raises(ConfigError, match="first axis"):
        setup_layer(make_layer("type: 'Filter'"), [np.ones((3, 3)), SELECT], num_top=1)


@pytest.mark.gpu
def test_filter_cpu_gpu_parity():
    x = np.random.default_rng(2).standard_normal((4, 3))
    assert_cpu_gpu_parity("type: 'Filter'", bottoms=[x, SELECT], propagate_down=[True, False],
                          num_top=1, rtol=0, atol=0)
