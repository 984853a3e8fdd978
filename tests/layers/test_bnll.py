"""BNLL: softplus log(1 + exp(x)) without overflow."""
import numpy as np
import pytest

from dist_caffe.errors import ConfigError
from dist_caffe.testing import (assert_cpu_gpu_parity, check_gradient, make_layer, run_layer,
                                setup_layer)


def test_bnll_forward_matches_numpy_and_does_not_overflow():
    x = np.array([-800.0, -30.0, -1.0, 0.0, 0.5, 30.0, 800.0])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        (y,) = run_layer(make_layer("type: 'BNLL'"), [x])
    ref = np.array([np.log1p(np.exp(v)) if v < 30 else v + np.log1p(np.exp(-v)) for v in x])
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (6,)])
def test_bnll_gradient(shape):
    check_gradient(make_layer("type: 'BNLL'"), bottom_shapes=[shape])


def test_bnll_gradient_is_sigmoid():
    x = np.array([-3.0, 0.0, 2.0, 60.0])
    layer = make_layer("type: 'BNLL'")
    bottom, top = setup_layer(layer, [x])
    layer.forward(bottom, top)
    top[0].diff[...] = 2.0
    layer.backward(top, [True], bottom)
    np.testing.assert_allclose(bottom[0].diff, 2 / (1 + np.exp(-np.minimum(x, 50))))


def test_bnll_bad_config_names_field():
    with pytest.raises(ConfigError, match="bottom"):
        setup_layer(make_layer("type: 'BNLL'"), [])


@pytest.mark.gpu
def test_bnll_cpu_gpu_parity():
    assert_cpu_gpu_parity("type: 'BNLL'",
                          bottoms=[np.random.default_rng(2).standard_normal((2, 3, 4))])
