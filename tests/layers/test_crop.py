"""Crop: cut bottom[0] to bottom[1]'s shape at offsets."""
import numpy as np
import pytest

from dist_caffe.errors import ConfigError
from dist_caffe.testing import (assert_cpu_gpu_parity, check_gradient, make_layer, run_layer,
                                setup_layer)


A, B = (2, 4, 6, 7), (1, 2, 3, 4)


@pytest.mark.parametrize("param, index", [
    ("crop_param { axis: 2 offset: 1 offset: 2 }", (slice(None), slice(None), slice(1, 4), slice(2, 6))),
    ("crop_param { axis: 1 offset: 1 }", (slice(None), slice(1, 3), slice(1, 4), slice(1, 5))),
    ("", (slice(None), slice(None), slice(0, 3), slice(0, 4))),
    ("crop_param { axis: -1 offset: 3 }", (slice(None), slice(None), slice(None), slice(3, 7))),
    ("crop_param { axis: 0 offset: 1 offset: 2 offset: 3 offset: 0 }",
     (slice(1, 2), slice(2, 4), slice(3, 6), slice(0, 4))),
])
def test_crop_forward_matches_numpy_slicing(param, index):
    x = np.random.default_rng(0).standard_normal(A)
    (y,) = run_layer(make_layer(f"type: 'Crop' {param}"), [x, np.zeros(B)])
    np.testing.assert_array_equal(y, x[index])


@pytest.mark.parametrize("param", ["crop_param { axis: 2 offset: 1 offset: 2 }",
                                   "crop_param { axis: 1 offset: 1 }"])
def test_crop_gradient(param):
    g = np.random.default_rng(1)
    check_gradient(make_layer(f"type: 'Crop' {param}"), bottoms=[g.standard_normal(A), np.zeros(B)],
                   check_bottom=[0])


def test_crop_reference_input_gets_zero_gradient():
    layer = make_layer("type: 'Crop'")
    bottom, top = setup_layer(layer, [np.ones(A), np.ones(B)])
    layer.forward(bottom, top)
    top[0].diff[...] = 1
    bottom[1].diff[...] = 3
    layer.backward(top, [True, True], bottom)
    assert bottom[0].diff.sum() == np.prod(B[:0] + A[:2] + B[2:])
    np.testing.assert_array_equal(bottom[1].diff, 0)


@pytest.mark.parametrize("param, field", [
    ("crop_param { axis: 4 }", "crop_param.axis"),
    ("crop_param { axis: -5 }", "crop_param.axis"),
    ("crop_param { axis: 2 offset: 4 }", "crop_param.offset"),
    ("crop_param { axis: 2 offset: 1 offset: 2 offset: 3 }", "crop_param.offset"),
])
def test_crop_bad_axis_or_offset_names_field(param, field):
    with pytest.raises(ConfigError, match=field):
        setup_layer(make_layer(f"type: 'Crop' {param}"), [np.ones(A), np.ones(B)])


def test_crop_needs_inputs_with_the_same_number_of_axes():
    with pytest.raises(ConfigError, match="bottom"):
        setup_layer(make_layer("type: 'Crop'"), [np.ones(A), np.ones((2, 3, 4))])


@pytest.mark.gpu
def test_crop_cpu_gpu_parity():
    assert_cpu_gpu_parity("type: 'Crop' crop_param { axis: 2 offset: 1 offset: 2 }",
                          bottoms=[np.random.default_rng(2).standard_normal(A), np.zeros(B)],
                          propagate_down=[True, False])
