"""ELU: x or alpha (exp(x) - 1)."""
import numpy as np
import pytest

from dist_caffe.errors import ConfigError
from dist_caffe.testing import (assert_cpu_gpu_parity, check_gradient, make_layer, run_layer,
                                setup_layer)

from .conftest import run_in_place


@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_elu_forward_matches_numpy(alpha):
    x = np.random.default_rng(0).standard_normal((2, 3, 4)) * 3
    (y,) = run_layer(make_layer(f"type: 'ELU' elu_param {{ alpha: {alpha} }}"), [x])
    np.testing.assert_allclose(y, np.where(x > 0, x, alpha * (np.exp(x) - 1)), rtol=1e-12)


@pytest.mark.parametrize("alpha", [1.0, 0.5, -0.3])
def test_elu_gradient(alpha):
    check_gradient(make_layer(f"type: 'ELU' elu_param {{ alpha: {alpha} }}"),
                   bottom_shapes=[(2, 3, 4, 5)], kink=0.0)


def test_elu_in_place_gradient():
    g = np.random.default_rng(1)
    x, dy = g.standard_normal(10), g.standard_normal(10)
    blob = run_in_place("type: 'ELU'", x, dy)
    np.testing.assert_allclose(blob.diff, np.where(x > 0, dy, dy * np.exp(x)))


def test_elu_bad_config_names_field():
    with pytest.raises(ConfigError, match="top"):
        setup_layer(make_layer("type: 'ELU'"), [np.zeros(3)], num_top=2)


@pytest.mark.gpu
def test_elu_cpu_gpu_parity():
    assert_cpu_gpu_parity("type: 'ELU' elu_param { alpha: 0.5 }",
                          bottoms=[np.random.default_rng(2).standard_normal((2, 3, 4))])
