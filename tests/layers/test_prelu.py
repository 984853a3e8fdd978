"""PReLU: per-channel and shared slopes, learned; in place."""
import numpy as np
import pytest

from dist_caffe.blob import Blob
from dist_caffe.errors import ConfigError
from dist_caffe.testing import (assert_cpu_gpu_parity, check_gradient, make_layer, run_layer,
                                setup_layer)


SLOPES = "prelu_param { filler { type: 'uniform' min: -0.5 max: 0.5 } }"
SHARED = "prelu_param { channel_shared: true filler { type: 'constant' value: 0.3 } }"


def test_prelu_forward_matches_numpy_per_channel():
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5))
    layer = make_layer(f"type: 'PReLU' {SLOPES}")
    (y,) = run_layer(layer, [x])
    a = layer.blobs[0].data.reshape(1, 3, 1, 1)
    assert layer.blobs[0].shape == (3,)
    np.testing.assert_allclose(y, np.where(x > 0, x, a * x))


def test_prelu_shared_slope_is_a_scalar_and_default_is_quarter():
    x = np.random.default_rng(1).standard_normal((2, 3, 4))
    shared = make_layer(f"type: 'PReLU' {SHARED}")
    (y,) = run_layer(shared, [x])
    assert shared.blobs[0].shape == ()
    np.testing.assert_allclose(y, np.where(x > 0, x, np.float32(0.3) * x))
    default = make_layer("type: 'PReLU'")
    run_layer(default, [x])
    np.testing.assert_allclose(default.blobs[0].data, np.full(3, 0.25))


@pytest.mark.parametrize("param", [SLOPES, SHARED])
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (4, 3)])
def test_prelu_gradient(param, shape):
    check_gradient(make_layer(f"type: 'PReLU' {param}"), bottom_shapes=[shape], kink=0.0)


def test_prelu_in_place_matches_out_of_place():
    g = np.random.default_rng(3)
    x, dy = g.standard_normal((2, 3, 4)), g.standard_normal((2, 3, 4))
    ref = make_layer(f"type: 'PReLU' {SLOPES}")
    bottom, top = setup_layer(ref, [x])
    ref.forward(bottom, top)
    top[0].diff[...] = dy
    ref.backward(top, [True], bottom)
    blob, layer = Blob(x.shape, np.float64), make_layer(f"type: 'PReLU' {SLOPES}")
    blob.data[...] = x
    layer.setup([blob], [blob])
    layer.blobs[0].data[...] = ref.blobs[0].data
    layer.forward([blob], [blob])
    blob.diff[...] = dy
    layer.backward([blob], [True], [blob])
    np.testing.assert_allclose(blob.data, top[0].data)
    np.testing.assert_allclose(blob.diff, bottom[0].diff)
    np.testing.assert_allclose(layer.blobs[0].diff, ref.blobs[0].diff)


def test_prelu_bad_input_names_field():
    with pytest.raises(ConfigError, match="bottom"):
        setup_layer(make_layer("type: 'PReLU'"), [np.zeros(3)])
    layer = make_layer("type: 'PReLU'")
    bottom, top = setup_layer(layer, [np.zeros((2, 3))])
    bottom[0].reshape(2, 4)
    with pytest.raises(ConfigError, match="channels"):
        layer.reshape(bottom, top)


@pytest.mark.gpu
@pytest.mark.parametrize("param", [SLOPES, SHARED])
def test_prelu_cpu_gpu_parity(param):
    assert_cpu_gpu_parity(f"type: 'PReLU' {param}",
                          bottoms=[np.random.default_rng(4).standard_normal((2, 3, 4))])
