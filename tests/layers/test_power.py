"""Power: (shift + scale x) ^ power, Caffe's special cases included."""
import numpy as np
import pytest

from dist_caffe.errors import ConfigError
from dist_caffe.testing import (assert_cpu_gpu_parity, check_gradient, make_layer, run_layer,
                                setup_layer)


CASES = [(1.5, 0.5, 0.25), (2.0, 1.0, 0.0), (2.0, -0.7, 1.5), (0.5, 1.0, 0.0), (3.0, 2.0, -1.0),
         (1.0, 2.0, 1.0), (-1.0, 1.0, 3.0)]


def power_text(power, scale, shift):
    return f"type: 'Power' power_param {{ power: {power} scale: {scale} shift: {shift} }}"


def positive(shape):
    return np.random.default_rng(5).uniform(0.5, 2.0, shape)


@pytest.mark.parametrize("power, scale, shift", CASES)
def test_power_forward_matches_numpy(power, scale, shift):
    x = positive((2, 3, 4))
    (y,) = run_layer(make_layer(power_text(power, scale, shift)), [x])
    s, b, p = (float(np.float32(v)) for v in (scale, shift, power))
    np.testing.assert_allclose(y, (b + s * x) ** p, rtol=1e-12)


@pytest.mark.parametrize("power, scale, shift", CASES)
def test_power_gradient(power, scale, shift):
    check_gradient(make_layer(power_text(power, scale, shift)), bottom_shapes=[(2, 3, 4)],
                   fill=positive)


@pytest.mark.parametrize("power, scale", [(0.0, 1.0), (3.0, 0.0)])
def test_power_constant_cases_have_zero_gradient(power, scale):
    x = positive((5,))
    layer = make_layer(power_text(power, scale, 2.0))
    bottom, top = setup_layer(layer, [x])
    layer.forward(bottom, top)
    np.testing.assert_allclose(top[0].data, 1.0 if power == 0 else 2.0 ** power)
    top[0].diff[...] = 1
    bottom[0].diff[...] = 7
    layer.backward(top, [True], bottom)
    np.testing.assert_array_equal(bottom[0].diff, 0)


def test_power_bad_config_names_field():
    with pytest.raises(ConfigError, match="top"):
        setup_layer(make_layer(power_text(2, 1, 0)), [np.ones(3)], num_top=2)


@pytest.mark.gpu
def test_power_cpu_gpu_parity():
    assert_cpu_gpu_parity(power_text(1.5, 0.5, 0.25), bottoms=[positive((2, 3, 4))])
