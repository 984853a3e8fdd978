"""Clip: min(max(x, min), max)."""
import numpy as np
import pytest

from dist_caffe.errors import ConfigError
from dist_caffe.testing import (assert_cpu_gpu_parity, check_gradient, make_layer, run_layer,
                                setup_layer)

from .conftest import run_in_place


TEXT = "type: 'Clip' clip_param { min: -0.5 max: 0.75 }"


def away_from_bounds(shape):
    """Gaussian values kept 0.01 away from the bounds, where Clip is not differentiable."""
    x = np.random.default_rng(7).standard_normal(shape)
    for b in (-0.5, 0.75):
        x = np.where(np.abs(x - b) < 0.01, x + 0.05, x)
    return x


def test_clip_forward_matches_numpy():
    x = np.random.default_rng(0).standard_normal((2, 3, 4))
    (y,) = run_layer(make_layer(TEXT), [x])
    np.testing.assert_array_equal(y, np.clip(x, -0.5, 0.75))


@pytest.mark.parametrize("shape", [(2, 3, 4), (9,)])
def test_clip_gradient(shape):
    check_gradient(make_layer(TEXT), bottom_shapes=[shape], fill=away_from_bounds)


def test_clip_in_place_gradient_uses_the_input():
    x = np.array([-2.0, -0.5, 0.0, 0.75, 3.0])
    blob = run_in_place(TEXT, x, 1)
    np.testing.assert_array_equal(blob.diff, [0, 1, 1, 1, 0])


@pytest.mark.parametrize("text, field", [("clip_param { min: 1 max: 0 }", "clip_param.min"),
                                         ("clip_param { min: 1 }", "clip_param"),
                                         ("", "clip_param")])
def test_clip_bad_config_names_field(text, field):
    with pytest.raises(ConfigError, match=field):
        setup_layer(make_layer(f"type: 'Clip' {text}"), [np.ones(3)])


@pytest.mark.gpu
def test_clip_cpu_gpu_parity():
    assert_cpu_gpu_parity(TEXT, bottoms=[away_from_bounds((2, 3, 4))])
