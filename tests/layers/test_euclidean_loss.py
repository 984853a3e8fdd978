"""EuclideanLoss: sum((a-b)^2)/N/2 against numpy and BVLC Caffe, gradients to both inputs."""
import numpy as np
import pytest

from dist_caffe import backend
from dist_caffe.errors import ConfigError
from dist_caffe.layer import create_layer
from dist_caffe.proto import read_net_param
from dist_caffe.testing import (assert_cpu_gpu_parity, check_gradient, make_layer, run_layer,
                                setup_layer)


@pytest.mark.parametrize("shape_a, shape_b", [((4, 3), (4, 3)), ((2, 3, 4, 5), (2, 3, 4, 5)),
                                              ((3, 6), (3, 2, 3)), ((5,), (5,))])
def test_forward_backward_match_numpy(shape_a, shape_b):
    g = np.random.default_rng(0)
    a, b = g.standard_normal(shape_a), g.standard_normal(shape_b)
    layer = make_layer("type: 'EuclideanLoss'")
    bottom, top = setup_layer(layer, [a, b])
    layer.forward(bottom, top)
    n, delta = shape_a[0], a - b.reshape(shape_a)
    np.testing.assert_allclose(top[0].data, np.sum(delta ** 2) / n / 2, rtol=1e-12)
    top[0].diff[...] = 0.3
    layer.backward(top, [True, True], bottom)
    np.testing.assert_allclose(bottom[0].diff, 0.3 * delta / n, rtol=1e-12)
    np.testing.assert_allclose(bottom[1].diff, -0.3 * delta.reshape(shape_b) / n, rtol=1e-12)


def test_only_asked_bottoms_are_written():
    layer = make_layer("type: 'EuclideanLoss'")
    bottom, top = setup_layer(layer, [np.ones((2, 3)), np.zeros((2, 3))])
    layer.forward(bottom, top)
    bottom[1].diff[...] = 42
    layer.backward(top, [True, False], bottom)
    assert np.all(bottom[1].diff == 42) and np.all(bottom[0].diff == 0.5)
    assert layer.allow_force_backward(1)  # unlike a label input, the target may learn


@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 2, 2), (6,)])
def test_gradient(shape):
    check_gradient(make_layer("type: 'EuclideanLoss'"), bottom_shapes=[shape, shape])


def test_bad_shapes_name_the_field():
    with pytest.raises(ConfigError, match="bottom.*same number of values"):
        run_layer(make_layer("type: 'EuclideanLoss'"), [np.zeros((2, 3)), np.zeros((2, 4))])
    with pytest.raises(ConfigError, match="bottom.*first axis"):
        run_layer(make_layer("type: 'EuclideanLoss'"), [np.zeros((2, 3)), np.zeros((3, 2))])


def test_matches_caffe(conformance):
    case = conformance / "caffe_ref" / "layer_zoo_c"
    if not case.is_dir():
        pytest.skip("caffe_ref/layer_zoo_c is absent")
    lp = next(l for l in read_net_param(str(case / "net.prototxt")).layer if l.name == "euclid")
    inputs, expected = np.load(case / "inputs.npz"), np.load(case / "expected.npz")
    layer = create_layer(lp, dtype=np.float64)
    bottom, top = setup_layer(layer, [expected["data/ip_e"], inputs["target"]])
    layer.forward(bottom, top)
    np.testing.assert_allclose(top[0].data, expected["data/euclid"], rtol=1e-5)
    top[0].diff[...] = layer.loss_weights[0]  # 0.7, from the prototxt
    layer.backward(top, [True, True], bottom)
    # Only the Euclidean loss reads `target`, so Caffe's diff there is this layer's alone.
    np.testing.assert_allclose(bottom[1].diff, expected["diff/target"], rtol=1e-4, atol=1e-7)


@pytest.mark.gpu
@pytest.mark.skipif(not backend.has_gpu(), reason="no CUDA GPU")
def test_cpu_gpu_parity():
    g = np.random.default_rng(3)
    a, b = g.standard_normal((3, 4, 5)), g.standard_normal((3, 4, 5))
    assert_cpu_gpu_parity("type: 'EuclideanLoss'", bottoms=[a, b], rtol=1e-10, atol=1e-12)
