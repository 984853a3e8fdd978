"""Flatten: axis/end_axis shapes, shared data and diff, gradients, bad axes, BVLC Caffe."""
import numpy as np
import pytest

from dist_caffe.blob import Blob
from dist_caffe.errors import ConfigError
from dist_caffe.testing import (assert_cpu_gpu_parity, check_gradient, make_layer, run_layer,
                                setup_layer)

from .conftest import assert_caffe_close, caffe_layer


def flatten_text(body=""):
    return f"type: 'Flatten' flatten_param {{ {body} }}"


@pytest.mark.parametrize("body, shape", [
    ("", (2, 60)),
    ("axis: 0", (120,)),
    ("axis: 2", (2, 3, 20)),
    ("axis: 1 end_axis: 2", (2, 12, 5)),
    ("axis: -3 end_axis: -2", (2, 12, 5)),
    ("axis: 3", (2, 3, 4, 5)),
    ("axis: 2 end_axis: 1", (2, 3, 1, 4, 5)),
])
def test_flatten_shape_and_values(body, shape):
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5))
    (y,) = run_layer(make_layer(flatten_text(body)), [x])
    np.testing.assert_array_equal(y, x.reshape(shape))


def test_flatten_shares_data_and_diff_with_the_bottom():
    x = np.random.default_rng(1).standard_normal((2, 3, 4))
    layer = make_layer(flatten_text())
    bottom, top = setup_layer(layer, [x])
    layer.forward(bottom, top)
    bottom[0].data[...] += 1  # a later change of the bottom shows in the top, as in Caffe
    np.testing.assert_array_equal(top[0].data, (x + 1).reshape(2, 12))
    top[0].diff[...] = np.arange(24).reshape(2, 12)
    layer.backward(top, [True], bottom)
    np.testing.assert_array_equal(bottom[0].diff, np.arange(24).reshape(2, 3, 4))


def test_flatten_follows_a_reshaped_bottom():
    layer = make_layer(flatten_text())
    bottom, top = setup_layer(layer, [np.zeros((2, 3, 4))])
    bottom[0].reshape(5, 2, 2)
    bottom[0].data[...] = np.arange(20).reshape(5, 2, 2)
    layer.reshape(bottom, top)
    layer.forward(bottom, top)
    np.testing.assert_array_equal(top[0].data, np.arange(20).reshape(5, 4))


@pytest.mark.parametrize("body", ["", "axis: 2", "axis: 0 end_axis: 1"])
def test_flatten_gradient(body):
    check_gradient(make_layer(flatten_text(body)), bottom_shapes=[(2, 3, 2, 3)])


def test_flatten_in_place_is_a_config_error():
    blob = Blob((2, 3), np.float64)
    with pytest.raises(ConfigError, match="top"):
        make_layer(flatten_text()).setup([blob], [blob])


@pytest.mark.parametrize("body, field", [("axis: 4", r"flatten_param\.axis"),
                                         ("end_axis: -5", r"flatten_param\.end_axis"),
                                         ("axis: 3 end_axis: 1", r"flatten_param\.end_axis")])
def test_flatten_bad_axes_name_field(body, field):
    with pytest.raises(ConfigError, match=field):
        setup_layer(make_layer(flatten_text(body)), [np.zeros((2, 3, 4, 5))])


def test_flatten_matches_bvlc_caffe(conformance):
    layer, ref = caffe_layer(conformance, "layer_zoo_b", "flatten")
    b, t = setup_layer(layer, [ref["data/slice_b"]])
    layer.forward(b, t)
    t[0].diff[...] = ref["diff/flatten"]
    layer.backward(t, [True], b)
    assert_caffe_close(t[0].data, ref["data/flatten"])
    assert_caffe_close(b[0].diff, ref["diff/slice_b"])


@pytest.mark.gpu
def test_flatten_cpu_gpu_parity():
    x = np.random.default_rng(3).standard_normal((2, 3, 4))
    assert_cpu_gpu_parity(flatten_text("axis: 1"), bottoms=[x], rtol=1e-10, atol=1e-12)
