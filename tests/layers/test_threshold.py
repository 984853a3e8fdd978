"""Threshold: a step function with no backward."""
import numpy as np
import pytest

from dist_caffe import Net, TRAIN
from dist_caffe.errors import ConfigError
from dist_caffe.testing import assert_cpu_gpu_parity, make_layer, run_layer, setup_layer


@pytest.mark.parametrize("threshold", [0.0, 0.6, -1.0])
def test_threshold_forward_matches_numpy(threshold):
    x = np.random.default_rng(0).standard_normal((2, 3, 4))
    x[0, 0, 0] = np.float32(threshold)  # equal to the threshold: not above it
    (y,) = run_layer(make_layer(f"type: 'Threshold' threshold_param {{ threshold: {threshold} }}"), [x])
    np.testing.assert_array_equal(y, (x > np.float32(threshold)).astype(float))


def test_threshold_has_no_backward():
    assert make_layer("type: 'Threshold'").has_backward is False


def test_threshold_in_a_path_that_needs_gradients_is_a_config_error():
    text = """
    layer { name: 'w' type: 'Parameter' top: 'w' parameter_param { shape { dim: 2 dim: 3 } } }
    layer { name: 't' type: 'Input' top: 'target' input_param { shape { dim: 2 dim: 3 } } }
    layer { name: 'step' type: 'Threshold' bottom: 'w' top: 'step' }
    layer { name: 'loss' type: 'EuclideanLoss' bottom: 'step' bottom: 'target' top: 'loss' }
    """
    with pytest.raises(ConfigError, match="step"):
        Net(text, TRAIN)


def test_threshold_bad_config_names_field():
    with pytest.raises(ConfigError, match="bottom"):
        setup_layer(make_layer("type: 'Threshold'"), [np.ones(2), np.ones(2)])


@pytest.mark.gpu
def test_threshold_cpu_gpu_parity():
    x = np.random.default_rng(2).standard_normal((2, 3, 4))
    assert_cpu_gpu_parity("type: 'Threshold' threshold_param { threshold: 0.2 }", bottoms=[x],
                          rtol=0, atol=0)
