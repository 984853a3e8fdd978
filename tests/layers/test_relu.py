"""ReLU: forward against numpy and BVLC Caffe, gradients (slopes 0, 0.3), in place, GPU parity."""
import numpy as np
import pytest

from dist_caffe.errors import ConfigError
from dist_caffe.testing import (assert_cpu_gpu_parity, check_gradient, make_layer, run_layer,
                                setup_layer)

from .conftest import assert_caffe_close, caffe_layer, run_in_place


def relu_text(slope):
    return f"type: 'ReLU' relu_param {{ negative_slope: {slope} }}"


@pytest.mark.parametrize("slope", [0.0, 0.3])
def test_relu_forward_matches_numpy(slope):
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5))
    (y,) = run_layer(make_layer(relu_text(slope)), [x])
    s = float(np.float32(slope))  # the proto field is a float
    np.testing.assert_array_equal(y, np.maximum(x, 0) + s * np.minimum(x, 0))


@pytest.mark.parametrize("slope", [0.0, 0.3])
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (7,)])
def test_relu_gradient(slope, shape):
    check_gradient(make_layer(relu_text(slope)), bottom_shapes=[shape], kink=0.0)


@pytest.mark.parametrize("slope", [0.0, 0.3])
def test_relu_in_place_matches_out_of_place(slope):
    g = np.random.default_rng(1)
    x, dy = g.standard_normal((3, 4)), g.standard_normal((3, 4))
    blob = run_in_place(relu_text(slope), x, dy)
    s = float(np.float32(slope))
    np.testing.assert_array_equal(blob.data, np.where(x > 0, x, s * x))
    np.testing.assert_array_equal(blob.diff, np.where(x > 0, dy, s * dy))


def test_relu_bad_config_names_field():
    layer = make_layer("type: 'ReLU'")
    with pytest.raises(ConfigError, match="bottom"):
        setup_layer(layer, [np.zeros(3), np.zeros(3)])


@pytest.mark.parametrize("name, bottom", [("relu_leaky", "lrn_across"),
                                          ("relu_plain", "pool_maxpad")])
def test_relu_matches_bvlc_caffe(name, bottom, conformance):
    layer, ref = caffe_layer(conformance, "layer_zoo_a", name)
    b, t = setup_layer(layer, [ref[f"data/{bottom}"]])
    layer.forward(b, t)
    t[0].diff[...] = ref[f"diff/{name}"]
    layer.backward(t, [True], b)
    assert_caffe_close(t[0].data, ref[f"data/{name}"])
    assert_caffe_close(b[0].diff, ref[f"diff/{bottom}"])


@pytest.mark.gpu
@pytest.mark.parametrize("slope", [0.0, 0.3])
def test_relu_cpu_gpu_parity(slope):
    x = np.random.default_rng(2).standard_normal((2, 3, 4, 5))
    assert_cpu_gpu_parity(relu_text(slope), bottoms=[x], rtol=1e-10, atol=1e-12)
