"""ReLU: forward against numpy and BVLC Caffe, gradients (slopes 0, 0.3), in place, GPU parity."""
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
    blob = Blob(x.shape, np.float64)
    blob.data[...], layer = x, make_layer(relu_text(slope))
    layer.setup([blob], [blob])
    layer.forward([blob], [blob])
    blob.diff[...] = dy
    layer.backward([blob], [True], [blob])
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
    assert_cpu_gpu_parity(lambda: make_layer(relu_text(slope)), bottoms=[x],
                          rtol=1e-10, atol=1e-12)
