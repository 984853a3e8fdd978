"""Sigmoid: forward against numpy and BVLC Caffe, gradients, in place, GPU parity."""
import numpy as np
import pytest

from dist_caffe.blob import Blob
from dist_caffe.errors import ConfigError
from dist_caffe.layer import TRAIN, create_layer
from dist_caffe.proto import read_net_param
from dist_caffe.testing import (assert_cpu_gpu_parity, check_gradient, make_layer, run_layer,
                                setup_layer)


def caffe_layer(conformance, case, name):
    """Layer `name` of a BVLC Caffe fixture net (float32, TRAIN) and the arrays Caffe wrote."""
    folder = conformance / "caffe_ref" / case
    lp = next(lp for lp in read_net_param(str(folder / "net.prototxt")).layer if lp.name == name)
    return create_layer(lp, phase=TRAIN, dtype=np.float32), np.load(folder / "expected.npz")


def assert_caffe_close(actual, expected):
    atol = 1e-5 * np.abs(expected).max() + 1e-7
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=atol)


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
    blob = Blob(x.shape, np.float64)
    blob.data[...], layer = x, make_layer(TEXT)
    layer.setup([blob], [blob])
    layer.forward([blob], [blob])
    blob.diff[...] = dy
    layer.backward([blob], [True], [blob])
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
    assert_cpu_gpu_parity(lambda: make_layer(TEXT), bottoms=[x], rtol=1e-10, atol=1e-12)
