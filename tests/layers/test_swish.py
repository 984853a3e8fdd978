"""Swish: x sigmoid(beta x)."""
import numpy as np
import pytest

from dist_caffe.errors import ConfigError
from dist_caffe.testing import (assert_cpu_gpu_parity, check_gradient, make_layer, run_layer,
                                setup_layer)

from .conftest import run_in_place


@pytest.mark.parametrize("beta", [1.0, 0.5, 2.0])
def test_swish_forward_matches_numpy(beta):
    x = np.random.default_rng(0).standard_normal((2, 3, 4)) * 4
    (y,) = run_layer(make_layer(f"type: 'Swish' swish_param {{ beta: {beta} }}"), [x])
    np.testing.assert_allclose(y, x / (1 + np.exp(-beta * x)), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("beta", [1.0, 0.5, 2.0])
def test_swish_gradient(beta):
    check_gradient(make_layer(f"type: 'Swish' swish_param {{ beta: {beta} }}"),
                   bottom_shapes=[(2, 3, 4, 5)])


def test_swish_in_place_gradient():
    g = np.random.default_rng(1)
    x, dy = g.standard_normal(8), g.standard_normal(8)
    blob = run_in_place("type: 'Swish'", x, dy)
    s = 1 / (1 + np.exp(-x))
    np.testing.assert_allclose(blob.diff, dy * (s + x * s * (1 - s)))


def test_swish_bad_config_names_field():
    with pytest.raises(ConfigError, match="bottom"):
        setup_layer(make_layer("type: 'Swish'"), [np.ones(2), np.ones(2)])


@pytest.mark.gpu
def test_swish_cpu_gpu_parity():
    assert_cpu_gpu_parity("type: 'Swish' swish_param { beta: 1.5 }",
                          bottoms=[np.random.default_rng(2).standard_normal((2, 3, 4))])
