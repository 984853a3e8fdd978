"""Sigmoid: forward against numpy and BVLC Caffe, gradients, in place, GPU parity."""
import numpy as np
import pytest

from dist_caffe.errors import ConfigError
from dist_caffe.testing import (assert_cpu_gpu_parity, check_gradient, make_layer, run_layer,
                                setup_layer)

from .conftest import assert_caffe_close, caffe_layer, run_in_place


TEXT = "type: 'Sigmoid'"


def test_sigmoid_forward_matches_numpy():
    x = 4 * np.random.default_rng(0).standard_normal((2, 3, 4, 5))
    (y,) = run_layer(make_layer(TEXT), [x])
    np.testing.assert_allclose(y, 1 / (1 + np.exp(-x)), rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (6,), (3, 1)])
def test_sigmoid_gradient(shape):
    x = 2 * np.random.default_rng(3).standard_normal(shape)
    check_gradient(make_layer(TEXT), bottoms=[x])


def test_sigmoid_in_place_backward_uses_top():
    g = np.random.default_rng(1)
    x, dy = g.standard_normal((3, 4)), g.standard_normal((3, 4))
    blob = run_in_place(TEXT, x, dy)
    y = 1 / (1 + np.exp(-x))
    np.testing.assert_allclose(blob.data, y, rtol=1e-14)
    np.testing.assert_allclose(blob.diff, dy * y * (1 - y), rtol=1e-12, atol=1e-15)


def test_sigmoid_bad_config_names_field():
    with pytest.raises(ConfigError, match="top"):
        setup_layer(make_layer(TEXT), [np.zeros(3)], num_top=2)


def test_sigmoid_matches_bvlc_caffe(conformance):
    layer, ref = caffe_layer(conformance, "layer_zoo_a", "sigmoid")
    b, t = setup_layer(layer, [ref["data/bias_c"]])
    layer.forward(b, t)
    t[0].diff[...] = ref["diff/sigmoid"]
    layer.backward(t, [True], b)
    assert_caffe_close(t[0].data, ref["data/sigmoid"])
    assert_caffe_close(b[0].diff, ref["diff/bias_c"])


@pytest.mark.gpu
def test_sigmoid_cpu_gpu_parity():
    x = np.random.default_rng(2).standard_normal((2, 3, 4, 5))
    assert_cpu_gpu_parity(TEXT, bottoms=[x], rtol=1e-10, atol=1e-12)
