"""Softmax: forward against numpy and BVLC Caffe, gradients, in-place, bad axis, GPU parity."""
import numpy as np
import pytest

from dist_caffe import backend
from dist_caffe.blob import Blob
from dist_caffe.errors import ConfigError
from dist_caffe.layer import create_layer
from dist_caffe.proto import read_net_param
from dist_caffe.testing import assert_cpu_gpu_parity, check_gradient, make_layer, run_layer


def reference_softmax(x, axis):
    """Softmax by moving `axis` last and looping over the rows (no max trick: inputs are small)."""
    moved = np.moveaxis(x, axis, -1)
    rows = moved.reshape(-1, moved.shape[-1])
    out = np.array([np.exp(r) / np.exp(r).sum() for r in rows]).reshape(moved.shape)
    return np.moveaxis(out, -1, axis)


@pytest.mark.parametrize("axis, shape", [(1, (2, 5, 3, 4)), (2, (2, 3, 4, 2)), (-1, (3, 6)),
                                         (0, (4, 3))])
def test_softmax_forward_matches_numpy(axis, shape):
    x = np.random.default_rng(0).standard_normal(shape) * 3
    (y,) = run_layer(make_layer(f"type: 'Softmax' softmax_param {{ axis: {axis} }}"), [x])
    np.testing.assert_allclose(y, reference_softmax(x, axis), rtol=1e-12)
    np.testing.assert_allclose(y.sum(axis=axis), 1.0, rtol=1e-12)


def test_softmax_is_stable_for_large_inputs():
    x = np.array([[1000.0, 1001.0, 999.0], [-1000.0, -1000.0, -1000.0]])
    (y,) = run_layer(make_layer("type: 'Softmax'"), [x])
    np.testing.assert_allclose(y, [reference_softmax(x[0] - 1000, 0), [1 / 3] * 3], rtol=1e-12)


@pytest.mark.parametrize("axis, shape", [(1, (2, 4, 3, 2)), (2, (2, 3, 4, 2)), (-1, (3, 5))])
def test_softmax_gradient(axis, shape):
    layer = make_layer(f"type: 'Softmax' softmax_param {{ axis: {axis} }}")
    check_gradient(layer, bottom_shapes=[shape], step=1e-6, threshold=1e-6)


def test_softmax_in_place():
    x = np.random.default_rng(1).standard_normal((2, 4, 3))
    dy = np.random.default_rng(2).standard_normal(x.shape)
    layer = make_layer("type: 'Softmax'")
    blob = Blob(x.shape, np.float64)
    blob.data[...] = x
    layer.setup([blob], [blob])
    layer.forward([blob], [blob])
    y = reference_softmax(x, 1)
    np.testing.assert_allclose(blob.data, y, rtol=1e-12)
    blob.diff[...] = dy
    layer.backward([blob], [True], [blob])
    expected = y * (dy - (dy * y).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(blob.diff, expected, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("axis", [4, -5])
def test_softmax_bad_axis_names_the_field(axis):
    layer = make_layer(f"type: 'Softmax' softmax_param {{ axis: {axis} }}")
    with pytest.raises(ConfigError, match="softmax_param.axis") as err:
        run_layer(layer, [np.zeros((2, 3, 4, 5))])
    assert str(axis) in str(err.value)


def test_softmax_matches_caffe(conformance):
    case = conformance / "caffe_ref" / "layer_zoo_b"
    if not case.is_dir():
        pytest.skip("caffe_ref/layer_zoo_b is absent")
    lp = next(l for l in read_net_param(str(case / "net.prototxt")).layer if l.name == "softmax")
    expected = np.load(case / "expected.npz")
    (y,) = run_layer(create_layer(lp, dtype=np.float64), [expected["data/ip_axis"]])
    np.testing.assert_allclose(y, expected["data/softmax"], rtol=1e-5, atol=1e-7)


@pytest.mark.gpu
@pytest.mark.skipif(not backend.has_gpu(), reason="no CUDA GPU")
def test_softmax_cpu_gpu_parity():
    x = np.random.default_rng(3).standard_normal((2, 5, 3, 4))
    assert_cpu_gpu_parity("type: 'Softmax'", bottoms=[x], rtol=1e-10, atol=1e-12)
