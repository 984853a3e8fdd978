"""Sigmoid: forward against numpy and BVLC Caffe, gradients, in place, GPU parity."""
import numpy as np
import pytest

from dist_caffe import backend, rng
from dist_caffe.blob import Blob
from dist_caffe.errors import ConfigError
from dist_caffe.layer import TRAIN, create_layer
from dist_caffe.proto import read_net_param
from dist_caffe.testing import check_gradient, make_layer, run_layer, setup_layer


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
    check_gradient(make_layer(TEXT), bottom_shapes=[shape], fill=lambda s: 2 * np.random.default_rng(3).standard_normal(s))


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


def _forward_backward(text, arrays, phase):
    layer = make_layer(text, phase=phase)
    bottom, top = setup_layer(layer, arrays)
    rng.set_random_seed(0)
    layer.run_forward(bottom, top)
    for k, t in enumerate(top):
        t.diff = np.random.default_rng(k).standard_normal(t.shape)
    layer.run_backward(top, [True] * len(bottom), bottom)
    arrays = [t.data for t in top] + [b.diff for b in bottom + layer.blobs]
    return [backend.to_cpu(a) for a in arrays]


def assert_cpu_gpu_parity(text, arrays, phase=TRAIN):
    """Forward and backward (float64) agree on the CPU and the GPU."""
    cpu = _forward_backward(text, arrays, phase)
    backend.set_mode_gpu()
    try:
        gpu = _forward_backward(text, arrays, phase)
    finally:
        backend.set_mode_cpu()
    for a, b in zip(cpu, gpu, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.gpu
def test_sigmoid_cpu_gpu_parity():
    assert_cpu_gpu_parity(TEXT, [np.random.default_rng(2).standard_normal((2, 3, 4, 5))])
